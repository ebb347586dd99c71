// Package server assembles SkyTrail: storage, pipeline, receivers and query
// APIs, each listener on its own address, started and stopped together.
package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"google.golang.org/grpc"
	_ "google.golang.org/grpc/encoding/gzip" // OTLP exporters may gzip their requests
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/skytrail/skytrail/internal/alerting"
	"github.com/skytrail/skytrail/internal/analysis"
	"github.com/skytrail/skytrail/internal/analysis/integrity"
	"github.com/skytrail/skytrail/internal/auth"
	"github.com/skytrail/skytrail/internal/cluster"
	"github.com/skytrail/skytrail/internal/pipeline"
	"github.com/skytrail/skytrail/internal/query"
	"github.com/skytrail/skytrail/internal/query/jaeger"
	"github.com/skytrail/skytrail/internal/receiver/logship"
	"github.com/skytrail/skytrail/internal/receiver/otlp"
	"github.com/skytrail/skytrail/internal/receiver/skywalking"
	"github.com/skytrail/skytrail/internal/storage/diskspace"
	"github.com/skytrail/skytrail/internal/storage/metricstore"
	"github.com/skytrail/skytrail/internal/storage/spanstore"
	"github.com/skytrail/skytrail/internal/tenant"
)

// Config is everything `skytrail server` takes. An empty address turns
// that listener off.
type Config struct {
	DataDir      string
	HTTPAddr     string // query API, UI and /metrics
	OTLPGRPCAddr string
	OTLPHTTPAddr string
	SWGRPCAddr   string
	SWHTTPAddr   string
	SWToken      string
	Retention    time.Duration
	// Spans, when its URLs are set, keeps spans, the trace-ID index and
	// agent logs in a VictoriaLogs server or cluster (docs/cluster.md).
	Spans RemoteSpans
	// RemoteMetrics, when its URLs are set, keeps the metrics in a
	// Prometheus-compatible store (docs/cluster.md).
	RemoteMetrics RemoteMetrics
	// MetricsRetention is how long the metric store keeps RED metrics.
	MetricsRetention time.Duration
	Analysis         analysis.Config
	MaxRequest       int   // bytes per request, after decompression
	MaxInFlight      int64 // bytes of requests being processed at once
	Limits           pipeline.Limits
	// MemoryLimit is a soft limit on the process' memory, in bytes (0:
	// none): the Go runtime collects harder near it. GOMEMLIMIT, when set,
	// takes precedence.
	MemoryLimit int64
	Logger      *slog.Logger
	// Integrity tunes the trace integrity analysis (/api/v1/diagnostics).
	Integrity integrity.Config
	// MinFreeDisk is the free space, in bytes, the stores keep in DataDir
	// (0: none): below it they refuse new data with a retryable error.
	MinFreeDisk int64
	// Alerting configures rules and notifications (docs/alarms.md); its
	// Dir, Registerer, Gatherer, Traces, Findings and Logger are set by
	// Start.
	Alerting alerting.Config
	// Security is TLS, tokens, users, timeouts and connection bounds.
	Security Security
	// WAL turns the write-ahead log in DataDir/wal on: a request is
	// acknowledged only once its batch is appended and synced there, and
	// what the stores had not made durable is replayed at start.
	WAL bool
	// WALSync is 0 to fsync before every acknowledgement (group commit),
	// or how often to fsync while acknowledging once the record is written
	// to the operating system (survives a kill, not a power loss).
	WALSync time.Duration
	// Cluster is --peers and --ruler: spans routed between nodes by trace
	// ID, and alarm rules evaluated on one node (docs/cluster.md).
	Cluster cluster.Config
	// Tenants are kept apart beside the default tenant (docs/security.md):
	// each with its own stores in DataDir/tenants/NAME, figures and query
	// handlers. None: one tenant, the data directory as before tenants.
	Tenants []string
}

// gcPercentUnderLimit is the collector's GOGC when the server runs under a
// memory limit and the environment sets none.
const gcPercentUnderLimit = 200

