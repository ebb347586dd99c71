// Package red aggregates rate, errors and duration (RED) figures of every
// span: per minute (calls, errors, Apdex counts and a latency histogram per
// series, written to the metric store as one sample per series per minute,
// for exact sums over any whole minutes) and as running totals (counters and
// a counter histogram per series, written every few seconds, for PromQL's
// rate() and histogram_quantile()). docs/metrics.md describes the series.
package red

import (
	"errors"
	"slices"
	"sort"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
)

// Overflow is the name figures are counted under once a cap is reached.
const Overflow = "<overflow>"

// Stats are one series' figures for one minute, or its running total.
type Stats struct {
	Calls, Errors uint64
	// Satisfied and Tolerating count Apdex outcomes: a successful call
	// within the threshold T, and one within 4T. Failed calls are frustrated.
	Satisfied, Tolerating uint64
	Latency               Histogram
	// total, on a minute's figures, is the series' running total, which
	// every call counted into the minute is counted into as well.
	total *Total
}

// Observe adds one call of the given duration in seconds; apdexT is the
// service's Apdex threshold in seconds.
func (s *Stats) Observe(seconds float64, failed bool, apdexT float64) {
	zero, idx := seconds <= ZeroThreshold, int32(0)
	if !zero {
		idx = bucketIndex(seconds)
	}
	s.put(seconds, failed, apdexT, zero, idx)
	if s.total != nil {
		s.total.put(seconds, failed, apdexT, zero, idx)
	}
}

func (s *Stats) put(seconds float64, failed bool, apdexT float64, zero bool, idx int32) {
	s.Calls++
	if failed {
		s.Errors++
	} else if seconds <= apdexT {
		s.Satisfied++
	} else if seconds <= 4*apdexT {
		s.Tolerating++
	}
	s.Latency.put(seconds, zero, idx)
}

// Copy is a copy of s sharing nothing with it.
func (s *Stats) Copy() Stats {
	return Stats{Calls: s.Calls, Errors: s.Errors, Satisfied: s.Satisfied, Tolerating: s.Tolerating, Latency: s.Latency.clone()}
}

// Pair keys instance and endpoint series: a service and one of its
// instances or endpoints.
type Pair struct{ Service, Name string }

// Node types of the service map.
const (
	NodeService  = "service"
	NodeUser     = "user"
	NodeDatabase = "database"
	NodeCache    = "cache"
	NodeMQ       = "mq"
	NodeExternal = "external"
)

// Edge keys a service-map edge: who called whom, what kind of node each
// side is, and for a virtual server node the system it runs (mysql, kafka).
type Edge struct {
	Client, Server         string
	ClientType, ServerType string
	System                 string
}

// Window holds one minute's figures, keyed by the series they become.
type Window struct {
	// End is the end of the minute in Unix milliseconds: samples are
	// stamped with it, so a range (t-d, t] holds exactly the minutes in it.
	End         int64
	Services    map[string]*Stats
	Instances   map[Pair]*Stats
	Endpoints   map[Pair]*Stats
	ClientEdges map[Edge]*Stats
	ServerEdges map[Edge]*Stats
	// Early marks a minute written before it was due (a Flush, as at
	// shutdown). Its samples are stamped inside the minute rather than at
	// its end, at a time telling this flush from any other (see Due), so
	// that a later window of the same minute (spans arriving after the
	// flush, or after a restart) writes beside them, not on them (which the
	// store would refuse), and sum_over_time adds them up.
	Early bool
	stamp int64
	// totals, when set, are the running totals the window's series count
	// into as well.
	totals *Totals
}

// Stamp is the timestamp the window's samples are written with.
func (w *Window) Stamp() int64 {
	if w.Early {
		return w.stamp
	}
	return w.End
}

// earlyStamp is the stamp of a minute ending at end written early at
// nowMs: nowMs while the minute runs; after it ended (but before it was
// due), as far before its end as nowMs is after it. Either way inside the
// minute; flushes in the same millisecond get the same one, which Due
// moves to one no other write of the minute used (unusedEarlyStamp).
func earlyStamp(end, nowMs int64) int64 {
	if nowMs < end {
		return max(nowMs, end-minuteMs+1)
	}
	return max(end-1-(nowMs-end), end-minuteMs+1)
}

func newWindow(end int64, totals *Totals) *Window {
	return &Window{
		End:         end,
		totals:      totals,
		Services:    map[string]*Stats{},
		Instances:   map[Pair]*Stats{},
		Endpoints:   map[Pair]*Stats{},
		ClientEdges: map[Edge]*Stats{},
		ServerEdges: map[Edge]*Stats{},
	}
}

// Service returns the figures of service, creating them.
func (w *Window) Service(service string) *Stats {
	s := w.Services[service]
	if s == nil {
		s = &Stats{}
		if w.totals != nil {
			s.total = linkTotal(w.totals.Services, service, w.totals.nowMs)
		}
		w.Services[service] = s
	}
	return s
}

