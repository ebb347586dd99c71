// Package query owns SkyTrail's native HTTP API, /api/v1: every route, its
// parameters (one time parser, params.go) and its errors. The data comes
// from the span store, the analysis and the integrity analysis, which expose
// data, not handlers. The Jaeger and Prometheus APIs, whose shapes their
// protocols fix, are the subpackages jaeger and promapi.
package query

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/skytrail/skytrail/internal/analysis"
	"github.com/skytrail/skytrail/internal/analysis/integrity"
	"github.com/skytrail/skytrail/internal/pipeline"
	"github.com/skytrail/skytrail/internal/storage/metricstore"
	"github.com/skytrail/skytrail/internal/storage/spanstore"
	"github.com/skytrail/skytrail/internal/traceid"
)

// Analysis is what the analysis tells of services, instances, endpoints
// and the service map, over a time range.
type Analysis interface {
	ServiceFigures(ctx context.Context, start, end time.Time) (map[string]analysis.Figures, error)
	OneServiceFigures(ctx context.Context, service string, start, end time.Time) (*analysis.Figures, error)
	Topology(ctx context.Context, start, end time.Time) (*analysis.Topology, error)
	Instances(ctx context.Context, service string, start, end time.Time) (*analysis.Instances, error)
	AllInstances(ctx context.Context, start, end time.Time) (*analysis.Instances, error)
	Endpoints(ctx context.Context, service string, start, end time.Time) (*analysis.Endpoints, error)
}

// Diagnostics is what the integrity analysis found, and the services it
// saw send spans since the server started.
type Diagnostics interface {
	Findings(service string) integrity.Report
	SeenServices() []string
}

// Status is what /api/v1/status tells of the server itself: where it
// listens (listener name → host:port, as bound), for the UI's first steps
// and `skytrail doctor`'s command line.
type Status struct {
	Listeners map[string]string `json:"listeners"`
	StartedAt time.Time         `json:"startedAt"`
}

// API is the /api/v1 handler set.
type API struct {
	spans       spanstore.Reader
	logs        LogReader
	analysis    Analysis
	diagnostics Diagnostics
	status      func() Status
}

// WithStatus serves /api/v1/status from status, called per request.
func (a *API) WithStatus(status func() Status) *API {
	a.status = status
	return a
}

// NewAPI returns the native API over span and log storage, the analysis
// (nil: services are listed without figures, and the figures endpoints
// answer 404) and the integrity analysis (nil: no diagnostics).
func NewAPI(spans spanstore.Reader, logs LogReader, a Analysis, d Diagnostics) *API {
	return &API{spans: spans, logs: logs, analysis: a, diagnostics: d}
}

// Routes registers every /api/v1 endpoint on mux (docs/api.md), and a JSON
// 404 for any other path under /api/.
func (a *API) Routes(mux *http.ServeMux) {
	mux.HandleFunc("GET /api/v1/services", a.services)
	mux.HandleFunc("GET /api/v1/services/{service}/operations", a.operations)
	mux.HandleFunc("GET /api/v1/services/{service}/spans/slowest", a.slowestSpans)
	mux.HandleFunc("GET /api/v1/traces", a.searchTraces)
	mux.HandleFunc("GET /api/v1/traces/{traceID}", a.getTrace)
	a.logRoutes(mux)
	if a.analysis != nil {
		mux.HandleFunc("GET /api/v1/topology", a.topology)
		mux.HandleFunc("GET /api/v1/services/{service}/instances", a.instances)
		mux.HandleFunc("GET /api/v1/instances", a.allInstances)
		mux.HandleFunc("GET /api/v1/services/{service}/endpoints", a.endpoints)
	}
	if a.diagnostics != nil {
		mux.HandleFunc("GET /api/v1/diagnostics", a.serveDiagnostics)
	}
	if a.status != nil {
		mux.HandleFunc("GET /api/v1/status", func(w http.ResponseWriter, _ *http.Request) { writeJSON(w, http.StatusOK, a.status()) })
	}
	// An unknown API path is a JSON 404, not the UI's index page.
	mux.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, fmt.Errorf("no such API: %s", r.URL.Path))
	})
}

