package loadgen

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc/codes"
)

// stats counts outcomes; the hot counters are atomics, the per-code maps
// are touched only on failures.
type stats struct {
	spans, requests, rejected, failedSpans, unsent atomic.Int64

	mu      sync.Mutex
	errors  map[string]int
	retries map[string]int
	lastErr string
	// latencies are the acknowledged attempts' round trips: a few thousand
	// a run (one a batch), so kept whole for exact percentiles.
	latencies []time.Duration
}

func newStats() *stats {
	return &stats{errors: map[string]int{}, retries: map[string]int{}}
}

func (s *stats) acknowledged(spans int, rejected int64, took time.Duration) {
	s.spans.Add(int64(spans))
	s.requests.Add(1)
	s.rejected.Add(rejected)
	s.mu.Lock()
	s.latencies = append(s.latencies, took)
	s.mu.Unlock()
}

func (s *stats) failed(code codes.Code, spans int, err error) {
	s.failedSpans.Add(int64(spans))
	s.mu.Lock()
	s.errors[code.String()]++
	s.lastErr = err.Error()
	s.mu.Unlock()
}

func (s *stats) retried(code codes.Code, err error) {
	s.mu.Lock()
	s.retries[code.String()]++
	s.lastErr = err.Error()
	s.mu.Unlock()
}

func (s *stats) result(d time.Duration) Result {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := Result{
		Spans:         s.spans.Load(),
		Requests:      s.requests.Load(),
		RejectedSpans: s.rejected.Load(),
		FailedSpans:   s.failedSpans.Load(),
		UnsentSpans:   s.unsent.Load(),
		Errors:        maps.Clone(s.errors),
		Retries:       maps.Clone(s.retries),
		LastError:     s.lastErr,
		Duration:      d,
	}
	if d > 0 {
		r.SpansPerSecond = float64(r.Spans) / d.Seconds()
	}
	if n := len(s.latencies); n > 0 {
		sorted := slices.Clone(s.latencies)
		slices.Sort(sorted)
		r.LatencyP50 = sorted[(n-1)/2]
		r.LatencyP99 = sorted[(n*99+99)/100-1]
	}
	return r
}

// byCode renders a per-code count map as "Unavailable=3 Internal=1", or "0".
func byCode(m map[string]int) string {
	if len(m) == 0 {
		return "0"
	}
	var b strings.Builder
	for i, k := range slices.Sorted(maps.Keys(m)) {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(k)
		b.WriteByte('=')
		b.WriteString(strconv.Itoa(m[k]))
	}
	return b.String()
}

// report writes a progress line every interval until done is closed.
func (r *runner) report(start time.Time, done <-chan struct{}) {
	t := time.NewTicker(r.cfg.ProgressInterval)
	defer t.Stop()
	last, lastSpans := start, int64(0)
	for {
		select {
		case <-done:
			if r.cfg.ProgressTTY {
				fmt.Fprintln(r.cfg.Progress) // leave the redrawn line in place
			}
			return
		case now := <-t.C:
			spans := r.stats.spans.Load()
			nowRate := float64(spans-lastSpans) / now.Sub(last).Seconds()
			last, lastSpans = now, spans
			line := r.progressLine(now.Sub(start), spans, nowRate)
			if r.cfg.ProgressTTY {
				fmt.Fprintf(r.cfg.Progress, "\r%s\x1b[K", line)
			} else {
				fmt.Fprintln(r.cfg.Progress, line)
			}
		}
	}
}

func (r *runner) progressLine(elapsed time.Duration, spans int64, nowRate float64) string {
	res := r.stats.result(elapsed)
	return fmt.Sprintf("loadgen %s %6s  sent %s spans  now %s/s  avg %s/s  in-flight %d  retries %s  errors %s",
		r.cfg.Protocol, elapsed.Truncate(time.Second), thousands(spans), thousands(int64(nowRate)),
		thousands(int64(res.SpansPerSecond)), r.inflight.Load(), byCode(res.Retries), byCode(res.Errors))
}

// Summary is the one-line account of a finished run.
func (res Result) Summary() string {
	s := fmt.Sprintf("loadgen %s to %s: %s spans in %s requests over %s = %s spans/s; retries %s; errors %s (%s spans failed)",
		res.Protocol, res.Endpoint, thousands(res.Spans), thousands(res.Requests),
		res.Duration.Round(time.Millisecond), thousands(int64(res.SpansPerSecond)),
		byCode(res.Retries), byCode(res.Errors), thousands(res.FailedSpans))
	if res.Requests > 0 {
		s += fmt.Sprintf("; request latency p50 %s, p99 %s", res.LatencyP50.Round(10*time.Microsecond), res.LatencyP99.Round(10*time.Microsecond))
	}
	if res.RejectedSpans > 0 {
		s += fmt.Sprintf("; %s spans rejected by the server", thousands(res.RejectedSpans))
	}
	if res.UnsentSpans > 0 {
		s += fmt.Sprintf("; %s spans still waiting to be retried at the end", thousands(res.UnsentSpans))
	}
	if res.LastError != "" {
		s += "; last error: " + res.LastError
	}
	return s
}

// thousands formats n with comma separators: 1234567 -> "1,234,567".
func thousands(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	if neg {
		s = s[1:]
	}
	var b strings.Builder
	if neg {
		b.WriteByte('-')
	}
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}
