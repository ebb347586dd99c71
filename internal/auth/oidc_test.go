package auth_test

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/coreos/go-oidc/v3/oidc/oidctest"

	"github.com/skytrail/skytrail/internal/auth"
)

// provider is an OpenID provider for tests: go-oidc's oidctest serves
// discovery and keys; /auth approves at once (as a logged-in person would)
// and /token checks the code, the client's secret and the PKCE verifier.
type provider struct {
	t      *testing.T
	srv    *httptest.Server
	key    *rsa.PrivateKey
	mu     sync.Mutex
	codes  map[string]grant
	email  string
	nonce  string // when set, the ID token carries it instead of the login's
	issued int
}

type grant struct{ nonce, challenge, redirect string }

func newProvider(t *testing.T) *provider {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	p := &provider{t: t, key: key, codes: map[string]grant{}, email: "alice@example.com"}
	keys := &oidctest.Server{PublicKeys: []oidctest.PublicKey{{PublicKey: key.Public(), KeyID: "k1", Algorithm: oidc.RS256}}}
	mux := http.NewServeMux()
	mux.Handle("/", keys)
	mux.HandleFunc("/auth", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		if q.Get("client_id") != "skytrail" || q.Get("code_challenge_method") != "S256" || q.Get("code_challenge") == "" {
			http.Error(w, "bad authorization request: "+r.URL.RawQuery, http.StatusBadRequest)
			return
		}
		code := fmt.Sprintf("code-%d", time.Now().UnixNano())
		p.mu.Lock()
		p.codes[code] = grant{nonce: q.Get("nonce"), challenge: q.Get("code_challenge"), redirect: q.Get("redirect_uri")}
		p.mu.Unlock()
		http.Redirect(w, r, q.Get("redirect_uri")+"?code="+code+"&state="+url.QueryEscape(q.Get("state")), http.StatusFound)
	})
	mux.HandleFunc("/token", func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		id, secret, _ := r.BasicAuth()
		if id == "" {
			id, secret = r.Form.Get("client_id"), r.Form.Get("client_secret")
		}
		p.mu.Lock()
		g, ok := p.codes[r.Form.Get("code")]
		delete(p.codes, r.Form.Get("code"))
		p.mu.Unlock()
		sum := sha256.Sum256([]byte(r.Form.Get("code_verifier")))
		switch {
		case id != "skytrail" || secret != "client-secret":
			http.Error(w, `{"error":"invalid_client"}`, http.StatusUnauthorized)
			return
		case !ok || g.redirect != r.Form.Get("redirect_uri") || base64.RawURLEncoding.EncodeToString(sum[:]) != g.challenge:
			http.Error(w, `{"error":"invalid_grant"}`, http.StatusBadRequest)
			return
		}
		p.mu.Lock()
		nonce, email := g.nonce, p.email
		if p.nonce != "" {
			nonce = p.nonce
		}
		p.mu.Unlock()
		claims, _ := json.Marshal(map[string]any{"iss": p.srv.URL, "aud": "skytrail", "sub": "user-1", "email": email, "email_verified": true,
			"nonce": nonce, "iat": time.Now().Unix(), "exp": time.Now().Add(time.Hour).Unix()})
		p.mu.Lock()
		p.issued++
		p.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"access_token": "at", "token_type": "Bearer", "expires_in": 3600,
			"id_token": oidctest.SignIDToken(p.key, "k1", oidc.RS256, string(claims))})
	})
	p.srv = httptest.NewServer(mux)
	keys.SetIssuer(p.srv.URL)
	t.Cleanup(p.srv.Close)
	return p
}

// skytrail serves a page and an API behind a guard logging in with p.
func skytrail(t *testing.T, p *provider, allowed ...string) (*httptest.Server, *auth.Guard) {
	t.Helper()
	var g *auth.Guard
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello %s at %s", auth.FromContext(r.Context()).Name, r.URL.RequestURI())
	})
	srv := httptest.NewUnstartedServer(nil)
	srv.Start()
	t.Cleanup(srv.Close)
	g, err := auth.New(auth.Config{OIDC: auth.OIDCConfig{Issuer: p.srv.URL, ClientID: "skytrail", ClientSecret: "client-secret",
		RedirectURL: srv.URL + auth.CallbackPath, AllowedUsers: allowed}})
	if err != nil {
		t.Fatal(err)
	}
	srv.Config.Handler = g.Wrap(mux)
	return srv, g
}

func browser(t *testing.T) *http.Client {
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{Jar: jar, Timeout: 10 * time.Second}
}

