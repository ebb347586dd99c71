package analysis

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/skytrail/skytrail/internal/analysis/instances"
	"github.com/skytrail/skytrail/internal/analysis/red"
	"github.com/skytrail/skytrail/internal/analysis/servicemap"
	"github.com/skytrail/skytrail/internal/pipeline"
	"github.com/skytrail/skytrail/internal/storage/metricstore"
)

// Overflow is the name figures are counted under once a cap is reached.
const Overflow = red.Overflow

// Analyser computes metrics, the service map and the instance registry
// from every span. It is a pipeline.TracesConsumer and, for SkyWalking's
// keep-alives, a pipeline.HeartbeatConsumer.
type Analyser struct {
	cfg      Config
	store    *metricstore.Store
	registry *instances.Registry
	log      *slog.Logger
	now      func() time.Time
	metrics  *metrics
	// cache holds finished minutes' figures (minutecache.go); nil: none.
	cache *figureCache

	// tickMu makes ticks (the background one, Flush) take turns: each
	// writes the minutes and totals it took, in order.
	tickMu sync.Mutex

	mu       sync.Mutex // guards everything below
	minutes  *red.Minutes
	joiner   *servicemap.Joiner
	services map[string]*service
	rotated  time.Time
	swept    time.Time
	// registryOverflow is the registry's overflow count last reported.
	registryOverflow uint64
	// unwritten holds minutes the metric store refused (a full disk), oldest
	// first, for the next tick to write again.
	unwritten []*red.Window
	// writing holds the minutes a tick is writing, until they are committed
	// (or kept as unwritten): the live view serves them meanwhile.
	writing []*red.Window
	// countersMs is when the running totals were last written (Unix ms);
	// the live view serves their values since.
	countersMs int64
	// snapshot is reused to copy the totals for writing.
	snapshot []red.CounterSample

	stop chan struct{}
	done chan struct{}
}

// service is what the analysis remembers about one service between minutes:
// the endpoints and instances under its caps.
type service struct {
	name      string
	apdexT    float64
	endpoints map[string]int64 // name -> last minute seen (Unix ms)
	instances map[string]int64
	// endpointOverflow counts entry spans over the endpoint cap since the
	// last tick reported them.
	endpointOverflow int
}

var (
	_ pipeline.TracesConsumer    = (*Analyser)(nil)
	_ pipeline.HeartbeatConsumer = (*Analyser)(nil)
)

// New returns an analyser writing into store; Start starts its background
// flushing.
//
// The store serves, besides what was written to it, what the analyser holds
// in memory and has not written yet (the open minutes, the totals since
// their last write), so figures show as soon as spans are counted.
func New(cfg Config, store *metricstore.Store) *Analyser {
	cfg.defaults()
	a := &Analyser{
		cfg:      cfg,
		store:    store,
		registry: instances.New(cfg.Instances),
		log:      cfg.Logger.With("component", "analysis"),
		now:      cfg.Now,
		metrics:  newMetrics(cfg.Registerer),
		minutes:  red.NewMinutes(red.NewTotals(cfg.MaxEdges)),
		joiner:   servicemap.NewJoiner(cfg.MaxWaitingSpans),
		services: map[string]*service{},
		cache:    newFigureCache(),
	}
	if store != nil {
		store.AddSource(live{a})
		store.ServeClassic(red.CounterHistograms()...)
	}
	return a
}

// CounterInterval is how often the running totals are written (Config,
// defaults applied): the write-ahead log checkpoints that often.
func (a *Analyser) CounterInterval() time.Duration { return a.cfg.CounterInterval }

// Registry is the instance registry the analyser feeds.
func (a *Analyser) Registry() *instances.Registry { return a.registry }

// Start loads the saved instance registry and starts writing figures in the
// background.
func (a *Analyser) Start(context.Context) error {
	if a.cfg.RegistryFile != "" {
		if err := a.registry.Load(a.cfg.RegistryFile); err != nil {
			return err
		}
	}
	a.mu.Lock()
	now := a.now()
	a.rotated, a.swept = now, now
	if a.store != nil {
		// After a restart, the minutes the process before wrote are not
		// written again: their samples would land on its.
		if t := a.store.MaxTime(); t > 0 {
			a.minutes.AssumeWritten(min(t, now.UnixMilli()))
		}
	}
	a.mu.Unlock()
	a.stop, a.done = make(chan struct{}), make(chan struct{})
	go a.run()
	return nil
}

