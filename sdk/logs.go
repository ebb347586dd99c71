package sdk

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"strings"

	"go.opentelemetry.io/contrib/bridges/otelslog"
	"go.opentelemetry.io/otel/exporters/otlp/otlplog/otlploggrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlplog/otlploghttp"
	"go.opentelemetry.io/otel/log/global"
	sdklog "go.opentelemetry.io/otel/sdk/log"
	"go.opentelemetry.io/otel/sdk/resource"
	"google.golang.org/grpc/credentials"
)

// WithLogs also exports logs over OTLP, to the same endpoint as spans: Start
// sets up a log provider with the service's resource (made global:
// go.opentelemetry.io/otel/log/global), and makes slog.Default() write each
// record to it, through OpenTelemetry's slog bridge, as well as where it
// wrote before. A record logged with a context that holds a span
// (slog.InfoContext(ctx, ...)) carries that span's trace and span IDs, so
// SkyTrail shows it under the span and finds it by its trace. Its
// attributes (order_id, ...) are the record's fields. docs/sdk.md shows
// zap's set-up.
func WithLogs() Option { return func(c *config) { c.logs = true } }

// startLogs sets up log export as WithLogs says, and returns its shutdown.
func startLogs(ctx context.Context, c *config, t target, res *resource.Resource) (func(context.Context) error, error) {
	exp, err := newLogExporter(ctx, c, t)
	if err != nil {
		return nil, err
	}
	var batchOpts []sdklog.BatchProcessorOption
	if c.batchTimeout > 0 {
		batchOpts = append(batchOpts, sdklog.WithExportInterval(c.batchTimeout))
	}
	lp := sdklog.NewLoggerProvider(sdklog.WithResource(res), sdklog.WithProcessor(sdklog.NewBatchProcessor(exp, batchOpts...)))
	global.SetLoggerProvider(lp)
	bridge := otelslog.NewHandler(logScope, otelslog.WithLoggerProvider(lp))
	previous := slog.Default()
	local := previous.Handler()
	if fmt.Sprintf("%T", local) == "*slog.defaultHandler" {
		// slog's own default writes through the log package, which
		// slog.SetDefault points at the new handler: kept as it is, every
		// record would come back to it. The same text, to stderr, instead.
		local = slog.NewTextHandler(os.Stderr, nil)
	}
	installed := fanout{local, bridge}
	slog.SetDefault(slog.New(installed))
	return func(ctx context.Context) error {
		if slog.Default().Handler() == slog.Handler(installed) {
			slog.SetDefault(previous)
		}
		return lp.Shutdown(ctx)
	}, nil
}

// logScope names the instrumentation scope of the bridged records.
const logScope = "github.com/skytrail/skytrail/sdk"

func newLogExporter(ctx context.Context, c *config, t target) (sdklog.Exporter, error) {
	u := *t.url
	var (
		exp sdklog.Exporter
		err error
	)
	switch t.protocol {
	case ProtocolHTTP:
		u.Path = logsPath(&u)
		o := []otlploghttp.Option{otlploghttp.WithEndpointURL(u.String())}
		if c.tlsConfig != nil && u.Scheme == "https" {
			o = append(o, otlploghttp.WithTLSClientConfig(c.tlsConfig))
		}
		if c.headers != nil {
			o = append(o, otlploghttp.WithHeaders(c.headers))
		}
		if c.timeout > 0 {
			o = append(o, otlploghttp.WithTimeout(c.timeout))
		}
		exp, err = otlploghttp.New(ctx, o...)
	default:
		o := []otlploggrpc.Option{otlploggrpc.WithEndpointURL(u.String())}
		if c.tlsConfig != nil && u.Scheme == "https" {
			o = append(o, otlploggrpc.WithTLSCredentials(credentials.NewTLS(c.tlsConfig)))
		}
		if c.headers != nil {
			o = append(o, otlploggrpc.WithHeaders(c.headers))
		}
		if c.timeout > 0 {
			o = append(o, otlploggrpc.WithTimeout(c.timeout))
		}
		exp, err = otlploggrpc.New(ctx, o...)
	}
	if err != nil {
		return nil, fmt.Errorf("skytrail sdk: creating the %s log exporter for %s: %w", t.protocol, u.String(), err)
	}
	return exp, nil
}

// logsPath is the OTLP/HTTP logs path beside the traces one.
func logsPath(u *url.URL) string {
	if base, ok := strings.CutSuffix(u.Path, "/v1/traces"); ok {
		return base + "/v1/logs"
	}
	return "/v1/logs"
}

// fanout hands every record to each of its handlers.
type fanout [2]slog.Handler

func (f fanout) Enabled(ctx context.Context, l slog.Level) bool {
	return f[0].Enabled(ctx, l) || f[1].Enabled(ctx, l)
}

func (f fanout) Handle(ctx context.Context, r slog.Record) error {
	var first error
	for _, h := range f {
		if h.Enabled(ctx, r.Level) {
			if err := h.Handle(ctx, r.Clone()); err != nil && first == nil {
				first = err
			}
		}
	}
	return first
}

func (f fanout) WithAttrs(attrs []slog.Attr) slog.Handler {
	return fanout{f[0].WithAttrs(attrs), f[1].WithAttrs(attrs)}
}

func (f fanout) WithGroup(name string) slog.Handler {
	return fanout{f[0].WithGroup(name), f[1].WithGroup(name)}
}
