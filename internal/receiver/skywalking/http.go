package skywalking

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	eventv3 "skywalking.apache.org/repo/goapi/collect/event/v3"
	agentv3 "skywalking.apache.org/repo/goapi/collect/language/agent/v3"
	logv3 "skywalking.apache.org/repo/goapi/collect/logging/v3"
	managementv3 "skywalking.apache.org/repo/goapi/collect/management/v3"

	"github.com/skytrail/skytrail/internal/pipeline"
	"github.com/skytrail/skytrail/internal/receiver/wire"
)

// HTTPReceiver names the HTTP listener, as the front door counts it.
const HTTPReceiver = "skywalking-http"

// authHeader carries the agent token over HTTP.
const authHeader = "Authentication"

// NewHTTPHandler serves SkyWalking's HTTP/JSON reporting API, as OAP does on
// port 12800, feeding p:
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
func NewHTTPHandler(p *pipeline.Pipeline, opts Options) http.Handler {
	h := &httpHandler{p: p, in: newIngester(p, opts, HTTPReceiver), token: opts.Token, tenants: opts.Tenants, maxBody: int64(opts.maxRecvMsgSize())}
	mux := http.NewServeMux()
	mux.Handle("POST /v3/segment", h.route(pipeline.SignalSpans, func(ctx context.Context, req *pipeline.Request, body []byte) error {
		seg := &agentv3.SegmentObject{}
		if err := unmarshalJSON(body, seg); err != nil {
			return req.Refuse(pipeline.Malformed, err)
		}
		return h.in.segments(ctx, req, seg)
	}))
	mux.Handle("POST /v3/segments", h.route(pipeline.SignalSpans, func(ctx context.Context, req *pipeline.Request, body []byte) error {
		segs, err := unmarshalJSONArray(body, func() *agentv3.SegmentObject { return &agentv3.SegmentObject{} })
		if err != nil {
			return req.Refuse(pipeline.Malformed, err)
		}
		return h.in.segments(ctx, req, segs...)
	}))
	mux.Handle("POST /v3/management/reportProperties", h.route(pipeline.SignalHeartbeats, func(ctx context.Context, req *pipeline.Request, body []byte) error {
		p := &managementv3.InstanceProperties{}
		if err := unmarshalJSON(body, p); err != nil {
			return req.Refuse(pipeline.Malformed, err)
		}
		return h.in.properties(ctx, req, p)
	}))
	mux.Handle("POST /v3/management/keepAlive", h.route(pipeline.SignalHeartbeats, func(ctx context.Context, req *pipeline.Request, body []byte) error {
		p := &managementv3.InstancePingPkg{}
		if err := unmarshalJSON(body, p); err != nil {
			return req.Refuse(pipeline.Malformed, err)
		}
		return h.in.keepAlive(ctx, req, p)
	}))
	mux.Handle("POST /v3/logs", h.route(pipeline.SignalLogs, func(ctx context.Context, req *pipeline.Request, body []byte) error {
		logs, err := unmarshalJSONArray(body, func() *logv3.LogData { return &logv3.LogData{} })
		if err != nil {
			return req.Refuse(pipeline.Malformed, err)
		}
		return h.in.logs(ctx, req, logs...)
	}))
	mux.Handle("POST /v3/events", h.route(pipeline.SignalLogs, func(ctx context.Context, req *pipeline.Request, body []byte) error {
		events, err := unmarshalJSONArray(body, func() *eventv3.Event { return &eventv3.Event{} })
		if err != nil {
			return req.Refuse(pipeline.Malformed, err)
		}
		return h.in.events(ctx, req, events...)
	}))
	return mux
}

type httpHandler struct {
	p       *pipeline.Pipeline
	in      *ingester
	token   string
	tenants func(token string) (*pipeline.Pipeline, bool)
	maxBody int64
}

// route wraps one endpoint: authentication before anything is read, the
// body read and charged to the in-flight budget as it arrives, its decoding
// charged before it is decoded, and the translation of its error into a
// status code.
func (h *httpHandler) route(signal pipeline.Signal, handle func(ctx context.Context, req *pipeline.Request, body []byte) error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		src := wire.HTTPSource(r, HTTPReceiver)
		p, ok := h.tenant(r)
		if !ok && !h.authenticated(r) {
			writeHTTPError(w, h.p.Refuse(src, signal, pipeline.Unauthenticated,
				errors.New("missing or wrong Authentication header (set the agent's authentication to the server's token)")))
			return
		}
		req := p.Begin(src, signal)
		defer req.Release()
		buf := wire.Buffer()
		defer wire.PutBuffer(buf)
		if err := wire.ReadBody(w, r, req, h.maxBody, buf); err != nil {
			writeHTTPError(w, err)
			return
		}
		// Decoding takes more than the body (every JSON object is a message):
		// charge that before decoding.
		if err := req.Grow(wire.JSONDecodedSize(buf.Bytes())); err != nil {
			writeHTTPError(w, err)
			return
		}
		if err := handle(r.Context(), req, buf.Bytes()); err != nil {
			writeHTTPError(w, err)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, "{}")
	})
}

// tenant is the pipeline of the tenant whose token r carries, or the
// handler's own and false.
func (h *httpHandler) tenant(r *http.Request) (*pipeline.Pipeline, bool) {
	if h.tenants != nil {
		for _, got := range r.Header.Values(authHeader) {
			if p, ok := h.tenants(got); ok {
				return p, true
			}
		}
	}
	return h.p, false
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

func writeHTTPError(w http.ResponseWriter, err error) {
	http.Error(w, err.Error(), wire.HTTPStatus(w.Header(), err))
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
		return fmt.Errorf("decoding %s JSON: %v", m.ProtoReflect().Descriptor().Name(), err)
	}
	return nil
}

// unmarshalJSONArray decodes a JSON array of messages.
func unmarshalJSONArray[T proto.Message](body []byte, newMsg func() T) ([]T, error) {
	var raw []json.RawMessage
	if err := json.Unmarshal(body, &raw); err != nil {
		return nil, fmt.Errorf("decoding JSON array of %s: %v", newMsg().ProtoReflect().Descriptor().Name(), err)
	}
	out := make([]T, 0, len(raw))
	for i, r := range raw {
		m := newMsg()
		if err := unmarshalJSON(r, m); err != nil {
			return nil, fmt.Errorf("element %d of the %s array: %v", i, m.ProtoReflect().Descriptor().Name(), err)
		}
		out = append(out, m)
	}
	return out, nil
}
