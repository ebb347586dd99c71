// Package integrity answers "why does my service have no traces?" from the
// data the server receives: it keeps a minimal view of every recent span,
// judges each trace a grace period after its last span arrived, and turns
// what it sees (parents that never arrive, calls whose server span starts a
// new trace, roots that are not entries, exit spans without a peer, clock
// skew, silent and duplicate instances, refused data) into findings with a
// remedy in plain words. /api/v1/diagnostics serves them and /metrics
// exports them, so alarms can use them.
package integrity

import (
	"context"
	"encoding/binary"
	"maps"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/skytrail/skytrail/internal/analysis/instances"
	"github.com/skytrail/skytrail/internal/analysis/servicemap"
	"github.com/skytrail/skytrail/internal/pipeline"
)

// Config tunes the analysis. The zero value works.
type Config struct {
	// Grace is how long after a trace's last span arrived it is judged
	// (default 30 s): exporters batch, so a trace's spans arrive spread out.
	Grace time.Duration
	// MaxSpans bounds the spans waiting to be judged (default 100,000,
	// about 20 MB). Past half of it, a shrinking sample of new traces is
	// judged; a trace that does not fit is not judged, and counted.
	MaxSpans int
	// SkewTolerance is how far a child may start outside its cross-process
	// parent before clocks are reported as skewed (default 500 ms).
	SkewTolerance time.Duration
	// SilentAfter is how long an instance that is alive may go without
	// spans before it is reported as having stopped sending (default 5 min).
	SilentAfter time.Duration
	// Window is how long a finding lasts after it was last seen (default
	// 15 min).
	Window time.Duration
	// Registry is the instance registry read for silent and duplicate
	// instances; nil leaves those findings out.
	Registry *instances.Registry
	// Registerer takes the findings' gauges; nil keeps them unregistered.
	Registerer prometheus.Registerer
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

func (c *Config) defaults() {
	if c.Grace <= 0 {
		c.Grace = 30 * time.Second
	}
	if c.MaxSpans <= 0 {
		c.MaxSpans = 100_000
	}
	if c.SkewTolerance <= 0 {
		c.SkewTolerance = 500 * time.Millisecond
	}
	if c.SilentAfter <= 0 {
		c.SilentAfter = 5 * time.Minute
	}
	if c.Window <= 0 {
		c.Window = 15 * time.Minute
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

// span is what judging a trace needs of one span: about 120 bytes, the
// strings shared with every other span of the same resource or peer.
type span struct {
	id, parent uint64
	service    string
	// peer is the address a client span called ("" when it names none, or
	// calls a database, cache or queue that never answers with spans).
	peer string
	// self is the address a server span was reached at (its host:port),
	// learnt as another name of its service.
	self string
	// refService is the caller a SkyWalking entry span's ref names.
	refService   string
	startNs      int64
	endNs        int64
	kind         ptrace.SpanKind
	skywalking   bool // converted from a SkyWalking segment
	parentLocal  bool // the SDK says the parent ran in the same process
	parentRemote bool // ... or in another one
	noPeerAttrs  bool // a client span naming no peer at all
	noResponse   bool // a failed call that never got an answer
}

func (s *span) entry() bool {
	return s.kind == ptrace.SpanKindServer || s.kind == ptrace.SpanKindConsumer
}

func (s *span) exit() bool {
	return s.kind == ptrace.SpanKindClient || s.kind == ptrace.SpanKindProducer
}

// pending is a trace waiting for its grace period to pass.
type pending struct {
	spans     []span
	lastNs    int64 // arrival of its last span, server clock
	truncated bool  // spans were dropped for lack of room: not judged
}

// Analyser is a pipeline.TracesConsumer. ConsumeTraces only copies a few
// fields of each span under a lock; judging runs in the background.
type Analyser struct {
	cfg Config

	mu       sync.Mutex
	traces   map[pcommon.TraceID]*pending
	buffered int
	intern   map[string]string
	// lastSpan is when each service instance last sent a span (unix ns),
	// and lastService when each service did.
	lastSpan    map[instanceKey]int64
	lastService map[string]int64
	dropped     uint64 // spans not buffered since the last judging pass
	// shift halves the share of new traces admitted for judging, by trace
	// ID, while the buffer is over half full: under heavy load a
	// consistent sample of whole traces is judged instead of every trace
	// losing spans. Shares stay right as both sides are sampled alike.
	shift   uint
	scratch []byte

	judge      *judge
	rejections rejections

	stop chan struct{}
	done chan struct{}
}

type instanceKey struct{ service, instance string }

// Bounds on the maps ConsumeTraces fills from client data.
const (
	// maxShift: at most 1 trace in 1024 is left to judge under load.
	maxShift     = 10
	maxInterned  = 100_000
	maxInstances = 100_000
)

// New returns an analyser; Start begins judging.
func New(cfg Config) *Analyser {
	cfg.defaults()
	a := &Analyser{
		cfg:         cfg,
		traces:      map[pcommon.TraceID]*pending{},
		intern:      map[string]string{},
		lastSpan:    map[instanceKey]int64{},
		lastService: map[string]int64{},
		rejections: rejections{
			pending: map[rejectionKey]uint64{},
			clients: map[clientKey]*ClientRejections{},
		},
	}
	a.judge = newJudge(cfg, &a.rejections, newMetrics(cfg.Registerer))
	return a
}

// Grace is the configured grace period.
func (a *Analyser) Grace() time.Duration { return a.cfg.Grace }

// Start judges traces in the background until Shutdown.
func (a *Analyser) Start(context.Context) error {
	a.stop, a.done = make(chan struct{}), make(chan struct{})
	interval := min(max(a.cfg.Grace/4, 50*time.Millisecond), 5*time.Second)
	go func() {
		defer close(a.done)
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-a.stop:
				return
			case <-t.C:
				a.Judge(a.cfg.Now())
			}
		}
	}()
	return nil
}

// Shutdown stops judging. Traces still waiting are not judged: their grace
// period has not passed.
func (a *Analyser) Shutdown(ctx context.Context) error {
	if a.stop == nil {
		return nil
	}
	close(a.stop)
	select {
	case <-a.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// ConsumeTraces keeps what judging needs of each span. It never fails.
func (a *Analyser) ConsumeTraces(_ context.Context, td pipeline.Traces) error {
	nowNs := a.cfg.Now().UnixNano()
	rss := td.ResourceSpans()
	a.mu.Lock()
	defer a.mu.Unlock()
	for i := 0; i < rss.Len(); i++ {
		if td.Resources[i].Probe {
			continue // doctor's probe: no service's traffic
		}
		rs := rss.At(i)
		service, instance, sw := a.resource(rs.Resource(), td.Resources[i])
		if _, ok := a.lastService[service]; ok || len(a.lastService) < maxServices {
			a.lastService[service] = nowNs
		}
		if instance != "" {
			k := instanceKey{service, instance}
			if _, ok := a.lastSpan[k]; ok || len(a.lastSpan) < maxInstances {
				a.lastSpan[k] = nowNs
			}
		}
		ilss := rs.ScopeSpans()
		for j := 0; j < ilss.Len(); j++ {
			spans := ilss.At(j).Spans()
			for k := 0; k < spans.Len(); k++ {
				a.add(spans.At(k), service, sw, nowNs)
			}
		}
	}
	return nil
}

func (a *Analyser) resource(res pcommon.Resource, id pipeline.Resource) (service, instance string, sw bool) {
	service = a.internLocked(id.Service)
	if id.Instance != "" {
		instance = a.internLocked(id.Instance)
	}
	if v, ok := res.Attributes().Get("telemetry.sdk.name"); ok && v.Str() == "skywalking" {
		sw = true
	}
	return service, instance, sw
}

// internLocked shares one copy of a repeated name (services, instances,
// peers) among the spans that carry it.
func (a *Analyser) internLocked(s string) string {
	if v, ok := a.intern[s]; ok {
		return v
	}
	if len(a.intern) >= maxInterned {
		clear(a.intern)
	}
	s = string([]byte(s)) // detach from the request's memory
	a.intern[s] = s
	return s
}

// internBytesLocked is internLocked for a name being built, which costs no
// allocation when the name is known.
func (a *Analyser) internBytesLocked(b []byte) string {
	if v, ok := a.intern[string(b)]; ok {
		return v
	}
	return a.internLocked(string(b))
}

func (a *Analyser) add(ps ptrace.Span, service string, sw bool, nowNs int64) {
	tid := ps.TraceID()
	p := a.traces[tid]
	if p == nil {
		if binary.BigEndian.Uint64(tid[8:]) > math.MaxUint64>>a.shift {
			return // sampled out as a whole trace
		}
		if a.buffered >= a.cfg.MaxSpans {
			a.dropped++
			return
		}
		p = &pending{}
		a.traces[tid] = p
	}
	p.lastNs = nowNs
	if p.truncated {
		a.dropped++
		return
	}
	if a.buffered >= a.cfg.MaxSpans {
		// Judging a trace with spans missing would report them as lost.
		p.truncated = true
		a.buffered -= len(p.spans)
		p.spans = nil
		a.dropped++
		return
	}
	s := span{
		id:         spanID(ps.SpanID()),
		parent:     spanID(ps.ParentSpanID()),
		service:    service,
		startNs:    int64(ps.StartTimestamp()),
		endNs:      int64(ps.EndTimestamp()),
		kind:       ps.Kind(),
		skywalking: sw,
	}
	const hasIsRemote, isRemote = 0x100, 0x200 // SpanFlags in trace.proto
	if f := ps.Flags(); f&hasIsRemote != 0 {
		s.parentRemote = f&isRemote != 0
		s.parentLocal = !s.parentRemote
	}
	if s.exit() || s.entry() {
		a.readAttrs(ps, &s)
	}
	p.spans = append(p.spans, s)
	a.buffered++
}

// readAttrs reads the peer of a client span and the address a server span
// answered at, with the service map's classification of what was called.
func (a *Analyser) readAttrs(ps ptrace.Span, s *span) {
	var attrs servicemap.Attrs
	attrs.Read(ps.Attributes())
	if s.exit() {
		t := attrs.Client(s.kind == ptrace.SpanKindProducer)
		if t.Join && t.Name != "unknown" {
			s.peer = a.internLocked(t.Name)
		}
		s.noPeerAttrs = t.Name == "unknown"
		if ps.Status().Code() == ptrace.StatusCodeError && !answered(ps.Attributes()) {
			s.noResponse = true
		}
		return
	}
	if attrs.SWSpan {
		s.parentRemote = attrs.SWRef
		s.parentLocal = !attrs.SWRef && s.parent != 0
		if attrs.SWRefParentService != "" {
			s.refService = a.internLocked(attrs.SWRefParentService)
		}
		if attrs.SWRefNetworkAddress != "" {
			s.self = a.internLocked(attrs.SWRefNetworkAddress)
		}
		return
	}
	if attrs.ServerAddress != "" && attrs.ServerPort != "" {
		a.scratch = append(append(append(a.scratch[:0], attrs.ServerAddress...), ':'), attrs.ServerPort...)
		s.self = a.internBytesLocked(a.scratch)
	}
}

// answered tells whether a failed call got a response: a status code
// means the server was reached, and so should have a span of its own.
func answered(attrs pcommon.Map) bool {
	for _, k := range []string{"http.response.status_code", "http.status_code", "rpc.grpc.status_code", "status_code"} {
		if _, ok := attrs.Get(k); ok {
			return true
		}
	}
	return false
}

// Judge judges every trace whose grace period has passed by now. The
// background loop calls it; tests may call it to judge at once.
func (a *Analyser) Judge(now time.Time) {
	cutoff := now.Add(-a.cfg.Grace).UnixNano()
	var due []*pending
	var dueIDs []pcommon.TraceID
	a.mu.Lock()
	for id, p := range a.traces {
		if p.lastNs <= cutoff {
			due = append(due, p)
			dueIDs = append(dueIDs, id)
			delete(a.traces, id)
			a.buffered -= len(p.spans)
		}
	}
	dropped := a.dropped
	a.dropped = 0
	pendingTraces := len(a.traces)
	switch {
	case a.buffered > a.cfg.MaxSpans/2 && a.shift < maxShift:
		a.shift++
	case a.buffered < a.cfg.MaxSpans/4 && a.shift > 0:
		a.shift--
	}
	sampled := 1 / float64(uint64(1)<<a.shift)
	lastService := maps.Clone(a.lastService)
	a.mu.Unlock()
	a.judge.run(now, dueIDs, due, dropped, pendingTraces, sampled, a.lastSpanOf, lastService)
}

// SeenServices lists the services that sent spans since the server started
// (doctor's probes left out), sorted.
func (a *Analyser) SeenServices() []string {
	a.mu.Lock()
	out := slices.Collect(maps.Keys(a.lastService))
	a.mu.Unlock()
	slices.Sort(out)
	return out
}

// lastSpanOf is when an instance last sent a span (unix ns), if it has.
func (a *Analyser) lastSpanOf(service, instance string) (int64, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	ns, ok := a.lastSpan[instanceKey{service, instance}]
	return ns, ok
}

func spanID(id pcommon.SpanID) uint64 { return binary.BigEndian.Uint64(id[:]) }
