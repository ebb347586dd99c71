package skywalking

import (
	"bytes"
	"compress/gzip"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	eventv3 "skywalking.apache.org/repo/goapi/collect/event/v3"
	agentv3 "skywalking.apache.org/repo/goapi/collect/language/agent/v3"
	logv3 "skywalking.apache.org/repo/goapi/collect/logging/v3"
	managementv3 "skywalking.apache.org/repo/goapi/collect/management/v3"
)

// HTTPReceiver is the selfmetrics receiver label of the HTTP listener.
const HTTPReceiver = "skywalking-http"

// authHeader carries the agent token over HTTP.
const authHeader = "Authentication"

// NewHTTPHandler serves SkyWalking's HTTP/JSON reporting API, as OAP does on
// port 12800:
//
//	POST /v3/segment                    one SegmentObject
//	POST /v3/segments                   a JSON array of SegmentObject
//	POST /v3/management/reportProperties  InstanceProperties
//	POST /v3/management/keepAlive       InstancePingPkg
//	POST /v3/logs                       a JSON array of LogData
//	POST /v3/events                     a JSON array of Event
//
// Bodies are the protobuf JSON mapping of the skywalking.v3 messages
// (lowerCamel field names; enums by name or number; int64 as number or
// string), optionally gzip-compressed (Content-Encoding: gzip). A success
// answers 200 with an empty Commands object, {}.
func NewHTTPHandler(c Consumers, opts Options) http.Handler {
	h := &httpHandler{in: newIngester(c, opts, HTTPReceiver), token: opts.Token, maxBody: int64(opts.maxRecvMsgSize())}
	mux := http.NewServeMux()
	mux.Handle("POST /v3/segment", h.route(func(r *http.Request, body []byte) error {
		seg := &agentv3.SegmentObject{}
		if err := unmarshalJSON(body, seg); err != nil {
			h.in.malformed.Inc()
			return err
		}
		return h.in.segments(r.Context(), seg)
	}))
	mux.Handle("POST /v3/segments", h.route(func(r *http.Request, body []byte) error {
		segs, err := unmarshalJSONArray(body, func() *agentv3.SegmentObject { return &agentv3.SegmentObject{} })
		if err != nil {
			h.in.malformed.Inc()
			return err
		}
		return h.in.segments(r.Context(), segs...)
	}))
	mux.Handle("POST /v3/management/reportProperties", h.route(func(r *http.Request, body []byte) error {
		p := &managementv3.InstanceProperties{}
		if err := unmarshalJSON(body, p); err != nil {
			return err
		}
		return h.in.properties(r.Context(), p)
	}))
	mux.Handle("POST /v3/management/keepAlive", h.route(func(r *http.Request, body []byte) error {
		p := &managementv3.InstancePingPkg{}
		if err := unmarshalJSON(body, p); err != nil {
			return err
		}
		return h.in.keepAlive(r.Context(), p)
	}))
	mux.Handle("POST /v3/logs", h.route(func(r *http.Request, body []byte) error {
		logs, err := unmarshalJSONArray(body, func() *logv3.LogData { return &logv3.LogData{} })
		if err != nil {
			return err
		}
		return h.in.logs(r.Context(), logs...)
	}))
	mux.Handle("POST /v3/events", h.route(func(r *http.Request, body []byte) error {
		events, err := unmarshalJSONArray(body, func() *eventv3.Event { return &eventv3.Event{} })
		if err != nil {
			return err
		}
		return h.in.events(r.Context(), events...)
	}))
	return mux
}

type httpHandler struct {
	in      *ingester
	token   string
	maxBody int64
}

// bodyPool recycles request-body buffers: segments arrive continuously and
// are all roughly the same size.
var bodyPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// maxPooledBody is the largest buffer kept for reuse; a rare huge request
// should not pin its memory.
const maxPooledBody = 1 << 20

func releaseBody(buf *bytes.Buffer) {
	if buf.Cap() <= maxPooledBody {
		bodyPool.Put(buf)
	}
}

