package red

import (
	"errors"

	"github.com/prometheus/prometheus/storage"
)

// Total is one series' running total: every call counted since the series
// was first seen by this process. It only grows; a restart starts it again
// from zero, which PromQL's rate() and increase() take as a counter reset.
type Total struct {
	Stats
	// StartMs is when the total began (just before its first call was
	// counted): the time of its zero, written before its first sample so
	// that rate() counts the first calls too.
	StartMs int64
	// LastMs is when a minute window last began counting into it; a total
	// unused for the idle expiry is forgotten.
	LastMs int64
	// FirstWrittenMs stamps the store's first sample of it (and so its
	// zero); 0 while the store holds none.
	FirstWrittenMs int64
	pinned         bool
}

// Totals are the running totals of every series, as Minutes counts spans
// into them (each window links its series to their totals). Not safe for
// concurrent use: the analyser guards it.
type Totals struct {
	Services    map[string]*Total
	Instances   map[Pair]*Total
	Endpoints   map[Pair]*Total
	ClientEdges map[Edge]*Total
	ServerEdges map[Edge]*Total
	// maxEdges caps the edges of each side: further ones count under the
	// overflow edge, as in a minute's window.
	maxEdges int
	// nowMs is the time of the span being counted (Minutes.For sets it).
	nowMs int64
}

// NewTotals returns empty totals holding at most maxEdges edges a side.
func NewTotals(maxEdges int) *Totals {
	return &Totals{
		Services:    map[string]*Total{},
		Instances:   map[Pair]*Total{},
		Endpoints:   map[Pair]*Total{},
		ClientEdges: map[Edge]*Total{},
		ServerEdges: map[Edge]*Total{},
		maxEdges:    maxEdges,
	}
}

func linkTotal[K comparable](m map[K]*Total, k K, nowMs int64) *Total {
	t := m[k]
	if t == nil {
		t = &Total{StartMs: nowMs - 1}
		m[k] = t
	}
	t.LastMs = nowMs
	return t
}

// linkEdge links an edge to its total, or to the overflow edge's once the
// side holds maxEdges edges. The choice is made for each minute a series
// appears in; either total only ever grows.
func (t *Totals) linkEdge(m map[Edge]*Total, k Edge) *Total {
	if _, ok := m[k]; !ok && t.maxEdges > 0 && len(m) >= t.maxEdges {
		k = Edge{Client: Overflow, Server: Overflow, ClientType: NodeService, ServerType: NodeService}
	}
	return linkTotal(m, k, t.nowMs)
}

// Len is the number of series with a total.
func (t *Totals) Len() int {
	return len(t.Services) + len(t.Instances) + len(t.Endpoints) + len(t.ClientEdges) + len(t.ServerEdges)
}

// Each calls fn for every total: its family, its label pairs (valid only
// during the call) and the total.
func (t *Totals) Each(fn func(f *Family, kv []string, tot *Total)) {
	for _, f := range Families {
		t.EachOf(f, fn)
	}
}

// EachOf is Each for the totals of family f only.
func (t *Totals) EachOf(f *Family, fn func(f *Family, kv []string, tot *Total)) {
	var buf [10]string
	switch f {
	case ServiceFamily:
		for name, s := range t.Services {
			fn(f, f.kv(buf[:0], name, ""), s)
		}
	case InstanceFamily:
		for k, s := range t.Instances {
			fn(f, f.kv(buf[:0], k.Service, k.Name), s)
		}
	case EndpointFamily:
		for k, s := range t.Endpoints {
			fn(f, f.kv(buf[:0], k.Service, k.Name), s)
		}
	case EdgeClientFamily:
		for k, s := range t.ClientEdges {
			fn(f, edgeKV(buf[:0], k), s)
		}
	case EdgeServerFamily:
		for k, s := range t.ServerEdges {
			fn(f, edgeKV(buf[:0], k), s)
		}
	}
}

// LenOf is the number of totals of family f.
func (t *Totals) LenOf(f *Family) int {
	switch f {
	case ServiceFamily:
		return len(t.Services)
	case InstanceFamily:
		return len(t.Instances)
	case EndpointFamily:
		return len(t.Endpoints)
	case EdgeClientFamily:
		return len(t.ClientEdges)
	case EdgeServerFamily:
		return len(t.ServerEdges)
	}
	return 0
}

