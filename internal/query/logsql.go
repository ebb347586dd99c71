package query

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/VictoriaMetrics/VictoriaLogs/lib/logstorage"

	"github.com/skytrail/skytrail/internal/storage/spanstore"
)

// The rest of VictoriaLogs' query API that Grafana's VictoriaLogs data
// source calls besides /select/logsql/query: the log volume histogram
// (hits), field name and value completion, and metric queries (stats).
// Each answers as VictoriaLogs v1.52.1 does (app/vlselect/logsql, whose
// handlers cannot be imported: they read the process-wide vlstorage and
// register its command-line flags). The work is logstorage's: the same
// pipes VictoriaLogs adds (AddCountByTimePipe, field_names, field_values,
// GetStatsLabels...), run over the log records only.

func (a *API) logsQLStatsRoutes(mux *http.ServeMux) {
	mux.HandleFunc("/select/logsql/hits", a.logsQLHits)
	mux.HandleFunc("/select/logsql/field_names", a.logsQLFieldNames)
	mux.HandleFunc("/select/logsql/field_values", a.logsQLFieldValues)
	mux.HandleFunc("/select/logsql/stats_query_range", a.logsQLStatsRange)
	mux.HandleFunc("/select/logsql/stats_query", a.logsQLStats)
}

// maxLogsQLSeries bounds what one hits or stats answer holds: a grouping by
// a field such as user_id would otherwise make an answer of every user.
const maxLogsQLSeries = 10_000

// logsQLRequest is what every one of these endpoints reads: query, start,
// end (exclusive, as VictoriaLogs reads it; a duration such as 5m is that
// long before now), time (what relative time filters count back from;
// default end) and, when the endpoint takes one, step and offset, to which
// start and end are aligned as VictoriaLogs aligns them.
type logsQLRequest struct {
	q            *logstorage.Query
	start, end   time.Time // inclusive
	step, offset int64
}

func parseLogsQLRequest(r *http.Request, needStep bool) (*logsQLRequest, error) {
	if r.Method != http.MethodGet && r.Method != http.MethodPost {
		return nil, fmt.Errorf("LogsQL takes GET or POST, not %s", r.Method)
	}
	if err := r.ParseForm(); err != nil {
		return nil, fmt.Errorf("read the form: %w", err)
	}
	v := r.Form
	query := v.Get("query")
	if strings.TrimSpace(query) == "" {
		return nil, errors.New("query is missing: send a LogsQL query, such as order_id:1001 or *")
	}
	now := time.Now()
	lr := &logsQLRequest{}
	var err error
	if lr.end, err = logsQLTime(v, "end", now); err != nil {
		return nil, err
	}
	if v.Get("end") != "" {
		lr.end = lr.end.Add(-1)
	}
	if lr.start, err = logsQLTime(v, "start", lr.end.Add(-24*time.Hour)); err != nil {
		return nil, err
	}
	at := lr.end
	if at, err = logsQLTime(v, "time", at); err != nil {
		return nil, err
	}
	if needStep {
		if lr.step, err = logsQLDuration(v.Get("step"), "step"); err != nil {
			return nil, err
		}
		if lr.step <= 0 {
			return nil, errors.New("step must be a duration above zero, such as 1m")
		}
		if o := v.Get("offset"); o != "" {
			if lr.offset, err = logsQLDuration(o, "offset"); err != nil {
				return nil, err
			}
		}
		lr.start, lr.end = alignToStep(lr.start, lr.end, lr.step, lr.offset)
	}
	if lr.q, err = spanstore.ParseLogsQL(query, at); err != nil {
		return nil, err
	}
	return lr, nil
}

func logsQLDuration(s, name string) (int64, error) {
	d, ok := logstorage.TryParseDuration(s)
	if !ok {
		return 0, fmt.Errorf("%s %q: want a duration such as 1m or 1h", name, s)
	}
	return d, nil
}

// alignToStep widens [start, end] to whole steps, as VictoriaLogs does, so
// that the first and last buckets count all of their lines.
func alignToStep(start, end time.Time, step, offset int64) (time.Time, time.Time) {
	s := start.UnixNano() - offset
	s -= ((s % step) + step) % step
	e := end.UnixNano() - offset
	e += step - 1 - (((e % step) + step) % step)
	return time.Unix(0, s+offset), time.Unix(0, e+offset)
}