// Shutdown stops the background work and writes everything still in
// memory, waiting joins resolved as unmatched.
func (a *Analyser) Shutdown(ctx context.Context) error {
	if a.stop != nil {
		close(a.stop)
		select {
		case <-a.done:
		case <-ctx.Done():
			return fmt.Errorf("stopping the analysis: %w", ctx.Err())
		}
	}
	return a.Flush(ctx)
}

func (a *Analyser) run() {
	defer close(a.done)
	t := time.NewTicker(tickEvery)
	defer t.Stop()
	failing := false
	for {
		select {
		case <-a.stop:
			return
		case <-t.C:
			// Once per failing streak: a full disk fails every tick until
			// space is freed, and the store logs the disk's state itself.
			err := a.tick(context.Background(), false)
			switch {
			case err != nil && !failing:
				a.log.Warn("writing analysis figures failed; the minutes are kept and written again on the next tick", "err", err)
			case err != nil:
				a.log.Debug("writing analysis figures failed again", "err", err)
			case failing:
				a.log.Info("analysis figures written again")
			}
			failing = err != nil
		}
	}
}

// tickEvery is how often the background tick runs.
const tickEvery = 5 * time.Second

// Flush resolves every waiting join as unmatched and writes all open
// minutes and the running totals now. Spans arriving later for those
// minutes count as late.
func (a *Analyser) Flush(ctx context.Context) error {
	return a.tick(ctx, true)
}

// tick ages the joins, writes the minutes that are due and, every
// CounterInterval, the running totals, and hourly forgets idle endpoints,
// instances and totals.
func (a *Analyser) tick(ctx context.Context, all bool) error {
	a.tickMu.Lock()
	defer a.tickMu.Unlock()
	now := a.now()
	a.mu.Lock()
	nowMs := now.UnixMilli()
	rotations := 0
	if all {
		rotations = 2
	} else if now.Sub(a.rotated) >= a.cfg.JoinGrace/2 {
		rotations = 1
	}
	for range rotations {
		a.joiner.Rotate(
			func(c servicemap.Call) { a.resolveCall(c, nowMs) },
			func(e servicemap.Entry) { a.resolveEntry(e, nowMs) },
		)
		a.rotated = now
	}
	due := a.minutes.Due(nowMs, a.cfg.FlushDelay.Milliseconds(), all)
	if len(a.unwritten) > 0 {
		due = append(a.unwritten, due...)
		a.unwritten = nil
	}
	// Oldest first: the TSDB takes a series' samples in order.
	sort.Slice(due, func(i, j int) bool { return due[i].End < due[j].End })
	a.writing = due
	var counters []red.CounterSample
	// Half a tick's slack: a tick a millisecond early must not wait a
	// whole tick more.
	if all || (!a.cfg.CheckpointedTotals && nowMs-a.countersMs >= (a.cfg.CounterInterval-tickEvery/2).Milliseconds()) {
		counters = a.minutes.Totals.Snapshot(a.snapshot[:0])
	}
	if now.Sub(a.swept) >= a.cfg.IdleExpiry {
		cutoff := nowMs - a.cfg.IdleExpiry.Milliseconds()
		a.sweep(cutoff)
		a.minutes.Expire(cutoff)
		a.registry.Prune(now)
		a.swept = now
	}
	a.metrics.spansLate.Add(float64(a.minutes.Late))
	a.minutes.Late = 0
	a.reportSizes()
	a.mu.Unlock()

	var errs []error
	if len(due) > 0 {
		err := a.write(ctx, due)
		a.mu.Lock()
		a.writing = nil
		if err != nil {
			a.keepUnwritten(due)
			errs = append(errs, err)
		}
		a.mu.Unlock()
		if a.cfg.RegistryFile != "" {
			if err := a.registry.Save(a.cfg.RegistryFile); err != nil {
				errs = append(errs, err)
			}
		}
	}
	if len(counters) > 0 {
		if err := a.commitTotals(ctx, counters, nowMs); err != nil {
			errs = append(errs, err)
		}
		a.mu.Lock()
		clear(counters) // let go of the copies' buckets
		a.snapshot = counters[:0]
		a.mu.Unlock()
	}
	return errors.Join(errs...)
}

