package logfields

import (
	"encoding/hex"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/skytrail/skytrail/internal/traceid"
)

func record(attrs map[string]any, body string) plog.LogRecord {
	rec := plog.NewLogRecord()
	_ = rec.Attributes().FromRaw(attrs)
	if body != "" {
		rec.Body().SetStr(body)
	}
	return rec
}

const (
	tidHex = "4bf92f3577b34da6a3ce929d0e0e4736"
	sidHex = "00f067aa0ba902b7"
)

func TestNormalizeFindsTheTraceUnderEveryName(t *testing.T) {
	t.Parallel()
	swID := "6e4a083be8da11f1918c9e2254654e93.28.40073696306070001"
	swTrace, _ := traceid.FromString(swID)
	cases := []struct {
		name      string
		attrs     map[string]any
		body      string
		wantTrace string
		wantSpan  string
		kept      []string
		gone      []string
	}{
		{"snake", map[string]any{"trace_id": tidHex, "span_id": sidHex, "order_id": "1001"}, "", tidHex, sidHex, []string{"order_id"}, []string{"trace_id", "span_id"}},
		{"camel", map[string]any{"traceId": tidHex, "spanId": sidHex}, "", tidHex, sidHex, nil, []string{"traceId"}},
		{"ecs", map[string]any{"trace.id": tidHex, "span.id": sidHex}, "", tidHex, sidHex, nil, []string{"trace.id", "span.id"}},
		{"uppercase hex kept as written", map[string]any{"trace_id": "4BF92F3577B34DA6A3CE929D0E0E4736"}, "", tidHex, "", []string{"trace_id"}, nil},
		{"64-bit", map[string]any{"traceId": "a3ce929d0e0e4736"}, "", "0000000000000000a3ce929d0e0e4736", "", []string{"traceId"}, nil},
		{"uuid", map[string]any{"trace_id": "4bf92f35-77b3-4da6-a3ce-929d0e0e4736"}, "", tidHex, "", nil, nil},
		{"traceparent", map[string]any{"traceparent": "00-" + tidHex + "-" + sidHex + "-01"}, "", tidHex, sidHex, nil, []string{"traceparent"}},
		{"skywalking id", map[string]any{"trace_id": swID}, "", hex.EncodeToString(swTrace[:]), "", []string{"trace_id"}, nil},
		{"SW_CTX", map[string]any{"SW_CTX": "[shop,inst-1," + swID + ",seg-1,3]"}, "", hex.EncodeToString(swTrace[:]), spanHex(traceid.SpanIDFromSegment("seg-1", 3)), []string{"SW_CTX"}, nil},
		{"SW_CTX without a trace", map[string]any{"SW_CTX": "[shop,inst-1,N/A,N/A,-1]"}, "", "", "", []string{"SW_CTX"}, nil},
		{"JSON body", nil, `{"msg":"paid","level":"error","trace_id":"` + tidHex + `","order":{"id":1001}}`, tidHex, "", []string{"order.id"}, []string{"msg", "level", "trace_id"}},
		{"no trace", map[string]any{"order_id": 7}, "", "", "", []string{"order_id"}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rec := record(c.attrs, c.body)
			Normalize(rec)
			if got := traceHex(rec.TraceID()); got != c.wantTrace {
				t.Errorf("trace = %q, want %q", got, c.wantTrace)
			}
			if got := spanHex(rec.SpanID()); got != c.wantSpan {
				t.Errorf("span = %q, want %q", got, c.wantSpan)
			}
			for _, k := range c.kept {
				if _, ok := rec.Attributes().Get(k); !ok {
					t.Errorf("attribute %q was removed: %v", k, rec.Attributes().AsRaw())
				}
			}
			for _, k := range c.gone {
				if _, ok := rec.Attributes().Get(k); ok {
					t.Errorf("attribute %q was kept beside the field it became", k)
				}
			}
		})
	}
}

func TestNormalizeMessageSeverityTime(t *testing.T) {
	t.Parallel()
	rec := record(map[string]any{"msg": "payment declined", "level": "WARN", "ts": 1764665400.5, "order_id": "1001"}, "")
	Normalize(rec)
	if rec.Body().Str() != "payment declined" || rec.SeverityText() != "WARN" || rec.SeverityNumber() != plog.SeverityNumberWarn {
		t.Errorf("body %q severity %q/%d", rec.Body().Str(), rec.SeverityText(), rec.SeverityNumber())
	}
	if got := rec.Timestamp().AsTime(); !got.Equal(time.Unix(1764665400, 5e8)) {
		t.Errorf("time = %v", got)
	}
	if rec.Attributes().Len() != 1 {
		t.Errorf("attributes = %v, want only order_id", rec.Attributes().AsRaw())
	}
	// The record's own fields win over attributes, which then stay.
	rec = record(map[string]any{"message": "from attrs", "level": "error", "@timestamp": "2026-12-02T08:00:00Z"}, "own body")
	rec.SetSeverityText("INFO")
	rec.SetTimestamp(pcommon.NewTimestampFromTime(time.Unix(1, 0)))
	Normalize(rec)
	if rec.Body().Str() != "own body" || rec.SeverityText() != "INFO" || rec.Timestamp().AsTime().Unix() != 1 || rec.Attributes().Len() != 3 {
		t.Errorf("own fields overwritten: %q %q %v %v", rec.Body().Str(), rec.SeverityText(), rec.Timestamp(), rec.Attributes().AsRaw())
	}
	// A time that does not read as one stays an attribute.
	rec = record(map[string]any{"time": "yesterday"}, "x")
	Normalize(rec)
	if rec.Timestamp() != 0 || rec.Attributes().Len() != 1 {
		t.Errorf("bad time lifted: %v %v", rec.Timestamp(), rec.Attributes().AsRaw())
	}
}

func TestNormalizeIsIdempotent(t *testing.T) {
	t.Parallel()
	rec := record(map[string]any{"trace_id": tidHex, "msg": "m", "level": "info", "k": "v"}, "")
	Normalize(rec)
	before := rec.Attributes().AsRaw()
	Normalize(rec)
	if len(rec.Attributes().AsRaw()) != len(before) || rec.Body().Str() != "m" {
		t.Errorf("second pass changed the record: %v", rec.Attributes().AsRaw())
	}
}

func TestSeverityNumber(t *testing.T) {
	t.Parallel()
	for level, want := range map[string]plog.SeverityNumber{"error": 17, "ERROR": 17, "Warning": 13, "info": 9, "debug": 5, "fatal": 21, "3": 17, "bogus": 0} {
		if got := SeverityNumber(level); got != want {
			t.Errorf("SeverityNumber(%q) = %d, want %d", level, got, want)
		}
	}
}

func traceHex(id pcommon.TraceID) string {
	if id.IsEmpty() {
		return ""
	}
	return hex.EncodeToString(id[:])
}

func spanHex(id pcommon.SpanID) string {
	if id.IsEmpty() {
		return ""
	}
	return hex.EncodeToString(id[:])
}

func FuzzNormalize(f *testing.F) {
	f.Add(`{"msg":"x","trace_id":"`+tidHex+`"}`, "traceparent", "00-"+tidHex+"-"+sidHex+"-01")
	f.Add("plain", "SW_CTX", "[a,b,c,d,1]")
	f.Add(`{"a":{"b":[1,2]}}`, "ts", "1764665400123")
	f.Fuzz(func(t *testing.T, body, key, value string) {
		rec := plog.NewLogRecord()
		rec.Body().SetStr(body)
		rec.Attributes().PutStr(key, value)
		Normalize(rec)
		Normalize(rec)
	})
}
