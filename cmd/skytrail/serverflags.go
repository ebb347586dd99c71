package main

import (
	"flag"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/skytrail/skytrail/internal/server"
)

// serverFlags defines the server's settings on fs, writing into cfg, so that
// `skytrail server` and `skytrail demo` take the same flags.
func serverFlags(fs *flag.FlagSet, cfg *server.Config) (configFile *string, logLevel *string) {
	configFile = fs.String("config", "", "optional YAML file of settings, keys named as the flags (env SKYTRAIL_CONFIG)")
	fs.StringVar(&cfg.DataDir, "data", cfg.DataDir, "directory for embedded storage")
	fs.StringVar(&cfg.HTTPAddr, "http", cfg.HTTPAddr, "query API, UI and /metrics address (empty: off)")
	fs.StringVar(&cfg.OTLPGRPCAddr, "otlp-grpc", cfg.OTLPGRPCAddr, "OTLP gRPC address (empty: off)")
	fs.StringVar(&cfg.OTLPHTTPAddr, "otlp-http", cfg.OTLPHTTPAddr, "OTLP HTTP address (empty: off)")
	fs.StringVar(&cfg.SWGRPCAddr, "sw-grpc", cfg.SWGRPCAddr, "SkyWalking agent gRPC address (empty: off)")
	fs.StringVar(&cfg.SWHTTPAddr, "sw-http", cfg.SWHTTPAddr, "SkyWalking agent HTTP address (empty: off)")
	fs.StringVar(&cfg.SWToken, "sw-token", "", "token SkyWalking agents must send as Authentication (empty: none)")
	fs.DurationVar(&cfg.Retention, "retention", cfg.Retention, "how long spans are kept (whole days)")
	fs.DurationVar(&cfg.MetricsRetention, "metrics-retention", cfg.MetricsRetention, "how long service, instance, endpoint and edge metrics are kept")
	fs.DurationVar(&cfg.Analysis.ApdexThreshold, "apdex-threshold", 500*time.Millisecond, "apdex T: calls at most this long satisfy, up to 4T tolerate")
	fs.DurationVar(&cfg.Analysis.Instances.AliveTimeout, "instance-alive-timeout", 90*time.Second, "an instance silent this long is shown as not alive")
	fs.DurationVar(&cfg.Integrity.Grace, "integrity-grace", 30*time.Second, "how long after a trace's last span it is judged for /api/v1/diagnostics")
	fs.IntVar(&cfg.MaxRequest, "max-request-bytes", cfg.MaxRequest, "largest request accepted, after decompression")
	fs.Int64Var(&cfg.MaxInFlight, "max-inflight-bytes", cfg.MaxInFlight, "request bytes processed at once before clients are asked to retry")
	fs.IntVar(&cfg.Limits.MaxAttributes, "max-attributes", 256, "most attributes on one span (or resource)")
	fs.IntVar(&cfg.Limits.MaxValueBytes, "max-attribute-bytes", 64<<10, "largest attribute value")
	fs.Var((*byteSize)(&cfg.MemoryLimit), "memory-limit", "soft limit on the server's memory, such as 512MiB or 2GiB (0: none; GOMEMLIMIT, when set, wins)")
	fs.Var((*byteSize)(&cfg.MinFreeDisk), "min-free-disk", "free space kept on the data directory's disk, such as 256MiB; below it new data is refused with a retryable error (0: none)")
	logLevel = fs.String("log-level", "info", "debug, info, warn or error")
	return configFile, logLevel
}

// byteSize is a flag value of bytes, written plainly or with a KiB, MiB or
// GiB suffix.
type byteSize int64

func (b *byteSize) String() string {
	if b == nil || *b == 0 {
		return "0"
	}
	for _, u := range []struct {
		suffix string
		n      int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if int64(*b)%u.n == 0 {
			return strconv.FormatInt(int64(*b)/u.n, 10) + u.suffix
		}
	}
	return strconv.FormatInt(int64(*b), 10)
}

func (b *byteSize) Set(s string) error {
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		n      int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}, {"B", 1}} {
		if strings.HasSuffix(s, u.suffix) {
			s, mult = strings.TrimSuffix(s, u.suffix), u.n
			break
		}
	}
	n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	if err != nil || n < 0 {
		return fmt.Errorf("want a size such as 512MiB or 2GiB")
	}
	*b = byteSize(n * mult)
	return nil
}
