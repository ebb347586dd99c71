// Package wire maps the front door's refusals (pipeline.Reason) to the
// status codes of the protocols SkyTrail receives on, the same way for every
// receiver: the codes OpenTelemetry SDKs and SkyWalking agents act on.
//
//	reason                gRPC                       HTTP
//	malformed, invalid    InvalidArgument            400
//	too_large             InvalidArgument            413
//	unauthenticated       Unauthenticated            401
//	overloaded            ResourceExhausted + retry  429 + Retry-After
//	storage               Unavailable + retry        503 + Retry-After
//
// "+ retry" is a RetryInfo detail of pipeline.RetryAfter, which the OTLP
// exporters honour; InvalidArgument is never retried.
package wire

import (
	"context"
	"net/http"
	"strconv"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/skytrail/skytrail/internal/pipeline"
)

// GRPCCode is the gRPC code for a refusal.
func GRPCCode(reason pipeline.Reason) codes.Code {
	switch reason {
	case pipeline.Malformed, pipeline.Invalid, pipeline.TooLarge:
		return codes.InvalidArgument
	case pipeline.Unauthenticated:
		return codes.Unauthenticated
	case pipeline.Forbidden:
		return codes.PermissionDenied
	case pipeline.Overloaded:
		return codes.ResourceExhausted
	}
	return codes.Unavailable
}

// HTTPCode is the HTTP status for a refusal.
func HTTPCode(reason pipeline.Reason) int {
	switch reason {
	case pipeline.Malformed, pipeline.Invalid:
		return http.StatusBadRequest
	case pipeline.TooLarge:
		return http.StatusRequestEntityTooLarge
	case pipeline.Unauthenticated:
		return http.StatusUnauthorized
	case pipeline.Forbidden:
		return http.StatusForbidden
	case pipeline.Overloaded:
		return http.StatusTooManyRequests
	}
	return http.StatusServiceUnavailable
}

// GRPCError is the gRPC status error for err (nil for nil): its reason's
// code, its message, and RetryInfo when the client should retry.
func GRPCError(err error) error {
	if err == nil {
		return nil
	}
	reason := pipeline.ReasonOf(err)
	st := status.New(GRPCCode(reason), err.Error())
	if reason.Retryable() {
		if withInfo, derr := st.WithDetails(&errdetails.RetryInfo{RetryDelay: durationpb.New(pipeline.RetryAfter)}); derr == nil {
			st = withInfo
		}
	}
	return st.Err()
}

// HTTPStatus is the HTTP status for err; when the client should retry it
// also sets Retry-After on h.
func HTTPStatus(h http.Header, err error) int {
	reason := pipeline.ReasonOf(err)
	if reason.Retryable() {
		h.Set("Retry-After", strconv.Itoa(int(pipeline.RetryAfter.Seconds())))
	}
	return HTTPCode(reason)
}

// GRPCSource is the source of a gRPC call to receiver.
func GRPCSource(ctx context.Context, receiver string) pipeline.Source {
	src := pipeline.Source{Receiver: receiver}
	if p, ok := peer.FromContext(ctx); ok && p.Addr != nil {
		src.Client = p.Addr.String()
	}
	return src
}

// HTTPSource is the source of an HTTP request to receiver.
func HTTPSource(r *http.Request, receiver string) pipeline.Source {
	return pipeline.Source{Receiver: receiver, Client: r.RemoteAddr}
}
