package otlp

import (
	"context"
	"errors"

	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/skytrail/skytrail/internal/pipeline"
	"github.com/skytrail/skytrail/internal/selfmetrics"
)

const grpcReceiver = "otlp-grpc"

// RegisterGRPC registers the OTLP TraceService on s.
func (r *Receiver) RegisterGRPC(s *grpc.Server) {
	ptraceotlp.RegisterGRPCServer(s, &grpcService{r: r})
}

type grpcService struct {
	ptraceotlp.UnimplementedGRPCServer
	r *Receiver
}

func (g *grpcService) Export(ctx context.Context, req ptraceotlp.ExportRequest) (ptraceotlp.ExportResponse, error) {
	td := req.Traces()
	release, err := g.r.pipeline.Admit(pipeline.EstimatedSize(td))
	if err != nil {
		selfmetrics.SpansRejected.WithLabelValues(grpcReceiver, "overloaded").Add(float64(td.SpanCount()))
		return ptraceotlp.NewExportResponse(), grpcError(err)
	}
	defer release()
	res, err := g.r.export(ctx, td, grpcReceiver)
	if err != nil {
		return ptraceotlp.NewExportResponse(), grpcError(err)
	}
	resp := ptraceotlp.NewExportResponse()
	if res.rejected > 0 {
		resp.PartialSuccess().SetRejectedSpans(int64(res.rejected))
		resp.PartialSuccess().SetErrorMessage(res.message)
	}
	return resp, nil
}

// grpcError maps an export error to the status the OTLP exporters act on:
// InvalidArgument is dropped by the client, ResourceExhausted (with
// RetryInfo) and Unavailable are retried.
func grpcError(err error) error {
	var inv errInvalid
	switch {
	case errors.As(err, &inv):
		return status.Error(codes.InvalidArgument, inv.msg)
	case errors.Is(err, pipeline.ErrOverloaded):
		st, derr := status.New(codes.ResourceExhausted, err.Error()).
			WithDetails(&errdetails.RetryInfo{RetryDelay: durationpb.New(pipeline.RetryAfter)})
		if derr != nil {
			return status.Error(codes.ResourceExhausted, err.Error())
		}
		return st.Err()
	default:
		return status.Error(codes.Unavailable, "storing spans failed, retry later: "+err.Error())
	}
}
