package wire

import (
	"sync"

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
	return len(b) + BytesPerMessage*(1+countMessages(b, shapeOf(md), 0))
}

// A shape is what countMessages needs of a message type: which of its field
// numbers hold messages, and their shapes. It runs over every request
// before decoding; looking fields up in a slice rather than through the
// descriptor took it from 543 to 299 ns a log line (BenchmarkDecodedSize).
type shape struct {
	children []*shape                    // by field number; nil: not a message field
	far      map[protowire.Number]*shape // message fields numbered from farField on
}

// farField is the first field number a shape keeps in a map rather than in
// its slice (OTLP's and SkyWalking's messages number their fields below 32).
const farField = 256

// child is the shape of field num's messages, nil if it holds none.
func (s *shape) child(num protowire.Number) *shape {
	if num < protowire.Number(len(s.children)) {
		return s.children[num]
	}
	return s.far[num]
}

// shapes caches a shape for every message type met, by descriptor (the
// generated descriptors are singletons).
var shapes sync.Map // protoreflect.MessageDescriptor → *shape

func shapeOf(md protoreflect.MessageDescriptor) *shape {
	if s, ok := shapes.Load(md); ok {
		return s.(*shape)
	}
	built := map[protoreflect.MessageDescriptor]*shape{}
	s := buildShape(md, built)
	// Published only once whole: a shape under construction may be
	// reached through a cycle.
	for md, s := range built {
		shapes.LoadOrStore(md, s)
	}
	return s
}

// buildShape builds md's shape and those of the messages within it into
// seen, which also ends cycles (AnyValue holds an ArrayValue of AnyValues).
func buildShape(md protoreflect.MessageDescriptor, seen map[protoreflect.MessageDescriptor]*shape) *shape {
	if s, ok := shapes.Load(md); ok {
		return s.(*shape)
	}
	if s, ok := seen[md]; ok {
		return s
	}
	s := &shape{}
	seen[md] = s
	fields := md.Fields()
	for i := range fields.Len() {
		fd := fields.Get(i)
		if fd.Message() == nil {
			continue
		}
		child := buildShape(fd.Message(), seen)
		switch n := int(fd.Number()); {
		case n >= farField:
			if s.far == nil {
				s.far = map[protowire.Number]*shape{}
			}
			s.far[fd.Number()] = child
		default:
			if n >= len(s.children) {
				s.children = append(s.children, make([]*shape, n+1-len(s.children))...)
			}
			s.children[n] = child
		}
	}
	return s
}

// countMessages counts the messages embedded in b, a message of shape s.
func countMessages(b []byte, s *shape, depth int) int {
	if depth >= maxDepth {
		return len(b) / 2
	}
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
		if child := s.child(num); child != nil {
			n += 1 + countMessages(v, child, depth+1)
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
