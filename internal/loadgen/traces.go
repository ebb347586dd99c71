package loadgen

import (
	"fmt"
	"time"

	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
)

// Traces returns at least spans spans of the traces the load generator
// sends (whole traces, services services, spans ending just before base),
// decoded: benchmarks of what consumes spans use the same shapes as the
// end-to-end load. Different seeds give different trace and span IDs.
func Traces(spans, services int, seed uint64, base time.Time) (ptrace.Traces, error) {
	b, err := buildOTLPBatch(newPlanner(services, seed), spans, base)
	if err != nil {
		return ptrace.Traces{}, err
	}
	req := ptraceotlp.NewExportRequest()
	if err := req.UnmarshalProto(b.buf); err != nil {
		return ptrace.Traces{}, fmt.Errorf("decode generated batch: %w", err)
	}
	return req.Traces(), nil
}
