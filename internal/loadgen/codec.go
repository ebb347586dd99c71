package loadgen

import (
	"fmt"

	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/mem"
)

// rawCodec hands a pre-encoded batch to gRPC as is and returns the response
// bytes undecoded. It calls itself "proto" because that is what the bytes
// are: the request goes out as application/grpc+proto, which every server
// accepts.
//
// gRPC may still be writing a request after Invoke returns (when the server
// answers before reading it all, e.g. with an early error), so the batch is
// lent to gRPC as a reference-counted buffer and its owner waits for the
// release before patching it again.
type rawCodec struct{}

var _ encoding.CodecV2 = rawCodec{}

func (rawCodec) Name() string { return "proto" }

func (rawCodec) Marshal(v any) (mem.BufferSlice, error) {
	b, ok := v.(*batch)
	if !ok {
		return nil, fmt.Errorf("loadgen codec: cannot send %T", v)
	}
	if mem.IsBelowBufferPoolingThreshold(cap(b.buf)) {
		// gRPC would not count references to so small a buffer; a copy is cheap.
		return mem.BufferSlice{mem.SliceBuffer(append([]byte(nil), b.buf...))}, nil
	}
	b.marshaled = true
	return mem.BufferSlice{mem.NewBuffer(&b.buf, releaser{b})}, nil
}

func (rawCodec) Unmarshal(data mem.BufferSlice, v any) error {
	out, ok := v.(*[]byte)
	if !ok {
		return fmt.Errorf("loadgen codec: cannot decode into %T", v)
	}
	*out = data.Materialize()
	return nil
}

// releaser is the mem.BufferPool of one batch: gRPC puts the buffer back when
// it no longer needs it, which tells the batch's owner it may write again.
type releaser struct{ b *batch }

func (r releaser) Get(n int) *[]byte {
	buf := make([]byte, n)
	return &buf
}

func (r releaser) Put(*[]byte) { r.b.released <- struct{}{} }

// awaitRelease waits until gRPC has let go of the batch's buffer after a call.
func (b *batch) awaitRelease() {
	if b.marshaled {
		<-b.released
		b.marshaled = false
	}
}
