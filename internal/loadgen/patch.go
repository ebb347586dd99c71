package loadgen

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"sync/atomic"
	"time"

	"google.golang.org/protobuf/encoding/protowire"
)

// The client must cost little next to the server it measures, so it never
// builds a message while running. Each pooled batch is encoded once; what
// must change on every send sits at known byte offsets and is overwritten in
// place:
//
//   - trace IDs: fresh per trace per send, so every sent trace is new;
//   - span IDs (OTLP) / segment IDs (SkyWalking): the template value XOR a
//     per-trace salt, which keeps IDs distinct within a trace and keeps
//     parent links (parent_span_id, parentTraceSegmentId) pointing at the
//     right span, because parent and child get the same salt;
//   - timestamps: template value + (now - template time), so spans are
//     current and keep their relative layout.
//
// Every patched field has a fixed width: OTLP IDs are bytes fields of 16/8
// bytes and its times fixed64; SkyWalking IDs are 32-character hex strings
// we choose, and its millisecond times are varints that take exactly six
// bytes for every date from 1971 to 2109, so they too can be rewritten in
// place. (The alternative, re-encoding or refreshing the pool every few
// seconds with a fixed base time, would cost more and make timestamps lag.)

// traceSite is where a trace ID sits in a batch.
type traceSite struct {
	off   int32
	trace int32 // which trace of the batch
}

// idSite is where a span ID (OTLP) or segment ID (SkyWalking) sits.
type idSite struct {
	off   int32
	trace int32
	orig  [16]byte // template value; OTLP span IDs use the first 8 bytes
}

// timeSite is where a timestamp sits and what it was in the template.
type timeSite struct {
	off  int32
	orig int64
}

// wire says how a batch encodes the fields that are patched.
type wire uint8

const (
	// wireOTLP: raw 16-byte trace IDs, 8-byte span IDs, fixed64 nanoseconds.
	wireOTLP wire = iota
	// wireSkyWalking: 32-char hex trace and segment IDs, 6-byte varint milliseconds.
	wireSkyWalking
)

// batch is one pre-encoded request and the offsets of its patchable fields.
type batch struct {
	buf      []byte
	wire     wire
	spans    int
	traces   int
	baseTime int64 // template time: ns (OTLP) or ms (SkyWalking)

	traceSites []traceSite
	idSites    []idSite
	timeSites  []timeSite

	// scratch, reused on every patch
	traceIDs [][16]byte
	salts    [][16]byte

	// marshaled and released track gRPC's use of buf (see rawCodec).
	marshaled bool
	released  chan struct{}
}

// idSource hands out trace IDs that are unique for the life of the process
// (a counter through a bijective mixer) and look random, plus per-trace salts.
type idSource struct {
	next  atomic.Uint64
	seeds [4]uint64
}

func newIDSource(seed uint64) *idSource {
	s := &idSource{}
	for i := range s.seeds {
		seed = mix64(seed + 0x9e3779b97f4a7c15)
		s.seeds[i] = seed
	}
	return s
}

// mix64 is splitmix64's finalizer: a bijection on uint64, so distinct
// inputs give distinct outputs.
func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

// fill writes fresh trace IDs and salts for n traces.
func (s *idSource) fill(ids, salts [][16]byte) {
	c := s.next.Add(uint64(len(ids))) - uint64(len(ids))
	for i := range ids {
		// The low half alone is a bijection of the counter: IDs never repeat.
		binary.BigEndian.PutUint64(ids[i][:8], mix64(c^s.seeds[0]))
		binary.BigEndian.PutUint64(ids[i][8:], mix64(c+s.seeds[1]))
		binary.BigEndian.PutUint64(salts[i][:8], mix64(c^s.seeds[2]))
		binary.BigEndian.PutUint64(salts[i][8:], mix64(c+s.seeds[3]))
		c++
	}
}

// sixByteVarintMin and sixByteVarintMax bound the values whose varint
// encoding is exactly six bytes (milliseconds from 1971 to 2109).
const (
	sixByteVarintMin = int64(1) << 35
	sixByteVarintMax = int64(1)<<42 - 1
)

