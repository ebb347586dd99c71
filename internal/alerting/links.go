package alerting

import (
	"cmp"
	"context"
	"net/url"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/prometheus/model/labels"

	"github.com/skytrail/skytrail/internal/analysis/integrity"
	"github.com/skytrail/skytrail/internal/storage/spanstore"
)

// TraceFinder searches stored traces (the span store).
type TraceFinder interface {
	FindTraces(ctx context.Context, q spanstore.TraceQuery) ([]spanstore.TraceSummary, error)
}

// FindingSource tells the integrity findings, with their example traces.
type FindingSource interface {
	Findings(service string) integrity.Report
}

// Annotations the notifications carry, added to every alert with a
// service label: the reader lands on a trace, not on a dashboard.
const (
	AnnotationServiceURL      = "service_url"
	AnnotationTracesURL       = "traces_url"
	AnnotationHealthURL       = "health_url"
	AnnotationExampleTraceID  = "example_trace_id"
	AnnotationExampleTraceURL = "example_trace_url"
)

// linker adds links to the UI and an example trace to alerts. The example
// is looked up once per alert (per its activation), when it first fires,
// and kept: the search costs a span-store query, and the trace that showed
// the problem when it began is the one to read.
type linker struct {
	base     string // external URL, without a trailing slash
	traces   TraceFinder
	findings FindingSource
	window   time.Duration

	mu    sync.Mutex
	cache map[uint64]*example
}

type example struct {
	activeAt time.Time
	traceID  string
	looked   time.Time
	seen     time.Time
}

// lookAgain is how long an alert without an example waits for the next
// search.
const lookAgain = 10 * time.Second

func newLinker(base string, traces TraceFinder, findings FindingSource, window time.Duration) *linker {
	for len(base) > 0 && base[len(base)-1] == '/' {
		base = base[:len(base)-1]
	}
	return &linker{base: base, traces: traces, findings: findings, window: window, cache: map[uint64]*example{}}
}

// rangeParams are the UI's shared time range parameters (Unix ms).
func rangeParams(v url.Values, from, to time.Time) {
	v.Set("range", "custom")
	v.Set("from", strconv.FormatInt(from.UnixMilli(), 10))
	v.Set("to", strconv.FormatInt(to.UnixMilli(), 10))
}

// annotate returns the links for an alert with lbls and annotations ann,
// active since activeAt, as of now; generator is the link the
// notification's title points at.
//
// budget bounds the example-trace searches one call of the rules engine's
// NotifyFunc makes (each is a span-store query, run in the rule group's
// goroutine): alerts past it go out without an example this time, and are
// looked up at the next resend.
func (l *linker) annotate(ctx context.Context, lbls, ann labels.Labels, activeAt, now time.Time, resolved bool, budget *int) (extra map[string]string, generator string) {
	service := lbls.Get("service")
	extra = map[string]string{}
	from, to := activeAt.Add(-l.window-time.Minute), now
	if resolved || to.Before(from) {
		to = now
		if activeAt.After(now) {
			to = activeAt
		}
	}
	kind := lbls.Get("kind")
	if service != "" {
		v := url.Values{}
		rangeParams(v, from, to)
		extra[AnnotationServiceURL] = l.base + "/services/" + url.PathEscape(service) + "?" + v.Encode()
		if kind == "" {
			q := l.search(lbls, ann)
			v := url.Values{}
			v.Set("service", service)
			if q.Operation != "" {
				v.Set("operation", q.Operation)
			}
			if q.ErrorsOnly {
				v.Set("errors", "true")
			}
			if q.MinDuration > 0 {
				v.Set("minDuration", q.MinDuration.String())
			}
			rangeParams(v, from, to)
			extra[AnnotationTracesURL] = l.base + "/traces?" + v.Encode()
		}
	}
	if kind != "" {
		v := url.Values{}
		if service != "" {
			v.Set("service", service)
		}
		extra[AnnotationHealthURL] = l.base + "/health?" + v.Encode()
	}
	if id := l.example(ctx, lbls, ann, activeAt, now, budget); id != "" {
		extra[AnnotationExampleTraceID] = id
		extra[AnnotationExampleTraceURL] = l.base + "/traces/" + id
	}
	generator = cmp.Or(extra[AnnotationExampleTraceURL], extra[AnnotationTracesURL], extra[AnnotationHealthURL], extra[AnnotationServiceURL], l.base+"/services")
	return extra, generator
}

// search is the trace search an alert's labels and annotations ask for.
func (l *linker) search(lbls, ann labels.Labels) spanstore.TraceQuery {
	q := spanstore.TraceQuery{Service: lbls.Get("service"), Operation: lbls.Get("endpoint")}
	switch ann.Get(AnnotationTraces) {
	case "errors":
		q.ErrorsOnly = true
	case "slow":
		if d, err := time.ParseDuration(ann.Get(AnnotationMinDuration)); err == nil {
			q.MinDuration = d
		}
	}
	return q
}

// example is the trace that best shows the alert: an integrity finding's
// example, or the worst trace of the service in the alert's window
// (failed first, then the slowest).
func (l *linker) example(ctx context.Context, lbls, ann labels.Labels, activeAt, now time.Time, budget *int) string {
	key := lbls.Hash()
	l.mu.Lock()
	e := l.cache[key]
	if e == nil || !e.activeAt.Equal(activeAt) {
		e = &example{activeAt: activeAt}
		l.cache[key] = e
	}
	e.seen = now
	// Look again at most every lookAgain while none was found (the
	// figures that fire an alert count a span as it arrives, before the
	// span store makes it searchable), never once one was.
	if e.traceID != "" || (!e.looked.IsZero() && now.Sub(e.looked) < lookAgain) || *budget <= 0 {
		id := e.traceID
		l.mu.Unlock()
		return id
	}
	*budget--
	e.looked = now
	l.mu.Unlock()

	id := l.lookUp(ctx, lbls, ann, activeAt, now)
	l.mu.Lock()
	e.traceID = id
	l.mu.Unlock()
	return id
}

func (l *linker) lookUp(ctx context.Context, lbls, ann labels.Labels, activeAt, now time.Time) string {
	service := lbls.Get("service")
	if kind := lbls.Get("kind"); kind != "" {
		if l.findings == nil {
			return ""
		}
		for _, f := range l.findings.Findings(service).Findings {
			if f.Kind == kind && (service == "" || f.Service == service) && len(f.Examples) > 0 {
				return f.Examples[0]
			}
		}
		return ""
	}
	if service == "" || l.traces == nil {
		return ""
	}
	q := l.search(lbls, ann)
	// The counters count a call when its span arrives: the calls behind
	// the alert began up to the rule's window before it went active (and a
	// long call, before that).
	q.Start, q.End, q.Limit = activeAt.Add(-l.window-time.Minute), now, 20
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	found, err := l.traces.FindTraces(ctx, q)
	if err != nil || len(found) == 0 {
		return ""
	}
	best := slices.MaxFunc(found, func(a, b spanstore.TraceSummary) int {
		if a.Error != b.Error {
			if a.Error {
				return 1
			}
			return -1
		}
		return cmp.Compare(a.Duration, b.Duration)
	})
	return best.TraceID
}

// forget drops examples not asked for in an hour (their alerts resolved).
func (l *linker) forget(now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for k, e := range l.cache {
		if now.Sub(e.seen) > time.Hour {
			delete(l.cache, k)
		}
	}
}
