package doctor

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	semconv "go.opentelemetry.io/otel/semconv/v1.26.0"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	commonv3 "skywalking.apache.org/repo/goapi/collect/common/v3"
	agentv3 "skywalking.apache.org/repo/goapi/collect/language/agent/v3"

	"github.com/skytrail/skytrail/internal/pipeline"
)

// ProbeService is the service name probe traces are sent under, so they
// do not add a made-up endpoint to the service being checked. The server
// marks them as probes (pipeline.Resource.Probe): they are stored, for
// doctor to find, but appear in no service list, map or figure.
const ProbeService = pipeline.ProbeService

// probeOTLP sends one span through the real OTLP exporter the service would
// use and returns its trace ID ("" when the export failed).
func (d *doctor) probeOTLP(ctx context.Context, t otlpTarget, tlsCfg *tls.Config) string {
	start := time.Now()
	exp, err := d.exporter(ctx, t, tlsCfg)
	if err != nil {
		d.add(Check{Step: stepOTLP, Name: "probe export", Target: t.url.String(), Status: StatusFail, Detail: err.Error()})
		return ""
	}
	defer func() { _ = exp.Shutdown(context.Background()) }()

	rec := tracetest.NewSpanRecorder()
	hostname, _ := os.Hostname()
	res := resource.NewWithAttributes(semconv.SchemaURL, semconv.ServiceName(ProbeService), semconv.HostName(hostname),
		attribute.Bool(pipeline.ProbeAttribute, true))
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec), sdktrace.WithResource(res))
	_, span := tp.Tracer("skytrail/doctor").Start(ctx, "skytrail doctor probe", trace.WithSpanKind(trace.SpanKindServer),
		trace.WithAttributes(attribute.String("doctor.for_service", d.cfg.ServiceName), attribute.String("doctor.protocol", t.protocol)))
	span.End()
	_ = tp.Shutdown(ctx)
	traceID := span.SpanContext().TraceID().String()

	ectx, cancel := context.WithTimeout(ctx, 2*d.cfg.DialTimeout)
	defer cancel()
	if err := exp.ExportSpans(ectx, rec.Ended()); err != nil {
		d.add(Check{Step: stepOTLP, Name: "probe export", Target: t.url.String(), Status: StatusFail, Detail: exportReason(err), Millis: since(start), Remedy: exportRemedy(err, t)})
		return ""
	}
	d.add(Check{Step: stepOTLP, Name: "probe export", Target: t.url.String(), Status: StatusOK, TraceID: traceID, Millis: since(start),
		Detail: "the " + t.protocol + " exporter delivered a probe span; the server acknowledged it"})
	return traceID
}

func (d *doctor) exporter(ctx context.Context, t otlpTarget, tlsCfg *tls.Config) (*otlptrace.Exporter, error) {
	timeout := 2 * d.cfg.DialTimeout
	if t.protocol == ProtocolHTTP {
		o := []otlptracehttp.Option{otlptracehttp.WithEndpointURL(t.url.String()), otlptracehttp.WithTimeout(timeout),
			otlptracehttp.WithRetry(otlptracehttp.RetryConfig{Enabled: false})}
		if tlsCfg != nil {
			o = append(o, otlptracehttp.WithTLSClientConfig(tlsCfg))
		}
		if d.cfg.OTLPHeaders != nil {
			o = append(o, otlptracehttp.WithHeaders(d.cfg.OTLPHeaders))
		}
		return otlptracehttp.New(ctx, o...)
	}
	o := []otlptracegrpc.Option{otlptracegrpc.WithEndpointURL(t.url.String()), otlptracegrpc.WithTimeout(timeout),
		otlptracegrpc.WithRetry(otlptracegrpc.RetryConfig{Enabled: false})}
	if tlsCfg != nil {
		o = append(o, otlptracegrpc.WithTLSCredentials(credentials.NewTLS(tlsCfg)))
	}
	if d.cfg.OTLPHeaders != nil {
		o = append(o, otlptracegrpc.WithHeaders(d.cfg.OTLPHeaders))
	}
	return otlptracegrpc.New(ctx, o...)
}

func exportReason(err error) string {
	if s, ok := status.FromError(err); ok && s.Code() != codes.Unknown {
		return grpcReason(err)
	}
	msg := err.Error()
	if strings.Contains(msg, "connection refused") {
		return "connection refused"
	}
	return msg
}

func exportRemedy(err error, t otlpTarget) string {
	msg := err.Error()
	switch {
	case status.Code(err) == codes.Unauthenticated || strings.Contains(msg, "401") || strings.Contains(msg, "403"):
		return "The server (or a proxy before it) refused the exporter's credentials: a SkyTrail with --ingest-token wants OTEL_EXPORTER_OTLP_HEADERS=Authorization=Bearer%20<token> (otlptracegrpc.WithHeaders); check the token is one of the server's."
	case strings.Contains(msg, "certificate required"):
		return "The server requires a client certificate (mutual TLS): set OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE and OTEL_EXPORTER_OTLP_CLIENT_KEY to one signed by the server's --tls-client-ca."
	case strings.Contains(msg, "connection refused"):
		return "Nothing listens at the endpoint: check the host and port (OTLP gRPC 4317, OTLP HTTP 4318)."
	case strings.Contains(msg, "404"):
		return "The server has no OTLP endpoint at " + t.url.Path + ": an OTLP HTTP endpoint takes POST /v1/traces on port 4318 (OTEL_EXPORTER_OTLP_ENDPOINT is a base URL; OTEL_EXPORTER_OTLP_TRACES_ENDPOINT a full one)."
	case strings.Contains(msg, "http2") || strings.Contains(msg, "malformed HTTP response") || strings.Contains(msg, "frame too large"):
		return "The exporter's protocol does not match the port: OTLP gRPC is on 4317, OTLP HTTP on 4318; set OTEL_EXPORTER_OTLP_PROTOCOL (grpc or http/protobuf) to match."
	case strings.Contains(msg, "tls") || strings.Contains(msg, "TLS") || strings.Contains(msg, "certificate"):
		return "TLS does not match: a plain SkyTrail needs an http:// endpoint or OTEL_EXPORTER_OTLP_INSECURE=true."
	}
	return "The server refused the probe: see the message, and the server's log."
}

