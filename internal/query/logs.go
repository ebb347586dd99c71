package query

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/VictoriaMetrics/VictoriaLogs/lib/logstorage"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/skytrail/skytrail/internal/logfields"
	"github.com/skytrail/skytrail/internal/storage/spanstore"
	"github.com/skytrail/skytrail/internal/traceid"
)

// LogReader reads stored log records.
type LogReader interface {
	Logs(ctx context.Context, q spanstore.LogQuery) ([]spanstore.LogEntry, error)
	TraceLogs(ctx context.Context, ids []pcommon.TraceID, limit int) ([]spanstore.LogEntry, error)
	LogsQL(ctx context.Context, q spanstore.LogsQLQuery, emit func(row []spanstore.LogsQLField)) error
	RunLogsQL(ctx context.Context, q *logstorage.Query, start, end time.Time, fn func(db *logstorage.DataBlock)) error
}

// logsQLTimeout bounds one LogsQL query: a query may sort or count a
// day's lines, and nobody waits longer for an answer.
const logsQLTimeout = 30 * time.Second

func (a *API) logRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /api/v1/logs", a.searchLogs)
	mux.HandleFunc("GET /api/v1/traces/{traceID}/logs", a.traceLogs)
	// VictoriaLogs' query API, where Grafana's VictoriaLogs data source and
	// vlogscli look for it; GET and POST (form) as VictoriaLogs takes them.
	mux.HandleFunc("/select/logsql/query", a.logsQL)
	a.logsQLStatsRoutes(mux)
}

// logsPage is /api/v1/logs' answer.
type logsPage struct {
	Logs []spanstore.LogEntry `json:"logs"`
	// Next is the cursor of the next (older) page; absent on the last.
	Next string `json:"next,omitempty"`
}

// searchLogs serves a log search: service, severity (least severe level
// shown: debug, info, warn, error, fatal, or a number 1-24), q (words in
// the message), field=name:value (repeated; every one must match), traceID
// (any form), start, end, lookback, limit, cursor (from the previous page's
// next). Newest first.
func (a *API) searchLogs(w http.ResponseWriter, r *http.Request) {
	q, err := parseLogSearch(r.URL.Query())
	if err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	limit := q.Limit
	q.Limit = limit + 1 // one more tells whether there is a next page
	logs, err := a.logs.Logs(r.Context(), q)
	if err != nil {
		writeStoreError(w, err)
		return
	}
	page := logsPage{Logs: logs}
	if len(logs) > limit {
		page.Logs = logs[:limit]
		page.Next = encodeCursor(page.Logs, q)
	}
	if page.Logs == nil {
		page.Logs = []spanstore.LogEntry{}
	}
	writeJSON(w, http.StatusOK, page)
}

// maxFieldFilters bounds the field filters of one search.
const maxFieldFilters = 20

func parseLogSearch(v url.Values) (spanstore.LogQuery, error) {
	q := spanstore.LogQuery{Service: v.Get("service"), Text: v.Get("q")}
	if s := v.Get("severity"); s != "" {
		n := logfields.SeverityNumber(s)
		if i, err := strconv.Atoi(s); err == nil && i >= 1 && i <= 24 {
			n = plog.SeverityNumber(i)
		}
		if n == 0 {
			return q, fmt.Errorf("severity %q: want trace, debug, info, warn, error, fatal or a number 1-24", s)
		}
		q.MinSeverity = n
	}
	if s := v.Get("traceID"); s != "" {
		ids, err := traceid.Candidates(s)
		if err != nil {
			return q, fmt.Errorf("traceID %q: %w", s, err)
		}
		q.TraceIDs = ids
	}
	if len(v["field"]) > maxFieldFilters {
		return q, fmt.Errorf("%d field filters: at most %d", len(v["field"]), maxFieldFilters)
	}
	for _, f := range v["field"] {
		name, value, ok := strings.Cut(f, ":")
		if !ok {
			name, value, ok = strings.Cut(f, "=")
		}
		if !ok || name == "" {
			return q, fmt.Errorf("field %q: want name:value, such as order_id:1001", f)
		}
		if err := spanstore.CheckLogField(name); err != nil {
			return q, err
		}
		q.Fields = append(q.Fields, spanstore.FieldFilter{Name: name, Value: value})
	}
	var err error
	if q.End, err = timeParam(v, "end", time.Now()); err != nil {
		return q, err
	}
	lookback, err := lookbackParam(v, 24*time.Hour)
	if err != nil {
		return q, err
	}
	if q.Start, err = timeParam(v, "start", q.End.Add(-lookback)); err != nil {
		return q, err
	}
	if q.End.Before(q.Start) {
		return q, fmt.Errorf("end %s is before start %s", q.End.UTC().Format(time.RFC3339), q.Start.UTC().Format(time.RFC3339))
	}
	if q.Limit, err = limitParam(v); err != nil {
		return q, err
	}
	switch {
	case q.Limit == 0:
		q.Limit = 100
	case q.Limit > spanstore.MaxLogLimit:
		q.Limit = spanstore.MaxLogLimit
	}
	if c := v.Get("cursor"); c != "" {
		end, skip, err := decodeCursor(c)
		if err != nil {
			return q, err
		}
		if end.Before(q.End) {
			q.End, q.Skip = end, skip
		}
	}
	return q, nil
}

