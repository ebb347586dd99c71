package server

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"sort"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/net/netutil"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/skytrail/skytrail/internal/auth"
	"github.com/skytrail/skytrail/internal/tlsconfig"
)

// Security is who may reach the server and how (docs/security.md). The
// zero value, with DefaultSecurity's timeouts, is today's open server:
// no TLS, no tokens, no users.
type Security struct {
	// TLS serves every listener over TLS when its Cert and Key are set,
	// re-reading the files when they change; ClientCA requires client
	// certificates it signed (mutual TLS).
	TLS tlsconfig.Files
	// IngestTokens and IngestTokensFile are the bearer tokens OTLP exports
	// must carry (none: OTLP is open). SkyWalking agents keep Config.SWToken.
	IngestTokens     []string
	IngestTokensFile string
	// Auth is how the UI and the query APIs authenticate.
	Auth auth.Config
	// PprofAddr serves /debug/pprof on a listener of its own (empty: off).
	// It is never on the query listener: profiles and goroutine dumps are
	// for operators, not for whoever can see the UI.
	PprofAddr string
	// Timeouts of every HTTP listener: a client must send its headers
	// within ReadHeaderTimeout and its whole request within ReadTimeout; a
	// kept-alive connection idle for IdleTimeout is closed. A gRPC
	// connection must complete its handshakes within ReadHeaderTimeout.
	// Zero takes DefaultSecurity's.
	ReadHeaderTimeout, ReadTimeout, IdleTimeout time.Duration
	// MaxConnections bounds the open connections of each listener; more
	// wait in the kernel's queue until one closes (0: no bound).
	MaxConnections int
	// MaxConcurrentStreams bounds the calls one gRPC connection has open.
	MaxConcurrentStreams uint32
}

// DefaultSecurity is the documented default: open, with timeouts and
// connection bounds a slow or hostile client cannot hold the server with.
func DefaultSecurity() Security {
	return Security{
		ReadHeaderTimeout: 10 * time.Second,
		// A 16 MiB request arrives in well under a minute from any exporter
		// with a tenth of a megabit; a slower one holds its budget no longer.
		ReadTimeout:          time.Minute,
		IdleTimeout:          2 * time.Minute,
		MaxConnections:       4096,
		MaxConcurrentStreams: 256,
	}
}

// security is what Start made of Security.
type security struct {
	cfg    Security
	log    *slog.Logger
	tls    *tlsconfig.Reloader // nil: plaintext
	ingest *auth.Tokens
	guard  *auth.Guard
}

func newSecurity(cfg Security, log *slog.Logger, reg prometheus.Registerer) (*security, error) {
	// A zero timeout is the default, not none: a Config built without
	// Defaults must not leave the listeners open to slow clients.
	def := DefaultSecurity()
	for _, t := range []struct{ v, d *time.Duration }{
		{&cfg.ReadHeaderTimeout, &def.ReadHeaderTimeout}, {&cfg.ReadTimeout, &def.ReadTimeout}, {&cfg.IdleTimeout, &def.IdleTimeout},
	} {
		if *t.v <= 0 {
			*t.v = *t.d
		}
	}
	s := &security{cfg: cfg, log: log}
	var err error
	if cfg.TLS.Enabled() {
		if s.tls, err = tlsconfig.New(cfg.TLS, log); err != nil {
			return nil, err
		}
	} else if cfg.TLS.ClientCA != "" {
		return nil, fmt.Errorf("--tls-client-ca needs --tls-cert and --tls-key: client certificates are asked for during a TLS handshake")
	}
	if s.ingest, err = auth.ParseTokens("ingest token", cfg.IngestTokens, cfg.IngestTokensFile); err != nil {
		return nil, err
	}
	cfg.Auth.Public = append(cfg.Auth.Public, "/healthz")
	cfg.Auth.Registerer = reg
	if s.guard, err = auth.New(cfg.Auth); err != nil {
		return nil, err
	}
	return s, nil
}

// listener wraps a bound listener: at most MaxConnections at once, TLS
// (with ALPN nextProtos) when configured.
func (s *security) listener(ln net.Listener, nextProtos ...string) net.Listener {
	if s.cfg.MaxConnections > 0 {
		ln = netutil.LimitListener(ln, s.cfg.MaxConnections)
	}
	if s.tls != nil && nextProtos != nil {
		ln = tls.NewListener(ln, s.tls.ServerConfig(nextProtos...))
	}
	return ln
}

