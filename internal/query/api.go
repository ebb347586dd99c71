// Package query serves SkyTrail's native JSON API, /api/v1, over a span store.
package query

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/skytrail/skytrail/internal/analysis"
	"github.com/skytrail/skytrail/internal/storage/spanstore"
	"github.com/skytrail/skytrail/internal/traceid"
)

// LogReader reads stored agent logs.
type LogReader interface {
	Logs(ctx context.Context, q spanstore.LogQuery) ([]spanstore.LogEntry, error)
}

// FiguresReader gives each service's current RED figures.
type FiguresReader interface {
	ServiceFigures(ctx context.Context, start, end time.Time) (map[string]analysis.Figures, error)
}

// API is the /api/v1 handler set.
type API struct {
	spans   spanstore.Reader
	logs    LogReader
	figures FiguresReader
}

// NewAPI returns the native API over span and log storage and the
// analysis' figures (nil: services are listed without figures).
func NewAPI(r spanstore.Reader, logs LogReader, figures FiguresReader) *API {
	return &API{spans: r, logs: logs, figures: figures}
}

// Routes registers the API's endpoints on mux.
func (a *API) Routes(mux *http.ServeMux) {
	mux.HandleFunc("GET /api/v1/services", a.services)
	mux.HandleFunc("GET /api/v1/services/{service}/operations", a.operations)
	mux.HandleFunc("GET /api/v1/traces", a.searchTraces)
	mux.HandleFunc("GET /api/v1/traces/{traceID}", a.getTrace)
	mux.HandleFunc("GET /api/v1/logs", a.searchLogs)
}

// searchLogs serves agent logs: service, traceID, start, end, limit.
func (a *API) searchLogs(w http.ResponseWriter, r *http.Request) {
	v := r.URL.Query()
	q := spanstore.LogQuery{Service: v.Get("service")}
	var err error
	if s := v.Get("traceID"); s != "" {
		ids, err := traceid.Candidates(s)
		if err != nil {
			writeError(w, http.StatusBadRequest, fmt.Errorf("traceID %q: %w", s, err))
			return
		}
		q.TraceID = ids[0]
	}
	for _, t := range []struct {
		key string
		dst *time.Time
	}{{"start", &q.Start}, {"end", &q.End}} {
		if s := v.Get(t.key); s != "" {
			if *t.dst, err = parseTime(s); err != nil {
				writeError(w, http.StatusBadRequest, fmt.Errorf("%s %q: %v", t.key, s, err))
				return
			}
		}
	}
	if s := v.Get("limit"); s != "" {
		if q.Limit, err = strconv.Atoi(s); err != nil || q.Limit < 0 {
			writeError(w, http.StatusBadRequest, fmt.Errorf("limit %q: want a positive number", s))
			return
		}
	}
	logs, err := a.logs.Logs(r.Context(), q)
	if err != nil {
		writeError(w, http.StatusInternalServerError, err)
		return
	}
	if logs == nil {
		logs = []spanstore.LogEntry{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"logs": logs})
}

