package loadgen

import (
	"encoding/hex"
	"fmt"
	"time"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	common "skywalking.apache.org/repo/goapi/collect/common/v3"
	agent "skywalking.apache.org/repo/goapi/collect/language/agent/v3"
)

const skyWalkingCollectMethod = "/skywalking.v3.TraceSegmentReportService/collectInSync"

// Field numbers of the SkyWalking messages walked to find the patch sites
// (apache/skywalking-data-collect-protocol language-agent/Tracing.proto).
const (
	swCollectionSegments    = 1
	swSegmentTraceID        = 1
	swSegmentID             = 2
	swSegmentSpans          = 3
	swSpanStart             = 3
	swSpanEnd               = 4
	swSpanRefs              = 5
	swSpanLogs              = 13
	swRefTraceID            = 2
	swRefParentSegmentID    = 3
	swLogTime               = 1
	swHexIDLen              = 32
	swTimestampVarintLength = 6
)

// buildSkyWalkingBatch renders planned traces as a SegmentCollection: one
// segment per service hop, opened by the hop's Entry span, holding its Local
// and Exit spans; each Entry span below the root refers to the Exit span that
// called it (a CrossProcess ref). Trace and segment IDs are 32 hex
// characters, as go2sky sends, so they can be patched in place.
func buildSkyWalkingBatch(p *planner, spans int, base time.Time) (*batch, error) {
	b := &batch{wire: wireSkyWalking, baseTime: base.UnixMilli()}
	coll := &agent.SegmentCollection{}

	type hop struct {
		seg  *agent.SegmentObject
		name string // endpoint: the Entry span's operation name
	}
	var hops []hop
	var segOf []int    // plan span -> index in hops
	var spanNo []int32 // plan span -> spanId within its segment
	for b.spans < spans {
		t := p.next()
		var raw [16]byte
		fillRandom(p, raw[:])
		traceID := hex.EncodeToString(raw[:])
		startNs := base.UnixNano() - int64(time.Second) - p.rng.Int64N(int64(time.Second))
		hops, segOf, spanNo = hops[:0], segOf[:0], spanNo[:0]

		for i := range t.spans {
			s := &t.spans[i]
			h := -1
			if s.parent >= 0 && s.kind != kindServer {
				h = segOf[s.parent]
			} else {
				fillRandom(p, raw[:])
				seg := &agent.SegmentObject{
					TraceId:         traceID,
					TraceSegmentId:  hex.EncodeToString(raw[:]),
					Service:         s.inst.service,
					ServiceInstance: s.inst.id,
				}
				coll.Segments = append(coll.Segments, seg)
				hops = append(hops, hop{seg: seg, name: s.name})
				h = len(hops) - 1
			}
			seg := hops[h].seg
			segOf = append(segOf, h)
			spanNo = append(spanNo, int32(len(seg.Spans)))

			so := &agent.SpanObject{
				SpanId:        int32(len(seg.Spans)),
				ParentSpanId:  -1,
				StartTime:     (startNs + s.start) / int64(time.Millisecond),
				EndTime:       (startNs + s.end) / int64(time.Millisecond),
				OperationName: s.name,
				SpanType:      swSpanType(s.kind),
				SpanLayer:     swLayer(s.layer),
				ComponentId:   s.component,
				IsError:       s.errMsg != "",
			}
			if s.kind == kindClient || s.kind == kindProducer {
				so.Peer = s.peer
			}
			if s.parent >= 0 {
				if segOf[s.parent] == h {
					so.ParentSpanId = spanNo[s.parent]
				} else {
					caller := &t.spans[s.parent]
					parentHop := hops[segOf[s.parent]]
					so.Refs = []*agent.SegmentReference{{
						RefType:                  agent.RefType_CrossProcess,
						TraceId:                  traceID,
						ParentTraceSegmentId:     parentHop.seg.TraceSegmentId,
						ParentSpanId:             spanNo[s.parent],
						ParentService:            caller.inst.service,
						ParentServiceInstance:    caller.inst.id,
						ParentEndpoint:           parentHop.name,
						NetworkAddressUsedAtPeer: caller.peer,
					}}
				}
			}
			for _, a := range s.attrs {
				so.Tags = append(so.Tags, swPair(a))
			}
			for _, e := range s.events {
				name := e.name
				if name == "exception" {
					name = "error" // what SkyWalking agents log for an error
				}
				l := &agent.Log{
					Time: (startNs + e.at) / int64(time.Millisecond),
					Data: []*common.KeyStringValuePair{{Key: "event", Value: name}},
				}
				for _, a := range e.attrs {
					l.Data = append(l.Data, swPair(a))
				}
				so.Logs = append(so.Logs, l)
			}
			seg.Spans = append(seg.Spans, so)
		}
		b.spans += len(t.spans)
		b.traces++
	}

	buf, err := proto.MarshalOptions{Deterministic: true}.Marshal(coll)
	if err != nil {
		return nil, fmt.Errorf("encoding SkyWalking SegmentCollection: %w", err)
	}
	b.buf = buf
	if err := b.findSkyWalkingSites(len(coll.Segments)); err != nil {
		return nil, fmt.Errorf("locating IDs and timestamps in the SegmentCollection: %w", err)
	}
	return b, nil
}

