// Command ingest measures SkyTrail end to end on this machine: it starts a
// `skytrail server` in a fresh data directory, drives `loadgen` at it over
// OTLP (or SkyWalking) gRPC, then measures what a user gets: the ingest rate
// (acknowledged spans per second), bytes per span on disk, trace-by-ID and
// attribute-search latency at that size, the server's peak RSS, and trace-by-ID
// latency again after a restart, when no trace window is in memory.
//
//	go build -o /tmp/skytrail ./cmd/skytrail
//	go run ./bench/ingest --bin /tmp/skytrail --spans 10000000
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"time"

	"github.com/skytrail/skytrail/bench/internal/proc"
	"github.com/skytrail/skytrail/internal/loadgen"
)

func main() {
	bin := flag.String("bin", "skytrail", "skytrail binary to measure")
	spans := flag.Int("spans", 2_000_000, "spans to ingest")
	rate := flag.Float64("rate", 0, "target spans/s (0: flat out)")
	protocol := flag.String("protocol", "otlp", "otlp or skywalking")
	concurrency := flag.Int("concurrency", 8, "loadgen requests in flight")
	queries := flag.Int("queries", 200, "lookups and searches to time")
	keep := flag.String("data", "", "data directory (default: a temporary one, removed after)")
	flag.Func("server-flag", "a flag for the server, such as --wal=false (repeatable)", func(s string) error {
		serverFlags = append(serverFlags, s)
		return nil
	})
	flag.Parse()
	if err := run(*bin, *spans, *rate, loadgen.Protocol(*protocol), *concurrency, *queries, *keep); err != nil {
		fmt.Fprintln(os.Stderr, "ingest:", err)
		os.Exit(1)
	}
}

// serverFlags are passed to every server started (--server-flag).
var serverFlags []string

