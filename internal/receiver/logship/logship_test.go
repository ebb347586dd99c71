package logship

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang/snappy"
	"go.opentelemetry.io/collector/pdata/plog"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/skytrail/skytrail/internal/pipeline"
)

// collector keeps what the front door hands on, for looking at what the
// decoders made of a request.
type collector struct {
	mu   sync.Mutex
	recs []plog.LogRecord
	svc  []string
}

func (c *collector) ConsumeLogs(_ context.Context, ld pipeline.Logs) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	rls := ld.ResourceLogs()
	for i := 0; i < rls.Len(); i++ {
		recs := rls.At(i).ScopeLogs().At(0).LogRecords()
		for k := 0; k < recs.Len(); k++ {
			r := plog.NewLogRecord()
			recs.At(k).CopyTo(r)
			c.recs = append(c.recs, r)
			c.svc = append(c.svc, ld.Resources[i].Service)
		}
	}
	return nil
}

func newTestMux(c *collector) *http.ServeMux {
	p := pipeline.New(pipeline.Config{}, pipeline.Consumers{Logs: []pipeline.LogsConsumer{c}})
	mux := http.NewServeMux()
	New(p, Config{}).Register(mux)
	return mux
}

func do(mux http.Handler, path, contentType string, body []byte) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodPost, path, bytes.NewReader(body))
	req.Header.Set("Content-Type", contentType)
	w := httptest.NewRecorder()
	mux.ServeHTTP(w, req)
	return w
}

// lokiPush encodes a logproto.PushRequest as Promtail sends it: protobuf,
// snappy-compressed.
func lokiPush(labels string, ts time.Time, line string, meta map[string]string) []byte {
	var entry []byte
	var tsMsg []byte
	tsMsg = protowire.AppendTag(tsMsg, 1, protowire.VarintType)
	tsMsg = protowire.AppendVarint(tsMsg, uint64(ts.Unix()))
	tsMsg = protowire.AppendTag(tsMsg, 2, protowire.VarintType)
	tsMsg = protowire.AppendVarint(tsMsg, uint64(ts.Nanosecond()))
	entry = protowire.AppendTag(entry, 1, protowire.BytesType)
	entry = protowire.AppendBytes(entry, tsMsg)
	entry = protowire.AppendTag(entry, 2, protowire.BytesType)
	entry = protowire.AppendString(entry, line)
	for k, v := range meta {
		var pair []byte
		pair = protowire.AppendTag(pair, 1, protowire.BytesType)
		pair = protowire.AppendString(pair, k)
		pair = protowire.AppendTag(pair, 2, protowire.BytesType)
		pair = protowire.AppendString(pair, v)
		entry = protowire.AppendTag(entry, 3, protowire.BytesType)
		entry = protowire.AppendBytes(entry, pair)
	}
	var stream []byte
	stream = protowire.AppendTag(stream, 1, protowire.BytesType)
	stream = protowire.AppendString(stream, labels)
	stream = protowire.AppendTag(stream, 2, protowire.BytesType)
	stream = protowire.AppendBytes(stream, entry)
	var req []byte
	req = protowire.AppendTag(req, 1, protowire.BytesType)
	req = protowire.AppendBytes(req, stream)
	return snappy.Encode(nil, req)
}

func TestLokiProtobuf(t *testing.T) {
	t.Parallel()
	c := &collector{}
	mux := newTestMux(c)
	at := time.Date(2026, 12, 2, 9, 0, 0, 123, time.UTC)
	w := do(mux, "/loki/api/v1/push", "application/x-protobuf",
		lokiPush(`{job="varlogs", service_name="stock", env="prod"}`, at, `{"msg":"reserved","order_id":1001}`, map[string]string{"trace_id": "4bf92f3577b34da6a3ce929d0e0e4736"}))
	if w.Code != http.StatusNoContent {
		t.Fatalf("HTTP %d %s", w.Code, w.Body)
	}
	if len(c.recs) != 1 {
		t.Fatalf("%d records", len(c.recs))
	}
	r := c.recs[0]
	if c.svc[0] != "stock" || r.Body().Str() != "reserved" || !r.Timestamp().AsTime().Equal(at) || r.TraceID().String() != "4bf92f3577b34da6a3ce929d0e0e4736" {
		t.Errorf("service %q body %q time %v trace %v", c.svc[0], r.Body().Str(), r.Timestamp().AsTime(), r.TraceID())
	}
	if v, _ := r.Attributes().Get("order_id"); v.Str() != "1001" {
		t.Errorf("attributes %v", r.Attributes().AsRaw())
	}
}

