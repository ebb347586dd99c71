package analysis

import (
	"cmp"
	"context"
	"slices"
	"strings"

	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
	"github.com/prometheus/prometheus/tsdb/chunks"
	"github.com/prometheus/prometheus/util/annotations"

	"github.com/skytrail/skytrail/internal/analysis/red"
)

// live is what the analysis holds in memory and the metric store does not
// have yet, as a storage.Queryable the store merges with its TSDB, so that
// figures show as soon as spans are counted rather than when a minute is
// written (45 s after it ends) or the totals are (every CounterInterval):
//
//   - each minute not yet written (open, being written, or kept after a
//     failed write) as the per-minute samples it will be written as,
//     stamped with the end of the minute;
//   - each running total not yet written as its zero, at its start, and
//     every total as its value now, stamped with the query's end (or now,
//     if earlier) when that is after the totals were last written. A query
//     ending between the last write and now reads the totals as they are
//     now: a few seconds' calls early, never a count too few.
//
// Nothing is written for it: the store gets the same samples, whole, when
// they are due.
type live struct{ a *Analyser }

func (l live) Querier(mint, maxt int64) (storage.Querier, error) {
	return &liveQuerier{a: l.a, mint: mint, maxt: maxt}, nil
}

type liveQuerier struct {
	a          *Analyser
	mint, maxt int64
}

func (q *liveQuerier) Close() error { return nil }

// minuteRow is one series' figures of one minute, copied under the lock.
type minuteRow struct {
	kv    [10]string
	n     int
	at    int64 // the window's stamp
	stats red.Stats
}

// totalRow is one series' running total, copied under the lock.
type totalRow struct {
	kv      [10]string
	n       int
	stats   red.Stats
	startMs int64
	// firstWrittenMs stamps the store's first sample of the series (0:
	// none yet).
	firstWrittenMs int64
}

// rows is what Select copies of the analysis' state.
type rows struct {
	minutes    map[*red.Family][]minuteRow
	totals     map[*red.Family][]totalRow
	nowMs      int64
	countersMs int64
}

func (q *liveQuerier) Select(_ context.Context, _ bool, hints *storage.SelectHints, ms ...*labels.Matcher) storage.SeriesSet {
	mint, maxt := q.mint, q.maxt
	if hints != nil {
		mint, maxt = hints.Start, hints.End
	}
	var defs []*red.Def
	red.Defs(func(d *red.Def) {
		for _, m := range ms {
			if m.Name == labels.MetricName && !m.Matches(d.Name) {
				return
			}
		}
		defs = append(defs, d)
	})
	if len(defs) == 0 {
		return storage.EmptySeriesSet()
	}
	r := q.a.copyRows(defs, mint, maxt, ms)
	var out []storage.Series
	for _, d := range defs {
		if d.Counter {
			out = append(out, totalSeries(d, r, mint, maxt, ms)...)
		} else {
			out = append(out, minuteSeries(d, r.minutes[d.Family], ms)...)
		}
	}
	// Sorted always: the store merges this with the TSDB's sorted series.
	slices.SortFunc(out, func(a, b storage.Series) int { return labels.Compare(a.Labels(), b.Labels()) })
	return &seriesList{series: out}
}

