package skywalking

import (
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	profilev3 "skywalking.apache.org/repo/goapi/collect/language/profile/v3"

	"github.com/skytrail/skytrail/internal/pipeline"
)

// goRuntimeReport encodes a GolangMetricCollection as skywalking-go sends it.
func goRuntimeReport() []byte {
	var metric []byte
	for num, v := range map[protowire.Number]uint64{1: 1700000000000, 2: 4 << 20, 6: 42} {
		metric = protowire.AppendTag(metric, num, protowire.VarintType)
		metric = protowire.AppendVarint(metric, v)
	}
	var b []byte
	b = protowire.AppendTag(b, 1, protowire.BytesType)
	b = protowire.AppendBytes(b, metric)
	b = protowire.AppendTag(b, 2, protowire.BytesType)
	b = protowire.AppendString(b, "go-svc")
	b = protowire.AppendTag(b, 3, protowire.BytesType)
	b = protowire.AppendString(b, "go-svc-1")
	return b
}

// rawMessage is a message's wire bytes.
type rawMessage []byte

func TestServicesNewerThanTheGoapiModule(t *testing.T) {
	s := &sink{}
	conn := dial(t, startGRPC(t, s.door(), Options{}), grpc.WithDefaultCallOptions(grpc.ForceCodec(rawCodec{})))
	ctx := testContext(t)

	// The pollers get no tasks; their query has the same fields as ProfileTaskCommandQuery.
	query, err := proto.Marshal(&profilev3.ProfileTaskCommandQuery{Service: "java", ServiceInstance: "java-1", LastCommandTime: 5})
	if err != nil {
		t.Fatal(err)
	}
	for _, method := range []string{"/skywalking.v10.AsyncProfilerTask/getAsyncProfilerTaskCommands", "/skywalking.v10.PprofTask/getPprofTaskCommands"} {
		var reply rawMessage
		if err := conn.Invoke(ctx, method, rawMessage(query), &reply); err != nil || len(reply) != 0 {
			t.Errorf("%s = %x, %v; want empty Commands", method, reply, err)
		}
	}
	stream, err := conn.NewStream(ctx, &grpc.StreamDesc{ClientStreams: true}, "/skywalking.v10.AsyncProfilerTask/collect")
	if err != nil {
		t.Fatal(err)
	}
	_ = stream.SendMsg(rawMessage{0x1a, 0x01, 0x00})
	_ = stream.CloseSend()
	var reply rawMessage
	if err := stream.RecvMsg(&reply); err != nil {
		t.Errorf("AsyncProfilerTask/collect: %v", err)
	}

	if err := conn.Invoke(ctx, "/skywalking.v3.GolangMetricReportService/collect", rawMessage(goRuntimeReport()), &reply); err != nil {
		t.Fatalf("GolangMetricReportService/collect: %v", err)
	}
	if len(s.metrics) != 1 {
		t.Fatalf("metric batches = %d, want 1", len(s.metrics))
	}
	metrics := s.metrics[0].ResourceMetrics().At(0).ScopeMetrics().At(0).Metrics()
	got := map[string]float64{}
	for _, m := range metrics.All() {
		got[m.Name()] = m.Gauge().DataPoints().At(0).DoubleValue()
	}
	if got["instance_golang_heap_alloc"] != 4<<20 || got["instance_golang_goroutine_num"] != 42 || len(got) != 2 {
		t.Errorf("gauges = %v", got)
	}

	err = conn.Invoke(ctx, "/skywalking.v3.GolangMetricReportService/collect", rawMessage{0x12}, &reply)
	wantCode(t, err, codes.Internal, "") // gRPC refuses a truncated message before the handler
}

func TestNewerServicesNeedTheToken(t *testing.T) {
	conn := dial(t, startGRPC(t, newDoor(nil, pipeline.Consumers{}), Options{Token: "s3cret"}), grpc.WithDefaultCallOptions(grpc.ForceCodec(rawCodec{})))
	var reply rawMessage
	err := conn.Invoke(testContext(t), "/skywalking.v3.GolangMetricReportService/collect", rawMessage(goRuntimeReport()), &reply)
	wantCode(t, err, codes.Unauthenticated, "Authentication")
	stream, err := conn.NewStream(testContext(t), &grpc.StreamDesc{ClientStreams: true}, "/skywalking.v10.AsyncProfilerTask/collect")
	if err == nil {
		_ = stream.CloseSend()
		err = stream.RecvMsg(&reply)
	}
	wantCode(t, err, codes.Unauthenticated, "Authentication")
}

// rawCodec passes rawMessage bytes through as the "proto" codec, so a test
// can speak messages it has no Go types for.
type rawCodec struct{}

func (rawCodec) Name() string { return "proto" }

func (rawCodec) Marshal(v any) ([]byte, error) { return v.(rawMessage), nil }

func (rawCodec) Unmarshal(data []byte, v any) error {
	*v.(*rawMessage) = append(rawMessage(nil), data...)
	return nil
}
