package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/elastic/go-elasticsearch/v8"
	"github.com/elastic/go-elasticsearch/v8/esutil"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlplog/otlploggrpc"
	"go.opentelemetry.io/otel/log"
	sdklog "go.opentelemetry.io/otel/sdk/log"
	"go.opentelemetry.io/otel/sdk/resource"
	semconv "go.opentelemetry.io/otel/semconv/v1.26.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/skytrail/skytrail/internal/server"
	"github.com/skytrail/skytrail/internal/servertest"
	"github.com/skytrail/skytrail/internal/testutil/poll"
)

type logLine struct {
	Time       time.Time         `json:"time"`
	Service    string            `json:"service"`
	Body       string            `json:"body"`
	Severity   string            `json:"severity"`
	TraceID    string            `json:"traceID"`
	SpanID     string            `json:"spanID"`
	Attributes map[string]string `json:"attributes"`
	Resource   map[string]string `json:"resource"`
}

type logsAnswer struct {
	Logs []logLine `json:"logs"`
	Next string    `json:"next"`
}

// One order's lines arrive by every path a shop ships logs: the official
// Elasticsearch client's bulk indexer (as Filebeat would), a Loki push, JSON
// lines and the OpenTelemetry log SDK over OTLP. Each is found by
// order_id, by its trace (in the trace ID form its logger wrote), and
// through LogsQL.
func TestLogsFromEveryShipperFoundByFieldAndTrace(t *testing.T) {
	t.Parallel()
	s := servertest.Start(t)
	api := "http://" + s.Addrs["query API"]
	ingest := "http://" + s.Addrs["OTLP HTTP"]
	ctx := context.Background()
	const (
		esTrace   = "4bf92f3577b34da6a3ce929d0e0e4736"
		lokiTrace = "0af7651916cd43dd8448eb211c80319c"
		otelTrace = "5b8efff798038103d269b633813fc60c"
		swTrace   = "6e4a083be8da11f1918c9e2254654e93.28.40073696306070001"
	)

	// Elasticsearch's bulk API, through the official client's bulk indexer.
	es, err := elasticsearch.NewClient(elasticsearch.Config{Addresses: []string{ingest + "/insert/elasticsearch"}})
	if err != nil {
		t.Fatal(err)
	}
	info, err := es.Info()
	if err != nil || info.IsError() {
		t.Fatalf("GET / (the client's handshake): %v %v", err, info)
	}
	info.Body.Close()
	var mu sync.Mutex
	var failures []string
	bi, err := esutil.NewBulkIndexer(esutil.BulkIndexerConfig{Client: es, Index: "filebeat-8.11.0", FlushBytes: 1 << 20, NumWorkers: 1,
		OnError: func(_ context.Context, err error) { t.Errorf("bulk indexer: %v", err) }})
	if err != nil {
		t.Fatal(err)
	}
	add := func(body string) {
		err := bi.Add(ctx, esutil.BulkIndexerItem{Action: "create", Body: strings.NewReader(body),
			OnFailure: func(_ context.Context, _ esutil.BulkIndexerItem, res esutil.BulkIndexerResponseItem, err error) {
				mu.Lock()
				defer mu.Unlock()
				failures = append(failures, fmt.Sprintf("%d %s: %s", res.Status, res.Error.Type, res.Error.Reason))
			}})
		if err != nil {
			t.Fatal(err)
		}
	}
	add(`{"@timestamp":"` + time.Now().UTC().Format(time.RFC3339Nano) + `","message":"card declined","level":"error","service":{"name":"payment"},"order_id":"1001","trace_id":"` + esTrace + `","span_id":"00f067aa0ba902b7"}`)
	add(`{"message":"no time given","service.name":"payment","order_id":"1002"}`)
	add(`not json at all`)
	if err := bi.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if st := bi.Stats(); st.NumAdded != 3 || st.NumFailed != 1 || len(failures) != 1 || !strings.HasPrefix(failures[0], "400 mapper_parsing_exception") {
		t.Errorf("bulk stats %+v, failures %q: want the one broken document refused with a 400 item", st, failures)
	}

	// Loki's push API, JSON, as Promtail's JSON mode sends it: a JSON line
	// with a W3C traceparent.
	lokiBody := fmt.Sprintf(`{"streams":[{"stream":{"service_name":"stock","env":"prod"},"values":[["%d","{\"msg\":\"reserved\",\"order_id\":1001,\"traceparent\":\"00-%s-b7ad6b7169203331-01\"}"]]}]}`,
		time.Now().UnixNano(), lokiTrace)
	post(t, ingest+"/loki/api/v1/push", "application/json", lokiBody, http.StatusNoContent)

	// JSON lines, a skywalking-go agent's zap line with SW_CTX.
	jl := `{"app":"web","msg":"checkout started","order_id":"1001","SW_CTX":"[web,web-1,` + swTrace + `,seg-1,0]","ts":` + fmt.Sprint(time.Now().Unix()) + "}\n"
	post(t, ingest+"/insert/jsonline", "application/x-ndjson", jl, http.StatusOK)

	// OpenTelemetry's log SDK over OTLP gRPC, in a span's context.
	lexp, err := otlploggrpc.New(ctx, otlploggrpc.WithEndpoint(s.Addrs["OTLP gRPC"]), otlploggrpc.WithInsecure())
	if err != nil {
		t.Fatal(err)
	}
	lp := sdklog.NewLoggerProvider(sdklog.WithResource(resource.NewSchemaless(semconv.ServiceName("orders"))), sdklog.WithProcessor(sdklog.NewSimpleProcessor(lexp)))
	defer func() { _ = lp.Shutdown(ctx) }()
	tid, _ := trace.TraceIDFromHex(otelTrace)
	sid, _ := trace.SpanIDFromHex("53995c3f42cd8ad8")
	spanCtx := trace.ContextWithSpanContext(ctx, trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid, TraceFlags: trace.FlagsSampled}))
	var rec log.Record
	rec.SetTimestamp(time.Now())
	rec.SetSeverity(log.SeverityInfo)
	rec.SetBody(attribute.StringValue("order stored"))
	rec.AddAttributes(attribute.Int("order_id", 1001))
	lp.Logger("orders").Emit(spanCtx, rec)

	var found logsAnswer
	poll.Until(t, 30*time.Second, "order 1001's four lines to be searchable", func() bool {
		servertest.GetJSON(t, api+"/api/v1/logs?field=order_id:1001", &found)
		return len(found.Logs) == 4
	})
	byService := map[string]logLine{}
	for _, l := range found.Logs {
		byService[l.Service] = l
	}
	if l := byService["payment"]; l.Body != "card declined" || l.TraceID != esTrace || l.SpanID != "00f067aa0ba902b7" || l.Severity != "error" {
		t.Errorf("bulk line %+v", l)
	}
	if l := byService["stock"]; l.Body != "reserved" || l.TraceID != lokiTrace || l.SpanID != "b7ad6b7169203331" || l.Resource["env"] != "prod" {
		t.Errorf("Loki line %+v", l)
	}
	if l := byService["web"]; l.Body != "checkout started" || l.TraceID == "" || l.Attributes["SW_CTX"] == "" {
		t.Errorf("JSON line %+v", l)
	}
	if l := byService["orders"]; l.Body != "order stored" || l.TraceID != otelTrace || l.SpanID != "53995c3f42cd8ad8" {
		t.Errorf("OTLP line %+v", l)
	}
	// Each by its trace, in the form its logger wrote it.
	for _, id := range []string{esTrace, lokiTrace, otelTrace, swTrace} {
		var tl logsAnswer
		if code := servertest.GetJSON(t, api+"/api/v1/traces/"+url.PathEscape(id)+"/logs", &tl); code != http.StatusOK || len(tl.Logs) != 1 {
			t.Errorf("logs of trace %s: HTTP %d, %d lines", id, code, len(tl.Logs))
		}
	}
	// The line without a time was stamped on arrival and is there too.
	var noTime logsAnswer
	servertest.GetJSON(t, api+"/api/v1/logs?field=order_id:1002&service=payment", &noTime)
	if len(noTime.Logs) != 1 || time.Since(noTime.Logs[0].Time) > time.Minute {
		t.Errorf("line without a time: %+v", noTime.Logs)
	}
	// LogsQL, as Grafana's VictoriaLogs data source asks.
	resp, err := http.PostForm(api+"/select/logsql/query", url.Values{"query": {`order_id:1001 | sort by (service) | fields service, _msg, trace_id`}})
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if lines := strings.Split(strings.TrimSpace(string(body)), "\n"); resp.StatusCode != http.StatusOK || len(lines) != 4 ||
		!strings.Contains(lines[1], `"service":"payment"`) || !strings.Contains(lines[1], esTrace) {
		t.Errorf("LogsQL: HTTP %d %s", resp.StatusCode, body)
	}
}

