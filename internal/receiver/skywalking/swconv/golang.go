package swconv

import (
	"fmt"
	"time"

	"go.opentelemetry.io/collector/pdata/pmetric"
	"google.golang.org/protobuf/encoding/protowire"
)

// golangMetricNames names the int64 fields 2..9 of GolangMetric as gauges;
// field 1 is the time (ms).
var golangMetricNames = [...]string{
	2: "instance_golang_heap_alloc",
	3: "instance_golang_stack_used",
	4: "instance_golang_gc_num",
	5: "instance_golang_gc_pause_time",
	6: "instance_golang_goroutine_num",
	7: "instance_golang_thread_num",
	8: "instance_golang_cpu_used_rate",
	9: "instance_golang_mem_used_rate",
}

// GolangMetrics converts a wire-encoded GolangMetricCollection (the Go
// runtime report of GolangMetricReportService, newer than the goapi module
// SkyTrail pins, hence decoded here by hand) into gauges named
// instance_golang_<field>. A collection without a service is rejected.
//
//	message GolangMetricCollection { repeated GolangMetric metrics = 1; string service = 2; string serviceInstance = 3; }
//	message GolangMetric { int64 time = 1; int64 heapAlloc = 2; int64 stackInUse = 3; int64 gcNum = 4;
//	  int64 gcPauseTime = 5; int64 goroutineNum = 6; int64 threadNum = 7; int64 cpuUsedRate = 8; int64 memUsedRate = 9; }
func GolangMetrics(raw []byte, observed time.Time) (pmetric.Metrics, error) {
	var service, instance string
	var reports [][]byte
	err := eachField(raw, func(num protowire.Number, typ protowire.Type, _ uint64, b []byte) {
		switch {
		case num == 1 && typ == protowire.BytesType:
			reports = append(reports, b)
		case num == 2 && typ == protowire.BytesType:
			service = string(b)
		case num == 3 && typ == protowire.BytesType:
			instance = string(b)
		}
	})
	if err != nil {
		return pmetric.Metrics{}, fmt.Errorf("decoding GolangMetricCollection: %w", err)
	}
	if service == "" {
		return pmetric.Metrics{}, fmt.Errorf("Go runtime metrics from instance %q have no service", instance)
	}
	md := pmetric.NewMetrics()
	metrics := resourceMetrics(md, service, instance)
	for _, report := range reports {
		var values [len(golangMetricNames)]int64
		var seen [len(golangMetricNames)]bool
		err := eachField(report, func(num protowire.Number, typ protowire.Type, v uint64, _ []byte) {
			if typ == protowire.VarintType && num >= 1 && int(num) < len(values) {
				values[num], seen[num] = int64(v), true
			}
		})
		if err != nil {
			return pmetric.Metrics{}, fmt.Errorf("decoding GolangMetric: %w", err)
		}
		ts := agentTimeOr(values[1], observed)
		g := gaugeWriter{metrics: metrics, ts: ts}
		for num := 2; num < len(values); num++ {
			if seen[num] {
				g.put(golangMetricNames[num], float64(values[num]), "", "")
			}
		}
	}
	return md, nil
}

// eachField walks the top-level fields of a protobuf message, handing each
// varint's value or length-delimited field's bytes to f.
func eachField(b []byte, f func(num protowire.Number, typ protowire.Type, v uint64, bytes []byte)) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return protowire.ParseError(n)
		}
		b = b[n:]
		var v uint64
		var bytes []byte
		switch typ {
		case protowire.VarintType:
			v, n = protowire.ConsumeVarint(b)
		case protowire.BytesType:
			bytes, n = protowire.ConsumeBytes(b)
		default:
			n = protowire.ConsumeFieldValue(num, typ, b)
		}
		if n < 0 {
			return protowire.ParseError(n)
		}
		b = b[n:]
		f(num, typ, v, bytes)
	}
	return nil
}
