// Package alerting evaluates alerting and recording rules over SkyTrail's
// own metric store and sends what fires to the team's chat.
//
// Rules are Prometheus rule files, run by Prometheus' own rules engine over
// the embedded TSDB and PromQL engine (metricstore): recording rules and
// ALERTS / ALERTS_FOR_STATE are written back to the same TSDB, so an
// alert's pending time survives a restart. SkyTrail ships default rules
// (defaults.go). Notifications go through an embedded Alertmanager
// (notify.go): routes, grouping, inhibition, silences, the notification log
// and Alertmanager's receivers, plus DingTalk, Feishu and WeCom robots
// (chat.go). Every notification links to the traces that show the problem
// (links.go).
//
// The package exposes data (Alerts, RuleGroups, Silences, Status); the
// HTTP API over it is in internal/query.
package alerting

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/prometheus/prometheus/rules"
	"github.com/prometheus/prometheus/storage"
)

// Store is the metric store rules read and write.
type Store interface {
	Queryable() storage.Queryable
	Engine() *promql.Engine
	AppenderV2(ctx context.Context) storage.AppenderV2
	// Writable is nil while the store takes samples.
	Writable() error
}

// Config sets up alerting. The zero value works, with default rules off.
type Config struct {
	// RuleFiles are rule files or globs (Prometheus' format).
	RuleFiles []string
	// DefaultRules turns the built-in rules on, tuned by Thresholds.
	DefaultRules bool
	Thresholds   Thresholds
	// EvalInterval is how often rule groups without their own interval
	// are evaluated (default 10 s: the first failing span reaches a
	// receiver within for + 20 s, docs/benchmarks.md).
	EvalInterval time.Duration
	// MaxSeriesPerRule caps the series one rule's expression may give
	// (default 10,000; negative: no cap): over it the evaluation fails
	// with ErrSeriesCap, counted in skytrail_alerting_series_cap_hits_total.
	MaxSeriesPerRule int
	// NotifyConfig is an Alertmanager configuration file (with SkyTrail's
	// dingtalk/feishu/wecom receivers); "" is DefaultNotifyConfig.
	NotifyConfig string
	// ForwardTo are external Alertmanagers (http(s)://host:port[/prefix])
	// every alert is also sent to, at /api/v2/alerts, as Prometheus sends.
	ForwardTo []string
	// ExternalURL is where users reach SkyTrail's UI, for the links in
	// notifications (default http://localhost:8080).
	ExternalURL string
	// Dir keeps silences and the notification log.
	Dir string
	// Registerer takes the rules engine's, the notifier's and alerting's
	// own metrics; nil keeps them unregistered.
	Registerer prometheus.Registerer
	// Gatherer is the server's registry; the families in Sampled are
	// copied from it into the metric store every EvalInterval, so rules
	// can read them (nil: none).
	Gatherer prometheus.Gatherer
	Sampled  []string
	// Traces and Findings find the example trace of an alert (nil: none).
	Traces   TraceFinder
	Findings FindingSource
	Logger   *slog.Logger
	// ForGracePeriod, ResendDelay and OutageTolerance are the rules
	// engine's settings of the same names (Prometheus' defaults: 10m, 1m,
	// 1h).
	ForGracePeriod, ResendDelay, OutageTolerance time.Duration
}

