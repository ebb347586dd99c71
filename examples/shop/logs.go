package shop

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/SkyAPM/go2sky"
)

// The shop's services log structured lines with order_id, the way shops
// do: the OpenTelemetry services (frontend, order, inventory) through
// log/slog and OpenTelemetry's slog bridge over OTLP (telemetry.log), the
// go2sky service (payment) as zap-style JSON lines that a shipper such as
// Filebeat sends to an Elasticsearch bulk API (bulkShipper), with the
// SkyWalking trace context in SW_CTX as the SkyWalking Go agents write it.

// bulkShipper buffers JSON log lines and sends them to an Elasticsearch
// bulk API every interval, as Filebeat does with a log file. Lines that
// cannot be sent are dropped with a warning: a shop's logging must not
// stop the shop.
type bulkShipper struct {
	url    string
	client *http.Client
	log    *slog.Logger

	mu  sync.Mutex
	buf bytes.Buffer

	stop chan struct{}
	done sync.WaitGroup
}

// maxShipperBuffer bounds what waits to be sent (a server that is away).
const maxShipperBuffer = 4 << 20

func newBulkShipper(url string, tlsConfig *tls.Config, headers map[string]string, every time.Duration, log *slog.Logger) *bulkShipper {
	transport := &headerTransport{base: &http.Transport{TLSClientConfig: tlsConfig}, headers: headers}
	b := &bulkShipper{url: url, client: &http.Client{Timeout: 10 * time.Second, Transport: transport}, log: log, stop: make(chan struct{})}
	b.done.Go(func() {
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				b.flush()
			case <-b.stop:
				b.flush()
				return
			}
		}
	})
	return b
}

// line adds one log line at level with msg and fields, tied to the go2sky
// span in ctx.
func (b *bulkShipper) line(ctx context.Context, level, msg string, fields map[string]any) {
	rec := map[string]any{"@timestamp": time.Now().UTC().Format(time.RFC3339Nano), "level": level, "msg": msg,
		"service": map[string]string{"name": "payment"}, "host": map[string]string{"name": "payment-1"}}
	for k, v := range fields {
		rec[k] = v
	}
	if id := go2sky.TraceID(ctx); id != "" && id != go2sky.EmptyTraceID {
		rec["SW_CTX"] = fmt.Sprintf("[payment,payment-1,%s,%s,%d]", id, go2sky.TraceSegmentID(ctx), go2sky.SpanID(ctx))
	}
	line, err := json.Marshal(rec)
	if err != nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.buf.Len() > maxShipperBuffer {
		return
	}
	b.buf.WriteString(`{"create":{"_index":"shop-payment"}}` + "\n")
	b.buf.Write(line)
	b.buf.WriteByte('\n')
}

func (b *bulkShipper) flush() {
	b.mu.Lock()
	body := bytes.Clone(b.buf.Bytes())
	b.buf.Reset()
	b.mu.Unlock()
	if len(body) == 0 {
		return
	}
	resp, err := b.client.Post(b.url+"/_bulk", "application/x-ndjson", bytes.NewReader(body))
	if err != nil {
		b.log.Warn("payment: shipping log lines failed", "err", err)
		return
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b.log.Warn("payment: shipping log lines failed", "status", resp.Status)
	}
}

func (b *bulkShipper) close() {
	close(b.stop)
	b.done.Wait()
}

// headerTransport adds headers (an ingest token) to every request.
type headerTransport struct {
	base    http.RoundTripper
	headers map[string]string
}

func (h *headerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if len(h.headers) > 0 {
		r = r.Clone(r.Context())
		for k, v := range h.headers {
			r.Header.Set(k, v)
		}
	}
	return h.base.RoundTrip(r)
}
