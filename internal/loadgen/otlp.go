package loadgen

import (
	"fmt"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/protobuf/encoding/protowire"
)

const otlpExportMethod = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"

// Field numbers of the OTLP messages walked to find the patch sites
// (opentelemetry/proto/trace/v1/trace.proto).
const (
	otlpRequestResourceSpans = 1
	otlpResourceSpansScope   = 2
	otlpScopeSpansSpans      = 2
	otlpSpanTraceID          = 1
	otlpSpanSpanID           = 2
	otlpSpanParentSpanID     = 4
	otlpSpanStart            = 7
	otlpSpanEnd              = 8
	otlpSpanEvents           = 11
	otlpEventTime            = 1
)

// sdkVersion is what the generated resources claim as their SDK version.
const sdkVersion = "1.47.0"

// buildOTLPBatch plans traces until the batch holds at least spans spans and
// encodes them as one ExportTraceServiceRequest whose timestamps are laid
// out around base. Spans are grouped by service instance and
// instrumentation scope, as a collector's batch would be.
func buildOTLPBatch(p *planner, spans int, base time.Time) (*batch, error) {
	td := ptrace.NewTraces()
	resources := map[*instance]ptrace.ResourceSpans{}
	type scopeKey struct {
		inst  *instance
		scope string
	}
	scopes := map[scopeKey]ptrace.SpanSlice{}
	b := &batch{wire: wireOTLP, baseTime: base.UnixNano()}

	var spanIDs []pcommon.SpanID
	for b.spans < spans {
		t := p.next()
		var traceID pcommon.TraceID
		fillRandom(p, traceID[:])
		// Traces ended up to two seconds before base, as if just exported.
		start := b.baseTime - int64(time.Second) - p.rng.Int64N(int64(time.Second))
		spanIDs = spanIDs[:0]
		for range t.spans {
			var id pcommon.SpanID
			fillRandom(p, id[:])
			spanIDs = append(spanIDs, id)
		}
		for i := range t.spans {
			s := &t.spans[i]
			rs, ok := resources[s.inst]
			if !ok {
				rs = td.ResourceSpans().AppendEmpty()
				putResource(rs.Resource().Attributes(), s.inst)
				resources[s.inst] = rs
			}
			k := scopeKey{s.inst, s.scope}
			slice, ok := scopes[k]
			if !ok {
				ss := rs.ScopeSpans().AppendEmpty()
				ss.Scope().SetName(s.scope)
				ss.Scope().SetVersion("0.58.0")
				slice = ss.Spans()
				scopes[k] = slice
			}
			sp := slice.AppendEmpty()
			sp.SetTraceID(traceID)
			sp.SetSpanID(spanIDs[i])
			if s.parent >= 0 {
				sp.SetParentSpanID(spanIDs[s.parent])
			}
			sp.SetName(s.name)
			sp.SetKind(otlpKind(s.kind))
			sp.SetStartTimestamp(pcommon.Timestamp(start + s.start))
			sp.SetEndTimestamp(pcommon.Timestamp(start + s.end))
			putAttrs(sp.Attributes(), s.attrs)
			for _, e := range s.events {
				ev := sp.Events().AppendEmpty()
				ev.SetName(e.name)
				ev.SetTimestamp(pcommon.Timestamp(start + e.at))
				putAttrs(ev.Attributes(), e.attrs)
			}
			if s.errMsg != "" {
				sp.Status().SetCode(ptrace.StatusCodeError)
				sp.Status().SetMessage(s.errMsg)
			}
		}
		b.spans += len(t.spans)
		b.traces++
	}

	buf, err := ptraceotlp.NewExportRequestFromTraces(td).MarshalProto()
	if err != nil {
		return nil, fmt.Errorf("encoding OTLP export request: %w", err)
	}
	b.buf = buf
	if err := b.findOTLPSites(); err != nil {
		return nil, fmt.Errorf("locating IDs and timestamps in the OTLP request: %w", err)
	}
	return b, nil
}

