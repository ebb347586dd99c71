package query

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/skytrail/skytrail/internal/alerting"
	"github.com/skytrail/skytrail/internal/auth"
)

// Alerting is what the alerting package tells and does: its alerts, rules
// and silences, and reloading its configuration.
type Alerting interface {
	Alerts(ctx context.Context) (active, resolved []alerting.Alert)
	RuleGroups() []alerting.RuleGroup
	Status() alerting.Status
	Silences(ctx context.Context, state string) ([]alerting.Silence, error)
	GetSilence(ctx context.Context, id string) (alerting.Silence, error)
	SetSilence(ctx context.Context, s alerting.Silence) (string, error)
	ExpireSilence(ctx context.Context, id string) error
	Reload() error
	TestReceiver(ctx context.Context, name string) ([]alerting.TestResult, error)
}

// AlertsAPI serves alerts, rules and silences: SkyTrail's own under
// /api/v1, Prometheus' shapes under /prometheus/api/v1 (so Grafana lists
// SkyTrail's rules and alerts), and POST /-/reload.
type AlertsAPI struct{ a Alerting }

// NewAlertsAPI returns the alerting endpoints over a.
func NewAlertsAPI(a Alerting) *AlertsAPI { return &AlertsAPI{a: a} }

// Routes registers the endpoints on mux (docs/api.md).
func (h *AlertsAPI) Routes(mux *http.ServeMux) {
	mux.HandleFunc("GET /api/v1/alerts", h.alerts)
	mux.HandleFunc("GET /api/v1/rules", h.rules)
	mux.HandleFunc("GET /api/v1/alerting/status", h.status)
	mux.HandleFunc("GET /api/v1/silences", h.silences)
	mux.HandleFunc("POST /api/v1/silences", h.setSilence)
	mux.HandleFunc("GET /api/v1/silences/{id}", h.getSilence)
	mux.HandleFunc("DELETE /api/v1/silences/{id}", h.expireSilence)
	mux.HandleFunc("GET /prometheus/api/v1/rules", h.promRules)
	mux.HandleFunc("POST /prometheus/api/v1/rules", h.promRules)
	mux.HandleFunc("GET /prometheus/api/v1/alerts", h.promAlerts)
	mux.HandleFunc("POST /prometheus/api/v1/alerts", h.promAlerts)
	mux.HandleFunc("POST /-/reload", h.reload)
	mux.HandleFunc("POST /api/v1/alerting/receivers/{name}/test", h.testReceiver)
}

// testReceiver sends a test notification through every integration of a
// receiver and says, per integration, whether it arrived and why not. A
// failed delivery is still a 200: the answer is the per-integration result.
func (h *AlertsAPI) testReceiver(w http.ResponseWriter, r *http.Request) {
	results, err := h.a.TestReceiver(r.Context(), r.PathValue("name"))
	switch {
	case errors.Is(err, alerting.ErrUnknownReceiver):
		writeError(w, http.StatusNotFound, err)
		return
	case err != nil:
		writeError(w, http.StatusInternalServerError, err)
		return
	}
	ok := len(results) > 0
	for _, res := range results {
		ok = ok && res.OK
	}
	writeJSON(w, http.StatusOK, map[string]any{"receiver": r.PathValue("name"), "ok": ok, "results": results})
}

// alerts serves the pending and firing alerts (state=firing or pending
// keeps one), and the recently resolved ones.
func (h *AlertsAPI) alerts(w http.ResponseWriter, r *http.Request) {
	state := r.URL.Query().Get("state")
	switch state {
	case "", "firing", "pending", "resolved":
	default:
		writeError(w, http.StatusBadRequest, fmt.Errorf("state %q: want firing, pending or resolved", state))
		return
	}
	active, resolved := h.a.Alerts(r.Context())
	out := []alerting.Alert{}
	for _, a := range active {
		if state == "" || a.State == state {
			out = append(out, a)
		}
	}
	if state != "" && state != "resolved" || resolved == nil {
		resolved = []alerting.Alert{}
	}
	if state == "resolved" {
		out = []alerting.Alert{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"alerts": out, "resolved": resolved})
}

