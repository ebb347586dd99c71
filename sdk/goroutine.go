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
	ctx, span := otel.Tracer(instrumentationName).Start(context.WithoutCancel(ctx), name,
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
