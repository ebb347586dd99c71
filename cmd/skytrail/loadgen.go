package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/skytrail/skytrail/internal/loadgen"
	"github.com/skytrail/skytrail/internal/tlsconfig"
)

// runLoadgen is `skytrail loadgen`: realistic multi-service traces over OTLP
// or SkyWalking gRPC, with a progress line on stderr and a summary on stdout.
// It fails when any request failed for good or nothing was acknowledged.
func runLoadgen(ctx context.Context, args []string) error {
	var cfg loadgen.Config
	var protocol string
	insecure, asJSON, quiet := true, false, false
	fs := flag.NewFlagSet("loadgen", flag.ContinueOnError)
	fs.StringVar(&cfg.Endpoint, "endpoint", "", "server address host:port (default 127.0.0.1:4317 for otlp, 127.0.0.1:11800 for skywalking)")
	fs.StringVar(&protocol, "protocol", "otlp", "otlp (TraceService/Export) or skywalking (TraceSegmentReportService/collectInSync)")
	fs.Float64Var(&cfg.Rate, "rate", 0, "target spans per second (0: as fast as the server acknowledges)")
	fs.DurationVar(&cfg.Duration, "duration", 10*time.Second, "how long to send (0: until --spans or Ctrl-C; no limit when only --spans is given)")
	fs.Int64Var(&cfg.Spans, "spans", 0, "stop after issuing this many spans, rounded up to whole requests (0: no limit)")
	fs.IntVar(&cfg.Concurrency, "concurrency", 4, "requests in flight at once")
	fs.IntVar(&cfg.Batch, "batch", 1000, "spans per request (whole traces of about 10 spans)")
	fs.IntVar(&cfg.Services, "services", 4, "distinct services: frontend, order, inventory, payment, then copies named frontend-2, ...")
	fs.IntVar(&cfg.PoolSize, "pool", 64, "distinct pre-encoded requests to cycle through (IDs and times are fresh on every send)")
	fs.BoolVar(&insecure, "insecure", true, "plaintext gRPC; --insecure=false uses TLS (the system's roots unless --ca)")
	var caFile, clientCert, clientKey string
	var skipVerify bool
	fs.StringVar(&caFile, "ca", "", "PEM CA certificate the server's certificate is checked against (implies TLS)")
	fs.StringVar(&clientCert, "client-cert", "", "PEM client certificate, for a server with mutual TLS (implies TLS)")
	fs.StringVar(&clientKey, "client-key", "", "its private key")
	fs.BoolVar(&skipVerify, "insecure-skip-verify", false, "TLS without checking the server's certificate (a test server's; implies TLS)")
	fs.StringVar(&cfg.Token, "token", "", "sent with every request: OTLP as Authorization: Bearer (the server's --ingest-token), SkyWalking as Authentication metadata (--sw-token)")
	fs.BoolVar(&asJSON, "json", false, "print the summary as JSON on stdout (the summary line then goes to stderr)")
	fs.BoolVar(&quiet, "quiet", false, "no progress line")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("loadgen: unexpected argument %q", fs.Arg(0))
	}
	durationGiven := false
	fs.Visit(func(f *flag.Flag) { durationGiven = durationGiven || f.Name == "duration" })
	if cfg.Spans > 0 && !durationGiven {
		cfg.Duration = 0 // --spans alone means "this many", however long it takes
	}
	if cfg.Duration == 0 && cfg.Spans == 0 {
		fmt.Fprintln(os.Stderr, "loadgen: no --duration or --spans limit: sending until Ctrl-C")
	}
	cfg.Protocol = loadgen.Protocol(protocol)
	cfg.TLS = !insecure || caFile != "" || clientCert != "" || skipVerify
	if cfg.TLS {
		tc, err := tlsconfig.ClientConfig(caFile, clientCert, clientKey, skipVerify)
		if err != nil {
			return fmt.Errorf("loadgen: %w", err)
		}
		cfg.TLSConfig = tc
	}
	if !quiet {
		cfg.Progress = os.Stderr
		if fi, err := os.Stderr.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			cfg.ProgressTTY = true
		}
	}

	res, err := loadgen.Run(ctx, cfg)
	if err != nil {
		return err
	}
	if asJSON {
		fmt.Fprintln(os.Stderr, res.Summary())
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(res); err != nil {
			return fmt.Errorf("loadgen: writing JSON summary: %w", err)
		}
	} else {
		fmt.Println(res.Summary())
	}
	switch {
	case len(res.Errors) > 0:
		return fmt.Errorf("loadgen: %d spans in failed requests (last error: %s)", res.FailedSpans, res.LastError)
	case res.Spans == 0:
		return fmt.Errorf("loadgen: the server acknowledged no spans")
	}
	return nil
}
