// Package otlp receives traces, metrics and logs over OTLP: gRPC
// TraceService, MetricsService and LogsService Export, and HTTP POST
// /v1/traces, /v1/metrics and /v1/logs (protobuf or JSON, gzip or not).
// It only decodes: the
// pipeline's front door admits, validates and stores, and the receiver puts
// its answer on the wire as the OTLP specification asks: partial success for
// some bad items, InvalidArgument / 400 when none is usable,
// ResourceExhausted / 429 (or Unavailable / 503) with a retry delay when the
// server cannot take them now (see package wire).
package otlp

import (
	"github.com/skytrail/skytrail/internal/auth"
	"github.com/skytrail/skytrail/internal/pipeline"
)

// Receiver names, as the front door counts them.
const (
	GRPCReceiver = "otlp-grpc"
	HTTPReceiver = "otlp-http"
)

// Config tunes the receiver.
type Config struct {
	// MaxRequestBytes caps one request: the gRPC message, or the HTTP body
	// after decompression. Default 16 MiB.
	MaxRequestBytes int
	// Tokens, when it holds any, are the bearer tokens every export must
	// carry (Authorization: Bearer <token>, as OTEL_EXPORTER_OTLP_HEADERS
	// sends it); others are refused Unauthenticated / 401 unread.
	Tokens *auth.Tokens
	// Route, when set, picks the pipeline (the tenant) of each request
	// from the identity its token established (nil without tokens) and
	// the tenant it names in X-Scope-OrgID ("" when none); its error, a
	// *pipeline.Error, refuses the request. Nil: every request goes to
	// the receiver's own pipeline.
	Route func(id *auth.Identity, orgID string) (*pipeline.Pipeline, error)
}

// Receiver is the OTLP receiver, for both transports and every signal.
type Receiver struct {
	// pipeline takes every request Route does not send elsewhere, and
	// counts the refusals of requests no tenant takes.
	pipeline *pipeline.Pipeline
	cfg      Config
}

// New returns a receiver feeding p.
func New(p *pipeline.Pipeline, cfg Config) *Receiver {
	if cfg.MaxRequestBytes <= 0 {
		cfg.MaxRequestBytes = 16 << 20
	}
	return &Receiver{pipeline: p, cfg: cfg}
}

// route is the pipeline of a request from id naming orgID, or its refusal,
// counted.
func (r *Receiver) route(src pipeline.Source, kind pipeline.Signal, id *auth.Identity, orgID string) (*pipeline.Pipeline, error) {
	if r.cfg.Route == nil {
		return r.pipeline, nil
	}
	p, err := r.cfg.Route(id, orgID)
	if err != nil {
		return nil, r.pipeline.Refuse(src, kind, pipeline.ReasonOf(err), err)
	}
	return p, nil
}
