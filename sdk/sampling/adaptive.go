// Package sampling holds SkyTrail's adaptive head sampler: it keeps every
// trace while a service is quiet and at most a configured number of traces
// per second when it is busy, and records the probability it used as
// OpenTelemetry's consistent probability sampling does (ot=th:... in
// tracestate), so a backend can weigh sampled counts back up.
package sampling

import (
	"encoding/binary"
	"fmt"
	"math"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

const (
	// window is how often the arrival rate is measured. Short enough that a
	// burst is seen within a tenth of a second, long enough that a window of
	// ordinary traffic holds more than a handful of traces.
	window = 100 * time.Millisecond
	// decayPerWindow is how much of the rate estimate survives each window
	// once traffic falls: a service is back to keeping everything within
	// about half a second after a burst of 50 times its limit ends.
	decayPerWindow = 0.5
	// thresholdDigits is the precision of the recorded threshold, in hex
	// digits: 4 give probabilities to about 1/65536 and keep tracestate short.
	thresholdDigits = 4
	maxThreshold    = uint64(1) << 56
)

// Adaptive is a head sampler for root spans that keeps at most a configured
// number of traces per second. It measures the rate of root spans every
// 100 ms and samples with probability min(1, limit/rate), decided
// consistently from the trace ID's 56 random low bits as OpenTelemetry's
// probability sampling specifies; the threshold used is written into the
// sampled span's tracestate as ot=th:<hex>.
//
// The measuring happens on a ticker in its own goroutine, so deciding costs a
// few atomic operations and no clock read; call Stop when done with it.
//
// Adaptive decides only whether to start a trace: use it as the root of
// sdktrace.ParentBased (sdk.Start does) so spans with a parent follow it.
type Adaptive struct {
	limit      float64 // traces per second
	burstLimit int64   // kept traces in one window that trigger an early re-estimate

	clock func() int64 // nanoseconds, monotonic; replaced in tests
	epoch time.Time
	stop  chan struct{}
	once  sync.Once

	windowStart atomic.Int64
	// counts holds the current window's root spans seen (high 32 bits) and
	// kept (low 32 bits), so that deciding costs one atomic add.
	counts atomic.Uint64
	state  atomic.Pointer[decision]

	mu   sync.Mutex // serialises re-estimates
	rate float64    // estimated root spans per second, under mu
}

// decision is the probability in force, with its tracestate prepared once so
// that sampling a span allocates nothing.
type decision struct {
	threshold   uint64 // sample when randomness >= threshold
	probability float64
	tracestate  trace.TraceState
}

var _ sdktrace.Sampler = (*Adaptive)(nil)

// NewAdaptive returns a sampler keeping at most perSecond traces per second.
// perSecond must be positive.
func NewAdaptive(perSecond float64) (*Adaptive, error) {
	s, err := newAdaptive(perSecond)
	if err != nil {
		return nil, err
	}
	go s.measure()
	return s, nil
}

// newAdaptive returns the sampler without its ticker, for tests that drive
// roll on a clock of their own.
func newAdaptive(perSecond float64) (*Adaptive, error) {
	if !(perSecond > 0) || math.IsInf(perSecond, 0) {
		return nil, fmt.Errorf("sampling: traces per second must be a positive number, got %v", perSecond)
	}
	s := &Adaptive{
		limit:      perSecond,
		burstLimit: max(2, int64(math.Ceil(2*perSecond*window.Seconds()))),
		epoch:      time.Now(),
		stop:       make(chan struct{}),
	}
	s.clock = func() int64 { return int64(time.Since(s.epoch)) }
	s.windowStart.Store(s.clock())
	s.state.Store(newDecision(0))
	return s, nil
}

// Stop ends the measuring; the probability stays where it was.
func (s *Adaptive) Stop() { s.once.Do(func() { close(s.stop) }) }

func (s *Adaptive) measure() {
	t := time.NewTicker(window)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			s.roll(s.clock())
		case <-s.stop:
			return
		}
	}
}

// ShouldSample implements sdktrace.Sampler.
func (s *Adaptive) ShouldSample(p sdktrace.SamplingParameters) sdktrace.SamplingResult {
	r := randomness(p.TraceID)
	d := s.state.Load()
	if r < d.threshold {
		s.counts.Add(seenOne)
		return sdktrace.SamplingResult{Decision: sdktrace.Drop}
	}
	if kept(s.counts.Add(seenOne|1)) > s.burstLimit {
		// A burst inside the window: re-estimate now rather than keep
		// sampling at the old probability until the window ends.
		d = s.tighten(s.clock())
		if r < d.threshold {
			return sdktrace.SamplingResult{Decision: sdktrace.Drop}
		}
	}
	return sdktrace.SamplingResult{Decision: sdktrace.RecordAndSample, Tracestate: d.tracestate}
}

