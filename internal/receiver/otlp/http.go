package otlp

import (
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"

	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	spb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/skytrail/skytrail/internal/pipeline"
	"github.com/skytrail/skytrail/internal/selfmetrics"
)

const (
	httpReceiver    = "otlp-http"
	contentProtobuf = "application/x-protobuf"
	contentJSON     = "application/json"
)

// HTTPHandler serves POST /v1/traces.
func (r *Receiver) HTTPHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/v1/traces", r.serveTraces)
	return mux
}

func (r *Receiver) serveTraces(w http.ResponseWriter, req *http.Request) {
	if req.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeHTTPError(w, contentJSON, http.StatusMethodNotAllowed, codes.InvalidArgument, "OTLP/HTTP takes POST /v1/traces, not "+req.Method)
		return
	}
	mediaType, _, err := mime.ParseMediaType(req.Header.Get("Content-Type"))
	if err != nil || (mediaType != contentProtobuf && mediaType != contentJSON) {
		writeHTTPError(w, contentJSON, http.StatusUnsupportedMediaType, codes.InvalidArgument,
			fmt.Sprintf("unsupported Content-Type %q: send %s or %s", req.Header.Get("Content-Type"), contentProtobuf, contentJSON))
		return
	}
	reject := func(status int, code codes.Code, reason, msg string) {
		selfmetrics.SpansRejected.WithLabelValues(httpReceiver, reason).Inc()
		writeHTTPError(w, mediaType, status, code, msg)
	}

	// Reserve the in-flight budget before reading, so a flood of large
	// bodies is turned away instead of buffered.
	reserve := r.cfg.MaxRequestBytes
	if req.ContentLength > 0 && req.Header.Get("Content-Encoding") == "" {
		reserve = int(min(req.ContentLength, int64(r.cfg.MaxRequestBytes)))
	}
	release, err := r.pipeline.Admit(reserve)
	if err != nil {
		w.Header().Set("Retry-After", strconv.Itoa(int(pipeline.RetryAfter.Seconds())))
		reject(http.StatusTooManyRequests, codes.ResourceExhausted, "overloaded", err.Error())
		return
	}
	defer release()

	body, err := r.readBody(w, req)
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) || errors.Is(err, errBodyTooLarge) {
			reject(http.StatusRequestEntityTooLarge, codes.InvalidArgument, "too_large",
				fmt.Sprintf("request body over the limit of %d bytes (after decompression); send smaller batches", r.cfg.MaxRequestBytes))
			return
		}
		reject(http.StatusBadRequest, codes.InvalidArgument, "malformed", err.Error())
		return
	}

	otlpReq := ptraceotlp.NewExportRequest()
	if mediaType == contentJSON {
		err = otlpReq.UnmarshalJSON(body)
	} else {
		err = otlpReq.UnmarshalProto(body)
	}
	if err != nil {
		reject(http.StatusBadRequest, codes.InvalidArgument, "malformed", "cannot decode "+mediaType+" ExportTraceServiceRequest: "+err.Error())
		return
	}

	res, err := r.export(req.Context(), otlpReq.Traces(), httpReceiver)
	if err != nil {
		var inv errInvalid
		switch {
		case errors.As(err, &inv):
			writeHTTPError(w, mediaType, http.StatusBadRequest, codes.InvalidArgument, inv.msg)
		case errors.Is(err, pipeline.ErrOverloaded):
			w.Header().Set("Retry-After", strconv.Itoa(int(pipeline.RetryAfter.Seconds())))
			writeHTTPError(w, mediaType, http.StatusTooManyRequests, codes.ResourceExhausted, err.Error())
		default:
			w.Header().Set("Retry-After", strconv.Itoa(int(pipeline.RetryAfter.Seconds())))
			writeHTTPError(w, mediaType, http.StatusServiceUnavailable, codes.Unavailable, "storing spans failed, retry later: "+err.Error())
		}
		return
	}
	resp := ptraceotlp.NewExportResponse()
	if res.rejected > 0 {
		resp.PartialSuccess().SetRejectedSpans(int64(res.rejected))
		resp.PartialSuccess().SetErrorMessage(res.message)
	}
	var out []byte
	if mediaType == contentJSON {
		out, err = resp.MarshalJSON()
	} else {
		out, err = resp.MarshalProto()
	}
	if err != nil {
		writeHTTPError(w, mediaType, http.StatusInternalServerError, codes.Internal, "encode response: "+err.Error())
		return
	}
	w.Header().Set("Content-Type", mediaType)
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(out)
}

var errBodyTooLarge = errors.New("request body too large")

// readBody reads the request body, gunzipping it when asked, and refuses
// more than MaxRequestBytes either before or after decompression.
func (r *Receiver) readBody(w http.ResponseWriter, req *http.Request) ([]byte, error) {
	limit := int64(r.cfg.MaxRequestBytes)
	var src io.Reader = http.MaxBytesReader(w, req.Body, limit)
	switch req.Header.Get("Content-Encoding") {
	case "", "identity":
	case "gzip":
		zr, err := gzip.NewReader(src)
		if err != nil {
			return nil, fmt.Errorf("Content-Encoding is gzip but the body is not: %w", err)
		}
		defer zr.Close()
		src = zr
	default:
		return nil, fmt.Errorf("unsupported Content-Encoding %q: send gzip or none", req.Header.Get("Content-Encoding"))
	}
	body, err := io.ReadAll(io.LimitReader(src, limit+1))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return nil, err
		}
		return nil, fmt.Errorf("read request body: %w", err)
	}
	if int64(len(body)) > limit {
		return nil, errBodyTooLarge
	}
	return body, nil
}

// writeHTTPError answers with a google.rpc.Status in the request's encoding,
// as OTLP/HTTP specifies.
func writeHTTPError(w http.ResponseWriter, mediaType string, httpStatus int, code codes.Code, msg string) {
	st := &spb.Status{Code: int32(code), Message: msg}
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