func post(t *testing.T, url, contentType, body string, want int) string {
	t.Helper()
	resp, err := http.Post(url, contentType, strings.NewReader(body))
	if err != nil {
		t.Fatalf("POST %s: %v", url, err)
	}
	defer resp.Body.Close()
	got, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		t.Fatalf("POST %s: HTTP %d %s, want %d", url, resp.StatusCode, got, want)
	}
	return string(got)
}

// Hostile and unusual input gets a clear answer and never loses what was
// acknowledged: bulk bodies that do not parse, a 1 MB line, 10,000 fields,
// bytes that are not UTF-8, filters that try to be LogsQL.
func TestLogsBadInput(t *testing.T) {
	t.Parallel()
	s := servertest.Start(t)
	api := "http://" + s.Addrs["query API"]
	ingest := "http://" + s.Addrs["OTLP HTTP"]
	bulk := ingest + "/insert/elasticsearch/_bulk"

	// An action line that is not JSON fails the request, as Elasticsearch does.
	if got := post(t, bulk, "application/x-ndjson", "{\"create\":\n{}\n", http.StatusBadRequest); !strings.Contains(got, "illegal_argument_exception") || !strings.Contains(got, "line 1") {
		t.Errorf("malformed action: %s", got)
	}
	post(t, bulk, "application/x-ndjson", "{\"create\":{}}\n", http.StatusBadRequest) // no document after it
	post(t, bulk, "application/x-ndjson", "{\"frobnicate\":{}}\n{}\n", http.StatusBadRequest)

	// Per-item answers: a 1 MB line is stored, 10,000 fields and delete are
	// refused item by item, invalid UTF-8 is stored with U+FFFD.
	var b strings.Builder
	b.WriteString(`{"create":{}}` + "\n" + `{"service.name":"bad","msg":"` + strings.Repeat("x", 1_000_000) + `","case":"big"}` + "\n")
	b.WriteString(`{"create":{}}` + "\n" + `{"service.name":"bad","msg":"wide","case":"wide"`)
	for i := range 10_000 {
		fmt.Fprintf(&b, `,"f%d":%d`, i, i)
	}
	b.WriteString("}\n")
	b.WriteString(`{"delete":{"_id":"1"}}` + "\n")
	b.WriteString(`{"index":{}}` + "\n" + `{"service.name":"bad","msg":"caf` + "\xff\xfe" + `","case":"utf8"}` + "\n")
	var answer struct {
		Errors bool
		Items  []map[string]struct {
			Status int
			Error  struct{ Type, Reason string }
		}
	}
	if err := json.Unmarshal([]byte(post(t, bulk, "application/x-ndjson", b.String(), http.StatusOK)), &answer); err != nil {
		t.Fatal(err)
	}
	want := []int{201, 400, 400, 201}
	if !answer.Errors || len(answer.Items) != len(want) {
		t.Fatalf("bulk answer %+v", answer)
	}
	for i, item := range answer.Items {
		for _, it := range item {
			if it.Status != want[i] {
				t.Errorf("item %d: status %d (%s), want %d", i, it.Status, it.Error.Reason, want[i])
			}
		}
	}
	if r := answer.Items[1]["create"].Error.Reason; !strings.Contains(r, "attributes") {
		t.Errorf("10,000 fields refused with %q, want a reason naming the attribute limit", r)
	}
	var got logsAnswer
	poll.Until(t, 30*time.Second, "the big and the non-UTF-8 lines to be searchable", func() bool {
		servertest.GetJSON(t, api+"/api/v1/logs?service=bad", &got)
		return len(got.Logs) == 2
	})
	for _, l := range got.Logs {
		switch l.Attributes["case"] {
		case "big":
			if len(l.Body) != 1_000_000 {
				t.Errorf("1 MB line read back with %d bytes", len(l.Body))
			}
		case "utf8":
			if l.Body != "caf\uFFFD" {
				t.Errorf("invalid UTF-8 read back as %q", l.Body)
			}
		}
	}

	// Loki and JSON lines: bodies that do not parse are 400s that say why.
	for _, c := range []struct{ url, ct, body, want string }{
		{ingest + "/loki/api/v1/push", "application/json", `{"streams":[{"stream":{"a":"b"},"values":[["yesterday","x"]]}]}`, "Unix nanoseconds"},
		{ingest + "/loki/api/v1/push", "application/json", `{"streams":`, "not JSON"},
		{ingest + "/loki/api/v1/push", "application/x-protobuf", "not snappy", "snappy"},
		{ingest + "/insert/jsonline", "application/json", "{\"a\":1}\n[1,2]\n", "line 2"},
	} {
		if got := post(t, c.url, c.ct, c.body, http.StatusBadRequest); !strings.Contains(got, c.want) {
			t.Errorf("%s %q: %q, want it to say %q", c.url, c.body, got, c.want)
		}
	}

	// Filters are literal: LogsQL in a value or a name is not run.
	for _, f := range []string{`case:big" or *`, "case:big | delete", `case:"big"`, "case:big\nfoo"} {
		var none logsAnswer
		if code := servertest.GetJSON(t, api+"/api/v1/logs?service=bad&field="+url.QueryEscape(f), &none); code != http.StatusOK || len(none.Logs) != 0 {
			t.Errorf("field %q: HTTP %d, %d lines; want 200 and none", f, code, len(none.Logs))
		}
	}
	for _, f := range []string{"case*:big", ":big", "nocolon", "a\x01b:1"} {
		if code := servertest.GetJSON(t, api+"/api/v1/logs?field="+url.QueryEscape(f), nil); code != http.StatusBadRequest {
			t.Errorf("field %q: HTTP %d, want 400", f, code)
		}
	}
	if code := servertest.GetJSON(t, api+"/select/logsql/query?query="+url.QueryEscape("foo | bar("), nil); code != http.StatusBadRequest {
		t.Errorf("a LogsQL query that does not parse: HTTP %d, want 400", code)
	}
}

