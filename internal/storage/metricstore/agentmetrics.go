package metricstore

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/skytrail/skytrail/internal/pipeline"
)

// AgentMetricPrefix starts the name of every metric an agent reported
// (SkyWalking meters, the Go runtime figures skywalking-go sends), keeping
// them apart from SkyTrail's own skytrail_* series.
const AgentMetricPrefix = "agent_"

// ConsumeMetrics stores agent-reported metrics (implements
// pipeline.MetricsConsumer): a gauge or sum as one sample, a histogram as
// Prometheus classic buckets (_bucket with le, _count, _sum). Labels are
// service, instance and the data point's attributes. Samples the TSDB
// refuses as out of order or duplicate are skipped: an agent resending a
// minute must not fail the request. While the disk is too full nothing is
// written and the error wraps ErrDiskFull; a failed commit returns its error
// too, and both are retryable for the agent.
func (s *Store) ConsumeMetrics(ctx context.Context, md pipeline.Metrics) error {
	if err := s.Writable(); err != nil {
		return err
	}
	app := s.Appender(ctx)
	var errs []error
	add := func(name string, base []string, extra []string, ts pcommon.Timestamp, v float64) {
		b := labels.NewScratchBuilder(len(base)/2 + len(extra)/2 + 1)
		b.Add(labels.MetricName, name)
		for _, kv := range [][]string{base, extra} {
			for i := 0; i+1 < len(kv); i += 2 {
				b.Add(kv[i], kv[i+1])
			}
		}
		b.Sort()
		_, err := app.Append(0, b.Labels(), int64(ts)/1e6, v)
		if err != nil && !errors.Is(err, storage.ErrOutOfOrderSample) && !errors.Is(err, storage.ErrDuplicateSampleForTimestamp) &&
			!errors.Is(err, storage.ErrOutOfBounds) && !errors.Is(err, storage.ErrTooOldSample) {
			errs = append(errs, fmt.Errorf("store %s: %w", name, err))
		}
	}
	rms := md.ResourceMetrics()
	for i := 0; i < rms.Len(); i++ {
		base := []string{"service", md.Resources[i].Service}
		if inst := md.Resources[i].Instance; inst != "" {
			base = append(base, "instance", inst)
		}
		sms := rms.At(i).ScopeMetrics()
		for j := 0; j < sms.Len(); j++ {
			ms := sms.At(j).Metrics()
			for k := 0; k < ms.Len(); k++ {
				m := ms.At(k)
				name := AgentMetricPrefix + sanitize(m.Name())
				switch m.Type() {
				case pmetric.MetricTypeGauge:
					dps := m.Gauge().DataPoints()
					for d := 0; d < dps.Len(); d++ {
						add(name, base, attrLabels(dps.At(d).Attributes()), dps.At(d).Timestamp(), numberValue(dps.At(d)))
					}
				case pmetric.MetricTypeSum:
					dps := m.Sum().DataPoints()
					for d := 0; d < dps.Len(); d++ {
						add(name, base, attrLabels(dps.At(d).Attributes()), dps.At(d).Timestamp(), numberValue(dps.At(d)))
					}
				case pmetric.MetricTypeHistogram:
					dps := m.Histogram().DataPoints()
					for d := 0; d < dps.Len(); d++ {
						dp := dps.At(d)
						extra := attrLabels(dp.Attributes())
						var cumulative uint64
						for b := 0; b < dp.BucketCounts().Len(); b++ {
							cumulative += dp.BucketCounts().At(b)
							le := "+Inf"
							if b < dp.ExplicitBounds().Len() {
								le = strconv.FormatFloat(dp.ExplicitBounds().At(b), 'g', -1, 64)
							}
							add(name+"_bucket", base, append(extra, "le", le), dp.Timestamp(), float64(cumulative))
						}
						add(name+"_count", base, extra, dp.Timestamp(), float64(dp.Count()))
						if dp.HasSum() {
							add(name+"_sum", base, extra, dp.Timestamp(), dp.Sum())
						}
					}
				}
			}
		}
	}
	if len(errs) > 0 {
		_ = app.Rollback()
		return errors.Join(errs...)
	}
	if err := app.Commit(); err != nil {
		return fmt.Errorf("storing %d agent metric data points: %w", md.DataPointCount(), err)
	}
	return nil
}

func numberValue(dp pmetric.NumberDataPoint) float64 {
	if dp.ValueType() == pmetric.NumberDataPointValueTypeInt {
		return float64(dp.IntValue())
	}
	return dp.DoubleValue()
}

// attrLabels turns data point attributes into label pairs; names that clash
// with the reserved ones get a label_ prefix, and a second attribute that
// sanitizes to a name already taken is dropped (a series cannot repeat a
// label name).
func attrLabels(m pcommon.Map) []string {
	var out []string
	seen := map[string]bool{}
	m.Range(func(k string, v pcommon.Value) bool {
		name := sanitize(k)
		if name == "service" || name == "instance" || name == "le" || name == labels.MetricName {
			name = "label_" + name
		}
		if !seen[name] {
			seen[name] = true
			out = append(out, name, v.AsString())
		}
		return true
	})
	return out
}

// sanitize maps a name onto Prometheus' [a-zA-Z_][a-zA-Z0-9_]*.
func sanitize(s string) string {
	var b strings.Builder
	for i, r := range s {
		switch {
		case r == '_' || (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z'):
			b.WriteRune(r)
		case r >= '0' && r <= '9':
			if i == 0 {
				b.WriteByte('_')
			}
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
	}
	if b.Len() == 0 {
		return "unnamed"
	}
	return b.String()
}