// Description implements sdktrace.Sampler.
func (s *Adaptive) Description() string {
	return "SkyTrailAdaptive{" + strconv.FormatFloat(s.limit, 'g', -1, 64) + "/s}"
}

// Probability returns the probability currently used for new traces.
func (s *Adaptive) Probability() float64 { return s.state.Load().probability }

// roll closes the current window: the rate estimate jumps up to a higher
// measured rate at once (a burst must not get through) and decays towards a
// lower one (quiet windows are noisy).
func (s *Adaptive) roll(now int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	start := s.windowStart.Swap(now)
	if now <= start {
		return
	}
	seen := seen(s.counts.Swap(0))
	elapsed := time.Duration(now - start).Seconds()
	measured := float64(seen) / elapsed
	if measured >= s.rate {
		s.rate = measured
	} else {
		keep := math.Pow(decayPerWindow, elapsed/window.Seconds())
		s.rate = measured + (s.rate-measured)*keep
	}
	s.publish()
}

// tighten raises the rate estimate to what the current window has seen so
// far and returns the resulting decision.
func (s *Adaptive) tighten(now int64) *decision {
	s.mu.Lock()
	defer s.mu.Unlock()
	elapsed := max(time.Duration(now-s.windowStart.Load()), time.Millisecond).Seconds()
	if measured := float64(seen(s.counts.Load())) / elapsed; measured > s.rate {
		s.rate = measured
		s.publish()
	}
	return s.state.Load()
}

const seenOne = uint64(1) << 32

func seen(counts uint64) int64 { return int64(counts >> 32) }
func kept(counts uint64) int64 { return int64(counts & (seenOne - 1)) }

// publish stores the decision for the current rate estimate, under mu.
func (s *Adaptive) publish() {
	p := 1.0
	if s.rate > s.limit {
		p = s.limit / s.rate
	}
	t := ThresholdFor(p)
	if t != s.state.Load().threshold {
		s.state.Store(newDecision(t))
	}
}

func newDecision(t uint64) *decision {
	ts, err := trace.ParseTraceState("ot=th:" + FormatThreshold(t))
	if err != nil {
		panic("sampling: tracestate for threshold " + FormatThreshold(t) + ": " + err.Error()) // constant format, cannot happen
	}
	return &decision{threshold: t, probability: ProbabilityOf(t), tracestate: ts}
}

// randomness is the trace ID's 56 least significant bits, the source of
// randomness OpenTelemetry's consistent sampling specifies when the
// tracestate carries no rv value (W3C random trace IDs).
func randomness(id trace.TraceID) uint64 {
	return binary.BigEndian.Uint64(id[8:]) & (maxThreshold - 1)
}

// ThresholdFor returns the rejection threshold for sampling probability p,
// rounded to 4 hex digits: a trace is kept when its randomness is at least
// the threshold. p of 1 or more gives 0 (keep all).
func ThresholdFor(p float64) uint64 {
	if p >= 1 || math.IsNaN(p) {
		return 0
	}
	const step = uint64(1) << (56 - 4*thresholdDigits)
	steps := math.Round((1 - p) * float64(maxThreshold/step))
	if steps >= float64(maxThreshold/step) {
		steps = float64(maxThreshold/step) - 1 // keep at least the smallest probability representable
	}
	return uint64(steps) * step
}

// ProbabilityOf returns the sampling probability threshold t stands for; its
// inverse is the adjusted count of each kept trace.
func ProbabilityOf(t uint64) float64 {
	return float64(maxThreshold-t) / float64(maxThreshold)
}

// FormatThreshold encodes t as the specification's th value: 14 hex digits
// with trailing zeros removed, "0" for keep-all.
func FormatThreshold(t uint64) string {
	if t == 0 {
		return "0"
	}
	s := fmt.Sprintf("%014x", t)
	for len(s) > 1 && s[len(s)-1] == '0' {
		s = s[:len(s)-1]
	}
	return s
}

// ParseThreshold decodes a th value (1 to 14 hex digits, implicitly padded
// with trailing zeros).
func ParseThreshold(th string) (uint64, error) {
	if th == "" || len(th) > 14 {
		return 0, fmt.Errorf("sampling: threshold %q must be 1 to 14 hex digits", th)
	}
	v, err := strconv.ParseUint(th, 16, 64)
	if err != nil {
		return 0, fmt.Errorf("sampling: threshold %q is not hex", th)
	}
	return v << (4 * (14 - len(th))), nil
}