// copyRows copies, under the analysis' lock, the figures of the families
// defs belong to whose labels (but the name) match ms: per-minute figures
// of the unwritten minutes stamped in [mint, maxt] when a per-minute series
// is asked for, running totals when a counter is.
func (a *Analyser) copyRows(defs []*red.Def, mint, maxt int64, ms []*labels.Matcher) rows {
	type want struct{ minutes, totals, hist bool }
	wanted := map[*red.Family]*want{}
	for _, d := range defs {
		w := wanted[d.Family]
		if w == nil {
			w = &want{}
			wanted[d.Family] = w
		}
		if d.Counter {
			w.totals = true
		} else {
			w.minutes = true
		}
		w.hist = w.hist || d.Histogram()
	}
	r := rows{minutes: map[*red.Family][]minuteRow{}, totals: map[*red.Family][]totalRow{}}
	copyStats := func(s *red.Stats, hist bool) red.Stats {
		if hist {
			return s.Copy()
		}
		return red.Stats{Calls: s.Calls, Errors: s.Errors, Satisfied: s.Satisfied, Tolerating: s.Tolerating}
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	r.nowMs, r.countersMs = a.now().UnixMilli(), a.countersMs
	var windows []*red.Window
	a.minutes.Open(func(w *red.Window) { windows = append(windows, w) })
	windows = append(append(windows, a.writing...), a.unwritten...)
	for f, want := range wanted {
		if want.minutes {
			n := 0
			for _, w := range windows {
				n += w.LenOf(f)
			}
			rows := make([]minuteRow, 0, n)
			for _, w := range windows {
				at := w.Stamp()
				if at < mint || at > maxt {
					continue
				}
				w.EachOf(f, func(_ *red.Family, kv []string, s *red.Stats) {
					if kvMatch(kv, ms) {
						rows = append(rows, minuteRow{at: at, stats: copyStats(s, want.hist)})
						rows[len(rows)-1].n = copy(rows[len(rows)-1].kv[:], kv)
					}
				})
			}
			r.minutes[f] = rows
		}
		if want.totals {
			rows := make([]totalRow, 0, a.minutes.Totals.LenOf(f))
			a.minutes.Totals.EachOf(f, func(_ *red.Family, kv []string, t *red.Total) {
				if kvMatch(kv, ms) {
					rows = append(rows, totalRow{stats: copyStats(&t.Stats, want.hist), startMs: t.StartMs, firstWrittenMs: t.FirstWrittenMs})
					rows[len(rows)-1].n = copy(rows[len(rows)-1].kv[:], kv)
				}
			})
			r.totals[f] = rows
		}
	}
	return r
}

// kvMatch tells whether label pairs kv match the matchers of ms other than
// the name's, without building labels: what the lock is held for is kept
// to the series asked for (one service's instances, say).
func kvMatch(kv []string, ms []*labels.Matcher) bool {
	for _, m := range ms {
		if m.Name == labels.MetricName {
			continue
		}
		v := ""
		for i := 0; i+1 < len(kv); i += 2 {
			if kv[i] == m.Name {
				v = kv[i+1]
				break
			}
		}
		if !m.Matches(v) {
			return false
		}
	}
	return true
}

// labelsOf builds the labels of series d with label pairs kv, or returns
// false when they do not match ms.
func labelsOf(d *red.Def, kv []string, ms []*labels.Matcher) (labels.Labels, bool) {
	b := labels.NewScratchBuilder(len(kv)/2 + 1)
	b.Add(labels.MetricName, d.Name)
	for i := 0; i+1 < len(kv); i += 2 {
		b.Add(kv[i], kv[i+1])
	}
	b.Sort()
	l := b.Labels()
	for _, m := range ms {
		if !m.Matches(l.Get(m.Name)) {
			return labels.EmptyLabels(), false
		}
	}
	return l, true
}

// minuteSeries are the per-minute series d of the copied minutes.
func minuteSeries(d *red.Def, rows []minuteRow, ms []*labels.Matcher) []storage.Series {
	type series struct {
		lbls   labels.Labels
		points []chunks.Sample
	}
	byKey := map[string]*series{}
	skip := map[string]bool{}
	for i := range rows {
		row := &rows[i]
		kv := row.kv[:row.n]
		key := strings.Join(kv, "\xff")
		if skip[key] {
			continue
		}
		s := byKey[key]
		if s == nil {
			l, ok := labelsOf(d, kv, ms)
			if !ok {
				skip[key] = true
				continue
			}
			s = &series{lbls: l}
			byKey[key] = s
		}
		smp := sample{t: row.at}
		if d.Histogram() {
			smp.fh = row.stats.Latency.Float()
		} else {
			smp.f = d.Value(&row.stats)
		}
		s.points = append(s.points, smp)
	}
	out := make([]storage.Series, 0, len(byKey))
	for _, s := range byKey {
		slices.SortStableFunc(s.points, func(a, b chunks.Sample) int { return cmp.Compare(a.T(), b.T()) })
		// Two windows of a minute on one stamp (a write refused and a
		// retry) would both be written; the store keeps the first.
		s.points = slices.CompactFunc(s.points, func(a, b chunks.Sample) bool { return a.T() == b.T() })
		out = append(out, storage.NewListSeries(s.lbls, s.points))
	}
	return out
}

// totalSeries are the counter series d of the copied totals: the zero of
// those never written, and the value now of those changed since written.
func totalSeries(d *red.Def, r rows, mint, maxt int64, ms []*labels.Matcher) []storage.Series {
	at := min(r.nowMs, maxt)
	var out []storage.Series
	for i := range r.totals[d.Family] {
		row := &r.totals[d.Family][i]
		// A series first written after the query's end is, to the query,
		// not written yet: the store's first sample lies past its end. (A
		// rule's evaluation is stamped before it runs; one that ran just
		// after the first write would otherwise see no sample at all, and
		// an alert on a new series would resolve for one evaluation.)
		written := row.firstWrittenMs != 0 && row.firstWrittenMs <= at
		var points []chunks.Sample
		if !written && row.startMs >= mint && row.startMs <= maxt && row.startMs < at {
			if d.Histogram() {
				points = append(points, sample{t: row.startMs, h: &histogram.Histogram{
					CounterResetHint: histogram.CounterReset, Schema: red.Schema, ZeroThreshold: red.ZeroThreshold}})
			} else {
				points = append(points, sample{t: row.startMs})
			}
		}
		if at >= mint && at > row.startMs && (!written || at > r.countersMs) {
			if d.Histogram() {
				points = append(points, sample{t: at, h: row.stats.Latency.Counter()})
			} else {
				points = append(points, sample{t: at, f: d.Value(&row.stats)})
			}
		}
		if len(points) == 0 {
			continue
		}
		l, ok := labelsOf(d, row.kv[:row.n], ms)
		if !ok {
			continue
		}
		out = append(out, storage.NewListSeries(l, points))
	}
	return out
}

func (q *liveQuerier) LabelValues(_ context.Context, name string, hints *storage.LabelHints, ms ...*labels.Matcher) ([]string, annotations.Annotations, error) {
	seen := map[string]struct{}{}
	q.a.eachLabels(ms, func(l labels.Labels) {
		if v := l.Get(name); v != "" {
			seen[v] = struct{}{}
		}
	})
	return sortedKeys(seen, hints), nil, nil
}

func (q *liveQuerier) LabelNames(_ context.Context, hints *storage.LabelHints, ms ...*labels.Matcher) ([]string, annotations.Annotations, error) {
	seen := map[string]struct{}{}
	q.a.eachLabels(ms, func(l labels.Labels) {
		l.Range(func(lbl labels.Label) { seen[lbl.Name] = struct{}{} })
	})
	return sortedKeys(seen, hints), nil, nil
}

// eachLabels calls fn with the labels of every series in memory matching
// ms (more than once for some), for label look-ups, which Grafana's query
// editor makes as one types: the label pairs alone are copied under the
// lock, with no figures.
func (a *Analyser) eachLabels(ms []*labels.Matcher, fn func(labels.Labels)) {
	type key struct {
		kv [10]string
		n  int
	}
	keys := map[*red.Family]map[key]struct{}{}
	add := func(f *red.Family, kv []string) {
		if !kvMatch(kv, ms) {
			return
		}
		var k key
		k.n = copy(k.kv[:], kv)
		keys[f][k] = struct{}{}
	}
	a.mu.Lock()
	for _, f := range red.Families {
		keys[f] = map[key]struct{}{}
		a.minutes.Open(func(w *red.Window) {
			w.EachOf(f, func(f *red.Family, kv []string, _ *red.Stats) { add(f, kv) })
		})
		for _, w := range append(append([]*red.Window(nil), a.writing...), a.unwritten...) {
			w.EachOf(f, func(f *red.Family, kv []string, _ *red.Stats) { add(f, kv) })
		}
		a.minutes.Totals.EachOf(f, func(f *red.Family, kv []string, _ *red.Total) { add(f, kv) })
	}
	a.mu.Unlock()
	red.Defs(func(d *red.Def) {
		for k := range keys[d.Family] {
			if l, ok := labelsOf(d, k.kv[:k.n], ms); ok {
				fn(l)
			}
		}
	})
}

func sortedKeys(m map[string]struct{}, hints *storage.LabelHints) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	if hints != nil && hints.Limit > 0 && len(out) > hints.Limit {
		out = out[:hints.Limit]
	}
	return out
}

