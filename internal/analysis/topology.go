package analysis

import (
	"context"
	"sort"
	"strings"
	"time"

	"github.com/skytrail/skytrail/internal/analysis/red"
)

// Node is a node of the service map: an instrumented service, the "user"
// node, or a virtual node (database, cache, mq, external) a service called.
type Node struct {
	Name   string `json:"name"`
	Type   string `json:"type"`
	System string `json:"system,omitempty"`
	// Figures are a service's own (its entry spans) or, for a virtual
	// node, the calls into it as its clients saw them; none for "user".
	Figures *Figures `json:"figures,omitempty"`
}

// Edge is an edge of the service map with its figures as the client and
// as the server saw them (either may be missing: no server answers for a
// database, no client reports for a user).
type Edge struct {
	Client     string   `json:"client"`
	Server     string   `json:"server"`
	ClientType string   `json:"clientType"`
	ServerType string   `json:"serverType"`
	System     string   `json:"system,omitempty"`
	ClientSide *Figures `json:"clientSide,omitempty"`
	ServerSide *Figures `json:"serverSide,omitempty"`
}

func (e Edge) calls() uint64 {
	if e.ClientSide != nil {
		return e.ClientSide.Calls
	}
	if e.ServerSide != nil {
		return e.ServerSide.Calls
	}
	return 0
}

// Topology is the service map over a time range.
type Topology struct {
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
	Nodes []Node    `json:"nodes"`
	Edges []Edge    `json:"edges"`
}

var edgeLabels = []string{"client", "server", "client_type", "server_type", "system"}

// edges reads every edge with figures over [start, end], sorted.
func (a *Analyser) edges(ctx context.Context, start, end time.Time) ([]Edge, error) {
	client, err := a.figures(ctx, "skytrail_edge_client_", edgeLabels, "", false, start, end)
	if err != nil {
		return nil, err
	}
	server, err := a.figures(ctx, "skytrail_edge_server_", edgeLabels, "", false, start, end)
	if err != nil {
		return nil, err
	}
	byKey := map[string]*Edge{}
	get := func(k string) *Edge {
		e := byKey[k]
		if e == nil {
			p := strings.Split(k, "\x00")
			e = &Edge{Client: p[0], Server: p[1], ClientType: p[2], ServerType: p[3], System: p[4]}
			byKey[k] = e
		}
		return e
	}
	for k, f := range client {
		get(k).ClientSide = f
	}
	for k, f := range server {
		get(k).ServerSide = f
	}
	out := make([]Edge, 0, len(byKey))
	for _, e := range byKey {
		out = append(out, *e)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Client != out[j].Client {
			return out[i].Client < out[j].Client
		}
		return out[i].Server < out[j].Server
	})
	return out, nil
}

// Topology returns the service map over [start, end].
func (a *Analyser) Topology(ctx context.Context, start, end time.Time) (*Topology, error) {
	edges, err := a.edges(ctx, start, end)
	if err != nil {
		return nil, err
	}
	services, err := a.figures(ctx, "skytrail_service_", []string{"service"}, "", true, start, end)
	if err != nil {
		return nil, err
	}
	virtual, err := a.figures(ctx, "skytrail_edge_client_", []string{"server", "server_type"}, `server_type!="service"`, false, start, end)
	if err != nil {
		return nil, err
	}
	nodes := map[string]*Node{}
	add := func(name, typ, system string) {
		n := nodes[name]
		if n == nil {
			n = &Node{Name: name, Type: typ, System: system}
			nodes[name] = n
		}
		if n.Type != red.NodeService && typ == red.NodeService {
			n.Type = typ // a name both called and instrumented is a service
		}
	}
	for _, e := range edges {
		add(e.Client, e.ClientType, "")
		sys := ""
		if e.ServerType != red.NodeService {
			sys = e.System
		}
		add(e.Server, e.ServerType, sys)
		if e.ClientType == red.NodeMQ {
			nodes[e.Client].System = e.System
		}
	}
	for name := range services {
		add(name, red.NodeService, "")
	}
	t := &Topology{Start: start, End: end, Edges: edges, Nodes: make([]Node, 0, len(nodes))}
	for _, n := range nodes {
		switch n.Type {
		case red.NodeService:
			n.Figures = services[n.Name]
		case red.NodeUser:
		default:
			n.Figures = virtual[n.Name+"\x00"+n.Type]
		}
		t.Nodes = append(t.Nodes, *n)
	}
	sort.Slice(t.Nodes, func(i, j int) bool { return t.Nodes[i].Name < t.Nodes[j].Name })
	return t, nil
}
