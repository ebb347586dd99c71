package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sync"
	"time"

	"google.golang.org/grpc"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// RulerHealthService is the gRPC health service the ruler reports as
// serving on its OTLP gRPC port: the other nodes ask their peers for it
// to say where the ruler is.
const RulerHealthService = "skytrail.ruler"

// alertsPaths are the alerts API's routes (query.AlertsAPI), answered on
// a node that is not the ruler by AlertsElsewhere.
var alertsPaths = []string{
	"/api/v1/alerts", "/api/v1/rules", "/api/v1/alerting/", "/api/v1/silences", "/api/v1/silences/",
	"/prometheus/api/v1/rules", "/prometheus/api/v1/alerts", "/-/reload",
}

// AlertsElsewhere registers, on a node that is not the ruler, the alerts
// API's routes: forwarded to the ruler's query API when --ruler-url is
// set, else answered 503 naming the ruler, rather than an empty list of
// alerts that would read as "all is well".
func (r *Router) AlertsElsewhere(mux *http.ServeMux) error {
	var h http.Handler
	if r.cfg.RulerURL != "" {
		u, err := url.Parse(r.cfg.RulerURL)
		if err != nil || u.Scheme == "" || u.Host == "" {
			return fmt.Errorf("--ruler-url %q: want the ruler's query API, such as http://skytrail-0:8080", r.cfg.RulerURL)
		}
		p := &httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(u)
			pr.SetXForwarded()
		}}
		p.ErrorHandler = func(w http.ResponseWriter, req *http.Request, err error) {
			writeError(w, http.StatusBadGateway, fmt.Sprintf("this node does not evaluate alarm rules, and the ruler at %s (--ruler-url) did not answer: %v", u, err))
		}
		h = p
	} else {
		h = http.HandlerFunc(r.notRuler)
	}
	for _, p := range alertsPaths {
		mux.Handle(p, h)
	}
	return nil
}

func (r *Router) notRuler(w http.ResponseWriter, req *http.Request) {
	where := "no peer reports being the ruler: start exactly one node with --ruler"
	if addr := r.findRuler(req.Context()); addr != "" {
		where = "the ruler is the node whose OTLP gRPC address is " + addr + ": ask its query API"
	}
	writeError(w, http.StatusServiceUnavailable, "this SkyTrail node does not evaluate alarm rules (it runs with --peers and without --ruler); "+
		where+", or set --ruler-url on this node to have it forward the alerts API there")
}

// findRuler asks every peer's gRPC health for RulerHealthService; "" when
// none answers serving.
func (r *Router) findRuler(ctx context.Context) string {
	v := r.view.Load()
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	var (
		mu    sync.Mutex
		found string
		wg    sync.WaitGroup
	)
	for _, p := range v.peers {
		if p == nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := p.health.Check(ctx, &healthpb.HealthCheckRequest{Service: RulerHealthService}, grpc.WaitForReady(true))
			if err == nil && resp.GetStatus() == healthpb.HealthCheckResponse_SERVING {
				mu.Lock()
				found = p.addr
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return found
}

func writeError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"status": "error", "error": msg})
}