// A cursor names where the next page ends: the time of the last record
// returned, and how many records at exactly that time were returned, so
// the next page leaves them out.
func encodeCursor(page []spanstore.LogEntry, q spanstore.LogQuery) string {
	last := page[len(page)-1].Time
	n := 0
	for i := len(page) - 1; i >= 0 && page[i].Time.Equal(last); i-- {
		n++
	}
	if last.Equal(q.End) {
		n += q.Skip
	}
	return base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(last.UnixNano(), 10) + "." + strconv.Itoa(n)))
}

func decodeCursor(c string) (time.Time, int, error) {
	bad := fmt.Errorf("cursor %q: not one this API gave", c)
	raw, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil {
		return time.Time{}, 0, bad
	}
	ns, n, ok := strings.Cut(string(raw), ".")
	if !ok {
		return time.Time{}, 0, bad
	}
	t, err1 := strconv.ParseInt(ns, 10, 64)
	skip, err2 := strconv.Atoi(n)
	if err1 != nil || err2 != nil || t < 0 || skip < 0 || skip > 1<<20 {
		return time.Time{}, 0, bad
	}
	return time.Unix(0, t), skip, nil
}

// traceLogs serves the log records of one trace, oldest first, by any form
// of its ID (OpenTelemetry hex, a 64-bit hex ID, a SkyWalking trace ID).
func (a *API) traceLogs(w http.ResponseWriter, r *http.Request) {
	raw := r.PathValue("traceID")
	ids, err := traceid.Candidates(raw)
	if err != nil {
		writeError(w, http.StatusBadRequest, fmt.Errorf("trace ID %q: %w", raw, err))
		return
	}
	limit, err := limitParam(r.URL.Query())
	if err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	if limit == 0 || limit > spanstore.MaxLogLimit {
		limit = spanstore.MaxLogLimit
	}
	logs, err := a.logs.TraceLogs(r.Context(), ids, limit)
	if err != nil {
		writeStoreError(w, err)
		return
	}
	if logs == nil {
		logs = []spanstore.LogEntry{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"logs": logs})
}

// logsQL answers as VictoriaLogs' /select/logsql/query does: query, start,
// end (end exclusive, as VictoriaLogs takes it; a duration such as 5m is
// that long before now), limit, offset; one JSON object a line, newest
// first. Unlike VictoriaLogs it always caps the rows (limit 1000 by
// default, 10000 at most) and, without start, searches the last day.
func (a *API) logsQL(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodPost {
		w.Header().Set("Allow", "GET, POST")
		writeError(w, http.StatusMethodNotAllowed, fmt.Errorf("LogsQL takes GET or POST, not %s", r.Method))
		return
	}
	if err := r.ParseForm(); err != nil {
		writeError(w, http.StatusBadRequest, fmt.Errorf("read the form: %w", err))
		return
	}
	v := r.Form
	q := spanstore.LogsQLQuery{Query: v.Get("query"), Limit: 1000}
	if strings.TrimSpace(q.Query) == "" {
		writeError(w, http.StatusBadRequest, errors.New("query is missing: send a LogsQL query, such as order_id:1001"))
		return
	}
	now := time.Now()
	var err error
	if q.End, err = logsQLTime(v, "end", now); err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	if v.Get("end") != "" {
		q.End = q.End.Add(-1) // [start, end), as VictoriaLogs reads it
	}
	if q.Start, err = logsQLTime(v, "start", q.End.Add(-24*time.Hour)); err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	for _, p := range []struct {
		name string
		dst  *int
	}{{"limit", &q.Limit}, {"offset", &q.Offset}} {
		if s := v.Get(p.name); s != "" {
			n, err := strconv.Atoi(s)
			if err != nil || n < 0 {
				writeError(w, http.StatusBadRequest, fmt.Errorf("%s %q: want a number of rows", p.name, s))
				return
			}
			if p.name != "limit" || n > 0 {
				*p.dst = n
			}
		}
	}
	ctx, cancel := context.WithTimeout(r.Context(), logsQLTimeout)
	defer cancel()
	// Rows are buffered until the query ends, so that an error (a query
	// that does not parse, a timeout) is still a clean 4xx/5xx answer.
	var rows [][]byte
	var line []byte
	err = a.logs.LogsQL(ctx, q, func(row []spanstore.LogsQLField) {
		line = append(line[:0], '{')
		for i, f := range row {
			if i > 0 {
				line = append(line, ',')
			}
			name, _ := json.Marshal(f.Name)
			value, _ := json.Marshal(f.Value)
			line = append(line, name...)
			line = append(line, ':')
			line = append(line, value...)
		}
		line = append(line, '}', '\n')
		rows = append(rows, append([]byte(nil), line...))
	})
	if errors.Is(err, context.DeadlineExceeded) {
		err = fmt.Errorf("%w: the query took longer than %s: narrow its time range or filters", err, logsQLTimeout)
	}
	if err != nil {
		writeStoreError(w, err) // 400 bad query, 503 + Retry-After for a store that did not answer
		return
	}
	w.Header().Set("Content-Type", "application/stream+json")
	bw := bufio.NewWriter(w)
	for _, row := range rows {
		_, _ = bw.Write(row)
	}
	_ = bw.Flush()
}

// logsQLTime reads a VictoriaLogs time argument: what ParseTime reads, or
// a duration before now (5m, 1h).
func logsQLTime(v url.Values, name string, def time.Time) (time.Time, error) {
	s := v.Get(name)
	if s == "" {
		return def, nil
	}
	if d, err := time.ParseDuration(s); err == nil && d > 0 {
		return time.Now().Add(-d), nil
	}
	return timeParam(v, name, def)
}
