// Package cluster lets several SkyTrail nodes behind a load balancer each
// see whole traces: the Router sends every span to the node that owns its
// trace ID by rendezvous hashing over the --peers list, so service-map
// edges and integrity findings, worked out per trace, are computed on one
// node with all of a trace's spans. It also tells the alerts API of a
// node that is not the --ruler where the ruler is (ruler.go).
package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"

	"github.com/skytrail/skytrail/internal/pipeline"
)

// ForwardedHeader is the gRPC metadata a node puts on the spans it
// forwards to their owner, naming itself: the owner stores them as they
// are, without routing them again, so a batch never loops between nodes
// that disagree for a moment on who is up.
const ForwardedHeader = "skytrail-forwarded-by"

// Config is --peers and what goes with it (docs/cluster.md).
type Config struct {
	// Peers is every node's OTLP gRPC address, this one's included:
	// "host:port,host:port,..." or "dns+name:port" (re-resolved at every
	// refresh). Empty: a single node, no routing.
	Peers string
	// Self is this node's entry in Peers; empty: the entry on ListenAddr's
	// port whose host is one of this machine's addresses.
	Self string
	// ListenAddr is this node's OTLP gRPC listen address (set by the server).
	ListenAddr string
	// Refresh is how often the DNS name is resolved again and peers marked
	// down are checked (gRPC health) and restored (default 5 s).
	Refresh time.Duration
	// Timeout bounds one forward to a peer (default 5 s); a peer slower
	// than that has its spans rerouted.
	Timeout time.Duration
	// Token, when set, is sent to peers as a bearer token: their OTLP
	// ingest token (the server requires it when ingest tokens are set).
	Token string
	// Ruler makes this node the one that evaluates alarm rules; RulerURL,
	// on the others, is the ruler's query API, which their alerts API
	// forwards to (ruler.go).
	Ruler    bool
	RulerURL string

	Registerer prometheus.Registerer
	Logger     *slog.Logger
}

// Enabled tells whether the node runs with peers.
func (c Config) Enabled() bool { return strings.TrimSpace(c.Peers) != "" }

// Router is the pipeline's traces consumer on a node with peers: it keeps
// the spans this node owns, handing them to the node's own consumers
// (storage, analysis, integrity), and forwards the others to their owners
// over OTLP gRPC. ConsumeTraces returns only when the node's own part is
// stored and every peer acknowledged its part, so the client's
// acknowledgement still means "stored".
type Router struct {
	cfg     Config
	log     *slog.Logger
	local   []pipeline.TracesConsumer
	members *members
	metrics *metrics

	view atomic.Pointer[view]
	// peers holds a connection per address ever a member, so a refresh
	// that keeps a member keeps its connection.
	mu    sync.Mutex
	peers map[string]*peer

	stop chan struct{}
	done chan struct{}
}

// view is the membership as of the last refresh.
type view struct {
	hrw   *rendezvous
	self  int     // index of this node in hrw.members, -1 when not listed
	peers []*peer // index-aligned with hrw.members; nil at self
}

type peer struct {
	addr   string
	conn   *grpc.ClientConn
	client ptraceotlp.GRPCClient
	health healthpb.HealthClient
	// down is set when a forward failed, until a refresh finds the peer
	// serving again: its traces go to the next node meanwhile.
	down atomic.Bool
}