// Instance returns the figures of one instance, creating them.
func (w *Window) Instance(k Pair) *Stats {
	s := w.Instances[k]
	if s == nil {
		s = &Stats{}
		if w.totals != nil {
			s.total = linkTotal(w.totals.Instances, k, w.totals.nowMs)
		}
		w.Instances[k] = s
	}
	return s
}

// Endpoint returns the figures of one endpoint, creating them.
func (w *Window) Endpoint(k Pair) *Stats {
	s := w.Endpoints[k]
	if s == nil {
		s = &Stats{}
		if w.totals != nil {
			s.total = linkTotal(w.totals.Endpoints, k, w.totals.nowMs)
		}
		w.Endpoints[k] = s
	}
	return s
}

// ClientEdge returns an edge's figures as its client saw them.
func (w *Window) ClientEdge(k Edge) *Stats {
	s := w.ClientEdges[k]
	if s == nil {
		s = &Stats{}
		if w.totals != nil {
			s.total = w.totals.linkEdge(w.totals.ClientEdges, k)
		}
		w.ClientEdges[k] = s
	}
	return s
}

// ServerEdge returns an edge's figures as its server saw them.
func (w *Window) ServerEdge(k Edge) *Stats {
	s := w.ServerEdges[k]
	if s == nil {
		s = &Stats{}
		if w.totals != nil {
			s.total = w.totals.linkEdge(w.totals.ServerEdges, k)
		}
		w.ServerEdges[k] = s
	}
	return s
}

// Each calls fn for every series of the window: its family, its label
// pairs (valid only during the call) and its figures.
func (w *Window) Each(fn func(f *Family, kv []string, s *Stats)) {
	for _, f := range Families {
		w.EachOf(f, fn)
	}
}

// EachOf is Each for the series of family f only.
func (w *Window) EachOf(f *Family, fn func(f *Family, kv []string, s *Stats)) {
	var buf [10]string
	switch f {
	case ServiceFamily:
		for name, s := range w.Services {
			fn(f, f.kv(buf[:0], name, ""), s)
		}
	case InstanceFamily:
		for k, s := range w.Instances {
			fn(f, f.kv(buf[:0], k.Service, k.Name), s)
		}
	case EndpointFamily:
		for k, s := range w.Endpoints {
			fn(f, f.kv(buf[:0], k.Service, k.Name), s)
		}
	case EdgeClientFamily:
		for k, s := range w.ClientEdges {
			fn(f, edgeKV(buf[:0], k), s)
		}
	case EdgeServerFamily:
		for k, s := range w.ServerEdges {
			fn(f, edgeKV(buf[:0], k), s)
		}
	}
}

// LenOf is the number of series of family f in the window.
func (w *Window) LenOf(f *Family) int {
	switch f {
	case ServiceFamily:
		return len(w.Services)
	case InstanceFamily:
		return len(w.Instances)
	case EndpointFamily:
		return len(w.Endpoints)
	case EdgeClientFamily:
		return len(w.ClientEdges)
	case EdgeServerFamily:
		return len(w.ServerEdges)
	}
	return 0
}

// Append writes the window's per-minute series into app (not committed),
// stamped with the end of the minute (Stamp). It returns how many samples it wrote
// and how many the TSDB refused as out of order or already written (a
// minute flushed at shutdown and seen again after a restart); those are
// skipped, any other error stops the write.
func (w *Window) Append(app storage.Appender) (written, refused int, err error) {
	w.Each(func(f *Family, kv []string, s *Stats) {
		if err != nil {
			return
		}
		for _, d := range f.Minute {
			if d.Field == FieldDuration {
				_, e := app.AppendHistogram(0, seriesLabels(d.Name, kv), w.Stamp(), nil, s.Latency.Float())
				err = count(e, &written, &refused)
			} else {
				_, e := app.Append(0, seriesLabels(d.Name, kv), w.Stamp(), d.Value(s))
				err = count(e, &written, &refused)
			}
			if err != nil {
				return
			}
		}
	})
	return written, refused, err
}

// count counts a write's outcome: written, refused as out of order or
// already there (skipped), or failed (the error, which stops the write).
func count(err error, written, refused *int) error {
	switch {
	case err == nil:
		*written++
	case errors.Is(err, storage.ErrOutOfOrderSample), errors.Is(err, storage.ErrDuplicateSampleForTimestamp),
		errors.Is(err, storage.ErrOutOfBounds), errors.Is(err, storage.ErrTooOldSample):
		*refused++
	default:
		return err
	}
	return nil
}

func seriesLabels(name string, kv []string) labels.Labels {
	b := labels.NewScratchBuilder(len(kv)/2 + 1)
	b.Add(labels.MetricName, name)
	for i := 0; i+1 < len(kv); i += 2 {
		b.Add(kv[i], kv[i+1])
	}
	b.Sort()
	return b.Labels()
}

