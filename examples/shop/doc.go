// Package shop is a small e-commerce system of four Go HTTP services,
// instrumented the way SkyTrail wants services instrumented. `skytrail demo`
// runs it beside the server; read it as an example to copy.
//
//	client ──▶ frontend ──HTTP──▶ order ──HTTP──▶ inventory
//	                                │──HTTP──▶ payment        (go2sky, sw8)
//	                                └──kafka "orders"──▶ inventory (consumer)
//
// frontend, order and inventory use the OpenTelemetry Go SDK with the
// SkyTrail SDK's tracehttp wrappers over otelhttp, and export over OTLP.
// payment uses go2sky and reports over SkyWalking's protocol. order calls
// payment with both traceparent and sw8 headers, so one trace runs through
// both kinds of agent.
//
// What to copy:
//   - every server behind tracehttp.NewHandler, which extracts the caller's
//     trace context (payment: go2sky's server middleware);
//   - every outgoing call through a tracehttp client, made with the
//     request's context, which injects it;
//   - goroutines handed the request's context (inventory's parallel
//     warehouse checks);
//   - message headers carrying the context across a queue (order's producer,
//     inventory's consumer);
//   - database, cache and queue calls as client, producer and consumer spans
//     with OpenTelemetry's semantic attributes, which is how SkyTrail draws
//     them on the service map.
//
// What not to copy: order's confirmation e-mail goroutine starts from
// context.Background() on purpose, the demo's one propagation bug, so that
// SkyTrail's diagnostics have something true to show (see order.go).
//
// The databases, cache and queue are simulated: their spans are real, the
// calls are a sleep. The HTTP calls are real, over loopback.
package shop