type ruleGroupJSON struct {
	alerting.RuleGroup
	Interval       float64    `json:"interval"`
	EvaluationTime float64    `json:"evaluationTime"`
	Rules          []ruleJSON `json:"rules"`
}

type ruleJSON struct {
	alerting.Rule
	Duration       float64 `json:"duration"`
	KeepFiringFor  float64 `json:"keepFiringFor"`
	EvaluationTime float64 `json:"evaluationTime"`
}

func ruleGroups(groups []alerting.RuleGroup) []ruleGroupJSON {
	out := make([]ruleGroupJSON, 0, len(groups))
	for _, g := range groups {
		gj := ruleGroupJSON{RuleGroup: g, Interval: g.Interval.Seconds(), EvaluationTime: g.EvaluationTime.Seconds(), Rules: []ruleJSON{}}
		for _, r := range g.Rules {
			gj.Rules = append(gj.Rules, ruleJSON{Rule: r, Duration: r.Duration.Seconds(), KeepFiringFor: r.KeepFiringFor.Seconds(), EvaluationTime: r.EvaluationTime.Seconds()})
		}
		out = append(out, gj)
	}
	return out
}

// rules serves the rule groups, each rule's health and last error, and
// the state of the last configuration reload.
func (h *AlertsAPI) rules(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"groups": ruleGroups(h.a.RuleGroups()), "status": h.a.Status()})
}

func (h *AlertsAPI) status(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, h.a.Status())
}

func (h *AlertsAPI) silences(w http.ResponseWriter, r *http.Request) {
	state := r.URL.Query().Get("state")
	switch state {
	case "", "active", "pending", "expired":
	default:
		writeError(w, http.StatusBadRequest, fmt.Errorf("state %q: want active, pending or expired", state))
		return
	}
	out, err := h.a.Silences(r.Context(), state)
	if err != nil {
		writeError(w, http.StatusInternalServerError, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"silences": out})
}

// setSilence creates a silence, or changes the one whose id the body
// gives. Besides endsAt, a body may give "duration" (a Go duration from
// startsAt), the way a person silences: "for 2h".
func (h *AlertsAPI) setSilence(w http.ResponseWriter, r *http.Request) {
	var body struct {
		alerting.Silence
		Duration string `json:"duration"`
	}
	dec := json.NewDecoder(io.LimitReader(r.Body, 1<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&body); err != nil {
		writeError(w, http.StatusBadRequest, fmt.Errorf("reading the silence: %w", err))
		return
	}
	s := body.Silence
	// An authenticated request's silence is its identity's: whoever signed
	// in cannot create one in another's name.
	if id := auth.FromContext(r.Context()); id != nil && id.Name != "" {
		s.CreatedBy = id.Name
	}
	if body.Duration != "" {
		d, err := time.ParseDuration(body.Duration)
		if err != nil || d <= 0 {
			writeError(w, http.StatusBadRequest, fmt.Errorf("duration %q: want a positive duration such as 2h", body.Duration))
			return
		}
		if !s.EndsAt.IsZero() {
			writeError(w, http.StatusBadRequest, errors.New("give endsAt or duration, not both"))
			return
		}
		if s.StartsAt.IsZero() {
			s.StartsAt = time.Now()
		}
		s.EndsAt = s.StartsAt.Add(d)
	}
	id, err := h.a.SetSilence(r.Context(), s)
	var se *alerting.SilenceError
	switch {
	case errors.Is(err, alerting.ErrSilenceNotFound):
		writeError(w, http.StatusNotFound, fmt.Errorf("silence %s not found", s.ID))
	case errors.As(err, &se):
		writeError(w, http.StatusBadRequest, err)
	case err != nil:
		writeError(w, http.StatusInternalServerError, err)
	default:
		writeJSON(w, http.StatusOK, map[string]string{"silenceID": id})
	}
}

func (h *AlertsAPI) getSilence(w http.ResponseWriter, r *http.Request) {
	s, err := h.a.GetSilence(r.Context(), r.PathValue("id"))
	switch {
	case errors.Is(err, alerting.ErrSilenceNotFound):
		writeError(w, http.StatusNotFound, fmt.Errorf("silence %s not found", r.PathValue("id")))
	case err != nil:
		writeError(w, http.StatusInternalServerError, err)
	default:
		writeJSON(w, http.StatusOK, s)
	}
}

func (h *AlertsAPI) expireSilence(w http.ResponseWriter, r *http.Request) {
	err := h.a.ExpireSilence(r.Context(), r.PathValue("id"))
	switch {
	case errors.Is(err, alerting.ErrSilenceNotFound):
		writeError(w, http.StatusNotFound, fmt.Errorf("silence %s not found (or already expired)", r.PathValue("id")))
	case err != nil:
		writeError(w, http.StatusInternalServerError, err)
	default:
		writeJSON(w, http.StatusOK, map[string]string{"status": "expired"})
	}
}

// reload reads the rule files and the notification configuration again,
// as SIGHUP does; a bad one keeps the running configuration (500, with
// the error, as Prometheus answers).
func (h *AlertsAPI) reload(w http.ResponseWriter, r *http.Request) {
	if err := h.a.Reload(); err != nil {
		writeError(w, http.StatusInternalServerError, fmt.Errorf("reload failed, the previous configuration stays in force: %w", err))
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "reloaded"})
}

