package alerting

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/skytrail/skytrail/internal/testutil/testcerts"
)

// mailbox is an SMTP server on 127.0.0.1 (go-smtp) that offers STARTTLS
// and accepts one user with PLAIN authentication, keeping the messages.
type mailbox struct {
	mu       sync.Mutex
	messages []string
	authed   []string
}

type mailSession struct {
	box  *mailbox
	user string
	tls  bool
}

func (s *mailSession) AuthMechanisms() []string { return []string{sasl.Plain} }
func (s *mailSession) Auth(string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(_, user, pass string) error {
		if user != "alerts@shop.test" || pass != "s3cret" {
			return errors.New("bad credentials")
		}
		s.user = user
		return nil
	}), nil
}
func (s *mailSession) Mail(string, *smtp.MailOptions) error {
	if s.user == "" {
		return smtp.ErrAuthRequired
	}
	return nil
}
func (s *mailSession) Rcpt(string, *smtp.RcptOptions) error { return nil }
func (s *mailSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	s.box.mu.Lock()
	defer s.box.mu.Unlock()
	s.box.messages = append(s.box.messages, string(b))
	s.box.authed = append(s.box.authed, s.user)
	return nil
}
func (s *mailSession) Reset()        {}
func (s *mailSession) Logout() error { return nil }

func startMailbox(t *testing.T) (*mailbox, string, *testcerts.CA) {
	ca := testcerts.NewCA(t, "smtp-ca")
	pair := ca.Server(t, "smtp", "localhost")
	cert, err := tls.LoadX509KeyPair(pair.CertFile, pair.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	box := &mailbox{}
	srv := smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		return &mailSession{box: box}, nil
	}))
	srv.Domain = "localhost"
	srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	return box, l.Addr().String(), ca
}

// E-mail is Alertmanager's own integration: it reaches a real SMTP server
// over STARTTLS with authentication, with what fired in the subject and
// SkyTrail's link in the body; wrong credentials are reported as such.
func TestEmailOverSTARTTLSWithAuth(t *testing.T) {
	t.Parallel()
	box, addr, ca := startMailbox(t)
	dir := t.TempDir()
	mailConf := func(pass string) string {
		return `route:
  receiver: mail
receivers:
  - name: mail
    email_configs:
      - to: oncall@shop.test
        from: alerts@shop.test
        smarthost: ` + addr + `
        auth_username: alerts@shop.test
        auth_password: ` + pass + `
        require_tls: true
        tls_config:
          ca_file: ` + ca.File + `
          server_name: localhost
`
	}
	cfg := testConfig(dir)
	cfg.NotifyConfig = writeFile(t, dir, "notify.yml", mailConf("s3cret"))
	a := start(t, cfg, openStore(t, filepath.Join(dir, "tsdb")))
	results, err := a.TestReceiver(context.Background(), "mail")
	if err != nil {
		t.Fatal(err)
	}
	if len(results) != 1 || !results[0].OK {
		t.Fatalf("e-mail: %+v", results)
	}
	box.mu.Lock()
	msgs, users := box.messages, box.authed
	box.mu.Unlock()
	if len(msgs) != 1 || users[0] != "alerts@shop.test" {
		t.Fatalf("mailbox: %d messages, authenticated as %v", len(msgs), users)
	}
	for _, want := range []string{"Subject:", "SkyTrailTestNotification", "To: oncall@shop.test", "http://skytrail.test:8080"} {
		if !strings.Contains(msgs[0], want) {
			t.Errorf("the message does not carry %q:\n%s", want, msgs[0])
		}
	}

	cfg2 := testConfig(t.TempDir())
	cfg2.NotifyConfig = writeFile(t, dir, "notify-bad.yml", mailConf("wrong"))
	b := start(t, cfg2, openStore(t, filepath.Join(t.TempDir(), "tsdb")))
	results, err = b.TestReceiver(context.Background(), "mail")
	if err != nil {
		t.Fatal(err)
	}
	if len(results) != 1 || results[0].OK || !strings.Contains(results[0].Error, "auth") {
		t.Errorf("wrong password: %+v", results)
	}
}
