// Package skywalking accepts what SkyWalking agents (go2sky, skywalking-go,
// the Java, Python and Node agents) report, over gRPC (NewGRPCServer, port
// 11800 by convention) and HTTP/JSON (NewHTTPHandler, port 12800), converts
// it with swconv and hands it to the pipeline's consumers.
//
// Errors follow what agents and SDKs retry on: a request the pipeline cannot
// take now is answered ResourceExhausted / 429 (over the in-flight budget) or
// Unavailable / 503 (storage failing) with a retry delay; data that can
// never be stored is answered InvalidArgument / 400 naming what was wrong,
// after everything valid in the same request has been stored; a missing or
// wrong token is Unauthenticated / 401 and nothing from it is stored.
package skywalking

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"google.golang.org/grpc"
	eventv3 "skywalking.apache.org/repo/goapi/collect/event/v3"
	agentv3 "skywalking.apache.org/repo/goapi/collect/language/agent/v3"
	logv3 "skywalking.apache.org/repo/goapi/collect/logging/v3"
	managementv3 "skywalking.apache.org/repo/goapi/collect/management/v3"

	"github.com/skytrail/skytrail/internal/pipeline"
	"github.com/skytrail/skytrail/internal/receiver/skywalking/swconv"
	"github.com/skytrail/skytrail/internal/selfmetrics"
)

// Consumers receive what the agents send. A nil consumer discards its kind of
// data (after validating it).
type Consumers struct {
	Traces     pipeline.TracesConsumer
	Logs       pipeline.LogsConsumer
	Metrics    pipeline.MetricsConsumer
	Heartbeats pipeline.HeartbeatConsumer
}

// Options configure both listeners.
type Options struct {
	// Token, when set, must arrive in the Authentication gRPC metadata / HTTP
	// header of every request (SW_AGENT_AUTHENTICATION on the agents).
	Token string
	// MaxRecvMsgSize bounds one gRPC message or HTTP body, in bytes;
	// 0 means DefaultMaxRecvMsgSize.
	MaxRecvMsgSize int
	// Logger receives warnings about data rejected on agents' long-lived
	// streams, at most one every RejectLogInterval; nil means slog.Default().
	Logger *slog.Logger
	// GRPCServerOptions are added to the gRPC server's own, such as a stats
	// handler that attributes refused calls to the agents that made them.
	GRPCServerOptions []grpc.ServerOption
}

// RejectLogInterval is the least time between two warnings about rejected
// stream data: enough to tell an operator which agent sends what, without a
// line per segment.
const RejectLogInterval = 10 * time.Second

// DefaultMaxRecvMsgSize is the largest message accepted when Options leave it
// unset: far above any segment an agent builds, low enough that a few
// concurrent ones cannot exhaust memory.
const DefaultMaxRecvMsgSize = 16 << 20

// retryAfter is what an overloaded answer asks the client to wait.
const retryAfter = time.Second

func (o Options) maxRecvMsgSize() int {
	if o.MaxRecvMsgSize > 0 {
		return o.MaxRecvMsgSize
	}
	return DefaultMaxRecvMsgSize
}

// invalidError is data that can never be stored; the client must not retry.
type invalidError struct{ msg string }

func (e *invalidError) Error() string { return e.msg }

// overloadError is a consumer refusing data for now; the client may retry.
type overloadError struct{ err error }

func (e *overloadError) Error() string {
	return fmt.Sprintf("server cannot take the data now, retry later: %v", e.err)
}

// budgetExceeded tells an overloaded pipeline (the client should slow down)
// from a failing consumer (the client should try again later).
func (e *overloadError) budgetExceeded() bool { return errors.Is(e.err, pipeline.ErrOverloaded) }
func (e *overloadError) Unwrap() error        { return e.err }

func invalidf(format string, args ...any) error {
	return &invalidError{msg: fmt.Sprintf(format, args...)}
}

// ingester converts and consumes for one listener; the counters are bound to
// its receiver label once so the hot path does no label lookups.
type ingester struct {
	c                  Consumers
	received, accepted prometheus.Counter
	invalid            prometheus.Counter
	unauthenticated    prometheus.Counter
	// malformed counts requests whose segments could not be decoded at all.
	malformed prometheus.Counter
	// storage counts spans a consumer failed for a reason of its own.
	storage prometheus.Counter

	log      *slog.Logger
	receiver string
	// lastWarn is when (UnixNano) a rejection was last logged.
	lastWarn atomic.Int64
}

