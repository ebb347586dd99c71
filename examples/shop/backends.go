package shop

import (
	"context"
	"math"
	"math/rand/v2"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
)

// The shop's MySQL database and Redis cache are simulated: each call is a
// client span with the attributes a real database or Redis instrumentation
// library sets, around a sleep. SkyTrail draws them on the service map as
// the nodes "mysql:3306" and "redis:6379".

// query records a statement run on the shop's MySQL database.
func (t *telemetry) query(ctx context.Context, operation, table, statement string, median time.Duration) {
	_, span := t.tracer.Start(ctx, operation+" shop."+table,
		trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(
			semconv.DBSystemNameMySQL,
			semconv.DBNamespace("shop"),
			semconv.DBOperationName(operation),
			semconv.DBCollectionName(table),
			semconv.DBQueryText(statement),
			semconv.ServerAddress("mysql"),
			semconv.ServerPort(3306),
		))
	defer span.End()
	pause(ctx, median)
}

// cacheGet looks key up in Redis and reports whether it was there; a miss
// comes with probability missRate.
func (t *telemetry) cacheGet(ctx context.Context, key string, missRate float64) (hit bool) {
	_, span := t.tracer.Start(ctx, "GET",
		trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(
			semconv.DBSystemNameRedis,
			semconv.DBOperationName("GET"),
			semconv.DBQueryText("GET "+key),
			semconv.ServerAddress("redis"),
			semconv.ServerPort(6379),
		))
	defer span.End()
	pause(ctx, 800*time.Microsecond)
	hit = !chance(missRate)
	span.SetAttributes(attribute.Bool("cache.hit", hit))
	return hit
}

// fail marks the span in ctx failed, with err as its reason.
func fail(ctx context.Context, err error) {
	span := trace.SpanFromContext(ctx)
	span.RecordError(err)
	span.SetStatus(codes.Error, err.Error())
}

// pause sleeps a lognormal time around median: most calls near it and a long
// tail of slow ones, as measured latencies are. It returns early when ctx
// ends.
func pause(ctx context.Context, median time.Duration) {
	d := time.Duration(float64(median) * math.Exp(0.5*rand.NormFloat64()))
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// chance reports true with probability p.
func chance(p float64) bool { return rand.Float64() < p }