func get(t *testing.T, c *http.Client, u string, html bool) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, u, nil)
	if html {
		req.Header.Set("Accept", "text/html,application/xhtml+xml")
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestOIDCLogin(t *testing.T) {
	t.Parallel()
	p := newProvider(t)
	srv, _ := skytrail(t, p)
	b := browser(t)

	// A browser is sent to log in and comes back where it was going.
	code, body := get(t, b, srv.URL+"/traces?service=a%20b", true)
	if code != http.StatusOK || body != "hello alice@example.com at /traces?service=a%20b" {
		t.Fatalf("after the login: %d %q", code, body)
	}
	// The session cookie lets it use the API.
	if code, body := get(t, b, srv.URL+"/api/v1/services", false); code != http.StatusOK || !strings.Contains(body, "alice@example.com") {
		t.Errorf("the API with the session: %d %q", code, body)
	}
	// A script without a session gets 401, not a redirect.
	if code, _ := get(t, browser(t), srv.URL+"/api/v1/services", false); code != http.StatusUnauthorized {
		t.Errorf("the API without a session: %d, want 401", code)
	}
	// A forged or altered session cookie is nobody.
	u, _ := url.Parse(srv.URL)
	for _, c := range b.Jar.Cookies(u) {
		if c.Name != "skytrail_session" {
			continue
		}
		forged := browser(t)
		v := []byte(c.Value)
		v[len(v)/2] ^= 1
		forged.Jar.SetCookies(u, []*http.Cookie{{Name: c.Name, Value: string(v)}})
		if code, _ := get(t, forged, srv.URL+"/api/v1/services", false); code != http.StatusUnauthorized {
			t.Errorf("an altered session cookie: %d, want 401", code)
		}
	}
	// Logging out ends the session.
	get(t, b, srv.URL+auth.LogoutPath, false)
	if code, _ := get(t, b, srv.URL+"/api/v1/services", false); code != http.StatusUnauthorized {
		t.Errorf("after logging out: %d, want 401", code)
	}
}

func TestOIDCRefusals(t *testing.T) {
	t.Parallel()
	p := newProvider(t)
	srv, _ := skytrail(t, p, "bob@example.com")
	noRedirects := func(c *http.Client) *http.Client {
		c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
		return c
	}

	// A user the provider knows but --oidc-allowed-users does not.
	if code, body := get(t, browser(t), srv.URL+"/", true); code != http.StatusForbidden || !strings.Contains(body, "alice@example.com is not among --oidc-allowed-users") {
		t.Errorf("a user not allowed: %d %q", code, body)
	}

	// A callback with another state (a forged login link) is refused.
	b := noRedirects(browser(t))
	req, _ := http.NewRequest(http.MethodGet, srv.URL+auth.LoginPath+"?next=/x", nil)
	resp, err := b.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if code, body := get(t, b, srv.URL+auth.CallbackPath+"?code=x&state=forged", false); code != http.StatusBadRequest || !strings.Contains(body, "state") {
		t.Errorf("a forged state: %d %q", code, body)
	}
	// A callback with no login started in this browser.
	if code, _ := get(t, browser(t), srv.URL+auth.CallbackPath+"?code=x&state=y", false); code != http.StatusBadRequest {
		t.Errorf("a callback without a login: %d, want 400", code)
	}

	// An ID token minted for another login (its nonce) is refused.
	p2 := newProvider(t)
	p2.nonce = "someone-elses"
	srv2, _ := skytrail(t, p2)
	if code, body := get(t, browser(t), srv2.URL+"/", true); code != http.StatusUnauthorized || !strings.Contains(body, "nonce") {
		t.Errorf("a token with another nonce: %d %q", code, body)
	}

	// The login returns only to paths on this server.
	for _, next := range []string{"//evil.example/x", "https://evil.example/", `/\evil.example`, "javascript:alert(1)"} {
		b := noRedirects(browser(t))
		resp, err := b.Get(srv.URL + auth.LoginPath + "?next=" + url.QueryEscape(next))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		// Follow the provider by hand and look where the callback sends us.
		authURL := resp.Header.Get("Location")
		resp, err = b.Get(authURL)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		cb := resp.Header.Get("Location")
		p.mu.Lock()
		p.email = "bob@example.com"
		p.mu.Unlock()
		resp, err = b.Get(cb)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusFound || loc != "/" {
			t.Errorf("next=%q: the login returned to %q (HTTP %d), want /", next, loc, resp.StatusCode)
		}
	}
}

func TestOIDCSettings(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		cfg  auth.OIDCConfig
		want string
	}{
		{auth.OIDCConfig{ClientID: "x"}, "need --oidc-issuer"},
		{auth.OIDCConfig{Issuer: "https://idp.example"}, "--oidc-client-id"},
		{auth.OIDCConfig{Issuer: "https://idp.example", ClientID: "x"}, "--oidc-redirect-url"},
		{auth.OIDCConfig{Issuer: "https://idp.example", ClientID: "x", RedirectURL: "https://st.example/callback"}, "ending in /auth/callback"},
		{auth.OIDCConfig{Issuer: "idp.example", ClientID: "x", RedirectURL: "https://st.example/auth/callback"}, "--oidc-issuer"},
		{auth.OIDCConfig{Issuer: "https://idp.example", ClientID: "x", RedirectURL: "https://st.example/auth/callback", CookieSecret: "short"}, "at least 32"},
	} {
		if _, err := auth.New(auth.Config{OIDC: tc.cfg}); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want an error mentioning %q", tc.cfg, err, tc.want)
		}
	}
	// The provider need not answer at start: the server starts, the login
	// says why it cannot proceed.
	g, err := auth.New(auth.Config{OIDC: auth.OIDCConfig{Issuer: "http://127.0.0.1:1", ClientID: "x", RedirectURL: "https://st.example/auth/callback"}})
	if err != nil {
		t.Fatal(err)
	}
	w := httptest.NewRecorder()
	g.Wrap(http.NotFoundHandler()).ServeHTTP(w, httptest.NewRequest(http.MethodGet, auth.LoginPath, nil))
	if w.Code != http.StatusServiceUnavailable || !strings.Contains(w.Body.String(), "discover the OpenID provider") {
		t.Errorf("login with the provider down: %d %q", w.Code, w.Body.String())
	}
}
