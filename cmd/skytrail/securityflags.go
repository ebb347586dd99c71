package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/skytrail/skytrail/internal/auth"
	"github.com/skytrail/skytrail/internal/server"
)

// securityFlags defines TLS, tokens, users and listener bounds
// (docs/security.md) on fs, writing into sec.
func securityFlags(fs *flag.FlagSet, sec *server.Security) {
	fs.StringVar(&sec.TLS.Cert, "tls-cert", "", "PEM certificate (chain) every listener serves TLS with, re-read when the file changes (empty: plaintext)")
	fs.StringVar(&sec.TLS.Key, "tls-key", "", "PEM private key of --tls-cert")
	fs.StringVar(&sec.TLS.ClientCA, "tls-client-ca", "", "PEM CA certificates: every client must present a certificate they signed (mutual TLS)")
	fs.Var((*stringList)(&sec.IngestTokens), "ingest-token", "token OTLP exporters must send as Authorization: Bearer <token> (repeatable or comma-separated; prefer --ingest-tokens-file or the environment)")
	fs.StringVar(&sec.IngestTokensFile, "ingest-tokens-file", "", "file of ingest tokens, one a line: TOKEN [name=NAME] [tenant=NAME[,NAME...]] (the token's tenants, the first its own; * allows any named in X-Scope-OrgID)")
	fs.StringVar(&sec.Auth.UsersFile, "auth-users", "", "htpasswd file of bcrypt hashes (htpasswd -nB USER, or skytrail passwd USER): the UI and APIs ask for a user (basic auth)")
	fs.StringVar(&sec.Auth.ProxyHeader, "auth-proxy-header", "", "header a reverse proxy puts the logged-in user in, such as X-Forwarded-User (needs --auth-proxy-cidrs)")
	fs.Var((*stringList)(&sec.Auth.ProxyCIDRs), "auth-proxy-cidrs", "addresses or CIDRs of the proxies trusted to set --auth-proxy-header (repeatable or comma-separated)")
	fs.Var((*stringList)(&sec.Auth.APITokens), "api-token", "read-only API token (Authorization: Bearer <token>) for Grafana and scripts (repeatable or comma-separated)")
	fs.StringVar(&sec.Auth.APITokensFile, "api-tokens-file", "", "file of read-only API tokens, one a line: TOKEN [name=NAME] [tenant=NAME[,NAME...]]")
	fs.StringVar(&sec.Auth.OIDC.Issuer, "oidc-issuer", "", "OpenID Connect provider URL: people log in to the UI with it (needs --oidc-client-id, --oidc-redirect-url)")
	fs.StringVar(&sec.Auth.OIDC.ClientID, "oidc-client-id", "", "client ID registered with the OpenID provider")
	fs.StringVar(&sec.Auth.OIDC.ClientSecret, "oidc-client-secret", "", "its client secret (prefer SKYTRAIL_OIDC_CLIENT_SECRET)")
	fs.StringVar(&sec.Auth.OIDC.RedirectURL, "oidc-redirect-url", "", "SkyTrail's callback as browsers reach it, registered with the provider: https://HOST/auth/callback")
	fs.Var((*stringList)(&sec.Auth.OIDC.AllowedUsers), "oidc-allowed-users", "e-mail addresses or subjects let in (repeatable or comma-separated; empty: whoever the provider lets use the client)")
	fs.DurationVar(&sec.Auth.OIDC.Session, "oidc-session", 12*time.Hour, "how long a login lasts")
	fs.StringVar(&sec.Auth.OIDC.CookieSecret, "oidc-cookie-secret", "", "32+ characters that keep logins valid across restarts and replicas (empty: a restart logs everyone out)")
	fs.StringVar(&sec.PprofAddr, "pprof", "", "address of a separate listener serving /debug/pprof, such as 127.0.0.1:6060 (empty: off)")
	fs.DurationVar(&sec.ReadHeaderTimeout, "http-read-header-timeout", sec.ReadHeaderTimeout, "time an HTTP client has to send a request's headers, and a gRPC client to complete its handshakes")
	fs.DurationVar(&sec.ReadTimeout, "http-read-timeout", sec.ReadTimeout, "time an HTTP client has to send a whole request, body included")
	fs.DurationVar(&sec.IdleTimeout, "http-idle-timeout", sec.IdleTimeout, "an idle kept-alive HTTP connection is closed after this long")
	fs.IntVar(&sec.MaxConnections, "max-connections", sec.MaxConnections, "open connections per listener; more wait until one closes (0: no bound)")
	fs.Func("grpc-max-streams", fmt.Sprintf("concurrent calls per gRPC connection (default %d)", sec.MaxConcurrentStreams), func(s string) error {
		var n uint32
		if _, err := fmt.Sscan(s, &n); err != nil {
			return errors.New("want a whole number")
		}
		sec.MaxConcurrentStreams = n
		return nil
	})
}

// runPasswd is `skytrail passwd USER`: it reads a password from standard
// input and prints the --auth-users line for it.
func runPasswd(args []string) error {
	if len(args) != 1 || strings.HasPrefix(args[0], "-") {
		return errors.New("usage: skytrail passwd USER  (reads the password from standard input, prints USER:HASH for --auth-users)")
	}
	if st, err := os.Stdin.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
		fmt.Fprint(os.Stderr, "password (echoed; pipe it in to keep it off the screen): ")
	}
	line, err := bufio.NewReader(os.Stdin).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("read the password: %w", err)
	}
	password := strings.TrimRight(line, "\r\n")
	if len(password) < 8 {
		return errors.New("the password is shorter than 8 characters")
	}
	out, err := auth.HashPassword(args[0], password)
	if err != nil {
		return err
	}
	fmt.Println(out)
	return nil
}