// Defaults are the documented defaults (docs/configuration.md).
func Defaults() Config {
	return Config{
		DataDir:          "data",
		HTTPAddr:         ":8080",
		OTLPGRPCAddr:     ":4317",
		OTLPHTTPAddr:     ":4318",
		SWGRPCAddr:       ":11800",
		SWHTTPAddr:       ":12800",
		Retention:        7 * 24 * time.Hour,
		MetricsRetention: 15 * 24 * time.Hour,
		MaxRequest:       16 << 20,
		MaxInFlight:      64 << 20,
		MemoryLimit:      384 << 20,
		MinFreeDisk:      diskspace.DefaultMinFree,
		Alerting:         alerting.Config{DefaultRules: true, Thresholds: alerting.DefaultThresholds()},
		Security:         DefaultSecurity(),
		WAL:              true,
	}
}

// Server is a running SkyTrail.
type Server struct {
	cfg      Config
	log      *slog.Logger
	Spans    *spanstore.Store
	Metrics  *metricstore.Store
	Analyser *analysis.Analyser
	// Integrity judges traces for lost context and silent agents.
	Integrity *integrity.Analyser
	// Pipeline is the front door every receiver hands its data to.
	Pipeline *pipeline.Pipeline
	// Registry holds the server's own metrics, served on /metrics.
	Registry *prometheus.Registry
	// Alerting evaluates the rules and sends notifications; nil on a node
	// of --peers without --ruler.
	Alerting *alerting.Alerting
	// Cluster routes spans to the peers owning their traces; nil without
	// --peers.
	Cluster *cluster.Router
	// tenants are the configured tenants; cores holds each one's stores,
	// analysis and handlers (the fields above are the default tenant's).
	tenants *tenant.Set
	cores   map[string]*core

	sec         *security
	grpcServers []*grpc.Server
	httpServers []*http.Server
	// Addrs maps listener names to the address each is bound to (useful
	// when the configuration asked for port 0).
	Addrs map[string]string
	wg    sync.WaitGroup

	stopOnce sync.Once
	stopErr  error
}

