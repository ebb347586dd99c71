package pipeline

import (
	"context"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
)

// Batch is what a receiver decoded from one request: a *Traces, *Logs,
// *Metrics or *Heartbeats.
type Batch interface {
	signal() Signal
	// items counts what the batch carries, before validation.
	items() int
	// estimatedBytes is what a batch is charged when its request's size on
	// the wire is not known.
	estimatedBytes() int
	refused() Refused
	// prepare validates in place, removing what storage could not keep,
	// and works out the resources of what is left.
	prepare(l Limits, now time.Time) Validation
	consume(ctx context.Context, c Consumers) error
	// replay hands a batch read back from the journal to c (journal.go).
	replay(ctx context.Context, c Consumers) error
}

// What a batch is charged per item when only its decoded form is at hand:
// about the encoded size of a span with ten attributes, of a log line, of a
// data point. Measuring exactly would walk every attribute on the hot path.
const (
	bytesPerSpan      = 512
	bytesPerLogRecord = 256
	bytesPerPoint     = 128
	bytesPerHeartbeat = 256
)

func (t *Traces) signal() Signal      { return SignalSpans }
func (t *Traces) items() int          { return t.SpanCount() }
func (t *Traces) estimatedBytes() int { return t.SpanCount() * bytesPerSpan }
func (t *Traces) refused() Refused    { return t.Refused }

func (t *Traces) prepare(l Limits, now time.Time) Validation {
	v := validateTraces(t.Traces, l, now)
	rss := t.ResourceSpans()
	var rewrote bool
	t.Resources, rewrote = identify(t.Resources, rss.Len(), func(i int) pcommon.Map { return rss.At(i).Resource().Attributes() })
	t.rawOK = t.Raw != nil && v.Rejected == 0 && !rewrote
	return v
}

func (t *Traces) consume(ctx context.Context, c Consumers) error {
	for _, tc := range c.Traces {
		if err := tc.ConsumeTraces(ctx, *t); err != nil {
			return err
		}
	}
	return nil
}

func (l *Logs) signal() Signal      { return SignalLogs }
func (l *Logs) items() int          { return l.LogRecordCount() }
func (l *Logs) estimatedBytes() int { return l.LogRecordCount() * bytesPerLogRecord }
func (l *Logs) refused() Refused    { return l.Refused }

func (l *Logs) prepare(lim Limits, now time.Time) Validation {
	if !l.Checked {
		normalizeLogs(l.Logs)
	}
	v := validateLogs(l.Logs, lim)
	rls := l.ResourceLogs()
	var rewrote bool
	l.Resources, rewrote = identify(l.Resources, rls.Len(), func(i int) pcommon.Map { return rls.At(i).Resource().Attributes() })
	l.rawOK = l.Raw != nil && v.Rejected == 0 && !rewrote
	return v
}

func (l *Logs) consume(ctx context.Context, c Consumers) error {
	for _, lc := range c.Logs {
		if err := lc.ConsumeLogs(ctx, *l); err != nil {
			return err
		}
	}
	return nil
}

func (m *Metrics) signal() Signal      { return SignalMetrics }
func (m *Metrics) items() int          { return m.DataPointCount() }
func (m *Metrics) estimatedBytes() int { return m.DataPointCount() * bytesPerPoint }
func (m *Metrics) refused() Refused    { return m.Refused }

func (m *Metrics) prepare(l Limits, now time.Time) Validation {
	v := validateMetrics(m.Metrics, l)
	rms := m.ResourceMetrics()
	var rewrote bool
	m.Resources, rewrote = identify(m.Resources, rms.Len(), func(i int) pcommon.Map { return rms.At(i).Resource().Attributes() })
	m.rawOK = m.Raw != nil && v.Rejected == 0 && !rewrote
	return v
}

func (m *Metrics) consume(ctx context.Context, c Consumers) error {
	for _, mc := range c.Metrics {
		if err := mc.ConsumeMetrics(ctx, *m); err != nil {
			return err
		}
	}
	return nil
}

// Heartbeats is a batch of signs of life.
type Heartbeats []Heartbeat

func (h *Heartbeats) signal() Signal      { return SignalHeartbeats }
func (h *Heartbeats) items() int          { return len(*h) }
func (h *Heartbeats) estimatedBytes() int { return len(*h) * bytesPerHeartbeat }
func (h *Heartbeats) refused() Refused    { return Refused{} }

func (h *Heartbeats) prepare(l Limits, now time.Time) Validation {
	var v Validation
	kept := (*h)[:0]
	for _, hb := range *h {
		if reason := checkHeartbeat(hb, l); reason != "" {
			v.reject(reason)
			continue
		}
		kept = append(kept, hb)
		v.Accepted++
	}
	*h = kept
	return v
}

func (h *Heartbeats) consume(ctx context.Context, c Consumers) error {
	for _, hb := range *h {
		for _, hc := range c.Heartbeats {
			if err := hc.ConsumeHeartbeat(ctx, hb); err != nil {
				return err
			}
		}
	}
	return nil
}
