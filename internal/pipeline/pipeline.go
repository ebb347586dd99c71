package pipeline

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/semaphore"

	"github.com/skytrail/skytrail/internal/wal"
)

// Config sets up the front door.
type Config struct {
	// MaxInFlightBytes bounds the requests being processed at once
	// (default 64 MiB); beyond it requests are refused as Overloaded.
	MaxInFlightBytes int64
	// Limits bound what one item may carry.
	Limits Limits
	// Storage is what the span store can keep; it states it itself
	// (spanstore.Store.Limits), and Limits are tightened to it.
	Storage StorageLimits
	// Registerer takes the front door's counters; nil keeps them unregistered.
	Registerer prometheus.Registerer
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Journal, when set, is the write-ahead log every batch is written to
	// before any consumer sees it and fsynced before it is acknowledged;
	// nil hands batches straight over.
	Journal Journal
}

// Source is where a request came from.
type Source struct {
	// Receiver names the listener: otlp-grpc, otlp-http, skywalking-grpc,
	// skywalking-http.
	Receiver string
	// Client is the peer's address (host:port), "" when unknown.
	Client string
}

// Rejection is one refusal, told to every subscriber as it happens.
type Rejection struct {
	Source
	Signal Signal
	Reason Reason
	// Items refused; a request refused before its items could be counted
	// (undecodable, unauthenticated, too large) counts as 1.
	Items   int
	Message string
	At      time.Time
}

// Outcome is what Ingest did with a batch it acknowledged.
type Outcome struct {
	Accepted int
	// Rejected items were removed (invalid) while the rest was taken: the
	// receiver reports a partial success, with Message saying why.
	Rejected int
	Message  string
}

// Pipeline is the front door: see the package comment.
type Pipeline struct {
	limits    Limits
	now       func() time.Time
	budget    *semaphore.Weighted
	maxBytes  int64
	consumers Consumers
	journal   Journal
	counters  *counters
	// While spans are being stored, a batch of log records takes one of
	// logWriters' slots first: half the cores, so that a flood of log
	// lines leaves the other half to spans. Beside log lines sent flat
	// out, spans at 20,000/s were answered in a p50 of 50-77 ms and a p99
	// of 205-390 ms with the slots, 98-114 and 401-577 ms without
	// (bench/logingest, 2 cores; docs/benchmarks.md). Without spans the
	// log batches take every core: a slot at all times left a fifth of a
	// core idle under logs alone (1.57 cores in use rather than 1.76).
	logWriters    chan struct{}
	spansInFlight atomic.Int64 // span batches in Request.Ingest

	mu          sync.RWMutex
	subscribers []func(Rejection)
}

