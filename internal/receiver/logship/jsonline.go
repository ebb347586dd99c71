package logship

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/VictoriaMetrics/VictoriaLogs/lib/logstorage"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/skytrail/skytrail/internal/pipeline"
	"github.com/skytrail/skytrail/internal/receiver/wire"
)

// serveJSONLine takes JSON lines, one log line a JSON object, as
// VictoriaLogs' /insert/jsonline does (with its _stream_fields, _msg_field
// and _time_field parameters). The request is taken whole or not at all:
// a line that is not a JSON object, or that the front door would refuse,
// fails it with a 400 naming the line, and nothing of it is stored.
func (r *Receiver) serveJSONLine(w http.ResponseWriter, req *http.Request) {
	if req.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		textError(w, http.StatusMethodNotAllowed, fmt.Errorf("/insert/jsonline takes POST, not %s", req.Method))
		return
	}
	admitted, body, done, ok := r.begin(w, req, JSONLineReceiver, textError)
	if !ok {
		return
	}
	defer done()
	b := newBuilder(readParams(req))
	jp := logstorage.GetJSONParser()
	defer logstorage.PutJSONParser(jp)
	scratch := plog.NewLogRecord()
	lineNo := 0
	for rest := body; len(rest) > 0; {
		var line []byte
		line, rest = nextLine(rest)
		lineNo++
		if len(strings.TrimSpace(unsafeString(line))) == 0 {
			continue
		}
		if err := jp.ParseLogMessage(line, nil, ""); err != nil {
			textError(w, http.StatusBadRequest, admitted.Refuse(pipeline.Malformed, fmt.Errorf("line %d is not a JSON object: %v", lineNo, err)))
			return
		}
		recs, res := b.record(jp.Fields, nil, scratch)
		if reason := r.p.CheckLog(res, scratch); reason != "" {
			textError(w, http.StatusBadRequest, admitted.Refuse(pipeline.Invalid, fmt.Errorf("line %d: %s; nothing of the request was stored", lineNo, reason)))
			return
		}
		scratch.MoveTo(recs.AppendEmpty())
	}
	if _, err := admitted.Ingest(req.Context(), &pipeline.Logs{Logs: b.ld, Checked: true}); err != nil {
		textError(w, wire.HTTPStatus(w.Header(), err), err)
		return
	}
	w.WriteHeader(http.StatusOK)
}

// textError answers with the error's message as plain text, as
// VictoriaLogs and Loki answer refusals.
func textError(w http.ResponseWriter, status int, err error) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(strings.ToValidUTF8(err.Error(), "\uFFFD") + "\n"))
}
