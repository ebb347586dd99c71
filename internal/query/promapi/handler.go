// Package promapi serves the Prometheus HTTP query API over the metric
// store (query, query_range, series, labels, label values), in
// Prometheus' JSON shapes, so Grafana's Prometheus data source works
// against SkyTrail unchanged. Mount it under /prometheus with StripPrefix.
package promapi

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"slices"
	"strconv"
	"time"

	jsoniter "github.com/json-iterator/go"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/util/annotations"
	"github.com/prometheus/prometheus/util/jsonutil"

	"github.com/skytrail/skytrail/internal/pipeline"
	"github.com/skytrail/skytrail/internal/storage/metricstore"
)

// maxPoints caps the points a range query may return per series, as
// Prometheus does, so a tiny step over a long range fails fast.
const maxPoints = 11000

// maxSubqueryPoints caps the steps a subquery evaluates. The engine
// allocates 16 bytes of bookkeeping a step before evaluating anything
// (x[100y:1ms] asked for 50 TB and killed the process) and evaluates every
// step even where no series has data (vector(1)[1d:10ms], 8.6M steps, took
// 12 s of CPU). 100,000 is VictoriaMetrics' default
// (-search.maxPointsSubqueryPerTimeseries); [30d:1m] is 43,200.
const maxSubqueryPoints = 100_000

// minTime and maxTime bound the times a request may give, as in Prometheus'
// API: the widest range whose instants are int64 milliseconds. Beyond it the
// engine's timestamps overflowed (labels between -1e30 and 1e30 came back
// empty). Prometheus' clients send the bounds themselves in RFC 3339, which
// time.Parse cannot read (nine-digit years), hence the formatted forms.
var (
	minTime          = time.Unix(math.MinInt64/1000+62135596801, 0).UTC()
	maxTime          = time.Unix(math.MaxInt64/1000-62135596801, 999999999).UTC()
	minTimeFormatted = minTime.Format(time.RFC3339Nano)
	maxTimeFormatted = maxTime.Format(time.RFC3339Nano)
)

// Version is what /api/v1/status/buildinfo reports; Grafana reads it to
// pick the PromQL features it offers.
const Version = "3.0.0"

type handler struct {
	store  *metricstore.Store
	parser parser.Parser
}

// NewHandler returns the API: /api/v1/query, /api/v1/query_range,
// /api/v1/series, /api/v1/labels, /api/v1/label/{name}/values, plus the
// small status and metadata endpoints Grafana probes.
func NewHandler(store *metricstore.Store) http.Handler {
	h := &handler{store: store, parser: parser.NewParser(parser.Options{})}
	mux := http.NewServeMux()
	for _, route := range []struct {
		path string
		fn   func(*http.Request) (any, error)
	}{
		{"/api/v1/query", h.query},
		{"/api/v1/query_range", h.queryRange},
		{"/api/v1/series", h.series},
		{"/api/v1/labels", h.labelNames},
		{"/api/v1/label/{name}/values", h.labelValues},
		{"/api/v1/status/buildinfo", h.buildInfo},
		{"/api/v1/metadata", func(*http.Request) (any, error) { return map[string]any{}, nil }},
		{"/api/v1/query_exemplars", func(*http.Request) (any, error) { return []any{}, nil }},
	} {
		fn := route.fn
		serve := func(w http.ResponseWriter, r *http.Request) { respond(w, r, fn) }
		mux.HandleFunc("GET "+route.path, serve)
		mux.HandleFunc("POST "+route.path, serve)
	}
	return mux
}

// apiError carries the Prometheus error type and HTTP status of a failure.
type apiError struct {
	typ    string
	status int
	err    error
}

func (e *apiError) Error() string { return e.err.Error() }

func badData(format string, args ...any) error {
	return &apiError{typ: "bad_data", status: http.StatusBadRequest, err: fmt.Errorf(format, args...)}
}