// New builds the front door over consumers.
func New(cfg Config, consumers Consumers) *Pipeline {
	if cfg.MaxInFlightBytes <= 0 {
		cfg.MaxInFlightBytes = 64 << 20
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Pipeline{
		limits:     cfg.Limits.effective(cfg.Storage),
		now:        cfg.Now,
		budget:     semaphore.NewWeighted(cfg.MaxInFlightBytes),
		maxBytes:   cfg.MaxInFlightBytes,
		consumers:  consumers,
		journal:    cfg.Journal,
		counters:   newCounters(cfg.Registerer),
		logWriters: make(chan struct{}, max(1, runtime.GOMAXPROCS(0)/2)),
	}
}

// Subscribe adds fn to those told of every refusal. fn runs on the refused
// request's goroutine, so it must be quick and must not block.
func (p *Pipeline) Subscribe(fn func(Rejection)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.subscribers = append(p.subscribers, fn)
}

// Budget is the in-flight budget: the most memory the requests being
// processed may take together, so the most one request may take.
func (p *Pipeline) Budget() int64 { return p.maxBytes }

// Limits are the limits items are validated against: the configured ones
// within what storage can keep.
func (p *Pipeline) Limits() Limits { return p.limits }

// Request is one client request inside the front door: it holds its share
// of the in-flight budget until Release.
type Request struct {
	p       *Pipeline
	src     Source
	signal  Signal
	charged int64
}

// Admit reserves size bytes of the in-flight budget for a request from src
// carrying signal, before the request is read or decoded, or refuses it
// at once: Overloaded while the budget is spent, TooLarge when size is more
// than the whole budget. Release the request when it is answered.
func (p *Pipeline) Admit(src Source, signal Signal, size int) (*Request, error) {
	r := p.Begin(src, signal)
	if err := r.charge(size, 1); err != nil {
		return nil, err
	}
	return r, nil
}

// Begin starts a request whose size is only known as it is read or
// decoded: Grow charges it as that happens, and Ingest charges a batch's
// estimated size if nothing was charged before. Release it when answered.
func (p *Pipeline) Begin(src Source, signal Signal) *Request {
	return &Request{p: p, src: src, signal: signal}
}

// Grow charges the request n more bytes: what it takes in memory, as its
// body arrives or once its decoded size is known. It refuses the request as
// Admit does.
func (r *Request) Grow(n int) error {
	return r.charge(n, 1)
}

// charge reserves size more bytes for a request of items items, or refuses
// them all: TooLarge when the request would need more than the whole
// budget, so could never be taken; Overloaded when the budget is spent now.
func (r *Request) charge(size, items int) error {
	n := max(int64(size), 1)
	if r.charged+n > r.p.maxBytes {
		return r.p.refuse(r.src, r.signal, TooLarge, items, Refusef(TooLarge,
			"the request needs %d bytes of memory to decode, more than the server's in-flight budget of %d (--max-inflight-bytes): send smaller batches",
			r.charged+n, r.p.maxBytes))
	}
	if !r.p.budget.TryAcquire(n) {
		return r.p.refuse(r.src, r.signal, Overloaded, items, ErrOverloaded)
	}
	r.p.counters.inFlight.Add(float64(n))
	r.charged += n
	return nil
}

// Release returns the request's share of the budget. It may be called more
// than once.
func (r *Request) Release() {
	if r == nil || r.charged == 0 {
		return
	}
	r.p.counters.inFlight.Sub(float64(r.charged))
	r.p.budget.Release(r.charged)
	r.charged = 0
}

// Refuse refuses the request before it became a batch (a body that does not
// decode, one over the size limit): it is counted and published, and the
// returned error carries reason and err's message.
func (r *Request) Refuse(reason Reason, err error) *Error {
	return r.p.refuse(r.src, r.signal, reason, 1, err)
}

// Refuse refuses a request that was never admitted (a wrong token).
func (p *Pipeline) Refuse(src Source, signal Signal, reason Reason, err error) *Error {
	return p.refuse(src, signal, reason, 1, err)
}

func (p *Pipeline) refuse(src Source, signal Signal, reason Reason, items int, err error) *Error {
	e, ok := err.(*Error)
	if !ok || e.Reason != reason {
		e = &Error{Reason: reason, Msg: err.Error(), err: err}
	}
	p.counters.rejected(src.Receiver, signal, reason, items)
	p.publish(Rejection{Source: src, Signal: signal, Reason: reason, Items: items, Message: e.Msg, At: p.now()})
	return e
}

func (p *Pipeline) publish(r Rejection) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	for _, fn := range p.subscribers {
		fn(r)
	}
}

// Ingest takes b from src as Request.Ingest does, charged at its estimated
// size: the path for receivers that only learn a request's size by
// decoding it.
func (p *Pipeline) Ingest(ctx context.Context, src Source, b Batch) (Outcome, error) {
	r := p.Begin(src, b.signal())
	defer r.Release()
	return r.Ingest(ctx, b)
}