// commitTotals writes counters, taken at atMs, and on success marks them
// written.
func (a *Analyser) commitTotals(ctx context.Context, counters []red.CounterSample, atMs int64) error {
	err := a.writeCounters(ctx, counters, atMs)
	a.mu.Lock()
	defer a.mu.Unlock()
	if err == nil {
		a.countersMs = max(a.countersMs, atMs)
		for i := range counters {
			if t := counters[i].Total; t.FirstWrittenMs == 0 {
				t.FirstWrittenMs = atMs
			}
		}
	}
	return err
}

// Totals is a copy of the running totals at one moment, for WriteTotals.
type Totals struct {
	counters []red.CounterSample
	atMs     int64
}

// SnapshotTotals copies the running totals as they are now: everything
// counted so far and nothing after. It only copies memory, so the
// write-ahead log's checkpoint takes it at the moment its sequence number
// stands for, with appends waiting.
func (a *Analyser) SnapshotTotals() Totals {
	a.mu.Lock()
	defer a.mu.Unlock()
	return Totals{counters: a.minutes.Totals.Snapshot(nil), atMs: a.now().UnixMilli()}
}

// WriteTotals writes a snapshot of the running totals to the metric store.
// With Config.CheckpointedTotals these are the only writes of the totals
// besides Flush, so what the store holds of them is exactly the spans
// before a checkpoint, and replaying the log's records after it counts each
// span once.
func (a *Analyser) WriteTotals(ctx context.Context, t Totals) error {
	if len(t.counters) == 0 {
		return nil
	}
	a.tickMu.Lock() // after the minutes a tick is writing: samples in order
	defer a.tickMu.Unlock()
	return a.commitTotals(ctx, t.counters, t.atMs)
}

// writeCounters writes the running totals, stamped atMs, in one
// transaction. A failed write is not kept: the next one, a CounterInterval
// later, writes the totals as they are then, losing no call.
func (a *Analyser) writeCounters(ctx context.Context, counters []red.CounterSample, atMs int64) error {
	if err := a.store.Writable(); err != nil {
		a.metrics.flushErrors.Inc()
		return fmt.Errorf("writing the running totals: %w", err)
	}
	start := time.Now()
	defer func() { a.store.ObserveWrite(time.Since(start)) }()
	app := a.store.Appender(ctx)
	_, refused, err := red.AppendCounters(app, counters, atMs)
	if refused > 0 {
		a.metrics.samplesRefused.Add(float64(refused))
	}
	if err != nil {
		a.metrics.flushErrors.Inc()
		_ = app.Rollback()
		return fmt.Errorf("writing the running totals: %w", err)
	}
	if err := app.Commit(); err != nil {
		a.metrics.flushErrors.Inc()
		return fmt.Errorf("committing the running totals: %w", err)
	}
	return nil
}

// maxUnwritten is how many minutes of figures the analysis holds while the
// metric store refuses them: an hour of a full disk. Each is as large as a
// minute the analysis keeps open anyway (bounded by the caps in Config).
const maxUnwritten = 60

// keepUnwritten holds minutes whose write failed for the next tick, the
// newest maxUnwritten of them; older ones are dropped and counted. The
// caller holds a.mu.
func (a *Analyser) keepUnwritten(due []*red.Window) {
	all := append(due, a.unwritten...)
	sort.Slice(all, func(i, j int) bool { return all[i].End < all[j].End })
	if n := len(all) - maxUnwritten; n > 0 {
		a.metrics.minutesDropped.Add(float64(n))
		a.log.Warn("dropping analysis figures the metric store refused for too long", "minutes", n, "oldest", minute(all[0]))
		all = append([]*red.Window(nil), all[n:]...)
	}
	a.unwritten = all
}

// write writes due, sorted oldest minute first, in one transaction, or
// nothing. The live view reads due meanwhile: write does not change it.
func (a *Analyser) write(ctx context.Context, due []*red.Window) error {
	if err := a.store.Writable(); err != nil {
		a.metrics.flushErrors.Inc()
		return fmt.Errorf("writing the figures of the minutes ending %s to %s: %w", minute(due[0]), minute(due[len(due)-1]), err)
	}
	start := time.Now()
	defer func() { a.store.ObserveWrite(time.Since(start)) }()
	app := a.store.Appender(ctx)
	for _, w := range due {
		_, refused, err := w.Append(app)
		if refused > 0 {
			a.metrics.samplesRefused.Add(float64(refused))
		}
		if err != nil {
			a.metrics.flushErrors.Inc()
			_ = app.Rollback()
			return fmt.Errorf("writing the figures of the minute ending %s: %w", minute(w), err)
		}
	}
	if err := app.Commit(); err != nil {
		a.metrics.flushErrors.Inc()
		return fmt.Errorf("committing analysis figures: %w", err)
	}
	return nil
}

