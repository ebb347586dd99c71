package auth

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

// OIDCConfig is a login with an OpenID Connect provider (Keycloak, Dex,
// Google, Azure AD, Okta, ...): the authorization code flow with PKCE, the
// ID token verified by github.com/coreos/go-oidc, the session kept in an
// encrypted cookie. Issuer empty: off.
type OIDCConfig struct {
	Issuer       string
	ClientID     string
	ClientSecret string
	// RedirectURL is SkyTrail's callback as the browser reaches it, ending
	// in /auth/callback (https://skytrail.example.com/auth/callback),
	// registered with the provider.
	RedirectURL string
	// AllowedUsers, when not empty, are the e-mail addresses or subjects
	// let in; empty lets in whoever the provider lets use the client.
	AllowedUsers []string
	// Session is how long a login lasts (default 12 h).
	Session time.Duration
	// CookieSecret keeps sessions valid across restarts and replicas; empty
	// draws a key at start, so a restart logs everyone out.
	CookieSecret string
	// HTTPClient talks to the provider (nil: http.DefaultClient).
	HTTPClient *http.Client
}

// The paths the login owns; anyone may reach them.
const (
	LoginPath    = "/auth/login"
	CallbackPath = "/auth/callback"
	LogoutPath   = "/auth/logout"
)

const (
	sessionCookie = "skytrail_session"
	loginCookie   = "skytrail_login"
	// loginTTL bounds the time from the redirect to the provider to the
	// callback: a person typing a password and a second factor.
	loginTTL = 10 * time.Minute
)

// oidcLogin is a configured OpenID Connect login.
type oidcLogin struct {
	cfg    OIDCConfig
	aead   cipher.AEAD
	secure bool // cookies only over https

	mu       sync.Mutex
	provider *oidc.Provider // discovered on first use, so start does not wait on the provider
	verifier *oidc.IDTokenVerifier
	oauth    oauth2.Config
}

func newOIDC(cfg OIDCConfig) (*oidcLogin, error) {
	switch {
	case cfg.ClientID == "":
		return nil, errors.New("--oidc-issuer needs --oidc-client-id")
	case cfg.RedirectURL == "":
		return nil, errors.New("--oidc-issuer needs --oidc-redirect-url: SkyTrail's address as browsers reach it, ending in " + CallbackPath)
	}
	iss, err := url.Parse(cfg.Issuer)
	if err != nil || iss.Host == "" || (iss.Scheme != "https" && iss.Scheme != "http") {
		return nil, fmt.Errorf("--oidc-issuer %q: want the provider's URL, such as https://accounts.example.com", cfg.Issuer)
	}
	red, err := url.Parse(cfg.RedirectURL)
	if err != nil || red.Host == "" || (red.Scheme != "https" && red.Scheme != "http") || red.Path != CallbackPath {
		return nil, fmt.Errorf("--oidc-redirect-url %q: want an absolute URL ending in %s, such as https://skytrail.example.com%s", cfg.RedirectURL, CallbackPath, CallbackPath)
	}
	var users []string
	for _, u := range cfg.AllowedUsers {
		for _, v := range strings.Split(u, ",") {
			if v = strings.TrimSpace(v); v != "" {
				users = append(users, v)
			}
		}
	}
	cfg.AllowedUsers = users
	if cfg.Session <= 0 {
		cfg.Session = 12 * time.Hour
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = http.DefaultClient
	}
	key := make([]byte, 32)
	if cfg.CookieSecret != "" {
		if len(cfg.CookieSecret) < 32 {
			return nil, errors.New("--oidc-cookie-secret: use at least 32 characters (such as the output of openssl rand -hex 32)")
		}
		sum := sha256.Sum256([]byte(cfg.CookieSecret))
		key = sum[:]
	} else if _, err := rand.Read(key); err != nil {
		return nil, fmt.Errorf("draw the session key: %w", err)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &oidcLogin{cfg: cfg, aead: aead, secure: red.Scheme == "https"}, nil
}

// discover finds the provider's endpoints and keys, once it answers.
func (o *oidcLogin) discover(ctx context.Context) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.provider != nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(oidc.ClientContext(ctx, o.cfg.HTTPClient), 10*time.Second)
	defer cancel()
	p, err := oidc.NewProvider(ctx, o.cfg.Issuer)
	if err != nil {
		return fmt.Errorf("discover the OpenID provider %s: %w", o.cfg.Issuer, err)
	}
	o.provider = p
	o.verifier = p.Verifier(&oidc.Config{ClientID: o.cfg.ClientID})
	o.oauth = oauth2.Config{
		ClientID: o.cfg.ClientID, ClientSecret: o.cfg.ClientSecret, RedirectURL: o.cfg.RedirectURL,
		Endpoint: p.Endpoint(), Scopes: []string{oidc.ScopeOpenID, "profile", "email"},
	}
	return nil
}

