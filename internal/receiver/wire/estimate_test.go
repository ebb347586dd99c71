package wire

import (
	"testing"
	"time"

	collogspb "go.opentelemetry.io/proto/otlp/collector/logs/v1"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"go.opentelemetry.io/collector/pdata/plog/plogotlp"

	"github.com/skytrail/skytrail/internal/loadgen"
)

// decodedMessages counts the messages within m by decoding it: what
// countMessages must find from the wire alone.
func decodedMessages(m protoreflect.Message) int {
	n := 0
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		switch {
		case fd.IsMap():
			v.Map().Range(func(_ protoreflect.MapKey, mv protoreflect.Value) bool {
				n++ // the entry
				if fd.MapValue().Message() != nil {
					n += 1 + decodedMessages(mv.Message())
				}
				return true
			})
		case fd.IsList() && fd.Message() != nil:
			for i := range v.List().Len() {
				n += 1 + decodedMessages(v.List().Get(i).Message())
			}
		case fd.Message() != nil:
			n += 1 + decodedMessages(v.Message())
		}
		return true
	})
	return n
}

func TestDecodedSizeCountsEveryMessage(t *testing.T) {
	logs, err := plogotlp.NewExportRequestFromLogs(loadgen.Logs(loadgen.LogLines(50, 1, time.Now()))).MarshalProto()
	if err != nil {
		t.Fatal(err)
	}
	// Nested values: an array of key-value lists of arrays, the cycle
	// AnyValue → ArrayValue → AnyValue the shapes must close.
	nested := []byte(`{"resourceSpans":[{"resource":{"attributes":[{"key":"k","value":{"arrayValue":{"values":[
		{"kvlistValue":{"values":[{"key":"a","value":{"arrayValue":{"values":[{"intValue":"1"},{"stringValue":"x"}]}}}]}},
		{"arrayValue":{"values":[{"arrayValue":{}}]}}]}}}]},
		"scopeSpans":[{"spans":[{"name":"s",
		"events":[{"name":"e","attributes":[{"key":"b","value":{"boolValue":true}}]}],"links":[{}]}]}]}]}`)
	traces := &coltracepb.ExportTraceServiceRequest{}
	if err := protojson.Unmarshal(nested, traces); err != nil {
		t.Fatal(err)
	}
	tracesWire, err := proto.Marshal(traces)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		wire []byte
		msg  proto.Message
	}{
		{"OTLP logs", logs, &collogspb.ExportLogsServiceRequest{}},
		{"nested OTLP values", tracesWire, &coltracepb.ExportTraceServiceRequest{}},
	} {
		if err := proto.Unmarshal(c.wire, c.msg); err != nil {
			t.Fatal(err)
		}
		md := c.msg.ProtoReflect().Descriptor()
		want := len(c.wire) + BytesPerMessage*(1+decodedMessages(c.msg.ProtoReflect()))
		if got := DecodedSize(c.wire, md); got != want {
			t.Errorf("%s: DecodedSize = %d, decoding counts %d", c.name, got, want)
		}
	}
}

func BenchmarkDecodedSize(b *testing.B) {
	body, err := plogotlp.NewExportRequestFromLogs(loadgen.Logs(loadgen.LogLines(1000, 1, time.Now()))).MarshalProto()
	if err != nil {
		b.Fatal(err)
	}
	md := (&collogspb.ExportLogsServiceRequest{}).ProtoReflect().Descriptor()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		DecodedSize(body, md)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/1000, "ns/line")
}

// FuzzDecodedSize: any bytes are counted without a panic, and never as
// less than their own size.
func FuzzDecodedSize(f *testing.F) {
	body, err := plogotlp.NewExportRequestFromLogs(loadgen.Logs(loadgen.LogLines(3, 1, time.Now()))).MarshalProto()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(body)
	f.Add([]byte{0x0a, 0x02, 0x0a, 0x00})
	md := (&collogspb.ExportLogsServiceRequest{}).ProtoReflect().Descriptor()
	f.Fuzz(func(t *testing.T, b []byte) {
		if n := DecodedSize(b, md); n < len(b)+BytesPerMessage {
			t.Fatalf("DecodedSize = %d for %d bytes", n, len(b))
		}
	})
}
