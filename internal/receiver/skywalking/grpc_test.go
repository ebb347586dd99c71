package skywalking

import (
	"context"
	"errors"
	"fmt"
	"github.com/prometheus/client_golang/prometheus"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pmetric"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/encoding/gzip"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	configurationv3 "skywalking.apache.org/repo/goapi/collect/agent/configuration/v3"
	commonv3 "skywalking.apache.org/repo/goapi/collect/common/v3"
	eventv3 "skywalking.apache.org/repo/goapi/collect/event/v3"
	agentv3 "skywalking.apache.org/repo/goapi/collect/language/agent/v3"
	agentcompat "skywalking.apache.org/repo/goapi/collect/language/agent/v3/compat"
	profilev3 "skywalking.apache.org/repo/goapi/collect/language/profile/v3"
	logv3 "skywalking.apache.org/repo/goapi/collect/logging/v3"
	managementv3 "skywalking.apache.org/repo/goapi/collect/management/v3"

	"github.com/skytrail/skytrail/internal/pipeline"
	"github.com/skytrail/skytrail/internal/testutil/poll"
	"github.com/skytrail/skytrail/internal/traceid"
)

func dial(t *testing.T, addr string, opts ...grpc.DialOption) *grpc.ClientConn {
	t.Helper()
	conn, err := grpc.NewClient(addr, append([]grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func segment(trace, seg, service string) *agentv3.SegmentObject {
	return &agentv3.SegmentObject{
		TraceId: trace, TraceSegmentId: seg, Service: service, ServiceInstance: service + "-1",
		Spans: []*agentv3.SpanObject{{
			SpanId: 0, ParentSpanId: -1, StartTime: 1700000000000, EndTime: 1700000000005,
			OperationName: "GET /", SpanType: agentv3.SpanType_Entry, SpanLayer: agentv3.SpanLayer_Http,
		}},
	}
}

func wantCode(t *testing.T, err error, code codes.Code, msg string) *status.Status {
	t.Helper()
	st, _ := status.FromError(err)
	if st.Code() != code || !strings.Contains(st.Message(), msg) {
		t.Fatalf("error = %v, want %v containing %q", err, code, msg)
	}
	return st
}

func TestCollectInSyncStoresValidAndNamesInvalid(t *testing.T) {
	s := &sink{}
	conn := dial(t, startGRPC(t, s.door(), Options{}))
	client := agentv3.NewTraceSegmentReportServiceClient(conn)
	invalid := func() float64 {
		return s.counter(t, "skytrail_receiver_spans_rejected_total", "receiver", GRPCReceiver, "reason", "invalid")
	}
	before := invalid()

	_, err := client.CollectInSync(testContext(t), &agentv3.SegmentCollection{Segments: []*agentv3.SegmentObject{
		segment("t1", "s1", "a"), segment("t1", "s2", ""), segment("t1", "s3", "c"),
	}})
	wantCode(t, err, codes.InvalidArgument, `rejected 1 of 3 segments: segment "s2" of trace "t1" has no service`)
	if n := len(s.spans()); n != 2 {
		t.Errorf("stored %d spans, want the 2 valid ones", n)
	}
	if got := invalid() - before; got != 1 {
		t.Errorf("invalid counter rose by %v, want 1", got)
	}
}

// lockedBuffer is a log destination the server goroutines and the test share.
type lockedBuffer struct {
	mu  sync.Mutex
	buf strings.Builder
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func TestCollectStreamGoesOnPastInvalidSegments(t *testing.T) {
	s := &sink{}
	var logged lockedBuffer
	conn := dial(t, startGRPC(t, s.door(), Options{Logger: slog.New(slog.NewTextHandler(&logged, nil))}))
	stream, err := agentv3.NewTraceSegmentReportServiceClient(conn).Collect(testContext(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, seg := range []*agentv3.SegmentObject{segment("t1", "s1", "a"), segment("", "s2", "b"), segment("t1", "s3", "c")} {
		if err := stream.Send(seg); err != nil {
			t.Fatal(err)
		}
	}
	_, err = stream.CloseAndRecv()
	wantCode(t, err, codes.InvalidArgument, "rejected 1 of 3 segments")
	if n := len(s.spans()); n != 2 {
		t.Errorf("stored %d spans, want the 2 valid ones", n)
	}
	// The agent hears about it only when its stream ends; the operator at once.
	if got := logged.String(); !strings.Contains(got, "rejected data from a SkyWalking agent") || !strings.Contains(got, `has no usable traceId`) {
		t.Errorf("server log = %q", got)
	}
}

func TestOverloadIsRetryable(t *testing.T) {
	s := &sink{}
	s.setFull(true)
	conn := dial(t, startGRPC(t, s.door(), Options{}))

	_, err := agentv3.NewTraceSegmentReportServiceClient(conn).CollectInSync(testContext(t), &agentv3.SegmentCollection{Segments: []*agentv3.SegmentObject{segment("t1", "s1", "a")}})
	st := wantCode(t, err, codes.ResourceExhausted, "retry later")
	var retry *errdetails.RetryInfo
	for _, d := range st.Details() {
		if r, ok := d.(*errdetails.RetryInfo); ok {
			retry = r
		}
	}
	if retry == nil || retry.RetryDelay.AsDuration() <= 0 {
		t.Errorf("no RetryInfo in %v", st.Details())
	}

	stream, err := agentv3.NewTraceSegmentReportServiceClient(conn).Collect(testContext(t))
	if err != nil {
		t.Fatal(err)
	}
	_ = stream.Send(segment("t1", "s1", "a"))
	_, err = stream.CloseAndRecv()
	wantCode(t, err, codes.ResourceExhausted, "queue full")

	_, err = managementv3.NewManagementServiceClient(conn).KeepAlive(testContext(t), &managementv3.InstancePingPkg{Service: "a", ServiceInstance: "a-1"})
	wantCode(t, err, codes.ResourceExhausted, "retry later")

	// A consumer failing for its own reasons (storage) is worth a retry too.
	conn = dial(t, startGRPC(t, newDoor(nil, pipeline.Consumers{Traces: []pipeline.TracesConsumer{refusing{errors.New("disk full")}}}), Options{}))
	_, err = agentv3.NewTraceSegmentReportServiceClient(conn).CollectInSync(testContext(t), &agentv3.SegmentCollection{Segments: []*agentv3.SegmentObject{segment("t1", "s1", "a")}})
	wantCode(t, err, codes.Unavailable, "disk full")
}

func TestGzipAndCompatServices(t *testing.T) {
	s := &sink{}
	conn := dial(t, startGRPC(t, s.door(), Options{}), grpc.WithDefaultCallOptions(grpc.UseCompressor(gzip.Name)))
	ctx := testContext(t)
	if _, err := agentv3.NewTraceSegmentReportServiceClient(conn).CollectInSync(ctx, &agentv3.SegmentCollection{Segments: []*agentv3.SegmentObject{segment("t1", "s1", "a")}}); err != nil {
		t.Fatalf("gzip-compressed segment: %v", err)
	}
	// The unpackaged service name older agents call.
	if _, err := agentcompat.NewTraceSegmentReportServiceClient(conn).CollectInSync(ctx, &agentv3.SegmentCollection{Segments: []*agentv3.SegmentObject{segment("t1", "s2", "a")}}); err != nil {
		t.Fatalf("compat TraceSegmentReportService: %v", err)
	}
	if n := len(s.spans()); n != 2 {
		t.Errorf("stored %d spans, want 2", n)
	}
}

func TestAuthenticationRefusesWithoutToken(t *testing.T) {
	s := &sink{}
	conn := dial(t, startGRPC(t, s.door(), Options{Token: "s3cret"}))
	client := agentv3.NewTraceSegmentReportServiceClient(conn)
	batch := &agentv3.SegmentCollection{Segments: []*agentv3.SegmentObject{segment("t1", "s1", "a")}}

	_, err := client.CollectInSync(testContext(t), batch)
	wantCode(t, err, codes.Unauthenticated, "Authentication")
	_, err = client.CollectInSync(metadata.AppendToOutgoingContext(testContext(t), "Authentication", "wrong"), batch)
	wantCode(t, err, codes.Unauthenticated, "Authentication")
	stream, err := client.Collect(testContext(t))
	if err == nil {
		_ = stream.Send(batch.Segments[0])
		_, err = stream.CloseAndRecv()
	}
	wantCode(t, err, codes.Unauthenticated, "Authentication")
	if n := len(s.spans()); n != 0 {
		t.Fatalf("stored %d spans without the token", n)
	}

	if _, err := client.CollectInSync(metadata.AppendToOutgoingContext(testContext(t), "Authentication", "s3cret"), batch); err != nil {
		t.Fatalf("with the token: %v", err)
	}
	if n := len(s.spans()); n != 1 {
		t.Fatalf("stored %d spans with the token, want 1", n)
	}
}

func TestMetersLogsEventsAndJVMMetrics(t *testing.T) {
	s := &sink{}
	conn := dial(t, startGRPC(t, s.door(), Options{}))
	ctx := testContext(t)

	// skywalking-go's runtime metrics: only the first meter names the instance.
	batch, err := agentv3.NewMeterReportServiceClient(conn).CollectBatch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := batch.Send(&agentv3.MeterDataCollection{MeterData: []*agentv3.MeterData{
		{Service: "svc", ServiceInstance: "svc-1", Timestamp: 1700000000000, Metric: &agentv3.MeterData_SingleValue{SingleValue: &agentv3.MeterSingleValue{
			Name: "instance_golang_heap_alloc", Value: 1024, Labels: []*agentv3.Label{{Name: "k", Value: "v"}},
		}}},
		{Metric: &agentv3.MeterData_Histogram{Histogram: &agentv3.MeterHistogram{Name: "latency", Values: []*agentv3.MeterBucketValue{
			{Bucket: 0, Count: 1, IsNegativeInfinity: true}, {Bucket: 10, Count: 2}, {Bucket: 100, Count: 3},
		}}}},
	}}); err != nil {
		t.Fatal(err)
	}
	if _, err := batch.CloseAndRecv(); err != nil {
		t.Fatalf("meter batch: %v", err)
	}
	if len(s.metrics) != 1 {
		t.Fatalf("metric batches = %d, want 1", len(s.metrics))
	}
	rm := s.metrics[0].ResourceMetrics()
	if rm.Len() != 1 {
		t.Fatalf("resources = %d, want 1 (the second meter inherits the instance)", rm.Len())
	}
	metrics := rm.At(0).ScopeMetrics().At(0).Metrics()
	gauge := metrics.At(0).Gauge().DataPoints().At(0)
	if metrics.At(0).Name() != "instance_golang_heap_alloc" || gauge.DoubleValue() != 1024 || gauge.Timestamp().AsTime().UnixMilli() != 1700000000000 {
		t.Errorf("gauge = %s %v at %v", metrics.At(0).Name(), gauge.DoubleValue(), gauge.Timestamp())
	}
	hist := metrics.At(1)
	if hist.Type() != pmetric.MetricTypeHistogram {
		t.Fatalf("second metric type %v", hist.Type())
	}
	hdp := hist.Histogram().DataPoints().At(0)
	if got, want := hdp.ExplicitBounds().AsRaw(), []float64{10, 100}; !slices.Equal(got, want) {
		t.Errorf("bounds = %v, want %v", got, want)
	}
	if got, want := hdp.BucketCounts().AsRaw(), []uint64{1, 2, 3}; !slices.Equal(got, want) || hdp.Count() != 6 {
		t.Errorf("counts = %v (total %d), want %v", got, hdp.Count(), want)
	}

	logs, err := logv3.NewLogReportServiceClient(conn).Collect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := logs.Send(&logv3.LogData{
		Timestamp: 1700000000001, Service: "svc", ServiceInstance: "svc-1", Endpoint: "GET /",
		Body:         &logv3.LogDataBody{Content: &logv3.LogDataBody_Text{Text: &logv3.TextLog{Text: "order placed"}}},
		TraceContext: &logv3.TraceContext{TraceId: "trace-1", TraceSegmentId: "seg-1", SpanId: 2},
		Tags:         &logv3.LogTags{Data: []*commonv3.KeyStringValuePair{{Key: "level", Value: "INFO"}}},
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := logs.CloseAndRecv(); err != nil {
		t.Fatalf("logs: %v", err)
	}
	rec := s.logs[0].ResourceLogs().At(0).ScopeLogs().At(0).LogRecords().At(0)
	wantTrace, _ := traceid.FromString("trace-1")
	if rec.Body().Str() != "order placed" || rec.TraceID() != wantTrace || rec.SpanID() != traceid.SpanIDFromSegment("seg-1", 2) || rec.SeverityText() != "INFO" {
		t.Errorf("log record = %q trace %v span %v severity %q", rec.Body().Str(), rec.TraceID(), rec.SpanID(), rec.SeverityText())
	}

	events, err := eventv3.NewEventServiceClient(conn).Collect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	_ = events.Send(&eventv3.Event{Uuid: "u1", Name: "Start", Message: "agent started", Source: &eventv3.Source{Service: "svc", ServiceInstance: "svc-1"}, StartTime: 1700000000002})
	if _, err := events.CloseAndRecv(); err != nil {
		t.Fatalf("events: %v", err)
	}
	if len(s.logs) != 2 || s.logs[1].LogRecordCount() != 1 {
		t.Fatalf("log batches %d, want the event as the second", len(s.logs))
	}

	if _, err := agentv3.NewJVMMetricReportServiceClient(conn).Collect(ctx, &agentv3.JVMMetricCollection{
		Service: "java", ServiceInstance: "java-1",
		Metrics: []*agentv3.JVMMetric{{Time: 1700000000003, Cpu: &commonv3.CPU{UsagePercent: 12.5}, Memory: []*agentv3.Memory{{IsHeap: true, Used: 100}}}},
	}); err != nil {
		t.Fatalf("JVM metrics: %v", err)
	}
	if len(s.metrics) != 2 || s.metrics[1].DataPointCount() != 5 {
		t.Fatalf("JVM metrics converted to %d points, want 5 (cpu + 4 heap)", s.metrics[len(s.metrics)-1].DataPointCount())
	}

	if _, err := agentv3.NewCLRMetricReportServiceClient(conn).Collect(ctx, &agentv3.CLRMetricCollection{
		Service: "net", ServiceInstance: "net-1",
		Metrics: []*agentv3.CLRMetric{{Time: 1700000000004, Gc: &agentv3.ClrGC{Gen0CollectCount: 3, HeapMemory: 1 << 20}}},
	}); err != nil {
		t.Fatalf("CLR metrics: %v", err)
	}
	if len(s.metrics) != 3 || s.metrics[2].DataPointCount() != 4 {
		t.Fatalf("CLR metrics converted to %d points, want 4 (3 generations + heap)", s.metrics[len(s.metrics)-1].DataPointCount())
	}
	_, err = agentv3.NewCLRMetricReportServiceClient(conn).Collect(ctx, &agentv3.CLRMetricCollection{ServiceInstance: "net-1"})
	wantCode(t, err, codes.InvalidArgument, "have no service")
}

func TestServicesAgentsPollAnswerWithoutCommands(t *testing.T) {
	conn := dial(t, startGRPC(t, newDoor(nil, pipeline.Consumers{}), Options{}))
	ctx := testContext(t)
	cmds, err := configurationv3.NewConfigurationDiscoveryServiceClient(conn).FetchConfigurations(ctx, &configurationv3.ConfigurationSyncRequest{Service: "a", Uuid: "x"})
	if err != nil || len(cmds.Commands) != 0 {
		t.Fatalf("FetchConfigurations = %v, %v; want no commands", cmds, err)
	}
	profile := profilev3.NewProfileTaskClient(conn)
	if cmds, err := profile.GetProfileTaskCommands(ctx, &profilev3.ProfileTaskCommandQuery{Service: "a"}); err != nil || len(cmds.Commands) != 0 {
		t.Fatalf("GetProfileTaskCommands = %v, %v", cmds, err)
	}
	snap, err := profile.CollectSnapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	_ = snap.Send(&profilev3.ThreadSnapshot{TaskId: "t"})
	if _, err := snap.CloseAndRecv(); err != nil {
		t.Fatalf("CollectSnapshot: %v", err)
	}
	if _, err := agentv3.NewBrowserPerfServiceClient(conn).CollectPerfData(ctx, &agentv3.BrowserPerfData{Service: "web"}); err != nil {
		t.Fatalf("browser data: %v", err)
	}
}

// refusing is a consumer that turns every batch away with err.
type refusing struct{ err error }

func (r refusing) ConsumeTraces(context.Context, pipeline.Traces) error { return r.err }

func TestPipelineRefusalsMapToRetryableOrNot(t *testing.T) {
	// The real validating pipeline: spans from long ago cannot be stored.
	validating := func(s *sink) *pipeline.Pipeline {
		return pipeline.New(pipeline.Config{}, pipeline.Consumers{Traces: []pipeline.TracesConsumer{s}})
	}
	conn := dial(t, startGRPC(t, validating(&sink{}), Options{}))
	_, err := agentv3.NewTraceSegmentReportServiceClient(conn).CollectInSync(testContext(t), &agentv3.SegmentCollection{Segments: []*agentv3.SegmentObject{segment("t1", "s1", "a")}})
	wantCode(t, err, codes.InvalidArgument, "older than the retention allows")

	// Part of a segment too old: the rest is stored, the client told.
	store := &sink{}
	conn = dial(t, startGRPC(t, validating(store), Options{}))
	seg := segment("t1", "s1", "a")
	now := time.Now().UnixMilli()
	seg.Spans = append(seg.Spans, &agentv3.SpanObject{SpanId: 1, ParentSpanId: 0, StartTime: now, EndTime: now + 1, OperationName: "fresh"})
	_, err = agentv3.NewTraceSegmentReportServiceClient(conn).CollectInSync(testContext(t), &agentv3.SegmentCollection{Segments: []*agentv3.SegmentObject{seg}})
	wantCode(t, err, codes.InvalidArgument, "1 of 2 spans rejected; first: span \"GET /\" of service \"a\": start time 2023-11-14T22:13:20Z is older than the retention allows")
	if spans := store.spans(); len(spans) != 1 || spans[0].Name() != "fresh" {
		t.Errorf("stored %d spans, want the fresh one", len(spans))
	}

	conn = dial(t, startGRPC(t, newDoor(nil, pipeline.Consumers{Traces: []pipeline.TracesConsumer{refusing{fmt.Errorf("admit: %w", pipeline.ErrOverloaded)}}}), Options{}))
	_, err = agentv3.NewTraceSegmentReportServiceClient(conn).CollectInSync(testContext(t), &agentv3.SegmentCollection{Segments: []*agentv3.SegmentObject{segment("t1", "s1", "a")}})
	wantCode(t, err, codes.ResourceExhausted, "server overloaded")
}

// A message whose decoding alone would take more memory than the whole
// in-flight budget is refused before gRPC decodes it: 4 MB of empty spans
// would take 400 MB. gRPC itself answers a stream message it could not
// hand over, with Internal (not retried) and the reason.
func TestGRPCRefusesMessagesTooLargeToDecode(t *testing.T) {
	s := &sink{reg: prometheus.NewRegistry()}
	// A 16 MiB budget: 200k spans, counted at their decoded size, are far
	// over it, and quick to marshal on a loaded machine.
	door := pipeline.New(pipeline.Config{MaxInFlightBytes: 16 << 20, Limits: pipeline.Limits{MaxAge: 100 * 365 * 24 * time.Hour}, Registerer: s.reg},
		pipeline.Consumers{Traces: []pipeline.TracesConsumer{s}})
	conn := dial(t, startGRPC(t, door, Options{}))
	stream, err := agentv3.NewTraceSegmentReportServiceClient(conn).Collect(testContext(t))
	if err != nil {
		t.Fatal(err)
	}
	seg := segment("t1", "s1", "a")
	seg.Spans = make([]*agentv3.SpanObject, 200_000)
	for i := range seg.Spans {
		seg.Spans[i] = &agentv3.SpanObject{}
	}
	_ = stream.Send(seg)
	_, err = stream.CloseAndRecv()
	wantCode(t, err, codes.Internal, "in-flight budget")
	// gRPC answers the agent itself, before the handler counts the refusal.
	poll.Until(t, 10*time.Second, "the refusal to be counted as too large", func() bool {
		return s.counter(t, "skytrail_receiver_spans_rejected_total", "receiver", GRPCReceiver, "reason", "too_large") == 1
	})
}