// findOTLPSites walks the encoded request and records where every trace ID,
// span ID, parent span ID and timestamp sits.
func (b *batch) findOTLPSites() error {
	traceIndex := map[[16]byte]int32{}
	var spanIDs []idSite // this span's ID sites, until its trace is known
	span := func(f field) error {
		switch {
		case f.num == otlpSpanTraceID && f.typ == protowire.BytesType && len(f.val) == 16:
			id := [16]byte(f.val)
			t, ok := traceIndex[id]
			if !ok {
				t = int32(len(traceIndex))
				traceIndex[id] = t
			}
			b.traceSites = append(b.traceSites, traceSite{off: int32(f.off), trace: t})
		case (f.num == otlpSpanSpanID || f.num == otlpSpanParentSpanID) && f.typ == protowire.BytesType && len(f.val) == 8:
			s := idSite{off: int32(f.off)}
			copy(s.orig[:], f.val)
			spanIDs = append(spanIDs, s)
		case (f.num == otlpSpanStart || f.num == otlpSpanEnd) && f.typ == protowire.Fixed64Type:
			b.timeSites = append(b.timeSites, timeSite{off: int32(f.off), orig: int64(protowireFixed64(f.val))})
		case f.num == otlpSpanEvents && f.typ == protowire.BytesType:
			return walk(f.val, f.off, func(e field) error {
				if e.num == otlpEventTime && e.typ == protowire.Fixed64Type {
					b.timeSites = append(b.timeSites, timeSite{off: int32(e.off), orig: int64(protowireFixed64(e.val))})
				}
				return nil
			})
		}
		return nil
	}
	spanCount := 0
	err := walk(b.buf, 0, func(f field) error {
		if f.num != otlpRequestResourceSpans || f.typ != protowire.BytesType {
			return nil
		}
		return walk(f.val, f.off, func(f field) error {
			if f.num != otlpResourceSpansScope || f.typ != protowire.BytesType {
				return nil
			}
			return walk(f.val, f.off, func(f field) error {
				if f.num != otlpScopeSpansSpans || f.typ != protowire.BytesType {
					return nil
				}
				spanIDs = spanIDs[:0]
				before := len(b.traceSites)
				if err := walk(f.val, f.off, span); err != nil {
					return err
				}
				if len(b.traceSites) != before+1 {
					return fmt.Errorf("span at offset %d has no 16-byte trace ID", f.off)
				}
				trace := b.traceSites[before].trace
				for _, s := range spanIDs {
					s.trace = trace
					b.idSites = append(b.idSites, s)
				}
				spanCount++
				return nil
			})
		})
	})
	if err != nil {
		return err
	}
	if spanCount != b.spans || len(traceIndex) != b.traces {
		return fmt.Errorf("found %d spans in %d traces, built %d in %d", spanCount, len(traceIndex), b.spans, b.traces)
	}
	return nil
}

func protowireFixed64(b []byte) uint64 {
	v, _ := protowire.ConsumeFixed64(b)
	return v
}

func putResource(m pcommon.Map, in *instance) {
	m.PutStr("service.name", in.service)
	m.PutStr("service.namespace", "shop")
	m.PutStr("service.version", "2.14.1")
	m.PutStr("service.instance.id", in.id)
	m.PutStr("host.name", in.host)
	m.PutInt("process.pid", in.pid)
	m.PutStr("process.runtime.name", "go")
	m.PutStr("deployment.environment.name", "production")
	m.PutStr("telemetry.sdk.name", "opentelemetry")
	m.PutStr("telemetry.sdk.language", "go")
	m.PutStr("telemetry.sdk.version", sdkVersion)
}

func putAttrs(m pcommon.Map, attrs []attr) {
	m.EnsureCapacity(len(attrs))
	for _, a := range attrs {
		if a.isNum {
			m.PutInt(a.key, a.num)
		} else {
			m.PutStr(a.key, a.str)
		}
	}
}

func otlpKind(k spanKind) ptrace.SpanKind {
	switch k {
	case kindServer:
		return ptrace.SpanKindServer
	case kindClient:
		return ptrace.SpanKindClient
	case kindProducer:
		return ptrace.SpanKindProducer
	}
	return ptrace.SpanKindInternal
}

// fillRandom fills b with random bytes that are not all zero (a zero ID is
// invalid in both protocols).
func fillRandom(p *planner, b []byte) {
	for {
		nonzero := false
		for i := range b {
			b[i] = byte(p.rng.Uint32())
			nonzero = nonzero || b[i] != 0
		}
		if nonzero {
			return
		}
	}
}
