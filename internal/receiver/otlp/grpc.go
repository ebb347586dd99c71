package otlp

import (
	"context"
	"fmt"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/tap"

	"github.com/skytrail/skytrail/internal/auth"
	"github.com/skytrail/skytrail/internal/pipeline"
	"github.com/skytrail/skytrail/internal/receiver/wire"
	"github.com/skytrail/skytrail/internal/tenant"
)

// NewGRPCServer returns a gRPC server with OTLP's trace, metrics and logs
// services registered, ready for Serve (the caller may register more, such
// as health). Export requests are admitted at the memory their decoding
// will take, counted from their bytes before anything is decoded (see
// wire.DecodedSize): the generated services decode before any code of ours
// runs, so these take the request's bytes through their own descriptors and
// a codec that leaves them undecoded.
func (r *Receiver) NewGRPCServer(opts ...grpc.ServerOption) *grpc.Server {
	own := []grpc.ServerOption{
		grpc.MaxRecvMsgSize(r.cfg.MaxRequestBytes),
		grpc.ForceServerCodecV2(rawCodec{proto: encoding.GetCodecV2("proto")}),
	}
	if r.cfg.Tokens.Len() > 0 {
		// The token is checked when a call's headers arrive, before any of
		// its message is read.
		own = append(own, grpc.InTapHandle(r.tap))
	}
	s := grpc.NewServer(append(own, opts...)...)
	for i := range signals {
		sig := &signals[i]
		method := "/" + sig.service + "/Export"
		s.RegisterService(&grpc.ServiceDesc{
			ServiceName: sig.service,
			HandlerType: (*any)(nil),
			Methods: []grpc.MethodDesc{{
				MethodName: "Export",
				Handler: func(_ any, ctx context.Context, dec func(any) error, interceptor grpc.UnaryServerInterceptor) (any, error) {
					in := &rawMessage{}
					if err := dec(in); err != nil {
						return nil, err
					}
					export := func(ctx context.Context, req any) (any, error) {
						return r.exportGRPC(ctx, sig, req.(*rawMessage))
					}
					if interceptor == nil {
						return export(ctx, in)
					}
					return interceptor(ctx, in, &grpc.UnaryServerInfo{Server: r, FullMethod: method}, export)
				},
			}},
		}, r)
	}
	return s
}

// tap authenticates a call from its metadata. The standard health service
// needs no token: probes and load balancers call it, and it tells nothing
// but whether the server is up.
func (r *Receiver) tap(ctx context.Context, info *tap.Info) (context.Context, error) {
	if strings.HasPrefix(info.FullMethodName, "/grpc.health.v1.Health/") {
		return ctx, nil
	}
	id, err := r.cfg.Tokens.CheckBearer(info.Header.Get("authorization"))
	if err != nil {
		kind := pipeline.SignalSpans
		for i := range signals {
			if strings.HasPrefix(info.FullMethodName, "/"+signals[i].service+"/") {
				kind = signals[i].kind
			}
		}
		return ctx, wire.GRPCError(r.pipeline.Refuse(wire.GRPCSource(ctx, GRPCReceiver), kind, pipeline.Unauthenticated,
			fmt.Errorf("%w (the exporter sends it with OTEL_EXPORTER_OTLP_HEADERS=Authorization=Bearer%%20<token>, or otlptracegrpc.WithHeaders)", err)))
	}
	return auth.NewContext(ctx, id), nil
}

func (r *Receiver) exportGRPC(ctx context.Context, sig *signal, in *rawMessage) (*rawMessage, error) {
	body := in.b
	src := wire.GRPCSource(ctx, GRPCReceiver)
	var orgID string
	if v := metadata.ValueFromIncomingContext(ctx, tenant.MetadataKey); len(v) > 0 {
		orgID = v[0]
	}
	p, err := r.route(src, sig.kind, auth.FromContext(ctx), orgID)
	if err != nil {
		return nil, wire.GRPCError(err)
	}
	req := p.Begin(src, sig.kind)
	defer req.Release()
	if err := req.Grow(wire.DecodedSize(body, sig.request)); err != nil {
		return nil, wire.GRPCError(err)
	}
	batch, err := sig.decode(body, false)
	if err != nil {
		return nil, wire.GRPCError(req.Refuse(pipeline.Malformed, err))
	}
	// The journal writes the request in the room rawCodec left in front of
	// it, without a copy.
	switch b := batch.(type) {
	case *pipeline.Traces:
		b.RawRoom = in.room
	case *pipeline.Logs:
		b.RawRoom = in.room
	case *pipeline.Metrics:
		b.RawRoom = in.room
	}
	out, err := req.Ingest(ctx, batch)
	if err != nil {
		return nil, wire.GRPCError(err)
	}
	b, err := sig.respond(out, false)
	if err != nil {
		return nil, wire.GRPCError(fmt.Errorf("encode the export response: %w", err))
	}
	return &rawMessage{b: b}, nil
}

// rawMessage is a message's bytes as they are on the wire. A request's are
// read into room: b with pipeline.RecordHeaderSize bytes in front, where
// the write-ahead log puts its record header.
type rawMessage struct{ b, room []byte }

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
		m.room = make([]byte, pipeline.RecordHeaderSize+data.Len())
		data.CopyTo(m.room[pipeline.RecordHeaderSize:])
		m.b = m.room[pipeline.RecordHeaderSize:]
		return nil
	}
	return c.proto.Unmarshal(data, v)
}

func (rawCodec) Name() string { return "proto" }
