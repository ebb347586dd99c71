package server_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/skytrail/skytrail/internal/pipeline"
	"github.com/skytrail/skytrail/internal/server"
	"github.com/skytrail/skytrail/internal/servertest"
	"github.com/skytrail/skytrail/internal/storage/diskspace/disktest"
	"github.com/skytrail/skytrail/internal/wal"
)

// TestKillNineLosesNothingAcknowledged is issue 16's test of the
// write-ahead log: the real binary under steady load from the OpenTelemetry
// SDK is killed with SIGKILL ten times in a row and started again on the
// same data directory; afterwards every span whose export returned success
// is found.
func TestKillNineLosesNothingAcknowledged(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and kills it ten times")
	}
	bin := buildBinary(t)
	dir := t.TempDir()
	otlpAddr, httpAddr := freeAddr(t), freeAddr(t)
	var logs lockedBuffer
	srv := &process{t: t, bin: bin, args: []string{"server", "--data", dir, "--http", httpAddr, "--otlp-grpc", otlpAddr,
		"--otlp-http", "", "--sw-grpc", "", "--sw-http", "", "--memory-limit", "0"}, logs: &logs, httpAddr: httpAddr}
	srv.start()
	t.Cleanup(srv.kill)

	ctx := context.Background()
	exp, err := otlptracegrpc.New(ctx, otlptracegrpc.WithEndpoint(otlpAddr), otlptracegrpc.WithInsecure(),
		otlptracegrpc.WithTimeout(10*time.Second),
		otlptracegrpc.WithRetry(otlptracegrpc.RetryConfig{Enabled: true, InitialInterval: 50 * time.Millisecond, MaxInterval: 500 * time.Millisecond, MaxElapsedTime: time.Minute}))
	if err != nil {
		t.Fatal(err)
	}
	acked := &ackingExporter{SpanExporter: exp, spans: map[trace.TraceID][]trace.SpanID{}}
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithBatcher(acked, sdktrace.WithBatchTimeout(20*time.Millisecond), sdktrace.WithMaxExportBatchSize(200), sdktrace.WithBlocking()),
		sdktrace.WithResource(resource.NewSchemaless(attribute.String("service.name", "crashtest"), attribute.String("service.instance.id", "load-1"))),
	)
	tracer := tp.Tracer("crashtest")

	// Steady load: traces of a server span and two client spans.
	stop := make(chan struct{})
	var load sync.WaitGroup
	for g := range 2 {
		load.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				c, root := tracer.Start(ctx, fmt.Sprintf("GET /orders/%d", g), trace.WithSpanKind(trace.SpanKindServer))
				for range 2 {
					_, child := tracer.Start(c, "SELECT orders", trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(attribute.Int("i", i)))
					child.End()
				}
				root.End()
				time.Sleep(5 * time.Millisecond)
			}
		})
	}

	for kill := range 10 {
		time.Sleep(time.Duration(800+rand.IntN(1500)) * time.Millisecond)
		before := acked.count()
		srv.kill()
		t.Logf("kill %d: %d spans acknowledged so far", kill+1, before)
		srv.start()
	}
	time.Sleep(time.Second)
	close(stop)
	load.Wait()
	if err := tp.Shutdown(ctx); err != nil { // exports what is queued
		t.Fatalf("flushing the SDK: %v", err)
	}

	want := acked.snapshot()
	total := 0
	for _, ids := range want {
		total += len(ids)
	}
	if total < 1000 {
		t.Fatalf("only %d spans acknowledged: the load did not run", total)
	}
	if !strings.Contains(logs.String(), "write-ahead log replayed") {
		t.Errorf("no start replayed the write-ahead log: the test did not exercise it\n%s", tail(logs.String()))
	}

	// Readers see spans a flush interval after they were stored.
	var missing, duplicated atomic.Int64
	deadline := time.Now().Add(30 * time.Second)
	for {
		missing.Store(0)
		duplicated.Store(0)
		var firstMissing atomic.Value
		ids := make(chan trace.TraceID)
		var check sync.WaitGroup
		for range 8 {
			check.Go(func() {
				for id := range ids {
					got := fetchSpanIDs(t, httpAddr, id)
					for _, sid := range want[id] {
						switch got[sid] {
						case 0:
							missing.Add(1)
							firstMissing.CompareAndSwap(nil, id.String()+"/"+sid.String())
						case 1:
						default:
							duplicated.Add(1)
						}
					}
				}
			})
		}
		for id := range want {
			ids <- id
		}
		close(ids)
		check.Wait()
		if missing.Load() == 0 || time.Now().After(deadline) {
			if missing.Load() > 0 {
				t.Fatalf("%d of %d acknowledged spans (%d traces) missing after 10 kills, first %v\nserver log:\n%s",
					missing.Load(), total, len(want), firstMissing.Load(), tail(logs.String()))
			}
			break
		}
		time.Sleep(time.Second)
	}
	// An export that reached the log but whose answer the kill cut off is
	// sent again by the SDK: at-least-once, so a span may be stored twice.
	// The log's replay itself must not add copies of spans already stored.
	t.Logf("all %d acknowledged spans of %d traces found after 10 kills; %d stored twice (exports retried after a kill cut off their answer); %d replays",
		total, len(want), duplicated.Load(), strings.Count(logs.String(), "write-ahead log replayed"))
}

