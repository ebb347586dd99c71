package doctor

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"time"

	"github.com/skytrail/skytrail/internal/analysis/integrity"
	"github.com/skytrail/skytrail/internal/tlsconfig"
)

// Status is a check's outcome.
type Status string

// Outcomes, worst last.
const (
	StatusOK   Status = "ok"
	StatusInfo Status = "info"
	StatusWarn Status = "warn"
	StatusFail Status = "fail"
)

// Steps group the checks in the order the path runs.
const (
	stepConfig     = "configuration"
	stepServer     = "query API"
	stepOTLP       = "OTLP"
	stepSkyWalking = "SkyWalking"
	stepFindings   = "findings"
)

// Check is one thing doctor looked at.
type Check struct {
	Step   string `json:"step"`
	Name   string `json:"name"`
	Target string `json:"target,omitempty"`
	Status Status `json:"status"`
	Detail string `json:"detail"`
	Remedy string `json:"remedy,omitempty"`
	// TraceID is the probe trace a probe check sent.
	TraceID string `json:"traceID,omitempty"`
	// Millis is how long the check took (for "probe searchable": from
	// sending the probe until the query API returned it).
	Millis float64 `json:"millis,omitempty"`
}

// Report is everything doctor found.
type Report struct {
	// OK is false when any check failed: the path from the service to
	// SkyTrail is broken.
	OK       bool                `json:"ok"`
	Service  string              `json:"service,omitempty"`
	Server   string              `json:"server"`
	Checks   []Check             `json:"checks"`
	Findings []integrity.Finding `json:"findings,omitempty"`
}

// bearer sends a token with every request to the query API.
type bearer struct {
	token string
	next  http.RoundTripper
}

func (b bearer) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+b.token)
	return b.next.RoundTrip(r)
}

// Failed counts failed checks.
func (r *Report) Failed() int {
	n := 0
	for _, c := range r.Checks {
		if c.Status == StatusFail {
			n++
		}
	}
	return n
}

type doctor struct {
	cfg      Config
	http     *http.Client
	report   Report
	progress func(line string)
}

// Options are how Run talks to the person watching.
type Options struct {
	// Progress, when not nil, receives a line to show while doctor waits
	// ("" to clear it): a terminal redraws it in place.
	Progress func(line string)
}

// Run checks the path and returns what it found. It fails only when cfg
// cannot be checked at all; a broken path is a Report with OK false.
func Run(ctx context.Context, cfg Config, opts Options) (*Report, error) {
	d, baseTLS, err := newDoctor(cfg, opts)
	if err != nil {
		return nil, err
	}
	cfg = d.cfg
	tlsConfig := func(host string, alpn ...string) *tls.Config {
		c := baseTLS.Clone()
		c.ServerName, c.NextProtos = host, alpn
		return c
	}

	d.configChecks()
	var target *otlpTarget
	if !cfg.SkipOTLP {
		t, err := cfg.resolveOTLP()
		if err != nil {
			d.add(Check{Step: stepConfig, Name: "OTLP endpoint", Status: StatusFail, Detail: err.Error(),
				Remedy: "Set OTEL_EXPORTER_OTLP_ENDPOINT to the server, such as http://skytrail:4317 (gRPC) or http://skytrail:4318 (HTTP), and OTEL_EXPORTER_OTLP_PROTOCOL to grpc or http/protobuf."})
		} else {
			target = &t
			detail := "protocol " + t.protocol
			if cfg.OTLPEndpoint == "" {
				detail += "; the SDK default, as OTEL_EXPORTER_OTLP_ENDPOINT is not set"
			}
			d.add(Check{Step: stepConfig, Name: "OTLP endpoint", Status: StatusOK, Target: t.url.String(), Detail: detail})
		}
	}
	var otlpURL *url.URL
	if target != nil {
		otlpURL = target.url
	}
	base := cfg.serverURL(otlpURL)
	d.report.Server = base
	serverOK := d.serverHealth(ctx, base)

	if target != nil {
		var tlsCfg *tls.Config
		if target.url.Scheme == "https" {
			alpn := []string{"h2", "http/1.1"}
			if target.protocol == ProtocolGRPC {
				alpn = []string{"h2"}
			}
			tlsCfg = tlsConfig(target.url.Hostname(), alpn...)
		}
		addr := hostPort(target.url)
		if d.reach(ctx, stepOTLP, addr, tlsCfg) && (target.protocol != ProtocolGRPC || d.grpcHealth(ctx, stepOTLP, addr, tlsCfg, "")) {
			sentAt := time.Now()
			if id := d.probeOTLP(ctx, *target, tlsCfg); id != "" && serverOK {
				d.waitForTrace(ctx, stepOTLP, base, id, sentAt)
			}
		}
	}
	if cfg.SWBackend != "" {
		var swTLS *tls.Config
		if cfg.SWTLS {
			host, _, _ := net.SplitHostPort(cfg.SWBackend)
			swTLS = tlsConfig(host, "h2")
		}
		if d.reach(ctx, stepSkyWalking, cfg.SWBackend, swTLS) && d.grpcHealth(ctx, stepSkyWalking, cfg.SWBackend, swTLS, cfg.SWToken) {
			sentAt := time.Now()
			if id := d.probeSkyWalking(ctx, cfg.SWBackend, swTLS); id != "" && serverOK {
				d.waitForTrace(ctx, stepSkyWalking, base, id, sentAt)
			}
		}
	}
	service := cfg.Service
	if service == "" {
		service = cfg.ServiceName
	}
	d.report.Service = service
	if serverOK {
		d.findings(ctx, base, service)
	}
	d.report.OK = d.report.Failed() == 0
	return &d.report, nil
}

