// Package pipeline carries decoded telemetry from the receivers to the
// consumers that analyse and store it: a bounded in-flight budget gives
// receivers a retryable error under overload instead of unbounded memory, and
// a request is acknowledged only after every consumer has taken it.
package pipeline

import (
	"context"
	"time"

	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// TracesConsumer takes spans. ConsumeTraces returns only after the spans are
// accepted (for a store: written to its buffers, flushed on graceful shutdown);
// the caller may reuse td afterwards, so a consumer copies what it keeps.
type TracesConsumer interface {
	ConsumeTraces(ctx context.Context, td ptrace.Traces) error
}

// LogsConsumer takes log records (SkyWalking's LogReportService, later OTLP logs).
type LogsConsumer interface {
	ConsumeLogs(ctx context.Context, ld plog.Logs) error
}

// MetricsConsumer takes agent-reported metrics (SkyWalking's meters).
type MetricsConsumer interface {
	ConsumeMetrics(ctx context.Context, md pmetric.Metrics) error
}

// Heartbeat is one sign of life from a service instance: a SkyWalking
// keepAlive or reportInstanceProperties, or an OTLP resource seen in a batch.
type Heartbeat struct {
	Service  string
	Instance string
	Layer    string
	// Properties is nil for a bare keep-alive; otherwise the instance's
	// reported properties (SkyWalking's "Process No.", "hostname", ...; OTLP
	// resource attributes).
	Properties map[string]string
	// Protocol names the receiver: "otlp" or "skywalking".
	Protocol string
	At       time.Time
}

// HeartbeatConsumer takes heartbeats (the instance registry).
type HeartbeatConsumer interface {
	ConsumeHeartbeat(ctx context.Context, hb Heartbeat) error
}