// session is what the session cookie holds.
type session struct {
	Name    string `json:"n"`
	Subject string `json:"s"`
	Expires int64  `json:"e"`
}

// pending is what the login cookie holds between the redirect to the
// provider and the callback.
type pending struct {
	State    string `json:"st"`
	Nonce    string `json:"no"`
	Verifier string `json:"v"`
	Next     string `json:"nx"`
	Expires  int64  `json:"e"`
}

// seal encrypts and authenticates v for a cookie; purpose binds it to one
// cookie, so a login cookie cannot pass for a session.
func (o *oidcLogin) seal(purpose string, v any) string {
	plain, _ := json.Marshal(v)
	nonce := make([]byte, o.aead.NonceSize())
	_, _ = rand.Read(nonce)
	return base64.RawURLEncoding.EncodeToString(o.aead.Seal(nonce, nonce, plain, []byte(purpose)))
}

func (o *oidcLogin) open(purpose, s string, v any) bool {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(b) < o.aead.NonceSize() {
		return false
	}
	plain, err := o.aead.Open(nil, b[:o.aead.NonceSize()], b[o.aead.NonceSize():], []byte(purpose))
	return err == nil && json.Unmarshal(plain, v) == nil
}

func (o *oidcLogin) setCookie(w http.ResponseWriter, name, value, path string, maxAge time.Duration) {
	http.SetCookie(w, &http.Cookie{Name: name, Value: value, Path: path, MaxAge: int(maxAge.Seconds()),
		HttpOnly: true, Secure: o.secure, SameSite: http.SameSiteLaxMode})
}

// identity is the logged-in user of r, nil when there is none.
func (o *oidcLogin) identity(r *http.Request) *Identity {
	c, err := r.Cookie(sessionCookie)
	if err != nil {
		return nil
	}
	var s session
	if !o.open(sessionCookie, c.Value, &s) || time.Now().Unix() >= s.Expires {
		return nil
	}
	return &Identity{Name: s.Name, Method: "oidc"}
}

// localPath is next if it is a path on this server, else "/": the login
// must not redirect anywhere else (an open redirect).
func localPath(next string) string {
	u, err := url.Parse(next)
	if next == "" || err != nil || u.Scheme != "" || u.Host != "" || !strings.HasPrefix(next, "/") ||
		strings.HasPrefix(next, "//") || strings.ContainsAny(next, "\\\r\n") {
		return "/"
	}
	return next
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// serve answers the login's own paths; it reports false for any other.
func (o *oidcLogin) serve(w http.ResponseWriter, r *http.Request) bool {
	switch r.URL.Path {
	case LoginPath:
		o.login(w, r)
	case CallbackPath:
		o.callback(w, r)
	case LogoutPath:
		o.setCookie(w, sessionCookie, "", "/", -1)
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("Logged out of SkyTrail.\n"))
	default:
		return false
	}
	return true
}

