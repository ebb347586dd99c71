package red

import (
	"errors"
	"sort"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
)

// Stats are one series' figures for one minute.
type Stats struct {
	Calls, Errors uint64
	// Satisfied and Tolerating count Apdex outcomes: a successful call
	// within the threshold T, and one within 4T. Failed calls are frustrated.
	Satisfied, Tolerating uint64
	Latency               Histogram
}

// Observe adds one call of the given duration in seconds; apdexT is the
// service's Apdex threshold in seconds.
func (s *Stats) Observe(seconds float64, failed bool, apdexT float64) {
	s.Calls++
	if failed {
		s.Errors++
	} else if seconds <= apdexT {
		s.Satisfied++
	} else if seconds <= 4*apdexT {
		s.Tolerating++
	}
	s.Latency.Observe(seconds)
}

// Pair keys instance and endpoint series: a service and one of its
// instances or endpoints.
type Pair struct{ Service, Name string }

// Node types of the service map.
const (
	NodeService  = "service"
	NodeUser     = "user"
	NodeDatabase = "database"
	NodeCache    = "cache"
	NodeMQ       = "mq"
	NodeExternal = "external"
)

// Edge keys a service-map edge: who called whom, what kind of node each
// side is, and for a virtual server node the system it runs (mysql, kafka).
type Edge struct {
	Client, Server         string
	ClientType, ServerType string
	System                 string
}

// Window holds one minute's figures, keyed by the series they become.
type Window struct {
	// End is the end of the minute in Unix milliseconds: samples are
	// stamped with it, so a range (t-d, t] holds exactly the minutes in it.
	End         int64
	Services    map[string]*Stats
	Instances   map[Pair]*Stats
	Endpoints   map[Pair]*Stats
	ClientEdges map[Edge]*Stats
	ServerEdges map[Edge]*Stats
}

func newWindow(end int64) *Window {
	return &Window{
		End:         end,
		Services:    map[string]*Stats{},
		Instances:   map[Pair]*Stats{},
		Endpoints:   map[Pair]*Stats{},
		ClientEdges: map[Edge]*Stats{},
		ServerEdges: map[Edge]*Stats{},
	}
}

// Service returns the figures of service, creating them.
func (w *Window) Service(service string) *Stats { return get(w.Services, service) }

// Instance returns the figures of one instance, creating them.
func (w *Window) Instance(k Pair) *Stats { return get(w.Instances, k) }

// Endpoint returns the figures of one endpoint, creating them.
func (w *Window) Endpoint(k Pair) *Stats { return get(w.Endpoints, k) }

// ClientEdge returns an edge's figures as its client saw them.
func (w *Window) ClientEdge(k Edge) *Stats { return get(w.ClientEdges, k) }

// ServerEdge returns an edge's figures as its server saw them.
func (w *Window) ServerEdge(k Edge) *Stats { return get(w.ServerEdges, k) }

func get[K comparable](m map[K]*Stats, k K) *Stats {
	s := m[k]
	if s == nil {
		s = &Stats{}
		m[k] = s
	}
	return s
}

// Metric names; docs/metrics.md describes each.
const (
	prefixService    = "skytrail_service_"
	prefixInstance   = "skytrail_instance_"
	prefixEndpoint   = "skytrail_endpoint_"
	prefixEdgeClient = "skytrail_edge_client_"
	prefixEdgeServer = "skytrail_edge_server_"
)

