package skywalking

import (
	"context"
	"crypto/subtle"
	"errors"
	"io"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	_ "google.golang.org/grpc/encoding/gzip" // agents may gzip their messages
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/tap"
	configurationv3 "skywalking.apache.org/repo/goapi/collect/agent/configuration/v3"
	commonv3 "skywalking.apache.org/repo/goapi/collect/common/v3"
	eventv3 "skywalking.apache.org/repo/goapi/collect/event/v3"
	agentv3 "skywalking.apache.org/repo/goapi/collect/language/agent/v3"
	agentcompat "skywalking.apache.org/repo/goapi/collect/language/agent/v3/compat"
	profilev3 "skywalking.apache.org/repo/goapi/collect/language/profile/v3"
	profilecompat "skywalking.apache.org/repo/goapi/collect/language/profile/v3/compat"
	logv3 "skywalking.apache.org/repo/goapi/collect/logging/v3"
	managementv3 "skywalking.apache.org/repo/goapi/collect/management/v3"
	managementcompat "skywalking.apache.org/repo/goapi/collect/management/v3/compat"

	"github.com/skytrail/skytrail/internal/pipeline"
	"github.com/skytrail/skytrail/internal/receiver/skywalking/swconv"
	"github.com/skytrail/skytrail/internal/receiver/wire"
)

// GRPCReceiver names the gRPC listener, as the front door counts it.
const GRPCReceiver = "skywalking-grpc"

// authMetadataKey is the metadata the agents put their token in
// ("Authentication"; gRPC lower-cases keys).
const authMetadataKey = "authentication"

// NewGRPCServer returns a gRPC server with every service SkyWalking agents
// call registered, feeding p, ready for Serve; the caller owns its lifecycle
// (Serve, GracefulStop). Besides the skywalking.v3 services it registers
// their unpackaged "compat" twins that agents before 8.x-era protocol
// changes use.
//
// Traces, logs, meters, JVM, CLR and Go runtime metrics, events and instance
// heartbeats are converted and ingested; configuration discovery and the
// profiling pollers (ProfileTask, AsyncProfilerTask, PprofTask) answer "no
// commands"; browser data, thread snapshots and span-attached events are
// accepted and discarded, so no agent logs Unimplemented.
func NewGRPCServer(p *pipeline.Pipeline, opts Options) *grpc.Server {
	in := newIngester(p, opts, GRPCReceiver)
	a := authenticator{token: opts.Token, tenants: opts.Tenants, p: p}
	s := grpc.NewServer(append([]grpc.ServerOption{
		grpc.MaxRecvMsgSize(opts.maxRecvMsgSize()),
		// A message whose decoding alone would take more than the in-flight
		// budget is refused undecoded. Smaller ones are charged once
		// decoded (an agent's segment is a few kilobytes): gRPC decodes a
		// stream's messages before a handler sees them.
		grpc.ForceServerCodecV2(wire.GuardedCodec(int(p.Budget()))),
		// The token is checked when a call's headers arrive, before any of
		// its messages is read.
		grpc.InTapHandle(a.tap),
		// Agents keep connections open for hours and some ping; refusing their
		// pings would cut them off.
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 5 * time.Second, PermitWithoutStream: true}),
	}, opts.GRPCServerOptions...)...)

	agentv3.RegisterTraceSegmentReportServiceServer(s, &traceService{in: in})
	agentcompat.RegisterTraceSegmentReportServiceServer(s, &traceServiceCompat{in: in})
	managementv3.RegisterManagementServiceServer(s, &managementService{in: in})
	managementcompat.RegisterManagementServiceServer(s, &managementServiceCompat{in: in})
	agentv3.RegisterMeterReportServiceServer(s, &meterService{in: in})
	agentcompat.RegisterMeterReportServiceServer(s, &meterServiceCompat{in: in})
	logv3.RegisterLogReportServiceServer(s, &logService{in: in})
	eventv3.RegisterEventServiceServer(s, &eventService{in: in})
	agentv3.RegisterJVMMetricReportServiceServer(s, &jvmService{in: in})
	agentcompat.RegisterJVMMetricReportServiceServer(s, &jvmServiceCompat{in: in})
	configurationv3.RegisterConfigurationDiscoveryServiceServer(s, configurationService{})
	profilev3.RegisterProfileTaskServer(s, profileService{})
	profilecompat.RegisterProfileTaskServer(s, profileServiceCompat{})
	agentv3.RegisterCLRMetricReportServiceServer(s, &clrService{in: in})
	agentcompat.RegisterCLRMetricReportServiceServer(s, &clrServiceCompat{in: in})
	agentv3.RegisterBrowserPerfServiceServer(s, browserService{})
	agentcompat.RegisterBrowserPerfServiceServer(s, browserServiceCompat{})
	agentv3.RegisterSpanAttachedEventReportServiceServer(s, spanEventService{})
	registerNewer(s, in)
	return s
}