// Expire forgets the totals no window has counted into since beforeMs,
// except those an open window still counts into; it returns how many it
// forgot. A forgotten series that comes back starts again from zero (a
// counter reset to PromQL).
func (m *Minutes) Expire(beforeMs int64) int {
	t := m.Totals
	if t == nil {
		return 0
	}
	for _, w := range m.open {
		w.Each(func(_ *Family, _ []string, s *Stats) {
			if s.total != nil {
				s.total.pinned = true
			}
		})
	}
	n := expire(t.Services, beforeMs) + expire(t.Instances, beforeMs) + expire(t.Endpoints, beforeMs) +
		expire(t.ClientEdges, beforeMs) + expire(t.ServerEdges, beforeMs)
	for _, w := range m.open {
		w.Each(func(_ *Family, _ []string, s *Stats) {
			if s.total != nil {
				s.total.pinned = false
			}
		})
	}
	return n
}

func expire[K comparable](m map[K]*Total, beforeMs int64) int {
	n := 0
	for k, t := range m {
		if t.LastMs < beforeMs && !t.pinned {
			delete(m, k)
			n++
		}
	}
	return n
}

// CounterSample is a copy of one series' running total, to write.
type CounterSample struct {
	Family  *Family
	kv      [10]string
	n       int
	Stats   Stats
	StartMs int64
	// Written tells that the store has the series' zero already.
	Written bool
	// Total is where the sample was taken from, to mark it written.
	Total *Total
}

// KV is the sample's label pairs.
func (c *CounterSample) KV() []string { return c.kv[:c.n] }

// Snapshot appends a copy of every total to dst, for writing them without
// holding what guards t.
func (t *Totals) Snapshot(dst []CounterSample) []CounterSample {
	t.Each(func(f *Family, kv []string, tot *Total) {
		c := CounterSample{Family: f, Stats: tot.Stats.Copy(), StartMs: tot.StartMs, Written: tot.FirstWrittenMs != 0, Total: tot}
		c.n = copy(c.kv[:], kv)
		dst = append(dst, c)
	})
	return dst
}

// AppendCounters writes the samples' counters, stamped atMs, into app (not
// committed); a series not written before gets its zero at its start first.
// It returns how many samples were written and refused, as Window.Append.
func AppendCounters(app storage.Appender, samples []CounterSample, atMs int64) (written, refused int, err error) {
	for i := range samples {
		c := &samples[i]
		kv := c.KV()
		for _, d := range c.Family.Counters {
			lbls := seriesLabels(d.Name, kv)
			if d.Histogram() {
				h := c.Stats.Latency.Counter()
				if !c.Written && c.StartMs < atMs {
					_, e := app.AppendHistogramSTZeroSample(0, lbls, atMs, c.StartMs, h, nil)
					zeroRefused(e, &refused)
				}
				_, e := app.AppendHistogram(0, lbls, atMs, h, nil)
				if err = count(e, &written, &refused); err != nil {
					return written, refused, err
				}
				continue
			}
			if !c.Written && c.StartMs < atMs {
				_, e := app.AppendSTZeroSample(0, lbls, atMs, c.StartMs)
				zeroRefused(e, &refused)
			}
			_, e := app.Append(0, lbls, atMs, d.Value(&c.Stats))
			if err = count(e, &written, &refused); err != nil {
				return written, refused, err
			}
		}
	}
	return written, refused, nil
}

// zeroRefused counts a zero the TSDB did not take. It refuses one older
// than a sample it has (ErrOutOfOrderST): the series was written before
// under the same labels, by this process before it forgot the series or by
// the one before a restart, and the drop to the new total marks the reset
// as well. Any other error shows again on the sample that follows.
func zeroRefused(err error, refused *int) {
	if err != nil && (errors.Is(err, storage.ErrOutOfOrderST) || errors.Is(err, storage.ErrOutOfOrderSample) ||
		errors.Is(err, storage.ErrDuplicateSampleForTimestamp) || errors.Is(err, storage.ErrOutOfBounds) || errors.Is(err, storage.ErrTooOldSample)) {
		*refused++
	}
}
