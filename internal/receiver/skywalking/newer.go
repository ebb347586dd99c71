package skywalking

import (
	"context"
	"errors"
	"io"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/emptypb"

	"github.com/skytrail/skytrail/internal/pipeline"
	"github.com/skytrail/skytrail/internal/receiver/wire"
)

// Services newer agents call that the pinned goapi module has no Go types
// for: the Java agent's async-profiler poll (9.4+), skywalking-go's pprof
// poll and its Go runtime report. They are registered from hand-written
// descriptors; a request is read as an Empty whose unknown fields are the
// raw message, and the answer, Commands, is empty on the wire like Empty.
// Source: apache/skywalking-data-collect-protocol asyncprofiler/AsyncProfiler.proto,
// pprof/pprof.proto, language-agent/GolangMetric.proto.
var (
	asyncProfilerService = grpc.ServiceDesc{
		ServiceName: "skywalking.v10.AsyncProfilerTask",
		HandlerType: (*any)(nil),
		Methods:     []grpc.MethodDesc{{MethodName: "getAsyncProfilerTaskCommands", Handler: noCommandsHandler("/skywalking.v10.AsyncProfilerTask/getAsyncProfilerTaskCommands")}},
		Streams:     []grpc.StreamDesc{{StreamName: "collect", Handler: discardStream, ClientStreams: true}},
	}
	pprofService = grpc.ServiceDesc{
		ServiceName: "skywalking.v10.PprofTask",
		HandlerType: (*any)(nil),
		Methods:     []grpc.MethodDesc{{MethodName: "getPprofTaskCommands", Handler: noCommandsHandler("/skywalking.v10.PprofTask/getPprofTaskCommands")}},
		Streams:     []grpc.StreamDesc{{StreamName: "collect", Handler: discardStream, ClientStreams: true, ServerStreams: true}},
	}
	golangMetricService = grpc.ServiceDesc{
		ServiceName: "skywalking.v3.GolangMetricReportService",
		HandlerType: (*any)(nil),
		Methods: []grpc.MethodDesc{{MethodName: "collect", Handler: func(srv any, ctx context.Context, dec func(any) error, interceptor grpc.UnaryServerInterceptor) (any, error) {
			in := srv.(*ingester)
			return unaryRaw(ctx, dec, interceptor, "/skywalking.v3.GolangMetricReportService/collect", func(ctx context.Context, raw []byte) error {
				req := in.pipelineOf(ctx).Begin(wire.GRPCSource(ctx, GRPCReceiver), pipeline.SignalMetrics)
				defer req.Release()
				return in.golangMetrics(ctx, req, raw)
			})
		}}},
	}
)

// registerNewer registers the hand-described services on s.
func registerNewer(s *grpc.Server, in *ingester) {
	s.RegisterService(&asyncProfilerService, in)
	s.RegisterService(&pprofService, in)
	s.RegisterService(&golangMetricService, in)
}

// unaryRaw decodes a unary request as raw bytes and runs handle behind the
// server's interceptors (authentication), answering empty Commands.
func unaryRaw(ctx context.Context, dec func(any) error, interceptor grpc.UnaryServerInterceptor, method string, handle func(context.Context, []byte) error) (any, error) {
	req := &emptypb.Empty{}
	if err := dec(req); err != nil {
		return nil, err
	}
	call := func(ctx context.Context, req any) (any, error) {
		if err := handle(ctx, req.(*emptypb.Empty).ProtoReflect().GetUnknown()); err != nil {
			return nil, wire.GRPCError(err)
		}
		return &emptypb.Empty{}, nil
	}
	if interceptor == nil {
		return call(ctx, req)
	}
	return interceptor(ctx, req, &grpc.UnaryServerInfo{FullMethod: method}, call)
}

// noCommandsHandler answers a poll for tasks with none.
func noCommandsHandler(method string) func(any, context.Context, func(any) error, grpc.UnaryServerInterceptor) (any, error) {
	return func(_ any, ctx context.Context, dec func(any) error, interceptor grpc.UnaryServerInterceptor) (any, error) {
		return unaryRaw(ctx, dec, interceptor, method, func(context.Context, []byte) error { return nil })
	}
}

// discardStream reads a client stream to its end and answers empty Commands.
// No task is ever handed out, so agents have nothing to upload here.
func discardStream(_ any, stream grpc.ServerStream) error {
	for {
		err := stream.RecvMsg(&emptypb.Empty{})
		if errors.Is(err, io.EOF) {
			return stream.SendMsg(&emptypb.Empty{})
		}
		if err != nil {
			return err
		}
	}
}
