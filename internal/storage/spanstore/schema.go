package spanstore

// The span schema in logstorage: one row a span, its timestamp the span's
// start. Field names are plain so that a LogsQL user can read them:
//
//	service              resource service.name; the log stream (spans of a
//	                     service are stored together)
//	name                 span name
//	trace_id             lowercase hex
//	span                 the span ID in lowercase hex, followed for a child
//	                     span by its parent span ID, with nothing between:
//	                     one column, not two, because a parent's ID repeats
//	                     in its children's rows next to its own, which
//	                     compresses only within one column; and one token,
//	                     since no search needs them apart (2.5 bytes a span
//	                     less on disk, measured by BenchmarkDiskPerSpan)
//	kind                 OTLP SpanKind number (1 internal ... 5 consumer)
//	duration             nanoseconds
//	status_code          OTLP StatusCode number (0 unset, 1 ok, 2 error)
//	status_message, trace_state, flags
//	scope.name, scope.version
//	attr.<key>           span attribute, as a string
//	resource             the resource attributes (service.name excepted), all in
//	                     one field: Go-quoted key, "=", Go-quoted value, pairs
//	                     sorted by key and separated by spaces; a value that is
//	                     not a string has its type letter (see putAttr) before
//	                     the quote. One field, not one a key: every field costs
//	                     logstorage work on every row (about 4% of ingest CPU
//	                     each, measured). With service it makes the log
//	                     stream (see instanceStreams), so a block holds one
//	                     instance's spans and the resource is a constant
//	                     column, stored once a block.
//	scope_attr.<key>     instrumentation scope attribute
//	types                the OTLP type of each attribute whose stored text does
//	                     not say it: "<prefix><key>=<letter>" joined by "\n"
//	                     (see putAttr). An integer's text says int; a string
//	                     that reads as an integer, or is empty, gets "s".
//	overflow             the fields beyond the service's column budget for
//	                     the row's day (see columns.go: attr.<key>,
//	                     scope.name, scope.version, scope_attr.<key>, and
//	                     for agent logs resource too): Go-quoted field
//	                     names and values, alternating, separated by
//	                     spaces. Every reader puts them back where they came
//	                     from (trace and log APIs, Jaeger, the UI); a tag
//	                     search does not look into this field.
//	extra                events, links, dropped counts and schema URLs: base64
//	                     of an OTLP-encoded span holding just those, so nothing
//	                     the SDK sent is lost
//
// Trace-ID index rows live in their own tenant: one row a trace and time
// window seen, timestamp the earliest span start rounded down to the
// millisecond, fields trace_suffix (see traceIDSuffix), bucket (its first hex
// digit: the log stream, see indexStreamFields) and window_ms, the
// milliseconds from the timestamp to the latest span end, rounded up to a
// power of two.
const (
	fieldService       = "service"
	fieldName          = "name"
	fieldTraceID       = "trace_id"
	fieldSpan          = "span"
	fieldSpanID        = "span_id" // agent logs only
	fieldKind          = "kind"
	fieldDuration      = "duration"
	fieldStatusCode    = "status_code"
	fieldStatusMessage = "status_message"
	fieldTraceState    = "trace_state"
	fieldFlags         = "flags"
	fieldScopeName     = "scope.name"
	fieldScopeVersion  = "scope.version"
	fieldTypes         = "types"
	fieldExtra         = "extra"
	fieldOverflow      = "overflow"
	fieldTraceSuffix   = "trace_suffix"
	fieldWindowMs      = "window_ms"
	fieldIndexBucket   = "bucket"

	prefixAttr      = "attr."
	fieldResource   = "resource"
	prefixScopeAttr = "scope_attr."
)

// MaxAttributeKeyLen is the longest attribute key stored: logstorage refuses
// field names over 128 bytes, and the longest prefix is 11 bytes.
const MaxAttributeKeyLen = 100
