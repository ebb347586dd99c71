package analysis

import (
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"sort"
	"strconv"
	"time"

	"github.com/skytrail/skytrail/internal/analysis/instances"
)

// defaultRange is the time range the JSON APIs cover without start and end.
const defaultRange = 15 * time.Minute

// Routes registers the analysis' JSON APIs on mux:
//
//	GET /api/v1/topology?start=&end=                      the service map
//	GET /api/v1/services/{service}/instances?start=&end=  instances, liveness, duplicates, figures
//	GET /api/v1/services/{service}/endpoints?start=&end=  endpoints with figures, busiest first
//
// start and end are Unix seconds, milliseconds or microseconds, or RFC 3339;
// the default range is the last 15 minutes.
func (a *Analyser) Routes(mux *http.ServeMux) {
	mux.HandleFunc("GET /api/v1/topology", a.serveTopology)
	mux.HandleFunc("GET /api/v1/services/{service}/instances", a.serveInstances)
	mux.HandleFunc("GET /api/v1/services/{service}/endpoints", a.serveEndpoints)
}

func (a *Analyser) serveTopology(w http.ResponseWriter, r *http.Request) {
	start, end, err := timeRange(r)
	if err != nil {
		writeJSONError(w, http.StatusBadRequest, err)
		return
	}
	t, err := a.Topology(r.Context(), start, end)
	if err != nil {
		writeJSONError(w, http.StatusInternalServerError, err)
		return
	}
	writeJSON(w, t)
}

// InstanceView is an instance with its figures over the asked range.
type InstanceView struct {
	instances.Instance
	Figures *Figures `json:"figures,omitempty"`
}

func (a *Analyser) serveInstances(w http.ResponseWriter, r *http.Request) {
	start, end, err := timeRange(r)
	if err != nil {
		writeJSONError(w, http.StatusBadRequest, err)
		return
	}
	service := r.PathValue("service")
	figs, err := a.figures(r.Context(), "skytrail_instance_", []string{"instance"}, "service="+quote(service), true, start, end)
	if err != nil {
		writeJSONError(w, http.StatusInternalServerError, err)
		return
	}
	list := a.registry.List(service, a.now())
	out := make([]InstanceView, 0, len(list))
	for _, inst := range list {
		out = append(out, InstanceView{Instance: inst, Figures: figs[inst.Name]})
		delete(figs, inst.Name)
	}
	// Instances with figures the registry no longer (or never) held, such
	// as "<overflow>" or instances forgotten since.
	for name, f := range figs {
		out = append(out, InstanceView{Instance: instances.Instance{Service: service, Name: name}, Figures: f})
	}
	writeJSON(w, map[string]any{"service": service, "aliveTimeout": a.registry.AliveTimeout().String(), "instances": out})
}

// EndpointView is an endpoint with its figures over the asked range.
type EndpointView struct {
	Name    string  `json:"name"`
	Figures Figures `json:"figures"`
}

func (a *Analyser) serveEndpoints(w http.ResponseWriter, r *http.Request) {
	start, end, err := timeRange(r)
	if err != nil {
		writeJSONError(w, http.StatusBadRequest, err)
		return
	}
	service := r.PathValue("service")
	figs, err := a.figures(r.Context(), "skytrail_endpoint_", []string{"endpoint"}, "service="+quote(service), true, start, end)
	if err != nil {
		writeJSONError(w, http.StatusInternalServerError, err)
		return
	}
	out := make([]EndpointView, 0, len(figs))
	for name, f := range figs {
		out = append(out, EndpointView{Name: name, Figures: *f})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Figures.Calls != out[j].Figures.Calls {
			return out[i].Figures.Calls > out[j].Figures.Calls
		}
		return out[i].Name < out[j].Name
	})
	_, overflowed := figs[Overflow]
	writeJSON(w, map[string]any{"service": service, "endpoints": out, "endpointCap": a.cfg.MaxEndpointsPerService, "overflowed": overflowed})
}

// timeRange reads start and end, defaulting to the last 15 minutes.
// The default end is the end of the current minute, where that minute's
// figures are stamped, as /api/v1/services does.
func timeRange(r *http.Request) (time.Time, time.Time, error) {
	end := time.Now().Truncate(time.Minute).Add(time.Minute)
	if s := r.FormValue("end"); s != "" {
		t, err := parseTime(s)
		if err != nil {
			return time.Time{}, time.Time{}, fmt.Errorf("parameter end: %w", err)
		}
		end = t
	}
	start := end.Add(-defaultRange)
	if s := r.FormValue("start"); s != "" {
		t, err := parseTime(s)
		if err != nil {
			return time.Time{}, time.Time{}, fmt.Errorf("parameter start: %w", err)
		}
		start = t
	}
	if !start.Before(end) {
		return time.Time{}, time.Time{}, fmt.Errorf("start %s is not before end %s", start.Format(time.RFC3339), end.Format(time.RFC3339))
	}
	return start, end, nil
}

// parseTime reads RFC 3339 or a Unix time in seconds, milliseconds or
// microseconds, told apart by size.
func parseTime(s string) (time.Time, error) {
	if f, err := strconv.ParseFloat(s, 64); err == nil && !math.IsNaN(f) && !math.IsInf(f, 0) {
		switch {
		case f > 1e15:
			return time.UnixMicro(int64(f)), nil
		case f > 1e12:
			return time.UnixMilli(int64(f)), nil
		default:
			return time.UnixMilli(int64(f * 1000)), nil
		}
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q is neither RFC 3339 nor a Unix time", s)
	}
	return t, nil
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

func writeJSONError(w http.ResponseWriter, status int, err error) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": err.Error()})
}
