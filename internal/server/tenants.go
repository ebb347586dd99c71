package server

import (
	"fmt"
	"net/http"
	"os"
	"slices"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"

	"github.com/skytrail/skytrail/internal/auth"
	"github.com/skytrail/skytrail/internal/pipeline"
	"github.com/skytrail/skytrail/internal/query"
	"github.com/skytrail/skytrail/internal/tenant"
	"github.com/skytrail/skytrail/internal/ui"
)

// openCores opens every configured tenant's core (core.go). Without
// --tenants there is one, the default, exactly as before tenants: the data
// directory's layout, the logger and the metric names are unchanged. With
// tenants, each logs and counts under its name (a tenant label on every
// figure it registers, so two tenants' figures never collide).
func (s *Server) openCores(status func() query.Status) error {
	uiHandler := ui.Handler()
	for _, name := range s.tenants.Names() {
		cfg := s.cfg
		cfg.DataDir = coreDir(s.cfg.DataDir, name)
		log, reg, gather := s.log, prometheus.Registerer(s.Registry), prometheus.Gatherer(s.Registry)
		if s.tenants.Multi() {
			log = s.log.With("tenant", name)
			reg = prometheus.WrapRegistererWith(prometheus.Labels{"tenant": name}, s.Registry)
			gather = tenantFigures{g: s.Registry, tenant: name, own: true}
			if name != tenant.Default {
				// An explicitly configured instances file is the default
				// tenant's; the others keep theirs in their directory.
				cfg.Analysis.RegistryFile = ""
				if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
					return fmt.Errorf("tenant %s: create its data directory: %w", name, err)
				}
			}
		}
		c, err := openCore(cfg, name, log, reg, gather, uiHandler, status)
		if err != nil {
			if s.tenants.Multi() {
				err = fmt.Errorf("tenant %s: %w", name, err)
			}
			return err
		}
		s.cores[name] = c
	}
	if s.tenants.Multi() {
		s.log.Info("tenants kept apart", "tenants", s.tenants.Names(), "dir", coreDir(s.cfg.DataDir, "NAME"))
	}
	return nil
}

// route is the pipeline of an ingest request: its tenant's, by the token's
// tenants and the X-Scope-OrgID it sent; a refusal is Forbidden.
func (s *Server) route(id *auth.Identity, orgID string) (*pipeline.Pipeline, error) {
	name, err := s.tenants.Resolve(id, orgID)
	if err != nil {
		return nil, pipeline.Refusef(pipeline.Forbidden, "%v", err)
	}
	return s.cores[name].Pipeline, nil
}

// agentTenant is the pipeline of a SkyWalking agent authenticating with an
// ingest token given a tenant: agents cannot send X-Scope-OrgID, so the
// token's own tenant (its first) is theirs. Other agents are checked
// against --sw-token and feed the default tenant.
func (s *Server) agentTenant(token string) (*pipeline.Pipeline, bool) {
	tok, ok := s.sec.ingest.Match(token)
	if !ok || len(tok.Tenants) == 0 || tok.Tenants[0] == auth.AnyTenant {
		return nil, false
	}
	return s.cores[tok.Tenants[0]].Pipeline, true
}

// tenantAPI serves the UI and the query APIs from the request's tenant's
// handlers: the tenant of the authenticated identity, or the one its
// X-Scope-OrgID names when the identity may use it. A tenant it may not use
// is 403, counted in skytrail_http_auth_refused_total{reason="tenant"}.
func (s *Server) tenantAPI() http.Handler {
	if !s.tenants.Multi() {
		return s.cores[tenant.Default].api
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name, err := s.tenants.Resolve(auth.FromContext(r.Context()), r.Header.Get(tenant.Header))
		if err != nil {
			s.sec.guard.Refuse(w, http.StatusForbidden, "tenant", err.Error())
			return
		}
		s.cores[name].api.ServeHTTP(w, r)
	})
}

// metricsHandler serves the server's own figures. With tenants, an
// identity bound to tenants sees the server's shared figures and its
// tenant's only (the integrity figures name services); an identity that may
// use any tenant, or anyone on a server without authentication, sees all.
func (s *Server) metricsHandler() http.Handler {
	all := promhttp.HandlerFor(s.Registry, promhttp.HandlerOpts{Registry: s.Registry})
	if !s.tenants.Multi() {
		return all
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := auth.FromContext(r.Context())
		if id == nil || slices.Contains(id.Tenants, auth.AnyTenant) {
			all.ServeHTTP(w, r)
			return
		}
		name, err := s.tenants.Resolve(id, r.Header.Get(tenant.Header))
		if err != nil {
			s.sec.guard.Refuse(w, http.StatusForbidden, "tenant", err.Error())
			return
		}
		promhttp.HandlerFor(tenantFigures{g: s.Registry, tenant: name}, promhttp.HandlerOpts{}).ServeHTTP(w, r)
	})
}

// tenantFigures is the server's registry as one tenant may see it: its own
// series (labelled tenant=NAME) and, unless own, the server's shared ones
// (no tenant label). With own, the tenant label is dropped: that is what the
// tenant's alerting copies into its own metric store, where rules written
// for a server without tenants must match unchanged.
type tenantFigures struct {
	g      prometheus.Gatherer
	tenant string
	own    bool
}

func (f tenantFigures) Gather() ([]*dto.MetricFamily, error) {
	mfs, err := f.g.Gather()
	out := mfs[:0]
	for _, mf := range mfs {
		ms := mf.Metric[:0]
		for _, m := range mf.Metric {
			i := slices.IndexFunc(m.Label, func(l *dto.LabelPair) bool { return l.GetName() == "tenant" })
			switch {
			case i < 0 && !f.own:
				ms = append(ms, m)
			case i >= 0 && m.Label[i].GetValue() == f.tenant:
				if f.own {
					m.Label = slices.Delete(m.Label, i, i+1)
				}
				ms = append(ms, m)
			}
		}
		if len(ms) > 0 {
			mf.Metric = ms
			out = append(out, mf)
		}
	}
	return out, err
}

// checkTenants refuses to start when a token or user names a tenant that
// is not configured: better a clear error now than every request refused.
func (s *security) checkTenants(ts *tenant.Set) error {
	for who, names := range s.ingest.TenantsNamed() {
		if err := ts.Check(who, names); err != nil {
			return err
		}
	}
	for who, names := range s.guard.TenantsNamed() {
		if err := ts.Check(who, names); err != nil {
			return err
		}
	}
	return nil
}

// ReloadAlerting reads every tenant's rule files and notification
// configuration again (SIGHUP); a node of --peers without --ruler has none
// to read. A failing reload keeps the rules in force and is logged by
// alerting itself.
func (s *Server) ReloadAlerting() {
	for _, c := range s.cores {
		if c.Alerting != nil {
			_ = c.Alerting.Reload()
		}
	}
}