// Append writes the window's series into app (not committed). It returns
// how many samples it wrote and how many the TSDB refused as out of order
// or already written (a minute flushed at shutdown and seen again after a
// restart); those are skipped, any other error stops the write.
func (w *Window) Append(app storage.Appender) (written, refused int, err error) {
	check := func(err error) error {
		switch {
		case err == nil:
			written++
		case errors.Is(err, storage.ErrOutOfOrderSample), errors.Is(err, storage.ErrDuplicateSampleForTimestamp),
			errors.Is(err, storage.ErrOutOfBounds), errors.Is(err, storage.ErrTooOldSample):
			refused++
		default:
			return err
		}
		return nil
	}
	put := func(prefix string, s *Stats, apdex bool, kv ...string) error {
		series := []struct {
			name string
			v    uint64
		}{{"calls", s.Calls}, {"errors", s.Errors}, {"apdex_satisfied", s.Satisfied}, {"apdex_tolerating", s.Tolerating}}
		if !apdex {
			series = series[:2]
		}
		for _, f := range series {
			if _, err := app.Append(0, seriesLabels(prefix+f.name, kv), w.End, float64(f.v)); check(err) != nil {
				return err
			}
		}
		_, err := app.AppendHistogram(0, seriesLabels(prefix+"duration_seconds", kv), w.End, nil, s.Latency.Float())
		return check(err)
	}
	for name, s := range w.Services {
		if err := put(prefixService, s, true, "service", name); err != nil {
			return written, refused, err
		}
	}
	for k, s := range w.Instances {
		if err := put(prefixInstance, s, true, "service", k.Service, "instance", k.Name); err != nil {
			return written, refused, err
		}
	}
	for k, s := range w.Endpoints {
		if err := put(prefixEndpoint, s, true, "service", k.Service, "endpoint", k.Name); err != nil {
			return written, refused, err
		}
	}
	for k, s := range w.ClientEdges {
		if err := put(prefixEdgeClient, s, false, edgeLabels(k)...); err != nil {
			return written, refused, err
		}
	}
	for k, s := range w.ServerEdges {
		if err := put(prefixEdgeServer, s, false, edgeLabels(k)...); err != nil {
			return written, refused, err
		}
	}
	return written, refused, nil
}

func edgeLabels(k Edge) []string {
	kv := []string{"client", k.Client, "server", k.Server, "client_type", k.ClientType, "server_type", k.ServerType}
	if k.System != "" {
		kv = append(kv, "system", k.System)
	}
	return kv
}

func seriesLabels(name string, kv []string) labels.Labels {
	b := labels.NewScratchBuilder(len(kv)/2 + 1)
	b.Add(labels.MetricName, name)
	for i := 0; i+1 < len(kv); i += 2 {
		b.Add(kv[i], kv[i+1])
	}
	b.Sort()
	return b.Labels()
}

// Minutes keeps the open per-minute windows. It is not safe for concurrent
// use: the analyser guards it.
type Minutes struct {
	open map[int64]*Window
	// flushedThrough is the end of the newest window handed out for writing;
	// a span for an earlier minute is counted into the oldest open one.
	flushedThrough int64
	// Late counts spans that arrived after their minute was written.
	Late uint64
}

// NewMinutes returns an empty set of windows.
func NewMinutes() *Minutes { return &Minutes{open: map[int64]*Window{}} }

const minuteMs = 60_000

// MaxLate is how far behind the current minute a span may start and still
// count in its own minute; the metric store accepts samples that far out of
// order. Older spans count in the oldest minute allowed.
const MaxLate = 10 * minuteMs

// For returns the window for a span that started at startMs, seen at nowMs.
// Spans from the future (clock skew beyond a minute) count into the current
// minute; spans for a minute already written, or older than MaxLate, into
// the oldest one still allowed.
func (m *Minutes) For(startMs, nowMs int64) *Window {
	end := (startMs/minuteMs + 1) * minuteMs
	current := (nowMs/minuteMs + 1) * minuteMs
	if end > current+minuteMs {
		end = current
	}
	if floor := max(m.flushedThrough+minuteMs, current-MaxLate); end < floor {
		m.Late++
		end = floor
	}
	w := m.open[end]
	if w == nil {
		w = newWindow(end)
		m.open[end] = w
	}
	return w
}

// Due removes and returns, oldest first, the windows that ended at least
// delayMs before nowMs, or all of them when all is set.
func (m *Minutes) Due(nowMs, delayMs int64, all bool) []*Window {
	var due []*Window
	current := (nowMs/minuteMs + 1) * minuteMs
	for end, w := range m.open {
		if all || end+delayMs <= nowMs {
			due = append(due, w)
			delete(m.open, end)
			// A forced flush writes the current minute early; spans still
			// arriving for it stay in it (their samples are refused as
			// already written) rather than push later ones into the future.
			m.flushedThrough = max(m.flushedThrough, min(end, current-minuteMs))
		}
	}
	sort.Slice(due, func(i, j int) bool { return due[i].End < due[j].End })
	return due
}

// Len is the number of open windows.
func (m *Minutes) Len() int { return len(m.open) }
