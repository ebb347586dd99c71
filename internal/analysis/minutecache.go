package analysis

import (
	"context"
	"fmt"
	"math"
	"slices"
	"sync"
	"time"
	"unsafe"

	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/prometheus/prometheus/promql/parser/posrange"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb/chunkenc"

	"github.com/skytrail/skytrail/internal/analysis/red"
)

// The figure cache keeps, for each finished minute, every per-minute
// series' figures as read back from the metric store, so that figures over
// an hour add up sixty small cached minutes instead of having PromQL sum an
// hour of samples of thousands of series on every request (the services
// list, the map and the Instances page ask for that on every first draw).
//
// A minute is cached only once it is final: handed out for writing (or
// older than any span may still count into), and not held in memory any
// more (not open, being written, or kept after a failed write). No window
// is opened again for such a minute (red.Minutes.For), so what the store
// holds for it never changes, and reading it once is reading it for good.
// The newer minutes (normally the running one and the one before, being
// written) are read on every request: the windows held in memory, copied
// first, and what the TSDB has of those minutes (an early-written part),
// a sample the TSDB has on the same series and stamp counting once, as in
// the merged view PromQL reads.
//
// With a remote metric store the cache is not used: other nodes write the
// same series (with their own node label) whenever their minutes are due,
// so no node can tell when a minute is final for all of them.

// cachedMinutes is how many finished minutes each family keeps: an hour,
// the range the UI's first pages ask for, and some slack for the minutes
// before it. Older minutes are read from the store on each request.
const cachedMinutes = 70

// minuteSums are one series' (or one group's) figures over one minute (or
// several), as the per-minute samples hold them.
type minuteSums struct {
	calls, errors, satisfied, tolerating float64
	// hasCalls tells a minute with a calls sample (of 0, even) from one
	// without: PromQL counts the minutes with a sample.
	hasCalls bool
	hist     denseHist
}

// denseHist is a native histogram of the analysis' schema with its
// positive buckets laid out densely from offset: adding one to another is
// adding arrays.
type denseHist struct {
	count, sum, zero float64
	offset           int32
	buckets          []float64
	present          bool
}

// addFloat adds a histogram read from the store; it must have the
// analysis' schema and zero threshold (anything else is an error, and the
// caller falls back to PromQL).
func (d *denseHist) addFloat(fh *histogram.FloatHistogram) error {
	if fh.Schema != red.Schema || fh.ZeroThreshold != red.ZeroThreshold || len(fh.NegativeBuckets) > 0 {
		return fmt.Errorf("a latency histogram of schema %d, zero threshold %g: not the analysis' own", fh.Schema, fh.ZeroThreshold)
	}
	d.present = true
	d.count += fh.Count
	d.sum += fh.Sum
	d.zero += fh.ZeroCount
	idx, b := int32(0), 0
	for _, sp := range fh.PositiveSpans {
		idx += sp.Offset
		for range sp.Length {
			d.addBucket(idx, fh.PositiveBuckets[b])
			idx++
			b++
		}
	}
	return nil
}

// add adds o's figures to s.
func (s *minuteSums) add(o *minuteSums) {
	s.calls += o.calls
	s.errors += o.errors
	s.satisfied += o.satisfied
	s.tolerating += o.tolerating
	s.hasCalls = s.hasCalls || o.hasCalls
	s.hist.add(&o.hist)
}

// sumsOf is a minute's figures held in memory, as the samples they are
// written as would read.
func sumsOf(s *red.Stats) minuteSums {
	out := minuteSums{calls: float64(s.Calls), errors: float64(s.Errors), satisfied: float64(s.Satisfied),
		tolerating: float64(s.Tolerating), hasCalls: true}
	h := &s.Latency
	out.hist = denseHist{count: float64(h.Count), sum: h.Sum, zero: float64(h.Zero), offset: h.Offset, present: true}
	if len(h.Counts) > 0 {
		out.hist.buckets = make([]float64, len(h.Counts))
		for i, c := range h.Counts {
			out.hist.buckets[i] = float64(c)
		}
	}
	return out
}

// kvLabels are the labels of a series with label pairs kv, the name left
// out, sorted as the store's are.
func kvLabels(kv []string) labels.Labels {
	b := labels.NewScratchBuilder(len(kv) / 2)
	for i := 0; i+1 < len(kv); i += 2 {
		b.Add(kv[i], kv[i+1])
	}
	b.Sort()
	return b.Labels()
}

