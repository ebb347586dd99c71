// Package logship receives log lines from the shippers people already run:
// Elasticsearch's bulk API (Filebeat, Fluent Bit, Vector, Logstash), Loki's
// push API (Promtail, Grafana Alloy; JSON, and protobuf with snappy) and
// JSON lines (VictoriaLogs' /insert/jsonline). It serves the paths
// VictoriaLogs serves them on, so a shipper set up for VictoriaLogs needs
// only its address changed:
//
//	/insert/elasticsearch/_bulk (and the handshake Filebeat and Logstash make first)
//	/insert/loki/api/v1/push, and Loki's own /loki/api/v1/push
//	/insert/jsonline
//
// Like every receiver it only decodes: a JSON line's fields, nested keys
// joined with dots (VictoriaLogs' own JSON parser, logstorage.JSONParser),
// become a log record's attributes, the fields that say who sent it its
// resource; the front door admits, normalises (package logfields),
// validates and stores. VictoriaLogs' vlinsert handlers themselves are not
// used: they write into VictoriaLogs' process-wide storage, acknowledge
// lines before they are stored, answer every bulk item as created, and
// drop an over-long line with only a log message.
package logship

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/skytrail/skytrail/internal/auth"
	"github.com/skytrail/skytrail/internal/pipeline"
	"github.com/skytrail/skytrail/internal/receiver/wire"
	"github.com/skytrail/skytrail/internal/tenant"
)

// Receiver names, as the front door counts them.
const (
	ElasticsearchReceiver = "elasticsearch"
	LokiReceiver          = "loki"
	JSONLineReceiver      = "jsonline"
)

// Config tunes the receiver.
type Config struct {
	// MaxRequestBytes caps one request body after decompression (default
	// 16 MiB).
	MaxRequestBytes int
	// Tokens, when it holds any, are the bearer tokens every request must
	// carry (Authorization: Bearer <token>), as for OTLP.
	Tokens *auth.Tokens
	// Route, when set, picks the pipeline (the tenant) of each request,
	// as otlp.Config.Route does.
	Route func(id *auth.Identity, orgID string) (*pipeline.Pipeline, error)
}

// Receiver serves the log shippers' APIs.
type Receiver struct {
	p   *pipeline.Pipeline
	cfg Config
}

// New returns a receiver feeding p.
func New(p *pipeline.Pipeline, cfg Config) *Receiver {
	if cfg.MaxRequestBytes <= 0 {
		cfg.MaxRequestBytes = 16 << 20
	}
	return &Receiver{p: p, cfg: cfg}
}

// Register adds the receiver's paths to mux.
func (r *Receiver) Register(mux *http.ServeMux) {
	mux.HandleFunc(esPrefix+"/", r.serveElasticsearch)
	mux.HandleFunc(esPrefix, r.serveElasticsearch)
	mux.HandleFunc("/insert/loki/api/v1/push", r.serveLoki)
	mux.HandleFunc("/loki/api/v1/push", r.serveLoki)
	mux.HandleFunc("/insert/jsonline", r.serveJSONLine)
}

// errorWriter answers a refusal in the protocol's own shape.
type errorWriter func(w http.ResponseWriter, status int, err error)

// begin authenticates a request, reads its body within the in-flight
// budget and charges what decoding it will take. It answers the request
// itself and returns ok false when it cannot go on. The caller releases
// the request.
func (r *Receiver) begin(w http.ResponseWriter, req *http.Request, receiver string, fail errorWriter) (*pipeline.Request, []byte, func(), bool) {
	src := wire.HTTPSource(req, receiver)
	var id *auth.Identity
	if r.cfg.Tokens.Len() > 0 {
		var err error
		if id, err = r.cfg.Tokens.CheckBearer(req.Header.Values("Authorization")); err != nil {
			refused := r.p.Refuse(src, pipeline.SignalLogs, pipeline.Unauthenticated,
				fmt.Errorf("%w (send the ingest token as the header Authorization: Bearer <token>)", err))
			w.Header().Set("WWW-Authenticate", `Bearer realm="SkyTrail logs"`)
			fail(w, http.StatusUnauthorized, refused)
			return nil, nil, nil, false
		}
	}
	p := r.p
	if r.cfg.Route != nil {
		var err error
		if p, err = r.cfg.Route(id, req.Header.Get(tenant.Header)); err != nil {
			refused := r.p.Refuse(src, pipeline.SignalLogs, pipeline.ReasonOf(err), err)
			fail(w, wire.HTTPCode(refused.Reason), refused)
			return nil, nil, nil, false
		}
	}
	admitted := p.Begin(src, pipeline.SignalLogs)
	buf := wire.Buffer()
	done := func() {
		wire.PutBuffer(buf)
		admitted.Release()
	}
	if err := wire.ReadBody(w, req, admitted, int64(r.cfg.MaxRequestBytes), buf); err != nil {
		fail(w, wire.HTTPStatus(w.Header(), err), err)
		done()
		return nil, nil, nil, false
	}
	body := buf.Bytes()
	if err := admitted.Grow(decodedSize(body)); err != nil {
		fail(w, wire.HTTPStatus(w.Header(), err), err)
		done()
		return nil, nil, nil, false
	}
	return admitted, body, done, true
}

// decodedSize estimates what decoding a body of JSON lines takes in memory:
// each field becomes an attribute (about 100 bytes in pdata beside its
// text), each line a record (about 200).
func decodedSize(body []byte) int {
	quotes := strings.Count(unsafeString(body), `"`)
	lines := strings.Count(unsafeString(body), "\n")
	return 2*len(body) + 50*quotes + wire.BytesPerMessage*(1+lines)
}
