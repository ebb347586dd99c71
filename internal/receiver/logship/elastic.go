package logship

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/VictoriaMetrics/VictoriaLogs/lib/logstorage"
	"github.com/valyala/fastjson"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/skytrail/skytrail/internal/pipeline"
	"github.com/skytrail/skytrail/internal/receiver/wire"
)

// esPrefix is where the Elasticsearch API is served, as VictoriaLogs serves
// it: Filebeat's output.elasticsearch takes it as `path`, Fluent Bit's es
// output as `Path`, Vector's as part of `endpoints`.
const esPrefix = "/insert/elasticsearch"

// esVersion is the Elasticsearch version SkyTrail says it is: the clients
// check the major version (8) and the product header.
const esVersion = "8.11.0"

// serveElasticsearch answers the bulk API and the calls shippers make
// before it: GET / (version, product check), _license, _xpack, index
// template, ILM policy, ingest pipeline and node probes, each with the
// smallest answer that lets them go on.
func (r *Receiver) serveElasticsearch(w http.ResponseWriter, req *http.Request) {
	// Without it the official clients refuse the answer ("the client noticed
	// that the server is not Elasticsearch").
	w.Header().Set("X-Elastic-Product", "Elasticsearch")
	path := strings.TrimPrefix(req.URL.Path, esPrefix)
	if path == "/_bulk" || strings.HasSuffix(path, "/_bulk") && strings.Count(path, "/") == 2 {
		if req.Method != http.MethodPost && req.Method != http.MethodPut {
			esError(w, http.StatusMethodNotAllowed, errors.New("the bulk API takes POST or PUT"))
			return
		}
		index := strings.TrimSuffix(strings.TrimPrefix(path, "/"), "/_bulk")
		if index == "_bulk" {
			index = ""
		}
		r.serveBulk(w, req, index)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	switch {
	case path == "" || path == "/":
		if req.Method == http.MethodHead {
			return
		}
		fmt.Fprintf(w, `{"name":"skytrail","cluster_name":"skytrail","cluster_uuid":"skytrail","version":{"number":%q,"build_flavor":"default","build_type":"docker","lucene_version":"9.8.0","minimum_wire_compatibility_version":"7.17.0","minimum_index_compatibility_version":"7.0.0"},"tagline":"You Know, for Search"}`, esVersion)
	case strings.HasPrefix(path, "/_license"):
		fmt.Fprint(w, `{"license":{"uid":"skytrail","type":"basic","status":"active","expiry_date_in_millis":4000000000000}}`)
	case strings.HasPrefix(path, "/_xpack"):
		fmt.Fprint(w, `{"build":{},"license":{"uid":"skytrail","type":"basic","mode":"basic","status":"active"},"features":{}}`)
	case req.Method == http.MethodPut || req.Method == http.MethodPost:
		// Templates, ILM policies, pipelines: taken and forgotten.
		fmt.Fprint(w, `{"acknowledged":true}`)
	default:
		// GETs of templates, policies, node info: there, and empty.
		fmt.Fprint(w, `{}`)
	}
}

// esItem is one entry of a bulk answer, as Elasticsearch writes it.
type esItem struct {
	Index   string         `json:"_index"`
	ID      string         `json:"_id"`
	Version int            `json:"_version,omitempty"`
	Result  string         `json:"result,omitempty"`
	Status  int            `json:"status"`
	SeqNo   int            `json:"_seq_no"`
	Term    int            `json:"_primary_term,omitempty"`
	Shards  *esShards      `json:"_shards,omitempty"`
	Error   *esErrorDetail `json:"error,omitempty"`
}

type esShards struct {
	Total      int `json:"total"`
	Successful int `json:"successful"`
	Failed     int `json:"failed"`
}

type esErrorDetail struct {
	Type   string `json:"type"`
	Reason string `json:"reason"`
}

var okShards = &esShards{Total: 1, Successful: 1}

// serveBulk takes a bulk request: action lines (index or create; update and
// delete are answered as errors, since log lines are not changed), each
// followed by its document, a JSON object. A line the front door would
// refuse, or a document that is not JSON, is refused on its own with a 400
// item, as Elasticsearch does; the others are stored. A request that
// cannot be read (a broken action line), over the budget or the size
// limit fails whole, with Elasticsearch's error shape: 429 and 503 are
// retried by every shipper.
func (r *Receiver) serveBulk(w http.ResponseWriter, req *http.Request, defaultIndex string) {
	admitted, body, done, ok := r.begin(w, req, ElasticsearchReceiver, esError)
	if !ok {
		return
	}
	defer done()
	start := time.Now()
	b := newBuilder(readParams(req))
	var (
		items   []map[string]esItem
		refused pipeline.Refused
		ap      fastjson.Parser
		scratch = plog.NewLogRecord()
	)
	jp := logstorage.GetJSONParser()
	defer logstorage.PutJSONParser(jp)
	refuse := func(op, index, id, typ, reason string) {
		items = append(items, map[string]esItem{op: {Index: index, ID: id, Status: http.StatusBadRequest, SeqNo: -1,
			Error: &esErrorDetail{Type: typ, Reason: reason}}})
		refused.Items++
		if refused.First == "" {
			refused.First = reason
		}
	}
	lineNo := 0
	for rest := body; len(rest) > 0; {
		var line []byte
		line, rest = nextLine(rest)
		lineNo++
		if len(strings.TrimSpace(unsafeString(line))) == 0 {
			continue
		}
		op, index, id, err := parseAction(&ap, line)
		if err != nil {
			esError(w, http.StatusBadRequest, admitted.Refuse(pipeline.Malformed, fmt.Errorf("line %d: %v", lineNo, err)))
			return
		}
		if index == "" {
			index = defaultIndex
		}
		if op == "delete" {
			refuse(op, index, id, "illegal_argument_exception", "SkyTrail keeps log lines as they came: delete is not supported")
			continue
		}
		var doc []byte
		if len(rest) == 0 {
			esError(w, http.StatusBadRequest, admitted.Refuse(pipeline.Malformed, fmt.Errorf("line %d: the %s action has no document after it", lineNo, op)))
			return
		}
		doc, rest = nextLine(rest)
		lineNo++
		if id == "" {
			id = strconv.FormatInt(b.now, 36) + "-" + strconv.Itoa(len(items))
		}
		if op == "update" {
			refuse(op, index, id, "illegal_argument_exception", "SkyTrail keeps log lines as they came: update is not supported")
			continue
		}
		if err := jp.ParseLogMessage(doc, nil, ""); err != nil {
			refuse(op, index, id, "mapper_parsing_exception", fmt.Sprintf("line %d: the document is not a JSON object: %v", lineNo, err))
			continue
		}
		recs, res := b.record(jp.Fields, nil, scratch)
		if reason := r.p.CheckLog(res, scratch); reason != "" {
			refuse(op, index, id, "document_parsing_exception", fmt.Sprintf("line %d: %s", lineNo, reason))
			continue
		}
		scratch.MoveTo(recs.AppendEmpty())
		items = append(items, map[string]esItem{op: {Index: index, ID: id, Version: 1, Result: "created", Status: http.StatusCreated,
			SeqNo: len(items), Term: 1, Shards: okShards}})
	}
	_, err := admitted.Ingest(req.Context(), &pipeline.Logs{Logs: b.ld, Refused: refused})
	if err != nil && (pipeline.ReasonOf(err) != pipeline.Invalid || refused.Items == 0) {
		esError(w, wire.HTTPStatus(w.Header(), err), err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"took": time.Since(start).Milliseconds(), "errors": refused.Items > 0, "items": items})
}

// parseAction reads a bulk action line: {"index": {"_index": ..., "_id": ...}}.
func parseAction(p *fastjson.Parser, line []byte) (op, index, id string, err error) {
	v, err := p.ParseBytes(line)
	if err != nil {
		return "", "", "", fmt.Errorf("malformed action/metadata line: %v", err)
	}
	o, err := v.Object()
	if err != nil || o.Len() != 1 {
		return "", "", "", errors.New(`malformed action/metadata line: want one action, such as {"create":{}}`)
	}
	var meta *fastjson.Value
	o.Visit(func(k []byte, v *fastjson.Value) { op, meta = string(k), v })
	switch op {
	case "index", "create", "update", "delete":
	default:
		return "", "", "", fmt.Errorf("malformed action/metadata line: unknown action %q, want index or create", truncate(op, 64))
	}
	if meta.Type() != fastjson.TypeObject {
		return "", "", "", fmt.Errorf("malformed action/metadata line: the %s action's metadata is not an object", op)
	}
	index = string(meta.GetStringBytes("_index"))
	id = string(meta.GetStringBytes("_id"))
	return op, validUTF8(index), validUTF8(id), nil
}

// esError answers as Elasticsearch answers a request it refuses whole.
func esError(w http.ResponseWriter, status int, err error) {
	typ := "illegal_argument_exception"
	switch status {
	case http.StatusTooManyRequests:
		typ = "es_rejected_execution_exception"
	case http.StatusServiceUnavailable:
		typ = "unavailable_shards_exception"
	case http.StatusUnauthorized:
		typ = "security_exception"
	case http.StatusRequestEntityTooLarge:
		typ = "content_too_long_exception"
	}
	reason := strings.ToValidUTF8(err.Error(), "\uFFFD")
	detail := esErrorDetail{Type: typ, Reason: reason}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"error": map[string]any{"root_cause": []esErrorDetail{detail}, "type": typ, "reason": reason}, "status": status})
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}
