package sdk

import (
	"context"
	"fmt"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

const instrumentationName = "github.com/skytrail/skytrail/sdk"

// Go runs fn in a new goroutine, inside a span named name that is a child of
// the span in ctx. The goroutine's context keeps ctx's values (span, baggage)
// but not its cancellation: background work started by a request usually
// outlives it, and a context.Background() there would start a new,
// disconnected trace. A panic in fn is recorded on the span and re-raised.
func Go(ctx context.Context, name string, fn func(ctx context.Context)) {
	// The parent span's own provider, so that a service with a provider of
	// its own (not the global one) traces its goroutines too; a context
	// without a recording span (none, or only a remote parent, whose
	// provider is a no-op) falls back to the global provider.
	tp := otel.GetTracerProvider()
	if parent := trace.SpanFromContext(ctx); parent.IsRecording() {
		tp = parent.TracerProvider()
	}
	ctx, span := tp.Tracer(instrumentationName).Start(context.WithoutCancel(ctx), name,
		trace.WithSpanKind(trace.SpanKindInternal))
	go func() {
		defer span.End() // runs during a panic too
		defer func() {
			if r := recover(); r != nil {
				span.SetStatus(codes.Error, fmt.Sprint("panic: ", r))
				panic(r)
			}
		}()
		fn(ctx)
	}()
}
