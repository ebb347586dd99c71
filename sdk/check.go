package sdk

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"syscall"
	"time"
)

// checkReachable dials the exporter's endpoint once and logs one line saying
// whether spans will arrive: most "no traces" reports are an endpoint nothing
// listens on, and the exporter alone only says so on its first failed export,
// seconds later and far from the start-up logs. It waits at most timeout.
func checkReachable(ctx context.Context, t target, timeout time.Duration, log *slog.Logger) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", t.hostPort())
	if err != nil {
		log.Warn("cannot reach " + t.String() + ": " + dialReason(err, timeout) + "; spans will be dropped until it is reachable")
		return
	}
	_ = conn.Close()
	log.Info("exporting traces to " + t.String())
}

// dialReason shortens a dial error to what an operator acts on.
func dialReason(err error, timeout time.Duration) string {
	var dnsErr *net.DNSError
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, syscall.ETIMEDOUT):
		return "no answer within " + timeout.String()
	case errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH):
		return "no route to host"
	case errors.As(err, &dnsErr):
		return "cannot resolve " + dnsErr.Name
	default:
		return err.Error()
	}
}
