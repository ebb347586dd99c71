// Package tracegrpc wraps otelgrpc so gRPC servers and clients are traced
// with spans named by full method, and outgoing calls carry sw8 as well as
// traceparent, with the caller's endpoint and the address called.
package tracegrpc

import (
	"context"
	"strings"

	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"google.golang.org/grpc"

	"github.com/skytrail/skytrail/sdk/sw8"
)

// ServerOptions returns the options that trace a grpc.Server.
func ServerOptions(opts ...otelgrpc.Option) []grpc.ServerOption {
	return []grpc.ServerOption{
		grpc.StatsHandler(otelgrpc.NewServerHandler(opts...)),
		grpc.ChainUnaryInterceptor(func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
			return h(sw8.ContextWithEndpoint(ctx, endpoint(info.FullMethod)), req)
		}),
		grpc.ChainStreamInterceptor(func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
			return h(srv, endpointStream{ServerStream: ss, ctx: sw8.ContextWithEndpoint(ss.Context(), endpoint(info.FullMethod))})
		}),
	}
}

// DialOptions returns the options that trace a grpc.ClientConn.
func DialOptions(opts ...otelgrpc.Option) []grpc.DialOption {
	return []grpc.DialOption{
		grpc.WithStatsHandler(otelgrpc.NewClientHandler(opts...)),
		grpc.WithChainUnaryInterceptor(func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
			return invoker(sw8.ContextWithPeer(ctx, peer(cc.Target())), method, req, reply, cc, opts...)
		}),
		grpc.WithChainStreamInterceptor(func(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
			return streamer(sw8.ContextWithPeer(ctx, peer(cc.Target())), desc, cc, method, opts...)
		}),
	}
}

// endpoint is the span name otelgrpc gives a method ("pkg.Service/Method"),
// so sw8 names the caller's endpoint as SkyTrail shows it.
func endpoint(fullMethod string) string { return strings.TrimPrefix(fullMethod, "/") }

// peer turns a dial target ("dns:///orders:50051", "passthrough:///x:1")
// into the address part SkyWalking records.
func peer(target string) string {
	if _, rest, ok := strings.Cut(target, "://"); ok {
		target = strings.TrimLeft(rest, "/")
	}
	return target
}

type endpointStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s endpointStream) Context() context.Context { return s.ctx }