// sample is one sample of a live series.
type sample struct {
	t  int64
	f  float64
	h  *histogram.Histogram
	fh *histogram.FloatHistogram
}

func (s sample) T() int64                { return s.t }
func (s sample) ST() int64               { return 0 }
func (s sample) F() float64              { return s.f }
func (s sample) H() *histogram.Histogram { return s.h }
func (s sample) FH() *histogram.FloatHistogram {
	// The engine reads every histogram as a float one.
	if s.fh == nil && s.h != nil {
		return s.h.ToFloat(nil)
	}
	return s.fh
}
func (s sample) Copy() chunks.Sample {
	c := s
	if s.h != nil {
		c.h = s.h.Copy()
	}
	if s.fh != nil {
		c.fh = s.fh.Copy()
	}
	return c
}

func (s sample) Type() chunkenc.ValueType {
	switch {
	case s.h != nil:
		return chunkenc.ValHistogram
	case s.fh != nil:
		return chunkenc.ValFloatHistogram
	}
	return chunkenc.ValFloat
}

// seriesList is a storage.SeriesSet over series in memory.
type seriesList struct {
	series []storage.Series
	i      int
}

func (l *seriesList) Next() bool {
	l.i++
	return l.i <= len(l.series)
}
func (l *seriesList) At() storage.Series                { return l.series[l.i-1] }
func (l *seriesList) Err() error                        { return nil }
func (l *seriesList) Warnings() annotations.Annotations { return nil }
