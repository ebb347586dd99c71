package metricstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/golang/snappy"
	promapi "github.com/prometheus/client_golang/api"
	v1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/exemplar"
	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/metadata"
	"github.com/prometheus/prometheus/prompb"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/util/annotations"
)

// ErrUnavailable wraps the errors of a remote metric store that did not
// answer, or answered that it could not (5xx, 429): the write or query may
// work when retried. Writes failing with it leave the analysis' minutes
// unwritten, to be written at its next tick; the query APIs answer 503
// with Retry-After.
var ErrUnavailable = errors.New("metric storage unavailable")

// NodeLabel is the label every series a SkyTrail node writes to a remote
// store carries, with the node's name as value: several nodes write the
// same services' figures, and each node's own series must not collide with
// another's (two samples of one series at one time would be one sample).
// Queries sum it away as any other label they do not group by.
const NodeLabel = "node"

// DefaultRemoteTimeout bounds one request to a remote metric store.
const DefaultRemoteTimeout = 10 * time.Second

// remoteStore is a Prometheus-compatible store reached over HTTP: figures
// are written with the remote-write protocol (prompb, snappy) and read
// back as raw samples through the PromQL HTTP API, which the local PromQL
// engine then evaluates as it does over the embedded TSDB.
type remoteStore struct {
	writeURL string
	node     string
	http     *http.Client
	api      v1.API
	timeout  time.Duration
	failures *prometheus.CounterVec
}

func newRemote(cfg Config) (*remoteStore, error) {
	if cfg.WriteURL == "" || cfg.QueryURL == "" {
		return nil, errors.New("a remote metric store needs both a write URL (remote write) and a query URL (PromQL HTTP API)")
	}
	for _, u := range []string{cfg.WriteURL, cfg.QueryURL} {
		p, err := url.Parse(u)
		if err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
			return nil, fmt.Errorf("remote metric store URL %q: want http(s)://host[:port][/path]", u)
		}
	}
	if cfg.Node == "" {
		return nil, errors.New("a remote metric store needs a node name for the node label")
	}
	timeout := cfg.RemoteTimeout
	if timeout <= 0 {
		timeout = DefaultRemoteTimeout
	}
	hc := &http.Client{Timeout: timeout}
	client, err := promapi.NewClient(promapi.Config{Address: strings.TrimSuffix(cfg.QueryURL, "/"), Client: hc})
	if err != nil {
		return nil, fmt.Errorf("remote metric store query URL %q: %w", cfg.QueryURL, err)
	}
	r := &remoteStore{writeURL: cfg.WriteURL, node: cfg.Node, http: hc, api: v1.NewAPI(client), timeout: timeout,
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "skytrail_metricstore_remote_failures_total",
			Help: "Requests to the remote metric store that failed, by operation (write: remote write, query: PromQL API).",
		}, []string{"op"}),
	}
	r.failures.WithLabelValues("write")
	r.failures.WithLabelValues("query")
	return r, nil
}

