package shop

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"
)

// Config says where the shop's services send their telemetry.
type Config struct {
	// OTLPEndpoint is the host:port of an OTLP gRPC receiver.
	OTLPEndpoint string
	// SkyWalkingAddr is the host:port of a SkyWalking gRPC receiver.
	SkyWalkingAddr string
	// TLS, when not nil, is how both exporters dial the receivers over TLS
	// (nil: plaintext).
	TLS *tls.Config
	// OTLPHeaders go with every OTLP export, such as Authorization: Bearer
	// <token> for a server with ingest tokens.
	OTLPHeaders map[string]string
	// LogsBulkURL is an Elasticsearch bulk API (SkyTrail's:
	// http://host:4318/insert/elasticsearch) the payment service's log lines
	// are shipped to, as Filebeat would; "" ships none. The other services
	// export theirs over OTLP.
	LogsBulkURL string
	// SkyWalkingToken is the agent token (SW_AGENT_AUTHENTICATION).
	SkyWalkingToken string
	// BatchTimeout is the longest a finished span waits before it is
	// exported (default 1 s: traces show up quickly).
	BatchTimeout time.Duration
	// Logger gets the services' and agents' complaints (default slog.Default()).
	Logger *slog.Logger
}

// Shop is the four services, each serving HTTP on its own loopback port.
type Shop struct {
	// URLs maps each service name to its base URL, such as
	// "http://127.0.0.1:40123".
	URLs map[string]string

	log       *slog.Logger
	servers   []*http.Server
	served    sync.WaitGroup
	orders    *topic
	consumed  sync.WaitGroup
	telemetry []*telemetry
	payment   *payment
}

// Start starts payment, inventory, order and frontend, in that order, so
// each knows the address of those it calls. Customers call the frontend:
// GET URLs["frontend"]/products/{item} and
// GET URLs["frontend"]/checkout?user_id=...&item=....
func Start(ctx context.Context, cfg Config) (_ *Shop, err error) {
	if cfg.BatchTimeout <= 0 {
		cfg.BatchTimeout = time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	s := &Shop{URLs: map[string]string{}, log: cfg.Logger, orders: newTopic("orders")}
	defer func() {
		if err != nil {
			_ = s.Shutdown(context.Background())
		}
	}()

	if s.payment, err = newPayment(cfg); err != nil {
		return nil, err
	}
	h, err := s.payment.routes()
	if err != nil {
		return nil, err
	}
	if err := s.serve("payment", h); err != nil {
		return nil, err
	}

	tel, err := s.newTelemetry(ctx, "inventory", cfg)
	if err != nil {
		return nil, err
	}
	inv := &inventory{tel: tel}
	s.consumed.Go(func() { inv.consume(s.orders) })
	if err := s.serve("inventory", inv.routes()); err != nil {
		return nil, err
	}

	if tel, err = s.newTelemetry(ctx, "order", cfg); err != nil {
		return nil, err
	}
	o := &order{tel: tel, client: tel.client(), inventoryURL: s.URLs["inventory"], paymentURL: s.URLs["payment"], orders: s.orders}
	if err := s.serve("order", o.routes()); err != nil {
		return nil, err
	}

	if tel, err = s.newTelemetry(ctx, "frontend", cfg); err != nil {
		return nil, err
	}
	f := &frontend{tel: tel, client: tel.client(), orderURL: s.URLs["order"], inventoryURL: s.URLs["inventory"]}
	if err := s.serve("frontend", f.routes()); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *Shop) newTelemetry(ctx context.Context, service string, cfg Config) (*telemetry, error) {
	t, err := newTelemetry(ctx, service, cfg)
	if err == nil {
		s.telemetry = append(s.telemetry, t)
	}
	return t, err
}

// serve serves h on a free loopback port as service.
func (s *Shop) serve(service string, h http.Handler) error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("%s: listen: %w", service, err)
	}
	hs := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	s.servers = append(s.servers, hs)
	s.URLs[service] = "http://" + ln.Addr().String()
	s.served.Go(func() {
		if err := hs.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("shop service stopped", "service", service, "err", err)
		}
	})
	return nil
}

// Shutdown stops the services: requests in flight finish (until ctx ends),
// the queue drains, then every agent sends what it still holds.
func (s *Shop) Shutdown(ctx context.Context) error {
	var errs []error
	// Frontend first, so no new checkouts reach the others.
	for i := len(s.servers) - 1; i >= 0; i-- {
		if err := s.servers[i].Shutdown(ctx); err != nil {
			errs = append(errs, err)
			_ = s.servers[i].Close()
		}
	}
	s.served.Wait()
	s.orders.close()
	s.consumed.Wait()
	for _, t := range s.telemetry {
		errs = append(errs, t.shutdown(ctx))
	}
	if s.payment != nil && s.payment.logs != nil {
		s.payment.logs.close()
	}
	if s.payment != nil {
		// go2sky's reporter sends what is queued and closes its stream in
		// the background; it offers nothing to wait on.
		s.payment.reporter.Close()
	}
	return errors.Join(errs...)
}