// Start opens storage and starts every configured listener.
func Start(cfg Config) (*Server, error) {
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	if cfg.MaxInFlight <= 0 {
		cfg.MaxInFlight = Defaults().MaxInFlight
	}
	if cfg.MaxRequest <= 0 {
		cfg.MaxRequest = Defaults().MaxRequest
	}
	if cfg.Retention <= 0 {
		cfg.Retention = Defaults().Retention
	}
	if cfg.MemoryLimit > 0 && os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(cfg.MemoryLimit)
		if os.Getenv("GOGC") == "" {
			// With the limit bounding the heap, the collector may let it
			// grow to three times what is live rather than two: a tenth
			// less CPU a log line at ingest, for a peak RSS under log
			// ingest of 290-400 MiB rather than 220-300 (docs/benchmarks.md).
			// Under span ingest flat out the limit, not this, sets the pace.
			debug.SetGCPercent(gcPercentUnderLimit)
		}
	}
	// One registry a server, passed to every part: two servers in one
	// process (tests, the demo) keep their figures apart.
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	sec, err := newSecurity(cfg.Security, log, reg)
	if err != nil {
		return nil, err
	}

	tenants, err := tenant.NewSet(cfg.Tenants)
	if err != nil {
		return nil, err
	}
	if err := sec.checkTenants(tenants); err != nil {
		return nil, err
	}
	if tenants.Multi() && cfg.Spans.enabled() {
		return nil, errors.New("--tenants with --spans-url is not supported yet: every tenant would share the VictoriaLogs account (docs/security.md)")
	}
	if tenants.Multi() && cfg.RemoteMetrics.enabled() {
		return nil, errors.New("--tenants with --metrics-write-url is not supported yet: every tenant would write the same series to the remote store (docs/security.md)")
	}
	if tenants.Multi() && cfg.Cluster.Enabled() {
		return nil, errors.New("--tenants with --peers is not supported yet: spans forwarded to a peer do not carry their tenant (docs/cluster.md)")
	}
	if cfg.Cluster.Enabled() {
		if cfg.Security.TLS.Enabled() {
			return nil, errors.New("--peers with --tls-cert is not supported yet: nodes forward spans to each other over plaintext gRPC (docs/cluster.md)")
		}
		if (len(cfg.Security.IngestTokens) > 0 || cfg.Security.IngestTokensFile != "") && cfg.Cluster.Token == "" {
			return nil, errors.New("--peers with ingest tokens needs --peer-token (one of the tokens), sent with the spans forwarded to peers")
		}
	}
	if cfg.MetricsRetention <= 0 {
		cfg.MetricsRetention = Defaults().MetricsRetention
	}
	if cfg.Alerting.ExternalURL == "" {
		cfg.Alerting.ExternalURL = externalURL(cfg.HTTPAddr)
	}
	s := &Server{cfg: cfg, log: log, Registry: reg, Addrs: map[string]string{}, sec: sec, tenants: tenants, cores: map[string]*core{}}

	// The listeners are known once they are bound, after the routes: the
	// status API reads a copy taken then.
	var listening atomic.Pointer[query.Status]
	startedAt := time.Now().UTC()
	status := func() query.Status {
		if st := listening.Load(); st != nil {
			return *st
		}
		return query.Status{Listeners: map[string]string{}, StartedAt: startedAt}
	}
	if err := s.openCores(status); err != nil {
		_ = s.Shutdown(context.Background())
		return nil, err
	}
	def := s.cores[tenant.Default]
	s.Spans, s.Metrics, s.Analyser, s.Integrity, s.Alerting, s.Pipeline = def.Spans, def.Metrics, def.Analyser, def.Integrity, def.Alerting, def.Pipeline
	s.Cluster = def.Cluster // --peers runs with one tenant only
	// Without --tenants, every request goes to the default tenant and
	// X-Scope-OrgID is ignored, as before tenants existed.
	var route func(*auth.Identity, string) (*pipeline.Pipeline, error)
	if tenants.Multi() {
		route = s.route
	}
	otlpRecv := otlp.New(s.Pipeline, otlp.Config{MaxRequestBytes: cfg.MaxRequest, Tokens: sec.ingest, Route: route})
	swOpts := skywalking.Options{Token: cfg.SWToken, MaxRecvMsgSize: cfg.MaxRequest, Logger: log, GRPCServerOptions: sec.grpcOptions()}
	if tenants.Multi() {
		swOpts.Tenants = s.agentTenant
	}

	mux := http.NewServeMux()
	mux.Handle("GET /metrics", s.metricsHandler())
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) })
	mux.Handle("/", s.tenantAPI()) // the UI and every query API, the request's tenant's

	start := func() error {
		if err := s.serveHTTP("query API", cfg.HTTPAddr, sec.protect(mux)); err != nil {
			return err
		}
		// Profiles of a running server, for "profile before you optimise".
		if err := s.serveHTTP("pprof", cfg.Security.PprofAddr, sec.pprofHandler()); err != nil {
			return err
		}
		if cfg.OTLPGRPCAddr != "" {
			gs := otlpRecv.NewGRPCServer(sec.grpcOptions()...)
			hs := health.NewServer()                   // for `skytrail doctor`, load balancers and peers
			if s.Cluster != nil && s.Alerting != nil { // this node is the ruler
				hs.SetServingStatus(cluster.RulerHealthService, healthpb.HealthCheckResponse_SERVING)
			}
			healthpb.RegisterHealthServer(gs, hs)
			if err := s.serveGRPC("OTLP gRPC", cfg.OTLPGRPCAddr, gs); err != nil {
				return err
			}
		}
		// The log shippers' APIs (Elasticsearch bulk, Loki push, JSON lines)
		// share the OTLP HTTP port: it is the one ingest port over HTTP that
		// every deployment opens, with the same ingest tokens.
		ingestMux := http.NewServeMux()
		ingestMux.Handle("/", otlpRecv.HTTPHandler())
		logship.New(s.Pipeline, logship.Config{MaxRequestBytes: cfg.MaxRequest, Tokens: sec.ingest, Route: route}).Register(ingestMux)
		if err := s.serveHTTP("OTLP HTTP", cfg.OTLPHTTPAddr, ingestMux); err != nil {
			return err
		}
		if cfg.SWGRPCAddr != "" {
			gs := skywalking.NewGRPCServer(s.Pipeline, swOpts)
			healthpb.RegisterHealthServer(gs, health.NewServer())
			if err := s.serveGRPC("SkyWalking gRPC", cfg.SWGRPCAddr, gs); err != nil {
				return err
			}
		}
		return s.serveHTTP("SkyWalking HTTP", cfg.SWHTTPAddr, skywalking.NewHTTPHandler(s.Pipeline, swOpts))
	}
	if err := start(); err != nil {
		_ = s.Shutdown(context.Background())
		return nil, err
	}
	st := query.Status{Listeners: map[string]string{}, StartedAt: startedAt}
	for name, addr := range s.Addrs {
		if name != "pprof" { // not advertised
			st.Listeners[name] = addr
		}
	}
	listening.Store(&st)
	sec.logPosture(log, s.Addrs, cfg.SWToken != "")
	return s, nil
}

