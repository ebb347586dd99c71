package swconv

import (
	"fmt"
	"math"
	"slices"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	agentv3 "skywalking.apache.org/repo/goapi/collect/language/agent/v3"
)

// MeterStream carries what the SkyWalking meter protocol sends only once:
// service, instance and timestamp are set in the first MeterData of a stream
// or collection and hold for the ones after it. Its zero value starts a new
// stream.
type MeterStream struct {
	service, instance string
	timestamp         int64
}

// Append appends one meter to md: a single value as a gauge, a histogram as a
// cumulative explicit-bucket histogram. Consecutive meters of one instance
// share a ResourceMetrics. A meter with no service (here or earlier in the
// stream), no name or no value is rejected.
//
// SkyWalking's buckets are lower bounds with per-bucket counts ([b0,b1),
// [b1,b2), ... [bn,+inf)); OpenTelemetry's explicit bounds are upper bounds.
// Bounds b0..bn give n+2 OpenTelemetry buckets: (-inf,b0] holds nothing
// unless the first SkyWalking bucket is the negative-infinity one, whose
// count it takes.
func (s *MeterStream) Append(md pmetric.Metrics, m *agentv3.MeterData, observed time.Time) error {
	if m == nil {
		return fmt.Errorf("empty meter")
	}
	if m.Service != "" {
		s.service, s.instance = m.Service, m.ServiceInstance
	}
	if m.Timestamp > 0 {
		s.timestamp = m.Timestamp
	}
	if s.service == "" {
		return fmt.Errorf("meter %q has no service and none came before it in the stream", meterName(m))
	}
	ts := agentTimeOr(s.timestamp, observed)
	switch v := m.Metric.(type) {
	case *agentv3.MeterData_SingleValue:
		if v.SingleValue.GetName() == "" {
			return fmt.Errorf("single-value meter of service %q has no name", s.service)
		}
		metric := resourceMetrics(md, s.service, s.instance).AppendEmpty()
		metric.SetName(v.SingleValue.Name)
		dp := metric.SetEmptyGauge().DataPoints().AppendEmpty()
		dp.SetTimestamp(ts)
		dp.SetDoubleValue(v.SingleValue.Value)
		putLabels(dp.Attributes(), v.SingleValue.Labels)
	case *agentv3.MeterData_Histogram:
		if v.Histogram.GetName() == "" {
			return fmt.Errorf("histogram meter of service %q has no name", s.service)
		}
		metric := resourceMetrics(md, s.service, s.instance).AppendEmpty()
		metric.SetName(v.Histogram.Name)
		h := metric.SetEmptyHistogram()
		h.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
		dp := h.DataPoints().AppendEmpty()
		dp.SetTimestamp(ts)
		putLabels(dp.Attributes(), v.Histogram.Labels)
		putBuckets(dp, v.Histogram.Values)
	default:
		return fmt.Errorf("meter of service %q has neither singleValue nor histogram", s.service)
	}
	return nil
}

func putBuckets(dp pmetric.HistogramDataPoint, values []*agentv3.MeterBucketValue) {
	buckets := make([]*agentv3.MeterBucketValue, 0, len(values))
	var negInf, posInf uint64
	for _, b := range values {
		switch {
		case b == nil, math.IsNaN(b.Bucket):
		case b.IsNegativeInfinity, math.IsInf(b.Bucket, -1):
			negInf += nonNegative(b.Count)
		case math.IsInf(b.Bucket, 1):
			// Nothing is above +Inf: its count belongs with the top bucket.
			posInf += nonNegative(b.Count)
		default:
			buckets = append(buckets, b)
		}
	}
	slices.SortStableFunc(buckets, func(a, b *agentv3.MeterBucketValue) int {
		switch {
		case a.Bucket < b.Bucket:
			return -1
		case a.Bucket > b.Bucket:
			return 1
		}
		return 0
	})
	bounds := dp.ExplicitBounds()
	counts := dp.BucketCounts()
	bounds.EnsureCapacity(len(buckets))
	counts.EnsureCapacity(len(buckets) + 1)
	counts.Append(negInf)
	total := negInf
	for _, b := range buckets {
		c := nonNegative(b.Count)
		if n := bounds.Len(); n > 0 && bounds.At(n-1) == b.Bucket {
			// A repeated bound adds to its bucket instead of making an empty one.
			counts.SetAt(counts.Len()-1, counts.At(counts.Len()-1)+c)
		} else {
			bounds.Append(b.Bucket)
			counts.Append(c)
		}
		total += c
	}
	counts.SetAt(counts.Len()-1, counts.At(counts.Len()-1)+posInf)
	dp.SetCount(total + posInf)
}

func nonNegative(n int64) uint64 {
	if n < 0 {
		return 0
	}
	return uint64(n)
}

func putLabels(attrs pcommon.Map, labels []*agentv3.Label) {
	attrs.EnsureCapacity(len(labels))
	for _, l := range labels {
		if l != nil {
			attrs.PutStr(l.Name, l.Value)
		}
	}
}

func meterName(m *agentv3.MeterData) string {
	if n := m.GetSingleValue().GetName(); n != "" {
		return n
	}
	return m.GetHistogram().GetName()
}

// resourceMetrics returns the metric slice to append to for service/instance,
// reusing the last ResourceMetrics when it is the same instance.
func resourceMetrics(md pmetric.Metrics, service, instance string) pmetric.MetricSlice {
	rms := md.ResourceMetrics()
	if n := rms.Len(); n > 0 {
		last := rms.At(n - 1)
		if sameInstance(last.Resource().Attributes(), service, instance) && last.ScopeMetrics().Len() > 0 {
			return last.ScopeMetrics().At(0).Metrics()
		}
	}
	rm := rms.AppendEmpty()
	putResource(rm.Resource().Attributes(), service, instance)
	sm := rm.ScopeMetrics().AppendEmpty()
	sm.Scope().SetName(ScopeName)
	return sm.Metrics()
}
