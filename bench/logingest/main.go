// Command logingest measures log ingest on this machine, SkyTrail beside
// VictoriaLogs in the same run (issue 13): it starts the real `skytrail
// server` (embedded storage) and a real victoria-logs as processes of
// their own, sends both the same generated lines (loadgen.LogLines: about
// 337 bytes of zap-style JSON, 8 fields) over OTLP/HTTP protobuf and over
// the Elasticsearch bulk API from the same concurrent clients, and reports
// for each lines a second, the server's CPU a line (from /proc/<pid>/stat,
// so the clients' CPU is not counted) and bytes on disk a line. Then it
// sends spans at a fixed rate to SkyTrail, alone and with log lines sent
// flat out beside them, and reports what the spans got: rate, request
// latency, retries and errors.
//
//	go run ./bench/logingest
//
// builds ./cmd/skytrail and finds (or builds, minutes the first time)
// victoria-logs v1.52.1 in the tests' cache; --bin and --vl name binaries
// instead.
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"text/tabwriter"
	"time"

	"go.opentelemetry.io/collector/pdata/plog/plogotlp"

	"github.com/skytrail/skytrail/bench/internal/proc"
	"github.com/skytrail/skytrail/internal/loadgen"
	"github.com/skytrail/skytrail/internal/testutil/victorialogs"
)

type options struct {
	bin, vl   string
	duration  time.Duration
	clients   int
	batch     int
	pool      int
	spanRate  float64
	skipVL    bool
	skipST    bool
	skipSpans bool
	profiles  string
}

func main() {
	var o options
	flag.StringVar(&o.bin, "bin", "", "skytrail binary (default: build ./cmd/skytrail into a temporary directory)")
	flag.StringVar(&o.vl, "vl", "", "victoria-logs binary (default: the tests' cached build of "+victorialogs.Version+", built if missing)")
	flag.DurationVar(&o.duration, "duration", 10*time.Second, "how long each rate is measured")
	flag.IntVar(&o.clients, "clients", 4, "log requests in flight at once")
	flag.IntVar(&o.batch, "batch", 1000, "log lines a request")
	flag.IntVar(&o.pool, "pool", 100, "distinct requests generated and cycled through; each is sent once first for the disk figure")
	flag.Float64Var(&o.spanRate, "span-rate", 20000, "spans a second sent to SkyTrail, alone and beside the log load")
	flag.BoolVar(&o.skipVL, "skip-vl", false, "do not measure VictoriaLogs")
	flag.BoolVar(&o.skipST, "skip-skytrail", false, "do not measure SkyTrail's log ingest (to run VictoriaLogs alone, say beside a SkyTrail-only run, so both meet the same machine)")
	flag.BoolVar(&o.skipSpans, "skip-spans", false, "do not measure spans beside logs")
	flag.StringVar(&o.profiles, "profiles", "", "write a CPU profile of each server over each timed log run into this directory")
	flag.Func("server-flag", "a flag for every SkyTrail server, such as --wal-sync=100ms (repeatable)", func(f string) error {
		serverFlags = append(serverFlags, f)
		return nil
	})
	flag.Parse()
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "logingest:", err)
		os.Exit(1)
	}
}

// serverFlags are passed to every SkyTrail server started (--server-flag).
var serverFlags []string

// protocol is one way of sending the lines.
type protocol struct {
	name        string
	contentType string
	bodies      [][]byte
}

// result is one measured rate.
type result struct {
	target, protocol string
	lines            int64
	wall             time.Duration
	serverCPU        float64 // seconds
	clientCPU        float64 // seconds, this process
	load             string
	diskPerLine      float64
	peakRSSMiB       float64 // the server's, over the timed run
	retries, errors  int64
}

func (r result) linesPerSec() float64 { return float64(r.lines) / r.wall.Seconds() }
func (r result) cpuPerLine() float64  { return r.serverCPU * 1e6 / float64(r.lines) }

