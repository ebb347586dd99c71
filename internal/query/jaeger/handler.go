package jaeger

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/skytrail/skytrail/internal/storage/spanstore"
)

// DependenciesReader answers /api/dependencies: the service-to-service calls
// seen between end-lookback and end.
type DependenciesReader interface {
	Dependencies(ctx context.Context, end time.Time, lookback time.Duration) ([]Dependency, error)
}

// fetchConcurrency bounds the GetTrace calls one search runs at once, so a
// search for many traces neither serialises nor floods the store.
const fetchConcurrency = 8

type handler struct {
	reader spanstore.Reader
	deps   DependenciesReader
	now    func() time.Time
	mux    *http.ServeMux
}

// NewHandler serves Jaeger's query API at paths beginning with /api/; mount
// it with http.StripPrefix("/jaeger", h) to serve /jaeger/api/. A nil deps
// answers /api/dependencies with an empty list.
func NewHandler(r spanstore.Reader, deps DependenciesReader) http.Handler {
	h := &handler{reader: r, deps: deps, now: time.Now, mux: http.NewServeMux()}
	h.mux.HandleFunc("GET /api/services", h.services)
	h.mux.HandleFunc("GET /api/services/{service}/operations", h.serviceOperations)
	h.mux.HandleFunc("GET /api/operations", h.operations)
	h.mux.HandleFunc("GET /api/traces", h.search)
	h.mux.HandleFunc("GET /api/traces/{traceID}", h.trace)
	h.mux.HandleFunc("GET /api/dependencies", h.dependencies)
	return h
}

// ServeHTTP answers unknown paths and methods in the envelope too, so a
// client always gets JSON it can show.
func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if _, pattern := h.mux.Handler(r); pattern == "" {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			writeError(w, r, http.StatusMethodNotAllowed, fmt.Sprintf("method %s not allowed, the Jaeger query API is read-only (GET)", r.Method))
			return
		}
		writeError(w, r, http.StatusNotFound, fmt.Sprintf("no Jaeger query API endpoint at %s", r.URL.Path))
		return
	}
	h.mux.ServeHTTP(w, r)
}

func (h *handler) services(w http.ResponseWriter, r *http.Request) {
	services, err := h.reader.Services(r.Context())
	if err != nil {
		internalError(w, r, "listing services", err)
		return
	}
	if services == nil {
		services = []string{}
	}
	writeJSON(w, r, http.StatusOK, response{Data: services, Total: len(services)})
}

// serviceOperations is the older form the Jaeger UI and Grafana use: span
// names only, each once whatever its kinds.
func (h *handler) serviceOperations(w http.ResponseWriter, r *http.Request) {
	ops, err := h.reader.Operations(r.Context(), r.PathValue("service"))
	if err != nil {
		internalError(w, r, "listing operations", err)
		return
	}
	names := make([]string, 0, len(ops))
	seen := make(map[string]bool, len(ops))
	for _, op := range ops {
		if !seen[op.Name] {
			seen[op.Name] = true
			names = append(names, op.Name)
		}
	}
	writeJSON(w, r, http.StatusOK, response{Data: names, Total: len(names)})
}

var spanKinds = map[string]bool{"": true, "server": true, "client": true, "producer": true, "consumer": true, "internal": true}

func (h *handler) operations(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	service, kind := q.Get("service"), q.Get("spanKind")
	if service == "" {
		writeError(w, r, http.StatusBadRequest, errServiceRequired.Error())
		return
	}
	if !spanKinds[kind] {
		writeError(w, r, http.StatusBadRequest, fmt.Sprintf("unsupported span kind %q: use server, client, producer, consumer or internal", kind))
		return
	}
	ops, err := h.reader.Operations(r.Context(), service)
	if err != nil {
		internalError(w, r, "listing operations", err)
		return
	}
	data := make([]spanstore.Operation, 0, len(ops))
	for _, op := range ops {
		if kind == "" || op.SpanKind == kind {
			data = append(data, op)
		}
	}
	writeJSON(w, r, http.StatusOK, response{Data: data, Total: len(data)})
}

func (h *handler) search(w http.ResponseWriter, r *http.Request) {
	p, err := parseSearchParams(r.URL.Query(), h.now())
	if err != nil {
		writeError(w, r, http.StatusBadRequest, err.Error())
		return
	}
	if len(p.traces) > 0 {
		h.tracesByID(w, r, p.traces)
		return
	}
	ids, err := h.reader.FindTraceIDs(r.Context(), p.query)
	if err != nil {
		internalError(w, r, "searching traces", err)
		return
	}
	if len(ids) > p.query.Limit {
		ids = ids[:p.query.Limit]
	}
	// One read for all found traces: a lookup each would cost a trace-index
	// query and a span query per trace.
	td, err := h.reader.GetTraces(r.Context(), ids)
	if err != nil {
		internalError(w, r, "reading found traces", err)
		return
	}
	byID := map[string]Trace{}
	for _, t := range FromTraces(td) {
		byID[t.TraceID] = t
	}
	// Newest first, as found; a trace gone by the time it was read (expired
	// between the two calls) is left out.
	data := make([]Trace, 0, len(ids))
	for _, id := range ids {
		if t, ok := byID[traceIDHex(id)]; ok {
			data = append(data, t)
		}
	}
	writeJSON(w, r, http.StatusOK, response{Data: data})
}