func newIngester(c Consumers, opts Options, receiver string) *ingester {
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	return &ingester{
		c:               c,
		log:             log,
		receiver:        receiver,
		received:        selfmetrics.SpansReceived.WithLabelValues(receiver),
		accepted:        selfmetrics.SpansAccepted.WithLabelValues(receiver),
		invalid:         selfmetrics.SpansRejected.WithLabelValues(receiver, "invalid"),
		unauthenticated: selfmetrics.SpansRejected.WithLabelValues(receiver, "unauthenticated"),
		malformed:       selfmetrics.SpansRejected.WithLabelValues(receiver, "malformed"),
		storage:         selfmetrics.SpansRejected.WithLabelValues(receiver, "storage"),
	}
}

// warnRejected logs why a streamed item was rejected, unless another
// rejection was logged less than RejectLogInterval ago.
func (in *ingester) warnRejected(what string, err error) {
	now := time.Now().UnixNano()
	last := in.lastWarn.Load()
	if now-last < int64(RejectLogInterval) || !in.lastWarn.CompareAndSwap(last, now) {
		return
	}
	in.log.Warn("rejected data from a SkyWalking agent", "receiver", in.receiver, "kind", what, "reason", err.Error())
}

// maxReportedProblems bounds how many rejected items an error message lists.
const maxReportedProblems = 3

// problems collects why items of one request were rejected.
type problems struct {
	rejected, total int
	first           []string
	// later is what went wrong after conversion, told after the rest.
	later string
}

func (p *problems) note(msg string) { p.later = msg }

func (p *problems) add(err error) {
	p.rejected++
	if len(p.first) < maxReportedProblems {
		p.first = append(p.first, err.Error())
	}
}

// err summarises the rejections as an invalidError, or returns nil.
func (p *problems) err(what string) error {
	var msg string
	switch {
	case p.rejected == 0:
	case p.total == 1:
		msg = p.first[0]
	default:
		msg = fmt.Sprintf("rejected %d of %d %s: %s", p.rejected, p.total, what, strings.Join(p.first, "; "))
		if p.rejected > len(p.first) {
			msg += fmt.Sprintf("; and %d more", p.rejected-len(p.first))
		}
	}
	switch {
	case p.later == "" && msg == "":
		return nil
	case p.later == "":
		return &invalidError{msg: msg}
	case msg == "":
		return &invalidError{msg: p.later}
	}
	return &invalidError{msg: msg + "; " + p.later}
}

// segments stores every valid segment of one request in one batch.
func (in *ingester) segments(ctx context.Context, segs ...*agentv3.SegmentObject) error {
	td := ptrace.NewTraces()
	td.ResourceSpans().EnsureCapacity(len(segs))
	bad := problems{total: len(segs)}
	var received, spans, rejectedSpans int
	for _, seg := range segs {
		received += len(seg.GetSpans())
		n, err := swconv.AppendSegment(td, seg)
		if err != nil {
			bad.add(err)
			rejectedSpans += len(seg.GetSpans())
			continue
		}
		spans += n
	}
	in.received.Add(float64(received))
	in.invalid.Add(float64(rejectedSpans))
	if spans > 0 && in.c.Traces != nil {
		if err := in.c.Traces.ConsumeTraces(ctx, td); err != nil {
			if !errors.Is(err, pipeline.ErrOverloaded) && !errors.Is(err, pipeline.ErrInvalid) {
				// pipeline.Checked counts the rejections it decides itself.
				in.storage.Add(float64(spans))
			}
			return consumerError(err)
		}
		// A validating consumer (pipeline.Checked) removes what storage
		// cannot keep; what is left was accepted, the rest is reported.
		if kept := td.SpanCount(); kept < spans {
			bad.note(fmt.Sprintf("%d of %d spans refused by the server's storage limits (times, sizes; see skytrail_receiver_spans_rejected_total)", spans-kept, spans))
			spans = kept
		}
	}
	in.accepted.Add(float64(spans))
	return bad.err("segments")
}

