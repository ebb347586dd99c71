package demo

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/skytrail/skytrail/internal/testutil/poll"
	"github.com/skytrail/skytrail/internal/testutil/testcerts"
	"github.com/skytrail/skytrail/internal/tlsconfig"
)

// TestDemoWithTLSAndTokens: the demo's shop feeds a server that serves TLS
// and wants ingest and agent tokens, over both protocols, and the guide
// prints https URLs; mutual TLS is refused up front with the reason.
func TestDemoWithTLSAndTokens(t *testing.T) {
	t.Parallel()
	ca := testcerts.NewCA(t, "demo")
	cert := ca.Server(t, "server", "skytrail.example")
	cfg := testConfig(t)
	cfg.Security.TLS = tlsconfig.Files{Cert: cert.CertFile, Key: cert.KeyFile}
	cfg.Security.IngestTokens = []string{"ingest-0123456789abcdef"}
	cfg.SWToken = "agent-token"
	out := &lockedBuffer{}
	d, err := Start(t.Context(), Config{Server: cfg, RPS: 40, Out: out})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = d.Stop(ctx)
	})
	d.printGuide(cfg.DataDir)
	if !strings.Contains(out.String(), "https://") {
		t.Errorf("the guide does not print https URLs:\n%s", out.String())
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca.Cert)
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: tlsClient(roots)}, Timeout: 5 * time.Second}
	api := "https://" + d.Server.Addrs["query API"]
	poll.Until(t, waitTimeout, "spans from OTLP and SkyWalking services", func() bool {
		resp, err := client.Get(api + "/api/v1/services")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		var body struct{ Services []struct{ Name string } }
		if json.NewDecoder(resp.Body).Decode(&body) != nil {
			return false
		}
		seen := map[string]bool{}
		for _, s := range body.Services {
			seen[s.Name] = true
		}
		return seen["order"] && seen["payment"]
	})

	mtls := testConfig(t)
	mtls.Security.TLS = tlsconfig.Files{Cert: cert.CertFile, Key: cert.KeyFile, ClientCA: ca.File}
	if _, err := Start(t.Context(), Config{Server: mtls}); err == nil || !strings.Contains(err.Error(), "client certificate") {
		t.Errorf("a demo with mutual TLS: %v, want a refusal saying why", err)
	}
}

func tlsClient(roots *x509.CertPool) *tls.Config {
	return &tls.Config{RootCAs: roots, ServerName: "localhost"}
}
