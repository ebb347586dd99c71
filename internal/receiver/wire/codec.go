package wire

import (
	"fmt"
	"strings"

	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/proto"
)

// tooLargeToDecode starts the error GuardedCodec gives a message it will
// not decode.
const tooLargeToDecode = "message too large to decode"

// GuardedCodec is gRPC's proto codec, but for a message whose decoding
// (counted as DecodedSize does) would take more than limit bytes of memory:
// that one is refused before it is decoded. gRPC reports a codec's refusal
// as Internal; TooLargeToDecode tells it from other errors.
func GuardedCodec(limit int) encoding.CodecV2 {
	return guardedCodec{proto: encoding.GetCodecV2("proto"), limit: limit}
}

type guardedCodec struct {
	proto encoding.CodecV2
	limit int
}

func (c guardedCodec) Marshal(v any) (mem.BufferSlice, error) { return c.proto.Marshal(v) }

func (c guardedCodec) Unmarshal(data mem.BufferSlice, v any) error {
	if m, ok := v.(proto.Message); ok {
		buf := data.MaterializeToBuffer(mem.DefaultBufferPool())
		defer buf.Free()
		if n := DecodedSize(buf.ReadOnlyData(), m.ProtoReflect().Descriptor()); n > c.limit {
			return fmt.Errorf("%s: it needs %d bytes of memory decoded, more than the server's in-flight budget of %d (--max-inflight-bytes): send smaller batches", tooLargeToDecode, n, c.limit)
		}
		return proto.Unmarshal(buf.ReadOnlyData(), m)
	}
	return c.proto.Unmarshal(data, v)
}

func (guardedCodec) Name() string { return "proto" }

// TooLargeToDecode tells whether a gRPC error is GuardedCodec's refusal.
func TooLargeToDecode(msg string) bool { return strings.Contains(msg, tooLargeToDecode) }
