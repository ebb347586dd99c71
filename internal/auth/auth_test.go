package auth_test

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/skytrail/skytrail/internal/auth"
)

const (
	tokA = "0123456789abcdef0123"
	tokB = "fedcba9876543210fedc"
)

func writeFile(t *testing.T, name, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestParseTokens(t *testing.T) {
	t.Parallel()
	file := writeFile(t, "tokens", "# the CI exporters\n"+tokB+" name=ci  # rotated monthly\n\n")
	toks, err := auth.ParseTokens("ingest token", []string{tokA + ", " + strings.ToUpper(tokA)}, file)
	if err != nil {
		t.Fatal(err)
	}
	if toks.Len() != 3 {
		t.Fatalf("%d tokens, want 3", toks.Len())
	}
	if tok, ok := toks.Match(tokB); !ok || tok.Name != "ci" {
		t.Errorf("Match(file's token) = %+v %v, want the one named ci", tok, ok)
	}
	if tok, ok := toks.Match(tokA); !ok || tok.Name != "ingest token 1" {
		t.Errorf("Match(flag's token) = %+v %v", tok, ok)
	}
	for _, bad := range []string{"", tokA[:15], tokA + "x", "x" + tokA} {
		if _, ok := toks.Match(bad); ok {
			t.Errorf("Match(%q) matched", bad)
		}
	}
	for _, tc := range []struct {
		values []string
		file   string
		want   string
	}{
		{[]string{"short"}, "", "at least 16"},
		{[]string{tokA, tokA}, "", "twice"},
		{[]string{tokA + "é"}, "", "non-ASCII"},
		{nil, writeFile(t, "bad", tokA+" team=a\n"), "name=NAME"},
		{nil, "/nonexistent/tokens", "/nonexistent/tokens"},
	} {
		if _, err := auth.ParseTokens("ingest token", tc.values, tc.file); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ParseTokens(%q, %q) = %v, want an error mentioning %q", tc.values, tc.file, err, tc.want)
		}
	}
}

func TestCheckBearer(t *testing.T) {
	t.Parallel()
	toks, err := auth.ParseTokens("ingest token", []string{tokA}, "")
	if err != nil {
		t.Fatal(err)
	}
	if id, err := toks.CheckBearer([]string{"bearer " + tokA}); err != nil || id.Method != "token" {
		t.Errorf("lower-case scheme: %v %v", id, err)
	}
	if _, err := toks.CheckBearer(nil); err != auth.ErrNoToken {
		t.Errorf("no header: %v, want ErrNoToken", err)
	}
	if _, err := toks.CheckBearer([]string{"Basic " + tokA}); err != auth.ErrNoToken {
		t.Errorf("basic scheme: %v, want ErrNoToken", err)
	}
	if _, err := toks.CheckBearer([]string{"Bearer " + tokB}); err != auth.ErrWrongToken {
		t.Errorf("wrong token: %v, want ErrWrongToken", err)
	}
}

