package auth

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
)

// Config is how the UI and the query APIs authenticate. Everything empty
// means no authentication: anyone who reaches the port may read.
type Config struct {
	// UsersFile is an htpasswd file of bcrypt hashes (basic auth).
	UsersFile string
	// ProxyHeader names the header a reverse proxy puts the logged-in user
	// in (X-Forwarded-User, X-Auth-Request-User, ...), trusted only on
	// connections from ProxyCIDRs.
	ProxyHeader string
	ProxyCIDRs  []string
	// APITokens and APITokensFile are read-only bearer tokens, for Grafana
	// and scripts (see ParseTokens).
	APITokens     []string
	APITokensFile string
	// OIDC logs people in with an OpenID Connect provider (Issuer empty: off).
	OIDC OIDCConfig
	// Public are paths anyone may reach (/healthz, for probes).
	Public []string
	// Registerer receives the refusal counter (nil: not registered).
	Registerer prometheus.Registerer
}

// Guard authenticates requests to the query listener and refuses what an
// identity may not do.
type Guard struct {
	users   *Users
	header  string
	proxies []netip.Prefix
	tokens  *Tokens
	oidc    *oidcLogin
	public  map[string]bool
	refused *prometheus.CounterVec
}

// New reads what cfg names; an error says which setting is wrong.
func New(cfg Config) (*Guard, error) {
	g := &Guard{public: map[string]bool{}}
	for _, p := range cfg.Public {
		g.public[p] = true
	}
	var err error
	if cfg.UsersFile != "" {
		if g.users, err = LoadUsers(cfg.UsersFile); err != nil {
			return nil, err
		}
	}
	if g.tokens, err = ParseTokens("API token", cfg.APITokens, cfg.APITokensFile); err != nil {
		return nil, err
	}
	switch o := cfg.OIDC; {
	case o.Issuer != "":
		if g.oidc, err = newOIDC(o); err != nil {
			return nil, err
		}
	case o.ClientID != "" || o.RedirectURL != "" || o.ClientSecret != "" || len(o.AllowedUsers) > 0:
		return nil, errors.New("--oidc-client-id, --oidc-redirect-url, --oidc-client-secret and --oidc-allowed-users need --oidc-issuer")
	}
	switch {
	case cfg.ProxyHeader != "" && len(cfg.ProxyCIDRs) == 0:
		return nil, fmt.Errorf("--auth-proxy-header %s needs --auth-proxy-cidrs: the addresses of the proxies allowed to set it (anyone else could claim to be anyone)", cfg.ProxyHeader)
	case cfg.ProxyHeader == "" && len(cfg.ProxyCIDRs) > 0:
		return nil, fmt.Errorf("--auth-proxy-cidrs is set but --auth-proxy-header is not: name the header the proxy puts the user in")
	}
	g.header = http.CanonicalHeaderKey(cfg.ProxyHeader)
	for _, c := range cfg.ProxyCIDRs {
		for _, s := range strings.Split(c, ",") {
			if s = strings.TrimSpace(s); s == "" {
				continue
			}
			p, err := netip.ParsePrefix(s)
			if err != nil {
				a, aerr := netip.ParseAddr(s)
				if aerr != nil {
					return nil, fmt.Errorf("--auth-proxy-cidrs %q: want an address or a CIDR such as 10.0.0.0/8: %w", s, err)
				}
				p = netip.PrefixFrom(a, a.BitLen())
			}
			g.proxies = append(g.proxies, p.Masked())
		}
	}
	g.refused = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "skytrail_http_auth_refused_total",
		Help: "Requests to the UI and query APIs refused: unauthenticated (401) or forbidden (403, a read-only identity asking to change something).",
	}, []string{"reason"})
	if cfg.Registerer != nil {
		if err := cfg.Registerer.Register(g.refused); err != nil {
			return nil, fmt.Errorf("register the auth counter: %w", err)
		}
	}
	return g, nil
}

// Enabled tells whether any authentication is configured.
func (g *Guard) Enabled() bool {
	return g.users != nil || g.header != "" || g.tokens.Len() > 0 || g.oidc != nil
}

// TenantsNamed maps each API token and user given tenants to them, for
// the server to check against the tenants it keeps.
func (g *Guard) TenantsNamed() map[string][]string {
	out := g.tokens.TenantsNamed()
	if g.users != nil {
		for user, ts := range g.users.tenants {
			out["user "+user] = ts
		}
	}
	return out
}

