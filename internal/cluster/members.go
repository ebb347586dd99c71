package cluster

import (
	"context"
	"fmt"
	"net"
	"slices"
	"strings"
)

// dnsPrefix marks a --peers value that is a DNS name re-resolved at every
// refresh, as the OpenTelemetry Collector's load-balancing exporter's DNS
// resolver does: every address it resolves to is a node.
const dnsPrefix = "dns+"

// members is how the node list is found: the static list, or a DNS name.
type members struct {
	static []string // host:port entries as written
	host   string   // dns+host:port
	port   string
}

// parseMembers reads --peers: "host:port,host:port,..." or "dns+name:port".
func parseMembers(spec string) (*members, error) {
	spec = strings.TrimSpace(spec)
	if rest, ok := strings.CutPrefix(spec, dnsPrefix); ok {
		host, port, err := net.SplitHostPort(rest)
		if err != nil || host == "" || port == "" {
			return nil, fmt.Errorf("--peers %q: want dns+name:port, such as dns+skytrail-headless:4317", spec)
		}
		return &members{host: host, port: port}, nil
	}
	m := &members{}
	for _, e := range strings.Split(spec, ",") {
		e = strings.TrimSpace(e)
		if e == "" {
			continue
		}
		if host, port, err := net.SplitHostPort(e); err != nil || host == "" || port == "" {
			return nil, fmt.Errorf("--peers entry %q: want host:port (each node's OTLP gRPC address)", e)
		}
		if !slices.Contains(m.static, e) {
			m.static = append(m.static, e)
		}
	}
	if len(m.static) == 0 {
		return nil, fmt.Errorf("--peers %q names no node", spec)
	}
	slices.Sort(m.static)
	return m, nil
}

// resolve is the node list now, sorted. Every node must name the nodes
// alike for rendezvous hashing to agree: the static list as written, a DNS
// name's addresses as ip:port.
func (m *members) resolve(ctx context.Context) ([]string, error) {
	if m.host == "" {
		return m.static, nil
	}
	addrs, err := net.DefaultResolver.LookupIPAddr(ctx, m.host)
	if err != nil {
		return nil, fmt.Errorf("resolving the peers' DNS name %s: %w", m.host, err)
	}
	out := make([]string, 0, len(addrs))
	for _, a := range addrs {
		e := net.JoinHostPort(a.IP.String(), m.port)
		if !slices.Contains(out, e) {
			out = append(out, e)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("the peers' DNS name %s resolved to no address", m.host)
	}
	slices.Sort(out)
	return out, nil
}

// findSelf is the index of this node in list: the entry equal to self
// when --peer-self is set (for a DNS list, also self resolved to ip:port),
// else the one entry on this node's OTLP gRPC port whose host is one of
// this machine's addresses. -1 when no entry is this node.
func findSelf(ctx context.Context, list []string, self, listenAddr string) (int, error) {
	if self != "" {
		if i := slices.Index(list, self); i >= 0 {
			return i, nil
		}
		if host, port, err := net.SplitHostPort(self); err == nil {
			if ips, err := net.DefaultResolver.LookupIPAddr(ctx, host); err == nil {
				for _, ip := range ips {
					if i := slices.Index(list, net.JoinHostPort(ip.IP.String(), port)); i >= 0 {
						return i, nil
					}
				}
			}
		}
		return -1, nil
	}
	lhost, lport, err := net.SplitHostPort(listenAddr)
	if err != nil || lport == "" || lport == "0" {
		return -1, fmt.Errorf("--peers needs this node's OTLP gRPC address on a fixed port (--otlp-grpc %q), the one its peers send to", listenAddr)
	}
	local, err := localIPs(lhost)
	if err != nil {
		return -1, err
	}
	found := -1
	for i, e := range list {
		host, port, err := net.SplitHostPort(e)
		if err != nil || port != lport {
			continue
		}
		ips, err := net.DefaultResolver.LookupIPAddr(ctx, host)
		if err != nil {
			continue // a peer's name not resolving yet is not this node
		}
		if slices.ContainsFunc(ips, func(ip net.IPAddr) bool { return local[ip.IP.String()] }) {
			if found >= 0 && found != i {
				return -1, fmt.Errorf("--peers entries %s and %s both look like this node: set --peer-self", list[found], e)
			}
			found = i
		}
	}
	return found, nil
}

// localIPs are the addresses this node's OTLP gRPC listener answers on:
// the one it is bound to, or every interface's for a wildcard.
func localIPs(listenHost string) (map[string]bool, error) {
	out := map[string]bool{}
	if ip := net.ParseIP(listenHost); ip != nil && !ip.IsUnspecified() {
		out[ip.String()] = true
		return out, nil
	}
	if listenHost != "" && net.ParseIP(listenHost) == nil { // a name: its addresses
		ips, err := net.LookupIP(listenHost)
		if err != nil {
			return nil, fmt.Errorf("resolving the OTLP gRPC listen host %s: %w", listenHost, err)
		}
		for _, ip := range ips {
			out[ip.String()] = true
		}
		return out, nil
	}
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return nil, fmt.Errorf("listing this machine's addresses to find itself in --peers: %w", err)
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok {
			out[n.IP.String()] = true
		}
	}
	return out, nil
}