// Prometheus' shapes (/api/v1/rules and /api/v1/alerts of Prometheus'
// HTTP API), which Grafana reads.

type promAlert struct {
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
	State       string            `json:"state"`
	ActiveAt    *time.Time        `json:"activeAt,omitempty"`
	Value       string            `json:"value"`
}

func toPromAlert(a alerting.Alert) promAlert {
	at := a.ActiveAt
	return promAlert{Labels: a.Labels, Annotations: a.Annotations, State: a.State, ActiveAt: &at, Value: strconv.FormatFloat(a.Value, 'e', -1, 64)}
}

func promSuccess(w http.ResponseWriter, data any) {
	writeJSON(w, http.StatusOK, map[string]any{"status": "success", "data": data})
}

func (h *AlertsAPI) promAlerts(w http.ResponseWriter, r *http.Request) {
	active, _ := h.a.Alerts(r.Context())
	out := make([]promAlert, 0, len(active))
	for _, a := range active {
		out = append(out, toPromAlert(a))
	}
	promSuccess(w, map[string]any{"alerts": out})
}

func (h *AlertsAPI) promRules(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"status": "error", "errorType": "bad_data", "error": err.Error()})
		return
	}
	typ := r.Form.Get("type")
	switch typ {
	case "", "alert", "record":
	default:
		writeJSON(w, http.StatusBadRequest, map[string]string{"status": "error", "errorType": "bad_data", "error": fmt.Sprintf("type %q: want alert or record", typ)})
		return
	}
	groups := []map[string]any{}
	for _, g := range h.a.RuleGroups() {
		rules := []map[string]any{}
		for _, rl := range g.Rules {
			if typ == "alert" && rl.Type != "alerting" || typ == "record" && rl.Type != "recording" {
				continue
			}
			out := map[string]any{
				"name": rl.Name, "query": rl.Query, "labels": nonNil(rl.Labels), "health": rl.Health, "lastError": rl.LastError,
				"evaluationTime": rl.EvaluationTime.Seconds(), "lastEvaluation": rl.LastEvaluation, "type": rl.Type,
			}
			if rl.Type == "alerting" {
				alerts := make([]promAlert, 0, len(rl.Alerts))
				for _, a := range rl.Alerts {
					alerts = append(alerts, toPromAlert(a))
				}
				out["state"], out["duration"], out["keepFiringFor"] = rl.State, rl.Duration.Seconds(), rl.KeepFiringFor.Seconds()
				out["annotations"], out["alerts"] = nonNil(rl.Annotations), alerts
			}
			rules = append(rules, out)
		}
		if typ != "" && len(rules) == 0 {
			continue
		}
		groups = append(groups, map[string]any{
			"name": g.Name, "file": g.File, "rules": rules, "interval": g.Interval.Seconds(), "limit": g.Limit,
			"evaluationTime": g.EvaluationTime.Seconds(), "lastEvaluation": g.LastEvaluation,
		})
	}
	promSuccess(w, map[string]any{"groups": groups})
}

func nonNil(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}