// write sends series in one remote-write request. Network failures, 5xx
// and 429 wrap ErrUnavailable; other refusals (4xx) are the request's own
// fault and are returned as they are.
func (r *remoteStore) write(ctx context.Context, series []prompb.TimeSeries) error {
	if len(series) == 0 {
		return nil
	}
	req := prompb.WriteRequest{Timeseries: series}
	raw, err := req.Marshal()
	if err != nil {
		return fmt.Errorf("encoding a remote write request: %w", err)
	}
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, r.writeURL, bytes.NewReader(snappy.Encode(nil, raw)))
	if err != nil {
		return fmt.Errorf("remote write to %s: %w", r.writeURL, err)
	}
	hreq.Header.Set("Content-Encoding", "snappy")
	hreq.Header.Set("Content-Type", "application/x-protobuf")
	hreq.Header.Set("X-Prometheus-Remote-Write-Version", "0.1.0")
	resp, err := r.http.Do(hreq)
	if err != nil {
		r.failures.WithLabelValues("write").Inc()
		return fmt.Errorf("%w: remote write to %s: %w", ErrUnavailable, r.writeURL, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 == 2 {
		_, _ = io.Copy(io.Discard, resp.Body)
		return nil
	}
	r.failures.WithLabelValues("write").Inc()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
	err = fmt.Errorf("remote write to %s answered %s: %s", r.writeURL, resp.Status, bytes.TrimSpace(body))
	if resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests {
		err = fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return err
}

// queryError marks an error of the PromQL API as ErrUnavailable unless the
// store refused the query itself (bad data, execution).
func (r *remoteStore) queryError(what string, err error) error {
	r.failures.WithLabelValues("query").Inc()
	var ae *v1.Error
	if errors.As(err, &ae) && (ae.Type == v1.ErrBadData || ae.Type == v1.ErrExec) {
		return fmt.Errorf("%s: %w", what, err)
	}
	return fmt.Errorf("%w: %s: %w", ErrUnavailable, what, err)
}

// selectRaw fetches the raw samples of the series matching ms in
// [mint, maxt] with a range-vector instant query, which every PromQL API
// (Prometheus, VictoriaMetrics, Mimir, Thanos) answers with the stored
// samples themselves. The window is a millisecond wider on each side than
// asked (the time parameter travels as float seconds) and cut back here.
func (r *remoteStore) selectRaw(ctx context.Context, mint, maxt int64, ms []*labels.Matcher) (model.Matrix, annotations.Annotations, error) {
	sel := selector(ms)
	q := fmt.Sprintf("%s[%dms]", sel, maxt-mint+2)
	v, warnings, _, err := r.api.Query(ctx, q, time.UnixMilli(maxt+1), v1.WithTimeout(r.timeout))
	if err != nil {
		return nil, nil, r.queryError(fmt.Sprintf("reading %s from the remote metric store", sel), err)
	}
	m, ok := v.(model.Matrix)
	if !ok {
		r.failures.WithLabelValues("query").Inc()
		return nil, nil, fmt.Errorf("reading %s from the remote metric store: answered a %s, not a range vector", sel, v.Type())
	}
	for _, s := range m {
		s.Values = slices.DeleteFunc(s.Values, func(p model.SamplePair) bool {
			t := int64(p.Timestamp)
			return t < mint || t > maxt
		})
	}
	return m, warningsOf(warnings), nil
}

// selector writes matchers as a PromQL series selector.
func selector(ms []*labels.Matcher) string {
	var b strings.Builder
	b.WriteByte('{')
	for i, m := range ms {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(m.String())
	}
	b.WriteByte('}')
	return b.String()
}

func toLabels(m model.Metric) labels.Labels {
	b := labels.NewScratchBuilder(len(m))
	for k, v := range m {
		b.Add(string(k), string(v))
	}
	b.Sort()
	return b.Labels()
}

func matcherStrings(ms []*labels.Matcher) []string {
	if len(ms) == 0 {
		return nil
	}
	return []string{selector(ms)}
}

// remoteQuerier reads a remote store's series between mint and maxt,
// native histograms reassembled from the parts they were written as.
type remoteQuerier struct {
	r          *remoteStore
	mint, maxt int64
}

func (q *remoteQuerier) Select(ctx context.Context, sortSeries bool, hints *storage.SelectHints, ms ...*labels.Matcher) storage.SeriesSet {
	mint, maxt := q.mint, q.maxt
	if hints != nil {
		mint, maxt = hints.Start, hints.End
	}
	name, idx := "", -1
	for i, m := range ms {
		if m.Name == labels.MetricName && m.Type == labels.MatchEqual {
			name, idx = m.Value, i
		}
	}
	fetch := ms
	if idx >= 0 {
		// The series of that name, and the parts of a histogram of that name.
		fetch = slices.Clone(ms)
		fetch[idx] = labels.MustNewMatcher(labels.MatchRegexp, labels.MetricName, partsRegexp(name))
	}
	m, ann, err := q.r.selectRaw(ctx, mint, maxt, fetch)
	if err != nil {
		return storage.ErrSeriesSet(err)
	}
	var out []storage.Series
	if idx >= 0 {
		out = assemble(name, m)
	} else {
		out = make([]storage.Series, 0, len(m))
		for _, s := range m {
			out = append(out, floatsOf(toLabels(s.Metric), s.Values))
		}
	}
	// The engine merges this set with the live sources' sorted sets: sorted
	// always.
	slices.SortFunc(out, func(a, b storage.Series) int { return labels.Compare(a.Labels(), b.Labels()) })
	return &listSet{series: out, warnings: ann}
}

func floatsOf(ls labels.Labels, vals []model.SamplePair) *floatSeries {
	s := &floatSeries{lbls: ls, samples: make([]floatSample, len(vals))}
	for i, p := range vals {
		s.samples[i] = floatSample{t: int64(p.Timestamp), f: float64(p.Value)}
	}
	return s
}

func (q *remoteQuerier) LabelValues(ctx context.Context, name string, _ *storage.LabelHints, ms ...*labels.Matcher) ([]string, annotations.Annotations, error) {
	vals, warnings, _, err := q.r.api.LabelValues(ctx, name, matcherStrings(ms), time.UnixMilli(q.mint), time.UnixMilli(q.maxt))
	if err != nil {
		return nil, nil, q.r.queryError("reading the values of label "+name+" from the remote metric store", err)
	}
	out := make([]string, len(vals))
	for i, v := range vals {
		out[i] = string(v)
	}
	slices.Sort(out)
	return out, warningsOf(warnings), nil
}

func (q *remoteQuerier) LabelNames(ctx context.Context, _ *storage.LabelHints, ms ...*labels.Matcher) ([]string, annotations.Annotations, error) {
	names, warnings, _, err := q.r.api.LabelNames(ctx, matcherStrings(ms), time.UnixMilli(q.mint), time.UnixMilli(q.maxt))
	if err != nil {
		return nil, nil, q.r.queryError("reading label names from the remote metric store", err)
	}
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = string(n)
	}
	slices.Sort(out)
	return out, warningsOf(warnings), nil
}

func (q *remoteQuerier) Close() error { return nil }

func warningsOf(ws v1.Warnings) annotations.Annotations {
	var ann annotations.Annotations
	for _, w := range ws {
		ann.Add(errors.New(w))
	}
	return ann
}

// remoteAppender gathers a transaction's samples and sends them in one
// remote-write request on Commit, each series labelled with the node. It
// is both the storage.Appender the analysis writes through and the
// storage.AppenderV2 of the rules engine and the agent metrics.
type remoteAppender struct {
	r      *remoteStore
	ctx    context.Context
	series []prompb.TimeSeries
	lb     *labels.Builder
}

func (r *remoteStore) appender(ctx context.Context) *remoteAppender {
	return &remoteAppender{r: r, ctx: ctx, lb: labels.NewBuilder(labels.EmptyLabels())}
}

// labelled is ls with the node label set (a label of that name already
// there is kept as exported_node, as Prometheus does for a target label).
func (a *remoteAppender) labelled(ls labels.Labels) labels.Labels {
	a.lb.Reset(ls)
	if v := ls.Get(NodeLabel); v != "" {
		a.lb.Set("exported_"+NodeLabel, v)
	}
	a.lb.Set(NodeLabel, a.r.node)
	return a.lb.Labels()
}

func (a *remoteAppender) addFloat(ls labels.Labels, t int64, v float64) {
	a.series = append(a.series, prompb.TimeSeries{
		Labels:  prompb.FromLabels(ls, nil),
		Samples: []prompb.Sample{{Timestamp: t, Value: v}},
	})
}

func (a *remoteAppender) Append(_ storage.SeriesRef, ls labels.Labels, t int64, v float64) (storage.SeriesRef, error) {
	a.addFloat(a.labelled(ls), t, v)
	return 0, nil
}

func (a *remoteAppender) AppendHistogram(_ storage.SeriesRef, ls labels.Labels, t int64, h *histogram.Histogram, fh *histogram.FloatHistogram) (storage.SeriesRef, error) {
	if fh == nil {
		fh = h.ToFloat(nil)
	}
	if fh.UsesCustomBuckets() {
		return 0, fmt.Errorf("storing %s in the remote metric store: histograms with custom buckets are not supported", ls.Get(labels.MetricName))
	}
	ls = a.labelled(ls)
	for _, p := range histogramParts(ls, fh) {
		a.addFloat(p.lbls, t, p.v)
	}
	return 0, nil
}

// Append of storage.AppenderV2.
func (a *remoteAppender) appendV2(ls labels.Labels, t int64, v float64, h *histogram.Histogram, fh *histogram.FloatHistogram) (storage.SeriesRef, error) {
	if h != nil || fh != nil {
		return a.AppendHistogram(0, ls, t, h, fh)
	}
	return a.Append(0, ls, t, v)
}

func (a *remoteAppender) Commit() error {
	series := a.series
	a.series = nil
	return a.r.write(a.ctx, series)
}

func (a *remoteAppender) Rollback() error {
	a.series = nil
	return nil
}

// v2 is the remote appender as a storage.AppenderV2.
type v2 struct{ *remoteAppender }

func (a v2) Append(_ storage.SeriesRef, ls labels.Labels, _, t int64, v float64, h *histogram.Histogram, fh *histogram.FloatHistogram, _ storage.AppendV2Options) (storage.SeriesRef, error) {
	return a.appendV2(ls, t, v, h, fh)
}

// Unused parts of storage.Appender: a remote store takes no exemplars or
// metadata from SkyTrail.
func (a *remoteAppender) SetOptions(*storage.AppendOptions) {}
func (a *remoteAppender) AppendExemplar(ref storage.SeriesRef, _ labels.Labels, _ exemplar.Exemplar) (storage.SeriesRef, error) {
	return ref, nil
}
func (a *remoteAppender) UpdateMetadata(ref storage.SeriesRef, _ labels.Labels, _ metadata.Metadata) (storage.SeriesRef, error) {
	return ref, nil
}

// AppendSTZeroSample writes the zero a counter starts from, at its start
// time st, as the TSDB does: rate() and increase() then count a new
// series' first calls.
func (a *remoteAppender) AppendSTZeroSample(ref storage.SeriesRef, ls labels.Labels, t, st int64) (storage.SeriesRef, error) {
	if st >= t {
		return ref, nil
	}
	return a.Append(ref, ls, st, 0)
}

// AppendHistogramSTZeroSample is AppendSTZeroSample for a histogram: an
// empty one of the same schema and zero threshold.
func (a *remoteAppender) AppendHistogramSTZeroSample(ref storage.SeriesRef, ls labels.Labels, t, st int64, h *histogram.Histogram, fh *histogram.FloatHistogram) (storage.SeriesRef, error) {
	if st >= t {
		return ref, nil
	}
	if fh == nil {
		fh = h.ToFloat(nil)
	}
	zero := &histogram.FloatHistogram{Schema: fh.Schema, ZeroThreshold: fh.ZeroThreshold, CustomValues: fh.CustomValues}
	return a.AppendHistogram(ref, ls, st, nil, zero)
}

// maxTime is the newest sample this node wrote of the analysis' per-minute
// service calls within the last hour (the minutes a restarted analysis
// must not write again), math.MinInt64 when there is none.
func (r *remoteStore) maxTime(ctx context.Context, now time.Time, name string) (int64, error) {
	ms := []*labels.Matcher{
		labels.MustNewMatcher(labels.MatchEqual, labels.MetricName, name),
		labels.MustNewMatcher(labels.MatchEqual, NodeLabel, r.node),
	}
	m, _, err := r.selectRaw(ctx, now.Add(-time.Hour).UnixMilli(), now.UnixMilli(), ms)
	if err != nil {
		return math.MinInt64, err
	}
	t := int64(math.MinInt64)
	for _, s := range m {
		if n := len(s.Values); n > 0 {
			t = max(t, int64(s.Values[n-1].Timestamp))
		}
	}
	return t, nil
}
