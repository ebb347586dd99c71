package doctor

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// reach checks that addr resolves, accepts a connection and, when tlsCfg
// is not nil, completes a TLS handshake. It reports whether the endpoint
// is reachable.
func (d *doctor) reach(ctx context.Context, step, addr string, tlsCfg *tls.Config) bool {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		d.add(Check{Step: step, Name: "address", Target: addr, Status: StatusFail, Detail: err.Error(),
			Remedy: "Give the endpoint as host:port or a URL with a port."})
		return false
	}
	start := time.Now()
	if net.ParseIP(host) != nil {
		d.add(Check{Step: step, Name: "DNS", Target: host, Status: StatusOK, Detail: "an IP address, nothing to resolve"})
	} else {
		ctx, cancel := context.WithTimeout(ctx, d.cfg.DialTimeout)
		ips, err := net.DefaultResolver.LookupHost(ctx, host)
		cancel()
		if err != nil {
			d.add(Check{Step: step, Name: "DNS", Target: host, Status: StatusFail, Detail: "cannot resolve " + host + ": " + err.Error(), Millis: since(start),
				Remedy: "Check the host name in the endpoint, and that this machine (the service's network: same pod, container or VPC) can resolve it."})
			return false
		}
		d.add(Check{Step: step, Name: "DNS", Target: host, Status: StatusOK, Detail: "resolves to " + strings.Join(ips, ", "), Millis: since(start)})
	}

	start = time.Now()
	dctx, cancel := context.WithTimeout(ctx, d.cfg.DialTimeout)
	defer cancel()
	conn, err := (&net.Dialer{}).DialContext(dctx, "tcp", addr)
	if err != nil {
		d.add(Check{Step: step, Name: "TCP", Target: addr, Status: StatusFail, Detail: dialReason(err, d.cfg.DialTimeout), Millis: since(start),
			Remedy: fmt.Sprintf("Nothing accepts connections on port %s: is the server running and listening there (skytrail server --otlp-grpc/--otlp-http/--sw-grpc), is the port right (OTLP gRPC 4317, OTLP HTTP 4318, SkyWalking 11800), and does no firewall or network policy drop it?", port)})
		return false
	}
	_ = conn.Close()
	d.add(Check{Step: step, Name: "TCP", Target: addr, Status: StatusOK, Detail: "connected", Millis: since(start)})

	if tlsCfg == nil {
		return true
	}
	start = time.Now()
	tconn, err := (&tls.Dialer{Config: tlsCfg}).DialContext(dctx, "tcp", addr)
	if err != nil {
		c := Check{Step: step, Name: "TLS", Target: addr, Status: StatusFail, Detail: dialReason(err, d.cfg.DialTimeout), Millis: since(start)}
		var rec tls.RecordHeaderError
		var cert *tls.CertificateVerificationError
		switch {
		case errors.As(err, &rec):
			c.Detail = "the server answers in plain text, not TLS"
			c.Remedy = "The endpoint uses TLS (https:// or no scheme without OTEL_EXPORTER_OTLP_INSECURE=true) but the server does not: use an http:// endpoint or set OTEL_EXPORTER_OTLP_INSECURE=true (otlptracegrpc.WithInsecure())."
		case errors.As(err, &cert):
			c.Remedy = "The server's certificate is not trusted for this name: point OTEL_EXPORTER_OTLP_CERTIFICATE at the CA that signed it, or use the name the certificate was issued for."
		default:
			c.Remedy = "The TLS handshake failed: check the server's certificate and that it serves TLS on this port."
		}
		d.add(c)
		return false
	}
	// With TLS 1.3 the client's handshake ends before the server has
	// checked the client's certificate: a refusal arrives as an alert on the
	// first read. An HTTP/2 server speaks first (its SETTINGS), so a short
	// read tells a refused certificate from an accepted one.
	_ = tconn.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	_, rerr := tconn.Read(make([]byte, 1))
	_ = tconn.Close()
	if rerr != nil && strings.Contains(rerr.Error(), "certificate required") {
		d.add(Check{Step: step, Name: "TLS", Target: addr, Status: StatusFail, Millis: since(start),
			Detail: "the server requires a client certificate (mutual TLS) and none was sent",
			Remedy: clientCertRemedy})
		return false
	}
	if rerr != nil && strings.Contains(rerr.Error(), "bad certificate") || strings.Contains(fmt.Sprint(rerr), "unknown certificate authority") {
		d.add(Check{Step: step, Name: "TLS", Target: addr, Status: StatusFail, Millis: since(start),
			Detail: "the server refused the client certificate: " + rerr.Error(), Remedy: clientCertRemedy})
		return false
	}
	d.add(Check{Step: step, Name: "TLS", Target: addr, Status: StatusOK, Detail: "handshake complete", Millis: since(start)})
	return true
}