func TestElasticsearchHandshake(t *testing.T) {
	t.Parallel()
	mux := newTestMux(&collector{})
	for _, c := range []struct{ method, path, want string }{
		{http.MethodGet, "/insert/elasticsearch/", `"number":"8.`},
		{http.MethodGet, "/insert/elasticsearch", `"number":"8.`},
		{http.MethodGet, "/insert/elasticsearch/_license?human=false", `"license"`},
		{http.MethodGet, "/insert/elasticsearch/_xpack", `"features"`},
		{http.MethodPut, "/insert/elasticsearch/_index_template/filebeat-8.11.0", `"acknowledged":true`},
		{http.MethodGet, "/insert/elasticsearch/_ilm/policy/filebeat", `{}`},
		{http.MethodGet, "/insert/elasticsearch/_nodes/http", `{}`},
	} {
		req := httptest.NewRequest(c.method, c.path, nil)
		w := httptest.NewRecorder()
		mux.ServeHTTP(w, req)
		if w.Code != http.StatusOK || !strings.Contains(w.Body.String(), c.want) || w.Header().Get("X-Elastic-Product") != "Elasticsearch" {
			t.Errorf("%s %s: HTTP %d %s", c.method, c.path, w.Code, w.Body)
		}
	}
}

// The decoders answer anything with a status, never a panic, and store
// nothing from a request they refuse whole.
func fuzzEndpoint(f *testing.F, path, contentType string, seeds ...[]byte) {
	for _, s := range seeds {
		f.Add(s)
	}
	c := &collector{}
	mux := newTestMux(c)
	f.Fuzz(func(t *testing.T, body []byte) {
		c.mu.Lock()
		before := len(c.recs)
		c.mu.Unlock()
		w := do(mux, path, contentType, body)
		switch w.Code {
		case http.StatusOK, http.StatusNoContent:
		case http.StatusBadRequest, http.StatusRequestEntityTooLarge:
			if path != "/loki/api/v1/push" && path != "/insert/elasticsearch/_bulk" {
				c.mu.Lock()
				if len(c.recs) != before {
					t.Errorf("a refused request stored %d records", len(c.recs)-before)
				}
				c.mu.Unlock()
			}
		default:
			t.Errorf("HTTP %d %s", w.Code, w.Body)
		}
	})
}

func FuzzElasticsearchBulk(f *testing.F) {
	fuzzEndpoint(f, "/insert/elasticsearch/_bulk", "application/x-ndjson",
		[]byte("{\"create\":{}}\n{\"message\":\"x\",\"service.name\":\"a\",\"trace_id\":\"4bf92f3577b34da6a3ce929d0e0e4736\"}\n"),
		[]byte("{\"index\":{\"_index\":\"i\",\"_id\":\"1\"}}\n{\"a\":{\"b\":[1,{\"c\":null}]},\"@timestamp\":\"2026-12-02T09:00:00Z\"}\n{\"delete\":{}}\n"),
		[]byte("{\"update\":{}}\n{}\n{\"create\":{}}\nnot json\n"))
}

func FuzzLokiJSON(f *testing.F) {
	fuzzEndpoint(f, "/loki/api/v1/push", "application/json",
		[]byte(`{"streams":[{"stream":{"app":"x"},"values":[["1764665400000000000","{\"msg\":\"m\"}",{"trace_id":"abc"}]]}]}`),
		[]byte(`{"streams":[{"stream":{},"values":[]}]}`))
}

func FuzzLokiProtobuf(f *testing.F) {
	fuzzEndpoint(f, "/loki/api/v1/push", "application/x-protobuf",
		lokiPush(`{app="x"}`, time.Unix(1764665400, 5), "line", map[string]string{"k": "v"}),
		lokiPush(`{}`, time.Unix(0, 0), "", nil))
}

func FuzzJSONLine(f *testing.F) {
	fuzzEndpoint(f, "/insert/jsonline", "application/x-ndjson",
		[]byte("{\"msg\":\"a\",\"app\":\"x\",\"ts\":1764665400}\n{\"SW_CTX\":\"[a,b,c,d,1]\"}\n"),
		[]byte("\n\n{\"traceparent\":\"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\"}"))
}

