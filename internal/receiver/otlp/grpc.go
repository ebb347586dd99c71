package otlp

import (
	"context"

	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/grpc"

	"github.com/skytrail/skytrail/internal/pipeline"
	"github.com/skytrail/skytrail/internal/receiver/wire"
)

// RegisterGRPC registers the OTLP TraceService on s.
func (r *Receiver) RegisterGRPC(s *grpc.Server) {
	ptraceotlp.RegisterGRPCServer(s, &grpcService{r: r})
}

type grpcService struct {
	ptraceotlp.UnimplementedGRPCServer
	r *Receiver
}

func (g *grpcService) Export(ctx context.Context, req ptraceotlp.ExportRequest) (ptraceotlp.ExportResponse, error) {
	resp := ptraceotlp.NewExportResponse()
	out, err := g.r.pipeline.Ingest(ctx, wire.GRPCSource(ctx, GRPCReceiver), &pipeline.Traces{Traces: req.Traces()})
	if err != nil {
		return resp, wire.GRPCError(err)
	}
	if out.Rejected > 0 {
		resp.PartialSuccess().SetRejectedSpans(int64(out.Rejected))
		resp.PartialSuccess().SetErrorMessage(out.Message)
	}
	return resp, nil
}