// New resolves the members, finds this node among them and starts the
// refresh loop. local are the node's own traces consumers, in order.
func New(cfg Config, local []pipeline.TracesConsumer) (*Router, error) {
	if cfg.Refresh <= 0 {
		cfg.Refresh = 5 * time.Second
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 5 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	m, err := parseMembers(cfg.Peers)
	if err != nil {
		return nil, err
	}
	r := &Router{cfg: cfg, log: cfg.Logger.With("component", "cluster"), local: local, members: m,
		peers: map[string]*peer{}, stop: make(chan struct{}), done: make(chan struct{})}
	r.metrics = newMetrics(cfg.Registerer, r)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	list, err := m.resolve(ctx)
	if err != nil {
		return nil, err
	}
	v, err := r.newView(ctx, list)
	if err != nil {
		r.closePeers()
		return nil, err
	}
	if v.self < 0 && m.host == "" {
		r.closePeers()
		return nil, fmt.Errorf("--peers %s does not list this node (OTLP gRPC on %s): add it, or name it with --peer-self", cfg.Peers, cfg.ListenAddr)
	}
	r.view.Store(v)
	r.logView(v)
	go r.run()
	return r, nil
}

// newView builds the view for list, reusing the connections of members
// already known.
func (r *Router) newView(ctx context.Context, list []string) (*view, error) {
	self, err := findSelf(ctx, list, r.cfg.Self, r.cfg.ListenAddr)
	if err != nil {
		return nil, err
	}
	v := &view{hrw: newRendezvous(list), self: self, peers: make([]*peer, len(list))}
	r.mu.Lock()
	defer r.mu.Unlock()
	for i, addr := range list {
		if i == self {
			continue
		}
		p := r.peers[addr]
		if p == nil {
			if p, err = r.dial(addr); err != nil {
				return nil, err
			}
			r.peers[addr] = p
		}
		v.peers[i] = p
	}
	return v, nil
}

// dial makes a connection that reconnects quickly: a peer restarted is
// back within a refresh or two, not after gRPC's default two minutes of
// backoff.
func (r *Router) dial(addr string) (*peer, error) {
	conn, err := grpc.NewClient(addr,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithConnectParams(grpc.ConnectParams{
			Backoff:           backoff.Config{BaseDelay: 100 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: min(r.cfg.Refresh, 5*time.Second)},
			MinConnectTimeout: min(r.cfg.Timeout, 5*time.Second),
		}))
	if err != nil {
		return nil, fmt.Errorf("connecting to peer %s: %w", addr, err)
	}
	return &peer{addr: addr, conn: conn, client: ptraceotlp.NewGRPCClient(conn), health: healthpb.NewHealthClient(conn)}, nil
}

func (r *Router) logView(v *view) {
	self := "(not listed: forwarding every span)"
	if v.self >= 0 {
		self = v.hrw.members[v.self]
	}
	r.log.Info("cluster membership", "members", v.hrw.members, "self", self, "ruler", r.cfg.Ruler)
}

// run refreshes the membership until Close.
func (r *Router) run() {
	defer close(r.done)
	t := time.NewTicker(r.cfg.Refresh)
	defer t.Stop()
	for {
		select {
		case <-r.stop:
			return
		case <-t.C:
			r.refresh()
		}
	}
}

// refresh resolves the members again (a DNS list) and checks every peer
// marked down: one that answers gRPC health as serving takes its traces
// back.
func (r *Router) refresh() {
	ctx, cancel := context.WithTimeout(context.Background(), r.cfg.Refresh)
	defer cancel()
	v := r.view.Load()
	if r.members.host != "" {
		list, err := r.members.resolve(ctx)
		if err != nil {
			r.log.Warn("cluster membership refresh failed; keeping the last members", "err", err)
		} else if !slices.Equal(list, v.hrw.members) {
			nv, err := r.newView(ctx, list)
			if err != nil {
				r.log.Warn("cluster membership refresh failed; keeping the last members", "err", err)
			} else {
				r.view.Store(nv)
				r.logView(nv)
				r.dropUnlisted(nv)
				v = nv
			}
		}
	}
	var wg sync.WaitGroup
	for _, p := range v.peers {
		if p == nil || !p.down.Load() {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			cctx, cancel := context.WithTimeout(ctx, min(r.cfg.Timeout, 2*time.Second))
			defer cancel()
			resp, err := p.health.Check(cctx, &healthpb.HealthCheckRequest{}, grpc.WaitForReady(true))
			if err == nil && resp.GetStatus() == healthpb.HealthCheckResponse_SERVING {
				p.down.Store(false)
				r.log.Info("peer is back: its traces return to it", "peer", p.addr)
			}
		}()
	}
	wg.Wait()
}

// dropUnlisted closes the connections of addresses no longer members.
func (r *Router) dropUnlisted(v *view) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for addr, p := range r.peers {
		if !slices.Contains(v.hrw.members, addr) {
			_ = p.conn.Close()
			delete(r.peers, addr)
		}
	}
}

// Close stops the refresh and closes the peers' connections; call it once
// no request is being routed.
func (r *Router) Close() error {
	close(r.stop)
	<-r.done
	r.closePeers()
	return nil
}

func (r *Router) closePeers() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for addr, p := range r.peers {
		_ = p.conn.Close()
		delete(r.peers, addr)
	}
}

// Owner is the member that owns traceID now (down peers skipped).
func (r *Router) Owner(traceID pcommon.TraceID) string {
	v := r.view.Load()
	i := v.hrw.owner(key(traceID), v.skipDown(nil))
	if i < 0 {
		return ""
	}
	return v.hrw.members[i]
}

// ConsumeTraces routes td: see Router.
func (r *Router) ConsumeTraces(ctx context.Context, td pipeline.Traces) error {
	return r.route(ctx, td, false)
}

// ReplayTraces routes a batch replayed from the write-ahead log after a
// crash. The peers' parts are forwarded again: a peer that had
// acknowledged them before the crash holds them twice (duplicates, never
// a loss), and the node's own part goes to its consumers' ReplayTraces,
// which keep only what they do not hold.
func (r *Router) ReplayTraces(ctx context.Context, td pipeline.Traces) error {
	return r.route(ctx, td, true)
}

func (r *Router) route(ctx context.Context, td pipeline.Traces, replay bool) error {
	v := r.view.Load()
	if forwardedBy(ctx) != "" || (len(v.peers) == 1 && v.self == 0) {
		return r.consumeLocal(ctx, td, replay)
	}
	failed := make([]bool, len(v.peers)) // peers that failed this request
	pending := []pipeline.Traces{td}
	for len(pending) > 0 {
		var next []pipeline.Traces
		for _, part := range pending {
			rerouted, err := r.routeOnce(ctx, v, part, failed, replay)
			if err != nil {
				return err
			}
			next = append(next, rerouted...)
		}
		pending = next
	}
	return nil
}