// authenticator refuses calls without the configured token.
type authenticator struct {
	token   string
	tenants func(token string) (*pipeline.Pipeline, bool)
	p       *pipeline.Pipeline
}

// tap checks a call's token as its headers arrive. The standard gRPC health
// service needs none: load balancers and Kubernetes probes call it without
// an agent's token, and it tells nothing but whether the server is up.
func (a authenticator) tap(ctx context.Context, info *tap.Info) (context.Context, error) {
	if strings.HasPrefix(info.FullMethodName, "/grpc.health.v1.Health/") {
		return ctx, nil
	}
	if a.tenants != nil {
		for _, got := range info.Header.Get(authMetadataKey) {
			if p, ok := a.tenants(got); ok {
				return context.WithValue(ctx, pipelineKey{}, p), nil
			}
		}
	}
	if a.token == "" {
		return ctx, nil
	}
	for _, got := range info.Header.Get(authMetadataKey) {
		if subtle.ConstantTimeCompare([]byte(got), []byte(a.token)) == 1 {
			return ctx, nil
		}
	}
	err := a.p.Refuse(wire.GRPCSource(ctx, GRPCReceiver), signalOf(info.FullMethodName), pipeline.Unauthenticated,
		errors.New("missing or wrong Authentication token (set the agent's authentication to the server's token)"))
	return ctx, wire.GRPCError(err)
}

// signalOf is what a SkyWalking method carries, for counting its refusals.
func signalOf(fullMethod string) pipeline.Signal {
	switch {
	case strings.Contains(fullMethod, "LogReportService"), strings.Contains(fullMethod, "EventService"):
		return pipeline.SignalLogs
	case strings.Contains(fullMethod, "Meter"), strings.Contains(fullMethod, "JVM"), strings.Contains(fullMethod, "CLR"), strings.Contains(fullMethod, "GolangMetric"):
		return pipeline.SignalMetrics
	case strings.Contains(fullMethod, "ManagementService"):
		return pipeline.SignalHeartbeats
	}
	return pipeline.SignalSpans
}

var noCommands = &commonv3.Commands{}

// clientStream is a generated client-streaming server side of any of the
// agents' services.
type clientStream[T any] interface {
	Recv() (*T, error)
	SendAndClose(*commonv3.Commands) error
	Context() context.Context
}

// collect drains a client stream, handing each message to handle. A message
// that is invalid is counted and the stream goes on: the agent cannot resend
// it and the messages after it are good. A retryable refusal ends the stream
// at once so the agent backs off. The invalid ones are reported to the agent
// when the stream ends, which for an agent's long-lived stream may be hours
// away, so they are logged on the server as they come.
func collect[T any](in *ingester, s clientStream[T], signal pipeline.Signal, what string, handle func(context.Context, *pipeline.Request, *T) error) error {
	ctx := s.Context()
	src := wire.GRPCSource(ctx, GRPCReceiver)
	bad := problems{}
	for {
		msg, err := s.Recv()
		if err == io.EOF {
			break
		}
		if err != nil {
			return in.recvError(src, signal, err)
		}
		bad.total++
		req := in.pipelineOf(ctx).Begin(src, signal)
		err = handle(ctx, req, msg)
		req.Release()
		if err != nil {
			if pipeline.ReasonOf(err).Retryable() {
				return wire.GRPCError(err)
			}
			bad.add(err, 1)
			in.warnRejected(what, err)
		}
	}
	if msg := bad.summary(what); msg != "" {
		return wire.GRPCError(&pipeline.Error{Reason: pipeline.Invalid, Msg: msg})
	}
	return s.SendAndClose(noCommands)
}

// recvError reports a message gRPC could not hand over: one over the size
// limit, or one that does not decode, is counted and published at the front
// door like any other refusal; a client gone is not. (gRPC has answered
// the agent already, with the reason.)
func (in *ingester) recvError(src pipeline.Source, signal pipeline.Signal, err error) error {
	st := status.Convert(err)
	switch {
	case st.Code() == codes.ResourceExhausted, st.Code() == codes.Internal && wire.TooLargeToDecode(st.Message()):
		return wire.GRPCError(in.p.Refuse(src, signal, pipeline.TooLarge, err))
	case st.Code() == codes.Internal:
		return wire.GRPCError(in.p.Refuse(src, signal, pipeline.Malformed, err))
	}
	return err
}

// discard drains a client stream whose data SkyTrail does not keep.
func discard[T any](s clientStream[T]) error {
	for {
		if _, err := s.Recv(); err == io.EOF {
			return s.SendAndClose(noCommands)
		} else if err != nil {
			return err
		}
	}
}