// patch gives the batch fresh IDs and current timestamps.
func (b *batch) patch(ids *idSource, now time.Time) error {
	if cap(b.traceIDs) < b.traces {
		b.traceIDs = make([][16]byte, b.traces)
		b.salts = make([][16]byte, b.traces)
	}
	b.traceIDs, b.salts = b.traceIDs[:b.traces], b.salts[:b.traces]
	ids.fill(b.traceIDs, b.salts)
	buf := b.buf

	switch b.wire {
	case wireOTLP:
		for _, s := range b.traceSites {
			copy(buf[s.off:s.off+16], b.traceIDs[s.trace][:])
		}
		for _, s := range b.idSites {
			v := binary.BigEndian.Uint64(s.orig[:8]) ^ binary.BigEndian.Uint64(b.salts[s.trace][:8])
			binary.BigEndian.PutUint64(buf[s.off:s.off+8], v)
		}
		delta := now.UnixNano() - b.baseTime
		for _, s := range b.timeSites {
			binary.LittleEndian.PutUint64(buf[s.off:s.off+8], uint64(s.orig+delta))
		}

	case wireSkyWalking:
		for _, s := range b.traceSites {
			hex.Encode(buf[s.off:s.off+32], b.traceIDs[s.trace][:])
		}
		var id [16]byte
		for _, s := range b.idSites {
			salt := &b.salts[s.trace]
			for k := range id {
				id[k] = s.orig[k] ^ salt[k]
			}
			hex.Encode(buf[s.off:s.off+32], id[:])
		}
		nowMs := now.UnixMilli()
		// Template times lie within a minute of baseTime; keep a margin.
		if nowMs < sixByteVarintMin+time.Hour.Milliseconds() || nowMs > sixByteVarintMax-time.Hour.Milliseconds() {
			return fmt.Errorf("patching SkyWalking timestamps: clock %v is outside 1971..2109", now)
		}
		delta := nowMs - b.baseTime
		for _, s := range b.timeSites {
			putVarint6(buf[s.off:s.off+6], uint64(s.orig+delta))
		}
	}
	return nil
}

// putVarint6 writes v as a six-byte varint; v must be in
// [sixByteVarintMin, sixByteVarintMax].
func putVarint6(b []byte, v uint64) {
	_ = b[5]
	b[0] = byte(v) | 0x80
	b[1] = byte(v>>7) | 0x80
	b[2] = byte(v>>14) | 0x80
	b[3] = byte(v>>21) | 0x80
	b[4] = byte(v>>28) | 0x80
	b[5] = byte(v >> 35)
}

// field is one field of an encoded protobuf message, as walk reports it.
type field struct {
	num protowire.Number
	typ protowire.Type
	off int    // offset in the whole buffer of val
	val []byte // bytes/message content, fixed64's 8 bytes, or the varint's bytes
}

// walk calls fn for every field of the message msg, which starts at offset
// base of the whole buffer.
func walk(msg []byte, base int, fn func(f field) error) error {
	for pos := 0; pos < len(msg); {
		num, typ, n := protowire.ConsumeTag(msg[pos:])
		if n < 0 {
			return fmt.Errorf("reading tag at offset %d: %w", base+pos, protowire.ParseError(n))
		}
		pos += n
		f := field{num: num, typ: typ, off: base + pos}
		switch typ {
		case protowire.BytesType:
			v, m := protowire.ConsumeBytes(msg[pos:])
			if m < 0 {
				return fmt.Errorf("reading field %d at offset %d: %w", num, base+pos, protowire.ParseError(m))
			}
			f.off = base + pos + m - len(v)
			f.val = v
			pos += m
		default:
			m := protowire.ConsumeFieldValue(num, typ, msg[pos:])
			if m < 0 {
				return fmt.Errorf("reading field %d at offset %d: %w", num, base+pos, protowire.ParseError(m))
			}
			f.val = msg[pos : pos+m]
			pos += m
		}
		if err := fn(f); err != nil {
			return err
		}
	}
	return nil
}