// routeOnce splits td by owner among the members neither down nor failed
// for this request, stores this node's part and forwards the others in
// parallel. It returns the parts whose peer failed (now marked in failed,
// to go to the next member in rendezvous order), or an error when this
// node's own part could not be stored or no member is left.
func (r *Router) routeOnce(ctx context.Context, v *view, td pipeline.Traces, failed []bool, replay bool) ([]pipeline.Traces, error) {
	away := make([]int, len(v.peers))
	parts, err := split(v, &td, v.skipDown(failed), away)
	if err != nil {
		return nil, err
	}
	for m, n := range away {
		if n > 0 {
			// Spans of a peer down, or failed for this request, sent to
			// the next node in rendezvous order.
			r.metrics.rerouted.WithLabelValues(v.hrw.members[m]).Add(float64(n))
		}
	}
	errs := make([]error, len(parts))
	var wg sync.WaitGroup
	for i, part := range parts {
		if part.spans == 0 {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = r.forward(ctx, v, v.peers[part.member], part.td)
		}()
	}
	var localErr error
	if td.SpanCount() > 0 {
		localErr = r.consumeLocal(ctx, td, replay)
	}
	wg.Wait()
	if localErr != nil {
		return nil, localErr
	}
	var rerouted []pipeline.Traces
	for i, part := range parts {
		if errs[i] == nil {
			continue
		}
		if ctx.Err() != nil {
			// The client stopped waiting: not the peer's fault.
			return nil, &pipeline.Error{Reason: pipeline.Abandoned, Msg: fmt.Sprintf("the client stopped waiting while %d spans were forwarded to peer %s: %v", part.spans, part.peer, ctx.Err())}
		}
		p := v.peers[part.member]
		failed[part.member] = true
		if !p.down.Swap(true) {
			r.log.Warn("peer failed: its traces go to the next node until the next refresh finds it serving", "peer", p.addr, "err", errs[i])
		}
		r.metrics.failures.WithLabelValues(p.addr).Inc()
		rerouted = append(rerouted, pipeline.TracesOf(part.td))
	}
	return rerouted, nil
}

// consumeLocal hands td to this node's consumers in order, as the pipeline
// would without peers.
func (r *Router) consumeLocal(ctx context.Context, td pipeline.Traces, replay bool) error {
	for _, c := range r.local {
		var err error
		if rp, ok := c.(pipeline.TracesReplayer); ok && replay {
			err = rp.ReplayTraces(ctx, td)
		} else {
			err = c.ConsumeTraces(ctx, td)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// forward sends td to p with the forwarded marker, within the timeout.
func (r *Router) forward(ctx context.Context, v *view, p *peer, td ptrace.Traces) error {
	self := "unlisted"
	if v.self >= 0 {
		self = v.hrw.members[v.self]
	}
	md := metadata.Pairs(ForwardedHeader, self)
	if r.cfg.Token != "" {
		md.Set("authorization", "Bearer "+r.cfg.Token)
	}
	ctx, cancel := context.WithTimeout(metadata.NewOutgoingContext(ctx, md), r.cfg.Timeout)
	defer cancel()
	n := td.SpanCount()
	resp, err := p.client.Export(ctx, ptraceotlp.NewExportRequestFromTraces(td))
	if err != nil {
		return fmt.Errorf("forwarding %d spans to peer %s: %w", n, p.addr, err)
	}
	r.metrics.forwarded.WithLabelValues(p.addr).Add(float64(n))
	if ps := resp.PartialSuccess(); ps.RejectedSpans() > 0 {
		// The peer judged them invalid, as any node would: not rerouted.
		r.metrics.refused.WithLabelValues(p.addr).Add(float64(ps.RejectedSpans()))
		r.log.Warn("peer refused some forwarded spans as invalid", "peer", p.addr, "spans", ps.RejectedSpans(), "reason", ps.ErrorMessage())
	}
	return nil
}

// forwardedBy is the node that forwarded the request in ctx, "" when it
// came from a client.
func forwardedBy(ctx context.Context) string {
	md, ok := metadata.FromIncomingContext(ctx)
	if !ok {
		return ""
	}
	if v := md.Get(ForwardedHeader); len(v) > 0 {
		return cmpOr(v[0], "unknown")
	}
	return ""
}

// skipDown excludes the peers marked down and those in failed (may be
// nil); nil when it excludes none, so owners are worked out once.
func (v *view) skipDown(failed []bool) func(int) bool {
	excluded := false
	for i, p := range v.peers {
		excluded = excluded || (p != nil && (p.down.Load() || (failed != nil && failed[i])))
	}
	if !excluded {
		return nil
	}
	return func(i int) bool {
		if i == v.self {
			return false
		}
		return (failed != nil && failed[i]) || v.peers[i].down.Load()
	}
}

// errNoRoute is the answer when no member is left to take a part: every
// peer failed and this node is not a member (a DNS list without it).
var errNoRoute = errors.New("no SkyTrail node of --peers can take these spans now")

func cmpOr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