func run(o options) error {
	tmp, err := os.MkdirTemp("", "logingest-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	if o.bin == "" {
		o.bin = filepath.Join(tmp, "skytrail")
		fmt.Fprintln(os.Stderr, "building ./cmd/skytrail ...")
		cmd := exec.Command("go", "build", "-o", o.bin, "github.com/skytrail/skytrail/cmd/skytrail")
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("build skytrail (run from the repository, or pass --bin): %w", err)
		}
	}
	if o.vl == "" && !o.skipVL {
		fmt.Fprintln(os.Stderr, "finding victoria-logs", victorialogs.Version, "(built from the module proxy if not cached: minutes) ...")
		if o.vl, err = victorialogs.Binary(); err != nil {
			return fmt.Errorf("victoria-logs: %w (pass --vl or --skip-vl)", err)
		}
	}

	protos, perLine := makeBodies(o.pool, o.batch)
	fmt.Printf("lines: loadgen.LogLines, %.0f bytes of JSON a line on average, %d distinct requests of %d lines\n",
		perLine, o.pool, o.batch)
	fmt.Printf("machine: %d CPUs; load average at start %s\n", numCPU(), loadAvg())

	var targets []target
	if !o.skipST {
		targets = append(targets, skytrailTarget(o.bin, o.profiles != ""))
	}
	if !o.skipVL {
		targets = append(targets, vlTarget(o.vl, o.profiles != ""))
	}
	var results []result
	for _, t := range targets {
		for _, p := range protos {
			r, err := measureLogs(t, p, o, filepath.Join(tmp, t.name+"-"+p.name))
			if err != nil {
				return fmt.Errorf("%s over %s: %w", t.name, p.name, err)
			}
			results = append(results, r)
			fmt.Printf("%-13s %-9s %9.0f lines/s  %5.2f µs server CPU a line  %5.1f B on disk a line  peak RSS %.0f MiB  (load %s; client CPU %.2f µs a line; retries %d, errors %d)\n",
				r.target, r.protocol, r.linesPerSec(), r.cpuPerLine(), r.diskPerLine, r.peakRSSMiB, r.load,
				r.clientCPU*1e6/float64(r.lines), r.retries, r.errors)
		}
	}
	var spans []spanResult
	if !o.skipSpans {
		if spans, err = measureSpans(skytrailTarget(o.bin, false), protos[0], o, filepath.Join(tmp, "spans")); err != nil {
			return fmt.Errorf("spans beside logs: %w", err)
		}
	}
	printSummary(results, spans, o)
	return nil
}

// makeBodies generates pool requests of batch lines each, as OTLP protobuf
// and as an Elasticsearch bulk body (a create action and the line's JSON,
// as Filebeat sends). It returns them and the average JSON line size.
func makeBodies(pool, batch int) ([]protocol, float64) {
	otlp := protocol{name: "otlp-http", contentType: "application/x-protobuf"}
	bulk := protocol{name: "es-bulk", contentType: "application/x-ndjson"}
	now := time.Now()
	var jsonBytes int
	for i := range pool {
		lines := loadgen.LogLines(batch, uint64(i+1), now)
		body, err := plogotlp.NewExportRequestFromLogs(loadgen.Logs(lines)).MarshalProto()
		if err != nil {
			panic(err)
		}
		otlp.bodies = append(otlp.bodies, body)
		bulkBody, n := loadgen.BulkBody(lines)
		jsonBytes += n
		bulk.bodies = append(bulk.bodies, bulkBody)
	}
	return []protocol{otlp, bulk}, float64(jsonBytes) / float64(pool*batch)
}

// measureLogs measures one target and protocol in a fresh data directory:
// it sends every distinct request once, stops the server (which flushes)
// and weighs the directory; then it starts the server again on that
// directory and sends requests flat out for o.duration.
func measureLogs(t target, p protocol, o options, dir string) (result, error) {
	r := result{target: t.name, protocol: p.name}
	srv, err := t.start(dir)
	if err != nil {
		return r, err
	}
	once, err := drive(srv.logsURL(p.name), p, o.clients, o.batch, 0)
	if err != nil {
		srv.stop()
		return r, err
	}
	srv.stop()
	r.diskPerLine = float64(proc.DirSize(dir)) / float64(once.lines)

	if srv, err = t.start(dir); err != nil {
		return r, err
	}
	defer srv.stop()
	var profiled chan error
	if srv.pprof != "" {
		profiled = make(chan error, 1)
		go func() {
			profiled <- saveProfile(srv.pprof, o.duration-time.Second, filepath.Join(o.profiles, t.name+"-"+p.name+".pprof"))
		}()
	}
	cpu0, self0 := proc.CPUSeconds(srv.pid()), selfCPU()
	d, err := drive(srv.logsURL(p.name), p, o.clients, o.batch, o.duration)
	if err != nil {
		return r, err
	}
	if profiled != nil {
		if err := <-profiled; err != nil {
			return r, err
		}
	}
	r.serverCPU, r.clientCPU = proc.CPUSeconds(srv.pid())-cpu0, selfCPU()-self0
	r.lines, r.wall, r.retries, r.errors = d.lines, d.wall, d.retries, d.errors
	r.peakRSSMiB = float64(proc.PeakRSSKiB(srv.pid())) / 1024
	r.load = loadAvg()
	return r, nil
}