type errorBody struct {
	Error string `json:"error"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	_ = enc.Encode(v)
}

func writeError(w http.ResponseWriter, status int, err error) {
	writeJSON(w, status, errorBody{Error: err.Error()})
}

// ServiceInfo is one entry of /api/v1/services.
type ServiceInfo struct {
	Name string `json:"name"`
	// Figures over the requested window; absent when the service had no
	// calls in it.
	Figures *analysis.Figures `json:"figures,omitempty"`
}

// services lists every service with stored spans, with its figures over
// start..end (default: the last 15 minutes; lookback= sets another window).
func (a *API) services(w http.ResponseWriter, r *http.Request) {
	start, end, err := window(r.URL.Query(), 15*time.Minute)
	if err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	names, err := a.spans.Services(r.Context())
	if err != nil {
		writeError(w, http.StatusInternalServerError, err)
		return
	}
	var figures map[string]analysis.Figures
	if a.figures != nil {
		if figures, err = a.figures.ServiceFigures(r.Context(), start, end); err != nil {
			writeError(w, http.StatusInternalServerError, err)
			return
		}
	}
	out := make([]ServiceInfo, len(names))
	for i, n := range names {
		out[i] = ServiceInfo{Name: n}
		if f, ok := figures[n]; ok {
			out[i].Figures = &f
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"services": out, "start": start, "end": end})
}

// window reads start, end and lookback (default def before end). The
// default end is the end of the current minute: analysis stamps each
// minute's figures at the minute's end.
func window(v map[string][]string, def time.Duration) (start, end time.Time, err error) {
	get := func(k string) string {
		if len(v[k]) > 0 {
			return v[k][0]
		}
		return ""
	}
	end = time.Now().Truncate(time.Minute).Add(time.Minute)
	if s := get("end"); s != "" {
		if end, err = parseTime(s); err != nil {
			return start, end, fmt.Errorf("end %q: %v", s, err)
		}
	}
	start = end.Add(-def)
	if s := get("lookback"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil || d <= 0 {
			return start, end, fmt.Errorf("lookback %q: want a duration such as 1h", s)
		}
		start = end.Add(-d)
	}
	if s := get("start"); s != "" {
		if start, err = parseTime(s); err != nil {
			return start, end, fmt.Errorf("start %q: %v", s, err)
		}
	}
	if end.Before(start) {
		return start, end, errors.New("end is before start")
	}
	return start, end, nil
}

func (a *API) operations(w http.ResponseWriter, r *http.Request) {
	ops, err := a.spans.Operations(r.Context(), r.PathValue("service"))
	if err != nil {
		writeError(w, http.StatusInternalServerError, err)
		return
	}
	if ops == nil {
		ops = []spanstore.Operation{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"operations": ops})
}

func (a *API) getTrace(w http.ResponseWriter, r *http.Request) {
	raw := r.PathValue("traceID")
	candidates, err := traceid.Candidates(raw)
	if err != nil {
		writeError(w, http.StatusBadRequest, fmt.Errorf("trace ID %q: %w", raw, err))
		return
	}
	var id pcommon.TraceID
	var td ptrace.Traces
	for _, id = range candidates {
		if td, err = a.spans.GetTrace(r.Context(), id); !errors.Is(err, spanstore.ErrNotFound) {
			break
		}
	}
	if errors.Is(err, spanstore.ErrNotFound) || len(candidates) == 0 {
		writeError(w, http.StatusNotFound, fmt.Errorf("trace %s not found", raw))
		return
	}
	if err != nil {
		writeError(w, http.StatusInternalServerError, err)
		return
	}
	if r.URL.Query().Get("format") == "otlp" {
		body, err := (&ptrace.JSONMarshaler{}).MarshalTraces(td)
		if err != nil {
			writeError(w, http.StatusInternalServerError, err)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body)
		return
	}
	sums := spanstore.Summarize(td)
	out := Trace{TraceID: hex.EncodeToString(id[:]), Spans: Spans(td)}
	if len(sums) > 0 {
		out.Summary = sums[0]
	}
	writeJSON(w, http.StatusOK, out)
}

// ParseSearch reads a trace search from URL parameters: service, operation,
// repeated tag=key=value (or key:value), tags as a JSON object, minDuration /
// maxDuration (Go durations), errors=true, start / end (RFC 3339 or Unix
// milliseconds), lookback (a duration before end), limit.
func ParseSearch(v map[string][]string) (spanstore.TraceQuery, error) {
	get := func(k string) string {
		if len(v[k]) > 0 {
			return v[k][0]
		}
		return ""
	}
	q := spanstore.TraceQuery{Service: get("service"), Operation: get("operation"), Attributes: map[string]string{}}
	for _, t := range v["tag"] {
		k, val, ok := strings.Cut(t, "=")
		if !ok {
			k, val, ok = strings.Cut(t, ":")
		}
		if !ok || k == "" {
			return q, fmt.Errorf("tag %q: want key=value", t)
		}
		q.Attributes[k] = val
	}
	if tags := get("tags"); tags != "" {
		var m map[string]any
		if err := json.Unmarshal([]byte(tags), &m); err != nil {
			return q, fmt.Errorf("tags %q: want a JSON object of key to value: %v", tags, err)
		}
		for k, val := range m {
			q.Attributes[k] = fmt.Sprint(val)
		}
	}
	var err error
	for _, d := range []struct {
		key string
		dst *time.Duration
	}{{"minDuration", &q.MinDuration}, {"maxDuration", &q.MaxDuration}} {
		if s := get(d.key); s != "" {
			if *d.dst, err = time.ParseDuration(s); err != nil || *d.dst < 0 {
				return q, fmt.Errorf("%s %q: want a duration such as 250ms or 1.5s", d.key, s)
			}
		}
	}
	if q.MinDuration > 0 && q.MaxDuration > 0 && q.MaxDuration < q.MinDuration {
		return q, fmt.Errorf("maxDuration %s is below minDuration %s", q.MaxDuration, q.MinDuration)
	}
	if s := get("errors"); s != "" {
		if q.ErrorsOnly, err = strconv.ParseBool(s); err != nil {
			return q, fmt.Errorf("errors %q: want true or false", s)
		}
	}
	for _, t := range []struct {
		key string
		dst *time.Time
	}{{"start", &q.Start}, {"end", &q.End}} {
		if s := get(t.key); s != "" {
			if *t.dst, err = parseTime(s); err != nil {
				return q, fmt.Errorf("%s %q: %v", t.key, s, err)
			}
		}
	}
	if s := get("lookback"); s != "" && q.Start.IsZero() {
		d, err := time.ParseDuration(s)
		if err != nil || d <= 0 {
			return q, fmt.Errorf("lookback %q: want a duration such as 1h", s)
		}
		end := q.End
		if end.IsZero() {
			end = time.Now()
		}
		q.Start = end.Add(-d)
	}
	if !q.Start.IsZero() && !q.End.IsZero() && q.End.Before(q.Start) {
		return q, errors.New("end is before start")
	}
	if s := get("limit"); s != "" {
		if q.Limit, err = strconv.Atoi(s); err != nil || q.Limit < 0 {
			return q, fmt.Errorf("limit %q: want a positive number", s)
		}
	}
	return q, nil
}

// parseTime reads RFC 3339 or Unix milliseconds.
func parseTime(s string) (time.Time, error) {
	if ms, err := strconv.ParseInt(s, 10, 64); err == nil {
		return time.UnixMilli(ms), nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return t, errors.New("want RFC 3339 (2026-01-02T15:04:05Z) or Unix milliseconds")
	}
	return t, nil
}

func (a *API) searchTraces(w http.ResponseWriter, r *http.Request) {
	q, err := ParseSearch(r.URL.Query())
	if err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	sums, err := a.spans.FindTraces(r.Context(), q)
	if err != nil {
		writeError(w, http.StatusInternalServerError, err)
		return
	}
	if sums == nil {
		sums = []spanstore.TraceSummary{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"traces": sums})
}
