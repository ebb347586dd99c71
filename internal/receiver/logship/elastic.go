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

type esErrorDetail struct {
	Type   string `json:"type"`
	Reason string `json:"reason"`
}

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
		items   []bulkItem
		refused pipeline.Refused
		ap      fastjson.Parser
		scratch = plog.NewLogRecord()
	)
	jp := logstorage.GetJSONParser()
	defer logstorage.PutJSONParser(jp)
	refuse := func(op, index, id string, autoID bool, typ, reason string) {
		items = append(items, bulkItem{op: op, index: index, id: id, autoID: autoID, errType: typ, reason: reason})
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
			refuse(op, index, id, false, "illegal_argument_exception", "SkyTrail keeps log lines as they came: delete is not supported")
			continue
		}
		var doc []byte
		if len(rest) == 0 {
			esError(w, http.StatusBadRequest, admitted.Refuse(pipeline.Malformed, fmt.Errorf("line %d: the %s action has no document after it", lineNo, op)))
			return
		}
		doc, rest = nextLine(rest)
		lineNo++
		autoID := id == ""
		if op == "update" {
			refuse(op, index, id, autoID, "illegal_argument_exception", "SkyTrail keeps log lines as they came: update is not supported")
			continue
		}
		if err := jp.ParseLogMessage(doc, nil, ""); err != nil {
			refuse(op, index, id, autoID, "mapper_parsing_exception", fmt.Sprintf("line %d: the document is not a JSON object: %v", lineNo, err))
			continue
		}
		recs, res := b.record(jp.Fields, nil, scratch)
		if reason := r.p.CheckLog(res, scratch); reason != "" {
			refuse(op, index, id, autoID, "document_parsing_exception", fmt.Sprintf("line %d: %s", lineNo, reason))
			continue
		}
		scratch.MoveTo(recs.AppendEmpty())
		items = append(items, bulkItem{op: op, index: index, id: id, autoID: autoID})
	}
	_, err := admitted.Ingest(req.Context(), &pipeline.Logs{Logs: b.ld, Refused: refused, Checked: true})
	if err != nil && (pipeline.ReasonOf(err) != pipeline.Invalid || refused.Items == 0) {
		esError(w, wire.HTTPStatus(w.Header(), err), err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	// About 190 bytes an item created: one allocation for the answer.
	answer := make([]byte, 0, 64+200*len(items))
	_, _ = w.Write(appendBulkResponse(answer, time.Since(start).Milliseconds(), refused.Items > 0, items, b.now))
}

// bulkItem is one entry of a bulk answer: created, or refused with an
// error type and reason. An item whose action named no _id gets one made
// of the request's arrival and its place in the request, written only
// into the answer.
type bulkItem struct {
	op, index, id   string
	autoID          bool
	errType, reason string
}

// appendBulkResponse writes a bulk answer as Elasticsearch does: items in
// request order, each under its action's name, 201 created or 400 with the
// error. Written by hand: encoding a map an item took a tenth of the bulk
// path's CPU. idBase (Unix ns) makes the _id of items without one.
func appendBulkResponse(dst []byte, tookMs int64, errors bool, items []bulkItem, idBase int64) []byte {
	dst = append(dst, `{"took":`...)
	dst = strconv.AppendInt(dst, tookMs, 10)
	dst = append(dst, `,"errors":`...)
	dst = strconv.AppendBool(dst, errors)
	dst = append(dst, `,"items":[`...)
	for i, it := range items {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, `{"`...)
		dst = append(dst, it.op...)
		dst = append(dst, `":{"_index":`...)
		dst = appendJSONString(dst, it.index)
		dst = append(dst, `,"_id":`...)
		if it.autoID {
			dst = append(dst, '"')
			dst = strconv.AppendInt(dst, idBase, 36)
			dst = append(dst, '-')
			dst = strconv.AppendInt(dst, int64(i), 10)
			dst = append(dst, '"')
		} else {
			dst = appendJSONString(dst, it.id)
		}
		if it.errType == "" {
			dst = append(dst, `,"_version":1,"result":"created","_shards":{"total":1,"successful":1,"failed":0},"_seq_no":`...)
			dst = strconv.AppendInt(dst, int64(i), 10)
			dst = append(dst, `,"_primary_term":1,"status":201}}`...)
			continue
		}
		dst = append(dst, `,"status":400,"error":{"type":`...)
		dst = appendJSONString(dst, it.errType)
		dst = append(dst, `,"reason":`...)
		dst = appendJSONString(dst, it.reason)
		dst = append(dst, `}}}`...)
	}
	return append(dst, "]}\n"...)
}

// appendJSONString appends s as a JSON string (s is UTF-8: the decoder
// made it so).
func appendJSONString(dst []byte, s string) []byte {
	plain := true
	for i := 0; i < len(s) && plain; i++ {
		c := s[i]
		plain = c >= 0x20 && c < 0x7f && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&'
	}
	if plain {
		dst = append(dst, '"')
		dst = append(dst, s...)
		return append(dst, '"')
	}
	b, _ := json.Marshal(s)
	return append(dst, b...)
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