// probeSkyWalking sends one segment over SkyWalking's gRPC protocol with the
// agent token and returns its trace ID ("" when it was refused).
func (d *doctor) probeSkyWalking(ctx context.Context, addr string, tlsCfg *tls.Config) string {
	start := time.Now()
	creds := insecure.NewCredentials()
	if tlsCfg != nil {
		creds = credentials.NewTLS(tlsCfg)
	}
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(creds))
	if err != nil {
		d.add(Check{Step: stepSkyWalking, Name: "probe segment", Target: addr, Status: StatusFail, Detail: err.Error()})
		return ""
	}
	defer conn.Close()
	traceID := randomHex(16)
	now := time.Now().UnixMilli()
	hostname, _ := os.Hostname()
	seg := &agentv3.SegmentObject{
		TraceId: traceID, TraceSegmentId: randomHex(16), Service: ProbeService, ServiceInstance: "doctor@" + hostname,
		Spans: []*agentv3.SpanObject{{
			SpanId: 0, ParentSpanId: -1, StartTime: now, EndTime: now + 1, OperationName: "skytrail doctor probe",
			SpanType: agentv3.SpanType_Entry, SpanLayer: agentv3.SpanLayer_Unknown,
			Tags: []*commonv3.KeyStringValuePair{{Key: "doctor.for_service", Value: d.cfg.ServiceName}},
		}},
	}
	ctx, cancel := context.WithTimeout(ctx, 2*d.cfg.DialTimeout)
	defer cancel()
	if d.cfg.SWToken != "" {
		ctx = metadata.AppendToOutgoingContext(ctx, "Authentication", d.cfg.SWToken)
	}
	_, err = agentv3.NewTraceSegmentReportServiceClient(conn).CollectInSync(ctx, &agentv3.SegmentCollection{Segments: []*agentv3.SegmentObject{seg}})
	if err != nil {
		c := Check{Step: stepSkyWalking, Name: "probe segment", Target: addr, Status: StatusFail, Detail: grpcReason(err), Millis: since(start),
			Remedy: "The SkyWalking receiver refused the segment: see the message, and the server's log."}
		if status.Code(err) == codes.Unauthenticated {
			// The health check needs no token, so this is where a wrong one shows.
			c.Name = "authentication"
			c.Detail = "the server refused the agent token: " + status.Convert(err).Message()
			c.Remedy = authRemedy(d.cfg.SWToken)
		}
		d.add(c)
		return ""
	}
	d.add(Check{Step: stepSkyWalking, Name: "probe segment", Target: addr, Status: StatusOK, TraceID: traceID, Millis: since(start),
		Detail: "the SkyWalking receiver acknowledged a probe segment"})
	return traceID
}

// waitForTrace polls the query API until the trace is found or the wait
// ends; sentAt is when the probe left, for the end-to-end time.
func (d *doctor) waitForTrace(ctx context.Context, step, base, traceID string, sentAt time.Time) {
	ctx, cancel := context.WithTimeout(ctx, d.cfg.Wait)
	defer cancel()
	u := base + "/api/v1/traces/" + url.PathEscape(traceID)
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	lastErr := "not found yet"
	for {
		d.progress(fmt.Sprintf("waiting for probe trace %s on %s … %.1fs", short(traceID), base, time.Since(sentAt).Seconds()))
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		resp, err := d.http.Do(req)
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				d.progress("")
				d.add(Check{Step: step, Name: "probe searchable", Target: base, Status: StatusOK, TraceID: traceID, Millis: since(sentAt),
					Detail: fmt.Sprintf("the probe trace is searchable %s after it was sent", time.Since(sentAt).Round(time.Millisecond))})
				return
			}
			lastErr = "GET /api/v1/traces/{id}: " + resp.Status
			if resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden {
				d.progress("")
				d.add(Check{Step: step, Name: "probe searchable", Target: base, Status: StatusFail, TraceID: traceID, Millis: since(sentAt),
					Detail: "the query API refused doctor: " + resp.Status,
					Remedy: "The server's UI and APIs need credentials: pass --api-token (SKYTRAIL_API_TOKEN) with one of its --api-token tokens."})
				return
			}
		} else if ctx.Err() == nil {
			lastErr = dialReason(err, d.cfg.DialTimeout)
		}
		select {
		case <-ctx.Done():
			d.progress("")
			d.add(Check{Step: step, Name: "probe searchable", Target: base, Status: StatusFail, TraceID: traceID, Millis: since(sentAt),
				Detail: fmt.Sprintf("the probe trace was acknowledged but not found within %s (%s)", d.cfg.Wait, lastErr),
				Remedy: "The server took the probe but it is not searchable: check --server points at the same SkyTrail the exporter sends to, and look for storage errors in the server's log."})
			return
		case <-tick.C:
		}
	}
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func short(id string) string {
	if len(id) > 12 {
		return id[:12] + "…"
	}
	return id
}