func (c *Config) defaults() {
	if c.EvalInterval <= 0 {
		c.EvalInterval = 10 * time.Second
	}
	if c.MaxSeriesPerRule == 0 {
		c.MaxSeriesPerRule = 10_000
	}
	if c.ExternalURL == "" {
		c.ExternalURL = "http://localhost:8080"
	}
	if c.Sampled == nil {
		c.Sampled = DefaultSampled
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.ForGracePeriod <= 0 {
		c.ForGracePeriod = 10 * time.Minute
	}
	if c.ResendDelay <= 0 {
		c.ResendDelay = time.Minute
	}
	if c.OutageTolerance <= 0 {
		c.OutageTolerance = time.Hour
	}
	if c.Thresholds.Window <= 0 {
		c.Thresholds.Window = DefaultThresholds().Window
	}
}

// Alerting runs the rules and the notifications.
type Alerting struct {
	cfg     Config
	log     *slog.Logger
	store   Store
	extURL  *url.URL
	loader  *loader
	manager *rules.Manager
	notify  *notifier
	forward *forwarder // nil: no external Alertmanager
	sampler *sampler
	links   *linker
	capLog  capLog

	reloadMu sync.Mutex // one reload at a time
	mu       sync.Mutex
	status   Status
	history  []Alert // resolved alerts, newest last

	reloadOK   prometheus.Gauge
	reloadTime prometheus.Gauge
	capHits    prometheus.Counter
	notifyErrs prometheus.Counter

	stop chan struct{}
	done chan struct{}
}

// Status is the state of the last configuration (re)load.
type Status struct {
	// RuleFiles are the files the rules come from.
	RuleFiles []string `json:"ruleFiles"`
	// NotifyConfig is the notification configuration file ("" default).
	NotifyConfig string `json:"notifyConfig"`
	// LastReload is when the configuration was last (re)loaded, or tried.
	LastReload time.Time `json:"lastReload"`
	// LastReloadSuccessful: false while the running configuration is an
	// older one because the last reload failed; LastError says why.
	LastReloadSuccessful bool   `json:"lastReloadSuccessful"`
	LastError            string `json:"lastError,omitempty"`
}

// New loads the rules and the notification configuration and starts
// evaluating: a bad rule file or configuration is an error naming file,
// line and reason, and nothing is started.
func New(cfg Config, store Store) (*Alerting, error) {
	cfg.defaults()
	ext, err := url.Parse(cfg.ExternalURL)
	if err != nil || ext.Scheme == "" || ext.Host == "" {
		return nil, fmt.Errorf("external URL %q: want an absolute URL such as https://skytrail.example.com", cfg.ExternalURL)
	}
	a := &Alerting{cfg: cfg, log: cfg.Logger.With("component", "alerting"), store: store, extURL: ext,
		stop: make(chan struct{}), done: make(chan struct{})}
	a.registerMetrics(cfg.Registerer)
	p := parser.NewParser(parser.Options{})
	a.loader = &loader{parser: p, logger: a.log}
	if cfg.DefaultRules {
		a.loader.builtin = DefaultRules(cfg.Thresholds)
	}
	files, err := a.ruleFiles()
	if err != nil {
		return nil, err
	}
	if err := a.loader.check(files); err != nil {
		return nil, err
	}
	nc, err := loadNotifyConfig(cfg.NotifyConfig)
	if err != nil {
		return nil, err
	}
	a.notify, err = newNotifier(cfg.Dir, ext, cfg.Registerer, a.log)
	if err != nil {
		return nil, err
	}
	if err := a.notify.apply(nc); err != nil {
		a.notify.close()
		return nil, fmt.Errorf("%s: %w", cmpOr(cfg.NotifyConfig, "the default notification configuration"), err)
	}
	if len(cfg.ForwardTo) > 0 {
		if a.forward, err = newForwarder(cfg.ForwardTo, cfg.Registerer, a.log); err != nil {
			a.notify.close()
			return nil, err
		}
	}
	a.links = newLinker(ext.String(), cfg.Traces, cfg.Findings, cfg.Thresholds.Window)
	a.sampler = newSampler(cfg.Gatherer, store, cfg.Sampled)

	base := rules.EngineQueryFunc(store.Engine(), store.Queryable())
	a.manager = rules.NewManager(&rules.ManagerOptions{
		ExternalURL:     ext,
		QueryFunc:       seriesCap{query: base, max: cfg.MaxSeriesPerRule, hit: a.seriesCapHit}.run,
		NotifyFunc:      a.send,
		Context:         context.Background(),
		AppendableV2:    store,
		Queryable:       store.Queryable(),
		Logger:          a.log,
		Registerer:      cfg.Registerer,
		OutageTolerance: cfg.OutageTolerance,
		ForGracePeriod:  cfg.ForGracePeriod,
		ResendDelay:     cfg.ResendDelay,
		GroupLoader:     a.loader,
		Parser:          p,
	})
	if err := a.manager.Update(cfg.EvalInterval, files, labels.EmptyLabels(), ext.String(), rules.DefaultEvalIterationFunc); err != nil {
		a.notify.close()
		return nil, fmt.Errorf("loading rules: %w", err)
	}
	a.setStatus(files, nil)
	go a.manager.Run()
	go a.background()
	a.log.Info("alerting started", "rule_files", files, "default_rules", cfg.DefaultRules, "notify_config", cmpOr(cfg.NotifyConfig, "(default: none)"), "forward_to", cfg.ForwardTo)
	return a, nil
}

func cmpOr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func (a *Alerting) registerMetrics(reg prometheus.Registerer) {
	a.reloadOK = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "skytrail_alerting_config_last_reload_successful",
		Help: "1 when the last load of rule files and notification configuration succeeded; 0 while an older one runs because the last reload failed.",
	})
	a.reloadTime = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "skytrail_alerting_config_last_reload_timestamp_seconds",
		Help: "When rule files and notification configuration were last (re)loaded, or tried.",
	})
	a.capHits = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "skytrail_alerting_series_cap_hits_total",
		Help: "Rule evaluations refused because the expression gave more series than --rules-max-series.",
	})
	a.notifyErrs = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "skytrail_alerting_dispatch_errors_total",
		Help: "Alerts the rules fired that the notifier refused (invalid labels).",
	})
	if reg != nil {
		reg.MustRegister(a.reloadOK, a.reloadTime, a.capHits, a.notifyErrs)
	}
}

