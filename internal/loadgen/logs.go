package loadgen

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
)

// The log lines benchmarks send: what a shop's services log, about 300
// bytes of JSON with 8 fields (message, level, order_id, user_id, trace_id,
// span_id, http.route, duration_ms), five lines a trace, from four
// services. Different seeds give different IDs.

var (
	logServices = []string{"frontend", "order", "inventory", "payment"}
	logRoutes   = []string{"/checkout", "/products/{item}", "/orders", "/reservations", "/charges", "/cart"}
	logMessages = []string{
		"order received from the web checkout, validating items and the shipping address",
		"stock reserved in the main warehouse for every item of the order, reservation held 15 minutes",
		"charge accepted by the payment gateway after the fraud check scored the card as low risk",
		"card declined by the issuing bank: insufficient funds reported for the customer's account",
		"confirmation e-mail queued for the customer with the order summary and the delivery estimate",
		"cart updated: quantity changed for one item, prices recalculated with the current promotions",
	}
)

// LogLine is one generated line.
type LogLine struct {
	Time       time.Time
	Service    string
	Message    string
	Level      string
	OrderID    int64
	UserID     string
	TraceID    [16]byte
	SpanID     [8]byte
	Route      string
	DurationMs int64
}

// LogLines returns n lines ending just before base, a millisecond apart.
func LogLines(n int, seed uint64, base time.Time) []LogLine {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	out := make([]LogLine, n)
	var tid [16]byte
	for i := range out {
		if i%5 == 0 {
			binary.BigEndian.PutUint64(tid[:8], r.Uint64())
			binary.BigEndian.PutUint64(tid[8:], r.Uint64())
		}
		l := &out[i]
		l.Time = base.Add(-time.Duration(n-i) * time.Millisecond)
		l.Service = logServices[r.IntN(len(logServices))]
		m := r.IntN(len(logMessages))
		l.Message = logMessages[m]
		l.Level = "info"
		if m == 3 {
			l.Level = "error"
		}
		l.OrderID = 100000 + r.Int64N(900000)
		l.UserID = fmt.Sprintf("user-%05d", r.IntN(50000))
		l.TraceID = tid
		binary.BigEndian.PutUint64(l.SpanID[:], r.Uint64())
		l.Route = logRoutes[r.IntN(len(logRoutes))]
		l.DurationMs = r.Int64N(2000)
	}
	return out
}

// JSON is the line as a zap-style JSON object (about 300 bytes).
func (l LogLine) JSON() []byte {
	b, _ := json.Marshal(map[string]any{
		"ts": l.Time.UTC().Format(time.RFC3339Nano), "service.name": l.Service, "level": l.Level, "msg": l.Message,
		"order_id": l.OrderID, "user_id": l.UserID, "trace_id": hex.EncodeToString(l.TraceID[:]),
		"span_id": hex.EncodeToString(l.SpanID[:]), "http.route": l.Route, "duration_ms": l.DurationMs,
	})
	return b
}

// BulkBody returns lines as an Elasticsearch bulk request body, as Filebeat
// sends it: a create action and the line's JSON for each, and the JSON's
// bytes (without the actions).
func BulkBody(lines []LogLine) (body []byte, jsonBytes int) {
	var b bytes.Buffer
	for _, l := range lines {
		j := l.JSON()
		jsonBytes += len(j)
		b.WriteString(`{"create":{}}` + "\n")
		b.Write(j)
		b.WriteByte('\n')
	}
	return b.Bytes(), jsonBytes
}

// Logs returns lines as an OTLP batch, one resource a service, the way the
// OpenTelemetry SDK with a slog or zap bridge sends them: trace context,
// severity and body in the record's own fields, the rest attributes.
func Logs(lines []LogLine) plog.Logs {
	ld := plog.NewLogs()
	recs := map[string]plog.LogRecordSlice{}
	for _, svc := range logServices {
		rl := ld.ResourceLogs().AppendEmpty()
		rl.Resource().Attributes().PutStr("service.name", svc)
		rl.Resource().Attributes().PutStr("service.instance.id", svc+"-1")
		sl := rl.ScopeLogs().AppendEmpty()
		sl.Scope().SetName("go.opentelemetry.io/contrib/bridges/otelslog")
		recs[svc] = sl.LogRecords()
	}
	for _, l := range lines {
		rec := recs[l.Service].AppendEmpty()
		rec.SetTimestamp(pcommon.NewTimestampFromTime(l.Time))
		rec.SetObservedTimestamp(pcommon.NewTimestampFromTime(l.Time))
		rec.Body().SetStr(l.Message)
		rec.SetSeverityText(l.Level)
		if l.Level == "error" {
			rec.SetSeverityNumber(plog.SeverityNumberError)
		} else {
			rec.SetSeverityNumber(plog.SeverityNumberInfo)
		}
		rec.SetTraceID(l.TraceID)
		rec.SetSpanID(l.SpanID)
		a := rec.Attributes()
		a.EnsureCapacity(4)
		a.PutInt("order_id", l.OrderID)
		a.PutStr("user_id", l.UserID)
		a.PutStr("http.route", l.Route)
		a.PutInt("duration_ms", l.DurationMs)
	}
	return ld
}
