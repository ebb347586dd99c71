package otlp

import (
	"fmt"
	"mime"
	"net/http"
	"strings"

	spb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/skytrail/skytrail/internal/auth"
	"github.com/skytrail/skytrail/internal/pipeline"
	"github.com/skytrail/skytrail/internal/receiver/wire"
	"github.com/skytrail/skytrail/internal/tenant"
)

const (
	contentProtobuf = "application/x-protobuf"
	contentJSON     = "application/json"
)

// HTTPHandler serves OTLP/HTTP: POST /v1/traces, /v1/metrics and /v1/logs.
func (r *Receiver) HTTPHandler() http.Handler {
	mux := http.NewServeMux()
	for i := range signals {
		sig := &signals[i]
		mux.HandleFunc(sig.path, func(w http.ResponseWriter, req *http.Request) { r.serveHTTP(w, req, sig) })
	}
	return mux
}

func (r *Receiver) serveHTTP(w http.ResponseWriter, req *http.Request, sig *signal) {
	if req.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeHTTPError(w, contentJSON, http.StatusMethodNotAllowed, codes.InvalidArgument, "OTLP/HTTP takes POST "+sig.path+", not "+req.Method)
		return
	}
	src := wire.HTTPSource(req, HTTPReceiver)
	if r.cfg.Tokens.Len() > 0 {
		// Before anything of the request is read.
		id, err := r.cfg.Tokens.CheckBearer(req.Header.Values("Authorization"))
		if err != nil {
			refused := r.pipeline.Refuse(src, sig.kind, pipeline.Unauthenticated,
				fmt.Errorf("%w (the exporter sends it with OTEL_EXPORTER_OTLP_HEADERS=Authorization=Bearer%%20<token>, or otlptracehttp.WithHeaders)", err))
			w.Header().Set("WWW-Authenticate", `Bearer realm="SkyTrail OTLP"`)
			answer := contentJSON // in the request's encoding, when it is one OTLP has
			if mt, _, _ := mime.ParseMediaType(req.Header.Get("Content-Type")); mt == contentProtobuf {
				answer = contentProtobuf
			}
			writeHTTPError(w, answer, http.StatusUnauthorized, codes.Unauthenticated, refused.Error())
			return
		}
		req = req.WithContext(auth.NewContext(req.Context(), id))
	}
	mediaType, _, err := mime.ParseMediaType(req.Header.Get("Content-Type"))
	if err != nil || (mediaType != contentProtobuf && mediaType != contentJSON) {
		refused := r.pipeline.Refuse(src, sig.kind, pipeline.Malformed,
			fmt.Errorf("unsupported Content-Type %q: send %s or %s", req.Header.Get("Content-Type"), contentProtobuf, contentJSON))
		writeHTTPError(w, contentJSON, http.StatusUnsupportedMediaType, codes.InvalidArgument, refused.Msg)
		return
	}
	json := mediaType == contentJSON
	fail := func(err error) {
		writeHTTPError(w, mediaType, wire.HTTPStatus(w.Header(), err), wire.GRPCCode(pipeline.ReasonOf(err)), err.Error())
	}
	p, err := r.route(src, sig.kind, auth.FromContext(req.Context()), req.Header.Get(tenant.Header))
	if err != nil {
		fail(err)
		return
	}

	// The body is charged to the in-flight budget as it arrives, and its
	// decoding at what it will take before it is decoded.
	admitted := p.Begin(src, sig.kind)
	defer admitted.Release()
	buf := wire.Buffer()
	defer wire.PutBuffer(buf)
	if err := wire.ReadBody(w, req, admitted, int64(r.cfg.MaxRequestBytes), buf); err != nil {
		fail(err)
		return
	}
	body := buf.Bytes()
	// One estimate, for the body's own encoding: scanning every protobuf
	// body as JSON too took about 2% of the server's CPU under OTLP/HTTP
	// logs.
	var decoded int
	if json {
		decoded = wire.JSONDecodedSize(body)
	} else {
		decoded = wire.DecodedSize(body, sig.request)
	}
	if err := admitted.Grow(decoded); err != nil {
		fail(err)
		return
	}
	batch, err := sig.decode(body, json)
	if err != nil {
		fail(admitted.Refuse(pipeline.Malformed, err))
		return
	}
	out, err := admitted.Ingest(req.Context(), batch)
	if err != nil {
		fail(err)
		return
	}
	respBody, err := sig.respond(out, json)
	if err != nil {
		writeHTTPError(w, mediaType, http.StatusInternalServerError, codes.Internal, "encode response: "+err.Error())
		return
	}
	w.Header().Set("Content-Type", mediaType)
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(respBody)
}

// writeHTTPError answers with a google.rpc.Status in the request's encoding,
// as OTLP/HTTP specifies.
func writeHTTPError(w http.ResponseWriter, mediaType string, httpStatus int, code codes.Code, msg string) {
	// The message may quote what the client sent; protobuf refuses to
	// encode a string that is not UTF-8, which left the body empty.
	st := &spb.Status{Code: int32(code), Message: strings.ToValidUTF8(msg, "\uFFFD")}
	var body []byte
	if mediaType == contentProtobuf {
		body, _ = proto.Marshal(st)
	} else {
		mediaType = contentJSON
		body, _ = protojson.Marshal(st)
	}
	w.Header().Set("Content-Type", mediaType)
	w.WriteHeader(httpStatus)
	_, _ = w.Write(body)
}