// driven is what drive achieved.
type driven struct {
	lines, retries, errors int64
	wall                   time.Duration
}

// drive sends p's requests from clients goroutines: each request once when
// duration is 0, else round and round until duration has passed. A request
// answered 429 or 503 (the server asks to retry) is sent again after a
// pause; lines count once a 200 answers them with no error reported inside.
func drive(url string, p protocol, clients, batch int, duration time.Duration) (driven, error) {
	var (
		next                   atomic.Int64
		lines, retries, errors atomic.Int64
		mu                     sync.Mutex
		firstErr               error
		wg                     sync.WaitGroup
	)
	start := time.Now()
	deadline := start.Add(duration)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: clients}, Timeout: time.Minute}
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if duration == 0 && i >= int64(len(p.bodies)) || duration > 0 && time.Now().After(deadline) {
					break
				}
				body := p.bodies[i%int64(len(p.bodies))]
				for {
					ok, retry, err := post(client, url, p, body)
					if retry {
						retries.Add(1)
						time.Sleep(50 * time.Millisecond)
						continue
					}
					if err != nil {
						errors.Add(1)
						mu.Lock()
						if firstErr == nil {
							firstErr = err
						}
						mu.Unlock()
					}
					if ok {
						lines.Add(int64(batch))
					}
					break
				}
			}
		}()
	}
	wg.Wait()
	d := driven{lines: lines.Load(), retries: retries.Load(), errors: errors.Load(), wall: time.Since(start)}
	if d.lines == 0 {
		return d, fmt.Errorf("no lines acknowledged: %v", firstErr)
	}
	if firstErr != nil {
		fmt.Fprintf(os.Stderr, "  %s: %d failed requests, the first: %v\n", url, d.errors, firstErr)
	}
	return d, nil
}

// post sends one request and reads what the server said of it.
func post(client *http.Client, url string, p protocol, body []byte) (ok, retry bool, err error) {
	resp, err := client.Post(url, p.contentType, bytes.NewReader(body))
	if err != nil {
		return false, false, err
	}
	answer, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return false, false, err
	}
	switch {
	case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable:
		return false, true, nil
	case resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusNoContent:
		return false, false, fmt.Errorf("HTTP %d: %.200s", resp.StatusCode, answer)
	}
	if p.name == "es-bulk" && bytes.Contains(answer, []byte(`"errors":true`)) {
		return false, false, fmt.Errorf("bulk answer reports errors: %.300s", answer)
	}
	if p.name == "otlp-http" && len(answer) > 0 && strings.Contains(resp.Header.Get("Content-Type"), "protobuf") {
		er := plogotlp.NewExportResponse()
		if err := er.UnmarshalProto(answer); err == nil && er.PartialSuccess().RejectedLogRecords() > 0 {
			return false, false, fmt.Errorf("%d records rejected: %s", er.PartialSuccess().RejectedLogRecords(), er.PartialSuccess().ErrorMessage())
		}
	}
	return true, false, nil
}

// spanResult is what spans got in one configuration.
type spanResult struct {
	name          string
	res           loadgen.Result
	linesBeside   float64 // log lines a second sent at the same time
	serverCPU     float64
	load          string
	spanRateAsked float64
}

