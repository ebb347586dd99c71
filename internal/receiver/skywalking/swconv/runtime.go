package swconv

import (
	"fmt"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	agentv3 "skywalking.apache.org/repo/goapi/collect/language/agent/v3"
)

// AppendJVMMetrics appends the Java agent's periodic JVM report as gauges:
//
//	jvm_cpu_usage_percent
//	jvm_memory_{init,max,used,committed}_bytes  {area=heap|nonheap}
//	jvm_memory_pool_{init,max,used,committed}_bytes  {pool=NEWGEN_USAGE|...}
//	jvm_gc_count, jvm_gc_time_ms  {phase=NEW|OLD|NORMAL}  (per report interval)
//	jvm_threads  {state=live|daemon|peak|runnable|blocked|waiting|timed_waiting}
//	jvm_classes  {kind=loaded|total_loaded|total_unloaded}
//
// A collection without a service is rejected.
func AppendJVMMetrics(md pmetric.Metrics, c *agentv3.JVMMetricCollection, observed time.Time) error {
	if c.GetService() == "" {
		return fmt.Errorf("JVM metrics from instance %q have no service", c.GetServiceInstance())
	}
	metrics := resourceMetrics(md, c.Service, c.ServiceInstance)
	for _, m := range c.Metrics {
		if m == nil {
			continue
		}
		g := gaugeWriter{metrics: metrics, ts: agentTimeOr(m.Time, observed)}
		if m.Cpu != nil {
			g.put("jvm_cpu_usage_percent", m.Cpu.UsagePercent, "", "")
		}
		for _, mem := range m.Memory {
			if mem == nil {
				continue
			}
			area := "nonheap"
			if mem.IsHeap {
				area = "heap"
			}
			g.putUsage("jvm_memory_", "area", area, mem.Init, mem.Max, mem.Used, mem.Committed)
		}
		for _, pool := range m.MemoryPool {
			if pool != nil {
				g.putUsage("jvm_memory_pool_", "pool", pool.Type.String(), pool.Init, pool.Max, pool.Used, pool.Committed)
			}
		}
		for _, gc := range m.Gc {
			if gc == nil {
				continue
			}
			g.put("jvm_gc_count", float64(gc.Count), "phase", gc.Phase.String())
			g.put("jvm_gc_time_ms", float64(gc.Time), "phase", gc.Phase.String())
		}
		if t := m.Thread; t != nil {
			for state, n := range map[string]int64{
				"live": t.LiveCount, "daemon": t.DaemonCount, "peak": t.PeakCount,
				"runnable": t.RunnableStateThreadCount, "blocked": t.BlockedStateThreadCount,
				"waiting": t.WaitingStateThreadCount, "timed_waiting": t.TimedWaitingStateThreadCount,
			} {
				g.put("jvm_threads", float64(n), "state", state)
			}
		}
		if cl := m.Clazz; cl != nil {
			g.put("jvm_classes", float64(cl.LoadedClassCount), "kind", "loaded")
			g.put("jvm_classes", float64(cl.TotalLoadedClassCount), "kind", "total_loaded")
			g.put("jvm_classes", float64(cl.TotalUnloadedClassCount), "kind", "total_unloaded")
		}
	}
	return nil
}

type gaugeWriter struct {
	metrics pmetric.MetricSlice
	ts      pcommon.Timestamp
}

// put appends a gauge with one data point, labelled key=value when key is set.
func (g gaugeWriter) put(name string, v float64, key, value string) {
	m := g.metrics.AppendEmpty()
	m.SetName(name)
	dp := m.SetEmptyGauge().DataPoints().AppendEmpty()
	dp.SetTimestamp(g.ts)
	dp.SetDoubleValue(v)
	if key != "" {
		dp.Attributes().PutStr(key, value)
	}
}

func (g gaugeWriter) putUsage(prefix, key, value string, init, maxBytes, used, committed int64) {
	g.put(prefix+"init_bytes", float64(init), key, value)
	g.put(prefix+"max_bytes", float64(maxBytes), key, value)
	g.put(prefix+"used_bytes", float64(used), key, value)
	g.put(prefix+"committed_bytes", float64(committed), key, value)
}

// AppendCLRMetrics appends the .NET agent's periodic CLR report as gauges:
//
//	clr_cpu_usage_percent
//	clr_gc_count {generation=0|1|2}
//	clr_heap_memory_bytes
//	clr_threads {kind=available_completion_port|available_worker|max_completion_port|max_worker}
//
// A collection without a service is rejected.
func AppendCLRMetrics(md pmetric.Metrics, c *agentv3.CLRMetricCollection, observed time.Time) error {
	if c.GetService() == "" {
		return fmt.Errorf("CLR metrics from instance %q have no service", c.GetServiceInstance())
	}
	metrics := resourceMetrics(md, c.Service, c.ServiceInstance)
	for _, m := range c.Metrics {
		if m == nil {
			continue
		}
		g := gaugeWriter{metrics: metrics, ts: agentTimeOr(m.Time, observed)}
		if m.Cpu != nil {
			g.put("clr_cpu_usage_percent", m.Cpu.UsagePercent, "", "")
		}
		if gc := m.Gc; gc != nil {
			g.put("clr_gc_count", float64(gc.Gen0CollectCount), "generation", "0")
			g.put("clr_gc_count", float64(gc.Gen1CollectCount), "generation", "1")
			g.put("clr_gc_count", float64(gc.Gen2CollectCount), "generation", "2")
			g.put("clr_heap_memory_bytes", float64(gc.HeapMemory), "", "")
		}
		if t := m.Thread; t != nil {
			g.put("clr_threads", float64(t.AvailableCompletionPortThreads), "kind", "available_completion_port")
			g.put("clr_threads", float64(t.AvailableWorkerThreads), "kind", "available_worker")
			g.put("clr_threads", float64(t.MaxCompletionPortThreads), "kind", "max_completion_port")
			g.put("clr_threads", float64(t.MaxWorkerThreads), "kind", "max_worker")
		}
	}
	return nil
}