func (d *denseHist) add(o *denseHist) {
	if !o.present {
		return
	}
	d.present = true
	d.count += o.count
	d.sum += o.sum
	d.zero += o.zero
	for i, v := range o.buckets {
		if v != 0 {
			d.addBucket(o.offset+int32(i), v)
		}
	}
}

func (d *denseHist) addBucket(idx int32, v float64) {
	d.buckets, d.offset = red.GrowBuckets(d.buckets, d.offset, idx)
	d.buckets[idx-d.offset] += v
}

// float is d as the gauge histogram PromQL's sum_over_time would give.
func (d *denseHist) float() *histogram.FloatHistogram {
	fh := &histogram.FloatHistogram{
		CounterResetHint: histogram.GaugeType,
		Schema:           red.Schema,
		ZeroThreshold:    red.ZeroThreshold,
		ZeroCount:        d.zero,
		Count:            d.count,
		Sum:              d.sum,
	}
	if len(d.buckets) > 0 {
		fh.PositiveSpans = []histogram.Span{{Offset: d.offset, Length: uint32(len(d.buckets))}}
		fh.PositiveBuckets = d.buckets
	}
	return fh.Compact(0)
}

// seriesMinute is one series' figures of one minute; id names the series
// in the cache's table.
type seriesMinute struct {
	id   int32
	sums minuteSums
}

type familyMinute struct {
	prefix string
	end    int64
}

// figureCache holds the finished minutes' figures of every family, and the
// label sets of their series (each held once, counted by the minutes
// holding it, and let go with the last).
type figureCache struct {
	mu      sync.Mutex
	minutes map[familyMinute][]seriesMinute
	newest  map[string]int64 // newest minute cached, by family
	ids     map[string]int32
	series  []cachedSeries
	free    []int32
	bytes   int // of the cached rows (rowsBytes)
}

type cachedSeries struct {
	lbls labels.Labels // without the metric name
	refs int
}

func newFigureCache() *figureCache {
	return &figureCache{minutes: map[familyMinute][]seriesMinute{}, newest: map[string]int64{}, ids: map[string]int32{}}
}

// intern returns the id of the series labelled l, counting one more holder.
func (c *figureCache) intern(l labels.Labels) int32 {
	k := string(l.Bytes(nil))
	if id, ok := c.ids[k]; ok {
		c.series[id].refs++
		return id
	}
	var id int32
	if n := len(c.free); n > 0 {
		id, c.free = c.free[n-1], c.free[:n-1]
		c.series[id] = cachedSeries{lbls: l, refs: 1}
	} else {
		id = int32(len(c.series))
		c.series = append(c.series, cachedSeries{lbls: l, refs: 1})
	}
	c.ids[k] = id
	return id
}

func (c *figureCache) release(rows []seriesMinute) {
	for _, r := range rows {
		s := &c.series[r.id]
		if s.refs--; s.refs == 0 {
			delete(c.ids, string(s.lbls.Bytes(nil)))
			s.lbls = labels.EmptyLabels()
			c.free = append(c.free, r.id)
		}
	}
}

// put caches a finished minute of a family, and lets go of the family's
// minutes older than cachedMinutes before the newest, and of the oldest
// minutes of any family while the cache would outgrow maxCacheBytes. It
// returns the minute's rows and whether the cache keeps them (a minute too
// old, or too large, is not kept: the caller releases it when done). The
// caller holds mu.
func (c *figureCache) put(prefix string, end int64, raw map[string]*rawSeries) (_ []seriesMinute, kept bool) {
	if rows, ok := c.minutes[familyMinute{prefix, end}]; ok {
		return rows, true // cached meanwhile by another request
	}
	rows := c.rows(raw)
	newest := max(c.newest[prefix], end)
	c.newest[prefix] = newest
	cutoff := newest - cachedMinutes*minuteMs
	for k, old := range c.minutes {
		if k.prefix == prefix && k.end <= cutoff {
			c.drop(k, old)
		}
	}
	size := rowsBytes(rows)
	for c.bytes+size > maxCacheBytes && len(c.minutes) > 0 {
		var oldest familyMinute
		for k := range c.minutes {
			if oldest.prefix == "" || k.end < oldest.end {
				oldest = k
			}
		}
		if oldest.end >= end {
			break // the minute asked for is the oldest: keep the newer
		}
		c.drop(oldest, c.minutes[oldest])
	}
	if end <= cutoff || c.bytes+size > maxCacheBytes {
		return rows, false
	}
	c.minutes[familyMinute{prefix, end}] = rows
	c.bytes += size
	return rows, true
}

