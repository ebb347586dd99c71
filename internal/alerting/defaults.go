package alerting

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// FigureSeries names the analysis' figure series the default rules read.
// It is the one place that knows them: when the figures change name or
// kind, change DefaultFigureSeries and every default rule follows.
type FigureSeries struct {
	ServiceCalls, ServiceErrors, ServiceDuration    string
	EndpointCalls, EndpointErrors, EndpointDuration string
	InstanceCalls                                   string
	// Counters: the series are running totals (read with rate()); false:
	// each sample is one minute's count (read with sum_over_time()).
	Counters bool
}

// DefaultFigureSeries are the series the default rules read: the
// analysis' running counters and counter native histograms
// (docs/metrics.md). Every default figure rule (service and endpoint error
// rate and p99, instance stopped reporting) depends on them; the integrity
// rules do not.
var DefaultFigureSeries = FigureSeries{
	ServiceCalls:     "skytrail_service_calls_total",
	ServiceErrors:    "skytrail_service_errors_total",
	ServiceDuration:  "skytrail_service_duration_seconds",
	EndpointCalls:    "skytrail_endpoint_calls_total",
	EndpointErrors:   "skytrail_endpoint_errors_total",
	EndpointDuration: "skytrail_endpoint_duration_seconds",
	InstanceCalls:    "skytrail_instance_calls_total",
	Counters:         true,
}

// perSecond is series' rate over window: calls (or errors) a second.
func (f FigureSeries) perSecond(series string, window time.Duration) string {
	if f.Counters {
		return fmt.Sprintf("rate(%s[%s])", series, promDuration(window))
	}
	return fmt.Sprintf("sum_over_time(%s[%s]) / %s", series, promDuration(window), strconv.FormatFloat(window.Seconds(), 'f', -1, 64))
}

// histogram is the latency histogram of series over window, for
// histogram_quantile (only the shape matters, not the unit of time).
func (f FigureSeries) histogram(series string, window time.Duration) string {
	if f.Counters {
		return fmt.Sprintf("rate(%s[%s])", series, promDuration(window))
	}
	return fmt.Sprintf("sum_over_time(%s[%s])", series, promDuration(window))
}

// Thresholds tune the default rules (docs/alarms.md). A zero threshold
// turns its rule off.
type Thresholds struct {
	// ServiceErrorRate: share of a service's calls failing (0.05 = 5%).
	ServiceErrorRate float64
	// ServiceP99: a service's 99th percentile latency.
	ServiceP99 time.Duration
	// EndpointErrorRate and EndpointP99: the same per endpoint.
	EndpointErrorRate float64
	EndpointP99       time.Duration
	// MinCallRate: calls a second a service or endpoint must have over
	// Window for its error rate or p99 to alert, so a single failed call
	// at night pages nobody.
	MinCallRate float64
	// Window is the span of time the figures are judged over.
	Window time.Duration
	// For is how long a figure must stay over its threshold.
	For time.Duration
	// InstanceSilence: an instance that reported within the last hour,
	// while its service goes on reporting, and sent nothing for this long.
	InstanceSilence time.Duration
	// Integrity: alert on the integrity findings (lost propagation,
	// detached roots, refused data, agents alive without spans).
	Integrity bool
	// Series are the figure series read (zero: DefaultFigureSeries).
	Series FigureSeries
}

// DefaultThresholds are the documented defaults.
func DefaultThresholds() Thresholds {
	return Thresholds{
		ServiceErrorRate:  0.05,
		ServiceP99:        time.Second,
		EndpointErrorRate: 0.10,
		EndpointP99:       2 * time.Second,
		MinCallRate:       0.1,
		Window:            5 * time.Minute,
		For:               2 * time.Minute,
		InstanceSilence:   5 * time.Minute,
		Integrity:         true,
	}
}