// ruleFiles is every rule file the configuration names, the built-in
// rules first.
func (a *Alerting) ruleFiles() ([]string, error) {
	files, err := expandRuleFiles(a.cfg.RuleFiles)
	if err != nil {
		return nil, err
	}
	if a.cfg.DefaultRules {
		files = append([]string{DefaultRulesFile}, files...)
	}
	return files, nil
}

func (a *Alerting) setStatus(files []string, err error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	now := time.Now()
	a.status.LastReload = now
	a.reloadTime.Set(float64(now.UnixMilli()) / 1000)
	if err != nil {
		a.status.LastReloadSuccessful, a.status.LastError = false, err.Error()
		a.reloadOK.Set(0)
		return
	}
	a.status = Status{RuleFiles: files, NotifyConfig: a.cfg.NotifyConfig, LastReload: now, LastReloadSuccessful: true}
	a.reloadOK.Set(1)
}

// Reload reads the rule files (globs expanded again) and the notification
// configuration anew. When any is bad, the running rules and configuration
// stay, and the error (file, line, reason) is returned, logged, shown in
// Status and counted by skytrail_alerting_config_last_reload_successful.
func (a *Alerting) Reload() error {
	a.reloadMu.Lock()
	defer a.reloadMu.Unlock()
	err := a.reload()
	if err != nil {
		a.log.Error("reloading alerting failed; the previous rules and notification configuration stay in force", "err", err)
	} else {
		a.log.Info("alerting reloaded")
	}
	return err
}

func (a *Alerting) reload() error {
	fail := func(err error) error {
		a.setStatus(nil, err)
		return err
	}
	files, err := a.ruleFiles()
	if err != nil {
		return fail(err)
	}
	if err := a.loader.check(files); err != nil {
		return fail(err)
	}
	nc, err := loadNotifyConfig(a.cfg.NotifyConfig)
	if err != nil {
		return fail(err)
	}
	if err := a.manager.Update(a.cfg.EvalInterval, files, labels.EmptyLabels(), a.extURL.String(), rules.DefaultEvalIterationFunc); err != nil {
		return fail(fmt.Errorf("loading rules: %w", err))
	}
	if err := a.notify.apply(nc); err != nil {
		return fail(fmt.Errorf("%s: %w", cmpOr(a.cfg.NotifyConfig, "the default notification configuration"), err))
	}
	a.setStatus(files, nil)
	return nil
}

// background samples the server's gauges into the store every
// EvalInterval, looks for the example traces active alerts still lack, and
// forgets old ones.
func (a *Alerting) background() {
	defer close(a.done)
	t := time.NewTicker(a.cfg.EvalInterval)
	defer t.Stop()
	failing := false
	sample := func() {
		err := a.sampler.sample(context.Background(), time.Now())
		switch {
		case err != nil && !failing:
			a.log.Warn("sampling the server's findings into the metric store failed; integrity rules see no new values until it works", "err", err)
		case err == nil && failing:
			a.log.Info("sampling the server's findings works again")
		}
		failing = err != nil
	}
	sample()
	for {
		select {
		case <-a.stop:
			return
		case now := <-t.C:
			sample()
			a.findExamples(now)
			a.links.forget(now)
		}
	}
}

func (a *Alerting) seriesCapHit(expr string, n int) {
	a.capHits.Inc()
	if a.capLog.due(expr, time.Now()) {
		a.log.Warn("a rule's expression gave more series than one rule may produce; its evaluation is refused",
			"series", n, "cap", a.cfg.MaxSeriesPerRule, "expr", expr)
	}
}

