package main

import (
	"flag"
	"time"

	"github.com/skytrail/skytrail/internal/cluster"
)

// clusterFlags defines --peers and --ruler (docs/cluster.md).
func clusterFlags(fs *flag.FlagSet, c *cluster.Config) {
	fs.StringVar(&c.Peers, "peers", "", "every SkyTrail node's OTLP gRPC address, this one's included: host:port,host:port,... or dns+name:port (re-resolved every --peers-refresh); spans are routed to the node owning their trace ID (empty: one node)")
	fs.StringVar(&c.Self, "peer-self", "", "this node's entry in --peers (default: the entry on --otlp-grpc's port whose host is one of this machine's addresses)")
	fs.DurationVar(&c.Refresh, "peers-refresh", 5*time.Second, "how often --peers' DNS name is resolved again and peers marked down are checked and restored")
	fs.DurationVar(&c.Timeout, "peer-timeout", 5*time.Second, "longest wait for a peer to acknowledge forwarded spans; a slower or failing peer's traces go to the next node")
	fs.StringVar(&c.Token, "peer-token", "", "bearer token sent to peers (their OTLP ingest token), when --ingest-tokens are set and clients' own tokens are not to be passed on")
	fs.BoolVar(&c.Ruler, "ruler", false, "with --peers: this node evaluates the alarm rules and sends notifications; exactly one node should (without --peers, a node always does)")
	fs.StringVar(&c.RulerURL, "ruler-url", "", "with --peers, on the nodes without --ruler: the ruler's query API (such as http://skytrail-0:8080), where their alerts API is forwarded")
}
