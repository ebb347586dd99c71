package spanstore

// The span schema in logstorage: one row a span, its timestamp the span's
// start. Field names are plain so that a LogsQL user can read them:
//
//	service              resource service.name; the log stream (spans of a
//	                     service are stored together)
//	name                 span name
//	trace_id, span_id, parent_span_id   lowercase hex
//	kind                 OTLP SpanKind number (1 internal ... 5 consumer)
//	duration             nanoseconds
//	status_code          OTLP StatusCode number (0 unset, 1 ok, 2 error)
//	status_message, trace_state, flags
//	scope.name, scope.version
//	attr.<key>           span attribute, as a string
//	resource             the resource attributes (service.name excepted), all in
//	                     one field: Go-quoted key, "=", Go-quoted value, pairs
//	                     sorted by key and separated by spaces. One field, not
//	                     one a key: a resource is constant for a run of spans,
//	                     and every field costs logstorage work on every row
//	                     (about 4% of ingest CPU each, measured), while a
//	                     filter on a field that is constant in a block is
//	                     evaluated once for the block.
//	scope_attr.<key>     instrumentation scope attribute
//	types                the OTLP type of each attribute that is not a string:
//	                     "<prefix><key>=<letter>" joined by "\n" (see typeLetter)
//	overflow             attributes beyond the service's column budget (see
//	                     columns.go): Go-quoted field names and values,
//	                     alternating, separated by spaces
//	extra                events, links, dropped counts and schema URLs: base64
//	                     of an OTLP-encoded span holding just those, so nothing
//	                     the SDK sent is lost
//
// Trace-ID index rows live in their own tenant: one row a trace and time
// window seen, timestamp the earliest span start, fields trace_id and end.
const (
	fieldService       = "service"
	fieldName          = "name"
	fieldTraceID       = "trace_id"
	fieldSpanID        = "span_id"
	fieldParentSpanID  = "parent_span_id"
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
	fieldEnd           = "end"

	prefixAttr      = "attr."
	prefixResource  = "resource."
	fieldResource   = "resource"
	prefixScopeAttr = "scope_attr."
)

// MaxAttributeKeyLen is the longest attribute key stored: logstorage refuses
// field names over 128 bytes, and the longest prefix is 11 bytes.
const MaxAttributeKeyLen = 100