func run(bin string, spans int, rate float64, protocol loadgen.Protocol, concurrency, queries int, dataDir string) error {
	if dataDir == "" {
		dir, err := os.MkdirTemp("", "skytrail-bench-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		dataDir = dir
	}
	srv, err := startServer(bin, dataDir)
	if err != nil {
		return err
	}
	defer srv.stop()
	api := srv.api

	endpoint := srv.otlpAddr
	if protocol == loadgen.ProtocolSkyWalking {
		endpoint = srv.swAddr
	}
	cpuBefore := proc.CPUSeconds(srv.cmd.Process.Pid)
	ingestStart := time.Now()
	res, err := loadgen.Run(context.Background(), loadgen.Config{
		Endpoint: endpoint, Protocol: protocol, Spans: int64(spans), Rate: rate, Concurrency: concurrency,
		Progress: os.Stderr,
	})
	if err != nil {
		return err
	}
	cpu := proc.CPUSeconds(srv.cmd.Process.Pid) - cpuBefore
	fmt.Printf("ingest (%s): %s\n", protocol, res.Summary())
	fmt.Printf("server CPU during ingest: %.1f s, %.0f spans per CPU-second\n", cpu, float64(res.Spans)/cpu)

	// Let the last flush and merges settle, then weigh the data directory.
	time.Sleep(5 * time.Second)
	size := proc.DirSize(dataDir)
	fmt.Printf("disk: %.1f MiB for %d spans = %.1f bytes/span (trace-ID index included)\n",
		float64(size)/(1<<20), res.Spans, float64(size)/float64(res.Spans))

	ids, orderIDs, err := sampleTraces(api, ingestStart, time.Now())
	if err != nil {
		return err
	}
	lookup := timeQueries(queries, func(i int) string { return api + "/api/v1/traces/" + ids[i%len(ids)] })
	fmt.Printf("trace by ID (%d lookups): p50 %s, p99 %s\n", queries, lookup[0], lookup[1])
	search := timeQueries(queries, func(i int) string {
		q := url.Values{"service": {"order"}, "tag": {"order_id=" + orderIDs[i%len(orderIDs)]}, "lookback": {"24h"}, "limit": {"20"}}
		return api + "/api/v1/traces?" + q.Encode()
	})
	fmt.Printf("attribute search order_id=... (%d searches, limit 20): p50 %s, p99 %s\n", queries, search[0], search[1])
	fmt.Printf("server peak RSS: %.0f MiB\n", float64(proc.PeakRSSKiB(srv.cmd.Process.Pid))/(1<<10))

	// After a restart nothing is in memory: every lookup goes through the
	// trace-ID index on disk.
	srv.stop()
	if srv, err = startServer(bin, dataDir); err != nil {
		return err
	}
	defer srv.stop()
	cold := timeQueries(queries, func(i int) string { return srv.api + "/api/v1/traces/" + ids[i%len(ids)] })
	fmt.Printf("trace by ID after a restart (%d lookups): p50 %s, p99 %s\n", queries, cold[0], cold[1])
	return nil
}

// server is a running `skytrail server` on free loopback ports.
type server struct {
	cmd                   *exec.Cmd
	api, otlpAddr, swAddr string
	stopped               bool
}

func startServer(bin, dataDir string) (*server, error) {
	httpAddr, otlpAddr, swAddr := proc.FreeAddr(), proc.FreeAddr(), proc.FreeAddr()
	cmd := exec.Command(bin, "server", "--data", dataDir, "--http", httpAddr, "--otlp-grpc", otlpAddr,
		"--otlp-http=", "--sw-grpc", swAddr, "--sw-http=", "--log-level", "warn")
	cmd.Args = append(cmd.Args, serverFlags...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start server: %w", err)
	}
	s := &server{cmd: cmd, api: "http://" + httpAddr, otlpAddr: otlpAddr, swAddr: swAddr}
	if err := waitHealthy(s.api); err != nil {
		s.stop()
		return nil, err
	}
	return s, nil
}

// stop ends the server gracefully (it flushes everything) and waits for it.
func (s *server) stop() {
	if s.stopped {
		return
	}
	s.stopped = true
	_ = s.cmd.Process.Signal(os.Interrupt)
	_ = s.cmd.Wait()
}

func waitHealthy(api string) error {
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if resp, err := http.Get(api + "/healthz"); err == nil {
			resp.Body.Close()
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("server at %s never became healthy", api)
}

// sampleTraces picks stored trace IDs from ten moments spread over the
// ingest, so lookups hit old data as well as new, and order IDs to search for.
func sampleTraces(api string, from, to time.Time) (ids, orderIDs []string, err error) {
	for i := 0; i < 10; i++ {
		at := from.Add(time.Duration(float64(to.Sub(from)) * (float64(i) + 0.5) / 10))
		var out struct {
			Traces []struct{ TraceID string } `json:"traces"`
		}
		q := url.Values{"service": {"frontend"}, "limit": {"100"}, "end": {strconv.FormatInt(at.UnixMilli(), 10)}, "lookback": {"5s"}}
		if err := getJSON(api+"/api/v1/traces?"+q.Encode(), &out); err != nil {
			return nil, nil, err
		}
		for _, t := range out.Traces {
			ids = append(ids, t.TraceID)
		}
	}
	if len(ids) == 0 {
		return nil, nil, fmt.Errorf("no traces found after ingest")
	}
	rand.Shuffle(len(ids), func(i, j int) { ids[i], ids[j] = ids[j], ids[i] })
	for _, id := range ids[:min(50, len(ids))] {
		var tr struct {
			Spans []struct{ Attributes map[string]any } `json:"spans"`
		}
		if err := getJSON(api+"/api/v1/traces/"+id, &tr); err != nil {
			return nil, nil, err
		}
		for _, sp := range tr.Spans {
			if v, ok := sp.Attributes["order_id"]; ok {
				orderIDs = append(orderIDs, fmt.Sprint(v))
				break
			}
		}
	}
	if len(orderIDs) == 0 {
		return nil, nil, fmt.Errorf("no order_id attribute in the sampled traces")
	}
	return ids, orderIDs, nil
}

func getJSON(u string, out any) error {
	resp, err := http.Get(u)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: HTTP %d: %s", u, resp.StatusCode, body)
	}
	return json.Unmarshal(body, out)
}

// timeQueries runs n GETs one after another and returns p50 and p99.
func timeQueries(n int, url func(i int) string) [2]time.Duration {
	var took []time.Duration
	for i := 0; i < n; i++ {
		start := time.Now()
		resp, err := http.Get(url(i))
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		took = append(took, time.Since(start))
	}
	slices.Sort(took)
	return [2]time.Duration{took[len(took)/2].Round(10 * time.Microsecond), took[len(took)*99/100].Round(10 * time.Microsecond)}
}
