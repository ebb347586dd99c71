package main

import (
	"flag"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/skytrail/skytrail/internal/alerting"
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
	fs.StringVar(&cfg.Spans.URL, "spans-url", "", "keep spans, the trace-ID index and agent logs in the VictoriaLogs server or cluster at this URL (such as http://vl:9428) instead of in --data-dir; --retention must not exceed its -retentionPeriod (docs/cluster.md)")
	fs.StringVar(&cfg.Spans.InsertURL, "spans-insert-url", "", "VictoriaLogs URL spans are written to (a vlinsert), when not --spans-url")
	fs.StringVar(&cfg.Spans.SelectURL, "spans-select-url", "", "VictoriaLogs URL spans are queried at (a vlselect), when not --spans-url")
	fs.StringVar(&cfg.RemoteMetrics.WriteURL, "metrics-write-url", "", "keep metrics in the Prometheus-compatible store taking remote write at this URL (such as http://vm:8428/api/v1/write) instead of in --data-dir; needs --metrics-query-url (docs/cluster.md)")
	fs.StringVar(&cfg.RemoteMetrics.QueryURL, "metrics-query-url", "", "base URL of the PromQL HTTP API metrics are read from (such as http://vm:8428), with --metrics-write-url")
	fs.StringVar(&cfg.RemoteMetrics.Node, "node-name", "", "this node's name in the node label of the metrics it writes to a remote store (default: the host name)")
	fs.DurationVar(&cfg.RemoteMetrics.Timeout, "metrics-timeout", 10*time.Second, "longest wait for one request to the remote metric store")
	fs.DurationVar(&cfg.Spans.Timeout, "spans-timeout", 10*time.Second, "longest wait for one request to the remote span store; a write that takes longer fails retryably (503, UNAVAILABLE)")
	fs.DurationVar(&cfg.Analysis.ApdexThreshold, "apdex-threshold", 500*time.Millisecond, "apdex T: calls at most this long satisfy, up to 4T tolerate")
	fs.DurationVar(&cfg.Analysis.Instances.AliveTimeout, "instance-alive-timeout", 90*time.Second, "an instance silent this long is shown as not alive")
	fs.DurationVar(&cfg.Integrity.Grace, "integrity-grace", 30*time.Second, "how long after a trace's last span it is judged for /api/v1/diagnostics")
	fs.IntVar(&cfg.MaxRequest, "max-request-bytes", cfg.MaxRequest, "largest request accepted, after decompression")
	fs.Int64Var(&cfg.MaxInFlight, "max-inflight-bytes", cfg.MaxInFlight, "request bytes processed at once before clients are asked to retry")
	fs.IntVar(&cfg.Limits.MaxAttributes, "max-attributes", 256, "most attributes on one span (or resource)")
	fs.IntVar(&cfg.Limits.MaxValueBytes, "max-attribute-bytes", 64<<10, "largest attribute value")
	fs.Var((*byteSize)(&cfg.MemoryLimit), "memory-limit", "soft limit on the server's memory, such as 512MiB or 2GiB (0: none; GOMEMLIMIT, when set, wins)")
	fs.Var((*byteSize)(&cfg.MinFreeDisk), "min-free-disk", "free space kept on the data directory's disk, such as 256MiB; below it new data is refused with a retryable error (0: none)")
	fs.BoolVar(&cfg.WAL, "wal", cfg.WAL, "write-ahead log in <data>/wal: a request is acknowledged only once it is durable there, and replayed after a crash (false: up to about a second of acknowledged data is lost to a kill or power loss)")
	fs.Var((*walSync)(&cfg.WALSync), "wal-sync", "always: fsync the write-ahead log before every acknowledgement (concurrent requests share one); or an interval such as 100ms: acknowledge once written, fsync that often (a kill loses nothing, a power loss up to the interval)")
	fs.Var((*stringList)(&cfg.Tenants), "tenants", "tenants kept apart beside the default one, each with its own stores in <data>/tenants/NAME, figures and queries; a request's tenant comes from its token or user (tenant=NAME in the tokens or users file) or its X-Scope-OrgID header (comma-separated or repeated; docs/security.md)")
	alertingFlags(fs, &cfg.Alerting)
	clusterFlags(fs, &cfg.Cluster)
	securityFlags(fs, &cfg.Security)
	logLevel = fs.String("log-level", "info", "debug, info, warn or error")
	return configFile, logLevel
}