func minute(w *red.Window) string { return time.UnixMilli(w.End).UTC().Format(time.RFC3339) }

func (a *Analyser) sweep(beforeMs int64) {
	for _, s := range a.services {
		for k, last := range s.endpoints {
			if last < beforeMs {
				delete(s.endpoints, k)
			}
		}
		for k, last := range s.instances {
			if last < beforeMs {
				delete(s.instances, k)
			}
		}
	}
}

func (a *Analyser) reportSizes() {
	a.metrics.waitingSpans.Set(float64(a.joiner.Len()))
	var eps, insts int
	for _, s := range a.services {
		eps += len(s.endpoints)
		insts += len(s.instances)
	}
	a.metrics.trackedSeries.WithLabelValues("service").Set(float64(len(a.services)))
	a.metrics.trackedSeries.WithLabelValues("endpoint").Set(float64(eps))
	a.metrics.trackedSeries.WithLabelValues("instance").Set(float64(insts))
	a.metrics.trackedSeries.WithLabelValues("registry_instance").Set(float64(a.registry.Len()))
	a.metrics.trackedSeries.WithLabelValues("total").Set(float64(a.minutes.Totals.Len()))
	a.metrics.overflow.WithLabelValues("join").Add(float64(a.joiner.Overflow))
	a.joiner.Overflow = 0
	if n := a.registry.Overflow(); n > a.registryOverflow {
		a.metrics.overflow.WithLabelValues("registry").Add(float64(n - a.registryOverflow))
		a.registryOverflow = n
	}
	for _, s := range a.services {
		if s.endpointOverflow > 0 {
			a.metrics.endpointOverflow.WithLabelValues(s.name).Add(float64(s.endpointOverflow))
			a.metrics.overflow.WithLabelValues("endpoint").Add(float64(s.endpointOverflow))
			s.endpointOverflow = 0
		}
	}
}

// ConsumeHeartbeat records a SkyWalking keep-alive or properties report.
func (a *Analyser) ConsumeHeartbeat(ctx context.Context, hb pipeline.Heartbeat) error {
	return a.registry.ConsumeHeartbeat(ctx, hb)
}

// batchCounts are counted per batch and added to /metrics once.
type batchCounts struct {
	spans, skipped, edgeOverflow, instanceOverflow, serviceOverflow int
}

// ConsumeTraces counts every span into the open minute it started in. It
// copies nothing but the names it keeps and does no I/O.
func (a *Analyser) ConsumeTraces(_ context.Context, td pipeline.Traces) error {
	now := a.now()
	nowMs := now.UnixMilli()
	var counts batchCounts
	rss := td.ResourceSpans()
	a.mu.Lock()
	for i := 0; i < rss.Len(); i++ {
		if td.Resources[i].Probe {
			continue // doctor's probe: no service's traffic
		}
		rs := rss.At(i)
		svc, instance := a.resource(rs.Resource(), td.Resources[i], now, &counts)
		ilss := rs.ScopeSpans()
		for j := 0; j < ilss.Len(); j++ {
			spans := ilss.At(j).Spans()
			for k := 0; k < spans.Len(); k++ {
				a.span(spans.At(k), svc, instance, nowMs, &counts)
			}
		}
	}
	a.mu.Unlock()
	a.metrics.spansAnalysed.Add(float64(counts.spans))
	if counts.skipped > 0 {
		a.metrics.spansSkipped.Add(float64(counts.skipped))
	}
	if counts.edgeOverflow > 0 {
		a.metrics.overflow.WithLabelValues("edge").Add(float64(counts.edgeOverflow))
	}
	if counts.instanceOverflow > 0 {
		a.metrics.overflow.WithLabelValues("instance").Add(float64(counts.instanceOverflow))
	}
	if counts.serviceOverflow > 0 {
		a.metrics.overflow.WithLabelValues("service").Add(float64(counts.serviceOverflow))
	}
	return nil
}