const clientCertRemedy = "The server requires a client certificate signed by its --tls-client-ca: set OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE and OTEL_EXPORTER_OTLP_CLIENT_KEY (skytrail doctor --client-cert, --client-key)."

// grpcHealth asks the gRPC health service, with token as the SkyWalking
// Authentication metadata when not empty (SkyTrail's health service needs
// none, but a server in front of it may).
func (d *doctor) grpcHealth(ctx context.Context, step, addr string, tlsCfg *tls.Config, token string) bool {
	creds := insecure.NewCredentials()
	if tlsCfg != nil {
		creds = credentials.NewTLS(tlsCfg)
	}
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(creds))
	if err != nil {
		d.add(Check{Step: step, Name: "gRPC health", Target: addr, Status: StatusFail, Detail: err.Error()})
		return false
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(ctx, d.cfg.DialTimeout)
	defer cancel()
	if token != "" {
		ctx = metadata.AppendToOutgoingContext(ctx, "Authentication", token)
	}
	start := time.Now()
	resp, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{})
	c := Check{Step: step, Name: "gRPC health", Target: addr, Millis: since(start)}
	switch status.Code(err) {
	case codes.OK:
		c.Status, c.Detail = StatusOK, resp.GetStatus().String()
		if resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
			c.Status = StatusFail
			c.Remedy = "The server is up but not serving: see its log."
		}
	case codes.Unimplemented:
		c.Status, c.Detail = StatusWarn, "answers gRPC but has no health service"
		c.Remedy = "This is not SkyTrail, or an older SkyTrail: check the endpoint points at SkyTrail."
	case codes.Unauthenticated:
		c.Name = "authentication"
		c.Status, c.Detail = StatusFail, "the server refused the agent token: "+status.Convert(err).Message()
		c.Remedy = authRemedy(token)
	default:
		c.Status, c.Detail = StatusFail, grpcReason(err)
		c.Remedy = "The port accepts connections but does not speak gRPC as expected: "
		if strings.Contains(err.Error(), "http2") || strings.Contains(err.Error(), "HTTP/1") {
			c.Remedy = "This port speaks HTTP/1, not gRPC: OTLP gRPC is on 4317 and OTLP HTTP on 4318 (set OTEL_EXPORTER_OTLP_PROTOCOL to match the port); SkyWalking gRPC is on 11800."
		} else {
			c.Remedy += "check the port and whether TLS is expected."
		}
	}
	d.add(c)
	return c.Status != StatusFail
}

func authRemedy(token string) string {
	if token == "" {
		return "The server requires a token: set SW_AGENT_AUTHENTICATION (go2sky: reporter.WithAuthentication) to the server's --sw-token."
	}
	return "The token differs from the server's: set SW_AGENT_AUTHENTICATION (go2sky: reporter.WithAuthentication) to exactly the server's --sw-token (SKYTRAIL_SW_TOKEN)."
}

// serverHealth checks the query API answers.
func (d *doctor) serverHealth(ctx context.Context, base string) bool {
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, d.cfg.DialTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/healthz", nil)
	if err != nil {
		d.add(Check{Step: stepServer, Name: "query API", Target: base, Status: StatusFail, Detail: err.Error(), Remedy: "Give --server as a URL, such as http://skytrail:8080."})
		return false
	}
	resp, err := d.http.Do(req)
	if err != nil {
		d.add(Check{Step: stepServer, Name: "query API", Target: base, Status: StatusFail, Detail: dialReason(err, d.cfg.DialTimeout), Millis: since(start),
			Remedy: "Doctor cannot confirm probe traces arrive without the query API: pass --server with SkyTrail's HTTP address (default port 8080)."})
		return false
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		d.add(Check{Step: stepServer, Name: "query API", Target: base, Status: StatusFail, Detail: "GET /healthz: " + resp.Status, Millis: since(start),
			Remedy: "This address answers HTTP but is not SkyTrail's query API: pass --server with SkyTrail's HTTP address (default port 8080)."})
		return false
	}
	d.add(Check{Step: stepServer, Name: "query API", Target: base, Status: StatusOK, Detail: "healthy", Millis: since(start)})
	return true
}

// dialReason shortens a connection error to what an operator acts on.
func dialReason(err error, timeout time.Duration) string {
	var dnsErr *net.DNSError
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, syscall.ETIMEDOUT):
		return "no answer within " + timeout.String() + " (a firewall dropping packets, or the wrong host)"
	case errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH):
		return "no route to host"
	case errors.As(err, &dnsErr):
		return "cannot resolve " + dnsErr.Name
	}
	return err.Error()
}

// grpcReason is a gRPC error's message, with a refused connection named.
func grpcReason(err error) string {
	msg := status.Convert(err).Message()
	if strings.Contains(msg, "connection refused") {
		return "connection refused"
	}
	return status.Code(err).String() + ": " + msg
}

func since(t time.Time) float64 {
	return float64(time.Since(t).Microseconds()) / 1000
}
