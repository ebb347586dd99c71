package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/skytrail/skytrail/internal/doctor"
)

// runDoctor checks, from where a service runs, that its traces reach
// SkyTrail: flags override the OTEL_* and SW_* variables the SDKs read.
func runDoctor(ctx context.Context, args []string) error {
	cfg := doctor.FromEnv(os.Getenv)
	fs := flag.NewFlagSet("doctor", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: skytrail doctor [flags]\n\nChecks the path from a service to SkyTrail with the settings its SDK reads\n(OTEL_EXPORTER_OTLP_*, OTEL_SERVICE_NAME, OTEL_TRACES_SAMPLER*, SW_AGENT_*);\nflags override them. Exits 1 when the path is broken.\n\nflags:")
		fs.PrintDefaults()
	}
	endpoint := fs.String("endpoint", "", "OTLP endpoint, a URL or host:port (default: OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, OTEL_EXPORTER_OTLP_ENDPOINT, else localhost:4317)")
	fs.StringVar(&cfg.OTLPProtocol, "protocol", cfg.OTLPProtocol, "OTLP protocol: grpc or http/protobuf (default: OTEL_EXPORTER_OTLP_PROTOCOL, else grpc)")
	fs.BoolVar(&cfg.OTLPInsecure, "insecure", cfg.OTLPInsecure, "no TLS for an endpoint given without scheme (OTEL_EXPORTER_OTLP_INSECURE)")
	fs.BoolVar(&cfg.SkipOTLP, "no-otlp", false, "skip the OTLP checks (a SkyWalking-only service)")
	fs.StringVar(&cfg.ServiceName, "service-name", cfg.ServiceName, "the service's own name (OTEL_SERVICE_NAME, else SW_AGENT_NAME)")
	fs.StringVar(&cfg.SWBackend, "sw-backend", cfg.SWBackend, "SkyWalking gRPC backend host:port (SW_AGENT_REPORTER_GRPC_BACKEND_SERVICE; empty: skip)")
	fs.StringVar(&cfg.SWToken, "sw-token", cfg.SWToken, "SkyWalking agent token (SW_AGENT_AUTHENTICATION)")
	fs.StringVar(&cfg.Server, "server", "", "SkyTrail query API URL (default: port 8080 on the OTLP endpoint's host)")
	fs.StringVar(&cfg.CAFile, "ca", cfg.CAFile, "PEM CA certificate the server's certificate is checked against (OTEL_EXPORTER_OTLP_CERTIFICATE; default: the system's)")
	fs.StringVar(&cfg.ClientCert, "client-cert", cfg.ClientCert, "PEM client certificate for a server with mutual TLS (OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE)")
	fs.StringVar(&cfg.ClientKey, "client-key", cfg.ClientKey, "its private key (OTEL_EXPORTER_OTLP_CLIENT_KEY)")
	fs.BoolVar(&cfg.InsecureSkipVerify, "insecure-skip-verify", false, "accept any server certificate (a test server's; never in production)")
	fs.BoolVar(&cfg.SWTLS, "sw-tls", cfg.SWTLS, "SkyWalking gRPC over TLS (SW_AGENT_REPORTER_GRPC_TLS_ENABLE)")
	ingestToken := fs.String("ingest-token", "", "token the OTLP probe sends as Authorization: Bearer (else OTEL_EXPORTER_OTLP_HEADERS)")
	fs.StringVar(&cfg.APIToken, "api-token", cfg.APIToken, "token for the query API when the server asks for one (SKYTRAIL_API_TOKEN; a read-only token will do)")
	fs.StringVar(&cfg.Service, "service", "", "print the server's findings about this service (default: --service-name)")
	fs.DurationVar(&cfg.Wait, "wait", 30*time.Second, "how long to wait for a probe trace to become searchable")
	fs.DurationVar(&cfg.DialTimeout, "timeout", 5*time.Second, "timeout of each connection check")
	notify := fs.String("notify", "", "only send a test notification through this alerting receiver (by name) and report whether it arrived and why not; uses --server and --api-token")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("doctor: unexpected argument %q", fs.Arg(0))
	}
	if *ingestToken != "" {
		if cfg.OTLPHeaders == nil {
			cfg.OTLPHeaders = map[string]string{}
		}
		cfg.OTLPHeaders["Authorization"] = "Bearer " + *ingestToken
	}
	if *endpoint != "" {
		cfg.OTLPEndpoint, cfg.TracesEndpoint = *endpoint, false
	}
	tty := isTerminal(os.Stdout) && !*asJSON
	var opts doctor.Options
	if isTerminal(os.Stderr) && !*asJSON {
		opts.Progress = func(line string) { fmt.Fprint(os.Stderr, "\r\033[K"+line) }
	}
	var report *doctor.Report
	var err error
	if *notify != "" {
		report, err = doctor.TestNotification(ctx, cfg, *notify)
	} else {
		report, err = doctor.Run(ctx, cfg, opts)
	}
	if err != nil {
		return err
	}
	if *asJSON {
		err = report.WriteJSON(os.Stdout)
	} else {
		err = report.WriteText(os.Stdout, tty && os.Getenv("NO_COLOR") == "")
	}
	if err != nil {
		return err
	}
	if !report.OK && *notify != "" {
		return errors.New("doctor: the test notification did not arrive")
	}
	if !report.OK {
		return errors.New("doctor: the path to SkyTrail is broken")
	}
	return nil
}

// isTerminal tells whether f is a terminal, for colour and a progress line.
func isTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