// unary runs one unary call's handling and puts its error on the wire.
func (in *ingester) unary(ctx context.Context, signal pipeline.Signal, handle func(context.Context, *pipeline.Request) error) (*commonv3.Commands, error) {
	req := in.pipelineOf(ctx).Begin(wire.GRPCSource(ctx, GRPCReceiver), signal)
	defer req.Release()
	if err := handle(ctx, req); err != nil {
		return nil, wire.GRPCError(err)
	}
	return noCommands, nil
}

type traceService struct {
	agentv3.UnimplementedTraceSegmentReportServiceServer
	in *ingester
}

func (t *traceService) Collect(s agentv3.TraceSegmentReportService_CollectServer) error {
	return collect(t.in, s, pipeline.SignalSpans, "segments", t.handle)
}

func (t *traceService) handle(ctx context.Context, req *pipeline.Request, seg *agentv3.SegmentObject) error {
	return t.in.segments(ctx, req, seg)
}

func (t *traceService) CollectInSync(ctx context.Context, c *agentv3.SegmentCollection) (*commonv3.Commands, error) {
	return t.in.unary(ctx, pipeline.SignalSpans, func(ctx context.Context, req *pipeline.Request) error { return t.in.segments(ctx, req, c.Segments...) })
}

type traceServiceCompat struct {
	agentcompat.UnimplementedTraceSegmentReportServiceServer
	in *ingester
}

func (t *traceServiceCompat) Collect(s agentcompat.TraceSegmentReportService_CollectServer) error {
	return collect(t.in, s, pipeline.SignalSpans, "segments", (&traceService{in: t.in}).handle)
}

func (t *traceServiceCompat) CollectInSync(ctx context.Context, c *agentv3.SegmentCollection) (*commonv3.Commands, error) {
	return (&traceService{in: t.in}).CollectInSync(ctx, c)
}

type managementService struct {
	managementv3.UnimplementedManagementServiceServer
	in *ingester
}

func (m *managementService) ReportInstanceProperties(ctx context.Context, p *managementv3.InstanceProperties) (*commonv3.Commands, error) {
	return m.in.unary(ctx, pipeline.SignalHeartbeats, func(ctx context.Context, req *pipeline.Request) error { return m.in.properties(ctx, req, p) })
}

func (m *managementService) KeepAlive(ctx context.Context, p *managementv3.InstancePingPkg) (*commonv3.Commands, error) {
	return m.in.unary(ctx, pipeline.SignalHeartbeats, func(ctx context.Context, req *pipeline.Request) error { return m.in.keepAlive(ctx, req, p) })
}

type managementServiceCompat struct {
	managementcompat.UnimplementedManagementServiceServer
	in *ingester
}

func (m *managementServiceCompat) ReportInstanceProperties(ctx context.Context, p *managementv3.InstanceProperties) (*commonv3.Commands, error) {
	return (&managementService{in: m.in}).ReportInstanceProperties(ctx, p)
}

func (m *managementServiceCompat) KeepAlive(ctx context.Context, p *managementv3.InstancePingPkg) (*commonv3.Commands, error) {
	return (&managementService{in: m.in}).KeepAlive(ctx, p)
}

type meterService struct {
	agentv3.UnimplementedMeterReportServiceServer
	in *ingester
}

func (m *meterService) Collect(s agentv3.MeterReportService_CollectServer) error {
	return collectMeters(m.in, s)
}

func (m *meterService) CollectBatch(s agentv3.MeterReportService_CollectBatchServer) error {
	var stream swconv.MeterStream
	return collect(m.in, s, pipeline.SignalMetrics, "meter collections", func(ctx context.Context, req *pipeline.Request, c *agentv3.MeterDataCollection) error {
		return m.in.meters(ctx, req, &stream, c.MeterData...)
	})
}

// collectMeters drains a stream of single meters, only the first of which
// names the service and instance.
func collectMeters(in *ingester, s clientStream[agentv3.MeterData]) error {
	var stream swconv.MeterStream
	return collect(in, s, pipeline.SignalMetrics, "meters", func(ctx context.Context, req *pipeline.Request, m *agentv3.MeterData) error {
		return in.meters(ctx, req, &stream, m)
	})
}

type meterServiceCompat struct {
	agentcompat.UnimplementedMeterReportServiceServer
	in *ingester
}

func (m *meterServiceCompat) Collect(s agentcompat.MeterReportService_CollectServer) error {
	return collectMeters(m.in, s)
}

type logService struct {
	logv3.UnimplementedLogReportServiceServer
	in *ingester
}

func (l *logService) Collect(s logv3.LogReportService_CollectServer) error {
	return collect(l.in, s, pipeline.SignalLogs, "logs", func(ctx context.Context, req *pipeline.Request, log *logv3.LogData) error {
		return l.in.logs(ctx, req, log)
	})
}