// A burst far above the in-flight budget is refused with a retryable 429
// while the budget is spent, and every line acknowledged is stored.
func TestLogsBurstAboveBudgetIsRetryable(t *testing.T) {
	t.Parallel()
	s := servertest.Start(t, func(c *server.Config) { c.MaxInFlight = 8 << 20 })
	api := "http://" + s.Addrs["query API"]
	bulk := "http://" + s.Addrs["OTLP HTTP"] + "/insert/elasticsearch/_bulk"
	body := func(n, from int) []byte {
		var b bytes.Buffer
		for i := range n {
			fmt.Fprintf(&b, "{\"create\":{}}\n{\"service.name\":\"burst\",\"msg\":\"line %d %s\",\"seq\":%d}\n", from+i, strings.Repeat("p", 200), from+i)
		}
		return b.Bytes()
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	acked, refused := 0, 0
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for round := range 5 {
				const n = 2000
				resp, err := http.Post(bulk, "application/x-ndjson", bytes.NewReader(body(n, (w*5+round)*n)))
				if err != nil {
					t.Error(err)
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				mu.Lock()
				switch resp.StatusCode {
				case http.StatusOK:
					acked += n
				case http.StatusTooManyRequests:
					refused++
					if resp.Header.Get("Retry-After") == "" {
						t.Error("429 without Retry-After")
					}
				default:
					t.Errorf("HTTP %d", resp.StatusCode)
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if refused == 0 || acked == 0 {
		t.Fatalf("%d lines acknowledged, %d requests refused: want both", acked, refused)
	}
	// Count what was stored through LogsQL.
	poll.Until(t, 30*time.Second, "every acknowledged line to be stored", func() bool {
		resp, err := http.Get(api + "/select/logsql/query?query=" + url.QueryEscape(`service:burst | count() n`))
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		var row struct{ N string }
		_ = json.NewDecoder(resp.Body).Decode(&row)
		return row.N == fmt.Sprint(acked)
	})
}

// The log shippers' paths take the ingest token, as OTLP does: without it,
// a 401 in the protocol's shape and nothing stored.
func TestLogShippersNeedTheIngestToken(t *testing.T) {
	t.Parallel()
	s := servertest.Start(t, func(c *server.Config) { c.Security.IngestTokens = []string{ingestToken} })
	ingest := "http://" + s.Addrs["OTLP HTTP"]
	bulk := "{\"create\":{}}\n{\"msg\":\"x\"}\n"
	for _, c := range []struct{ path, ct, body string }{
		{"/insert/elasticsearch/_bulk", "application/x-ndjson", bulk},
		{"/loki/api/v1/push", "application/json", `{"streams":[]}`},
		{"/insert/jsonline", "application/x-ndjson", `{"msg":"x"}`},
	} {
		if code, body := do(t, "POST", ingest+c.path, c.body, "Content-Type", c.ct); code != http.StatusUnauthorized {
			t.Errorf("%s without the token: %d %s, want 401", c.path, code, body)
		}
		if code, body := do(t, "POST", ingest+c.path, c.body, "Content-Type", c.ct, "Authorization", "Bearer "+ingestToken); code/100 != 2 {
			t.Errorf("%s with the token: %d %s", c.path, code, body)
		}
	}
}