func TestUsers(t *testing.T) {
	t.Parallel()
	line, err := auth.HashPassword("alice", "correct horse")
	if err != nil {
		t.Fatal(err)
	}
	// htpasswd -nbB writes $2y$ (the same algorithm); Go's bcrypt reads it.
	bob, err := auth.HashPassword("bob", "hunter22")
	if err != nil {
		t.Fatal(err)
	}
	apache := strings.Replace(bob, "$2a$", "$2y$", 1)
	users, err := auth.LoadUsers(writeFile(t, "users", "# people\n"+line+"\n"+apache+"\n"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		user, pass string
		want       bool
	}{
		{"alice", "correct horse", true},
		{"alice", "correct horse", true}, // remembered
		{"alice", "Correct horse", false},
		{"bob", "hunter22", true},
		{"mallory", "correct horse", false},
		{"", "", false},
	} {
		if got := users.Check(tc.user, tc.pass); got != tc.want {
			t.Errorf("Check(%q, %q) = %v, want %v", tc.user, tc.pass, got, tc.want)
		}
	}
	for body, want := range map[string]string{
		"alice:plaintext\n":       "not a bcrypt hash",
		"alice\n":                 "user:bcrypt-hash",
		"# nobody\n":              "names no user",
		line + "\n" + line + "\n": "appears twice",
	} {
		if _, err := auth.LoadUsers(writeFile(t, "u", body)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("LoadUsers(%q) = %v, want %q", body, err, want)
		}
	}
}

func TestGuard(t *testing.T) {
	t.Parallel()
	line, _ := auth.HashPassword("alice", "correct horse")
	g, err := auth.New(auth.Config{
		UsersFile:   writeFile(t, "users", line+"\n"),
		ProxyHeader: "X-Forwarded-User", ProxyCIDRs: []string{"10.0.0.0/8, 192.0.2.7"},
		APITokens: []string{tokA},
		Public:    []string{"/healthz"},
	})
	if err != nil {
		t.Fatal(err)
	}
	var who *auth.Identity
	h := g.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { who = auth.FromContext(r.Context()) }))
	do := func(method, path, remote string, header ...string) int {
		who = nil
		r := httptest.NewRequest(method, path, nil)
		r.RemoteAddr = remote
		for i := 0; i < len(header); i += 2 {
			r.Header.Set(header[i], header[i+1])
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w.Code
	}
	for _, tc := range []struct {
		name         string
		method, path string
		remote       string
		header       []string
		want         int
		wantUser     string
	}{
		{"healthz is open", "GET", "/healthz", "203.0.113.9:1", nil, 200, ""},
		{"nothing", "GET", "/api/v1/services", "203.0.113.9:1", nil, 401, ""},
		{"basic", "GET", "/api/v1/services", "203.0.113.9:1", []string{"Authorization", "Basic YWxpY2U6Y29ycmVjdCBob3JzZQ=="}, 200, "alice"},
		{"basic, wrong password", "GET", "/", "203.0.113.9:1", []string{"Authorization", "Basic YWxpY2U6d3Jvbmc="}, 401, ""},
		{"proxy from a proxy", "GET", "/", "10.1.2.3:1", []string{"X-Forwarded-User", "carol"}, 200, "carol"},
		{"proxy from a single address", "GET", "/", "192.0.2.7:1", []string{"X-Forwarded-User", "carol"}, 200, "carol"},
		{"proxy header from elsewhere", "GET", "/", "203.0.113.9:1", []string{"X-Forwarded-User", "carol"}, 401, ""},
		{"proxy header from elsewhere, forwarded-for lies", "GET", "/", "203.0.113.9:1", []string{"X-Forwarded-User", "carol", "X-Forwarded-For", "10.1.2.3"}, 401, ""},
		{"read-only token reads", "GET", "/jaeger/api/services", "203.0.113.9:1", []string{"Authorization", "Bearer " + tokA}, 200, "API token 1"},
		{"read-only token queries PromQL by POST", "POST", "/prometheus/api/v1/query_range", "203.0.113.9:1", []string{"Authorization", "Bearer " + tokA}, 200, "API token 1"},
		{"read-only token cannot write", "POST", "/api/v1/silences", "203.0.113.9:1", []string{"Authorization", "Bearer " + tokA}, 403, ""},
		{"read-only token cannot delete", "DELETE", "/api/v1/silences/1", "203.0.113.9:1", []string{"Authorization", "Bearer " + tokA}, 403, ""},
		{"a user may write", "POST", "/api/v1/silences", "203.0.113.9:1", []string{"Authorization", "Basic YWxpY2U6Y29ycmVjdCBob3JzZQ=="}, 200, "alice"},
		{"but not from another site", "POST", "/api/v1/silences", "203.0.113.9:1", []string{"Authorization", "Basic YWxpY2U6Y29ycmVjdCBob3JzZQ==", "Sec-Fetch-Site", "cross-site"}, 403, ""},
		{"wrong token", "GET", "/api/v1/services", "203.0.113.9:1", []string{"Authorization", "Bearer " + tokB}, 401, ""},
	} {
		got := do(tc.method, tc.path, tc.remote, tc.header...)
		if got != tc.want {
			t.Errorf("%s: %s %s = %d, want %d", tc.name, tc.method, tc.path, got, tc.want)
		}
		if name := ""; tc.wantUser != "" {
			if who != nil {
				name = who.Name
			}
			if name != tc.wantUser {
				t.Errorf("%s: identity %q, want %q", tc.name, name, tc.wantUser)
			}
		}
	}
	if d := g.Describe(); !strings.Contains(d, "basic auth (1 users)") || !strings.Contains(d, "10.0.0.0/8,192.0.2.7/32") || !strings.Contains(d, "1 read-only API tokens") {
		t.Errorf("Describe() = %q", d)
	}

	if _, err := auth.New(auth.Config{ProxyHeader: "X-Forwarded-User"}); err == nil || !strings.Contains(err.Error(), "--auth-proxy-cidrs") {
		t.Errorf("a proxy header without proxies: %v", err)
	}
	if _, err := auth.New(auth.Config{ProxyHeader: "X-User", ProxyCIDRs: []string{"10.0.0.0/33"}}); err == nil || !strings.Contains(err.Error(), "10.0.0.0/33") {
		t.Errorf("a bad CIDR: %v", err)
	}
}

