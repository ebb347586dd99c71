package otlp

import (
	"context"
	"fmt"

	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/skytrail/skytrail/internal/pipeline"
	"github.com/skytrail/skytrail/internal/receiver/wire"
)

// NewGRPCServer returns a gRPC server with the OTLP TraceService
// registered, ready for Serve (the caller may register more services, such
// as health). Export requests are admitted at the memory their decoding
// will take, counted from their bytes before anything is decoded (see
// wire.DecodedSize).
func (r *Receiver) NewGRPCServer(opts ...grpc.ServerOption) *grpc.Server {
	s := grpc.NewServer(append([]grpc.ServerOption{
		grpc.MaxRecvMsgSize(r.cfg.MaxRequestBytes),
		grpc.ForceServerCodecV2(rawCodec{proto: encoding.GetCodecV2("proto")}),
	}, opts...)...)
	s.RegisterService(&traceServiceDesc, r)
	return s
}

// traceServiceDesc is OTLP's TraceService with a handler that takes the
// request's bytes, not a decoded request (the generated one decodes before
// any code of ours runs).
var traceServiceDesc = grpc.ServiceDesc{
	ServiceName: "opentelemetry.proto.collector.trace.v1.TraceService",
	HandlerType: (*any)(nil),
	Methods: []grpc.MethodDesc{{
		MethodName: "Export",
		Handler: func(srv any, ctx context.Context, dec func(any) error, interceptor grpc.UnaryServerInterceptor) (any, error) {
			in := &rawMessage{}
			if err := dec(in); err != nil {
				return nil, err
			}
			export := func(ctx context.Context, req any) (any, error) {
				return srv.(*Receiver).exportGRPC(ctx, req.(*rawMessage).b)
			}
			if interceptor == nil {
				return export(ctx, in)
			}
			return interceptor(ctx, in, &grpc.UnaryServerInfo{Server: srv, FullMethod: "/opentelemetry.proto.collector.trace.v1.TraceService/Export"}, export)
		},
	}},
	Metadata: "opentelemetry/proto/collector/trace/v1/trace_service.proto",
}

// traceRequest describes ExportTraceServiceRequest, for counting the
// messages in a request before decoding it.
var traceRequest protoreflect.MessageDescriptor = (&coltracepb.ExportTraceServiceRequest{}).ProtoReflect().Descriptor()

func (r *Receiver) exportGRPC(ctx context.Context, body []byte) (*rawMessage, error) {
	req := r.pipeline.Begin(wire.GRPCSource(ctx, GRPCReceiver), pipeline.SignalSpans)
	defer req.Release()
	if err := req.Grow(wire.DecodedSize(body, traceRequest)); err != nil {
		return nil, wire.GRPCError(err)
	}
	otlpReq := ptraceotlp.NewExportRequest()
	if err := otlpReq.UnmarshalProto(body); err != nil {
		return nil, wire.GRPCError(req.Refuse(pipeline.Malformed, fmt.Errorf("cannot decode ExportTraceServiceRequest: %w", err)))
	}
	out, err := req.Ingest(ctx, &pipeline.Traces{Traces: otlpReq.Traces()})
	if err != nil {
		return nil, wire.GRPCError(err)
	}
	resp := ptraceotlp.NewExportResponse()
	if out.Rejected > 0 {
		resp.PartialSuccess().SetRejectedSpans(int64(out.Rejected))
		resp.PartialSuccess().SetErrorMessage(out.Message)
	}
	b, err := resp.MarshalProto()
	if err != nil {
		return nil, wire.GRPCError(fmt.Errorf("encode the export response: %w", err))
	}
	return &rawMessage{b: b}, nil
}

// rawMessage is a message's bytes as they are on the wire.
type rawMessage struct{ b []byte }

// rawCodec hands a rawMessage its bytes undecoded and sends one's bytes as
// they are; every other message (the health service's) goes to the proto
// codec.
type rawCodec struct{ proto encoding.CodecV2 }

func (c rawCodec) Marshal(v any) (mem.BufferSlice, error) {
	if m, ok := v.(*rawMessage); ok {
		return mem.BufferSlice{mem.SliceBuffer(m.b)}, nil
	}
	return c.proto.Marshal(v)
}

func (c rawCodec) Unmarshal(data mem.BufferSlice, v any) error {
	if m, ok := v.(*rawMessage); ok {
		m.b = data.Materialize()
		return nil
	}
	return c.proto.Unmarshal(data, v)
}

func (rawCodec) Name() string { return "proto" }