type errorBody struct {
	Error string `json:"error"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// writeError answers err with status, or with 503 and Retry-After when a
// remote metric store did not answer (the figures of every endpoint).
func writeError(w http.ResponseWriter, status int, err error) {
	if errors.Is(err, metricstore.ErrUnavailable) {
		w.Header().Set("Retry-After", strconv.Itoa(int(pipeline.RetryAfter.Seconds())))
		status = http.StatusServiceUnavailable
	}
	writeJSON(w, status, errorBody{Error: err.Error()})
}

// writeStoreError answers a span or log store's error: 400 for a query it
// cannot run, 503 with Retry-After when the storage (a remote engine, or
// the query's own time budget) did not answer, 500 otherwise.
func writeStoreError(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, spanstore.ErrBadQuery):
		writeError(w, http.StatusBadRequest, err)
	case errors.Is(err, spanstore.ErrUnavailable), errors.Is(err, context.DeadlineExceeded):
		w.Header().Set("Retry-After", strconv.Itoa(int(pipeline.RetryAfter.Seconds())))
		writeError(w, http.StatusServiceUnavailable, err)
	default:
		writeError(w, http.StatusInternalServerError, err)
	}
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
// figures=false leaves the figures out: a page that needs only the names
// (a service picker) does not pay for computing them. service= lists that
// one service (if it has spans stored), computing its figures alone.
func (a *API) services(w http.ResponseWriter, r *http.Request) {
	start, end, err := timeRange(r.URL.Query(), 15*time.Minute)
	if err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	withFigures := true
	if v := r.URL.Query().Get("figures"); v != "" {
		if withFigures, err = strconv.ParseBool(v); err != nil {
			writeError(w, http.StatusBadRequest, fmt.Errorf("figures=%q: want true or false", v))
			return
		}
	}
	names, err := a.spans.Services(r.Context())
	if err != nil {
		writeStoreError(w, err)
		return
	}
	one := r.URL.Query().Get("service")
	if one != "" {
		names = slices.DeleteFunc(names, func(n string) bool { return n != one })
	}
	var figures map[string]analysis.Figures
	switch {
	case a.analysis == nil || !withFigures || (one != "" && len(names) == 0):
	case one != "":
		f, err := a.analysis.OneServiceFigures(r.Context(), one, start, end)
		if err != nil {
			writeError(w, http.StatusInternalServerError, err)
			return
		}
		if f != nil {
			figures = map[string]analysis.Figures{one: *f}
		}
	default:
		if figures, err = a.analysis.ServiceFigures(r.Context(), start, end); err != nil {
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

func (a *API) operations(w http.ResponseWriter, r *http.Request) {
	ops, err := a.spans.Operations(r.Context(), r.PathValue("service"))
	if err != nil {
		writeStoreError(w, err)
		return
	}
	if ops == nil {
		ops = []spanstore.Operation{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"operations": ops})
}

// slowestSpans ranks the service's own spans in start..end by duration:
// where the service's time goes, whatever the traces around them.
func (a *API) slowestSpans(w http.ResponseWriter, r *http.Request) {
	v := r.URL.Query()
	start, end, err := timeRange(v, time.Hour)
	if err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	limit, err := limitParam(v)
	if err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	spans, err := a.spans.SlowestSpans(r.Context(), spanstore.SpanQuery{Service: r.PathValue("service"), Start: start, End: end, Limit: limit})
	if err != nil {
		writeStoreError(w, err)
		return
	}
	if spans == nil {
		spans = []spanstore.RankedSpan{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"spans": spans})
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
		writeStoreError(w, err)
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

func (a *API) searchTraces(w http.ResponseWriter, r *http.Request) {
	q, err := parseSearch(r.URL.Query())
	if err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	sums, err := a.spans.FindTraces(r.Context(), q)
	if err != nil {
		writeStoreError(w, err)
		return
	}
	if sums == nil {
		sums = []spanstore.TraceSummary{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"traces": sums})
}

// topology serves the service map over start..end.
func (a *API) topology(w http.ResponseWriter, r *http.Request) {
	start, end, err := timeRange(r.URL.Query(), 15*time.Minute)
	if err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	t, err := a.analysis.Topology(r.Context(), start, end)
	if err != nil {
		writeError(w, http.StatusInternalServerError, err)
		return
	}
	writeJSON(w, http.StatusOK, t)
}

// instances serves a service's instances: liveness, duplicates, figures.
func (a *API) instances(w http.ResponseWriter, r *http.Request) {
	start, end, err := timeRange(r.URL.Query(), 15*time.Minute)
	if err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	out, err := a.analysis.Instances(r.Context(), r.PathValue("service"), start, end)
	if err != nil {
		writeError(w, http.StatusInternalServerError, err)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

// allInstances serves every service's instances at once.
func (a *API) allInstances(w http.ResponseWriter, r *http.Request) {
	start, end, err := timeRange(r.URL.Query(), 15*time.Minute)
	if err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	out, err := a.analysis.AllInstances(r.Context(), start, end)
	if err != nil {
		writeError(w, http.StatusInternalServerError, err)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

// endpoints serves a service's endpoints with figures, busiest first.
func (a *API) endpoints(w http.ResponseWriter, r *http.Request) {
	start, end, err := timeRange(r.URL.Query(), 15*time.Minute)
	if err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	out, err := a.analysis.Endpoints(r.Context(), r.PathValue("service"), start, end)
	if err != nil {
		writeError(w, http.StatusInternalServerError, err)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

// serveDiagnostics serves the integrity findings, ?service= for one
// service, after the findings about silence: no span at all, or none from
// the service asked about. A service is known when the span store holds its
// spans or the integrity analysis saw them since the server started (the
// store shows a span a flush interval after it arrived).
func (a *API) serveDiagnostics(w http.ResponseWriter, r *http.Request) {
	service := r.URL.Query().Get("service")
	rep := a.diagnostics.Findings(service)
	stored, err := a.spans.Services(r.Context())
	if err != nil {
		writeError(w, http.StatusInternalServerError, fmt.Errorf("list the services to tell silent ones: %w", err))
		return
	}
	known := append(stored, a.diagnostics.SeenServices()...)
	slices.Sort(known)
	known = slices.Compact(known)
	if silence := integrity.Silence(known, service, rep.GeneratedAt); len(silence) > 0 {
		rep.Findings = append(silence, rep.Findings...)
	}
	writeJSON(w, http.StatusOK, rep)
}