// ackingExporter remembers the spans of every export that returned
// success: what the server acknowledged.
type ackingExporter struct {
	sdktrace.SpanExporter
	mu    sync.Mutex
	spans map[trace.TraceID][]trace.SpanID
	n     int
}

func (e *ackingExporter) ExportSpans(ctx context.Context, spans []sdktrace.ReadOnlySpan) error {
	if err := e.SpanExporter.ExportSpans(ctx, spans); err != nil {
		return err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, s := range spans {
		sc := s.SpanContext()
		e.spans[sc.TraceID()] = append(e.spans[sc.TraceID()], sc.SpanID())
		e.n++
	}
	return nil
}

func (e *ackingExporter) count() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.n
}

func (e *ackingExporter) snapshot() map[trace.TraceID][]trace.SpanID {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make(map[trace.TraceID][]trace.SpanID, len(e.spans))
	for k, v := range e.spans {
		out[k] = append([]trace.SpanID(nil), v...)
	}
	return out
}

// fetchSpanIDs counts the spans of a trace the query API returns, by ID.
func fetchSpanIDs(t *testing.T, httpAddr string, id trace.TraceID) map[trace.SpanID]int {
	resp, err := http.Get("http://" + httpAddr + "/api/v1/traces/" + id.String() + "?format=otlp")
	if err != nil {
		t.Errorf("get trace %s: %v", id, err)
		return nil
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	got := map[trace.SpanID]int{}
	if resp.StatusCode == http.StatusNotFound {
		return got
	}
	if resp.StatusCode != http.StatusOK {
		t.Errorf("get trace %s: %s: %s", id, resp.Status, body)
		return got
	}
	td, err := (&ptrace.JSONUnmarshaler{}).UnmarshalTraces(body)
	if err != nil {
		t.Errorf("trace %s: %v", id, err)
		return got
	}
	rss := td.ResourceSpans()
	for i := 0; i < rss.Len(); i++ {
		sss := rss.At(i).ScopeSpans()
		for j := 0; j < sss.Len(); j++ {
			spans := sss.At(j).Spans()
			for k := 0; k < spans.Len(); k++ {
				var sid trace.SpanID
				raw := spans.At(k).SpanID()
				copy(sid[:], raw[:])
				got[sid]++
			}
		}
	}
	return got
}

// process is the skytrail binary run as a server, started and killed.
type process struct {
	t        *testing.T
	bin      string
	args     []string
	logs     *lockedBuffer
	httpAddr string
	cmd      *exec.Cmd
	exited   chan error
}

func (p *process) start() {
	p.t.Helper()
	cmd := exec.Command(p.bin, p.args...)
	cmd.Stdout, cmd.Stderr = p.logs, p.logs
	if err := cmd.Start(); err != nil {
		p.t.Fatal(err)
	}
	p.cmd = cmd
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	deadline := time.Now().Add(60 * time.Second)
	for {
		select {
		case err := <-exited:
			p.cmd = nil
			p.t.Fatalf("the server exited at start: %v\n%s", err, tail(p.logs.String()))
		default:
		}
		resp, err := http.Get("http://" + p.httpAddr + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				p.exited = exited
				return
			}
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("the server did not answer /healthz in 60 s\n%s", tail(p.logs.String()))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// kill sends SIGKILL and waits for the process to be gone.
func (p *process) kill() {
	if p.cmd == nil || p.cmd.Process == nil {
		return
	}
	_ = p.cmd.Process.Kill()
	<-p.exited
	p.cmd = nil
}

// buildBinary builds cmd/skytrail into the test's temporary directory.
func buildBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "skytrail")
	cmd := exec.Command("go", "build", "-o", bin, "github.com/skytrail/skytrail/cmd/skytrail")
	cmd.Env = os.Environ()
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// freeAddr is a 127.0.0.1 address nothing listens on now, for a server
// that must be found at the same address after each restart.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	return addr
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

func tail(s string) string {
	if len(s) > 6000 {
		s = s[len(s)-6000:]
	}
	return s
}

// TestReplayOnAFullDiskKeepsTheRecords: records a killed server left in its
// write-ahead log, which the stores refuse at the next start for lack of
// disk space, stop that start with a message saying so and stay in the log;
// the start after space is freed stores them.
func TestReplayOnAFullDiskKeepsTheRecords(t *testing.T) {
	disk := disktest.Tmpfs(t, 64<<20)
	const minFree = 16 << 20
	dir := filepath.Join(disk, "data")
	// What a killed server leaves: batches in the log, not in the stores.
	log, err := wal.Open(wal.Config{Dir: filepath.Join(dir, "wal")})
	if err != nil {
		t.Fatal(err)
	}
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", "left-in-the-log")
	sp := rs.ScopeSpans().AppendEmpty().Spans().AppendEmpty()
	traceID := pcommon.TraceID{0xaa, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}
	sp.SetTraceID(traceID)
	sp.SetSpanID(pcommon.SpanID{0xaa, 1})
	sp.SetName("GET /kept")
	sp.SetStartTimestamp(pcommon.NewTimestampFromTime(time.Now().Add(-time.Minute)))
	sp.SetEndTimestamp(pcommon.NewTimestampFromTime(time.Now().Add(-time.Minute + time.Millisecond)))
	batch := pipeline.TracesOf(td)
	rec, err := pipeline.EncodeRecord(&batch)
	if err != nil {
		t.Fatal(err)
	}
	appended, err := log.Append(context.Background(), rec)
	if err == nil {
		err = appended.Durable()
	}
	if err != nil {
		t.Fatal(err)
	}
	appended.Done()
	_ = log.Close()

	unfill := disktest.Fill(t, disk, minFree/2)
	cfg := servertest.Config(dir)
	cfg.MinFreeDisk = minFree
	if s, err := server.Start(cfg); err == nil {
		_ = s.Shutdown(context.Background())
		t.Fatal("the server started with its write-ahead log unreplayed: the stores could not take the records")
	} else if !strings.Contains(err.Error(), "replaying the write-ahead log") || !strings.Contains(err.Error(), "free disk space") {
		t.Fatalf("start on a full disk: %v; want it to say the replay failed and why", err)
	}

	unfill()
	s := servertest.StartIn(t, dir, func(c *server.Config) { c.MinFreeDisk = minFree })
	s.Spans.Flush()
	var tr nativeTrace
	api := "http://" + s.Addrs["query API"]
	if code := servertest.GetJSON(t, api+"/api/v1/traces/"+hex.EncodeToString(traceID[:]), &tr); code != http.StatusOK || len(tr.Spans) != 1 {
		t.Fatalf("the span left in the log: HTTP %d, %d spans; want it stored by the replay", code, len(tr.Spans))
	}
}

// TestWALOffWarnsOfAnUnreplayedLog: started with --wal=false on a data
// directory whose log holds records, the server says they are not replayed.
func TestWALOffWarnsOfAnUnreplayedLog(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	log, err := wal.Open(wal.Config{Dir: filepath.Join(dir, "wal")})
	if err != nil {
		t.Fatal(err)
	}
	appended, err := log.Append(context.Background(), []byte{1, 9})
	if err != nil {
		t.Fatal(err)
	}
	appended.Done()
	_ = log.Close()
	var logs lockedBuffer
	servertest.StartIn(t, dir, func(c *server.Config) {
		c.WAL = false
		c.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	})
	if !strings.Contains(logs.String(), "holds one from a run with it on; it is not replayed") {
		t.Fatalf("no warning of the unreplayed log:\n%s", tail(logs.String()))
	}
}