// runLogsQL runs lr's query with the endpoint's pipes and maps a failure
// to its answer; false when it answered.
func (a *API) runLogsQL(w http.ResponseWriter, r *http.Request, lr *logsQLRequest, prom bool, fn func(db *logstorage.DataBlock)) bool {
	ctx, cancel := context.WithTimeout(r.Context(), logsQLTimeout)
	defer cancel()
	err := a.logs.RunLogsQL(ctx, lr.q, lr.start, lr.end, fn)
	if err == nil {
		return true
	}
	if errors.Is(err, context.DeadlineExceeded) {
		err = fmt.Errorf("%w: the query took longer than %s: narrow its time range or filters", err, logsQLTimeout)
	}
	if prom {
		writePromError(w, err)
	} else {
		writeStoreError(w, err)
	}
	return false
}

// writePromError answers a stats endpoint's failure in the Prometheus
// shape VictoriaLogs answers them in.
func writePromError(w http.ResponseWriter, err error) {
	status, typ := http.StatusInternalServerError, "internal"
	switch {
	case errors.Is(err, spanstore.ErrBadQuery), errors.Is(err, errBadLogsQLRequest):
		status, typ = http.StatusBadRequest, "bad_data"
	case errors.Is(err, spanstore.ErrUnavailable), errors.Is(err, context.DeadlineExceeded):
		status, typ = http.StatusServiceUnavailable, "unavailable"
		w.Header().Set("Retry-After", "1")
	}
	writeJSON(w, status, map[string]string{"status": "error", "errorType": typ, "error": err.Error()})
}

var errBadLogsQLRequest = errors.New("bad request")

// logsQLHits answers /select/logsql/hits: how many lines match in each
// step, one series a combination of the field arguments' values, the
// fields_limit largest kept and the rest summed as {}.
func (a *API) logsQLHits(w http.ResponseWriter, r *http.Request) {
	lr, err := parseLogsQLRequest(r, true)
	if err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	fields := r.Form["field"]
	fieldsLimit, err := nonNegative(r, "fields_limit")
	if err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	lr.q.AddCountByTimePipe(lr.step, lr.offset, fields)
	series := map[string]*hitsSeries{}
	tooMany := false
	ok := a.runLogsQL(w, r, lr, false, func(db *logstorage.DataBlock) {
		cols := db.GetColumns(false)
		var times, hits *logstorage.BlockColumn
		var labels []logstorage.BlockColumn
		for i := range cols {
			switch cols[i].Name {
			case "_time":
				times = &cols[i]
			case "hits":
				hits = &cols[i]
			default:
				labels = append(labels, cols[i])
			}
		}
		if times == nil || hits == nil {
			return
		}
		var key []byte
		for row := range db.RowsCount() {
			ts, ok := logstorage.TryParseTimestampRFC3339Nano(times.Values[row])
			n, err := strconv.ParseUint(hits.Values[row], 10, 64)
			if !ok || err != nil {
				continue
			}
			key = fieldsJSON(key[:0], labels, row)
			hs := series[string(key)]
			if hs == nil {
				if len(series) >= maxLogsQLSeries {
					tooMany = true
					continue
				}
				hs = &hitsSeries{}
				series[string(key)] = hs
			}
			hs.add(ts, n)
		}
	})
	if !ok {
		return
	}
	if tooMany {
		writeError(w, http.StatusBadRequest, fmt.Errorf("more than %d series: set fields_limit or fewer field arguments", maxLogsQLSeries))
		return
	}
	series = topHitsSeries(series, fieldsLimit)
	addZeroHits(series, lr.start.UnixNano(), lr.end.UnixNano(), lr.step, lr.offset)
	keys := make([]string, 0, len(series))
	for k := range series {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	out := make([]json.RawMessage, 0, len(keys))
	for _, k := range keys {
		out = append(out, series[k].json(k))
	}
	writeJSON(w, http.StatusOK, map[string]any{"hits": out})
}

// fieldsJSON appends the row's values of cols as a JSON object, in the
// columns' order (VictoriaLogs' FieldsForHits).
func fieldsJSON(dst []byte, cols []logstorage.BlockColumn, row int) []byte {
	dst = append(dst, '{')
	for i, c := range cols {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = strconv.AppendQuote(dst, c.Name)
		dst = append(dst, ':')
		dst = strconv.AppendQuote(dst, c.Values[row])
	}
	return append(dst, '}')
}

type hitsSeries struct {
	total      uint64
	timestamps []int64
	hits       []uint64
}

func (hs *hitsSeries) add(ts int64, n uint64) {
	hs.timestamps = append(hs.timestamps, ts)
	hs.hits = append(hs.hits, n)
	hs.total += n
}

func (hs *hitsSeries) json(fields string) json.RawMessage {
	idx := make([]int, len(hs.timestamps))
	for i := range idx {
		idx[i] = i
	}
	sort.Slice(idx, func(i, j int) bool { return hs.timestamps[idx[i]] < hs.timestamps[idx[j]] })
	b := append([]byte(`{"fields":`), fields...)
	b = append(b, `,"timestamps":[`...)
	for n, i := range idx {
		if n > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendQuote(b, time.Unix(0, hs.timestamps[i]).UTC().Format(time.RFC3339Nano))
	}
	b = append(b, `],"values":[`...)
	for n, i := range idx {
		if n > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendUint(b, hs.hits[i], 10)
	}
	b = append(b, `],"total":`...)
	b = strconv.AppendUint(b, hs.total, 10)
	return append(b, '}')
}

// topHitsSeries keeps the limit series with the most hits and sums the
// others into the series {} (0: keep all).
func topHitsSeries(m map[string]*hitsSeries, limit int) map[string]*hitsSeries {
	if limit <= 0 || limit >= len(m) {
		return m
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return m[keys[i]].total > m[keys[j]].total })
	other := map[int64]uint64{}
	for _, k := range keys[limit:] {
		for i, ts := range m[k].timestamps {
			other[ts] += m[k].hits[i]
		}
	}
	out := make(map[string]*hitsSeries, limit+1)
	for _, k := range keys[:limit] {
		out[k] = m[k]
	}
	rest := &hitsSeries{}
	for ts, n := range other {
		rest.add(ts, n)
	}
	out["{}"] = rest
	return out
}