// keeper keeps the batches themselves, as a consumer that hands records on
// later would: what a batch holds must not change once its request is
// answered and the request buffer reused.
type keeper struct {
	mu      sync.Mutex
	batches []plog.Logs
}

func (k *keeper) ConsumeLogs(_ context.Context, ld pipeline.Logs) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.batches = append(k.batches, ld.Logs)
	return nil
}

func TestBulkLinesOutliveTheirRequest(t *testing.T) {
	t.Parallel()
	k := &keeper{}
	p := pipeline.New(pipeline.Config{}, pipeline.Consumers{Logs: []pipeline.LogsConsumer{k}})
	mux := http.NewServeMux()
	New(p, Config{}).Register(mux)
	line := func(i int) string {
		return fmt.Sprintf(`{"msg":"line %d","service.name":"svc-%d","host.name":"h-%d","order_id":"o-%d","level":"info"}`, i, i%2, i, i)
	}
	const n = 50
	for i := range n {
		body := "{\"create\":{}}\n" + line(i) + "\n{\"create\":{}}\n" + line(i+1000) + "\n"
		if w := do(mux, "/insert/elasticsearch/_bulk", "application/x-ndjson", []byte(body)); w.Code != http.StatusOK {
			t.Fatalf("request %d: HTTP %d %s", i, w.Code, w.Body)
		}
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if len(k.batches) != n {
		t.Fatalf("%d batches stored, want %d", len(k.batches), n)
	}
	for i, ld := range k.batches {
		got := map[string]bool{}
		rls := ld.ResourceLogs()
		for r := 0; r < rls.Len(); r++ {
			res := rls.At(r).Resource().Attributes()
			svc, _ := res.Get("service.name")
			host, _ := res.Get("host.name")
			recs := rls.At(r).ScopeLogs().At(0).LogRecords()
			for j := 0; j < recs.Len(); j++ {
				order, _ := recs.At(j).Attributes().Get("order_id")
				got[fmt.Sprintf("%s %s %s %s", recs.At(j).Body().Str(), order.Str(), svc.Str(), host.Str())] = true
			}
		}
		for _, want := range []int{i, i + 1000} {
			if w := fmt.Sprintf("line %d o-%d svc-%d h-%d", want, want, want%2, want); !got[w] {
				t.Errorf("batch %d: no %q after later requests; it holds %v", i, w, got)
			}
		}
	}
}

func TestBulkAnswerIDs(t *testing.T) {
	t.Parallel()
	mux := newTestMux(&collector{})
	body := "{\"create\":{\"_id\":\"mine\"}}\n{\"msg\":\"a\"}\n{\"create\":{}}\n{\"msg\":\"b\"}\n{\"delete\":{}}\n{\"index\":{}}\nnot json\n{\"create\":{}}\n{\"msg\":\"c\"}\n"
	w := do(mux, "/insert/elasticsearch/_bulk", "application/x-ndjson", []byte(body))
	var answer struct {
		Errors bool
		Items  []map[string]struct {
			ID     string `json:"_id"`
			Status int
		}
	}
	if err := json.Unmarshal(w.Body.Bytes(), &answer); err != nil || w.Code != http.StatusOK {
		t.Fatalf("HTTP %d %s: %v", w.Code, w.Body, err)
	}
	var ids []string
	var statuses []int
	for _, it := range answer.Items {
		for _, v := range it {
			ids = append(ids, v.ID)
			statuses = append(statuses, v.Status)
		}
	}
	if !answer.Errors || len(ids) != 5 || fmt.Sprint(statuses) != "[201 201 400 400 201]" {
		t.Fatalf("answer %s", w.Body)
	}
	// Given IDs come back; a delete without one has none; the others get
	// distinct IDs made of the request and their place in it.
	if ids[0] != "mine" || ids[2] != "" || !strings.HasSuffix(ids[1], "-1") || !strings.HasSuffix(ids[3], "-3") ||
		!strings.HasSuffix(ids[4], "-4") || strings.TrimSuffix(ids[1], "-1") != strings.TrimSuffix(ids[4], "-4") {
		t.Errorf("IDs %q", ids)
	}
}
