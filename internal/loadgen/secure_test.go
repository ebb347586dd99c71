package loadgen_test

import (
	"testing"

	"github.com/skytrail/skytrail/internal/loadgen"
	"github.com/skytrail/skytrail/internal/server"
	"github.com/skytrail/skytrail/internal/servertest"
	"github.com/skytrail/skytrail/internal/testutil/testcerts"
	"github.com/skytrail/skytrail/internal/tlsconfig"
)

// TestLoadToASecuredServer: loadgen reaches a SkyTrail with mutual TLS and
// ingest tokens, over OTLP and SkyWalking, given the CA, a client
// certificate and the token; without the token every request fails, and is
// not retried.
func TestLoadToASecuredServer(t *testing.T) {
	t.Parallel()
	ca := testcerts.NewCA(t, "skytrail")
	clients := testcerts.NewCA(t, "clients")
	cert := ca.Server(t, "server", "skytrail")
	const token = "ingest-0123456789abcdef"
	s := servertest.Start(t, func(c *server.Config) {
		c.Security.TLS = tlsconfig.Files{Cert: cert.CertFile, Key: cert.KeyFile, ClientCA: clients.File}
		c.Security.IngestTokens = []string{token}
		c.SWToken = token
	})
	agent := clients.Client(t, "loadgen", "loadgen")
	tc, err := tlsconfig.ClientConfig(ca.File, agent.CertFile, agent.KeyFile, false)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []struct {
		protocol loadgen.Protocol
		addr     string
	}{{loadgen.ProtocolOTLP, s.Addrs["OTLP gRPC"]}, {loadgen.ProtocolSkyWalking, s.Addrs["SkyWalking gRPC"]}} {
		cfg := loadgen.Config{Endpoint: p.addr, Protocol: p.protocol, TLS: true, TLSConfig: tc, Token: token,
			Spans: 2000, Batch: 500, PoolSize: 2, Concurrency: 1}
		res, err := loadgen.Run(t.Context(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		if res.Spans < 2000 || len(res.Errors) > 0 {
			t.Errorf("%s with the token: %s (errors %v)", p.protocol, res.Summary(), res.Errors)
		}
		cfg.Token = ""
		res, err = loadgen.Run(t.Context(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		if res.Spans != 0 || len(res.Errors) == 0 || len(res.Retries) > 0 {
			t.Errorf("%s without the token: %s (errors %v, retries %v), want every request refused once", p.protocol, res.Summary(), res.Errors, res.Retries)
		}
	}
}
