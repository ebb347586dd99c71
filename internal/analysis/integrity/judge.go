package integrity

import (
	"encoding/hex"
	"sync"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
)

// judge holds what judging learnt across traces and the findings. Only the
// background loop writes it; the API reads it under mu.
type judge struct {
	cfg Config

	mu sync.Mutex
	// aliases maps addresses callers used (a client span's peer) to the
	// service that answered there, learnt from joined calls and from the
	// address a server span says it was reached at.
	aliases map[string]string
	// entries is when each service last received a request (a server or
	// consumer span), unix ns; sw tells services whose entries come from
	// SkyWalking agents.
	entries map[string]int64
	sw      map[string]bool
	// traces counts judged traces each service took part in.
	traces     map[string]int64
	findings   map[key]*Finding
	rejections *rejections
	metrics    *metrics

	judged, dropped uint64
	pendingTraces   int
	sampled         float64

	// judgedIDs remembers recently judged traces in two generations, so
	// spans arriving after their trace was judged (a long-running
	// consumer, a slow exporter) are not taken for orphans.
	judgedIDs, judgedOlder map[pcommon.TraceID]struct{}

	// Scratch reused from trace to trace.
	index    map[uint64]int
	counted  map[key]bool
	answered map[uint64]bool // span IDs that are some span's parent
	seen     map[string]bool // services in the trace
}

// Bounds on what judging keeps across traces.
const (
	maxJudgedIDs = 50_000 // a generation of judgedIDs
	maxAliases   = 10_000
	maxServices  = 10_000
	maxFindings  = 10_000
	maxExamples  = 5
)

func newJudge(cfg Config, r *rejections, m *metrics) *judge {
	return &judge{
		cfg:         cfg,
		rejections:  r,
		metrics:     m,
		aliases:     map[string]string{},
		entries:     map[string]int64{},
		sw:          map[string]bool{},
		traces:      map[string]int64{},
		findings:    map[key]*Finding{},
		sampled:     1,
		index:       map[uint64]int{},
		judgedIDs:   map[pcommon.TraceID]struct{}{},
		judgedOlder: map[pcommon.TraceID]struct{}{},
		counted:     map[key]bool{},
		answered:    map[uint64]bool{},
		seen:        map[string]bool{},
	}
}

// run judges the traces whose grace period passed, then refreshes the
// findings that come from the instance registry and the receivers.
func (j *judge) run(now time.Time, ids []pcommon.TraceID, due []*pending, dropped uint64, pendingTraces int, sampled float64, lastSpan func(service, instance string) (int64, bool), lastService map[string]int64) {
	j.mu.Lock()
	defer j.mu.Unlock()
	nowNs := now.UnixNano()
	j.pendingTraces = pendingTraces
	j.sampled = sampled
	for _, p := range due {
		if !p.truncated {
			j.learn(p.spans)
		}
	}
	for i, p := range due {
		if p.truncated {
			dropped++ // counted as a trace from here on
			continue
		}
		j.trace(ids[i], p.spans, nowNs)
		j.judged++
	}
	if dropped > 0 {
		j.dropped += dropped
		j.record(key{kind: KindAnalysisOverflow}, "", nowNs, dropped)
	}
	j.instanceFindings(now, lastSpan)
	j.silentServices(now, lastService)
	j.rejectedFindings(nowNs)
	j.expire(nowNs)
	j.rejections.expire(now.Add(-j.cfg.Window))
	j.publish()
}

// learn records which service answers at which address, and which
// services receive requests, before any trace is judged: the caller's and
// the callee's spans often become due in the same pass.
func (j *judge) learn(spans []span) {
	clear(j.index)
	for i := range spans {
		j.index[spans[i].id] = i
	}
	for i := range spans {
		s := &spans[i]
		if !s.entry() {
			continue
		}
		if _, ok := j.entries[s.service]; ok || len(j.entries) < maxServices {
			j.entries[s.service] = max(j.entries[s.service], s.endNs)
			j.sw[s.service] = s.skywalking
		}
		if s.self != "" {
			j.alias(s.self, s.service)
		}
		if pi, ok := j.index[s.parent]; ok && s.parent != 0 {
			if c := &spans[pi]; c.exit() && c.peer != "" && c.service != s.service {
				j.alias(c.peer, s.service)
			}
		}
	}
}

func (j *judge) alias(addr, service string) {
	if _, ok := j.aliases[addr]; ok || len(j.aliases) < maxAliases {
		j.aliases[addr] = service
	}
}