// resource finds the analysis' record of the service a resource belongs to
// and records its instance's sign of life.
func (a *Analyser) resource(res pcommon.Resource, id pipeline.Resource, now time.Time, counts *batchCounts) (*service, string) {
	attrs := res.Attributes()
	name, instance := id.Service, id.Instance
	svc := a.services[name]
	if svc == nil {
		if len(a.services) >= a.cfg.MaxServices {
			counts.serviceOverflow++
			name = Overflow
			svc = a.services[name]
		}
		if svc == nil {
			apdexT := a.cfg.ApdexThreshold
			if t, ok := a.cfg.ApdexThresholds[name]; ok {
				apdexT = t
			}
			svc = &service{name: name, apdexT: apdexT.Seconds(), endpoints: map[string]int64{}, instances: map[string]int64{}}
			a.services[name] = svc
		}
	}
	if instance != "" && svc.name != Overflow && !a.registry.Touch(name, instance, now) {
		// First sight: register it with what the resource says about it.
		props := make(map[string]string, attrs.Len())
		for k, v := range attrs.All() {
			props[k] = v.AsString()
		}
		// Service and instance are not empty, the only error there is.
		_ = a.registry.ConsumeHeartbeat(context.Background(), pipeline.Heartbeat{
			Service: name, Instance: instance, Properties: props, Protocol: protocolOf(attrs), At: now,
		})
	}
	return svc, instance
}

// protocolOf tells SkyWalking-converted resources from OTLP ones.
func protocolOf(attrs pcommon.Map) string {
	if v, ok := attrs.Get("telemetry.sdk.name"); ok && v.Str() == "skywalking" {
		return "skywalking"
	}
	return "otlp"
}

// span counts one span.
func (a *Analyser) span(span ptrace.Span, svc *service, instance string, nowMs int64, counts *batchCounts) {
	counts.spans++
	kind := span.Kind()
	root := span.ParentSpanID().IsEmpty()
	if !root && (kind == ptrace.SpanKindInternal || kind == ptrace.SpanKindUnspecified) {
		return // an inner span: neither an entry nor a call out
	}
	var attrs servicemap.Attrs
	attrs.Read(span.Attributes())
	if attrs.SkipAnalysis {
		counts.skipped++
		return
	}
	startNs, endNs := span.StartTimestamp(), span.EndTimestamp()
	seconds := 0.0
	if endNs > startNs {
		seconds = float64(endNs-startNs) / 1e9
	}
	startMs := int64(startNs) / 1e6
	failed := span.Status().Code() == ptrace.StatusCodeError
	w := a.minutes.For(startMs, nowMs)

	if kind == ptrace.SpanKindClient || kind == ptrace.SpanKindProducer {
		target := attrs.Client(kind == ptrace.SpanKindProducer)
		call := servicemap.Call{Service: svc.name, Target: target, StartMs: startMs, Seconds: seconds, Failed: failed}
		if !target.Join {
			a.resolveCall(call, nowMs)
			return
		}
		entry, matched, full := a.joiner.AddCall(spanID(span.SpanID()), call)
		switch {
		case matched:
			a.joined(call, entry, nowMs)
		case full:
			a.resolveCall(call, nowMs)
		}
		return
	}

	if !root && !remoteParent(span, &attrs) {
		return // a server span under a local span: not where a request entered
	}
	apdexT := svc.apdexT
	w.Service(svc.name).Observe(seconds, failed, apdexT)
	if instance != "" {
		w.Instance(red.Pair{Service: svc.name, Name: admit(svc.instances, instance, a.cfg.MaxInstancesPerService, startMs, &counts.instanceOverflow)}).Observe(seconds, failed, apdexT)
	}
	endpoint := admit(svc.endpoints, span.Name(), a.cfg.MaxEndpointsPerService, startMs, &svc.endpointOverflow)
	w.Endpoint(red.Pair{Service: svc.name, Name: endpoint}).Observe(seconds, failed, apdexT)

	if attrs.SWRefNetworkAddress != "" {
		a.joiner.AddAlias(attrs.SWRefNetworkAddress, svc.name)
	}
	entry := servicemap.Entry{Service: svc.name, FallbackClient: attrs.SWRefParentService, StartMs: startMs, Seconds: seconds, Failed: failed}
	if kind == ptrace.SpanKindConsumer {
		if queue, ok := attrs.Consumer(); ok {
			a.edge(w, false, red.Edge{Client: queue.Name, Server: svc.name, ClientType: red.NodeMQ, ServerType: red.NodeService, System: queue.System}, seconds, failed, counts)
			return
		}
	}
	if root {
		a.resolveEntry(entry, nowMs)
		return
	}
	call, matched, full := a.joiner.AddEntry(spanID(span.ParentSpanID()), entry)
	switch {
	case matched:
		a.joined(call, entry, nowMs)
	case full:
		a.resolveEntry(entry, nowMs)
	}
}