func respond(w http.ResponseWriter, r *http.Request, fn func(*http.Request) (any, error)) {
	if err := r.ParseForm(); err != nil {
		writeError(w, badData("reading the request form: %v", err))
		return
	}
	data, err := fn(r)
	if err != nil {
		writeError(w, err)
		return
	}
	stream := jsoniter.ConfigCompatibleWithStandardLibrary.BorrowStream(nil)
	defer jsoniter.ConfigCompatibleWithStandardLibrary.ReturnStream(stream)
	stream.WriteObjectStart()
	stream.WriteObjectField("status")
	stream.WriteString("success")
	stream.WriteMore()
	stream.WriteObjectField("data")
	writeValue(stream, data)
	if res, ok := data.(queryData); ok {
		// As Prometheus does: what the engine noticed about the query, such
		// as rate() over a series that is not a counter (a per-minute
		// skytrail_*:increase1m series), which Grafana shows beside the panel.
		if len(res.warnings) > 0 {
			stream.WriteMore()
			stream.WriteObjectField("warnings")
			stream.WriteVal(res.warnings)
		}
		if len(res.infos) > 0 {
			stream.WriteMore()
			stream.WriteObjectField("infos")
			stream.WriteVal(res.infos)
		}
	}
	stream.WriteObjectEnd()
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(stream.Buffer())
}