// measureSpans sends spans at o.spanRate to a fresh SkyTrail for
// o.duration alone, then for o.duration again with log lines sent flat out
// over OTLP/HTTP beside them.
func measureSpans(t target, logs protocol, o options, dir string) ([]spanResult, error) {
	srv, err := t.start(dir)
	if err != nil {
		return nil, err
	}
	defer srv.stop()
	var out []spanResult
	for _, beside := range []bool{false, true} {
		sr := spanResult{name: "spans alone", spanRateAsked: o.spanRate}
		if beside {
			sr.name = "spans + logs"
		}
		cpu0 := proc.CPUSeconds(srv.pid())
		var wg sync.WaitGroup
		var d driven
		var logErr error
		if beside {
			wg.Add(1)
			go func() {
				defer wg.Done()
				d, logErr = drive(srv.logsURL(logs.name), logs, o.clients, o.batch, o.duration)
			}()
		}
		res, err := loadgen.Run(context.Background(), loadgen.Config{
			Endpoint: srv.otlpGRPC, Rate: o.spanRate, Duration: o.duration, Concurrency: 4,
		})
		wg.Wait()
		if err != nil {
			return nil, err
		}
		if logErr != nil {
			return nil, logErr
		}
		sr.res, sr.serverCPU, sr.load = res, proc.CPUSeconds(srv.pid())-cpu0, loadAvg()
		if beside {
			sr.linesBeside = float64(d.lines) / d.wall.Seconds()
		}
		fmt.Printf("%-13s %s; server CPU %.1f s; load %s\n", sr.name, res.Summary(), sr.serverCPU, sr.load)
		out = append(out, sr)
	}
	return out, nil
}