// Describe says what authenticates, for the start-up log.
func (g *Guard) Describe() string {
	var parts []string
	if g.users != nil {
		parts = append(parts, fmt.Sprintf("basic auth (%d users)", g.users.Len()))
	}
	if g.header != "" {
		ps := make([]string, len(g.proxies))
		for i, p := range g.proxies {
			ps[i] = p.String()
		}
		parts = append(parts, fmt.Sprintf("user from %s set by proxies in %s", g.header, strings.Join(ps, ",")))
	}
	if n := g.tokens.Len(); n > 0 {
		parts = append(parts, fmt.Sprintf("%d read-only API tokens", n))
	}
	if g.oidc != nil {
		parts = append(parts, "OpenID Connect login with "+g.oidc.cfg.Issuer)
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}

// Authenticate says who r comes from, nil when nobody the server knows.
func (g *Guard) Authenticate(r *http.Request) *Identity {
	if authz := r.Header.Get("Authorization"); authz != "" {
		if secret, ok := Bearer(authz); ok {
			if tok, ok := g.tokens.Match(secret); ok {
				return &Identity{Name: tok.Name, Method: "token", ReadOnly: true, Tenants: tok.Tenants}
			}
			return nil
		}
		if user, pass, ok := r.BasicAuth(); ok && g.users != nil {
			if g.users.Check(user, pass) {
				return &Identity{Name: user, Method: "basic", Tenants: g.users.Tenants(user)}
			}
			return nil
		}
	}
	if g.oidc != nil {
		if id := g.oidc.identity(r); id != nil {
			return id
		}
	}
	if g.header != "" {
		if user := strings.TrimSpace(r.Header.Get(g.header)); user != "" && len(user) <= 256 && g.fromProxy(r) {
			// The proxy vouches for the user and names the tenant, as
			// in front of Mimir, Loki or Tempo: it must set (or strip)
			// X-Scope-OrgID on every request it forwards.
			return &Identity{Name: user, Method: "proxy", Tenants: []string{AnyTenant}}
		}
	}
	return nil
}

// fromProxy tells whether r's connection comes from a trusted proxy: the
// peer itself, never an X-Forwarded-For anyone can write.
func (g *Guard) fromProxy(r *http.Request) bool {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return false
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return false
	}
	a = a.Unmap()
	for _, p := range g.proxies {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// Wrap serves next to authenticated requests only (all requests when no
// authentication is configured), the identity in the request's context.
// Read-only identities may only read (IsRead); a change asked for by a
// browser from another site is refused whoever asks (no cross-site
// request forgery through a logged-in browser).
func (g *Guard) Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if g.public[r.URL.Path] {
			next.ServeHTTP(w, r)
			return
		}
		if g.oidc != nil && g.oidc.serve(w, r) {
			return
		}
		if !IsRead(r) {
			if site := r.Header.Get("Sec-Fetch-Site"); site != "" && site != "same-origin" && site != "none" {
				g.refuse(w, http.StatusForbidden, "forbidden", "a change asked for from another site ("+site+") is refused")
				return
			}
		}
		if !g.Enabled() {
			next.ServeHTTP(w, r)
			return
		}
		id := g.Authenticate(r)
		if id == nil && g.oidc != nil && r.Method == http.MethodGet && strings.Contains(r.Header.Get("Accept"), "text/html") {
			// A person at a browser: off to log in, and back here after.
			g.refused.WithLabelValues("unauthenticated").Inc()
			http.Redirect(w, r, LoginPath+"?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusFound)
			return
		}
		if id == nil {
			if g.users != nil {
				w.Header().Set("WWW-Authenticate", `Basic realm="SkyTrail", charset="UTF-8"`)
			} else {
				w.Header().Set("WWW-Authenticate", `Bearer realm="SkyTrail"`)
			}
			g.refuse(w, http.StatusUnauthorized, "unauthenticated", "authentication required: "+g.howTo())
			return
		}
		if id.ReadOnly && !IsRead(r) {
			g.refuse(w, http.StatusForbidden, "forbidden", fmt.Sprintf("%s is a read-only API token: %s %s changes something and needs a user", id.Name, r.Method, r.URL.Path))
			return
		}
		next.ServeHTTP(w, r.WithContext(NewContext(r.Context(), id)))
	})
}

// Admin is Wrap for what only a full identity may see (profiles): when
// authentication is configured, read-only tokens are refused even to read.
func (g *Guard) Admin(next http.Handler) http.Handler {
	return g.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if id := FromContext(r.Context()); id != nil && id.ReadOnly {
			g.refuse(w, http.StatusForbidden, "forbidden", id.Name+" is a read-only API token: profiles need a user")
			return
		}
		next.ServeHTTP(w, r)
	}))
}

func (g *Guard) howTo() string {
	var ways []string
	if g.users != nil {
		ways = append(ways, "a user and password (basic auth)")
	}
	if g.tokens.Len() > 0 {
		ways = append(ways, "an API token as Authorization: Bearer <token>")
	}
	if g.header != "" {
		ways = append(ways, "a login through the reverse proxy")
	}
	if g.oidc != nil {
		ways = append(ways, "a session from "+LoginPath)
	}
	return "send " + strings.Join(ways, ", or ")
}

// Refuse answers a request that may not go on with status and a JSON
// error, counted in skytrail_http_auth_refused_total by reason: for the
// checks made past Wrap (a tenant the identity may not read).
func (g *Guard) Refuse(w http.ResponseWriter, status int, reason, msg string) {
	g.refuse(w, status, reason, msg)
}

func (g *Guard) refuse(w http.ResponseWriter, status int, reason, msg string) {
	g.refused.WithLabelValues(reason).Inc()
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": msg})
}

// readPOSTs are the endpoints that take POST but only read: Grafana's
// Prometheus data source sends its queries as POST by default.
var readPOSTs = map[string]bool{
	"/prometheus/api/v1/query":           true,
	"/prometheus/api/v1/query_range":     true,
	"/prometheus/api/v1/query_exemplars": true,
	"/prometheus/api/v1/series":          true,
	"/prometheus/api/v1/labels":          true,
	"/prometheus/api/v1/format_query":    true,
	"/prometheus/api/v1/parse_query":     true,
	"/prometheus/api/v1/rules":           true,
	"/prometheus/api/v1/alerts":          true,
	// LogsQL, as VictoriaLogs takes it (Grafana's VictoriaLogs data source).
	"/select/logsql/query": true,
}

// IsRead tells whether r only reads: GET, HEAD and OPTIONS, and the POSTs of
// readPOSTs. Anything else (silences, /-/reload, what comes later) changes
// something and needs a full identity.
func IsRead(r *http.Request) bool {
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return true
	case http.MethodPost:
		return readPOSTs[r.URL.Path]
	}
	return false
}
