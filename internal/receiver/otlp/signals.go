package otlp

import (
	"fmt"

	"go.opentelemetry.io/collector/pdata/plog/plogotlp"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	collogspb "go.opentelemetry.io/proto/otlp/collector/logs/v1"
	colmetricspb "go.opentelemetry.io/proto/otlp/collector/metrics/v1"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/skytrail/skytrail/internal/pipeline"
)

// signal is what the receiver needs to know of one OTLP signal, the same
// for both transports: where it is served, how its request is counted
// before decoding (wire.DecodedSize), decoded, and answered.
type signal struct {
	kind    pipeline.Signal
	service string // the gRPC service, with its Export method
	path    string // the HTTP path
	request protoreflect.MessageDescriptor
	// decode reads an Export request, protobuf or JSON, into a batch.
	decode func(body []byte, json bool) (pipeline.Batch, error)
	// respond encodes the Export response, with a partial success when
	// items were refused.
	respond func(out pipeline.Outcome, json bool) ([]byte, error)
}

var signals = []signal{
	{
		kind:    pipeline.SignalSpans,
		service: "opentelemetry.proto.collector.trace.v1.TraceService",
		path:    "/v1/traces",
		request: (&coltracepb.ExportTraceServiceRequest{}).ProtoReflect().Descriptor(),
		decode: func(body []byte, json bool) (pipeline.Batch, error) {
			req := ptraceotlp.NewExportRequest()
			if err := unmarshal(req, body, json); err != nil {
				return nil, fmt.Errorf("cannot decode ExportTraceServiceRequest: %w", err)
			}
			return &pipeline.Traces{Traces: req.Traces(), Raw: raw(body, json)}, nil
		},
		respond: func(out pipeline.Outcome, json bool) ([]byte, error) {
			resp := ptraceotlp.NewExportResponse()
			if out.Rejected > 0 {
				resp.PartialSuccess().SetRejectedSpans(int64(out.Rejected))
				resp.PartialSuccess().SetErrorMessage(out.Message)
			}
			return marshal(resp, json)
		},
	},
	{
		kind:    pipeline.SignalMetrics,
		service: "opentelemetry.proto.collector.metrics.v1.MetricsService",
		path:    "/v1/metrics",
		request: (&colmetricspb.ExportMetricsServiceRequest{}).ProtoReflect().Descriptor(),
		decode: func(body []byte, json bool) (pipeline.Batch, error) {
			req := pmetricotlp.NewExportRequest()
			if err := unmarshal(req, body, json); err != nil {
				return nil, fmt.Errorf("cannot decode ExportMetricsServiceRequest: %w", err)
			}
			return &pipeline.Metrics{Metrics: req.Metrics(), Raw: raw(body, json)}, nil
		},
		respond: func(out pipeline.Outcome, json bool) ([]byte, error) {
			resp := pmetricotlp.NewExportResponse()
			if out.Rejected > 0 {
				resp.PartialSuccess().SetRejectedDataPoints(int64(out.Rejected))
				resp.PartialSuccess().SetErrorMessage(out.Message)
			}
			return marshal(resp, json)
		},
	},
	{
		kind:    pipeline.SignalLogs,
		service: "opentelemetry.proto.collector.logs.v1.LogsService",
		path:    "/v1/logs",
		request: (&collogspb.ExportLogsServiceRequest{}).ProtoReflect().Descriptor(),
		decode: func(body []byte, json bool) (pipeline.Batch, error) {
			req := plogotlp.NewExportRequest()
			if err := unmarshal(req, body, json); err != nil {
				return nil, fmt.Errorf("cannot decode ExportLogsServiceRequest: %w", err)
			}
			return &pipeline.Logs{Logs: req.Logs(), Raw: raw(body, json)}, nil
		},
		respond: func(out pipeline.Outcome, json bool) ([]byte, error) {
			resp := plogotlp.NewExportResponse()
			if out.Rejected > 0 {
				resp.PartialSuccess().SetRejectedLogRecords(int64(out.Rejected))
				resp.PartialSuccess().SetErrorMessage(out.Message)
			}
			return marshal(resp, json)
		},
	},
}

// The pdata request and response types, as far as the receiver uses them.
type unmarshaler interface {
	UnmarshalProto([]byte) error
	UnmarshalJSON([]byte) error
}

type marshaler interface {
	MarshalProto() ([]byte, error)
	MarshalJSON() ([]byte, error)
}

// raw is a protobuf body, for the write-ahead log to keep as it came (the
// Export request's wire format is the signal's data's); a JSON one must be
// marshalled.
func raw(body []byte, json bool) []byte {
	if json {
		return nil
	}
	return body
}

func unmarshal(m unmarshaler, body []byte, json bool) error {
	if json {
		return m.UnmarshalJSON(body)
	}
	return m.UnmarshalProto(body)
}

func marshal(m marshaler, json bool) ([]byte, error) {
	if json {
		return m.MarshalJSON()
	}
	return m.MarshalProto()
}