// Names of the default alerts.
const (
	AlertServiceErrorRate  = "SkyTrailServiceErrorRate"
	AlertServiceLatency    = "SkyTrailServiceLatencyP99"
	AlertEndpointErrorRate = "SkyTrailEndpointErrorRate"
	AlertEndpointLatency   = "SkyTrailEndpointLatencyP99"
	AlertInstanceStopped   = "SkyTrailInstanceStoppedReporting"
	AlertLostPropagation   = "SkyTrailLostPropagation"
	AlertDetachedRoots     = "SkyTrailDetachedRoots"
	AlertRejectedData      = "SkyTrailRejectedData"
	AlertAgentWithoutSpans = "SkyTrailAgentWithoutSpans"
)

// Annotations the notifications read to find a problem's traces
// (links.go): which traces of the alert's service show it.
const (
	// AnnotationTraces is "errors" (failed traces) or "slow" (the
	// slowest traces, at least AnnotationMinDuration long).
	AnnotationTraces      = "skytrail_traces"
	AnnotationMinDuration = "skytrail_min_duration"
)

type ruleNode struct {
	Alert       string            `yaml:"alert,omitempty"`
	Record      string            `yaml:"record,omitempty"`
	Expr        string            `yaml:"expr"`
	For         string            `yaml:"for,omitempty"`
	Labels      map[string]string `yaml:"labels,omitempty"`
	Annotations map[string]string `yaml:"annotations,omitempty"`
}

type groupNode struct {
	Name  string     `yaml:"name"`
	Rules []ruleNode `yaml:"rules"`
}

