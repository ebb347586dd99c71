package server_test

import (
	"bytes"
	"io"
	"net/http"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/plog/plogotlp"

	"github.com/skytrail/skytrail/internal/loadgen"
	"github.com/skytrail/skytrail/internal/server"
	"github.com/skytrail/skytrail/internal/servertest"
)

// processCPU is the CPU time (user and system) this process used so far.
func processCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkLogIngest sends log lines to a real server over loopback HTTP,
// in batches of 1,000 lines of about 300 bytes with 8 fields
// (loadgen.LogLines) from four clients at once, and reports lines stored
// a second: OTLP/HTTP protobuf (as the OpenTelemetry SDKs and the Collector
// send) and the Elasticsearch bulk API (as Filebeat sends). Each request is
// answered once its lines are in storage (searchable a flush later).
func BenchmarkLogIngest(b *testing.B) {
	s := servertest.Start(b, func(c *server.Config) { c.MaxInFlight = 512 << 20 })
	ingest := "http://" + s.Addrs["OTLP HTTP"]
	const batches, perBatch = 32, 1000
	var otlpBodies, bulkBodies [][]byte
	var jsonBytes int
	for i := range batches {
		lines := loadgen.LogLines(perBatch, uint64(i+1), time.Now())
		body, err := plogotlp.NewExportRequestFromLogs(loadgen.Logs(lines)).MarshalProto()
		if err != nil {
			b.Fatal(err)
		}
		otlpBodies = append(otlpBodies, body)
		bulk, n := loadgen.BulkBody(lines)
		jsonBytes += n
		bulkBodies = append(bulkBodies, bulk)
	}
	b.Logf("a line is %d bytes of JSON on average", jsonBytes/(batches*perBatch))
	run := func(b *testing.B, url, contentType string, bodies [][]byte) {
		var next atomic.Int64
		b.SetParallelism(2) // 4 clients on this 2-core machine
		cpu0 := processCPU()
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			client := &http.Client{}
			for pb.Next() {
				body := bodies[next.Add(1)%int64(len(bodies))]
				resp, err := client.Post(url, contentType, bytes.NewReader(body))
				if err != nil {
					b.Error(err)
					return
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					b.Errorf("HTTP %d", resp.StatusCode)
					return
				}
			}
		})
		b.ReportMetric(float64(b.N*perBatch)/b.Elapsed().Seconds(), "lines/s")
		// CPU of the whole process (server and clients) a line: the steadier
		// figure on a shared machine, where the wall-clock rate depends on
		// what else runs.
		b.ReportMetric(float64((processCPU()-cpu0).Microseconds())/float64(b.N*perBatch), "cpu-µs/line")
	}
	b.Run("otlp-http", func(b *testing.B) { run(b, ingest+"/v1/logs", "application/x-protobuf", otlpBodies) })
	b.Run("es-bulk", func(b *testing.B) { run(b, ingest+"/insert/elasticsearch/_bulk", "application/x-ndjson", bulkBodies) })
}
