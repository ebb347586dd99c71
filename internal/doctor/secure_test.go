package doctor_test

import (
	"strings"
	"testing"

	"github.com/skytrail/skytrail/internal/doctor"
	"github.com/skytrail/skytrail/internal/server"
	"github.com/skytrail/skytrail/internal/servertest"
	"github.com/skytrail/skytrail/internal/testutil/testcerts"
	"github.com/skytrail/skytrail/internal/tlsconfig"
)

// TestSecuredServer: a server with TLS and mutual TLS on every port, an
// ingest token and an API token. Doctor, given the CA, a client
// certificate and both tokens, finds the path working; without the ingest
// token it says how the exporter sends one, without the API token how to
// give it one.
func TestSecuredServer(t *testing.T) {
	t.Parallel()
	ca := testcerts.NewCA(t, "skytrail")
	clients := testcerts.NewCA(t, "clients")
	cert := ca.Server(t, "server", "skytrail")
	const ingest, api = "ingest-0123456789abcdef", "grafana-0123456789abcdef"
	s := servertest.Start(t, func(c *server.Config) {
		c.SWToken, c.SWHTTPAddr = "s3cret", ""
		c.Security.TLS = tlsconfig.Files{Cert: cert.CertFile, Key: cert.KeyFile, ClientCA: clients.File}
		c.Security.IngestTokens = []string{ingest}
		c.Security.Auth.APITokens = []string{api}
	})
	agent := clients.Client(t, "agent", "checkout")
	secured := func() doctor.Config {
		cfg := configFor(s, "s3cret")
		cfg.OTLPEndpoint, cfg.Server, cfg.SWTLS = "https://"+s.Addrs["OTLP gRPC"], "https://"+s.Addrs["query API"], true
		cfg.CAFile, cfg.ClientCert, cfg.ClientKey = ca.File, agent.CertFile, agent.KeyFile
		cfg.OTLPHeaders = map[string]string{"Authorization": "Bearer " + ingest}
		cfg.APIToken = api
		return cfg
	}
	// checkout sends no spans of its own here: the path works, and the
	// finding that checkout is silent is TestSilenceIsAFinding's.
	if r := run(t, secured()); !pathWorks(r) {
		t.Fatalf("the secured path reported broken: %+v", r.Checks)
	}

	cfg := secured()
	cfg.OTLPHeaders = nil
	r := run(t, cfg)
	if c := check(t, r, "OTLP", "probe export"); c.Status != doctor.StatusFail || !strings.Contains(c.Remedy, "OTEL_EXPORTER_OTLP_HEADERS=Authorization=Bearer%20") {
		t.Errorf("without the ingest token: %+v", c)
	}

	cfg = secured()
	cfg.APIToken = ""
	r = run(t, cfg)
	if c := check(t, r, "OTLP", "probe searchable"); c.Status != doctor.StatusFail || !strings.Contains(c.Remedy, "--api-token") {
		t.Errorf("without the API token: %+v", c)
	}

	cfg = secured()
	cfg.ClientCert, cfg.ClientKey = "", ""
	cfg.SWBackend = ""
	r = run(t, cfg)
	if c := check(t, r, "OTLP", "TLS"); c.Status != doctor.StatusFail {
		t.Errorf("without a client certificate: %+v", c)
	}
}