// DefaultRules renders the default rules, as a Prometheus rule file.
func DefaultRules(t Thresholds) []byte {
	f := t.Series
	if f == (FigureSeries{}) {
		f = DefaultFigureSeries
	}
	w := t.Window
	if w <= 0 {
		w = DefaultThresholds().Window
	}
	forD := promDuration(t.For)
	win := promDuration(w)
	minRate := strconv.FormatFloat(t.MinCallRate, 'f', -1, 64)
	busy := func(by, calls string) string {
		return fmt.Sprintf("sum by (%s) (%s) >= %s", by, f.perSecond(calls, w), minRate)
	}
	errorRate := func(by, errs, calls string, threshold float64) string {
		return fmt.Sprintf("(\n  sum by (%[1]s) (%[2]s)\n    /\n  sum by (%[1]s) (%[3]s)\n) > %[4]s\nand on (%[1]s)\n%[5]s",
			by, f.perSecond(errs, w), f.perSecond(calls, w), strconv.FormatFloat(threshold, 'f', -1, 64), busy(by, calls))
	}
	p99 := func(by, hist, calls string, threshold time.Duration) string {
		return fmt.Sprintf("histogram_quantile(0.99, sum by (%[1]s) (%[2]s)) > %[3]s\nand on (%[1]s)\n%[4]s",
			by, f.histogram(hist, w), strconv.FormatFloat(threshold.Seconds(), 'f', -1, 64), busy(by, calls))
	}
	pct := func(x float64) string { return strconv.FormatFloat(x*100, 'f', -1, 64) + "%" }

	var figures []ruleNode
	if t.ServiceErrorRate > 0 {
		figures = append(figures, ruleNode{
			Alert: AlertServiceErrorRate, Expr: errorRate("service", f.ServiceErrors, f.ServiceCalls, t.ServiceErrorRate), For: forD,
			Labels: map[string]string{"severity": "critical"},
			Annotations: map[string]string{
				"summary":        "{{ $labels.service }}: {{ $value | humanizePercentage }} of calls fail",
				"description":    fmt.Sprintf("{{ $labels.service }}: {{ $value | humanizePercentage }} of its calls failed over the last %s (threshold %s, at least %s calls/s).", win, pct(t.ServiceErrorRate), minRate),
				"threshold":      pct(t.ServiceErrorRate),
				"action":         "Open the example trace: the failing span and its error say where it breaks. A deploy, a failing dependency (see the service map) or bad input are the usual causes.",
				AnnotationTraces: "errors",
				"runbook":        "docs/alarms.md#service-error-rate",
			},
		})
	}
	if t.ServiceP99 > 0 {
		figures = append(figures, ruleNode{
			Alert: AlertServiceLatency, Expr: p99("service", f.ServiceDuration, f.ServiceCalls, t.ServiceP99), For: forD,
			Labels: map[string]string{"severity": "warning"},
			Annotations: map[string]string{
				"summary":             "{{ $labels.service }}: p99 latency {{ $value | humanizeDuration }}",
				"description":         fmt.Sprintf("{{ $labels.service }}: 99%% of calls took up to {{ $value | humanizeDuration }} over the last %s (threshold %s).", win, t.ServiceP99),
				"threshold":           t.ServiceP99.String(),
				"action":              "Open the example trace and look for the longest span: a slow query, a slow dependency, lock or pool waits.",
				AnnotationTraces:      "slow",
				AnnotationMinDuration: t.ServiceP99.String(),
				"runbook":             "docs/alarms.md#service-p99",
			},
		})
	}
	if t.EndpointErrorRate > 0 {
		figures = append(figures, ruleNode{
			Alert: AlertEndpointErrorRate, Expr: errorRate("service, endpoint", f.EndpointErrors, f.EndpointCalls, t.EndpointErrorRate), For: forD,
			Labels: map[string]string{"severity": "warning"},
			Annotations: map[string]string{
				"summary":        "{{ $labels.service }} {{ $labels.endpoint }}: {{ $value | humanizePercentage }} of calls fail",
				"description":    fmt.Sprintf("{{ $labels.endpoint }} of {{ $labels.service }}: {{ $value | humanizePercentage }} of its calls failed over the last %s (threshold %s, at least %s calls/s).", win, pct(t.EndpointErrorRate), minRate),
				"threshold":      pct(t.EndpointErrorRate),
				"action":         "Open the example trace: the failing span and its error say where this endpoint breaks.",
				AnnotationTraces: "errors",
				"runbook":        "docs/alarms.md#endpoint-error-rate",
			},
		})
	}
	if t.EndpointP99 > 0 {
		figures = append(figures, ruleNode{
			Alert: AlertEndpointLatency, Expr: p99("service, endpoint", f.EndpointDuration, f.EndpointCalls, t.EndpointP99), For: forD,
			Labels: map[string]string{"severity": "warning"},
			Annotations: map[string]string{
				"summary":             "{{ $labels.service }} {{ $labels.endpoint }}: p99 latency {{ $value | humanizeDuration }}",
				"description":         fmt.Sprintf("{{ $labels.endpoint }} of {{ $labels.service }}: 99%% of calls took up to {{ $value | humanizeDuration }} over the last %s (threshold %s).", win, t.EndpointP99),
				"threshold":           t.EndpointP99.String(),
				"action":              "Open the example trace and look for the longest span under this endpoint.",
				AnnotationTraces:      "slow",
				AnnotationMinDuration: t.EndpointP99.String(),
				"runbook":             "docs/alarms.md#endpoint-p99",
			},
		})
	}
	if t.InstanceSilence > 0 {
		silence := promDuration(t.InstanceSilence)
		figures = append(figures, ruleNode{
			Alert: AlertInstanceStopped,
			Expr: fmt.Sprintf("(\n  sum by (service, instance) (%s) > 0\n  unless on (service, instance)\n  sum by (service, instance) (%s) > 0\n)\nand on (service)\nsum by (service) (%s) > 0",
				f.perSecond(f.InstanceCalls, time.Hour), f.perSecond(f.InstanceCalls, t.InstanceSilence), f.perSecond(f.ServiceCalls, t.InstanceSilence)),
			Labels: map[string]string{"severity": "warning"},
			Annotations: map[string]string{
				"summary":     "{{ $labels.service }}: instance {{ $labels.instance }} stopped reporting",
				"description": fmt.Sprintf("Instance {{ $labels.instance }} of {{ $labels.service }} sent calls within the last hour but none for %s, while the service's other instances go on.", silence),
				"action":      "Check the instance: is the process alive, does it get traffic (load balancer, readiness), can its exporter reach SkyTrail (skytrail doctor)? An instance replaced by a deploy under a new name also fires this until an hour has passed: silence it.",
				"runbook":     "docs/alarms.md#instance-stopped-reporting",
			},
		})
	}

	var integrity []ruleNode
	if t.Integrity {
		finding := func(kinds string) string {
			return fmt.Sprintf(`max by (kind, service) (%s{kind=~"%s"}) > 0`, FindingCountSeries, kinds)
		}
		integrity = []ruleNode{{
			Alert: AlertLostPropagation, Expr: finding("lost_propagation|propagator_mismatch"), For: "1m",
			Labels: map[string]string{"severity": "warning"},
			Annotations: map[string]string{
				"summary":     "{{ $labels.service }} loses the trace context on its calls",
				"description": "{{ $value }} traces in which {{ $labels.service }}'s calls start new traces on the other side ({{ $labels.kind }}): its traces are cut in two.",
				"action":      "Open the Health page for the remedy: usually the server side lacks tracing middleware or a propagator, or the two sides speak different propagation formats (sw8 and W3C).",
				"runbook":     "docs/alarms.md#lost-propagation",
			},
		}, {
			Alert: AlertDetachedRoots, Expr: finding("detached_root"), For: "1m",
			Labels: map[string]string{"severity": "info"},
			Annotations: map[string]string{
				"summary":     "{{ $labels.service }} starts traces from spans that are not requests",
				"description": "{{ $value }} traces of {{ $labels.service }} start from a span that is not a request: the request's context was lost, usually in a goroutine.",
				"action":      "Pass the request's context to goroutines and helpers (go work(ctx), tracer.Start(ctx, ...)). The Health page shows an example trace.",
				"runbook":     "docs/alarms.md#detached-roots",
			},
		}, {
			Alert: AlertRejectedData, Expr: finding("rejected_data"), For: "0s",
			Labels: map[string]string{"severity": "warning"},
			Annotations: map[string]string{
				"summary":     "SkyTrail refuses spans",
				"description": "{{ $value }} spans were refused by SkyTrail's receivers: those agents' data is lost.",
				"action":      "Open the Health page: it names the receiver, the reason (too large, invalid, a wrong token, overload, a full disk) and the clients, with the fix.",
				"runbook":     "docs/alarms.md#rejected-data",
			},
		}, {
			Alert: AlertAgentWithoutSpans, Expr: finding("silent_instance|stopped_instance"), For: "1m",
			Labels: map[string]string{"severity": "warning"},
			Annotations: map[string]string{
				"summary":     "{{ $labels.service }}: an agent is alive but sends no spans",
				"description": "An instance of {{ $labels.service }} sends keep-alives but no spans ({{ $labels.kind }}).",
				"action":      "Check the agent's sampler and its log for send errors; the Health page names the instance.",
				"runbook":     "docs/alarms.md#agent-without-spans",
			},
		}}
	}

	var groups []groupNode
	if len(figures) > 0 {
		groups = append(groups, groupNode{Name: "skytrail-figures", Rules: figures})
	}
	if len(integrity) > 0 {
		groups = append(groups, groupNode{Name: "skytrail-integrity", Rules: integrity})
	}
	out, err := yaml.Marshal(map[string]any{"groups": groups})
	if err != nil {
		panic("alerting: rendering the default rules: " + err.Error()) // plain structs always marshal
	}
	return out
}

// promDuration writes d the way PromQL reads it (1h30m, 5m, 90s, 250ms).
func promDuration(d time.Duration) string {
	if d <= 0 {
		return "0s"
	}
	var b strings.Builder
	for _, u := range []struct {
		unit string
		d    time.Duration
	}{{"h", time.Hour}, {"m", time.Minute}, {"s", time.Second}, {"ms", time.Millisecond}} {
		if n := d / u.d; n > 0 {
			fmt.Fprintf(&b, "%d%s", n, u.unit)
			d -= n * u.d
		}
	}
	if b.Len() == 0 {
		return "1ms"
	}
	return b.String()
}
