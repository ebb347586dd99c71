package query

import (
	"encoding/hex"
	"sort"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/skytrail/skytrail/internal/storage/spanstore"
)

// Trace is the native JSON form of a whole trace.
type Trace struct {
	TraceID string                 `json:"traceID"`
	Summary spanstore.TraceSummary `json:"summary"`
	Spans   []Span                 `json:"spans"`
}

// Span is one span with its resource and scope flattened in, as the UI and
// scripts want it.
type Span struct {
	TraceID       string         `json:"traceID"`
	SpanID        string         `json:"spanID"`
	ParentSpanID  string         `json:"parentSpanID,omitempty"`
	Name          string         `json:"name"`
	Kind          string         `json:"kind"`
	Service       string         `json:"service"`
	StartTime     time.Time      `json:"startTime"`
	DurationNanos int64          `json:"durationNanos"`
	StatusCode    string         `json:"statusCode"`
	StatusMessage string         `json:"statusMessage,omitempty"`
	TraceState    string         `json:"traceState,omitempty"`
	Attributes    map[string]any `json:"attributes"`
	Resource      map[string]any `json:"resource"`
	Scope         Scope          `json:"scope"`
	Events        []Event        `json:"events"`
	Links         []Link         `json:"links"`
}

// Scope is the instrumentation scope that produced a span.
type Scope struct {
	Name    string `json:"name,omitempty"`
	Version string `json:"version,omitempty"`
}

// Event is a span event (a log, in SkyWalking's terms).
type Event struct {
	Name       string         `json:"name"`
	Time       time.Time      `json:"time"`
	Attributes map[string]any `json:"attributes"`
}

// Link points at another span.
type Link struct {
	TraceID    string         `json:"traceID"`
	SpanID     string         `json:"spanID"`
	Attributes map[string]any `json:"attributes"`
}

// Spans flattens td, ordered by start time.
func Spans(td ptrace.Traces) []Span {
	var out []Span
	rss := td.ResourceSpans()
	for i := 0; i < rss.Len(); i++ {
		res := rss.At(i).Resource().Attributes()
		service := ""
		if v, ok := res.Get("service.name"); ok {
			service = v.AsString()
		}
		resource := res.AsRaw()
		sss := rss.At(i).ScopeSpans()
		for j := 0; j < sss.Len(); j++ {
			scope := Scope{Name: sss.At(j).Scope().Name(), Version: sss.At(j).Scope().Version()}
			spans := sss.At(j).Spans()
			for k := 0; k < spans.Len(); k++ {
				out = append(out, spanJSON(spans.At(k), service, resource, scope))
			}
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].StartTime.Before(out[j].StartTime) })
	return out
}

func spanJSON(sp ptrace.Span, service string, resource map[string]any, scope Scope) Span {
	s := Span{
		TraceID:       hexID(sp.TraceID()),
		SpanID:        hex.EncodeToString(idBytes(sp.SpanID())),
		Name:          sp.Name(),
		Kind:          spanstore.SpanKindName(sp.Kind()),
		Service:       service,
		StartTime:     sp.StartTimestamp().AsTime(),
		DurationNanos: int64(sp.EndTimestamp()) - int64(sp.StartTimestamp()),
		StatusCode:    statusName(sp.Status().Code()),
		StatusMessage: sp.Status().Message(),
		TraceState:    sp.TraceState().AsRaw(),
		Attributes:    sp.Attributes().AsRaw(),
		Resource:      resource,
		Scope:         scope,
		Events:        []Event{},
		Links:         []Link{},
	}
	if p := sp.ParentSpanID(); !p.IsEmpty() {
		s.ParentSpanID = hex.EncodeToString(idBytes(p))
	}
	for i := 0; i < sp.Events().Len(); i++ {
		e := sp.Events().At(i)
		s.Events = append(s.Events, Event{Name: e.Name(), Time: e.Timestamp().AsTime(), Attributes: e.Attributes().AsRaw()})
	}
	for i := 0; i < sp.Links().Len(); i++ {
		l := sp.Links().At(i)
		s.Links = append(s.Links, Link{TraceID: hexID(l.TraceID()), SpanID: hex.EncodeToString(idBytes(l.SpanID())), Attributes: l.Attributes().AsRaw()})
	}
	return s
}

func hexID(id pcommon.TraceID) string  { return hex.EncodeToString(id[:]) }
func idBytes(id pcommon.SpanID) []byte { return id[:] }

func statusName(c ptrace.StatusCode) string {
	switch c {
	case ptrace.StatusCodeOk:
		return "OK"
	case ptrace.StatusCodeError:
		return "ERROR"
	}
	return "UNSET"
}