// tracesByID answers a search by traceID parameters: the traces found, and
// an error entry for each one not found, as Jaeger does.
func (h *handler) tracesByID(w http.ResponseWriter, r *http.Request, requests []requestedTrace) {
	found, err := h.fetchTraces(r.Context(), requests)
	if err != nil {
		internalError(w, r, "reading traces", err)
		return
	}
	data := make([]Trace, 0, len(found))
	var errs []responseError
	for i, t := range found {
		if t == nil {
			errs = append(errs, responseError{Msg: spanstore.ErrNotFound.Error(), TraceID: requests[i].raw})
			continue
		}
		data = append(data, *t)
	}
	writeJSON(w, r, http.StatusOK, response{Data: data, Errors: errs})
}

func (h *handler) trace(w http.ResponseWriter, r *http.Request) {
	req, err := parseTraceID(r.PathValue("traceID"))
	if err != nil {
		writeError(w, r, http.StatusBadRequest, parseError("traceID", err).Error())
		return
	}
	t, err := h.readTrace(r.Context(), req)
	if err != nil {
		internalError(w, r, "reading trace", err)
		return
	}
	if t == nil {
		writeError(w, r, http.StatusNotFound, spanstore.ErrNotFound.Error())
		return
	}
	writeJSON(w, r, http.StatusOK, response{Data: []Trace{*t}})
}

// fetchTraces reads traces concurrently, in request order; a trace not found
// is nil.
func (h *handler) fetchTraces(ctx context.Context, requests []requestedTrace) ([]*Trace, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	out := make([]*Trace, len(requests))
	sem := make(chan struct{}, fetchConcurrency)
	var wg sync.WaitGroup
	var once sync.Once
	var firstErr error
	for i, req := range requests {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		wg.Go(func() {
			defer func() { <-sem }()
			t, err := h.readTrace(ctx, req)
			if err != nil {
				once.Do(func() { firstErr = err; cancel() })
				return
			}
			out[i] = t
		})
	}
	wg.Wait()
	if firstErr != nil {
		return nil, firstErr
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return out, nil
}

// readTrace returns the trace stored under the first of the request's
// candidate IDs that has one, or nil.
func (h *handler) readTrace(ctx context.Context, req requestedTrace) (*Trace, error) {
	for _, id := range req.candidates {
		td, err := h.reader.GetTrace(ctx, id)
		if errors.Is(err, spanstore.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("trace %s: %w", traceIDHex(id), err)
		}
		want := traceIDHex(id)
		for _, t := range FromTraces(td) {
			if t.TraceID == want {
				return &t, nil
			}
		}
	}
	return nil, nil
}

func (h *handler) dependencies(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	end, lookback, err := parseDependenciesParams(q, h.now())
	if err != nil {
		writeError(w, r, http.StatusBadRequest, err.Error())
		return
	}
	data := []Dependency{}
	if h.deps != nil {
		links, err := h.deps.Dependencies(r.Context(), end, lookback)
		if err != nil {
			internalError(w, r, "reading dependencies", err)
			return
		}
		data = mergeDependencies(links, q.Get("service"))
	}
	writeJSON(w, r, http.StatusOK, response{Data: data})
}

// mergeDependencies keeps the links touching service (all when empty) and
// sums the call counts of repeated parent/child pairs, as Jaeger does.
func mergeDependencies(links []Dependency, service string) []Dependency {
	type edge struct{ parent, child string }
	index := map[edge]int{}
	out := make([]Dependency, 0, len(links))
	for _, l := range links {
		if service != "" && l.Parent != service && l.Child != service {
			continue
		}
		e := edge{l.Parent, l.Child}
		if i, ok := index[e]; ok {
			out[i].CallCount += l.CallCount
			continue
		}
		index[e] = len(out)
		out = append(out, l)
	}
	return out
}

func internalError(w http.ResponseWriter, r *http.Request, doing string, err error) {
	if r.Context().Err() != nil {
		// The client went away; nobody reads the answer.
		return
	}
	if errors.Is(err, spanstore.ErrBadQuery) {
		writeError(w, r, http.StatusBadRequest, err.Error())
		return
	}
	slog.ErrorContext(r.Context(), "jaeger query API: "+doing, "path", r.URL.Path, "error", err)
	writeError(w, r, http.StatusInternalServerError, doing+": "+err.Error())
}

func writeError(w http.ResponseWriter, r *http.Request, code int, msg string) {
	writeJSON(w, r, code, response{Errors: []responseError{{Code: code, Msg: msg}}})
}

// writeJSON writes the envelope, indented when the request has a
// prettyPrint parameter other than "false" (Jaeger's convention).
func writeJSON(w http.ResponseWriter, r *http.Request, code int, resp response) {
	var body []byte
	var err error
	if pp := r.URL.Query().Get("prettyPrint"); pp != "" && pp != "false" {
		body, err = json.MarshalIndent(resp, "", "    ")
	} else {
		body, err = json.Marshal(resp)
	}
	if err != nil {
		// Every value in the model is JSON-safe; reaching here is a bug.
		slog.ErrorContext(r.Context(), "jaeger query API: encoding answer", "path", r.URL.Path, "error", err)
		code = http.StatusInternalServerError
		body = []byte(`{"data":null,"total":0,"limit":0,"offset":0,"errors":[{"code":500,"msg":"encoding the answer failed"}]}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	w.Write(body)
}
