package sw8

import "context"

type (
	endpointKey  struct{}
	peerKey      struct{}
	extractedKey struct{}
)

// ContextWithEndpoint records the endpoint (route template, RPC method) of the
// request being served, which sw8 carries as the caller's parent endpoint on
// every outgoing call made with the returned context. The tracehttp and
// tracegrpc server wrappers set it; without it the current span's name is sent.
func ContextWithEndpoint(ctx context.Context, endpoint string) context.Context {
	return context.WithValue(ctx, endpointKey{}, endpoint)
}

// ContextWithPeer records the host:port an outgoing call is made to, which
// sw8 carries as the address the client used. The tracehttp and tracegrpc
// client wrappers set it per call.
func ContextWithPeer(ctx context.Context, address string) context.Context {
	return context.WithValue(ctx, peerKey{}, address)
}

// FromContext returns the sw8 header extracted into ctx by Propagator.Extract,
// with the caller's SkyWalking values as they were sent.
func FromContext(ctx context.Context) (Header, bool) {
	h, ok := ctx.Value(extractedKey{}).(*Header)
	if !ok {
		return Header{}, false
	}
	return *h, true
}

func stringValue(ctx context.Context, key any) string {
	s, _ := ctx.Value(key).(string)
	return s
}