// addZeroHits gives every series a zero at each step without lines, as
// VictoriaLogs does (a graph draws gaps as zeros, not as lines).
func addZeroHits(m map[string]*hitsSeries, start, end, step, offset int64) {
	first := start - offset
	first -= ((first % step) + step) % step
	first += offset
	for _, hs := range m {
		have := make(map[int64]bool, len(hs.timestamps))
		for _, ts := range hs.timestamps {
			have[ts] = true
		}
		for ts := first; ts <= end; ts += step {
			if !have[ts] {
				hs.add(ts, 0)
			}
		}
	}
}

func nonNegative(r *http.Request, name string) (int, error) {
	s := r.Form.Get(name)
	if s == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("%s %q: want a number, 0 or more", name, s)
	}
	return n, nil
}

// logsQLFieldNames answers /select/logsql/field_names: the names of the
// fields of the matching lines, each with how many lines have it, most
// first; filter keeps the names containing it.
func (a *API) logsQLFieldNames(w http.ResponseWriter, r *http.Request) {
	lr, err := parseLogsQLRequest(r, false)
	if err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	pipe := "field_names"
	if f := r.Form.Get("filter"); f != "" {
		pipe += " filter " + strconv.Quote(f)
	}
	a.valuesWithHits(w, r, lr, pipe)
}

// logsQLFieldValues answers /select/logsql/field_values: the values of
// field among the matching lines, each with its count, most first, at
// most limit of them (0: all).
func (a *API) logsQLFieldValues(w http.ResponseWriter, r *http.Request) {
	lr, err := parseLogsQLRequest(r, false)
	if err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	field := r.Form.Get("field")
	if field == "" {
		writeError(w, http.StatusBadRequest, errors.New("field is missing: name the field whose values to list"))
		return
	}
	limit, err := nonNegative(r, "limit")
	if err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	if limit == 0 || limit > maxLogsQLSeries {
		limit = maxLogsQLSeries
	}
	pipe := "field_values " + strconv.Quote(field)
	if f := r.Form.Get("filter"); f != "" {
		pipe += " filter " + strconv.Quote(f)
	}
	a.valuesWithHits(w, r, lr, pipe+" limit "+strconv.Itoa(limit))
}

// valuesWithHits runs lr's query piped into pipe, whose rows are a value
// and its hits, and answers them as VictoriaLogs does: {"values":[{"value":
// ..., "hits": n}]}, most hits first, then by value.
func (a *API) valuesWithHits(w http.ResponseWriter, r *http.Request, lr *logsQLRequest, pipe string) {
	q, err := spanstore.ParseLogsQL(lr.q.String()+" | "+pipe, time.Unix(0, lr.q.GetTimestamp()))
	if err != nil {
		writeStoreError(w, err)
		return
	}
	lr.q = q
	type valueWithHits struct {
		Value string `json:"value"`
		Hits  uint64 `json:"hits"`
	}
	values := []valueWithHits{}
	ok := a.runLogsQL(w, r, lr, false, func(db *logstorage.DataBlock) {
		cols := db.GetColumns(false)
		var value, hits *logstorage.BlockColumn
		for i := range cols {
			if cols[i].Name == "hits" {
				hits = &cols[i]
			} else {
				value = &cols[i]
			}
		}
		if value == nil || hits == nil {
			return
		}
		for row := range db.RowsCount() {
			n, _ := strconv.ParseUint(hits.Values[row], 10, 64)
			values = append(values, valueWithHits{Value: strings.Clone(value.Values[row]), Hits: n})
		}
	})
	if !ok {
		return
	}
	sort.Slice(values, func(i, j int) bool {
		if values[i].Hits != values[j].Hits {
			return values[i].Hits > values[j].Hits
		}
		return values[i].Value < values[j].Value
	})
	writeJSON(w, http.StatusOK, map[string]any{"values": values})
}

