// Package skywalking accepts what SkyWalking agents (go2sky, skywalking-go,
// the Java, Python and Node agents) report, over gRPC (NewGRPCServer, port
// 11800 by convention) and HTTP/JSON (NewHTTPHandler, port 12800), converts
// it with swconv and hands it to the pipeline's front door.
//
// Errors follow what agents and SDKs retry on (see package wire): a request
// the server cannot take now is answered ResourceExhausted / 429 (over the
// in-flight budget) or Unavailable / 503 (storage failing) with a retry
// delay; data that can never be stored is answered InvalidArgument / 400
// naming what was wrong, after everything valid in the same request has been
// stored; a missing or wrong token is Unauthenticated / 401 and nothing from
// it is read.
package skywalking

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"time"

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
)

// Options configure both listeners.
type Options struct {
	// Token, when set, must arrive in the Authentication gRPC metadata / HTTP
	// header of every request (SW_AGENT_AUTHENTICATION on the agents).
	Token string
	// Tenants, when set, sends the data of an agent whose Authentication
	// it knows to that token's pipeline (its tenant's); any other agent is
	// checked against Token and feeds the receiver's own pipeline.
	Tenants func(token string) (*pipeline.Pipeline, bool)
	// MaxRecvMsgSize bounds one gRPC message or HTTP body, in bytes;
	// 0 means DefaultMaxRecvMsgSize.
	MaxRecvMsgSize int
	// Logger receives warnings about data rejected on agents' long-lived
	// streams, at most one every RejectLogInterval; nil means slog.Default().
	Logger *slog.Logger
	// GRPCServerOptions are added to the gRPC server's own.
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

func (o Options) maxRecvMsgSize() int {
	if o.MaxRecvMsgSize > 0 {
		return o.MaxRecvMsgSize
	}
	return DefaultMaxRecvMsgSize
}

// ingester converts what one listener decoded and hands it to the front door.
type ingester struct {
	p        *pipeline.Pipeline
	log      *slog.Logger
	receiver string
	// lastWarn is when (UnixNano) a rejection was last logged.
	lastWarn atomic.Int64
}

// pipelineKey carries, in a call's context, the pipeline of the tenant
// its token named.
type pipelineKey struct{}

// pipelineOf is the pipeline a call's data goes to: its tenant's, or the
// receiver's own.
func (in *ingester) pipelineOf(ctx context.Context) *pipeline.Pipeline {
	if p, ok := ctx.Value(pipelineKey{}).(*pipeline.Pipeline); ok {
		return p
	}
	return in.p
}

func newIngester(p *pipeline.Pipeline, opts Options, receiver string) *ingester {
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	return &ingester{p: p, log: log, receiver: receiver}
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

// problems collects why items of one request were refused while decoding.
type problems struct {
	refused, total int
	// items counts what the refused ones carried, in the signal's unit.
	items int
	first []string
}

func (p *problems) add(err error, items int) {
	p.refused++
	p.items += max(items, 1)
	if len(p.first) < maxReportedProblems {
		p.first = append(p.first, err.Error())
	}
}

// summary says why items were refused ("" when none was).
func (p *problems) summary(what string) string {
	switch {
	case p.refused == 0:
		return ""
	case p.total == 1:
		return p.first[0]
	}
	msg := fmt.Sprintf("rejected %d of %d %s: %s", p.refused, p.total, what, strings.Join(p.first, "; "))
	if p.refused > len(p.first) {
		msg += fmt.Sprintf("; and %d more", p.refused-len(p.first))
	}
	return msg
}

func (p *problems) asRefused(what string) pipeline.Refused {
	return pipeline.Refused{Items: p.items, First: p.summary(what)}
}

// ingest hands b to the front door. A partial success is an error for the
// agents, who have no other way to hear of it: InvalidArgument, after the
// rest was stored.
func ingest(ctx context.Context, req *pipeline.Request, b pipeline.Batch) error {
	out, err := req.Ingest(ctx, b)
	if err != nil {
		return err
	}
	if out.Rejected > 0 {
		return &pipeline.Error{Reason: pipeline.Invalid, Msg: out.Message}
	}
	return nil
}

// segments stores every valid segment of one request in one batch.
func (in *ingester) segments(ctx context.Context, req *pipeline.Request, segs ...*agentv3.SegmentObject) error {
	td := ptrace.NewTraces()
	td.ResourceSpans().EnsureCapacity(len(segs))
	bad := problems{total: len(segs)}
	for _, seg := range segs {
		if _, err := swconv.AppendSegment(td, seg); err != nil {
			bad.add(err, len(seg.GetSpans()))
		}
	}
	return ingest(ctx, req, &pipeline.Traces{Traces: td, Refused: bad.asRefused("segments")})
}

// logs stores every valid log of one request in one batch.
func (in *ingester) logs(ctx context.Context, req *pipeline.Request, logs ...*logv3.LogData) error {
	ld := plog.NewLogs()
	bad := problems{total: len(logs)}
	now := time.Now()
	for _, l := range logs {
		if err := swconv.AppendLog(ld, l, now); err != nil {
			bad.add(err, 1)
		}
	}
	return ingest(ctx, req, &pipeline.Logs{Logs: ld, Refused: bad.asRefused("logs")})
}

// events stores every valid EventService event of one request as log records.
func (in *ingester) events(ctx context.Context, req *pipeline.Request, events ...*eventv3.Event) error {
	ld := plog.NewLogs()
	bad := problems{total: len(events)}
	now := time.Now()
	for _, ev := range events {
		if err := swconv.AppendEvent(ld, ev, now); err != nil {
			bad.add(err, 1)
		}
	}
	return ingest(ctx, req, &pipeline.Logs{Logs: ld, Refused: bad.asRefused("events")})
}

// meters stores every valid meter of one message; s carries the service and
// instance that only a stream's first meter names.
func (in *ingester) meters(ctx context.Context, req *pipeline.Request, s *swconv.MeterStream, meters ...*agentv3.MeterData) error {
	md := pmetric.NewMetrics()
	bad := problems{total: len(meters)}
	now := time.Now()
	for _, m := range meters {
		if err := s.Append(md, m, now); err != nil {
			bad.add(err, 1)
		}
	}
	return ingest(ctx, req, &pipeline.Metrics{Metrics: md, Refused: bad.asRefused("meters")})
}

func (in *ingester) jvmMetrics(ctx context.Context, req *pipeline.Request, c *agentv3.JVMMetricCollection) error {
	md := pmetric.NewMetrics()
	if err := swconv.AppendJVMMetrics(md, c, time.Now()); err != nil {
		return req.Refuse(pipeline.Invalid, err)
	}
	return ingest(ctx, req, &pipeline.Metrics{Metrics: md})
}

func (in *ingester) clrMetrics(ctx context.Context, req *pipeline.Request, c *agentv3.CLRMetricCollection) error {
	md := pmetric.NewMetrics()
	if err := swconv.AppendCLRMetrics(md, c, time.Now()); err != nil {
		return req.Refuse(pipeline.Invalid, err)
	}
	return ingest(ctx, req, &pipeline.Metrics{Metrics: md})
}

func (in *ingester) golangMetrics(ctx context.Context, req *pipeline.Request, raw []byte) error {
	md, err := swconv.GolangMetrics(raw, time.Now())
	if err != nil {
		return req.Refuse(pipeline.Invalid, err)
	}
	return ingest(ctx, req, &pipeline.Metrics{Metrics: md})
}

func (in *ingester) properties(ctx context.Context, req *pipeline.Request, p *managementv3.InstanceProperties) error {
	hb, err := swconv.PropertiesHeartbeat(p, time.Now())
	if err != nil {
		return req.Refuse(pipeline.Invalid, err)
	}
	return ingest(ctx, req, &pipeline.Heartbeats{hb})
}

func (in *ingester) keepAlive(ctx context.Context, req *pipeline.Request, p *managementv3.InstancePingPkg) error {
	hb, err := swconv.KeepAliveHeartbeat(p, time.Now())
	if err != nil {
		return req.Refuse(pipeline.Invalid, err)
	}
	return ingest(ctx, req, &pipeline.Heartbeats{hb})
}
