package servicemap

// Call is a client span waiting for the server span that answered it.
type Call struct {
	Service string
	Target  Target
	StartMs int64
	Seconds float64
	Failed  bool
}

// Entry is a server span waiting for the client span that called it. Client
// spans usually end, and so arrive, after the server spans they wait for.
type Entry struct {
	Service string
	// FallbackClient is the caller a SkyWalking ref names; "" when unknown.
	FallbackClient string
	StartMs        int64
	Seconds        float64
	Failed         bool
}

// generation is one age class of waiting spans.
type generation struct {
	calls   map[uint64]Call  // by the client span's ID
	entries map[uint64]Entry // by the server span's parent span ID
}

func newGeneration() generation {
	return generation{calls: map[uint64]Call{}, entries: map[uint64]Entry{}}
}

// Joiner matches client spans with the server spans they caused, which
// arrive in different batches and in either order. Waiting spans age in two
// generations: Rotate, called every half grace period, expires the older
// one, so a span waits between half and one whole grace period. It is not
// safe for concurrent use.
type Joiner struct {
	cur, old generation
	max      int
	// aliases maps addresses SkyWalking agents used to reach a service
	// (a ref's networkAddressUsedAtPeer) to that service, so an unjoined
	// exit span to "order:8080" still lands on "order".
	aliases    map[string]string
	maxAliases int
	// Overflow counts spans that found the join table full and were
	// resolved at once, as if their partner never came.
	Overflow uint64
}

// NewJoiner returns a joiner holding at most maxWaiting spans.
func NewJoiner(maxWaiting int) *Joiner {
	return &Joiner{cur: newGeneration(), old: newGeneration(), max: maxWaiting, aliases: map[string]string{}, maxAliases: 10_000}
}

// Len is the number of waiting spans.
func (j *Joiner) Len() int {
	return len(j.cur.calls) + len(j.cur.entries) + len(j.old.calls) + len(j.old.entries)
}

// AddCall offers a client span. If its server span already waits, it is
// returned and removed; otherwise the call waits (ok false, full false), or,
// with the table full, is not kept (full true).
func (j *Joiner) AddCall(spanID uint64, c Call) (e Entry, ok, full bool) {
	if e, ok = take(j.cur.entries, j.old.entries, spanID); ok {
		return e, true, false
	}
	if j.Len() >= j.max {
		j.Overflow++
		return Entry{}, false, true
	}
	j.cur.calls[spanID] = c
	return Entry{}, false, false
}

// AddEntry offers a server span by its parent span ID, as AddCall does.
func (j *Joiner) AddEntry(parentSpanID uint64, e Entry) (c Call, ok, full bool) {
	if c, ok = take(j.cur.calls, j.old.calls, parentSpanID); ok {
		return c, true, false
	}
	if j.Len() >= j.max {
		j.Overflow++
		return Call{}, false, true
	}
	j.cur.entries[parentSpanID] = e
	return Call{}, false, false
}

func take[V any](cur, old map[uint64]V, k uint64) (V, bool) {
	if v, ok := cur[k]; ok {
		delete(cur, k)
		return v, true
	}
	if v, ok := old[k]; ok {
		delete(old, k)
		return v, true
	}
	var zero V
	return zero, false
}

// Rotate ages the waiting spans and hands the expired ones to the callbacks.
func (j *Joiner) Rotate(call func(Call), entry func(Entry)) {
	for _, c := range j.old.calls {
		call(c)
	}
	for _, e := range j.old.entries {
		entry(e)
	}
	// Reuse the emptied maps' buckets for the new generation.
	clear(j.old.calls)
	clear(j.old.entries)
	j.old, j.cur = j.cur, j.old
}

// AddAlias records that address reached service.
func (j *Joiner) AddAlias(address, service string) {
	if j.aliases[address] == service {
		return
	}
	if len(j.aliases) >= j.maxAliases {
		j.Overflow++
		return
	}
	j.aliases[address] = service
}

// Alias returns the service known to answer at address.
func (j *Joiner) Alias(address string) (string, bool) {
	s, ok := j.aliases[address]
	return s, ok
}