// findSkyWalkingSites walks the encoded collection and records where every
// trace ID, segment ID (own and referenced) and timestamp sits.
func (b *batch) findSkyWalkingSites(segments int) error {
	traceIndex := map[string]int32{}
	var traceOffs []int32 // this segment's trace ID sites, until its trace is known
	var idSites []idSite
	spanCount, segCount := 0, 0

	hexID := func(f field) (idSite, error) {
		s := idSite{off: int32(f.off)}
		if len(f.val) != swHexIDLen {
			return s, fmt.Errorf("ID at offset %d is %d characters, want %d", f.off, len(f.val), swHexIDLen)
		}
		if _, err := hex.Decode(s.orig[:], f.val); err != nil {
			return s, fmt.Errorf("ID at offset %d: %w", f.off, err)
		}
		return s, nil
	}
	timeAt := func(f field) error {
		if f.typ != protowire.VarintType || len(f.val) != swTimestampVarintLength {
			return fmt.Errorf("timestamp at offset %d is not a %d-byte varint", f.off, swTimestampVarintLength)
		}
		v, _ := protowire.ConsumeVarint(f.val)
		b.timeSites = append(b.timeSites, timeSite{off: int32(f.off), orig: int64(v)})
		return nil
	}
	ref := func(f field) error {
		switch f.num {
		case swRefTraceID:
			if len(f.val) != swHexIDLen {
				return fmt.Errorf("ref trace ID at offset %d is %d characters", f.off, len(f.val))
			}
			traceOffs = append(traceOffs, int32(f.off))
		case swRefParentSegmentID:
			s, err := hexID(f)
			if err != nil {
				return err
			}
			idSites = append(idSites, s)
		}
		return nil
	}
	log := func(f field) error {
		if f.num == swLogTime {
			return timeAt(f)
		}
		return nil
	}
	span := func(f field) error {
		switch f.num {
		case swSpanStart, swSpanEnd:
			return timeAt(f)
		case swSpanRefs:
			return walk(f.val, f.off, ref)
		case swSpanLogs:
			return walk(f.val, f.off, log)
		}
		return nil
	}
	var traceID string
	segment := func(f field) error {
		switch f.num {
		case swSegmentTraceID:
			if len(f.val) != swHexIDLen {
				return fmt.Errorf("trace ID at offset %d is %d characters", f.off, len(f.val))
			}
			traceID = string(f.val)
			traceOffs = append(traceOffs, int32(f.off))
		case swSegmentID:
			s, err := hexID(f)
			if err != nil {
				return err
			}
			idSites = append(idSites, s)
		case swSegmentSpans:
			spanCount++
			return walk(f.val, f.off, span)
		}
		return nil
	}
	err := walk(b.buf, 0, func(f field) error {
		if f.num != swCollectionSegments || f.typ != protowire.BytesType {
			return nil
		}
		traceID, traceOffs, idSites = "", traceOffs[:0], idSites[:0]
		if err := walk(f.val, f.off, segment); err != nil {
			return err
		}
		if traceID == "" {
			return fmt.Errorf("segment at offset %d has no trace ID", f.off)
		}
		t, ok := traceIndex[traceID]
		if !ok {
			t = int32(len(traceIndex))
			traceIndex[traceID] = t
		}
		for _, off := range traceOffs {
			b.traceSites = append(b.traceSites, traceSite{off: off, trace: t})
		}
		for _, s := range idSites {
			s.trace = t
			b.idSites = append(b.idSites, s)
		}
		segCount++
		return nil
	})
	if err != nil {
		return err
	}
	if spanCount != b.spans || segCount != segments || len(traceIndex) != b.traces {
		return fmt.Errorf("found %d spans in %d segments of %d traces, built %d in %d of %d",
			spanCount, segCount, len(traceIndex), b.spans, segments, b.traces)
	}
	return nil
}

func swPair(a attr) *common.KeyStringValuePair {
	k := a.swKey
	if k == "" {
		k = a.key
	}
	return &common.KeyStringValuePair{Key: k, Value: a.text()}
}

func swSpanType(k spanKind) agent.SpanType {
	switch k {
	case kindServer:
		return agent.SpanType_Entry
	case kindClient, kindProducer:
		return agent.SpanType_Exit
	}
	return agent.SpanType_Local
}

func swLayer(l layer) agent.SpanLayer {
	switch l {
	case layerDatabase:
		return agent.SpanLayer_Database
	case layerHTTP:
		return agent.SpanLayer_Http
	case layerMQ:
		return agent.SpanLayer_MQ
	case layerCache:
		return agent.SpanLayer_Cache
	}
	return agent.SpanLayer_Unknown
}