// route wraps one endpoint: authentication, body reading and decompression,
// and the translation of its error into a status code.
func (h *httpHandler) route(handle func(r *http.Request, body []byte) error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !h.authenticated(r) {
			h.in.unauthenticated.Inc()
			http.Error(w, "missing or wrong Authentication header (set the agent's authentication to the server's token)", http.StatusUnauthorized)
			return
		}
		buf := bodyPool.Get().(*bytes.Buffer)
		defer releaseBody(buf)
		buf.Reset()
		if err := h.readBody(w, r, buf); err != nil {
			var tooLarge *http.MaxBytesError
			if errors.As(err, &tooLarge) {
				http.Error(w, fmt.Sprintf("request body larger than %d bytes", h.maxBody), http.StatusRequestEntityTooLarge)
				return
			}
			http.Error(w, "reading request body: "+err.Error(), http.StatusBadRequest)
			return
		}
		if err := handle(r, buf.Bytes()); err != nil {
			writeHTTPError(w, err)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, "{}")
	})
}

func (h *httpHandler) authenticated(r *http.Request) bool {
	if h.token == "" {
		return true
	}
	for _, got := range r.Header.Values(authHeader) {
		if subtle.ConstantTimeCompare([]byte(got), []byte(h.token)) == 1 {
			return true
		}
	}
	return false
}

// readBody reads the (possibly gzipped) body into buf, refusing more than
// maxBody bytes before or after decompression.
func (h *httpHandler) readBody(w http.ResponseWriter, r *http.Request, buf *bytes.Buffer) error {
	body := http.MaxBytesReader(w, r.Body, h.maxBody)
	var src io.Reader = body
	switch enc := r.Header.Get("Content-Encoding"); enc {
	case "", "identity":
	case "gzip":
		zr, err := gzip.NewReader(body)
		if err != nil {
			return fmt.Errorf("gzip: %w", err)
		}
		defer zr.Close()
		src = io.LimitReader(zr, h.maxBody+1)
	default:
		return fmt.Errorf("unsupported Content-Encoding %q (use gzip or none)", enc)
	}
	if _, err := buf.ReadFrom(src); err != nil {
		return err
	}
	if int64(buf.Len()) > h.maxBody {
		return &http.MaxBytesError{Limit: h.maxBody}
	}
	return nil
}

func writeHTTPError(w http.ResponseWriter, err error) {
	if o := asOverload(err); o != nil {
		w.Header().Set("Retry-After", strconv.Itoa(int(retryAfter.Seconds())))
		code := http.StatusServiceUnavailable
		if o.budgetExceeded() {
			code = http.StatusTooManyRequests
		}
		http.Error(w, err.Error(), code)
		return
	}
	var inv *invalidError
	if errors.As(err, &inv) {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	http.Error(w, err.Error(), http.StatusInternalServerError)
}

// unmarshalJSON decodes one message, reporting malformed input as invalid.
//
// Fields this protocol version does not know (a newer agent's) are skipped,
// but an enum name it does not know is an error: protojson's DiscardUnknown
// would silently turn "spanType": "Sideways" into Entry. So the strict decoder
// runs first and the lenient one only when the strict one met an unknown
// field.
func unmarshalJSON(body []byte, m proto.Message) error {
	err := protojson.Unmarshal(body, m)
	if err != nil && strings.Contains(err.Error(), "unknown field") {
		err = protojson.UnmarshalOptions{DiscardUnknown: true}.Unmarshal(body, m)
	}
	if err != nil {
		return invalidf("decoding %s JSON: %v", m.ProtoReflect().Descriptor().Name(), err)
	}
	return nil
}

// unmarshalJSONArray decodes a JSON array of messages.
func unmarshalJSONArray[T proto.Message](body []byte, newMsg func() T) ([]T, error) {
	var raw []json.RawMessage
	if err := json.Unmarshal(body, &raw); err != nil {
		return nil, invalidf("decoding JSON array of %s: %v", newMsg().ProtoReflect().Descriptor().Name(), err)
	}
	out := make([]T, 0, len(raw))
	for i, r := range raw {
		m := newMsg()
		if err := unmarshalJSON(r, m); err != nil {
			return nil, invalidf("element %d of the %s array: %v", i, m.ProtoReflect().Descriptor().Name(), err)
		}
		out = append(out, m)
	}
	return out, nil
}