// Minutes keeps the open per-minute windows. It is not safe for concurrent
// use: the analyser guards it.
type Minutes struct {
	// Totals are the running totals every window's series count into.
	Totals *Totals
	open   map[int64]*Window
	// flushedThrough is the end of the newest window handed out for writing;
	// a span for an earlier minute is counted into the oldest open one.
	flushedThrough int64
	// Late counts spans that arrived after their minute was written.
	Late uint64
	// earlyStamps are the stamps given to each minute's early writes: two
	// flushes in the same millisecond (or one at a minute's last millisecond
	// and one at its end) would compute the same stamp, and the store
	// refuses a second sample on a timestamp, losing the calls counted in
	// between.
	earlyStamps map[int64][]int64
}

// NewMinutes returns an empty set of windows counting into totals (nil:
// no running totals).
func NewMinutes(totals *Totals) *Minutes { return &Minutes{open: map[int64]*Window{}, Totals: totals} }

const minuteMs = 60_000

// MaxLate is how far behind the current minute a span may start and still
// count in its own minute; the metric store accepts samples that far out of
// order. Older spans count in the oldest minute allowed.
const MaxLate = 10 * minuteMs

// For returns the window for a span that started at startMs, seen at nowMs.
// Spans from the future (clock skew beyond a minute) count into the current
// minute; spans for a minute already written, or older than MaxLate, into
// the oldest one still allowed.
func (m *Minutes) For(startMs, nowMs int64) *Window {
	end := (startMs/minuteMs + 1) * minuteMs
	current := (nowMs/minuteMs + 1) * minuteMs
	if end > current+minuteMs {
		end = current
	}
	if floor := max(m.flushedThrough+minuteMs, current-MaxLate); end < floor {
		m.Late++
		end = floor
	}
	if m.Totals != nil {
		m.Totals.nowMs = nowMs
	}
	w := m.open[end]
	if w == nil {
		w = newWindow(end, m.Totals)
		m.open[end] = w
	}
	return w
}

// Due removes and returns, oldest first, the windows that ended at least
// delayMs before nowMs, or all of them when all is set.
func (m *Minutes) Due(nowMs, delayMs int64, all bool) []*Window {
	var due []*Window
	current := (nowMs/minuteMs + 1) * minuteMs
	for end, w := range m.open {
		if all || end+delayMs <= nowMs {
			if end+delayMs > nowMs {
				w.Early, w.stamp = true, m.unusedEarlyStamp(end, earlyStamp(end, nowMs))
			}
			due = append(due, w)
			delete(m.open, end)
			// A forced flush writes the current minute early; spans still
			// arriving for it stay in it (their samples are refused as
			// already written) rather than push later ones into the future.
			m.flushedThrough = max(m.flushedThrough, min(end, current-minuteMs))
		}
	}
	sort.Slice(due, func(i, j int) bool { return due[i].End < due[j].End })
	// A minute older than the latest any span can count into is never
	// written again.
	for end := range m.earlyStamps {
		if end < current-MaxLate {
			delete(m.earlyStamps, end)
		}
	}
	return due
}

// unusedEarlyStamp returns stamp, or when an earlier early write of the
// minute ending at end used it, the nearest stamp inside the minute none
// used (earlier first), and records it.
func (m *Minutes) unusedEarlyStamp(end, stamp int64) int64 {
	used := m.earlyStamps[end]
	for d := int64(0); d < minuteMs; d++ {
		if c := stamp - d; c > end-minuteMs && !slices.Contains(used, c) {
			stamp = c
			break
		}
		if c := stamp + d; c < end && !slices.Contains(used, c) {
			stamp = c
			break
		}
	}
	if m.earlyStamps == nil {
		m.earlyStamps = map[int64][]int64{}
	}
	m.earlyStamps[end] = append(used, stamp)
	return stamp
}

// AssumeWritten takes every minute ending at or before throughMs as
// written already, by the process before a restart: a span for one counts
// as late. (Writing it again would put a second sample on the first's
// timestamp, which the store refuses.)
func (m *Minutes) AssumeWritten(throughMs int64) {
	m.flushedThrough = max(m.flushedThrough, throughMs/minuteMs*minuteMs)
}

// FlushedThrough is the end of the newest minute handed out for writing (or
// taken as written before a restart): no window is opened again for it or
// any earlier minute, so once written such a minute never changes.
func (m *Minutes) FlushedThrough() int64 { return m.flushedThrough }

// Len is the number of open windows.
func (m *Minutes) Len() int { return len(m.open) }

// Open calls fn for every open window, in no particular order. The windows
// may only be read, and only while the caller holds what guards m.
func (m *Minutes) Open(fn func(*Window)) {
	for _, w := range m.open {
		fn(w)
	}
}
