package spanstore

import (
	"context"
	"errors"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// TraceQuery selects traces: a trace matches when one of its spans matches
// every condition given. Zero values mean "any".
type TraceQuery struct {
	Service   string
	Operation string
	// Attributes must all match on one span, as span or resource attributes,
	// compared as strings (order_id=1001 matches the int 1001 and the string
	// "1001"). The keys "error", "span.kind", "otel.status_code" and
	// "otel.status_description" match the span's status and kind the way
	// Jaeger presents them.
	Attributes  map[string]string
	MinDuration time.Duration
	MaxDuration time.Duration
	ErrorsOnly  bool
	// Start and End bound span start times; zero End means now, zero Start
	// means End minus the default lookback. Any times are accepted: the
	// range is narrowed to what the store holds (the oldest day retention
	// keeps to the end of tomorrow, UTC), and one outside it finds nothing.
	Start, End time.Time
	// Limit caps the number of traces; zero means the default (20).
	Limit int
}

// TraceSummary describes one trace found by a search.
type TraceSummary struct {
	TraceID       string        `json:"traceID"`
	RootService   string        `json:"rootService"`
	RootOperation string        `json:"rootOperation"`
	Start         time.Time     `json:"start"`
	Duration      time.Duration `json:"-"`
	DurationUS    int64         `json:"durationMicros"`
	SpanCount     int           `json:"spanCount"`
	ErrorCount    int           `json:"errorCount"`
	Services      []string      `json:"services"`
	Error         bool          `json:"error"`
	// Matched is the newest span that met the search's conditions; absent
	// for a search by time alone.
	Matched *MatchedSpan `json:"matched,omitempty"`
}

// MatchedSpan names the span of a trace that met a search.
type MatchedSpan struct {
	SpanID  string `json:"spanID"`
	Service string `json:"service"`
	Name    string `json:"name"`
}

// SpanQuery selects one service's spans for SlowestSpans.
type SpanQuery struct {
	Service    string
	Start, End time.Time
	// Limit caps the spans (default 10, at most 1000).
	Limit int
}

// RankedSpan is one span of a SlowestSpans answer.
type RankedSpan struct {
	TraceID    string    `json:"traceID"`
	SpanID     string    `json:"spanID"`
	Name       string    `json:"name"`
	Kind       string    `json:"kind"`
	Start      time.Time `json:"start"`
	DurationUS int64     `json:"durationMicros"`
	Error      bool      `json:"error"`
	// StatusMessage is the span's error message, if it failed.
	StatusMessage string `json:"statusMessage,omitempty"`
}

// Operation is a span name seen for a service, with the span kind it was
// seen with (Jaeger's /api/operations shape).
type Operation struct {
	Name     string `json:"name"`
	SpanKind string `json:"spanKind"`
}

// ErrNotFound is returned by GetTrace for a trace ID with no stored spans.
var ErrNotFound = errors.New("trace not found")

// ErrBadQuery wraps what is wrong with a query the store cannot run as
// asked (an attribute key longer than any stored): the caller's mistake.
var ErrBadQuery = errors.New("bad query")

// ErrUnavailable wraps the errors of a remote engine that did not answer,
// or answered that it could not: the query may work when retried.
var ErrUnavailable = errors.New("span storage unavailable")

// Reader is what the query APIs need from a span store, embedded or remote.
type Reader interface {
	// Services lists the service names with spans stored, sorted.
	Services(ctx context.Context) ([]string, error)
	// Operations lists the span names of a service, sorted by name.
	Operations(ctx context.Context, service string) ([]Operation, error)
	// GetTrace returns every stored span of a trace, or ErrNotFound.
	GetTrace(ctx context.Context, id pcommon.TraceID) (ptrace.Traces, error)
	// GetTraces returns every stored span of the given traces in one read;
	// traces with no stored span are simply absent.
	GetTraces(ctx context.Context, ids []pcommon.TraceID) (ptrace.Traces, error)
	// FindTraceIDs returns the IDs of matching traces, newest first.
	FindTraceIDs(ctx context.Context, q TraceQuery) ([]pcommon.TraceID, error)
	// FindTraces returns summaries of matching traces, newest first.
	FindTraces(ctx context.Context, q TraceQuery) ([]TraceSummary, error)
	// SlowestSpans returns a service's own longest spans in the range,
	// longest first: where its time goes, whatever the trace around them.
	SlowestSpans(ctx context.Context, q SpanQuery) ([]RankedSpan, error)
}
