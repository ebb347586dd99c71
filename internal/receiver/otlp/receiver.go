// Package otlp receives spans over OTLP: gRPC TraceService/Export and HTTP
// POST /v1/traces (protobuf or JSON, gzip or not), validates them and hands
// them to the pipeline, answering as the OTLP specification asks: partial
// success for some bad spans, InvalidArgument / 400 when none is usable,
// ResourceExhausted / 429 with a retry delay when the server is overloaded.
package otlp

import (
	"context"
	"errors"
	"strconv"
	"time"

	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/skytrail/skytrail/internal/pipeline"
	"github.com/skytrail/skytrail/internal/selfmetrics"
)

// Config tunes the receiver.
type Config struct {
	// MaxRequestBytes caps one request: the gRPC message, or the HTTP body
	// after decompression. Default 16 MiB.
	MaxRequestBytes int
	Limits          pipeline.Limits
}

// Receiver is the OTLP trace receiver, for both transports.
type Receiver struct {
	pipeline *pipeline.Pipeline
	cfg      Config
	now      func() time.Time
}

// New returns a receiver feeding p.
func New(p *pipeline.Pipeline, cfg Config) *Receiver {
	if cfg.MaxRequestBytes <= 0 {
		cfg.MaxRequestBytes = 16 << 20
	}
	return &Receiver{pipeline: p, cfg: cfg, now: time.Now}
}

// errInvalid marks a request with no usable span.
type errInvalid struct{ msg string }

func (e errInvalid) Error() string { return e.msg }

// result is what an export produced, before it is put on the wire.
type result struct {
	rejected int
	message  string
}

// export validates td and hands the valid spans on. It is the one path both
// transports share.
func (r *Receiver) export(ctx context.Context, td ptrace.Traces, receiver string) (result, error) {
	total := td.SpanCount()
	selfmetrics.SpansReceived.WithLabelValues(receiver).Add(float64(total))
	v := pipeline.Validate(td, r.cfg.Limits, r.now())
	if v.Rejected > 0 {
		selfmetrics.SpansRejected.WithLabelValues(receiver, "invalid").Add(float64(v.Rejected))
	}
	if v.Accepted == 0 {
		if v.Rejected > 0 {
			return result{}, errInvalid{"all " + strconv.Itoa(v.Rejected) + " spans rejected; first: " + v.FirstError}
		}
		return result{}, nil
	}
	if err := r.pipeline.ConsumeTraces(ctx, td); err != nil {
		reason := "storage"
		if errors.Is(err, pipeline.ErrOverloaded) {
			reason = "overloaded"
		}
		selfmetrics.SpansRejected.WithLabelValues(receiver, reason).Add(float64(v.Accepted))
		return result{}, err
	}
	selfmetrics.SpansAccepted.WithLabelValues(receiver).Add(float64(v.Accepted))
	res := result{rejected: v.Rejected}
	if v.Rejected > 0 {
		res.message = strconv.Itoa(v.Rejected) + " of " + strconv.Itoa(total) + " spans rejected; first: " + v.FirstError
	}
	return res, nil
}
