package sdk

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"syscall"
	"time"
)

// checkReachable connects once to the exporter's endpoint (with a TLS
// handshake when it uses TLS, so a certificate problem shows too) and logs
// one line saying whether spans will arrive: most "no traces" reports are an
// endpoint nothing listens on, and the exporter alone only says so on its
// first failed export, seconds later and far from the start-up logs. It waits
// at most timeout.
func checkReachable(ctx context.Context, t target, tlsConfig *tls.Config, timeout time.Duration, log *slog.Logger) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var err error
	if t.url.Scheme == "https" {
		err = handshake(ctx, t, tlsConfig)
	} else {
		var conn net.Conn
		if conn, err = (&net.Dialer{}).DialContext(ctx, "tcp", t.hostPort()); err == nil {
			_ = conn.Close()
		}
	}
	if err != nil {
		log.Warn("cannot reach " + t.String() + ": " + dialReason(err, timeout) + "; spans will be dropped until it is reachable")
		return
	}
	log.Info("exporting traces to " + t.String())
}

func handshake(ctx context.Context, t target, cfg *tls.Config) error {
	if cfg == nil {
		cfg = &tls.Config{}
		if file := firstEnv("OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE", "OTEL_EXPORTER_OTLP_CERTIFICATE"); file != "" {
			pem, err := os.ReadFile(file)
			if err != nil {
				return fmt.Errorf("reading the CA certificate %s: %w", file, err)
			}
			cfg.RootCAs = x509.NewCertPool()
			if !cfg.RootCAs.AppendCertsFromPEM(pem) {
				return fmt.Errorf("no PEM certificate in %s", file)
			}
		}
	}
	cfg = cfg.Clone()
	if cfg.ServerName == "" {
		cfg.ServerName = t.url.Hostname()
	}
	// Offer what the exporter will, so the server sees an ordinary client.
	if len(cfg.NextProtos) == 0 {
		cfg.NextProtos = []string{"h2", "http/1.1"}
		if t.protocol == ProtocolGRPC {
			cfg.NextProtos = []string{"h2"}
		}
	}
	conn, err := (&tls.Dialer{Config: cfg}).DialContext(ctx, "tcp", t.hostPort())
	if err != nil {
		return err
	}
	return conn.Close()
}

// dialReason shortens a dial error to what an operator acts on.
func dialReason(err error, timeout time.Duration) string {
	var (
		dnsErr  *net.DNSError
		certErr *tls.CertificateVerificationError
	)
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, syscall.ETIMEDOUT):
		return "no answer within " + timeout.String()
	case errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH):
		return "no route to host"
	case errors.As(err, &dnsErr):
		return "cannot resolve " + dnsErr.Name
	case errors.As(err, &certErr):
		return certErr.Error()
	default:
		return err.Error()
	}
}