func (c *figureCache) drop(k familyMinute, rows []seriesMinute) {
	c.release(rows)
	c.bytes -= rowsBytes(rows)
	delete(c.minutes, k)
}

// maxCacheBytes bounds what the cache holds, the label sets (shared with
// the TSDB's head) left out. A series-minute takes about 520 bytes (the
// struct and the minute's histogram buckets laid out densely), so 64 MiB
// holds some 129,000: 70 minutes of about 1,800 series. 500 services of
// loadgen traffic have some 1,250 (services, instances and both sides of
// the edges); BenchmarkFirstDrawAPIs logs the figure.
const maxCacheBytes = 64 << 20

// rowsBytes is what a cached minute's rows take.
func rowsBytes(rows []seriesMinute) int {
	n := cap(rows) * int(unsafe.Sizeof(seriesMinute{}))
	for i := range rows {
		n += 8 * cap(rows[i].sums.hist.buckets)
	}
	return n
}

// stats are the cache's size: bytes and series-minutes held.
func (c *figureCache) stats() (bytes, seriesMinutes int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, rows := range c.minutes {
		seriesMinutes += len(rows)
	}
	return c.bytes, seriesMinutes
}

func (c *figureCache) rows(raw map[string]*rawSeries) []seriesMinute {
	rows := make([]seriesMinute, 0, len(raw))
	for _, s := range raw {
		rows = append(rows, seriesMinute{id: c.intern(s.lbls), sums: s.sums})
	}
	return rows
}

// selectorParser parses the figures' selectors (sel) into matchers.
var selectorParser = parser.NewParser(parser.Options{})

const minuteMs = int64(time.Minute / time.Millisecond)

// rawSeries is one series' figures of one minute as read from the store.
type rawSeries struct {
	lbls labels.Labels
	sums minuteSums
	// stamps are the samples' timestamps: the live windows' samples on
	// them were written already (the store keeps the first of a stamp).
	stamps []int64
}

// readMinutes reads the per-minute samples of family f stamped in the
// minutes ending in (fromMs, toMs] that want accepts, by minute end and
// series (keyed by their labels' bytes, the name left out). A minute
// written early has its samples inside it, not at its end: they add up
// into it.
func readMinutes(ctx context.Context, from storage.Queryable, f *red.Family, fromMs, toMs int64, want func(end int64) bool) (map[int64]map[string]*rawSeries, error) {
	q, err := from.Querier(fromMs+1, toMs)
	if err != nil {
		return nil, fmt.Errorf("reading the figures of %s: %w", f.Prefix, err)
	}
	defer q.Close()
	out := map[int64]map[string]*rawSeries{}
	hints := &storage.SelectHints{Start: fromMs + 1, End: toMs}
	var fh *histogram.FloatHistogram
	for _, d := range f.Minute {
		ss := q.Select(ctx, false, hints, labels.MustNewMatcher(labels.MatchEqual, labels.MetricName, d.Name))
		for ss.Next() {
			s := ss.At()
			lbls := s.Labels().DropMetricName()
			k := string(lbls.Bytes(nil))
			it := s.Iterator(nil)
			for vt := it.Next(); vt != chunkenc.ValNone; vt = it.Next() {
				t := it.AtT()
				end := (t + minuteMs - 1) / minuteMs * minuteMs
				if t <= fromMs || t > toMs || !want(end) {
					continue
				}
				m := out[end]
				if m == nil {
					m = map[string]*rawSeries{}
					out[end] = m
				}
				r := m[k]
				if r == nil {
					r = &rawSeries{lbls: lbls}
					m[k] = r
				}
				switch vt {
				case chunkenc.ValFloat:
					_, v := it.At()
					switch d.Field {
					case red.FieldCalls:
						r.sums.calls += v
						r.sums.hasCalls = true
						r.stamps = append(r.stamps, t)
					case red.FieldErrors:
						r.sums.errors += v
					case red.FieldSatisfied:
						r.sums.satisfied += v
					case red.FieldTolerating:
						r.sums.tolerating += v
					}
				case chunkenc.ValHistogram:
					_, h := it.AtHistogram(nil)
					if err := r.sums.hist.addFloat(h.ToFloat(nil)); err != nil {
						return nil, fmt.Errorf("reading %s: %w", d.Name, err)
					}
				case chunkenc.ValFloatHistogram:
					_, fh = it.AtFloatHistogram(fh)
					if err := r.sums.hist.addFloat(fh); err != nil {
						return nil, fmt.Errorf("reading %s: %w", d.Name, err)
					}
				}
			}
			if err := it.Err(); err != nil {
				return nil, fmt.Errorf("reading %s: %w", d.Name, err)
			}
		}
		if err := ss.Err(); err != nil {
			return nil, fmt.Errorf("reading %s: %w", d.Name, err)
		}
	}
	return out, nil
}