// httpServer is an HTTP server for h with the configured timeouts.
func (s *security) httpServer(h http.Handler) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: s.cfg.ReadHeaderTimeout,
		ReadTimeout:       s.cfg.ReadTimeout,
		IdleTimeout:       s.cfg.IdleTimeout,
		MaxHeaderBytes:    64 << 10, // far above any exporter's or browser's headers
		// Failed TLS handshakes (scanners, a client without a certificate)
		// would fill the log at the default level.
		ErrorLog: slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
}

// grpcOptions are the options of every gRPC server: TLS credentials (so
// handlers see the client's certificate) and the stream bound.
func (s *security) grpcOptions() []grpc.ServerOption {
	var opts []grpc.ServerOption
	if s.tls != nil {
		opts = append(opts, grpc.Creds(credentials.NewTLS(s.tls.ServerConfig("h2"))))
	}
	if s.cfg.MaxConcurrentStreams > 0 {
		opts = append(opts, grpc.MaxConcurrentStreams(s.cfg.MaxConcurrentStreams))
	}
	// A connection must finish its TLS and HTTP/2 handshakes as an HTTP
	// client must send its headers (gRPC's own default allows 120 s).
	opts = append(opts, grpc.ConnectionTimeout(s.cfg.ReadHeaderTimeout))
	return opts
}

// protect wraps the query listener's handler: security headers on every
// answer, then authentication.
func (s *security) protect(h http.Handler) http.Handler {
	h = s.guard.Wrap(h)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		// No page of SkyTrail is meant to be framed (clickjacking); an API
		// answer is data, never a document to run. The UI sets its own,
		// stricter-for-a-page CSP, which keeps frame-ancestors 'none'.
		hd.Set("X-Frame-Options", "DENY")
		hd.Set("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'")
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("Referrer-Policy", "same-origin")
		h.ServeHTTP(w, r)
	})
}

// pprofHandler serves Go's profiles, for a full identity only when the
// query listener asks for one.
func (s *security) pprofHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return s.guard.Admin(mux)
}

// logPosture says, once every listener is up, who can reach what: TLS and
// authentication per listener, and a warning for each listener that takes
// anything from anyone on a non-loopback address.
func (s *security) logPosture(log *slog.Logger, addrs map[string]string, swToken bool) {
	tlsState := "off"
	if s.tls != nil {
		tlsState = "on"
		if s.tls.Mutual() {
			tlsState = "mutual (client certificates required)"
		}
	}
	names := make([]string, 0, len(addrs))
	for name := range addrs {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		addr := addrs[name]
		var who, what, fix string
		open := false
		switch name {
		case "query API":
			who, what, fix = s.guard.Describe(), "the UI and every API are open to anyone", "--auth-users, --auth-proxy-header or --api-token"
			open = !s.guard.Enabled()
		case "pprof":
			who, what, fix = s.guard.Describe(), "profiles are open to anyone", "--auth-users or --auth-proxy-header, or a loopback --pprof address"
			open = !s.guard.Enabled()
		case "OTLP gRPC", "OTLP HTTP":
			who, what, fix = "no ingest token", "takes spans from anyone", "--ingest-token"
			if n := s.ingest.Len(); n > 0 {
				who = fmt.Sprintf("%d ingest tokens", n)
			}
			open = s.ingest.Len() == 0
		case "SkyWalking gRPC", "SkyWalking HTTP":
			who, what, fix = "no agent token", "takes agent data from anyone", "--sw-token"
			if swToken {
				who = "agent token"
			}
			open = !swToken
		}
		if s.tls != nil && s.tls.Mutual() {
			open = false // only holders of a client certificate get in
		}
		attrs := []any{"listener", name, "addr", addr, "tls", tlsState, "auth", who}
		switch {
		case open && !loopback(addr):
			log.Warn(fmt.Sprintf("%s: %s who can reach %s (set %s, or bind a loopback address; docs/security.md)", name, what, addr, fix), attrs...)
		case s.tls == nil && !open && !loopback(addr):
			log.Warn(fmt.Sprintf("%s: credentials cross the network in plain text on %s (set --tls-cert and --tls-key, or put a TLS proxy in front)", name, addr), attrs...)
		default:
			log.Info("security", attrs...)
		}
	}
}

// loopback tells whether a bound address is reachable from this machine only.
func loopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Scheme is the scheme of the server's HTTP listeners: "https" when it
// serves TLS.
func (s *Server) Scheme() string {
	if s.sec != nil && s.sec.tls != nil {
		return "https"
	}
	return "http"
}