// send is the rules engine's NotifyFunc: it hands firing and resolved
// alerts, with their links, to the notifier.
func (a *Alerting) send(ctx context.Context, _ string, alerts ...*rules.Alert) {
	now := time.Now()
	out := make([]model.Alert, 0, len(alerts))
	budget := maxLookupsPerSend
	for _, r := range alerts {
		resolved := !r.ResolvedAt.IsZero()
		extra, generator := a.links.annotate(ctx, r.Labels, r.Annotations, r.ActiveAt, now, resolved, &budget)
		m := model.Alert{
			Labels:       model.LabelSet{},
			Annotations:  model.LabelSet{},
			StartsAt:     r.FiredAt,
			GeneratorURL: generator,
		}
		r.Labels.Range(func(l labels.Label) { m.Labels[model.LabelName(l.Name)] = model.LabelValue(l.Value) })
		r.Annotations.Range(func(l labels.Label) { m.Annotations[model.LabelName(l.Name)] = model.LabelValue(l.Value) })
		for k, v := range extra {
			m.Annotations[model.LabelName(k)] = model.LabelValue(v)
		}
		if resolved {
			m.EndsAt = r.ResolvedAt
			a.remember(r, m)
		} else {
			m.EndsAt = r.ValidUntil
		}
		out = append(out, m)
	}
	if a.forward != nil {
		a.forward.send(out)
	}
	if err := a.notify.put(ctx, out); err != nil {
		a.notifyErrs.Inc()
		a.log.Warn("the notifier refused alerts", "err", err)
	}
}

// findExamples searches (a few a round) for the example trace of every
// firing alert that went out without one: its first notification left
// before its spans were searchable. The search runs here, not in
// /api/v1/alerts, so that a page showing the alerts never waits on one.
func (a *Alerting) findExamples(now time.Time) {
	lookups := maxLookupsPerSend
	for _, r := range a.manager.AlertingRules() {
		for _, al := range r.ActiveAlerts() {
			if lookups <= 0 {
				return
			}
			// Firing ones only: a search for a pending alert, whose spans
			// may not be searchable yet, would hold back the search its
			// first notification makes (one every lookAgain).
			if al.State != rules.StateFiring {
				continue
			}
			a.links.annotate(context.Background(), al.Labels, al.Annotations, al.ActiveAt, now, false, &lookups)
		}
	}
}

// maxLookupsPerSend bounds the example-trace searches of one rule's
// evaluation: a rule firing for a thousand services at once would
// otherwise hold up its group for a thousand span-store queries.
const maxLookupsPerSend = 10

// maxHistory is how many resolved alerts /api/v1/alerts remembers.
const maxHistory = 200

func (a *Alerting) remember(r *rules.Alert, m model.Alert) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for i := len(a.history) - 1; i >= 0; i-- {
		h := a.history[i]
		if h.ActiveAt.Equal(r.ActiveAt) && labels.Equal(h.labels, r.Labels) {
			return // sent again (resend): already remembered
		}
	}
	h := toAlert(r, "resolved")
	h.Annotations = map[string]string{}
	for k, v := range m.Annotations {
		h.Annotations[string(k)] = string(v)
	}
	resolvedAt := r.ResolvedAt
	h.ResolvedAt = &resolvedAt
	a.history = append(a.history, h)
	if n := len(a.history) - maxHistory; n > 0 {
		a.history = slices.Delete(a.history, 0, n)
	}
}

// Alert is one alert, as /api/v1/alerts shows it.
type Alert struct {
	Name        string            `json:"name"`
	State       string            `json:"state"` // pending, firing, resolved
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
	Value       float64           `json:"value"`
	// ActiveAt is when the condition first held (pending since).
	ActiveAt time.Time `json:"activeAt"`
	// FiredAt is when it began firing, after its for: duration.
	FiredAt    *time.Time `json:"firedAt,omitempty"`
	ResolvedAt *time.Time `json:"resolvedAt,omitempty"`
	// SilencedBy names the silences muting it; Inhibited is set while a
	// more severe alert mutes it (inhibit_rules).
	SilencedBy []string `json:"silencedBy,omitempty"`
	Inhibited  bool     `json:"inhibited,omitempty"`

	labels labels.Labels
}

func toAlert(r *rules.Alert, state string) Alert {
	out := Alert{Name: r.Labels.Get(labels.AlertName), State: state, Labels: r.Labels.Map(), Annotations: r.Annotations.Map(),
		Value: r.Value, ActiveAt: r.ActiveAt, labels: r.Labels}
	if !r.FiredAt.IsZero() {
		f := r.FiredAt
		out.FiredAt = &f
	}
	return out
}

