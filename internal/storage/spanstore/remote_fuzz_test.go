package spanstore

import (
	"bytes"
	"testing"

	"github.com/VictoriaMetrics/VictoriaLogs/lib/logstorage"
)

// FuzzRemoteResultRows feeds readResultRows, and the trace builder after
// it, whatever a VictoriaLogs server (or something in its place) might
// answer: it must return rows or an error, never panic.
func FuzzRemoteResultRows(f *testing.F) {
	row := `{"_time":"2026-12-02T09:41:22.338031215Z","attr.client.address":"10.0.92.177","attr.http.request.method":"GET","attr.http.response.status_code":"200","attr.http.route":"/orders/{id}","attr.order_id":"ord-51mqwvove","attr.server.address":"order-0","attr.server.port":"8080","attr.url.path":"/orders/ord-51mqwvove","attr.url.scheme":"http","attr.user_agent.original":"Mozilla/5.0 (X11; Linux x86_64) shop-web/3.4","attr.user_id":"u-41536","duration":"6794785","extra":"ClsSVxJTegBaSRocEhIKEHVwc3RyZWFtIGxhdGVuY3kKBnJlYXNvbhoSEgIYMgoMdGhyZXNob2xkX21zEgxzbG93IHJlcXVlc3QJaroPAAAAAAAiABIACgAKAAoA","kind":"2","name":"GET /orders/{id}","resource":"\"deployment.environment.name\"=\"production\" \"host.name\"=\"order-0\" \"process.pid\"=i\"7109\" \"process.runtime.name\"=\"go\" \"service.instance.id\"=\"order-3e82ec80@10.0.0.20\" \"service.namespace\"=\"shop\" \"service.version\"=\"2.14.1\" \"telemetry.sdk.language\"=\"go\" \"telemetry.sdk.name\"=\"opentelemetry\" \"telemetry.sdk.version\"=\"1.47.0\"","scope.name":"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp","scope.version":"0.58.0","service":"order","span":"56b1133719d6cf7219d7f1b717b3817b","trace_id":"d95fb9ea78eedcf2b45c6a09e072e6b5"}`
	f.Add([]byte(row + "\n"))
	f.Add([]byte(row + "\n" + row[:len(row)/2]))
	f.Add([]byte(`{"_time":"not a time","span":"zz","duration":"-1","types":"attr.x=q\nattr.y=","overflow":"\"attr.a\" \"b"}` + "\n"))
	f.Add([]byte(`{"_time":"2026-12-02T09:41:22Z","resource":"\"k\"=y\"AAA\" \"m\"=m\"{\"","attr.t":"[1,","types":"attr.t=a"}`))
	f.Add([]byte("[1,2]\n"))
	f.Add([]byte(`{"a":1,"b":{"c":null}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		b := newTraceBuilder()
		_ = readResultRows(bytes.NewReader(data), func(db *logstorage.DataBlock) {
			_, _ = db.GetTimestamps(nil)
			b.addBlock(db)
		})
	})
}

// A whole answer decodes to its spans; one cut short is an error.
func TestReadResultRows(t *testing.T) {
	row := `{"_time":"2026-12-02T09:41:22.338031215Z","attr.client.address":"10.0.92.177","attr.http.request.method":"GET","attr.http.response.status_code":"200","attr.http.route":"/orders/{id}","attr.order_id":"ord-51mqwvove","attr.server.address":"order-0","attr.server.port":"8080","attr.url.path":"/orders/ord-51mqwvove","attr.url.scheme":"http","attr.user_agent.original":"Mozilla/5.0 (X11; Linux x86_64) shop-web/3.4","attr.user_id":"u-41536","duration":"6794785","extra":"ClsSVxJTegBaSRocEhIKEHVwc3RyZWFtIGxhdGVuY3kKBnJlYXNvbhoSEgIYMgoMdGhyZXNob2xkX21zEgxzbG93IHJlcXVlc3QJaroPAAAAAAAiABIACgAKAAoA","kind":"2","name":"GET /orders/{id}","resource":"\"deployment.environment.name\"=\"production\" \"host.name\"=\"order-0\" \"process.pid\"=i\"7109\" \"process.runtime.name\"=\"go\" \"service.instance.id\"=\"order-3e82ec80@10.0.0.20\" \"service.namespace\"=\"shop\" \"service.version\"=\"2.14.1\" \"telemetry.sdk.language\"=\"go\" \"telemetry.sdk.name\"=\"opentelemetry\" \"telemetry.sdk.version\"=\"1.47.0\"","scope.name":"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp","scope.version":"0.58.0","service":"order","span":"56b1133719d6cf7219d7f1b717b3817b","trace_id":"d95fb9ea78eedcf2b45c6a09e072e6b5"}`
	var rows int
	b := newTraceBuilder()
	if err := readResultRows(bytes.NewReader([]byte(row+"\n"+row+"\n")), func(db *logstorage.DataBlock) {
		rows += db.RowsCount()
		b.addBlock(db)
	}); err != nil || rows != 2 || b.td.SpanCount() != 2 {
		t.Fatalf("two rows: %d rows, %d spans, err %v", rows, b.td.SpanCount(), err)
	}
	span := b.td.ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0)
	if span.Name() != "GET /orders/{id}" || span.Events().Len() == 0 {
		t.Errorf("span read back: name %q, %d events", span.Name(), span.Events().Len())
	}
	if err := readResultRows(bytes.NewReader([]byte(row+"\n"+row[:len(row)/2])), func(*logstorage.DataBlock) {}); err == nil {
		t.Error("an answer cut short mid-row was read without an error")
	}
}
