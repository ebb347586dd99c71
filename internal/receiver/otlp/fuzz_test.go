package otlp

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"

	"github.com/skytrail/skytrail/internal/pipeline"
	"github.com/skytrail/skytrail/internal/storage/spanstore"
)

func seedRequest() ptrace.Traces {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", "svc")
	sp := rs.ScopeSpans().AppendEmpty().Spans().AppendEmpty()
	sp.SetTraceID(pcommon.TraceID{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16})
	sp.SetSpanID(pcommon.SpanID{1, 2, 3, 4, 5, 6, 7, 8})
	sp.SetName("op")
	now := time.Now()
	sp.SetStartTimestamp(pcommon.NewTimestampFromTime(now))
	sp.SetEndTimestamp(pcommon.NewTimestampFromTime(now.Add(time.Millisecond)))
	sp.Attributes().PutInt("order_id", 1001)
	sp.Attributes().PutEmptySlice("list").AppendEmpty().SetStr("x")
	sp.Events().AppendEmpty().SetName("ev")
	return td
}

// FuzzHTTPExport sends arbitrary bodies, as protobuf and as JSON, through the
// real HTTP handler into real storage: every answer is a clean 200 or 4xx,
// never a panic or a 5xx.
func FuzzHTTPExport(f *testing.F) {
	td := seedRequest()
	pb, _ := ptraceotlp.NewExportRequestFromTraces(td).MarshalProto()
	js, _ := ptraceotlp.NewExportRequestFromTraces(td).MarshalJSON()
	f.Add(pb, false)
	f.Add(js, true)
	f.Add([]byte(`{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"00","spanId":"01"}]}]}]}`), true)
	f.Add([]byte{0x0a, 0x80, 0x01}, false)

	store, err := spanstore.Open(spanstore.Config{Dir: f.TempDir()})
	if err != nil {
		f.Fatal(err)
	}
	defer store.Close()
	p := pipeline.New(pipeline.Config{Storage: store.Limits()}, pipeline.Consumers{Traces: []pipeline.TracesConsumer{store}})
	h := New(p, Config{MaxRequestBytes: 1 << 20}).HTTPHandler()
	f.Fuzz(func(t *testing.T, body []byte, asJSON bool) {
		ct := contentProtobuf
		if asJSON {
			ct = contentJSON
		}
		req := httptest.NewRequest(http.MethodPost, "/v1/traces", bytes.NewReader(body))
		req.Header.Set("Content-Type", ct)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK && rec.Code != http.StatusBadRequest {
			t.Fatalf("HTTP %d: %s", rec.Code, rec.Body.String())
		}
	})
}

// FuzzStoreRoundTrip decodes arbitrary protobuf and hands it to the front
// door, which validates it against the store's own limits and writes what is
// left: storage must keep every span that passed validation (logstorage
// would drop a row it cannot hold with only a log line, so validation must
// catch everything first).
func FuzzStoreRoundTrip(f *testing.F) {
	pb, _ := ptraceotlp.NewExportRequestFromTraces(seedRequest()).MarshalProto()
	f.Add(pb)
	store, err := spanstore.Open(spanstore.Config{Dir: f.TempDir()})
	if err != nil {
		f.Fatal(err)
	}
	defer store.Close()
	p := pipeline.New(pipeline.Config{Storage: store.Limits()}, pipeline.Consumers{Traces: []pipeline.TracesConsumer{store}})
	f.Fuzz(func(t *testing.T, body []byte) {
		req := ptraceotlp.NewExportRequest()
		if req.UnmarshalProto(body) != nil {
			return
		}
		td := req.Traces()
		if _, err := p.Ingest(context.Background(), pipeline.Source{Receiver: "fuzz"}, &pipeline.Traces{Traces: td}); err != nil {
			if pipeline.ReasonOf(err) != pipeline.Invalid {
				t.Fatal(err)
			}
			return
		}
		want := map[pcommon.TraceID]int{}
		rss := td.ResourceSpans()
		for i := 0; i < rss.Len(); i++ {
			for j := 0; j < rss.At(i).ScopeSpans().Len(); j++ {
				spans := rss.At(i).ScopeSpans().At(j).Spans()
				for k := 0; k < spans.Len(); k++ {
					want[spans.At(k).TraceID()]++
				}
			}
		}
		if len(want) == 0 {
			return
		}
		store.Flush()
		for id, n := range want {
			got, err := store.GetTrace(context.Background(), id)
			// Earlier inputs may have stored spans of the same trace: at least n.
			if err != nil || got.SpanCount() < n {
				t.Fatalf("trace %x: stored %d of %d valid spans (%v)", id, got.SpanCount(), n, err)
			}
		}
	})
}