// Ingest validates b in place (removing the items storage could not keep
// whole), works out its resources, and hands what is left to every consumer
// of its kind in turn. A request begun without a size is charged b's
// estimated size first, or refused as Overloaded. With a journal, what is
// left is written to it before any consumer sees it, and its fsync runs
// while the consumers take it. It fails with an *Error: Invalid when nothing
// was left, or the retryable Unavailable when the journal or a consumer
// failed (a failed fsync leaves the batch with the consumers: the client's
// retry may store it twice, never not at all). On success the journal has
// the batch durably and every consumer has it, and Outcome says what was
// removed.
func (r *Request) Ingest(ctx context.Context, b Batch) (Outcome, error) {
	p, signal := r.p, b.signal()
	r.signal = signal
	if signal == SignalSpans {
		p.spansInFlight.Add(1)
		defer p.spansInFlight.Add(-1)
	}
	if r.charged == 0 {
		if err := r.charge(b.estimatedBytes(), max(b.items(), 1)); err != nil {
			return Outcome{}, err
		}
	}
	refused := b.refused()
	received := b.items() + refused.Items
	p.counters.received(r.src.Receiver, signal, received)

	v := b.prepare(p.limits, p.now())
	v.Rejected += refused.Items
	if refused.Items > 0 && refused.First != "" {
		v.FirstError = refused.First
	}
	if v.Rejected > 0 {
		p.refuse(r.src, signal, Invalid, v.Rejected, &Error{Reason: Invalid, Msg: v.FirstError})
	}
	if v.Accepted == 0 {
		if v.Rejected > 0 {
			return Outcome{}, &Error{Reason: Invalid, Msg: fmt.Sprintf("all %d %s rejected; first: %s", v.Rejected, signal.noun(), v.FirstError)}
		}
		return Outcome{}, nil
	}
	// A client that stopped waiting (its deadline passed, it hung up) will
	// send the batch again: storing this copy would only duplicate it.
	if err := ctx.Err(); err != nil {
		e := &Error{Reason: Abandoned, Msg: fmt.Sprintf("the client stopped waiting before %d %s were stored: %v", v.Accepted, signal.noun(), err), err: err}
		p.refuse(r.src, signal, Abandoned, v.Accepted, e)
		return Outcome{}, e
	}
	var journaled *wal.Appended
	if p.journal != nil {
		var err error
		if journaled, err = p.write(ctx, b, v.Accepted, signal); err != nil {
			p.refuse(r.src, signal, ReasonOf(err), v.Accepted, err)
			return Outcome{}, err
		}
		// Once every consumer took the batch (or failed to) and its fsync
		// is over: a checkpoint waits for it.
		defer journaled.Done()
	}
	// The consumers take the batch while the journal's fsync runs: the
	// request waits for the longer of the two, not both.
	if err := p.consume(ctx, b); err != nil {
		reason := ReasonOf(err)
		if !reason.Retryable() {
			reason = Unavailable
		}
		e := &Error{Reason: reason, Msg: fmt.Sprintf("storing %d %s failed, retry later: %v", v.Accepted, signal.noun(), err), err: err}
		p.refuse(r.src, signal, reason, v.Accepted, e)
		return Outcome{}, e
	}
	if journaled != nil {
		if err := journaled.Durable(); err != nil {
			e := &Error{Reason: Unavailable, Msg: fmt.Sprintf("syncing %d %s to the write-ahead log failed, retry later: %v", v.Accepted, signal.noun(), err), err: err}
			p.refuse(r.src, signal, Unavailable, v.Accepted, e)
			return Outcome{}, e
		}
	}
	p.counters.accepted(r.src.Receiver, signal, v.Accepted)
	out := Outcome{Accepted: v.Accepted, Rejected: v.Rejected}
	if v.Rejected > 0 {
		out.Message = fmt.Sprintf("%d of %d %s rejected; first: %s", v.Rejected, received, signal.noun(), v.FirstError)
	}
	return out, nil
}

// consume hands b to its consumers; while spans are being stored, a batch
// of log records waits for a slot of logWriters first.
func (p *Pipeline) consume(ctx context.Context, b Batch) error {
	if b.signal() == SignalLogs && p.spansInFlight.Load() > 0 {
		p.logWriters <- struct{}{}
		defer func() { <-p.logWriters }()
	}
	return b.consume(ctx, p.consumers)
}

// write appends b to the journal, which has it once this returns: a kill
// can no longer lose it, and the request is acknowledged once the record's
// fsync (Appended.Durable) is over too. A failure is retryable (a full
// disk, a write that failed), and nothing reaches a consumer.
func (p *Pipeline) write(ctx context.Context, b Batch, items int, signal Signal) (*wal.Appended, error) {
	rec, err := EncodeRecord(b)
	if err == nil {
		var a *wal.Appended
		if a, err = p.journal.Append(ctx, rec); err == nil {
			return a, nil
		}
	}
	return nil, &Error{Reason: Unavailable, Msg: fmt.Sprintf("writing %d %s to the write-ahead log failed, retry later: %v", items, signal.noun(), err), err: err}
}

// noun is the signal in an error message.
func (s Signal) noun() string {
	switch s {
	case SignalSpans:
		return "spans"
	case SignalLogs:
		return "log records"
	case SignalMetrics:
		return "metric points"
	}
	return "heartbeats"
}
