package tlsconfig_test

import (
	"crypto/tls"
	"crypto/x509"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/skytrail/skytrail/internal/testutil/poll"
	"github.com/skytrail/skytrail/internal/testutil/testcerts"
	"github.com/skytrail/skytrail/internal/tlsconfig"
)

// serve accepts TLS connections on loopback, completing each handshake and
// closing it, until the test ends.
func serve(t *testing.T, r *tlsconfig.Reloader) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	tln := tls.NewListener(ln, r.ServerConfig("http/1.1"))
	go func() {
		for {
			c, err := tln.Accept()
			if err != nil {
				return
			}
			go func() {
				_ = c.(*tls.Conn).Handshake()
				_, _ = c.Write([]byte("x")) // the client reads it: the handshake completed both ways
				c.Close()
			}()
		}
	}()
	return ln.Addr().String()
}

// dial completes a handshake with the server and returns the certificate
// it served, or the error that stopped it.
func dial(addr string, cfg *tls.Config) (*x509.Certificate, error) {
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, cfg)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadFull(c, make([]byte, 1)); err != nil {
		return nil, err
	}
	return c.ConnectionState().PeerCertificates[0], nil
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func roots(ca *testcerts.CA) *tls.Config {
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	return &tls.Config{RootCAs: pool, ServerName: "localhost"}
}

func TestReloadsARenewedCertificate(t *testing.T) {
	t.Parallel()
	ca := testcerts.NewCA(t, "reload")
	first := ca.Server(t, "server", "first")
	r, err := tlsconfig.New(tlsconfig.Files{Cert: first.CertFile, Key: first.KeyFile}, quiet())
	if err != nil {
		t.Fatal(err)
	}
	addr := serve(t, r)
	got, err := dial(addr, roots(ca))
	if err != nil {
		t.Fatal(err)
	}
	if got.Subject.CommonName != "first" {
		t.Fatalf("served %q, want first", got.Subject.CommonName)
	}

	// Renewed in place (same file names), as cert-manager or certbot do.
	ca.Server(t, "server", "second")
	poll.Until(t, 10*time.Second, "the renewed certificate to be served", func() bool {
		got, err := dial(addr, roots(ca))
		return err == nil && got.Subject.CommonName == "second"
	})

	// A broken renewal keeps the last good certificate in service.
	if err := os.WriteFile(first.KeyFile, []byte("not a key"), 0o600); err != nil {
		t.Fatal(err)
	}
	time.Sleep(tlsconfig.CheckInterval + 100*time.Millisecond)
	for range 3 {
		got, err := dial(addr, roots(ca))
		if err != nil {
			t.Fatalf("after a broken key was written: %v", err)
		}
		if got.Subject.CommonName != "second" {
			t.Fatalf("served %q, want the last good certificate", got.Subject.CommonName)
		}
	}
}

func TestMutualTLSRefusesClientsWithoutAGoodCertificate(t *testing.T) {
	t.Parallel()
	ca := testcerts.NewCA(t, "servers")
	clients := testcerts.NewCA(t, "clients")
	stranger := testcerts.NewCA(t, "strangers")
	srv := ca.Server(t, "server", "skytrail")
	r, err := tlsconfig.New(tlsconfig.Files{Cert: srv.CertFile, Key: srv.KeyFile, ClientCA: clients.File}, quiet())
	if err != nil {
		t.Fatal(err)
	}
	if !r.Mutual() {
		t.Fatal("Mutual() false with a client CA")
	}
	addr := serve(t, r)

	if _, err := dial(addr, roots(ca)); err == nil {
		t.Fatal("a client without a certificate completed the handshake")
	} else if !strings.Contains(err.Error(), "certificate required") {
		t.Errorf("without a client certificate: %v, want the server's 'certificate required' alert", err)
	}
	bad := stranger.Client(t, "bad", "mallory")
	cfg := roots(ca)
	cert, err := tls.LoadX509KeyPair(bad.CertFile, bad.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Certificates = []tls.Certificate{cert}
	if _, err := dial(addr, cfg); err == nil {
		t.Fatal("a client with a certificate from another CA completed the handshake")
	}

	good := clients.Client(t, "good", "agent")
	cfg, err = tlsconfig.ClientConfig(ca.File, good.CertFile, good.KeyFile, false)
	if err != nil {
		t.Fatal(err)
	}
	cfg.ServerName = "localhost"
	if _, err := dial(addr, cfg); err != nil {
		t.Fatalf("a client with a certificate from the client CA: %v", err)
	}
}

func TestNewSaysWhatIsWrong(t *testing.T) {
	t.Parallel()
	ca := testcerts.NewCA(t, "errors")
	p := ca.Server(t, "server", "x")
	other := ca.Server(t, "other", "y")
	for _, tc := range []struct {
		files tlsconfig.Files
		want  string
	}{
		{tlsconfig.Files{Cert: p.CertFile}, "--tls-key"},
		{tlsconfig.Files{Cert: p.CertFile, Key: "/nonexistent/key.pem"}, "/nonexistent/key.pem"},
		{tlsconfig.Files{Cert: p.CertFile, Key: other.KeyFile}, "private key does not match"},
		{tlsconfig.Files{Cert: p.CertFile, Key: p.KeyFile, ClientCA: p.KeyFile}, "holds no PEM certificate"},
	} {
		_, err := tlsconfig.New(tc.files, quiet())
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("New(%+v) = %v, want an error mentioning %q", tc.files, err, tc.want)
		}
	}
}
