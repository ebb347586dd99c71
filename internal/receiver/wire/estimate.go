package wire

import (
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// BytesPerMessage is what one message costs in memory once decoded, beyond
// its bytes on the wire. Decoding takes far more than a request's size when
// the request holds many small messages: pdata took 110 to 310 bytes for each
// empty resource, scope, span, event, link or attribute (an empty
// ResourceSpans is 2 bytes on the wire: 43 times its size), and 5 times the
// wire size for ordinary spans of ten attributes (measured with
// runtime.MemStats around ExportRequest.UnmarshalProto, 200k items each).
// Charging the in-flight budget the wire size alone let four 16 MiB requests
// of empty resources take 4.9 GB.
const BytesPerMessage = 200

// maxDepth bounds how deep DecodedSize follows nested messages (OTLP's
// AnyValue nests without end); beyond it, every two bytes count as a message,
// the most they could hold.
const maxDepth = 64

// DecodedSize estimates the memory decoding b as a message of type md takes:
// its bytes, and BytesPerMessage for each message within it, counted from the
// wire with md's descriptor and without decoding anything. What does not
// parse is counted as far as it goes: the decoder refuses it anyway.
func DecodedSize(b []byte, md protoreflect.MessageDescriptor) int {
	return len(b) + BytesPerMessage*(1+countMessages(b, md, 0))
}

// countMessages counts the messages embedded in b, a message of type md.
func countMessages(b []byte, md protoreflect.MessageDescriptor, depth int) int {
	if depth >= maxDepth {
		return len(b) / 2
	}
	fields := md.Fields()
	n := 0
	for len(b) > 0 {
		num, typ, l := protowire.ConsumeTag(b)
		if l < 0 {
			return n
		}
		b = b[l:]
		if typ != protowire.BytesType {
			if l = protowire.ConsumeFieldValue(num, typ, b); l < 0 {
				return n
			}
			b = b[l:]
			continue
		}
		v, l := protowire.ConsumeBytes(b)
		if l < 0 {
			return n
		}
		b = b[l:]
		// A message field (a map entry is a message of its key and value).
		if fd := fields.ByNumber(num); fd != nil && fd.Message() != nil {
			n += 1 + countMessages(v, fd.Message(), depth+1)
		}
	}
	return n
}

// JSONDecodedSize estimates the memory decoding the JSON document b takes:
// its bytes, and BytesPerMessage for each object in it (every object
// becomes a message), counted without decoding anything.
func JSONDecodedSize(b []byte) int {
	objects, inString, escaped := 0, false, false
	for _, c := range b {
		switch {
		case escaped:
			escaped = false
		case inString:
			switch c {
			case '\\':
				escaped = true
			case '"':
				inString = false
			}
		case c == '"':
			inString = true
		case c == '{':
			objects++
		}
	}
	return len(b) + BytesPerMessage*(1+objects)
}
