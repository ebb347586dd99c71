package pipeline

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.opentelemetry.io/collector/pdata/ptrace"
	"golang.org/x/sync/semaphore"

	"github.com/skytrail/skytrail/internal/selfmetrics"
)

// ErrOverloaded means the server has as much work in flight as it allows;
// receivers answer it with a retryable error (gRPC ResourceExhausted, HTTP
// 429 with Retry-After) so the client backs off and sends again.
var ErrOverloaded = errors.New("server overloaded: too much data in flight, retry later")

// RetryAfter is the delay receivers suggest to a client turned away.
const RetryAfter = time.Second

// Pipeline admits requests within an in-flight budget and hands their spans
// to every consumer in turn. A receiver acknowledges a request only after
// ConsumeTraces returned nil, so what it acknowledged is in every consumer.
type Pipeline struct {
	budget    *semaphore.Weighted
	maxBytes  int64
	consumers []TracesConsumer
}

// New builds a pipeline that admits at most maxInFlightBytes of request
// payload at once and fans spans out to consumers in order.
func New(maxInFlightBytes int64, consumers ...TracesConsumer) *Pipeline {
	return &Pipeline{budget: semaphore.NewWeighted(maxInFlightBytes), maxBytes: maxInFlightBytes, consumers: consumers}
}

// Admit reserves size bytes of the in-flight budget, or fails at once with
// ErrOverloaded. Call release when the request is answered.
func (p *Pipeline) Admit(size int) (release func(), err error) {
	n := min(max(int64(size), 1), p.maxBytes)
	if !p.budget.TryAcquire(n) {
		return nil, ErrOverloaded
	}
	selfmetrics.InFlightBytes.Add(float64(n))
	return func() {
		selfmetrics.InFlightBytes.Sub(float64(n))
		p.budget.Release(n)
	}, nil
}

// ConsumeTraces hands td to each consumer in turn.
func (p *Pipeline) ConsumeTraces(ctx context.Context, td ptrace.Traces) error {
	for _, c := range p.consumers {
		if err := c.ConsumeTraces(ctx, td); err != nil {
			return fmt.Errorf("consume %d spans: %w", td.SpanCount(), err)
		}
	}
	return nil
}

// ErrInvalid wraps the reason a batch had no span that could be stored.
var ErrInvalid = errors.New("no valid span")

// bytesPerSpan is what an admitted batch is charged per span when only its
// decoded form is at hand: about the encoded size of a span with ten
// attributes. Measuring the exact size would walk every attribute of every
// span on the hot path.
const bytesPerSpan = 512

// EstimatedSize is the in-flight budget a decoded batch is charged.
func EstimatedSize(td ptrace.Traces) int { return td.SpanCount() * bytesPerSpan }

// Checked is the TracesConsumer a receiver without its own admission and
// validation hands spans to: it reserves the in-flight budget, removes the
// spans storage cannot keep (counting them under receiver), and fails with
// ErrInvalid when none is left, ErrOverloaded when over budget.
type Checked struct {
	Pipeline *Pipeline
	Limits   Limits
	Receiver string
}

// ConsumeTraces implements TracesConsumer.
func (c Checked) ConsumeTraces(ctx context.Context, td ptrace.Traces) error {
	release, err := c.Pipeline.Admit(EstimatedSize(td))
	if err != nil {
		selfmetrics.SpansRejected.WithLabelValues(c.Receiver, "overloaded").Add(float64(td.SpanCount()))
		return err
	}
	defer release()
	v := Validate(td, c.Limits, time.Now())
	if v.Rejected > 0 {
		selfmetrics.SpansRejected.WithLabelValues(c.Receiver, "invalid").Add(float64(v.Rejected))
		if v.Accepted == 0 {
			return fmt.Errorf("%w: all %d spans rejected; first: %s", ErrInvalid, v.Rejected, v.FirstError)
		}
	}
	return c.Pipeline.ConsumeTraces(ctx, td)
}