func (s *Server) listen(name, addr string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("%s: listen on %s: %w", name, addr, err)
	}
	s.Addrs[name] = ln.Addr().String()
	s.log.Info("listening", "listener", name, "addr", ln.Addr().String())
	return ln, nil
}

func (s *Server) serveHTTP(name, addr string, h http.Handler) error {
	if addr == "" {
		return nil
	}
	ln, err := s.listen(name, addr)
	if err != nil {
		return err
	}
	ln = s.sec.listener(ln, "h2", "http/1.1")
	hs := s.sec.httpServer(h)
	s.httpServers = append(s.httpServers, hs)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if err := hs.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("listener stopped", "listener", name, "err", err)
		}
	}()
	return nil
}

func (s *Server) serveGRPC(name, addr string, gs *grpc.Server) error {
	ln, err := s.listen(name, addr)
	if err != nil {
		return err
	}
	ln = s.sec.listener(ln) // TLS is the server's credentials
	s.grpcServers = append(s.grpcServers, gs)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if err := gs.Serve(ln); err != nil {
			s.log.Error("listener stopped", "listener", name, "err", err)
		}
	}()
	return nil
}

// Shutdown stops accepting requests, lets in-flight ones finish (until ctx
// ends), then flushes and closes storage, however long the wait took: what
// was acknowledged is on disk.
// Calling it again returns the first call's result.
func (s *Server) Shutdown(ctx context.Context) error {
	s.stopOnce.Do(func() { s.stopErr = s.shutdown(ctx) })
	return s.stopErr
}

func (s *Server) shutdown(ctx context.Context) error {
	var wg sync.WaitGroup
	for _, gs := range s.grpcServers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			done := make(chan struct{})
			go func() { gs.GracefulStop(); close(done) }()
			select {
			case <-done:
			case <-ctx.Done():
				gs.Stop()
			}
		}()
	}
	for _, hs := range s.httpServers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := hs.Shutdown(ctx); err != nil {
				_ = hs.Close()
			}
		}()
	}
	wg.Wait()
	s.wg.Wait()
	// ctx bounded the wait for in-flight requests; the flush comes after it
	// whatever that wait took. A ctx spent on an agent's stream that never
	// ended (gRPC's graceful stop waits for it) must not skip the analysis'
	// last minutes or leave the write-ahead log unemptied.
	ctx = context.WithoutCancel(ctx)
	// Each tenant's write-ahead log stops checkpointing before any store
	// closes; then the tenants close side by side.
	for _, c := range s.cores {
		c.stopCheckpoints()
	}
	errs := make([]error, 0, len(s.cores))
	var mu sync.Mutex
	for _, c := range s.cores {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := c.close(ctx)
			if err != nil && s.tenants.Multi() {
				err = fmt.Errorf("tenant %s: %w", c.name, err)
			}
			mu.Lock()
			errs = append(errs, err)
			mu.Unlock()
		}()
	}
	wg.Wait()
	s.log.Info("storage flushed and closed")
	return errors.Join(errs...)
}

// externalURL is where the UI is reached, for links in notifications when
// no --external-url is set: this host's name and the query API's port.
func externalURL(httpAddr string) string {
	host, port, err := net.SplitHostPort(httpAddr)
	if err != nil || port == "" || port == "0" {
		return "http://localhost:8080"
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		if h, err := os.Hostname(); err == nil && h != "" {
			host = h
		} else {
			host = "localhost"
		}
	}
	return "http://" + net.JoinHostPort(host, port)
}

// dependencies serves the Jaeger API's dependency links from the analysis.
type dependencies struct{ a *analysis.Analyser }

func (d dependencies) Dependencies(ctx context.Context, end time.Time, lookback time.Duration) ([]jaeger.Dependency, error) {
	links, err := d.a.Dependencies(ctx, end, lookback)
	out := make([]jaeger.Dependency, len(links))
	for i, l := range links {
		out[i] = jaeger.Dependency{Parent: l.Parent, Child: l.Child, CallCount: l.CallCount}
	}
	return out, err
}