// newDoctor fills cfg's defaults and builds the client doctor's calls to
// the query API use (with cfg's TLS settings and API token).
func newDoctor(cfg Config, opts Options) (*doctor, *tls.Config, error) {
	if cfg.Wait <= 0 {
		cfg.Wait = 30 * time.Second
	}
	if cfg.DialTimeout <= 0 {
		cfg.DialTimeout = 5 * time.Second
	}
	baseTLS, err := tlsconfig.ClientConfig(cfg.CAFile, cfg.ClientCert, cfg.ClientKey, cfg.InsecureSkipVerify)
	if err != nil {
		return nil, nil, fmt.Errorf("TLS settings (OTEL_EXPORTER_OTLP_CERTIFICATE, _CLIENT_CERTIFICATE, _CLIENT_KEY): %w", err)
	}
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.TLSClientConfig = baseTLS.Clone()
	var rt http.RoundTripper = transport
	if cfg.APIToken != "" {
		rt = bearer{token: cfg.APIToken, next: transport}
	}
	d := &doctor{cfg: cfg, http: &http.Client{Timeout: cfg.DialTimeout, Transport: rt}, progress: opts.Progress}
	if d.progress == nil {
		d.progress = func(string) {}
	}
	return d, baseTLS, nil
}

func (d *doctor) add(c Check) { d.report.Checks = append(d.report.Checks, c) }

// configChecks looks at settings that lose every span before any network.
func (d *doctor) configChecks() {
	c := d.cfg
	if c.ServiceName == "" {
		d.add(Check{Step: stepConfig, Name: "service name", Status: StatusWarn, Detail: "OTEL_SERVICE_NAME (or SW_AGENT_NAME) is not set",
			Remedy: "Without it spans arrive as unknown_service:<program>: set OTEL_SERVICE_NAME, or semconv.ServiceName in the SDK's resource."})
	} else {
		d.add(Check{Step: stepConfig, Name: "service name", Status: StatusOK, Detail: c.ServiceName})
	}
	if !c.SkipOTLP {
		st, detail := c.samplerProblem()
		ch := Check{Step: stepConfig, Name: "sampler", Status: st, Detail: detail}
		if st != StatusOK {
			ch.Remedy = "Unset OTEL_TRACES_SAMPLER, or use parentbased_traceidratio with OTEL_TRACES_SAMPLER_ARG between 0.01 and 1 (check too that the code does not pass sdktrace.WithSampler(sdktrace.NeverSample()))."
		}
		d.add(ch)
	}
	if c.SWBackend != "" && c.ServiceName == "" {
		d.add(Check{Step: stepConfig, Name: "SkyWalking agent name", Status: StatusWarn, Detail: "SW_AGENT_NAME is not set", Remedy: "Set SW_AGENT_NAME to the service's name."})
	}
}

// findings prints what the server concluded about the service.
func (d *doctor) findings(ctx context.Context, base, service string) {
	u := base + "/api/v1/diagnostics?service=" + url.QueryEscape(service)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return
	}
	resp, err := d.http.Do(req)
	if err != nil {
		d.add(Check{Step: stepFindings, Name: "diagnostics", Status: StatusWarn, Detail: "cannot read the server's findings: " + err.Error()})
		return
	}
	defer resp.Body.Close()
	var r integrity.Report
	if resp.StatusCode != http.StatusOK {
		d.add(Check{Step: stepFindings, Name: "diagnostics", Status: StatusWarn, Detail: "GET /api/v1/diagnostics: " + resp.Status + " (an older SkyTrail?)"})
		return
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 16<<20)).Decode(&r); err != nil {
		d.add(Check{Step: stepFindings, Name: "diagnostics", Status: StatusWarn, Detail: "cannot decode the server's findings: " + err.Error()})
		return
	}
	d.report.Findings = r.Findings
	about := "any service"
	if service != "" {
		about = service
	}
	if len(r.Findings) == 0 {
		d.add(Check{Step: stepFindings, Name: "diagnostics", Status: StatusOK,
			Detail: fmt.Sprintf("the server has no findings about %s (%d traces judged, each %s after its last span)", about, r.JudgedTraces, r.Grace)})
		return
	}
	for _, f := range r.Findings {
		st := StatusWarn // a finding about the service, not a broken path
		switch {
		case silence(f.Kind):
			// Nothing arrives from the service: whatever the probes
			// showed, its spans do not reach SkyTrail.
			st = StatusFail
		case f.Severity == integrity.SeverityInfo:
			st = StatusInfo
		}
		detail := f.Summary
		if f.Count > 0 && f.Traces > 0 {
			detail += fmt.Sprintf(" (%d of %d traces)", f.Count, f.Traces)
		}
		d.add(Check{Step: stepFindings, Name: f.Kind, Target: f.Service, Status: st, Detail: detail, Remedy: f.Remedy, TraceID: first(f.Examples...)})
	}
}

// silence tells the findings about spans that never arrived or stopped.
func silence(kind string) bool {
	switch kind {
	case integrity.KindNoSpans, integrity.KindUnknownService, integrity.KindSilentService:
		return true
	}
	return false
}
