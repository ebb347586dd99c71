// Package servicemap finds the edges of the service map: a client span
// joined to its child server span in another service, or, when no
// instrumented server answers, an edge to a virtual node named for what was
// called (a database, a cache, a message queue, an external host).
package servicemap

import (
	"net/url"
	"strconv"
	"strings"

	"go.opentelemetry.io/collector/pdata/pcommon"

	"github.com/skytrail/skytrail/internal/analysis/red"
)

// Target is what a span says it called (for a client or producer span) or
// was called by (for a message consumer).
type Target struct {
	// Type is the virtual node type: red.NodeDatabase, NodeCache, NodeMQ or
	// NodeExternal.
	Type string
	// Name is the node's name: the peer address when the span has one,
	// else the system (mysql, kafka), else "unknown".
	Name   string
	System string
	// Join is set when an instrumented service may answer: the edge waits
	// for the server span. Databases, caches and queues never answer.
	Join bool
}

// caches are db.system values SkyWalking draws as cache nodes.
var caches = map[string]bool{"redis": true, "memcached": true, "valkey": true, "hazelcast": true, "ignite": true, "couchbase": true}

// Attrs are the span attributes that name a peer, read in one pass.
type Attrs struct {
	DBSystem, MessagingSystem, MessagingDestination     string
	ServerAddress, ServerPort, NetPeerName, NetPeerPort string
	URL, PeerService, RPCService                        string
	SWLayer, SWPeer, SWComponent                        string
	// SWRefParentService and SWRefNetworkAddress come from a SkyWalking
	// entry span's ref; SWRef is set when the ref crosses processes (a
	// cross-thread ref continues the same process).
	SWRef                                   bool
	SWRefParentService, SWRefNetworkAddress string
	SWSpan, SkipAnalysis                    bool
}

// Read fills a from attrs.
func (a *Attrs) Read(attrs pcommon.Map) {
	for k, v := range attrs.All() {
		if len(k) < 3 {
			continue
		}
		switch k {
		case "db.system", "db.system.name":
			a.DBSystem = v.Str()
		case "db.type": // SkyWalking's tag; the converter also sets db.system.
			if a.DBSystem == "" {
				a.DBSystem = strings.ToLower(v.Str())
			}
		case "messaging.system":
			a.MessagingSystem = v.Str()
		case "messaging.destination.name", "messaging.destination":
			a.MessagingDestination = v.Str()
		case "server.address":
			a.ServerAddress = v.Str()
		case "server.port":
			a.ServerPort = v.AsString()
		case "net.peer.name", "net.sock.peer.addr", "network.peer.address":
			if a.NetPeerName == "" {
				a.NetPeerName = v.Str()
			}
		case "net.peer.port", "network.peer.port":
			a.NetPeerPort = v.AsString()
		case "url.full", "http.url":
			a.URL = v.Str()
		case "peer.service":
			a.PeerService = v.Str()
		case "rpc.service":
			a.RPCService = v.Str()
		case "sw.layer":
			a.SWLayer = v.Str()
		case "sw.peer":
			a.SWPeer = v.Str()
		case "sw.component":
			a.SWComponent = v.Str()
		case "sw.span_id":
			a.SWSpan = true
		case "sw.ref.type":
			a.SWRef = v.Str() == "CrossProcess"
		case "sw.ref.parent_service":
			a.SWRefParentService = v.Str()
		case "sw.ref.network_address":
			a.SWRefNetworkAddress = v.Str()
		case "sw.skip_analysis":
			a.SkipAnalysis = v.Bool() || v.Str() == "true"
		}
	}
}

// peer is the address the span called, as host[:port], or "".
func (a *Attrs) peer() string {
	switch {
	case a.PeerService != "":
		return a.PeerService
	case a.ServerAddress != "":
		return hostPort(a.ServerAddress, a.ServerPort)
	case a.SWPeer != "":
		return a.SWPeer
	case a.NetPeerName != "":
		return hostPort(a.NetPeerName, a.NetPeerPort)
	case a.URL != "":
		if u, err := url.Parse(a.URL); err == nil && u.Host != "" {
			return u.Host
		}
	}
	return ""
}

func hostPort(host, port string) string {
	if port == "" || port == "0" {
		return host
	}
	if _, err := strconv.Atoi(port); err != nil {
		return host
	}
	return host + ":" + port
}

// Client classifies the target of a client or producer span.
func (a *Attrs) Client(producer bool) Target {
	switch {
	case a.SWLayer == "Cache" || caches[a.DBSystem]:
		return a.virtual(red.NodeCache, a.DBSystem)
	case a.DBSystem != "" || a.SWLayer == "Database":
		return a.virtual(red.NodeDatabase, a.DBSystem)
	case producer || a.MessagingSystem != "" || a.SWLayer == "MQ":
		return a.virtual(red.NodeMQ, a.MessagingSystem)
	}
	t := a.virtual(red.NodeExternal, "")
	t.Join = true
	return t
}

// Consumer reports the queue a consumer span took its message from, if
// the span says it is a message consumer.
func (a *Attrs) Consumer() (Target, bool) {
	if a.MessagingSystem == "" && a.SWLayer != "MQ" {
		return Target{}, false
	}
	return a.virtual(red.NodeMQ, a.MessagingSystem), true
}

func (a *Attrs) virtual(typ, system string) Target {
	if system == "" {
		system = strings.ToLower(a.SWComponent)
	}
	name := a.peer()
	if name == "" {
		name = system
	}
	if name == "" && typ == red.NodeMQ {
		name = a.MessagingDestination
	}
	if name == "" {
		name = "unknown"
	}
	return Target{Type: typ, Name: name, System: system}
}