type eventService struct {
	eventv3.UnimplementedEventServiceServer
	in *ingester
}

func (e *eventService) Collect(s eventv3.EventService_CollectServer) error {
	return collect(e.in, s, pipeline.SignalLogs, "events", func(ctx context.Context, req *pipeline.Request, ev *eventv3.Event) error {
		return e.in.events(ctx, req, ev)
	})
}

type jvmService struct {
	agentv3.UnimplementedJVMMetricReportServiceServer
	in *ingester
}

func (j *jvmService) Collect(ctx context.Context, c *agentv3.JVMMetricCollection) (*commonv3.Commands, error) {
	return j.in.unary(ctx, pipeline.SignalMetrics, func(ctx context.Context, req *pipeline.Request) error { return j.in.jvmMetrics(ctx, req, c) })
}

type jvmServiceCompat struct {
	agentcompat.UnimplementedJVMMetricReportServiceServer
	in *ingester
}

func (j *jvmServiceCompat) Collect(ctx context.Context, c *agentv3.JVMMetricCollection) (*commonv3.Commands, error) {
	return (&jvmService{in: j.in}).Collect(ctx, c)
}

// configurationService answers every poll with "no changes": SkyTrail does
// not push agent configuration.
type configurationService struct {
	configurationv3.UnimplementedConfigurationDiscoveryServiceServer
}

func (configurationService) FetchConfigurations(context.Context, *configurationv3.ConfigurationSyncRequest) (*commonv3.Commands, error) {
	return noCommands, nil
}

// profileService has no profiling tasks to hand out and discards snapshots.
type profileService struct {
	profilev3.UnimplementedProfileTaskServer
}

func (profileService) GetProfileTaskCommands(context.Context, *profilev3.ProfileTaskCommandQuery) (*commonv3.Commands, error) {
	return noCommands, nil
}

func (profileService) CollectSnapshot(s profilev3.ProfileTask_CollectSnapshotServer) error {
	return discard(s)
}

func (profileService) ReportTaskFinish(context.Context, *profilev3.ProfileTaskFinishReport) (*commonv3.Commands, error) {
	return noCommands, nil
}

type profileServiceCompat struct {
	profilecompat.UnimplementedProfileTaskServer
}

func (profileServiceCompat) GetProfileTaskCommands(context.Context, *profilev3.ProfileTaskCommandQuery) (*commonv3.Commands, error) {
	return noCommands, nil
}

func (profileServiceCompat) CollectSnapshot(s profilecompat.ProfileTask_CollectSnapshotServer) error {
	return discard(s)
}

func (profileServiceCompat) ReportTaskFinish(context.Context, *profilev3.ProfileTaskFinishReport) (*commonv3.Commands, error) {
	return noCommands, nil
}

// clrService takes the .NET agent's runtime metrics.
type clrService struct {
	agentv3.UnimplementedCLRMetricReportServiceServer
	in *ingester
}

func (c *clrService) Collect(ctx context.Context, m *agentv3.CLRMetricCollection) (*commonv3.Commands, error) {
	return c.in.unary(ctx, pipeline.SignalMetrics, func(ctx context.Context, req *pipeline.Request) error { return c.in.clrMetrics(ctx, req, m) })
}

type clrServiceCompat struct {
	agentcompat.UnimplementedCLRMetricReportServiceServer
	in *ingester
}

func (c *clrServiceCompat) Collect(ctx context.Context, m *agentv3.CLRMetricCollection) (*commonv3.Commands, error) {
	return (&clrService{in: c.in}).Collect(ctx, m)
}

// browserService accepts browser performance data and error logs (relayed by
// skywalking-satellite) and discards them.
type browserService struct {
	agentv3.UnimplementedBrowserPerfServiceServer
}

func (browserService) CollectPerfData(context.Context, *agentv3.BrowserPerfData) (*commonv3.Commands, error) {
	return noCommands, nil
}

func (browserService) CollectErrorLogs(s agentv3.BrowserPerfService_CollectErrorLogsServer) error {
	return discard(s)
}

type browserServiceCompat struct {
	agentcompat.UnimplementedBrowserPerfServiceServer
}

func (browserServiceCompat) CollectPerfData(context.Context, *agentv3.BrowserPerfData) (*commonv3.Commands, error) {
	return noCommands, nil
}

func (browserServiceCompat) CollectErrorLogs(s agentcompat.BrowserPerfService_CollectErrorLogsServer) error {
	return discard(s)
}

// spanEventService accepts span-attached events (from SkyWalking Rover's
// eBPF network profiling) and discards them.
type spanEventService struct {
	agentv3.UnimplementedSpanAttachedEventReportServiceServer
}

func (spanEventService) Collect(s agentv3.SpanAttachedEventReportService_CollectServer) error {
	return discard(s)
}