// Alerts lists the alerts now pending or firing, firing first, then the
// most recently resolved (newest first, at most 200 since the start).
func (a *Alerting) Alerts(ctx context.Context) (active, resolved []Alert) {
	// No searches here (a zero budget): the example traces come from the
	// notifications and from the background loop's findExamples.
	now, lookups := time.Now(), 0
	for _, r := range a.manager.AlertingRules() {
		for _, al := range r.ActiveAlerts() {
			out := toAlert(al, al.State.String())
			// The links the notifications carry, and the example trace.
			extra, _ := a.links.annotate(ctx, al.Labels, al.Annotations, al.ActiveAt, now, false, &lookups)
			maps.Copy(out.Annotations, extra)
			ls := model.LabelSet{}
			al.Labels.Range(func(l labels.Label) { ls[model.LabelName(l.Name)] = model.LabelValue(l.Value) })
			out.SilencedBy, out.Inhibited = a.notify.muted(ctx, ls)
			active = append(active, out)
		}
	}
	slices.SortStableFunc(active, func(x, y Alert) int {
		if x.State != y.State {
			if x.State == "firing" {
				return -1
			}
			return 1
		}
		return x.ActiveAt.Compare(y.ActiveAt)
	})
	a.mu.Lock()
	resolved = slices.Clone(a.history)
	a.mu.Unlock()
	slices.Reverse(resolved)
	return active, resolved
}

// RuleGroup is one group of rules, as /api/v1/rules shows it.
type RuleGroup struct {
	Name           string        `json:"name"`
	File           string        `json:"file"`
	Interval       time.Duration `json:"-"`
	Rules          []Rule        `json:"rules"`
	LastEvaluation time.Time     `json:"lastEvaluation"`
	EvaluationTime time.Duration `json:"-"`
	Limit          int           `json:"limit"`
}

// Rule is one alerting or recording rule.
type Rule struct {
	Name           string            `json:"name"`
	Type           string            `json:"type"` // alerting, recording
	Query          string            `json:"query"`
	Duration       time.Duration     `json:"-"`
	KeepFiringFor  time.Duration     `json:"-"`
	Labels         map[string]string `json:"labels"`
	Annotations    map[string]string `json:"annotations,omitempty"`
	Health         string            `json:"health"` // ok, err, unknown
	LastError      string            `json:"lastError,omitempty"`
	LastEvaluation time.Time         `json:"lastEvaluation"`
	EvaluationTime time.Duration     `json:"-"`
	// State is the worst state of its alerts: inactive, pending, firing.
	State  string  `json:"state,omitempty"`
	Alerts []Alert `json:"alerts,omitempty"`
}

// RuleGroups lists the rule groups with their rules' health.
func (a *Alerting) RuleGroups() []RuleGroup {
	var out []RuleGroup
	for _, g := range a.manager.RuleGroups() {
		rg := RuleGroup{Name: g.Name(), File: g.File(), Interval: g.Interval(), LastEvaluation: g.GetLastEvaluation(),
			EvaluationTime: g.GetEvaluationTime(), Limit: g.Limit()}
		for _, r := range g.Rules() {
			out := Rule{Name: r.Name(), Query: r.Query().String(), Labels: r.Labels().Map(), Health: string(r.Health()),
				LastEvaluation: r.GetEvaluationTimestamp(), EvaluationTime: r.GetEvaluationDuration()}
			if err := r.LastError(); err != nil {
				out.LastError = err.Error()
			}
			switch r := r.(type) {
			case *rules.AlertingRule:
				out.Type, out.Duration, out.KeepFiringFor = "alerting", r.HoldDuration(), r.KeepFiringFor()
				out.Annotations = r.Annotations().Map()
				out.State = r.State().String()
				for _, al := range r.ActiveAlerts() {
					out.Alerts = append(out.Alerts, toAlert(al, al.State.String()))
				}
			default:
				out.Type = "recording"
			}
			rg.Rules = append(rg.Rules, out)
		}
		out = append(out, rg)
	}
	slices.SortFunc(out, func(x, y RuleGroup) int {
		return strings.Compare(x.File+"\x00"+x.Name, y.File+"\x00"+y.Name)
	})
	return out
}

// Status is the state of the last (re)load.
func (a *Alerting) Status() Status {
	a.mu.Lock()
	defer a.mu.Unlock()
	s := a.status
	s.RuleFiles = slices.Clone(s.RuleFiles)
	return s
}

// Shutdown stops evaluating and notifying, and writes the silences and the
// notification log to disk.
func (a *Alerting) Shutdown(ctx context.Context) error {
	close(a.stop)
	stopped := make(chan struct{})
	go func() {
		a.manager.Stop()
		<-a.done
		a.notify.close()
		if a.forward != nil {
			a.forward.stop()
		}
		close(stopped)
	}()
	select {
	case <-stopped:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("stopping alerting: %w", ctx.Err())
	}
}

// Dir is where alerting keeps its state under a data directory.
func Dir(dataDir string) string { return filepath.Join(dataDir, "alerting") }