func TestGuardOpenWhenNothingConfigured(t *testing.T) {
	t.Parallel()
	g, err := auth.New(auth.Config{})
	if err != nil {
		t.Fatal(err)
	}
	if g.Enabled() {
		t.Fatal("Enabled() with nothing configured")
	}
	h := g.Wrap(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("GET", "/api/v1/services", nil))
	if w.Code != 200 {
		t.Fatalf("open server answered %d", w.Code)
	}
}

// Tenants ride on tokens and users: tenant=a,b after the token or after the
// user's hash, kept in order (the first is the identity's own).
func TestTenantsOnTokensAndUsers(t *testing.T) {
	dir := t.TempDir()
	tokens := filepath.Join(dir, "tokens")
	if err := os.WriteFile(tokens, []byte("tok-a-0123456789abcdef name=a tenant=a\ntok-g-0123456789abcdef tenant=*\ntok-d-0123456789abcdef\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ts, err := auth.ParseTokens("ingest token", nil, tokens)
	if err != nil {
		t.Fatal(err)
	}
	id, err := ts.CheckBearer([]string{"Bearer tok-a-0123456789abcdef"})
	if err != nil || len(id.Tenants) != 1 || id.Tenants[0] != "a" {
		t.Errorf("token a: %+v, %v", id, err)
	}
	if id, _ := ts.CheckBearer([]string{"Bearer tok-d-0123456789abcdef"}); id == nil || id.Tenants != nil {
		t.Errorf("token without tenant=: %+v", id)
	}
	if got := ts.TenantsNamed(); len(got) != 2 || got["ingest token 2"][0] != auth.AnyTenant {
		t.Errorf("tenants named: %v", got)
	}
	if err := os.WriteFile(tokens, []byte("tok-a-0123456789abcdef tenant=\n"), 0o600); err == nil {
		if _, err := auth.ParseTokens("ingest token", nil, tokens); err == nil {
			t.Error("an empty tenant= was accepted")
		}
	}

	line, err := auth.HashPassword("alice", "secret")
	if err != nil {
		t.Fatal(err)
	}
	users := filepath.Join(dir, "users")
	if err := os.WriteFile(users, []byte(line+" tenant=b,a\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	u, err := auth.LoadUsers(users)
	if err != nil {
		t.Fatal(err)
	}
	if !u.Check("alice", "secret") || strings.Join(u.Tenants("alice"), ",") != "b,a" {
		t.Errorf("alice: check %v, tenants %v", u.Check("alice", "secret"), u.Tenants("alice"))
	}
	if err := os.WriteFile(users, []byte(line+" team=b\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := auth.LoadUsers(users); err == nil {
		t.Error("a users line ending in team=b was accepted")
	}
}