func printSummary(rs []result, spans []spanResult, o options) {
	fmt.Printf("\nSummary (%d clients, %d lines a request, %s a rate; load average now %s, %d CPUs)\n", o.clients, o.batch, o.duration, loadAvg(), numCPU())
	w := tabwriter.NewWriter(os.Stdout, 2, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "target\tprotocol\tlines/s\tserver CPU µs/line\tlines/s on 2 free cores (derived)\tB on disk/line\tpeak RSS MiB\tload\t")
	byKey := map[string]result{}
	for _, r := range rs {
		byKey[r.target+" "+r.protocol] = r
		fmt.Fprintf(w, "%s\t%s\t%.0f\t%.2f\t%.0f\t%.1f\t%.0f\t%s\t\n", r.target, r.protocol, r.linesPerSec(), r.cpuPerLine(), 2e6/r.cpuPerLine(), r.diskPerLine, r.peakRSSMiB, r.load)
	}
	w.Flush()
	for _, p := range []string{"otlp-http", "es-bulk"} {
		s, okS := byKey["skytrail "+p]
		v, okV := byKey["victorialogs "+p]
		if okS && okV {
			fmt.Printf("SkyTrail/VictoriaLogs over %s: lines/s %.2f, server CPU a line %.2f, disk a line %.2f\n",
				p, s.linesPerSec()/v.linesPerSec(), s.cpuPerLine()/v.cpuPerLine(), s.diskPerLine/v.diskPerLine)
		}
	}
	if len(spans) > 0 {
		fmt.Printf("\nSpans at %.0f/s asked, to SkyTrail over OTLP gRPC (4 in flight), alone and with OTLP log lines flat out beside them\n", o.spanRate)
		w = tabwriter.NewWriter(os.Stdout, 2, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(w, "run\tspans/s\tp50\tp99\tretries\terrors\tlog lines/s beside\tserver CPU s\tload\t")
		for _, s := range spans {
			fmt.Fprintf(w, "%s\t%.0f\t%s\t%s\t%d\t%d\t%.0f\t%.1f\t%s\t\n", s.name, s.res.SpansPerSecond,
				s.res.LatencyP50.Round(10*time.Microsecond), s.res.LatencyP99.Round(10*time.Microsecond),
				sum(s.res.Retries), sum(s.res.Errors)+int(s.res.FailedSpans), s.linesBeside, s.serverCPU, s.load)
		}
		w.Flush()
	}
	fmt.Println("\"on 2 free cores\" is derived: 2 CPU-seconds a second divided by the server's CPU a line, clients not counted.")
}

func sum(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

// target is a server program that stores log lines.
type target struct {
	name  string
	start func(dir string) (*server, error)
}

// server is a running target on free loopback ports.
type server struct {
	cmd            *exec.Cmd
	otlpLogs, bulk string
	otlpGRPC       string
	pprof          string // host:port of /debug/pprof, "" when off
	stopped        bool
	output         *bytes.Buffer
}

func (s *server) pid() int { return s.cmd.Process.Pid }

func (s *server) logsURL(protocol string) string {
	if protocol == "es-bulk" {
		return s.bulk
	}
	return s.otlpLogs
}

func skytrailTarget(bin string, profile bool) target {
	return target{name: "skytrail", start: func(dir string) (*server, error) {
		httpAddr, otlpGRPC, otlpHTTP := proc.FreeAddr(), proc.FreeAddr(), proc.FreeAddr()
		s := &server{otlpLogs: "http://" + otlpHTTP + "/v1/logs", bulk: "http://" + otlpHTTP + "/insert/elasticsearch/_bulk", otlpGRPC: otlpGRPC}
		s.cmd = exec.Command(bin, "server", "--data", dir, "--http", httpAddr, "--otlp-grpc", otlpGRPC,
			"--otlp-http", otlpHTTP, "--sw-grpc=", "--sw-http=", "--log-level", "warn")
		if profile {
			s.pprof = proc.FreeAddr()
			s.cmd.Args = append(s.cmd.Args, "--pprof", s.pprof)
		}
		s.cmd.Args = append(s.cmd.Args, serverFlags...)
		return s, s.run("http://" + httpAddr + "/healthz")
	}}
}

// vlTarget runs victoria-logs. The bulk requests name the fields the zap
// lines use for the message and the time, and the service as the stream,
// as a Filebeat user would configure it; SkyTrail finds them by itself.
func vlTarget(bin string, profile bool) target {
	return target{name: "victorialogs", start: func(dir string) (*server, error) {
		addr := proc.FreeAddr()
		s := &server{otlpLogs: "http://" + addr + "/insert/opentelemetry/v1/logs",
			bulk: "http://" + addr + "/insert/elasticsearch/_bulk?_msg_field=msg&_time_field=ts&_stream_fields=service.name"}
		s.cmd = exec.Command(bin, "-httpListenAddr="+addr, "-storageDataPath="+dir, "-loggerLevel=WARN", "-retentionPeriod=30d")
		if profile {
			s.pprof = addr // victoria-logs serves /debug/pprof beside its API
		}
		return s, s.run("http://" + addr + "/health")
	}}
}

func (s *server) run(health string) error {
	s.output = &bytes.Buffer{}
	s.cmd.Stdout, s.cmd.Stderr = s.output, s.output
	if err := s.cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", s.cmd.Path, err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if resp, err := http.Get(health); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	s.stop()
	return fmt.Errorf("%s never became healthy at %s: %s", s.cmd.Path, health, s.output)
}

// stop ends the server gracefully (it flushes what it holds) and waits.
func (s *server) stop() {
	if s.stopped {
		return
	}
	s.stopped = true
	_ = s.cmd.Process.Signal(os.Interrupt)
	done := make(chan error, 1)
	go func() { done <- s.cmd.Wait() }()
	select {
	case err := <-done:
		var exit *exec.ExitError
		if err != nil && !errors.As(err, &exit) {
			fmt.Fprintln(os.Stderr, "wait:", err)
		}
	case <-time.After(60 * time.Second):
		_ = s.cmd.Process.Kill()
		<-done
	}
}

// saveProfile writes a CPU profile of the server over the next d to path.
func saveProfile(addr string, d time.Duration, path string) error {
	resp, err := http.Get(fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", addr, max(1, int(d.Seconds()))))
	if err != nil {
		return fmt.Errorf("profile: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("profile: HTTP %d", resp.StatusCode)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return fmt.Errorf("profile: %w", err)
	}
	return f.Close()
}

// selfCPU is this process' user+system CPU seconds: the clients' cost.
func selfCPU() float64 {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}

func loadAvg() string {
	raw, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(raw))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

func numCPU() int {
	raw, _ := os.ReadFile("/proc/cpuinfo")
	return max(1, strings.Count(string(raw), "processor\t:"))
}