// statsPoint is one value of a stats series: [Unix seconds, "value"].
type statsPoint struct {
	ts    int64
	value string
}

func (p statsPoint) MarshalJSON() ([]byte, error) {
	b := append([]byte{'['}, strconv.FormatFloat(float64(p.ts)/1e9, 'f', -1, 64)...)
	b = append(b, ',')
	b = strconv.AppendQuote(b, p.value)
	return append(b, ']'), nil
}

// statsSeries is one series of a stats answer: the stats function's result
// name as __name__, the by (...) fields as labels.
type statsSeries struct {
	key    string
	metric map[string]string
	points []statsPoint
}

// logsQLStatsRange answers /select/logsql/stats_query_range: a query
// ending in a stats pipe, counted in each step, as a Prometheus range
// query's matrix, as VictoriaLogs does.
func (a *API) logsQLStatsRange(w http.ResponseWriter, r *http.Request) {
	a.logsQLStatsQuery(w, r, true)
}

// logsQLStats answers /select/logsql/stats_query: a query ending in a
// stats pipe, as a Prometheus instant query's vector, stamped at time.
func (a *API) logsQLStats(w http.ResponseWriter, r *http.Request) {
	a.logsQLStatsQuery(w, r, false)
}

func (a *API) logsQLStatsQuery(w http.ResponseWriter, r *http.Request, ranged bool) {
	lr, err := parseLogsQLRequest(r, ranged)
	if err != nil {
		writePromError(w, fmt.Errorf("%w: %w", errBadLogsQLRequest, err))
		return
	}
	var labels []string
	if ranged {
		labels, err = lr.q.GetStatsLabelsAddGroupingByTime(lr.step, lr.offset)
	} else {
		labels, err = lr.q.GetStatsLabels()
	}
	if err != nil {
		writePromError(w, fmt.Errorf("%w: %w", errBadLogsQLRequest, err))
		return
	}
	series := map[string]*statsSeries{}
	var order []*statsSeries
	tooMany := false
	at := lr.q.GetTimestamp()
	ok := a.runLogsQL(w, r, lr, true, func(db *logstorage.DataBlock) {
		cols := db.GetColumns(false)
		for row := range db.RowsCount() {
			ts := at
			var key []byte
			metric := map[string]string{}
			for _, c := range cols {
				if c.Name == "_time" && ranged {
					if t, ok := logstorage.TryParseTimestampRFC3339Nano(c.Values[row]); ok {
						ts = t
						continue
					}
				}
				if slices.Contains(labels, c.Name) {
					metric[strings.Clone(c.Name)] = strings.Clone(c.Values[row])
					key = strconv.AppendQuote(key, c.Name)
					key = strconv.AppendQuote(key, c.Values[row])
				}
			}
			for col, c := range cols {
				if slices.Contains(labels, c.Name) || (c.Name == "_time" && ranged) {
					continue
				}
				k := strconv.Itoa(col) + string(key) + c.Name
				ss := series[k]
				if ss == nil {
					if len(series) >= maxLogsQLSeries {
						tooMany = true
						continue
					}
					m := map[string]string{"__name__": strings.Clone(c.Name)}
					for n, v := range metric {
						m[n] = v
					}
					ss = &statsSeries{key: k, metric: m}
					series[k] = ss
					order = append(order, ss)
				}
				ss.points = append(ss.points, statsPoint{ts: ts, value: strings.Clone(c.Values[row])})
			}
		}
	})
	if !ok {
		return
	}
	if tooMany {
		writePromError(w, fmt.Errorf("%w: more than %d series: group by fewer fields", errBadLogsQLRequest, maxLogsQLSeries))
		return
	}
	sort.Slice(order, func(i, j int) bool { return order[i].key < order[j].key })
	result := make([]map[string]any, 0, len(order))
	for _, ss := range order {
		if ranged {
			sort.Slice(ss.points, func(i, j int) bool { return ss.points[i].ts < ss.points[j].ts })
			result = append(result, map[string]any{"metric": ss.metric, "values": ss.points})
			continue
		}
		for _, p := range ss.points {
			result = append(result, map[string]any{"metric": ss.metric, "value": p})
		}
	}
	resultType := "vector"
	if ranged {
		resultType = "matrix"
	}
	writeJSON(w, http.StatusOK, map[string]any{"status": "success", "data": map[string]any{"resultType": resultType, "result": result}})
}