func (o *oidcLogin) login(w http.ResponseWriter, r *http.Request) {
	if err := o.discover(r.Context()); err != nil {
		http.Error(w, "login unavailable: "+err.Error(), http.StatusServiceUnavailable)
		return
	}
	p := pending{State: randomHex(16), Nonce: randomHex(16), Verifier: oauth2.GenerateVerifier(),
		Next: localPath(r.URL.Query().Get("next")), Expires: time.Now().Add(loginTTL).Unix()}
	o.setCookie(w, loginCookie, o.seal(loginCookie, p), "/auth/", loginTTL)
	http.Redirect(w, r, o.oauth.AuthCodeURL(p.State, oidc.Nonce(p.Nonce), oauth2.S256ChallengeOption(p.Verifier)), http.StatusFound)
}

func (o *oidcLogin) callback(w http.ResponseWriter, r *http.Request) {
	fail := func(status int, msg string) {
		http.Error(w, "login failed: "+msg+" (start again at "+LoginPath+")", status)
	}
	c, err := r.Cookie(loginCookie)
	var p pending
	if err != nil || !o.open(loginCookie, c.Value, &p) || time.Now().Unix() >= p.Expires {
		fail(http.StatusBadRequest, "no login in progress in this browser, or it took longer than "+loginTTL.String())
		return
	}
	// One use: a replayed callback finds no login in progress.
	o.setCookie(w, loginCookie, "", "/auth/", -1)
	q := r.URL.Query()
	if e := q.Get("error"); e != "" {
		fail(http.StatusUnauthorized, "the identity provider said "+e+": "+q.Get("error_description"))
		return
	}
	if subtle.ConstantTimeCompare([]byte(q.Get("state")), []byte(p.State)) != 1 {
		fail(http.StatusBadRequest, "the state does not match the login this browser started")
		return
	}
	if err := o.discover(r.Context()); err != nil {
		fail(http.StatusServiceUnavailable, err.Error())
		return
	}
	ctx, cancel := context.WithTimeout(oidc.ClientContext(r.Context(), o.cfg.HTTPClient), 15*time.Second)
	defer cancel()
	ctx = context.WithValue(ctx, oauth2.HTTPClient, o.cfg.HTTPClient)
	tok, err := o.oauth.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(p.Verifier))
	if err != nil {
		fail(http.StatusUnauthorized, "exchange the code for tokens: "+err.Error())
		return
	}
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		fail(http.StatusUnauthorized, "the provider sent no ID token")
		return
	}
	idt, err := o.verifier.Verify(ctx, raw)
	if err != nil {
		fail(http.StatusUnauthorized, "verify the ID token: "+err.Error())
		return
	}
	if subtle.ConstantTimeCompare([]byte(idt.Nonce), []byte(p.Nonce)) != 1 {
		fail(http.StatusUnauthorized, "the ID token's nonce does not match this login")
		return
	}
	var claims struct {
		Email             string `json:"email"`
		EmailVerified     *bool  `json:"email_verified"`
		PreferredUsername string `json:"preferred_username"`
	}
	_ = idt.Claims(&claims)
	email := claims.Email
	if claims.EmailVerified != nil && !*claims.EmailVerified {
		email = "" // an address the provider has not checked names nobody
	}
	if len(o.cfg.AllowedUsers) > 0 && !slices.Contains(o.cfg.AllowedUsers, idt.Subject) && (email == "" || !slices.Contains(o.cfg.AllowedUsers, email)) {
		fail(http.StatusForbidden, fmt.Sprintf("%s is not among --oidc-allowed-users", firstNonEmpty(email, idt.Subject)))
		return
	}
	s := session{Name: firstNonEmpty(email, claims.PreferredUsername, idt.Subject), Subject: idt.Subject, Expires: time.Now().Add(o.cfg.Session).Unix()}
	o.setCookie(w, sessionCookie, o.seal(sessionCookie, s), "/", o.cfg.Session)
	http.Redirect(w, r, p.Next, http.StatusFound)
}

func firstNonEmpty(vs ...string) string {
	for _, v := range vs {
		if v != "" {
			return v
		}
	}
	return ""
}