// logs stores every valid log of one request in one batch.
func (in *ingester) logs(ctx context.Context, logs ...*logv3.LogData) error {
	ld := plog.NewLogs()
	bad := problems{total: len(logs)}
	now := time.Now()
	for _, l := range logs {
		if err := swconv.AppendLog(ld, l, now); err != nil {
			bad.add(err)
		}
	}
	if err := in.consumeLogs(ctx, ld); err != nil {
		return err
	}
	return bad.err("logs")
}

// events stores every valid EventService event of one request as log records.
func (in *ingester) events(ctx context.Context, events ...*eventv3.Event) error {
	ld := plog.NewLogs()
	bad := problems{total: len(events)}
	now := time.Now()
	for _, ev := range events {
		if err := swconv.AppendEvent(ld, ev, now); err != nil {
			bad.add(err)
		}
	}
	if err := in.consumeLogs(ctx, ld); err != nil {
		return err
	}
	return bad.err("events")
}

func (in *ingester) consumeLogs(ctx context.Context, ld plog.Logs) error {
	if ld.LogRecordCount() == 0 || in.c.Logs == nil {
		return nil
	}
	if err := in.c.Logs.ConsumeLogs(ctx, ld); err != nil {
		return consumerError(err)
	}
	return nil
}

// meters stores every valid meter of one message; s carries the service and
// instance that only a stream's first meter names.
func (in *ingester) meters(ctx context.Context, s *swconv.MeterStream, meters ...*agentv3.MeterData) error {
	md := pmetric.NewMetrics()
	bad := problems{total: len(meters)}
	now := time.Now()
	for _, m := range meters {
		if err := s.Append(md, m, now); err != nil {
			bad.add(err)
		}
	}
	if err := in.consumeMetrics(ctx, md); err != nil {
		return err
	}
	return bad.err("meters")
}

func (in *ingester) jvmMetrics(ctx context.Context, c *agentv3.JVMMetricCollection) error {
	md := pmetric.NewMetrics()
	if err := swconv.AppendJVMMetrics(md, c, time.Now()); err != nil {
		return &invalidError{msg: err.Error()}
	}
	return in.consumeMetrics(ctx, md)
}

func (in *ingester) clrMetrics(ctx context.Context, c *agentv3.CLRMetricCollection) error {
	md := pmetric.NewMetrics()
	if err := swconv.AppendCLRMetrics(md, c, time.Now()); err != nil {
		return &invalidError{msg: err.Error()}
	}
	return in.consumeMetrics(ctx, md)
}

func (in *ingester) consumeMetrics(ctx context.Context, md pmetric.Metrics) error {
	if md.DataPointCount() == 0 || in.c.Metrics == nil {
		return nil
	}
	if err := in.c.Metrics.ConsumeMetrics(ctx, md); err != nil {
		return consumerError(err)
	}
	return nil
}

func (in *ingester) properties(ctx context.Context, p *managementv3.InstanceProperties) error {
	hb, err := swconv.PropertiesHeartbeat(p, time.Now())
	if err != nil {
		return &invalidError{msg: err.Error()}
	}
	return in.heartbeat(ctx, hb)
}

func (in *ingester) keepAlive(ctx context.Context, p *managementv3.InstancePingPkg) error {
	hb, err := swconv.KeepAliveHeartbeat(p, time.Now())
	if err != nil {
		return &invalidError{msg: err.Error()}
	}
	return in.heartbeat(ctx, hb)
}

func (in *ingester) heartbeat(ctx context.Context, hb pipeline.Heartbeat) error {
	if in.c.Heartbeats == nil {
		return nil
	}
	if err := in.c.Heartbeats.ConsumeHeartbeat(ctx, hb); err != nil {
		return consumerError(err)
	}
	return nil
}

// consumerError classifies a consumer's refusal: data the pipeline found
// unstorable (pipeline.ErrInvalid) must not be retried; anything else
// (pipeline.ErrOverloaded, a storage hiccup) may succeed later.
func consumerError(err error) error {
	if errors.Is(err, pipeline.ErrInvalid) {
		return &invalidError{msg: err.Error()}
	}
	return &overloadError{err: err}
}

// asOverload returns err's overloadError, or nil when err is not retryable.
func asOverload(err error) *overloadError {
	var o *overloadError
	if errors.As(err, &o) {
		return o
	}
	return nil
}
