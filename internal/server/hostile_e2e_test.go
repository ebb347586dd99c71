package server_test

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"

	"github.com/skytrail/skytrail/internal/server"
	"github.com/skytrail/skytrail/internal/servertest"
	"github.com/skytrail/skytrail/internal/testutil/poll"
)

// httpListeners are the server's HTTP listeners, with a path each answers.
var httpListeners = []struct{ name, path string }{
	{"query API", "/healthz"},
	{"OTLP HTTP", "/v1/traces"},
	{"SkyWalking HTTP", "/v3/segments"},
}

// closedWithin tells whether the server closes c within d, reading (and
// discarding) whatever it sends first.
func closedWithin(c net.Conn, d time.Duration) bool {
	_ = c.SetReadDeadline(time.Now().Add(d))
	_, err := io.Copy(io.Discard, c)
	return err == nil // EOF: the server closed it; a deadline error: it did not
}

func TestSlowClientsAreCutOff(t *testing.T) {
	t.Parallel()
	s := servertest.Start(t, func(c *server.Config) {
		c.Security.ReadHeaderTimeout = 300 * time.Millisecond
		c.Security.ReadTimeout = 600 * time.Millisecond
		c.Security.IdleTimeout = 400 * time.Millisecond
	})
	for _, l := range httpListeners {
		addr := s.Addrs[l.name]
		// Headers that never end (slowloris).
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(c, "POST %s HTTP/1.1\r\nHost: x\r\nX-Slow: 1\r\n", l.path)
		if !closedWithin(c, 5*time.Second) {
			t.Errorf("%s: a client that never finishes its headers is still connected after 5 s (read-header timeout 300ms)", l.name)
		}
		c.Close()

		// A body that never arrives: the request ends at the read timeout.
		c, err = net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(c, "POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n[{", l.path)
		start := time.Now()
		if !closedWithin(c, 5*time.Second) {
			t.Errorf("%s: a body that never arrives holds the connection past 5 s (read timeout 600ms)", l.name)
		}
		t.Logf("%s: slow body cut off after %s", l.name, time.Since(start).Round(10*time.Millisecond))
		c.Close()

		// An idle kept-alive connection is closed.
		c, err = net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(c, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if !closedWithin(c, 5*time.Second) {
			t.Errorf("%s: an idle kept-alive connection is still open after 5 s (idle timeout 400ms)", l.name)
		}
		c.Close()
	}
	if n := counter(t, s, "skytrail_receiver_spans_rejected_total", "receiver", "otlp-http", "reason", "abandoned"); n < 1 {
		t.Errorf("the OTLP body cut off by the read timeout was not counted as abandoned")
	}
	// A gRPC connection that never completes its handshake is closed too.
	for _, name := range []string{"OTLP gRPC", "SkyWalking gRPC"} {
		c, err := net.Dial("tcp", s.Addrs[name])
		if err != nil {
			t.Fatal(err)
		}
		if !closedWithin(c, 5*time.Second) {
			t.Errorf("%s: a connection that sends nothing is still open after 5 s (handshake timeout 300ms)", name)
		}
		c.Close()
	}
	// The slow bodies' budget was given back: ingest still works.
	code, body := do(t, "POST", "http://"+s.Addrs["OTLP HTTP"]+"/v1/traces", "{}", "Content-Type", "application/json")
	if code != http.StatusOK {
		t.Errorf("after the slow clients, an export: %d %s", code, body)
	}
}

func TestConnectionLimit(t *testing.T) {
	t.Parallel()
	s := servertest.Start(t, func(c *server.Config) { c.Security.MaxConnections = 2 })
	addr := s.Addrs["query API"]
	var held []net.Conn
	for range 2 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		// A request answered, so the server has surely accepted the connection.
		fmt.Fprintf(c, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		held = append(held, c)
	}
	client := &http.Client{Timeout: 500 * time.Millisecond, Transport: &http.Transport{DisableKeepAlives: true}}
	if resp, err := client.Get("http://" + addr + "/healthz"); err == nil {
		resp.Body.Close()
		t.Fatal("a third connection was served while two were open with a limit of 2")
	}
	held[0].Close()
	poll.Until(t, 5*time.Second, "a connection to be served once one closed", func() bool {
		resp, err := client.Get("http://" + addr + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	held[1].Close()
}

// gzipBomb is size bytes of zeros, gzipped: 16 MiB compressed once and
// repeated as gzip members (readers take concatenated members as one
// stream), so the test does not spend seconds compressing a gigabyte.
func gzipBomb(t *testing.T, size int64) []byte {
	t.Helper()
	var member bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&member, gzip.BestCompression)
	zeros := make([]byte, 1<<20)
	for range 16 {
		_, _ = zw.Write(zeros)
	}
	_ = zw.Close()
	return bytes.Repeat(member.Bytes(), int(size/(16<<20)))
}

func TestGzipBombIsRefusedEarly(t *testing.T) {
	t.Parallel()
	s := servertest.Start(t)
	bomb := gzipBomb(t, 1<<30)
	t.Logf("a %d-byte gzip body that inflates to 1 GiB", len(bomb))
	for _, target := range []struct{ listener, path, receiver string }{
		{"OTLP HTTP", "/v1/traces", "otlp-http"},
		{"SkyWalking HTTP", "/v3/segments", "skywalking-http"},
	} {
		req, _ := http.NewRequest("POST", "http://"+s.Addrs[target.listener]+target.path, bytes.NewReader(bomb))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Content-Encoding", "gzip")
		start := time.Now()
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			// The server may answer and close before the client sent it all.
			t.Logf("%s: %v", target.listener, err)
		} else {
			resp.Body.Close()
			if resp.StatusCode != http.StatusRequestEntityTooLarge {
				t.Errorf("%s: a gzip bomb got %s, want 413", target.listener, resp.Status)
			}
		}
		d := time.Since(start)
		t.Logf("%s: refused in %s", target.listener, d.Round(time.Millisecond))
		if d > 10*time.Second {
			t.Errorf("%s: the bomb took %s to refuse", target.listener, d)
		}
		if n := counter(t, s, "skytrail_receiver_spans_rejected_total", "receiver", target.receiver, "reason", "too_large"); n < 1 {
			t.Errorf("%s: the bomb was not counted as too_large", target.listener)
		}
	}
	if code, _ := do(t, "GET", "http://"+s.Addrs["query API"]+"/healthz", ""); code != http.StatusOK {
		t.Errorf("after the bombs, /healthz: %d", code)
	}
}

// postOTLP sends td to the OTLP HTTP receiver and returns the status and
// the response's partial-success message.
func postOTLP(t *testing.T, s *server.Server, td ptrace.Traces) (int, string) {
	t.Helper()
	body, err := ptraceotlp.NewExportRequestFromTraces(td).MarshalProto()
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Post("http://"+s.Addrs["OTLP HTTP"]+"/v1/traces", "application/x-protobuf", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return resp.StatusCode, string(b)
	}
	out := ptraceotlp.NewExportResponse()
	if err := out.UnmarshalProto(b); err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, out.PartialSuccess().ErrorMessage()
}

func newSpan(td ptrace.Traces, service string, n int) ptrace.Span {
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", service)
	sp := rs.ScopeSpans().AppendEmpty().Spans().AppendEmpty()
	var tid [16]byte
	var sid [8]byte
	copy(tid[:], fmt.Sprintf("%016d", n))
	copy(sid[:], fmt.Sprintf("%08d", n%100000000))
	sid[0] |= 1
	sp.SetTraceID(pcommon.TraceID(tid))
	sp.SetSpanID(pcommon.SpanID(sid))
	sp.SetName("op")
	now := time.Now()
	sp.SetStartTimestamp(pcommon.NewTimestampFromTime(now.Add(-time.Millisecond)))
	sp.SetEndTimestamp(pcommon.NewTimestampFromTime(now))
	return sp
}

// heapAfterGC is the live heap, for bounding what a bomb costs. Tests in
// parallel share the process, so the bound is generous.
func heapAfterGC() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// TestResourceBombs: 100k attributes on a span, 50k distinct service names
// and a million distinct attribute keys are refused or capped with a
// message that says so; the server stays up and its memory bounded. Not
// parallel: it measures the process' heap.
func TestResourceBombs(t *testing.T) {
	s := servertest.Start(t, func(c *server.Config) { c.Analysis.MaxServices = 1000 })
	api := "http://" + s.Addrs["query API"]
	before := heapAfterGC()

	// 100k attributes on one span: refused, saying why.
	td := ptrace.NewTraces()
	sp := newSpan(td, "bomb", 1)
	raw := make(map[string]any, 100_000)
	for i := range 100_000 {
		raw[fmt.Sprintf("k%d", i)] = "v" // FromRaw: PutStr would look for each key first, O(n²)
	}
	if err := sp.Attributes().FromRaw(raw); err != nil {
		t.Fatal(err)
	}
	code, msg := postOTLP(t, s, td)
	if code != http.StatusBadRequest || !strings.Contains(msg, "100000 attributes, over the limit of 256") {
		t.Errorf("a span with 100k attributes: %d %q, want it refused for its attributes", code, msg)
	}
	t.Logf("100k attributes: HTTP %d", code)

	began := time.Now()
	// 50k distinct services, 1,000 to a request: all stored and listed; the
	// analysis keeps figures for MaxServices of them (its own tests show the
	// cap), so its memory does not grow with them.
	for r := range 50 {
		td := ptrace.NewTraces()
		for i := range 1000 {
			newSpan(td, fmt.Sprintf("svc-%05d", r*1000+i), 10+r*1000+i)
		}
		if code, msg := postOTLP(t, s, td); code != http.StatusOK || msg != "" {
			t.Fatalf("request %d of distinct services: %d %q", r, code, msg)
		}
	}

	t.Logf("50k services sent after %s", time.Since(began).Round(time.Millisecond))

	// A million distinct attribute keys over time: 10k spans of a hundred
	// new keys each, in one service. Its column budget sends the keys past
	// it into a packed field, so no merge of its parts exceeds the
	// engine's column limit and no span is dropped.
	for r := range 10 {
		td := ptrace.NewTraces()
		for i := range 1000 {
			n := r*1000 + i
			sp := newSpan(td, "keys", 1_000_000+n)
			attrs := make(map[string]any, 100)
			for k := range 100 {
				attrs[fmt.Sprintf("key-%d-%d", n, k)] = "v"
			}
			if err := sp.Attributes().FromRaw(attrs); err != nil {
				t.Fatal(err)
			}
		}
		if code, msg := postOTLP(t, s, td); code != http.StatusOK || msg != "" {
			t.Fatalf("request %d of distinct keys: %d %q", r, code, msg)
		}
	}
	t.Logf("a million keys sent after %s", time.Since(began).Round(time.Millisecond))

	// Still answering, promptly; the services list is whole.
	start := time.Now()
	var services struct{ Services []any }
	poll.Until(t, waitTimeout, "every service listed", func() bool {
		return servertest.GetJSON(t, api+"/api/v1/services", &services) == http.StatusOK && len(services.Services) >= 50_000
	})
	t.Logf("/api/v1/services lists %d services (%s)", len(services.Services), time.Since(start).Round(time.Millisecond))
	// The last span of the million keys is stored whole, its keys all there
	// (those past the column budget read back from the packed field).
	last := newSpan(ptrace.NewTraces(), "keys", 1_000_000+9999).TraceID()
	var tr nativeTrace
	poll.Until(t, waitTimeout, "the last span of the million keys", func() bool {
		return servertest.GetJSON(t, api+"/api/v1/traces/"+hex.EncodeToString(last[:]), &tr) == http.StatusOK && len(tr.Spans) == 1
	})
	if n := len(tr.Spans[0].Attributes); n != 100 {
		t.Errorf("the span has %d of its 100 attributes", n)
	}
	after := heapAfterGC()
	t.Logf("live heap %d MiB before, %d MiB after; checks done after %s", before>>20, after>>20, time.Since(began).Round(time.Millisecond))
	if after > before+512<<20 {
		t.Errorf("the live heap grew by %d MiB", (after-before)>>20)
	}
	if code, _ := do(t, "GET", api+"/healthz", ""); code != http.StatusOK {
		t.Errorf("/healthz after the bombs: %d", code)
	}
}
