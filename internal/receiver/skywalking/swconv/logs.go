package swconv

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	eventv3 "skywalking.apache.org/repo/goapi/collect/event/v3"
	logv3 "skywalking.apache.org/repo/goapi/collect/logging/v3"

	"github.com/skytrail/skytrail/internal/traceid"
)

// Log record attributes beyond the tags (kept as sent) and sw.trace_id,
// sw.segment_id, sw.span_id (the trace context as the agent sent it; the
// record's trace and span IDs are mapped the same way as spans').
const (
	AttrEndpoint     = "sw.endpoint"      // LogData.endpoint, Event.source.endpoint
	AttrServiceLayer = "sw.service_layer" // LogData.layer / Event.layer (GENERAL, MESH, ...)
	AttrBodyType     = "sw.body_type"     // text, json or yaml
	AttrEventUUID    = "sw.event.uuid"
	AttrEventName    = "sw.event.name"
	AttrEventType    = "sw.event.type" // Normal or Error
	AttrEventEndTime = "sw.event.end_time_unix_ms"
	// EventScopeName is the scope of log records converted from EventService events.
	EventScopeName = "skywalking.event"
	logLevelTag    = "level"
)

// AppendLog appends one SkyWalking log to ld. Consecutive logs of the same
// service instance share one ResourceLogs. A log without a service is
// rejected.
func AppendLog(ld plog.Logs, log *logv3.LogData, observed time.Time) error {
	if log == nil {
		return fmt.Errorf("empty log")
	}
	if log.Service == "" {
		return fmt.Errorf("log from instance %q has no service", log.ServiceInstance)
	}
	rec := resourceLogs(ld, log.Service, log.ServiceInstance, ScopeName).AppendEmpty()
	rec.SetObservedTimestamp(pcommon.NewTimestampFromTime(observed))
	if ts, ok := agentTime(log.Timestamp); ok {
		rec.SetTimestamp(ts)
	}
	attrs := rec.Attributes()
	if log.Tags != nil {
		attrs.EnsureCapacity(len(log.Tags.Data) + 6)
		var problems []string
		putTags(attrs, log.Tags.Data, &problems)
		if len(problems) > 0 {
			attrs.PutStr(AttrProblem, strings.Join(problems, "; "))
		}
		if v, ok := attrs.Get(logLevelTag); ok {
			rec.SetSeverityText(v.AsString())
		}
	}
	if body := log.Body; body != nil {
		switch c := body.Content.(type) {
		case *logv3.LogDataBody_Text:
			rec.Body().SetStr(c.Text.GetText())
			attrs.PutStr(AttrBodyType, "text")
		case *logv3.LogDataBody_Json:
			rec.Body().SetStr(c.Json.GetJson())
			attrs.PutStr(AttrBodyType, "json")
		case *logv3.LogDataBody_Yaml:
			rec.Body().SetStr(c.Yaml.GetYaml())
			attrs.PutStr(AttrBodyType, "yaml")
		}
	}
	if tc := log.TraceContext; tc != nil && tc.TraceId != "" {
		if id, ok := traceid.FromString(tc.TraceId); ok {
			rec.SetTraceID(id)
		}
		attrs.PutStr(AttrTraceID, tc.TraceId)
		if tc.TraceSegmentId != "" {
			rec.SetSpanID(traceid.SpanIDFromSegment(tc.TraceSegmentId, tc.SpanId))
			attrs.PutStr(AttrSegmentID, tc.TraceSegmentId)
			attrs.PutInt(AttrSpanID, int64(tc.SpanId))
		}
	}
	if log.Endpoint != "" {
		attrs.PutStr(AttrEndpoint, log.Endpoint)
	}
	if log.Layer != "" {
		attrs.PutStr(AttrServiceLayer, log.Layer)
	}
	return nil
}

// AppendEvent appends one EventService event (an agent's Start or Shutdown,
// say) to ld as a log record whose body is the event's message. An event
// without a source service is rejected.
func AppendEvent(ld plog.Logs, ev *eventv3.Event, observed time.Time) error {
	if ev == nil {
		return fmt.Errorf("empty event")
	}
	src := ev.Source
	if src.GetService() == "" {
		return fmt.Errorf("event %q (%s) has no source service", ev.Name, ev.Uuid)
	}
	rec := resourceLogs(ld, src.Service, src.ServiceInstance, EventScopeName).AppendEmpty()
	rec.SetObservedTimestamp(pcommon.NewTimestampFromTime(observed))
	if ts, ok := agentTime(ev.StartTime); ok {
		rec.SetTimestamp(ts)
	}
	rec.Body().SetStr(ev.Message)
	attrs := rec.Attributes()
	attrs.EnsureCapacity(len(ev.Parameters) + 6)
	for k, v := range ev.Parameters {
		attrs.PutStr(k, v)
	}
	attrs.PutStr(AttrEventUUID, ev.Uuid)
	attrs.PutStr(AttrEventName, ev.Name)
	switch ev.Type {
	case eventv3.Type_Normal:
		attrs.PutStr(AttrEventType, "Normal")
	case eventv3.Type_Error:
		attrs.PutStr(AttrEventType, "Error")
		rec.SetSeverityNumber(plog.SeverityNumberError)
	default:
		attrs.PutStr(AttrEventType, strconv.Itoa(int(ev.Type)))
	}
	if ev.EndTime > 0 {
		attrs.PutInt(AttrEventEndTime, ev.EndTime)
	}
	if src.Endpoint != "" {
		attrs.PutStr(AttrEndpoint, src.Endpoint)
	}
	if ev.Layer != "" {
		attrs.PutStr(AttrServiceLayer, ev.Layer)
	}
	return nil
}

// resourceLogs returns the record slice to append to for service/instance:
// the last ResourceLogs' when it is the same instance and scope, a new one
// otherwise.
func resourceLogs(ld plog.Logs, service, instance, scope string) plog.LogRecordSlice {
	rls := ld.ResourceLogs()
	if n := rls.Len(); n > 0 {
		last := rls.At(n - 1)
		sls := last.ScopeLogs()
		if sameInstance(last.Resource().Attributes(), service, instance) && sls.Len() > 0 && sls.At(sls.Len()-1).Scope().Name() == scope {
			return sls.At(sls.Len() - 1).LogRecords()
		}
	}
	rl := rls.AppendEmpty()
	putResource(rl.Resource().Attributes(), service, instance)
	sl := rl.ScopeLogs().AppendEmpty()
	sl.Scope().SetName(scope)
	return sl.LogRecords()
}

// putResource writes the resource attributes every converted signal carries.
func putResource(res pcommon.Map, service, instance string) {
	res.EnsureCapacity(3)
	res.PutStr(attrServiceName, service)
	if instance != "" {
		res.PutStr(attrServiceInstanceID, instance)
	}
	res.PutStr(attrSDKName, SDKName)
}

func sameInstance(res pcommon.Map, service, instance string) bool {
	s, _ := res.Get(attrServiceName)
	i, ok := res.Get(attrServiceInstanceID)
	if !ok {
		return s.Str() == service && instance == ""
	}
	return s.Str() == service && i.Str() == instance
}