// remoteParent tells whether a server span's parent ran in another process.
// OTLP carries the answer in the span flags when the SDK knows it; a
// SkyWalking entry span has a cross-process ref exactly when its parent is
// remote. Without either, a server span is taken as an entry.
func remoteParent(span ptrace.Span, attrs *servicemap.Attrs) bool {
	const hasIsRemote, isRemote = 0x100, 0x200 // SpanFlags in trace.proto
	if f := span.Flags(); f&hasIsRemote != 0 {
		return f&isRemote != 0
	}
	if attrs.SWSpan {
		return attrs.SWRef
	}
	return true
}

// admit returns name if the set has room for it (or knows it already),
// else Overflow, counting the overflow.
func admit(set map[string]int64, name string, limit int, atMs int64, overflowed *int) string {
	if _, ok := set[name]; ok || len(set) < limit {
		set[name] = atMs
		return name
	}
	*overflowed++
	return Overflow
}

// joined records an edge between two instrumented services.
func (a *Analyser) joined(c servicemap.Call, e servicemap.Entry, nowMs int64) {
	k := red.Edge{Client: c.Service, Server: e.Service, ClientType: red.NodeService, ServerType: red.NodeService}
	var counts batchCounts
	a.edge(a.minutes.For(c.StartMs, nowMs), true, k, c.Seconds, c.Failed, &counts)
	a.edge(a.minutes.For(e.StartMs, nowMs), false, k, e.Seconds, e.Failed, &counts)
	if counts.edgeOverflow > 0 {
		a.metrics.overflow.WithLabelValues("edge").Add(float64(counts.edgeOverflow))
	}
}

// resolveCall records a client span no server span answered: an edge to a
// virtual node, or to the service a SkyWalking agent reached at that address.
func (a *Analyser) resolveCall(c servicemap.Call, nowMs int64) {
	k := red.Edge{Client: c.Service, Server: c.Target.Name, ClientType: red.NodeService, ServerType: c.Target.Type, System: c.Target.System}
	if c.Target.Join {
		if svc, ok := a.joiner.Alias(c.Target.Name); ok {
			k = red.Edge{Client: c.Service, Server: svc, ClientType: red.NodeService, ServerType: red.NodeService}
		}
	}
	var counts batchCounts
	a.edge(a.minutes.For(c.StartMs, nowMs), true, k, c.Seconds, c.Failed, &counts)
	if counts.edgeOverflow > 0 {
		a.metrics.overflow.WithLabelValues("edge").Add(float64(counts.edgeOverflow))
	}
}

// resolveEntry records a server span with no known caller: under the
// "user" node, or under the caller a SkyWalking ref names.
func (a *Analyser) resolveEntry(e servicemap.Entry, nowMs int64) {
	k := red.Edge{Client: "user", Server: e.Service, ClientType: red.NodeUser, ServerType: red.NodeService}
	if e.FallbackClient != "" {
		k.Client, k.ClientType = e.FallbackClient, red.NodeService
	}
	var counts batchCounts
	a.edge(a.minutes.For(e.StartMs, nowMs), false, k, e.Seconds, e.Failed, &counts)
	if counts.edgeOverflow > 0 {
		a.metrics.overflow.WithLabelValues("edge").Add(float64(counts.edgeOverflow))
	}
}

// edge counts one call on an edge, as seen by its client or its server,
// within the per-minute edge cap.
func (a *Analyser) edge(w *red.Window, client bool, k red.Edge, seconds float64, failed bool, counts *batchCounts) {
	m := w.ServerEdges
	if client {
		m = w.ClientEdges
	}
	if _, ok := m[k]; !ok && len(m) >= a.cfg.MaxEdges {
		counts.edgeOverflow++
		k = red.Edge{Client: Overflow, Server: Overflow, ClientType: red.NodeService, ServerType: red.NodeService}
	}
	if client {
		w.ClientEdge(k).Observe(seconds, failed, 0)
	} else {
		w.ServerEdge(k).Observe(seconds, failed, 0)
	}
}

func spanID(id pcommon.SpanID) uint64 { return binary.BigEndian.Uint64(id[:]) }