// trace judges one trace whose spans have all arrived.
func (j *judge) trace(id pcommon.TraceID, spans []span, nowNs int64) {
	clear(j.index)
	clear(j.counted)
	_, late := j.judgedIDs[id]
	if _, older := j.judgedOlder[id]; older {
		late = true
	}
	if len(j.judgedIDs) >= maxJudgedIDs {
		j.judgedOlder, j.judgedIDs = j.judgedIDs, make(map[pcommon.TraceID]struct{}, maxJudgedIDs)
	}
	j.judgedIDs[id] = struct{}{}
	answered, seen := j.answered, j.seen
	clear(answered)
	clear(seen)
	for i := range spans {
		j.index[spans[i].id] = i
		if spans[i].parent != 0 {
			answered[spans[i].parent] = true
		}
	}
	for i := range spans {
		if svc := spans[i].service; !seen[svc] {
			seen[svc] = true
			if _, ok := j.traces[svc]; ok || len(j.traces) < maxServices {
				j.traces[svc]++
			}
		}
	}
	example := hex.EncodeToString(id[:])
	once := func(k key) {
		if !j.counted[k] {
			j.counted[k] = true
			j.recordExample(k, example, nowNs)
		}
	}
	for i := range spans {
		s := &spans[i]
		if s.parent != 0 {
			pi, ok := j.index[s.parent]
			if !ok {
				if late {
					continue // the parent was in the part judged before
				}
				k := key{kind: KindBrokenTrace, service: s.service, peer: s.refService, variant: "remote"}
				if s.parentLocal {
					k.variant, k.peer = "local", ""
				}
				once(k)
				continue
			}
			if p := &spans[pi]; p.service != s.service && p.exit() && s.entry() && j.skewed(p, s) {
				once(key{kind: KindClockSkew, service: s.service, peer: p.service})
			}
		} else if !s.entry() {
			once(key{kind: KindDetachedRoot, service: s.service, variant: variantOf(s.skywalking)})
		}
		if !s.exit() {
			continue
		}
		if s.noPeerAttrs {
			once(key{kind: KindExitWithoutPeer, service: s.service, variant: variantOf(s.skywalking)})
		}
		if s.peer == "" || s.noResponse || answered[s.id] {
			continue
		}
		target, known := j.aliases[s.peer]
		switch {
		case !known:
			once(key{kind: KindUninstrumentedPeer, service: s.service, peer: s.peer})
		case target == s.service:
			// A service calling itself through its own address: the
			// answer is another trace only if it does not extract, which
			// its own callers' traces show.
		case j.entries[target] == 0:
		case j.sw[target] != s.skywalking:
			once(key{kind: KindPropagatorMismatch, service: s.service, peer: target, variant: variantOf(s.skywalking)})
		default:
			once(key{kind: KindLostPropagation, service: s.service, peer: target})
		}
	}
}

func variantOf(skywalking bool) string {
	if skywalking {
		return "skywalking"
	}
	return "otel"
}

// skewed tells whether a server span starts outside the call that caused
// it by more than the tolerance: only clocks that disagree do that.
func (j *judge) skewed(client, server *span) bool {
	tol := j.cfg.SkewTolerance.Nanoseconds()
	return server.startNs < client.startNs-tol || (client.endNs > 0 && server.startNs > client.endNs+tol)
}

// recordExample counts one more trace for k and keeps its ID as an example.
func (j *judge) recordExample(k key, traceID string, nowNs int64) {
	f := j.record(k, k.service, nowNs, 1)
	if f == nil {
		return
	}
	if len(f.Examples) >= maxExamples {
		copy(f.Examples, f.Examples[1:])
		f.Examples = f.Examples[:maxExamples-1]
	}
	f.Examples = append(f.Examples, traceID)
}

// record adds n to k's finding, creating it when there is room.
func (j *judge) record(k key, service string, nowNs int64, n uint64) *Finding {
	f := j.findings[k]
	if f == nil {
		if len(j.findings) >= maxFindings {
			return nil
		}
		f = newFinding(k, time.Unix(0, nowNs))
		f.tracesBase = j.traces[service] - 1
		j.findings[k] = f
	}
	f.Count += int64(n)
	f.LastSeen = time.Unix(0, nowNs).UTC()
	return f
}

// expire forgets findings not seen within the window.
func (j *judge) expire(nowNs int64) {
	oldest := nowNs - j.cfg.Window.Nanoseconds()
	for k, f := range j.findings {
		if f.LastSeen.UnixNano() < oldest {
			delete(j.findings, k)
		}
	}
}

// instanceFindings reports, from the registry, instances that report
// themselves alive but send no spans, or stopped sending, and instances
// that are one program under several identities.
func (j *judge) instanceFindings(now time.Time, lastSpan func(service, instance string) (int64, bool)) {
	if j.cfg.Registry == nil {
		return
	}
	nowNs := now.UnixNano()
	for _, service := range j.cfg.Registry.Services() {
		for _, inst := range j.cfg.Registry.List(service, now) {
			if inst.DuplicateOf != "" && now.Sub(inst.LastSeen) <= j.cfg.Window {
				f := j.setInstance(key{kind: KindDuplicateInstance, service: service, instance: inst.Name, peer: inst.DuplicateOf}, inst.FirstSeen, nowNs)
				if f != nil {
					f.Detail = inst.DuplicateReason
				}
			}
			if !inst.Alive || inst.Protocol != "skywalking" {
				// OTLP instances are known from their spans alone.
				continue
			}
			last, sent := lastSpan(service, inst.Name)
			switch {
			case !sent && now.Sub(inst.FirstSeen) > j.cfg.Grace:
				j.setInstance(key{kind: KindSilentInstance, service: service, instance: inst.Name}, inst.FirstSeen, nowNs)
			case sent && time.Duration(nowNs-last) > j.cfg.SilentAfter:
				f := j.setInstance(key{kind: KindStoppedInstance, service: service, instance: inst.Name}, time.Unix(0, last), nowNs)
				if f != nil {
					f.Detail = "last span at " + time.Unix(0, last).UTC().Format(time.RFC3339)
				}
			}
		}
	}
}

// setInstance keeps a state finding (one that is true now rather than
// counted per trace) alive.
func (j *judge) setInstance(k key, since time.Time, nowNs int64) *Finding {
	f := j.findings[k]
	if f == nil {
		if len(j.findings) >= maxFindings {
			return nil
		}
		f = newFinding(k, since)
		f.Count = 1
		j.findings[k] = f
	}
	f.LastSeen = time.Unix(0, nowNs).UTC()
	return f
}
