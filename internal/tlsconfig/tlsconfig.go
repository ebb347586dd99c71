// Package tlsconfig serves TLS from certificate files that may change while
// the server runs: a certificate renewed by cert-manager, certbot or a
// mounted Kubernetes secret is picked up by the next handshake, without a
// restart. Optionally it requires client certificates signed by a given CA
// (mutual TLS); that CA file is reloaded the same way.
package tlsconfig

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// Files names the PEM files TLS is served from. Cert and Key are both set
// or both empty (no TLS); ClientCA, when set, turns on mutual TLS.
type Files struct {
	Cert     string // the server's certificate chain, leaf first
	Key      string // its private key
	ClientCA string // CA certificates that sign the clients' certificates
}

// Enabled tells whether TLS is configured.
func (f Files) Enabled() bool { return f.Cert != "" || f.Key != "" }

// CheckInterval is the least time between two looks at the files: a
// handshake costs a few stat calls at most once a second, and a renewed
// certificate is served within a second of being written.
const CheckInterval = time.Second

// Reloader holds the certificate and client CAs most recently read from
// the files, and reads them again when a file changes.
type Reloader struct {
	files Files
	log   *slog.Logger

	cur       atomic.Pointer[material]
	lastCheck atomic.Int64 // unix nanoseconds
	mu        sync.Mutex   // one reload at a time
	// failed is the stamp of files that failed to load, so a broken file
	// is reported once, not on every handshake, and retried when it changes.
	failed stamps
}

type material struct {
	cert      *tls.Certificate
	clientCAs *x509.CertPool
	stamps    stamps
}

// stamps identify the files' versions: modification time and size of each.
type stamps [3]struct {
	mod  int64
	size int64
}

// New reads the files now; an error says which file is wrong and how.
func New(files Files, log *slog.Logger) (*Reloader, error) {
	if files.Cert == "" || files.Key == "" {
		return nil, errors.New("TLS needs both a certificate (--tls-cert) and its key (--tls-key)")
	}
	if log == nil {
		log = slog.Default()
	}
	r := &Reloader{files: files, log: log}
	st, err := r.stat()
	if err != nil {
		return nil, err
	}
	m, err := r.load(st)
	if err != nil {
		return nil, err
	}
	r.cur.Store(m)
	r.lastCheck.Store(time.Now().UnixNano())
	return r, nil
}

// Mutual tells whether clients must present a certificate.
func (r *Reloader) Mutual() bool { return r.files.ClientCA != "" }

// ServerConfig is a server configuration serving the current files, with
// nextProtos offered for ALPN ("h2" for gRPC; "h2", "http/1.1" for HTTP).
func (r *Reloader) ServerConfig(nextProtos ...string) *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		NextProtos: nextProtos,
		// The whole configuration per handshake, so the client CAs can
		// change too (GetCertificate alone would only swap the certificate).
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			m := r.current()
			c := &tls.Config{
				MinVersion:   tls.VersionTLS12,
				NextProtos:   nextProtos,
				Certificates: []tls.Certificate{*m.cert},
			}
			if m.clientCAs != nil {
				c.ClientCAs = m.clientCAs
				c.ClientAuth = tls.RequireAndVerifyClientCert
			}
			return c, nil
		},
	}
}

// current returns the material to serve, reloading it first when a file
// changed since it was read.
func (r *Reloader) current() *material {
	m := r.cur.Load()
	now := time.Now().UnixNano()
	last := r.lastCheck.Load()
	if now-last < int64(CheckInterval) || !r.lastCheck.CompareAndSwap(last, now) {
		return m
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	st, err := r.stat()
	if err != nil {
		r.logFailure(st, err)
		return m
	}
	if st == m.stamps || st == r.failed {
		return m
	}
	next, err := r.load(st)
	if err != nil {
		// A certificate being replaced may be read between its two files:
		// keep serving the old one; the next change is tried again.
		r.logFailure(st, err)
		return m
	}
	r.cur.Store(next)
	r.failed = stamps{}
	r.log.Info("TLS certificate reloaded", "cert", r.files.Cert, "subject", next.cert.Leaf.Subject.String(),
		"not_after", next.cert.Leaf.NotAfter.UTC().Format(time.RFC3339))
	return next
}

func (r *Reloader) logFailure(st stamps, err error) {
	if st == r.failed {
		return
	}
	r.failed = st
	r.log.Warn("TLS files changed but cannot be loaded; still serving the previous certificate", "err", err)
}

func (r *Reloader) stat() (stamps, error) {
	var st stamps
	for i, name := range []string{r.files.Cert, r.files.Key, r.files.ClientCA} {
		if name == "" {
			continue
		}
		fi, err := os.Stat(name)
		if err != nil {
			return st, fmt.Errorf("TLS: %w", err)
		}
		st[i].mod, st[i].size = fi.ModTime().UnixNano(), fi.Size()
	}
	return st, nil
}

func (r *Reloader) load(st stamps) (*material, error) {
	cert, err := tls.LoadX509KeyPair(r.files.Cert, r.files.Key)
	if err != nil {
		return nil, fmt.Errorf("TLS: load certificate %s with key %s: %w", r.files.Cert, r.files.Key, err)
	}
	if cert.Leaf == nil {
		if cert.Leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			return nil, fmt.Errorf("TLS: parse certificate %s: %w", r.files.Cert, err)
		}
	}
	m := &material{cert: &cert, stamps: st}
	if r.files.ClientCA != "" {
		pem, err := os.ReadFile(r.files.ClientCA)
		if err != nil {
			return nil, fmt.Errorf("TLS: read client CA: %w", err)
		}
		m.clientCAs = x509.NewCertPool()
		if !m.clientCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("TLS: client CA file %s holds no PEM certificate", r.files.ClientCA)
		}
	}
	return m, nil
}

// ClientConfig is what SkyTrail's own clients (doctor, loadgen, the demo)
// dial a TLS server with: the roots in caFile (the system's when empty), a
// client certificate when certFile and keyFile are set, and no verification
// at all when skipVerify (a test server with a throwaway certificate).
func ClientConfig(caFile, certFile, keyFile string, skipVerify bool) (*tls.Config, error) {
	c := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: skipVerify} //nolint:gosec // asked for by the user
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("read CA file: %w", err)
		}
		c.RootCAs = x509.NewCertPool()
		if !c.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("CA file %s holds no PEM certificate", caFile)
		}
	}
	if certFile != "" || keyFile != "" {
		cert, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return nil, fmt.Errorf("load client certificate %s with key %s: %w", certFile, keyFile, err)
		}
		c.Certificates = []tls.Certificate{cert}
	}
	return c, nil
}