// familyOf is the family with prefix. The endpoint family is not cached:
// only a service's own page asks for its endpoints, which PromQL reads
// from that service's series alone, while a cached minute would hold every
// service's (up to MaxEndpointsPerService each).
func familyOf(prefix string) *red.Family {
	for _, f := range red.Families {
		if f.Prefix == prefix {
			return f
		}
	}
	return nil
}

// cachedFigures is figures (same arguments, same answer) from the figure
// cache; ok is false where the cache does not apply (a remote metric
// store, an unknown family), and the caller asks PromQL.
func (a *Analyser) cachedFigures(ctx context.Context, prefix string, by []string, sel string, apdex bool, start, end time.Time) (_ map[string]*Figures, ok bool, _ error) {
	f := familyOf(prefix)
	if a.cache == nil || a.store.Remote() || f == nil || f == red.EndpointFamily {
		return nil, false, nil
	}
	var ms []*labels.Matcher
	if sel != "" {
		var err error
		if ms, err = selectorParser.ParseMetricSelector("{" + sel + "}"); err != nil {
			return nil, false, fmt.Errorf("reading the figures' selector %q: %w", sel, err)
		}
	}
	from, to := minutesOf(start, end)
	fromMs, toMs := from.UnixMilli(), to.UnixMilli()

	// Which minutes are final (see the figureCache's comment), and a copy
	// of the others' figures held in memory, taken before the store is
	// read: a minute written meanwhile is then in both, and counted once,
	// rather than in neither.
	type liveRow struct {
		end, stamp int64
		kv         []string
		sums       minuteSums
	}
	var live []liveRow
	a.mu.Lock()
	now := a.now()
	nowMs := now.UnixMilli()
	current := (nowMs/minuteMs + 1) * minuteMs
	finalThrough := max(a.minutes.FlushedThrough(), current-red.MaxLate-minuteMs)
	var windows []*red.Window
	a.minutes.Open(func(w *red.Window) { windows = append(windows, w) })
	windows = append(append(windows, a.writing...), a.unwritten...)
	held := make(map[int64]bool, len(windows))
	for _, w := range windows {
		held[w.End] = true
		if w.End <= fromMs || w.End > toMs {
			continue
		}
		w.EachOf(f, func(_ *red.Family, kv []string, s *red.Stats) {
			if kvMatch(kv, ms) {
				live = append(live, liveRow{end: w.End, stamp: w.Stamp(), kv: append([]string(nil), kv...), sums: sumsOf(s)})
			}
		})
	}
	a.mu.Unlock()
	final := func(end int64) bool { return end <= finalThrough && !held[end] }

	c := a.cache
	var missing, recent []int64
	c.mu.Lock()
	for e := fromMs + minuteMs; e <= toMs; e += minuteMs {
		switch {
		case !final(e):
			recent = append(recent, e)
		case c.minutes[familyMinute{prefix, e}] == nil:
			missing = append(missing, e)
		}
	}
	c.mu.Unlock()

	written := a.store.Written()
	read := func(ends []int64) (map[int64]map[string]*rawSeries, error) {
		if len(ends) == 0 {
			return nil, nil
		}
		set := make(map[int64]bool, len(ends))
		for _, e := range ends {
			set[e] = true
		}
		return readMinutes(ctx, written, f, ends[0]-minuteMs, ends[len(ends)-1], func(e int64) bool { return set[e] })
	}
	missed, err := read(missing)
	if err != nil {
		return nil, false, err
	}
	fresh, err := read(recent)
	if err != nil {
		return nil, false, err
	}
	// The memory's samples join the store's of the recent minutes, but
	// where the store has the series' sample of that stamp (the store keeps
	// the first written, as the merged view PromQL reads does).
	if fresh == nil && len(live) > 0 {
		fresh = map[int64]map[string]*rawSeries{}
	}
	for i := range live {
		l := &live[i]
		lbls := kvLabels(l.kv)
		k := string(lbls.Bytes(nil))
		m := fresh[l.end]
		if m == nil {
			m = map[string]*rawSeries{}
			fresh[l.end] = m
		}
		r := m[k]
		if r == nil {
			r = &rawSeries{lbls: lbls}
			m[k] = r
		} else if slices.Contains(r.stamps, l.stamp) {
			continue
		}
		r.sums.add(&l.sums)
		r.stamps = append(r.stamps, l.stamp)
	}

	c.mu.Lock()
	defer c.mu.Unlock()
	var uncached [][]seriesMinute // held for this request alone
	defer func() {
		for _, rows := range uncached {
			c.release(rows)
		}
	}()
	// The minutes the cache does not hold: the recent ones, and those too
	// old to keep.
	byMinute := make(map[int64][]seriesMinute, len(fresh))
	for _, e := range missing {
		if rows, kept := c.put(prefix, e, missed[e]); !kept {
			uncached = append(uncached, rows)
			byMinute[e] = rows
		}
	}
	for e, raw := range fresh {
		rows := c.rows(raw)
		uncached = append(uncached, rows)
		byMinute[e] = rows
	}

	type group struct {
		sums          minuteSums
		minutes       float64 // with a calls sample
		lastMinute    int64
		running       float64 // the running minute's calls
		runningMinute bool
	}
	var groups []*group
	var keys []string
	index := map[string]int32{}
	groupOf := make([]int32, len(c.series))
	for i := range groupOf {
		groupOf[i] = -2 // not looked at yet
	}
	runEnd := current
	for e := fromMs + minuteMs; e <= toMs; e += minuteMs {
		rows, ok := byMinute[e]
		if !ok {
			rows = c.minutes[familyMinute{prefix, e}]
		}
		for i := range rows {
			r := &rows[i]
			gi := groupOf[r.id]
			if gi == -2 {
				gi = -1
				l := c.series[r.id].lbls
				if matchAll(l, ms) {
					k := key(l, by)
					j, ok := index[k]
					if !ok {
						j = int32(len(groups))
						index[k] = j
						groups = append(groups, &group{})
						keys = append(keys, k)
					}
					gi = j
				}
				groupOf[r.id] = gi
			}
			if gi < 0 {
				continue
			}
			g := groups[gi]
			g.sums.calls += r.sums.calls
			g.sums.errors += r.sums.errors
			g.sums.satisfied += r.sums.satisfied
			g.sums.tolerating += r.sums.tolerating
			g.sums.hist.add(&r.sums.hist)
			if r.sums.hasCalls {
				if g.lastMinute != e {
					g.minutes++
					g.lastMinute = e
				}
				if e == runEnd {
					g.running += r.sums.calls
					g.runningMinute = true
				}
			}
		}
	}

	elapsed := max(now.Sub(now.Truncate(time.Minute)), minRunningPart).Minutes()
	out := make(map[string]*Figures, len(groups))
	for i, g := range groups {
		h := &g.sums.hist
		if !h.present || h.count == 0 {
			continue
		}
		fig := &Figures{Calls: uint64(h.count), MeanMs: h.sum / h.count * 1000}
		fh := h.float()
		for _, p := range []struct {
			q   float64
			dst *float64
		}{{0.5, &fig.P50Ms}, {0.75, &fig.P75Ms}, {0.9, &fig.P90Ms}, {0.95, &fig.P95Ms}, {0.99, &fig.P99Ms}} {
			v, _ := promql.HistogramQuantile(p.q, fh, "", posrange.PositionRange{})
			if !math.IsNaN(v) {
				*p.dst = v * 1000
			}
		}
		fig.Errors = uint64(g.sums.errors)
		fig.SuccessRate = 1 - float64(fig.Errors)/float64(fig.Calls)
		if apdex {
			v := (g.sums.satisfied + g.sums.tolerating/2) / float64(fig.Calls)
			fig.Apdex = &v
		}
		complete, calls := g.minutes, float64(fig.Calls)
		if g.runningMinute {
			complete, calls = complete-1, calls-g.running
		}
		if complete >= 1 {
			fig.Minutes, fig.CallsPerMinute = complete, calls/complete
		} else {
			fig.Minutes, fig.CallsPerMinute = elapsed, g.running/elapsed
		}
		out[keys[i]] = fig
	}
	return out, true, nil
}

// matchAll tells whether l matches every matcher of ms.
func matchAll(l labels.Labels, ms []*labels.Matcher) bool {
	for _, m := range ms {
		if !m.Matches(l.Get(m.Name)) {
			return false
		}
	}
	return true
}
