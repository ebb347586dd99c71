// Package demo runs `skytrail demo`: the server with embedded storage and,
// beside it in the same process, the example shop (examples/shop) under
// steady customer traffic.
package demo

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"sync"
	"time"

	"github.com/skytrail/skytrail/examples/shop"
	"github.com/skytrail/skytrail/internal/auth"
	"github.com/skytrail/skytrail/internal/server"
)

// Config is the server's configuration plus the traffic's.
type Config struct {
	Server server.Config
	// RPS is how many requests a second customers send to the frontend,
	// on average (default 5): two product pages for each checkout.
	RPS float64
	// Out gets the guide and progress lines (default: discarded).
	Out io.Writer
}

// Demo is a running server with the shop sending it traces.
type Demo struct {
	Server *server.Server
	Shop   *shop.Shop

	out         io.Writer
	log         *slog.Logger
	rps         float64
	stopTraffic context.CancelFunc
	traffic     sync.WaitGroup
	stats       stats
}

// Start starts the server, then the shop reporting to it over loopback,
// then the traffic.
func Start(ctx context.Context, cfg Config) (*Demo, error) {
	if cfg.RPS <= 0 {
		cfg.RPS = 5
	}
	if cfg.Out == nil {
		cfg.Out = io.Discard
	}
	if cfg.Server.Logger == nil {
		cfg.Server.Logger = slog.Default()
	}
	if cfg.Server.OTLPGRPCAddr == "" || cfg.Server.SWGRPCAddr == "" {
		return nil, errors.New("the demo's services report over OTLP gRPC and SkyWalking gRPC: --otlp-grpc and --sw-grpc must not be empty")
	}
	shopCfg, err := shopSecurity(cfg.Server)
	if err != nil {
		return nil, err
	}
	srv, err := server.Start(cfg.Server)
	if err != nil {
		return nil, err
	}
	d := &Demo{Server: srv, out: cfg.Out, log: cfg.Server.Logger, rps: cfg.RPS}
	shopCfg.OTLPEndpoint = dialAddr(srv.Addrs["OTLP gRPC"])
	shopCfg.SkyWalkingAddr = dialAddr(srv.Addrs["SkyWalking gRPC"])
	if a := srv.Addrs["OTLP HTTP"]; a != "" {
		scheme := "http"
		if shopCfg.TLS != nil {
			scheme = "https"
		}
		shopCfg.LogsBulkURL = scheme + "://" + dialAddr(a) + "/insert/elasticsearch"
	}
	shopCfg.BatchTimeout = 500 * time.Millisecond
	shopCfg.Logger = cfg.Server.Logger
	d.Shop, err = shop.Start(ctx, shopCfg)
	if err != nil {
		shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		return nil, errors.Join(fmt.Errorf("starting the shop: %w", err), srv.Shutdown(shutdownCtx))
	}
	trafficCtx, stop := context.WithCancel(context.WithoutCancel(ctx))
	d.stopTraffic = stop
	d.traffic.Go(func() { d.drive(trafficCtx, d.Shop.URLs["frontend"], cfg.RPS) })
	return d, nil
}

// Stop stops the traffic, lets the shop finish and send its last spans,
// then shuts the server down, flushing storage.
func (d *Demo) Stop(ctx context.Context) error {
	d.stopTraffic()
	d.traffic.Wait()
	shopErr := d.Shop.Shutdown(ctx)
	if shopErr != nil {
		shopErr = fmt.Errorf("stopping the shop: %w", shopErr)
	}
	// The server's graceful stop waits for the go2sky reporter to finish
	// the segment stream it is closing.
	return errors.Join(shopErr, d.Server.Shutdown(ctx))
}

// Run runs the demo until ctx ends (Ctrl-C), printing where to look.
func Run(ctx context.Context, cfg Config) error {
	d, err := Start(ctx, cfg)
	if err != nil {
		return err
	}
	d.printGuide(cfg.Server.DataDir)
	watching := make(chan struct{})
	go func() {
		defer close(watching)
		d.watchAlerts(ctx, 5*time.Second)
	}()
	<-ctx.Done()
	<-watching
	fmt.Fprintln(d.out, "\nStopping: traffic, then the shop (its agents send their last spans), then the server.")
	stopCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err = d.Stop(stopCtx)
	sent, failed := d.stats.totals()
	fmt.Fprintf(d.out, "Customers sent %d requests, %d failed. The data stays in %s.\n", sent, failed, cfg.Server.DataDir)
	if dropped := d.stats.dropped.Load(); dropped > 0 {
		fmt.Fprintf(d.out, "%d requests were not sent: %d were already waiting on the shop (lower --rps).\n", dropped, maxInFlight)
	}
	return err
}

// dialAddr turns a listener's bound address into one to dial: a wildcard
// host (":4317" binds "[::]:4317") becomes localhost.
func dialAddr(bound string) string {
	host, port, err := net.SplitHostPort(bound)
	if err != nil {
		return bound
	}
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		host = "localhost"
	}
	return net.JoinHostPort(host, port)
}

// baseURL is the URL of a bound listener of the demo's server.
func (d *Demo) baseURL(bound string) string {
	return (&url.URL{Scheme: d.Server.Scheme(), Host: dialAddr(bound)}).String()
}

// shopSecurity is how the shop reaches a server with TLS and tokens: it
// trusts exactly the certificate in the server's --tls-cert file (the
// shop dials the server in its own process, by a loopback address the
// certificate need not name) and sends the first ingest token and the
// SkyWalking token. The shop has no client certificate, so a server
// requiring one cannot be fed by it.
func shopSecurity(cfg server.Config) (shop.Config, error) {
	var sc shop.Config
	sec := cfg.Security
	if sec.TLS.ClientCA != "" {
		return sc, errors.New("the demo's shop has no client certificate, so it cannot feed a server with --tls-client-ca: run skytrail server for mutual TLS")
	}
	if sec.TLS.Cert != "" {
		certFile := sec.TLS.Cert
		sc.TLS = &tls.Config{
			MinVersion: tls.VersionTLS12,
			// The name is not checked (the shop dials 127.0.0.1 or
			// localhost, whatever the certificate names); the certificate is:
			// it must be the one in the file, byte for byte.
			InsecureSkipVerify: true, //nolint:gosec // replaced by VerifyConnection below
			VerifyConnection: func(cs tls.ConnectionState) error {
				pemBytes, err := os.ReadFile(certFile)
				if err != nil {
					return fmt.Errorf("demo: read the server's certificate: %w", err)
				}
				for block, rest := pem.Decode(pemBytes); block != nil; block, rest = pem.Decode(rest) {
					if len(cs.PeerCertificates) > 0 && bytes.Equal(block.Bytes, cs.PeerCertificates[0].Raw) {
						return nil
					}
				}
				return errors.New("demo: the server presented a certificate that is not the one in --tls-cert")
			},
		}
	}
	toks, err := auth.ParseTokens("ingest token", sec.IngestTokens, sec.IngestTokensFile)
	if err != nil {
		return sc, err
	}
	if tok, ok := toks.First(); ok {
		sc.OTLPHeaders = map[string]string{"Authorization": "Bearer " + tok.Secret}
	}
	sc.SkyWalkingToken = cfg.SWToken
	return sc, nil
}
