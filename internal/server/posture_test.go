// An internal test, unlike the server's others: the warnings are about
// non-loopback addresses, which tests must not bind, so it calls the
// posture logger with addresses that are only logged.
package server

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"

	"github.com/skytrail/skytrail/internal/testutil/testcerts"
	"github.com/skytrail/skytrail/internal/tlsconfig"
)

// TestPostureIsLogged: at start every listener's TLS and authentication
// is logged, and what is open to the network, or takes credentials in
// plain text, is a warning. (Addresses here are only logged, never bound.)
func TestPostureIsLogged(t *testing.T) {
	t.Parallel()
	ca := testcerts.NewCA(t, "posture")
	cert := ca.Server(t, "server", "skytrail")
	addrs := map[string]string{"query API": "0.0.0.0:8080", "OTLP gRPC": "[::]:4317", "OTLP HTTP": "127.0.0.1:4318", "SkyWalking gRPC": "10.1.2.3:11800"}
	posture := func(sec Security, swToken bool) string {
		var buf bytes.Buffer
		s, err := newSecurity(sec, slog.New(slog.NewTextHandler(&buf, nil)), nil)
		if err != nil {
			t.Fatal(err)
		}
		s.logPosture(slog.New(slog.NewTextHandler(&buf, nil)), addrs, swToken)
		return buf.String()
	}
	line := func(out, listener string) string {
		for _, l := range strings.Split(out, "\n") {
			if strings.Contains(l, `listener="`+listener+`"`) {
				return l
			}
		}
		t.Fatalf("no posture line for %s in:\n%s", listener, out)
		return ""
	}

	open := posture(DefaultSecurity(), false)
	for _, want := range []struct{ listener, text string }{
		{"query API", "level=WARN msg=\"query API: the UI and every API are open to anyone who can reach 0.0.0.0:8080"},
		{"OTLP gRPC", "level=WARN msg=\"OTLP gRPC: takes spans from anyone who can reach [::]:4317"},
		{"OTLP HTTP", "level=INFO msg=security listener=\"OTLP HTTP\" addr=127.0.0.1:4318 tls=off"},
		{"SkyWalking gRPC", "level=WARN msg=\"SkyWalking gRPC: takes agent data from anyone"},
	} {
		if l := line(open, want.listener); !strings.Contains(l, want.text) {
			t.Errorf("open server, %s: %s\nwant %s", want.listener, l, want.text)
		}
	}

	sec := DefaultSecurity()
	sec.Auth.APITokens = []string{"grafana-0123456789abcdef"}
	sec.IngestTokens = []string{"ingest-0123456789abcdef"}
	plain := posture(sec, true)
	if l := line(plain, "query API"); !strings.Contains(l, "level=WARN") || !strings.Contains(l, "plain text") {
		t.Errorf("tokens without TLS on the network: %s", l)
	}
	sec.TLS = tlsconfig.Files{Cert: cert.CertFile, Key: cert.KeyFile}
	secured := posture(sec, true)
	if strings.Contains(secured, "level=WARN") {
		t.Errorf("TLS and credentials everywhere, yet a warning:\n%s", secured)
	}
	if l := line(secured, "query API"); !strings.Contains(l, `tls=on auth="1 read-only API tokens"`) {
		t.Errorf("secured query API: %s", l)
	}
	sec = DefaultSecurity()
	sec.TLS = tlsconfig.Files{Cert: cert.CertFile, Key: cert.KeyFile, ClientCA: ca.File}
	if mutual := posture(sec, false); strings.Contains(mutual, "level=WARN") || !strings.Contains(mutual, "tls=\"mutual") {
		t.Errorf("mutual TLS: only certificate holders get in, no warning:\n%s", mutual)
	}
}
