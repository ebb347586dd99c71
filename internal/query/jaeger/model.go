// Package jaeger serves the classic Jaeger query HTTP API (the one Jaeger's
// own UI and Grafana's Jaeger data source call) over SkyTrail's span store.
//
// The JSON shapes follow Jaeger's UI model (jaegertracing/jaeger
// internal/uimodel) field for field, including its quirks: empty
// references/tags/logs are [] but warnings are null, flags are omitted when 0,
// and int64 tags beyond JavaScript's safe integer range travel as strings.
package jaeger

// Trace is one trace as Jaeger's query API presents it: spans point into the
// processes map by processID instead of repeating their resource.
type Trace struct {
	TraceID   string             `json:"traceID"`
	Spans     []Span             `json:"spans"`
	Processes map[string]Process `json:"processes"`
	Warnings  []string           `json:"warnings"`
}

// Span is one span in Jaeger's UI model. Times are microseconds.
type Span struct {
	TraceID       string      `json:"traceID"`
	SpanID        string      `json:"spanID"`
	Flags         uint32      `json:"flags,omitempty"`
	OperationName string      `json:"operationName"`
	References    []Reference `json:"references"`
	StartTime     uint64      `json:"startTime"`
	Duration      uint64      `json:"duration"`
	Tags          []KeyValue  `json:"tags"`
	Logs          []Log       `json:"logs"`
	ProcessID     string      `json:"processID"`
	Warnings      []string    `json:"warnings"`
}

// Reference types: the parent is CHILD_OF, span links are FOLLOWS_FROM.
const (
	ChildOf     = "CHILD_OF"
	FollowsFrom = "FOLLOWS_FROM"
)

// Reference points from a span to its parent or to a linked span.
type Reference struct {
	RefType string `json:"refType"`
	TraceID string `json:"traceID"`
	SpanID  string `json:"spanID"`
}

// Process is the service (resource) that emitted spans.
type Process struct {
	ServiceName string     `json:"serviceName"`
	Tags        []KeyValue `json:"tags"`
}

// Log is a span event; its name is the "event" field.
type Log struct {
	Timestamp uint64     `json:"timestamp"`
	Fields    []KeyValue `json:"fields"`
}

// Tag value types.
const (
	StringType  = "string"
	BoolType    = "bool"
	Int64Type   = "int64"
	Float64Type = "float64"
	BinaryType  = "binary"
)

// KeyValue is a typed tag. Value is a string, bool, int64 (or its decimal
// string when JavaScript could not hold it), float64, or []byte (base64 in
// JSON).
type KeyValue struct {
	Key   string `json:"key"`
	Type  string `json:"type"`
	Value any    `json:"value"`
}

// Dependency is one edge of the service graph served by /api/dependencies.
type Dependency struct {
	Parent    string `json:"parent"`
	Child     string `json:"child"`
	CallCount uint64 `json:"callCount"`
}

// response is the envelope of every answer. Jaeger leaves total at 0 for
// trace answers and fills it only for services and operations.
type response struct {
	Data   any             `json:"data"`
	Total  int             `json:"total"`
	Limit  int             `json:"limit"`
	Offset int             `json:"offset"`
	Errors []responseError `json:"errors"`
}

// responseError is one entry of the envelope's errors: code is set for a
// failed request, traceID for a trace that could not be returned.
type responseError struct {
	Code    int    `json:"code,omitempty"`
	Msg     string `json:"msg"`
	TraceID string `json:"traceID,omitempty"`
}