// alertingFlags defines the rules' and notifications' settings
// (docs/alarms.md).
func alertingFlags(fs *flag.FlagSet, a *alerting.Config) {
	fs.Var((*stringList)(&a.RuleFiles), "rules", "Prometheus rule files or globs, comma-separated or repeated (reloaded on SIGHUP and POST /-/reload)")
	fs.BoolVar(&a.DefaultRules, "default-rules", a.DefaultRules, "evaluate SkyTrail's built-in alerting rules (docs/alarms.md)")
	fs.StringVar(&a.NotifyConfig, "alerting-config", "", "Alertmanager configuration file: routes, receivers (plus dingtalk_configs, feishu_configs, wecom_configs), inhibit_rules (empty: alerts are shown, sent nowhere)")
	fs.Var((*stringList)(&a.ForwardTo), "alertmanager-url", "external Alertmanager every alert is also sent to (its /api/v2/alerts), such as http://alertmanager:9093; repeatable or comma-separated")
	fs.StringVar(&a.ExternalURL, "external-url", "", "URL users reach SkyTrail's UI at, for the links in notifications (default http://<hostname>:<--http port>)")
	fs.DurationVar(&a.EvalInterval, "rules-eval-interval", 10*time.Second, "how often rule groups without an interval of their own are evaluated")
	fs.IntVar(&a.MaxSeriesPerRule, "rules-max-series", 10_000, "most series one rule's expression may give; over it the evaluation is refused and reported (negative: no cap)")
	t := &a.Thresholds
	d := alerting.DefaultThresholds()
	fs.Float64Var(&t.ServiceErrorRate, "alert-service-error-rate", d.ServiceErrorRate, "default rule: share of a service's calls failing, 0.05 = 5% (0: rule off)")
	fs.DurationVar(&t.ServiceP99, "alert-service-p99", d.ServiceP99, "default rule: a service's p99 latency (0: rule off)")
	fs.Float64Var(&t.EndpointErrorRate, "alert-endpoint-error-rate", d.EndpointErrorRate, "default rule: share of an endpoint's calls failing (0: rule off)")
	fs.DurationVar(&t.EndpointP99, "alert-endpoint-p99", d.EndpointP99, "default rule: an endpoint's p99 latency (0: rule off)")
	fs.Float64Var(&t.MinCallRate, "alert-min-call-rate", d.MinCallRate, "calls a second a service or endpoint needs over the window before its error rate or p99 alerts")
	fs.DurationVar(&t.Window, "alert-window", d.Window, "time the default rules judge figures over")
	fs.DurationVar(&t.For, "alert-for", d.For, "how long a figure stays over its threshold before the default rule fires")
	fs.DurationVar(&t.InstanceSilence, "alert-instance-silence", d.InstanceSilence, "default rule: an instance silent this long while its service reports (0: rule off)")
	fs.BoolVar(&t.Integrity, "alert-integrity", d.Integrity, "default rules on the integrity findings: lost propagation, detached roots, refused spans, agents without spans")
}

// stringList is a flag of values given comma-separated, repeated, or as
// a YAML list in the config file.
type stringList []string

func (l *stringList) String() string {
	if l == nil {
		return ""
	}
	return strings.Join(*l, ",")
}

func (l *stringList) Set(s string) error {
	for _, v := range strings.Split(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			*l = append(*l, v)
		}
	}
	return nil
}

// byteSize is a flag value of bytes, written plainly or with a KiB, MiB or
// GiB suffix.
// walSync is --wal-sync: "always" (0) or an fsync interval.
type walSync time.Duration

func (w *walSync) String() string {
	if w == nil || *w == 0 {
		return "always"
	}
	return time.Duration(*w).String()
}

func (w *walSync) Set(s string) error {
	if s = strings.TrimSpace(s); s == "always" {
		*w = 0
		return nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return fmt.Errorf("want always, or an fsync interval such as 100ms")
	}
	*w = walSync(d)
	return nil
}

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
