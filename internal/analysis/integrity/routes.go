package integrity

import (
	"encoding/json"
	"net/http"
)

// Routes mounts GET /api/v1/diagnostics[?service=NAME].
func (a *Analyser) Routes(mux *http.ServeMux) {
	mux.HandleFunc("GET /api/v1/diagnostics", a.serveDiagnostics)
}

func (a *Analyser) serveDiagnostics(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(a.Findings(r.FormValue("service")))
}
