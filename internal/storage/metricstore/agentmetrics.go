package metricstore

import (
	"context"
	"errors"
	"fmt"

	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/storage/remote/otlptranslator/prometheusremotewrite"

	"github.com/skytrail/skytrail/internal/pipeline"
)

// AgentMetricPrefix starts the name of every metric an agent reported
// (OTLP metrics, SkyWalking meters, the Go runtime figures skywalking-go
// sends), keeping them apart from SkyTrail's own skytrail_* series.
const AgentMetricPrefix = "agent_"

// agentSettings translate OTLP metrics as Prometheus' own OTLP receiver
// does (names with unit and _total suffixes, classic histogram buckets,
// exponential histograms as native ones, summaries as quantiles), under
// the agent_ prefix, and take delta sums and histograms as they come.
var agentSettings = prometheusremotewrite.Settings{
	Namespace:             "agent",
	AddMetricSuffixes:     true,
	AllowDeltaTemporality: true,
	DisableTargetInfo:     true,
	LookbackDelta:         LookbackDelta,
}

// ConsumeMetrics stores agent-reported metrics (implements
// pipeline.MetricsConsumer), translated by Prometheus' OTLP converter:
// agent_<name>{service, instance, ...attributes}. Samples the TSDB refuses
// as out of order or duplicate are skipped: an agent resending a minute
// must not fail the request. While the disk is too full nothing is written
// and the error wraps ErrDiskFull; a failed commit returns its error too,
// and both are retryable for the agent.
func (s *Store) ConsumeMetrics(ctx context.Context, md pipeline.Metrics) error {
	if err := s.Writable(); err != nil {
		return err
	}
	app := &agentAppender{AppenderV2: s.AppenderV2(ctx)}
	_, err := prometheusremotewrite.NewPrometheusConverter(app).FromMetrics(ctx, md.Metrics, agentSettings)
	if err = errors.Join(err, app.err); err != nil {
		_ = app.Rollback()
		return fmt.Errorf("store agent metrics: %w", err)
	}
	return app.Commit()
}

// agentAppender names the service of a series as SkyTrail's own figures do
// (service, where the converter writes Prometheus' job), and skips samples
// the TSDB has already, or has for later times, as a resent batch holds.
type agentAppender struct {
	storage.AppenderV2
	err error
}

func (a *agentAppender) Append(ref storage.SeriesRef, ls labels.Labels, st, t int64, v float64, h *histogram.Histogram, fh *histogram.FloatHistogram, opts storage.AppendV2Options) (storage.SeriesRef, error) {
	if job := ls.Get("job"); job != "" {
		b := labels.NewBuilder(ls)
		b.Del("job")
		b.Set("service", job)
		ls = b.Labels()
	}
	ref, err := a.AppenderV2.Append(ref, ls, st, t, v, h, fh, opts)
	switch {
	case err == nil:
	case errors.Is(err, storage.ErrOutOfOrderSample), errors.Is(err, storage.ErrDuplicateSampleForTimestamp),
		errors.Is(err, storage.ErrOutOfBounds), errors.Is(err, storage.ErrTooOldSample):
	default:
		// Kept here, not returned: the converter goes on with the rest, and
		// ConsumeMetrics fails the whole batch, written nothing of it.
		a.err = errors.Join(a.err, fmt.Errorf("store %s: %w", ls.Get(labels.MetricName), err))
	}
	return ref, nil
}
