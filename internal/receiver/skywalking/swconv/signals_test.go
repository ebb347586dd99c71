package swconv

import (
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"google.golang.org/protobuf/proto"
	commonv3 "skywalking.apache.org/repo/goapi/collect/common/v3"
	agentv3 "skywalking.apache.org/repo/goapi/collect/language/agent/v3"
	logv3 "skywalking.apache.org/repo/goapi/collect/logging/v3"
	managementv3 "skywalking.apache.org/repo/goapi/collect/management/v3"
)

func TestMeterHistogramBuckets(t *testing.T) {
	md := pmetric.NewMetrics()
	var s MeterStream
	err := s.Append(md, &agentv3.MeterData{Service: "a", Metric: &agentv3.MeterData_Histogram{Histogram: &agentv3.MeterHistogram{
		Name: "h", Values: []*agentv3.MeterBucketValue{
			{Bucket: 100, Count: 3}, {Bucket: 10, Count: 2}, {Bucket: 10, Count: 1}, {Bucket: 50, Count: -4}, nil,
		},
	}}}, time.Unix(100, 0))
	if err != nil {
		t.Fatal(err)
	}
	dp := md.ResourceMetrics().At(0).ScopeMetrics().At(0).Metrics().At(0).Histogram().DataPoints().At(0)
	// Sorted, repeated bound merged, negative count taken as 0; nothing below 10.
	if got := dp.ExplicitBounds().AsRaw(); len(got) != 3 || got[0] != 10 || got[1] != 50 || got[2] != 100 {
		t.Errorf("bounds = %v", got)
	}
	if got := dp.BucketCounts().AsRaw(); len(got) != 4 || got[0] != 0 || got[1] != 3 || got[2] != 0 || got[3] != 3 || dp.Count() != 6 {
		t.Errorf("counts = %v total %d", got, dp.Count())
	}
	if !dp.Timestamp().AsTime().Equal(time.Unix(100, 0)) {
		t.Errorf("timestamp %v, want the receive time for a meter without one", dp.Timestamp().AsTime())
	}
}

func TestMeterStreamNeedsAService(t *testing.T) {
	var s MeterStream
	err := s.Append(pmetric.NewMetrics(), &agentv3.MeterData{Metric: &agentv3.MeterData_SingleValue{SingleValue: &agentv3.MeterSingleValue{Name: "m"}}}, time.Now())
	if err == nil || !strings.Contains(err.Error(), `meter "m" has no service`) {
		t.Errorf("err = %v", err)
	}
}

func TestHeartbeats(t *testing.T) {
	at := time.Unix(1, 0)
	hb, err := PropertiesHeartbeat(&managementv3.InstanceProperties{Service: "a", ServiceInstance: "a-1", Properties: []*commonv3.KeyStringValuePair{
		{Key: "ipv4", Value: "10.0.0.1"}, {Key: "ipv4", Value: "10.0.0.2"}, {Key: "language", Value: "go"},
	}}, at)
	if err != nil || hb.Properties["ipv4"] != "10.0.0.1, 10.0.0.2" || hb.Protocol != "skywalking" || hb.At != at {
		t.Errorf("properties heartbeat = %+v, %v", hb, err)
	}
	hb, err = KeepAliveHeartbeat(&managementv3.InstancePingPkg{Service: "a", ServiceInstance: "a-1", Layer: "GENERAL"}, at)
	if err != nil || hb.Properties != nil || hb.Layer != "GENERAL" {
		t.Errorf("keep-alive heartbeat = %+v, %v", hb, err)
	}
	if _, err := KeepAliveHeartbeat(&managementv3.InstancePingPkg{ServiceInstance: "a-1"}, at); err == nil {
		t.Error("keep-alive without a service accepted")
	}
}

// FuzzConvertSignals feeds arbitrary bytes as a log, a meter collection and a
// Go runtime report: the conversion must reject or convert, never panic.
func FuzzConvertSignals(f *testing.F) {
	for _, m := range []proto.Message{
		&logv3.LogData{Service: "a", Body: &logv3.LogDataBody{Content: &logv3.LogDataBody_Yaml{Yaml: &logv3.YAMLLog{Yaml: "a: 1"}}}, TraceContext: &logv3.TraceContext{TraceId: "t", TraceSegmentId: "s", SpanId: -1}},
		&agentv3.MeterDataCollection{MeterData: []*agentv3.MeterData{{Service: "a", Timestamp: -5, Metric: &agentv3.MeterData_Histogram{Histogram: &agentv3.MeterHistogram{Name: "h", Values: []*agentv3.MeterBucketValue{{IsNegativeInfinity: true, Count: 1}}}}}}},
	} {
		b, err := proto.Marshal(m)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	now := time.Unix(1700000000, 0)
	f.Fuzz(func(t *testing.T, b []byte) {
		if md, err := GolangMetrics(b, now); err == nil && md.ResourceMetrics().Len() != 1 {
			t.Fatalf("Go runtime metrics in %d resources", md.ResourceMetrics().Len())
		}
		log := &logv3.LogData{}
		if proto.Unmarshal(b, log) == nil {
			_ = AppendLog(plog.NewLogs(), log, now)
		}
		coll := &agentv3.MeterDataCollection{}
		if proto.Unmarshal(b, coll) == nil {
			md := pmetric.NewMetrics()
			var s MeterStream
			for _, m := range coll.MeterData {
				_ = s.Append(md, m, now)
			}
			for _, rm := range md.ResourceMetrics().All() {
				for _, m := range rm.ScopeMetrics().At(0).Metrics().All() {
					if m.Type() != pmetric.MetricTypeHistogram {
						continue
					}
					dp := m.Histogram().DataPoints().At(0)
					if dp.BucketCounts().Len() != dp.ExplicitBounds().Len()+1 {
						t.Fatalf("%d counts for %d bounds", dp.BucketCounts().Len(), dp.ExplicitBounds().Len())
					}
				}
			}
		}
	})
}
