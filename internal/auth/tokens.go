// Package auth says who a request comes from and what it may do: bearer
// tokens (ingest tokens for the receivers, read-only API tokens for
// Grafana), users with bcrypt passwords (basic auth), and a user named by a
// trusted reverse proxy. Every request it lets through carries an Identity
// in its context, with the tenants it may use (package tenant).
package auth

import (
	"bufio"
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"os"
	"strings"
)

// Identity is who a request comes from.
type Identity struct {
	// Name is the user's name or the token's (a token without one is
	// named by its position: "token 2 of --ingest-token").
	Name string
	// Method is how it was established: "basic", "proxy" or "token".
	Method string
	// ReadOnly identities may read every API but change nothing.
	ReadOnly bool
	// Tenants are the tenants this identity may write to or read, the
	// first its own (used when a request names none); AnyTenant allows
	// every configured tenant. Empty: the default tenant only.
	Tenants []string
}

// AnyTenant, as a token's or user's tenant, allows every configured tenant:
// for a gateway (a collector, a reverse proxy) that names the tenant of
// each request in X-Scope-OrgID.
const AnyTenant = "*"

// parseTenants adds the tenants of a "tenant=a,b" value to list.
func parseTenants(list []string, v string) ([]string, error) {
	for _, t := range strings.Split(v, ",") {
		if t = strings.TrimSpace(t); t == "" {
			return nil, fmt.Errorf("tenant=%s names an empty tenant", v)
		}
		list = append(list, t)
	}
	return list, nil
}

type identityKey struct{}

// NewContext returns ctx carrying id.
func NewContext(ctx context.Context, id *Identity) context.Context {
	return context.WithValue(ctx, identityKey{}, id)
}

// FromContext returns the identity a request was authenticated as, nil when
// the server asks for none.
func FromContext(ctx context.Context) *Identity {
	id, _ := ctx.Value(identityKey{}).(*Identity)
	return id
}

// MinTokenLength is the shortest token accepted: 16 characters of a random
// hex string are 64 bits, beyond guessing over the network.
const MinTokenLength = 16

// Token is one bearer token, the name it is known by and the tenants it
// may use (Identity.Tenants).
type Token struct {
	Secret  string
	Name    string
	Tenants []string
}

// Tokens is a set of bearer tokens. The zero value (or nil) holds none.
type Tokens struct {
	list []Token
}

// ParseTokens collects the tokens given as flag values (each may hold
// several, comma-separated) and those in file (one a line: the token, then
// optionally name=NAME; # starts a comment). what names them in errors and
// default names ("ingest token"). A line may also give the token's tenants:
// tenant=NAME[,NAME...] (the first is the token's own; * allows any).
func ParseTokens(what string, values []string, file string) (*Tokens, error) {
	t := &Tokens{}
	seen := map[string]bool{}
	add := func(where string, fields []string) error {
		tok := Token{Secret: fields[0]}
		for _, f := range fields[1:] {
			k, v, ok := strings.Cut(f, "=")
			switch {
			case ok && k == "name" && v != "":
				tok.Name = v
			case ok && k == "tenant" && v != "":
				var err error
				if tok.Tenants, err = parseTenants(tok.Tenants, v); err != nil {
					return fmt.Errorf("%s: %w", where, err)
				}
			default:
				return fmt.Errorf("%s: %q is not name=NAME or tenant=NAME (the line is a token, then optionally name=NAME and tenant=NAME[,NAME...])", where, f)
			}
		}
		if len(tok.Secret) < MinTokenLength {
			return fmt.Errorf("%s: the %s is %d characters; use at least %d (such as the output of openssl rand -hex 16)", where, what, len(tok.Secret), MinTokenLength)
		}
		for _, c := range tok.Secret {
			if c <= ' ' || c == 0x7f || c > '~' {
				return fmt.Errorf("%s: the %s holds a space, control or non-ASCII character, which HTTP headers cannot carry", where, what)
			}
		}
		if seen[tok.Secret] {
			return fmt.Errorf("%s: the same %s is given twice", where, what)
		}
		seen[tok.Secret] = true
		if tok.Name == "" {
			tok.Name = fmt.Sprintf("%s %d", what, len(t.list)+1)
		}
		t.list = append(t.list, tok)
		return nil
	}
	for i, v := range values {
		for _, s := range strings.Split(v, ",") {
			if s = strings.TrimSpace(s); s == "" {
				continue
			}
			if err := add(fmt.Sprintf("%s #%d", what, i+1), []string{s}); err != nil {
				return nil, err
			}
		}
	}
	if file != "" {
		f, err := os.Open(file)
		if err != nil {
			return nil, fmt.Errorf("read %s file: %w", what, err)
		}
		defer f.Close()
		sc := bufio.NewScanner(f)
		for n := 1; sc.Scan(); n++ {
			line, _, _ := strings.Cut(sc.Text(), "#")
			fields := strings.Fields(line)
			if len(fields) == 0 {
				continue
			}
			if err := add(fmt.Sprintf("%s line %d", file, n), fields); err != nil {
				return nil, err
			}
		}
		if err := sc.Err(); err != nil {
			return nil, fmt.Errorf("read %s file %s: %w", what, file, err)
		}
	}
	return t, nil
}

// Len is how many tokens there are.
func (t *Tokens) Len() int {
	if t == nil {
		return 0
	}
	return len(t.list)
}

// TenantsNamed maps the name of each token given tenants to them, for the
// server to check against the tenants it keeps.
func (t *Tokens) TenantsNamed() map[string][]string {
	out := map[string][]string{}
	if t == nil {
		return out
	}
	for _, tok := range t.list {
		if len(tok.Tenants) > 0 {
			out[tok.Name] = tok.Tenants
		}
	}
	return out
}

// First is the first token given, for SkyTrail's own clients (the demo).
func (t *Tokens) First() (Token, bool) {
	if t.Len() == 0 {
		return Token{}, false
	}
	return t.list[0], true
}

// Match finds the token secret is. It compares secret with every token in
// constant time, so how long it takes tells nothing about any of them.
func (t *Tokens) Match(secret string) (Token, bool) {
	var found Token
	ok := 0
	if t == nil {
		return found, false
	}
	for _, tok := range t.list {
		if subtle.ConstantTimeCompare([]byte(secret), []byte(tok.Secret)) == 1 {
			found, ok = tok, 1
		}
	}
	return found, ok == 1
}

// Bearer is the token in an Authorization header value "Bearer <token>"
// (the scheme in any case, as RFC 9110 allows).
func Bearer(header string) (string, bool) {
	scheme, tok, ok := strings.Cut(strings.TrimSpace(header), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	tok = strings.TrimSpace(tok)
	return tok, tok != ""
}

// ErrNoToken and ErrWrongToken are why an ingest request is refused; the
// receivers wrap them with what the client should do.
var (
	ErrNoToken    = errors.New("no Authorization: Bearer token")
	ErrWrongToken = errors.New("the Authorization bearer token is not one the server accepts")
)

// CheckBearer authenticates the Authorization header values of a request
// (HTTP headers, or gRPC's "authorization" metadata) against t.
func (t *Tokens) CheckBearer(values []string) (*Identity, error) {
	err := ErrNoToken
	for _, v := range values {
		secret, ok := Bearer(v)
		if !ok {
			continue
		}
		if tok, ok := t.Match(secret); ok {
			return &Identity{Name: tok.Name, Method: "token", Tenants: tok.Tenants}, nil
		}
		err = ErrWrongToken
	}
	return nil, err
}