func writeError(w http.ResponseWriter, err error) {
	var ae *apiError
	if !errors.As(err, &ae) {
		ae = &apiError{typ: "execution", status: http.StatusUnprocessableEntity, err: err}
	}
	var (
		pe promql.ErrQueryTimeout
		pc promql.ErrQueryCanceled
	)
	switch {
	case errors.As(err, &pe):
		ae.typ, ae.status = "timeout", http.StatusServiceUnavailable
	case errors.As(err, &pc), errors.Is(err, context.Canceled):
		ae.typ, ae.status = "canceled", http.StatusServiceUnavailable
	case errors.Is(err, metricstore.ErrUnavailable):
		// A remote metric store that did not answer: worth retrying.
		ae.typ, ae.status = "unavailable", http.StatusServiceUnavailable
		w.Header().Set("Retry-After", strconv.Itoa(int(pipeline.RetryAfter.Seconds())))
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(ae.status)
	b, _ := jsoniter.Marshal(map[string]string{"status": "error", "errorType": ae.typ, "error": ae.Error()})
	_, _ = w.Write(b)
}

// queryData is a query's result with its warnings and informational notes.
type queryData struct {
	value    parser.Value
	warnings []string
	infos    []string
}

func (h *handler) query(r *http.Request) (any, error) {
	ts, err := parseTimeParam(r, "time", time.Now())
	if err != nil {
		return nil, err
	}
	ctx, cancel, err := withTimeout(r)
	if err != nil {
		return nil, err
	}
	defer cancel()
	q, err := h.store.Engine().NewInstantQuery(ctx, h.store.Queryable(), nil, r.FormValue("query"), ts)
	if err != nil {
		return nil, badData("invalid parameter \"query\": %v", err)
	}
	if err := checkSubqueries(q, ts, ts); err != nil {
		q.Close()
		return nil, err
	}
	return exec(ctx, q)
}

func (h *handler) queryRange(r *http.Request) (any, error) {
	start, err := parseTime(r.FormValue("start"))
	if err != nil {
		return nil, badData("invalid parameter \"start\": %v", err)
	}
	end, err := parseTime(r.FormValue("end"))
	if err != nil {
		return nil, badData("invalid parameter \"end\": %v", err)
	}
	if end.Before(start) {
		return nil, badData("invalid parameter \"end\": end timestamp must not be before start time")
	}
	step, err := parseDuration(r.FormValue("step"))
	if err != nil {
		return nil, badData("invalid parameter \"step\": %v", err)
	}
	if step <= 0 {
		return nil, badData("zero or negative query resolution step widths are not accepted. Try a positive integer")
	}
	if step < time.Millisecond {
		// The engine's timestamps are milliseconds: a finer step is a zero
		// one to it (it divided by it and answered 422).
		return nil, badData("invalid parameter \"step\": %v is finer than the 1ms resolution of timestamps", step)
	}
	if seconds(start, end)/step.Seconds() > maxPoints {
		return nil, badData("exceeded maximum resolution of %d points per timeseries. Try decreasing the query resolution (?step=XX)", maxPoints)
	}
	ctx, cancel, err := withTimeout(r)
	if err != nil {
		return nil, err
	}
	defer cancel()
	q, err := h.store.Engine().NewRangeQuery(ctx, h.store.Queryable(), nil, r.FormValue("query"), start, end, step)
	if err != nil {
		return nil, badData("invalid parameter \"query\": %v", err)
	}
	if err := checkSubqueries(q, start, end); err != nil {
		q.Close()
		return nil, err
	}
	return exec(ctx, q)
}

// seconds is end-start in seconds, exact enough over any range parseTime
// accepts (end.Sub saturates at 292 years and would undercount).
func seconds(start, end time.Time) float64 {
	return float64(end.Unix()-start.Unix()) + float64(end.Nanosecond()-start.Nanosecond())/1e9
}

// checkSubqueries refuses a query with a subquery that would evaluate more
// than maxSubqueryPoints steps, or steps finer than a millisecond, when
// evaluated over [start, end]. A subquery is evaluated once over the whole
// evaluation range widened by its own range and those of the subqueries
// around it; an @ modifier narrows that, which the count ignores.
func checkSubqueries(q promql.Query, start, end time.Time) error {
	stmt, ok := q.Statement().(*parser.EvalStmt)
	if !ok {
		return nil
	}
	var err error
	parser.Inspect(stmt.Expr, func(node parser.Node, path []parser.Node) error {
		sq, ok := node.(*parser.SubqueryExpr)
		if !ok || err != nil {
			return nil
		}
		span := seconds(start, end) + sq.Range.Seconds()
		for _, n := range path {
			if outer, ok := n.(*parser.SubqueryExpr); ok {
				span += outer.Range.Seconds()
			}
		}
		step := sq.Step
		if step == 0 {
			step = metricstore.SubqueryStep
		}
		switch points := span / step.Seconds(); {
		case step < time.Millisecond:
			err = badData("invalid parameter \"query\": subquery %s: step %v is finer than the 1ms resolution of timestamps", sq, step)
		case points > maxSubqueryPoints:
			err = badData("invalid parameter \"query\": subquery %s would evaluate %.0f steps, more than %d; use a longer step or a shorter range", sq, points, maxSubqueryPoints)
		}
		return nil
	})
	return err
}

func exec(ctx context.Context, q promql.Query) (any, error) {
	defer q.Close()
	res := q.Exec(ctx)
	if res.Err != nil {
		return nil, res.Err
	}
	warnings, infos := res.Warnings.AsStrings(q.String(), 10, 10)
	return queryData{value: res.Value, warnings: warnings, infos: infos}, nil
}

func withTimeout(r *http.Request) (context.Context, context.CancelFunc, error) {
	ctx := r.Context()
	if s := r.FormValue("timeout"); s != "" {
		d, err := parseDuration(s)
		if err != nil {
			return nil, nil, badData("invalid parameter \"timeout\": %v", err)
		}
		c, cancel := context.WithTimeout(ctx, d)
		return c, cancel, nil
	}
	return ctx, func() {}, nil
}

// selection reads start, end and match[] for the series and label calls.
func (h *handler) selection(r *http.Request) (storage.Querier, *storage.SelectHints, [][]*labels.Matcher, error) {
	start, err := parseTimeParam(r, "start", time.Unix(0, 0))
	if err != nil {
		return nil, nil, nil, err
	}
	end, err := parseTimeParam(r, "end", time.Now().Add(24*time.Hour))
	if err != nil {
		return nil, nil, nil, err
	}
	var sets [][]*labels.Matcher
	for _, m := range r.Form["match[]"] {
		ms, err := h.parser.ParseMetricSelector(m)
		if err != nil {
			return nil, nil, nil, badData("invalid parameter \"match[]\": %v", err)
		}
		sets = append(sets, ms)
	}
	q, err := h.store.Queryable().Querier(start.UnixMilli(), end.UnixMilli())
	if err != nil {
		return nil, nil, nil, fmt.Errorf("opening a querier: %w", err)
	}
	return q, &storage.SelectHints{Start: start.UnixMilli(), End: end.UnixMilli(), Func: "series"}, sets, nil
}

func (h *handler) series(r *http.Request) (any, error) {
	if len(r.Form["match[]"]) == 0 {
		return nil, badData("no match[] parameter provided")
	}
	q, hints, sets, err := h.selection(r)
	if err != nil {
		return nil, err
	}
	defer q.Close()
	var all []storage.SeriesSet
	for _, ms := range sets {
		all = append(all, q.Select(r.Context(), len(sets) > 1, hints, ms...))
	}
	set := storage.NewMergeSeriesSet(all, 0, storage.ChainedSeriesMerge)
	out := []labels.Labels{}
	for set.Next() {
		out = append(out, set.At().Labels())
	}
	if err := set.Err(); err != nil {
		return nil, fmt.Errorf("listing series: %w", err)
	}
	return out, nil
}

func (h *handler) labelNames(r *http.Request) (any, error) {
	q, _, sets, err := h.selection(r)
	if err != nil {
		return nil, err
	}
	defer q.Close()
	return mergeStrings(sets, func(ms []*labels.Matcher) ([]string, annotations.Annotations, error) {
		return q.LabelNames(r.Context(), nil, ms...)
	})
}

func (h *handler) labelValues(r *http.Request) (any, error) {
	name := r.PathValue("name")
	if !model.LabelName(name).IsValid() {
		return nil, badData("invalid label name: %q", name)
	}
	q, _, sets, err := h.selection(r)
	if err != nil {
		return nil, err
	}
	defer q.Close()
	return mergeStrings(sets, func(ms []*labels.Matcher) ([]string, annotations.Annotations, error) {
		return q.LabelValues(r.Context(), name, nil, ms...)
	})
}

// mergeStrings runs fn for each matcher set (once without any) and returns
// the sorted union.
func mergeStrings(sets [][]*labels.Matcher, fn func([]*labels.Matcher) ([]string, annotations.Annotations, error)) ([]string, error) {
	if len(sets) == 0 {
		sets = [][]*labels.Matcher{nil}
	}
	seen := map[string]struct{}{}
	for _, ms := range sets {
		vals, _, err := fn(ms)
		if err != nil {
			return nil, fmt.Errorf("listing labels: %w", err)
		}
		for _, v := range vals {
			seen[v] = struct{}{}
		}
	}
	out := make([]string, 0, len(seen))
	for v := range seen {
		out = append(out, v)
	}
	slices.Sort(out)
	return out, nil
}

func (h *handler) buildInfo(*http.Request) (any, error) {
	return map[string]string{"version": Version, "revision": "skytrail", "branch": "", "buildUser": "", "buildDate": "", "goVersion": ""}, nil
}

// parseTimeParam reads a time parameter, or def when absent.
func parseTimeParam(r *http.Request, name string, def time.Time) (time.Time, error) {
	s := r.FormValue(name)
	if s == "" {
		return def, nil
	}
	t, err := parseTime(s)
	if err != nil {
		return time.Time{}, badData("invalid parameter %q: %v", name, err)
	}
	return t, nil
}

// parseTime reads Unix seconds (with fractions) or RFC 3339, as Prometheus
// does, between minTime and maxTime.
func parseTime(s string) (time.Time, error) {
	if t, err := strconv.ParseFloat(s, 64); err == nil {
		if math.IsNaN(t) || math.IsInf(t, 0) {
			return time.Time{}, fmt.Errorf("cannot parse %q to a valid timestamp", s)
		}
		if t < float64(minTime.Unix()) || t > float64(maxTime.Unix()) {
			return time.Time{}, fmt.Errorf("%q is outside the timestamps Prometheus can hold, %d to %d seconds since the epoch", s, minTime.Unix(), maxTime.Unix())
		}
		sec, frac := math.Modf(t)
		return time.Unix(int64(sec), int64(math.Round(frac*1000))*int64(time.Millisecond)).UTC(), nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	switch s {
	case minTimeFormatted:
		return minTime, nil
	case maxTimeFormatted:
		return maxTime, nil
	}
	return time.Time{}, fmt.Errorf("cannot parse %q to a valid timestamp", s)
}

// parseDuration reads seconds (with fractions) or a Prometheus duration (5m, 1h30m).
func parseDuration(s string) (time.Duration, error) {
	if d, err := strconv.ParseFloat(s, 64); err == nil {
		ts := d * float64(time.Second)
		if ts > float64(math.MaxInt64) || ts < float64(math.MinInt64) || math.IsNaN(ts) {
			return 0, fmt.Errorf("cannot parse %q to a valid duration. It overflows int64", s)
		}
		return time.Duration(ts), nil
	}
	if d, err := model.ParseDuration(s); err == nil {
		return time.Duration(d), nil
	}
	return 0, fmt.Errorf("cannot parse %q to a valid duration", s)
}

// writeValue writes data in Prometheus' JSON shapes.
func writeValue(s *jsoniter.Stream, data any) {
	switch d := data.(type) {
	case queryData:
		s.WriteObjectStart()
		s.WriteObjectField("resultType")
		s.WriteString(string(d.value.Type()))
		s.WriteMore()
		s.WriteObjectField("result")
		writeResult(s, d.value)
		s.WriteObjectEnd()
	case []labels.Labels:
		s.WriteArrayStart()
		for i, l := range d {
			if i > 0 {
				s.WriteMore()
			}
			writeLabels(s, l)
		}
		s.WriteArrayEnd()
	default:
		s.WriteVal(d)
	}
}

func writeResult(s *jsoniter.Stream, v parser.Value) {
	switch v := v.(type) {
	case promql.Vector:
		s.WriteArrayStart()
		for i, smp := range v {
			if i > 0 {
				s.WriteMore()
			}
			s.WriteObjectStart()
			s.WriteObjectField("metric")
			writeLabels(s, smp.Metric)
			s.WriteMore()
			if smp.H != nil {
				s.WriteObjectField("histogram")
				writeHistogramPoint(s, smp.T, smp)
			} else {
				s.WriteObjectField("value")
				writeFloatPoint(s, smp.T, smp.F)
			}
			s.WriteObjectEnd()
		}
		s.WriteArrayEnd()
	case promql.Matrix:
		s.WriteArrayStart()
		for i, series := range v {
			if i > 0 {
				s.WriteMore()
			}
			s.WriteObjectStart()
			s.WriteObjectField("metric")
			writeLabels(s, series.Metric)
			if len(series.Floats) > 0 {
				s.WriteMore()
				s.WriteObjectField("values")
				s.WriteArrayStart()
				for j, p := range series.Floats {
					if j > 0 {
						s.WriteMore()
					}
					writeFloatPoint(s, p.T, p.F)
				}
				s.WriteArrayEnd()
			}
			if len(series.Histograms) > 0 {
				s.WriteMore()
				s.WriteObjectField("histograms")
				s.WriteArrayStart()
				for j, p := range series.Histograms {
					if j > 0 {
						s.WriteMore()
					}
					writeHistogramPoint(s, p.T, promql.Sample{H: p.H})
				}
				s.WriteArrayEnd()
			}
			s.WriteObjectEnd()
		}
		s.WriteArrayEnd()
	case promql.Scalar:
		writeFloatPoint(s, v.T, v.V)
	case promql.String:
		s.WriteArrayStart()
		jsonutil.MarshalTimestamp(v.T, s)
		s.WriteMore()
		s.WriteString(v.V)
		s.WriteArrayEnd()
	default:
		s.WriteNil()
	}
}

func writeLabels(s *jsoniter.Stream, l labels.Labels) {
	s.WriteObjectStart()
	first := true
	l.Range(func(lbl labels.Label) {
		if !first {
			s.WriteMore()
		}
		first = false
		s.WriteObjectField(lbl.Name)
		s.WriteString(lbl.Value)
	})
	s.WriteObjectEnd()
}

func writeFloatPoint(s *jsoniter.Stream, t int64, f float64) {
	s.WriteArrayStart()
	jsonutil.MarshalTimestamp(t, s)
	s.WriteMore()
	jsonutil.MarshalFloat(f, s)
	s.WriteArrayEnd()
}

func writeHistogramPoint(s *jsoniter.Stream, t int64, smp promql.Sample) {
	s.WriteArrayStart()
	jsonutil.MarshalTimestamp(t, s)
	s.WriteMore()
	jsonutil.MarshalHistogram(smp.H, s)
	s.WriteArrayEnd()
}
