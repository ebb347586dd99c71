// Package swconv converts what SkyWalking agents send (the skywalking.v3
// protocol: segments, logs, meters, instance properties) into SkyTrail's
// currency, pdata, without losing anything a user can see.
//
// # Segments to spans
//
// Each SegmentObject becomes one ResourceSpans with one ScopeSpans:
//
//	resource  service.name          = segment.service
//	          service.instance.id   = segment.serviceInstance (when set)
//	          telemetry.sdk.name    = "skywalking"
//	scope     name                  = "skywalking"
//
// Each SpanObject becomes one span:
//
//	trace ID        traceid.FromString(segment.traceId): 32 hex characters are the
//	                bytes, any other string hashes, so the agent's own trace ID string
//	                finds the trace
//	span ID         traceid.SpanIDFromSegment(segment.traceSegmentId, span.spanId)
//	parent span ID  parentSpanId >= 0: SpanIDFromSegment(segment, parentSpanId);
//	                parentSpanId < 0 with refs: the first ref of the same trace,
//	                SpanIDFromSegment(ref.parentTraceSegmentId, ref.parentSpanId)
//	                (cross-process and cross-thread alike); no such ref: a root span
//	links           every ref not used as the parent, with sw.ref.* attributes
//	name            operationName
//	kind            Entry -> server, Exit -> client, Local -> internal; on the MQ
//	                layer Entry -> consumer, Exit -> producer
//	times           startTime/endTime (ms) -> ns
//	status          isError -> Error, otherwise Unset
//	events          each log -> an event named by its "event" key (else "log"), at
//	                log.time, with every key/value as a string attribute
//
// Span attributes:
//
//	<tag key>          every tag, key as sent, string value (a repeated key's values
//	                   are joined with ", ")
//	sw.trace_id        the trace ID string as the agent reported it, when it is not
//	                   32 lower-case hex digits (go2sky's form: then it is exactly the
//	                   span's trace ID in hex, and is not stored twice)
//	sw.segment_id      traceSegmentId
//	sw.span_id         spanId (int)
//	sw.parent_span_id  parentSpanId (int), only when that span is not in the segment
//	                   (otherwise the parent span's own sw.span_id says it)
//	sw.layer           Database, RPCFramework, Http, MQ, Cache, FAAS (an unknown value
//	                   keeps its number, as a string); absent for Unknown (0)
//	sw.span_type       only for a spanType outside Entry/Exit/Local: its number
//	sw.component       the component's name from SkyWalking's component-libraries.yml
//	                   (ComponentID maps it back to the number); absent for 0 (Unknown)
//	sw.component_id    componentId (int), only for an ID the list does not know
//	sw.peer            peer (the address an Exit span called), when set
//	db.system          on the Database layer, the db.type tag lower-cased
//	sw.skip_analysis   true when the agent asked the backend to skip analysis
//	sw.is_size_limited true when the agent dropped spans from this segment
//	sw.ref.type        CrossProcess or CrossThread, for the ref used as the parent
//	sw.ref.parent_service, sw.ref.parent_service_instance, sw.ref.parent_endpoint,
//	sw.ref.network_address (networkAddressUsedAtPeer): the same ref, when set
//	sw.problem         what was wrong with the span and what was done about it
//	                   (negative or reversed times, a parent not in the segment, ...)
//
// A link carries sw.ref.* too, plus sw.ref.parent_segment_id and
// sw.ref.parent_span_id (the parent span may never arrive), and
// sw.ref.trace_id when the ref names another trace.
//
// Storage pays for every attribute of every span, so nothing the span's own
// fields already say is repeated; the omissions above lose nothing.
//
// A segment without a service, trace ID, segment ID or spans cannot be placed
// and is rejected with an error naming what is missing; every other oddity is
// stored and recorded in sw.problem. Nothing here panics on any input.
package swconv
