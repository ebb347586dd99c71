package pipeline_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/skytrail/skytrail/internal/pipeline"
	"github.com/skytrail/skytrail/internal/storage/spanstore"
	"github.com/skytrail/skytrail/internal/wal"
)

func someLogs() plog.Logs {
	ld := plog.NewLogs()
	rl := ld.ResourceLogs().AppendEmpty()
	rl.Resource().Attributes().PutStr("service.name", "orders")
	lr := rl.ScopeLogs().AppendEmpty().LogRecords().AppendEmpty()
	lr.Body().SetStr("payment declined")
	lr.SetTimestamp(pcommon.NewTimestampFromTime(time.Now()))
	return ld
}

func someMetrics() pmetric.Metrics {
	md := pmetric.NewMetrics()
	rm := md.ResourceMetrics().AppendEmpty()
	rm.Resource().Attributes().PutStr("service.name", "orders")
	m := rm.ScopeMetrics().AppendEmpty().Metrics().AppendEmpty()
	m.SetName("queue.depth")
	dp := m.SetEmptyGauge().DataPoints().AppendEmpty()
	dp.SetIntValue(7)
	dp.SetTimestamp(pcommon.NewTimestampFromTime(time.Now()))
	return md
}

// TestRecordsRoundTrip: every kind of batch reads back as it was written,
// its resources identified alike.
func TestRecordsRoundTrip(t *testing.T) {
	t.Parallel()
	tr := pipeline.TracesOf(spans("", 3, time.Now())) // no service.name: named unknown_service
	lg := pipeline.LogsOf(someLogs())
	mt := pipeline.MetricsOf(someMetrics())
	hb := pipeline.Heartbeats{{Service: "orders", Instance: "i-1", Layer: "GENERAL", Properties: map[string]string{"hostname": "n1"}, Protocol: "skywalking", At: time.Unix(1700000000, 0).UTC()}}
	for _, b := range []pipeline.Batch{&tr, &lg, &mt, &hb} {
		rec, err := pipeline.EncodeRecord(b)
		if err != nil {
			t.Fatal(err)
		}
		got, err := pipeline.DecodeRecord(rec)
		if err != nil {
			t.Fatalf("%T: %v", b, err)
		}
		switch want := b.(type) {
		case *pipeline.Traces:
			g := got.(*pipeline.Traces)
			if g.SpanCount() != 3 || g.Resources[0] != want.Resources[0] || g.Resources[0].Service != pipeline.UnknownService {
				t.Errorf("traces read back as %d spans of %+v, want 3 of %+v", g.SpanCount(), g.Resources, want.Resources)
			}
			if g.ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(2).SpanID() != want.ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(2).SpanID() {
				t.Error("a span ID changed")
			}
		case *pipeline.Logs:
			g := got.(*pipeline.Logs)
			if g.LogRecordCount() != 1 || g.ResourceLogs().At(0).ScopeLogs().At(0).LogRecords().At(0).Body().Str() != "payment declined" || g.Resources[0].Service != "orders" {
				t.Errorf("logs read back wrong: %d records, %+v", g.LogRecordCount(), g.Resources)
			}
		case *pipeline.Metrics:
			g := got.(*pipeline.Metrics)
			if g.DataPointCount() != 1 || g.ResourceMetrics().At(0).ScopeMetrics().At(0).Metrics().At(0).Gauge().DataPoints().At(0).IntValue() != 7 {
				t.Errorf("metrics read back wrong")
			}
		case *pipeline.Heartbeats:
			g := got.(*pipeline.Heartbeats)
			if len(*g) != 1 || (*g)[0].Instance != "i-1" || (*g)[0].Properties["hostname"] != "n1" || !(*g)[0].At.Equal(hb[0].At) {
				t.Errorf("heartbeats read back as %+v", *g)
			}
		}
	}
}

// TestIngestIsJournaledThenReplayed: a batch the front door acknowledged
// over a write-ahead log is in the log; replayed into a new pipeline over an
// empty store (a process that lost its buffers), it is stored again.
func TestIngestIsJournaledThenReplayed(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	log, err := wal.Open(wal.Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	d := newFrontDoor(t, pipeline.Config{Journal: log}, 24*time.Hour)
	td := spans("orders", 3, time.Now())
	td.ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(1).SetSpanID(pcommon.SpanID{}) // invalid: not journaled
	if out, err := d.p.Ingest(context.Background(), src, &pipeline.Traces{Traces: td}); err != nil || out.Accepted != 2 {
		t.Fatalf("Ingest = %+v, %v", out, err)
	}
	if _, err := d.p.Ingest(context.Background(), src, &pipeline.Logs{Logs: someLogs()}); err != nil {
		t.Fatal(err)
	}
	_ = log.Close()

	log, err = wal.Open(wal.Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close()
	fresh := newFrontDoor(t, pipeline.Config{}, 24*time.Hour)
	items := map[pipeline.Signal]int{}
	if _, err := log.Replay(func(rec []byte) error {
		sig, n, err := fresh.p.Replay(context.Background(), rec)
		items[sig] += n
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if items[pipeline.SignalSpans] != 2 || items[pipeline.SignalLogs] != 1 {
		t.Fatalf("replayed %v, want the 2 valid spans and 1 log record", items)
	}
	fresh.store.Flush()
	got, err := fresh.store.GetTrace(context.Background(), pcommon.TraceID{1, 3})
	if err != nil || got.SpanCount() != 1 {
		t.Fatalf("replayed span not stored: %v", err)
	}
	// Replay is not ingest: the counters of received data do not move.
	if v := fresh.count(t, "skytrail_receiver_spans_received_total", "receiver", src.Receiver); v != 0 {
		t.Errorf("replay counted %v spans as received", v)
	}
}

// TestJournalFailureStoresNothing: a batch the log cannot take is refused as
// retryable, and no consumer sees it.
func TestJournalFailureStoresNothing(t *testing.T) {
	t.Parallel()
	log, err := wal.Open(wal.Config{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	_ = log.Close() // appends now fail
	d := newFrontDoor(t, pipeline.Config{Journal: log}, 24*time.Hour)
	_, err = d.p.Ingest(context.Background(), src, &pipeline.Traces{Traces: spans("orders", 1, time.Now())})
	if !pipeline.ReasonOf(err).Retryable() || !errors.Is(err, wal.ErrClosed) || !strings.Contains(err.Error(), "write-ahead log") {
		t.Fatalf("err = %v, want a retryable refusal naming the write-ahead log", err)
	}
	d.store.Flush()
	if _, err := d.store.GetTrace(context.Background(), pcommon.TraceID{1, 1}); !errors.Is(err, spanstore.ErrNotFound) {
		t.Fatalf("a span the log refused was stored: %v", err)
	}
	if v := d.count(t, "skytrail_receiver_spans_rejected_total", "receiver", src.Receiver, "reason", "storage"); v != 1 {
		t.Errorf("rejected{storage} = %v, want 1", v)
	}
}

// replayer records which path a replayed batch took.
type replayer struct{ consumed, replayed int }

func (r *replayer) ConsumeTraces(context.Context, pipeline.Traces) error { r.consumed++; return nil }
func (r *replayer) ReplayTraces(context.Context, pipeline.Traces) error  { r.replayed++; return nil }

func TestReplayUsesReplayTraces(t *testing.T) {
	t.Parallel()
	r := &replayer{}
	p := pipeline.New(pipeline.Config{Registerer: prometheus.NewRegistry()}, pipeline.Consumers{Traces: []pipeline.TracesConsumer{r}})
	tr := pipeline.TracesOf(spans("orders", 1, time.Now()))
	rec, _ := pipeline.EncodeRecord(&tr)
	if _, _, err := p.Replay(context.Background(), rec); err != nil {
		t.Fatal(err)
	}
	if r.replayed != 1 || r.consumed != 0 {
		t.Fatalf("replayed %d, consumed %d: want ReplayTraces once", r.replayed, r.consumed)
	}
}

// FuzzDecodeRecord: any bytes decode to a batch or an error, never a panic;
// a batch re-encodes.
func FuzzDecodeRecord(f *testing.F) {
	tr := pipeline.TracesOf(spans("orders", 2, time.Unix(1700000000, 0)))
	lg := pipeline.LogsOf(someLogs())
	mt := pipeline.MetricsOf(someMetrics())
	hb := pipeline.Heartbeats{{Service: "s", Instance: "i"}}
	for _, b := range []pipeline.Batch{&tr, &lg, &mt, &hb} {
		rec, err := pipeline.EncodeRecord(b)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(rec)
	}
	f.Add([]byte{})
	f.Add([]byte{1, 9})
	f.Add([]byte{2, 1, 0})
	f.Fuzz(func(t *testing.T, rec []byte) {
		b, err := pipeline.DecodeRecord(rec)
		if err != nil {
			return
		}
		if _, err := pipeline.EncodeRecord(b); err != nil {
			t.Fatalf("a decoded record does not encode again: %v", err)
		}
	})
}

// TestJournalWritesTheRequestAsReceived: a protobuf request the front door
// took whole is journaled as its own bytes; one it changed (a span removed,
// a resource named unknown_service) as the batch it stored.
func TestJournalWritesTheRequestAsReceived(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	log, err := wal.Open(wal.Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	d := newFrontDoor(t, pipeline.Config{Journal: log}, 24*time.Hour)
	whole := ptraceotlp.NewExportRequestFromTraces(spans("orders", 2, time.Now()))
	wholeRaw, _ := whole.MarshalProto()
	invalid := spans("orders", 2, time.Now())
	invalid.ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0).SetSpanID(pcommon.SpanID{})
	invalidRaw, _ := ptraceotlp.NewExportRequestFromTraces(invalid).MarshalProto()
	unnamed := spans("", 1, time.Now())
	unnamedRaw, _ := ptraceotlp.NewExportRequestFromTraces(unnamed).MarshalProto()
	for _, b := range []*pipeline.Traces{
		{Traces: whole.Traces(), Raw: wholeRaw},
		{Traces: invalid, Raw: invalidRaw},
		{Traces: unnamed, Raw: unnamedRaw},
	} {
		if _, err := d.p.Ingest(context.Background(), src, b); err != nil {
			t.Fatal(err)
		}
	}
	_ = log.Close()
	log, err = wal.Open(wal.Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close()
	var recs [][]byte
	if _, err := log.Replay(func(rec []byte) error { recs = append(recs, append([]byte(nil), rec...)); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(recs) != 3 {
		t.Fatalf("%d records, want 3", len(recs))
	}
	if !bytes.Equal(recs[0][2:], wholeRaw) {
		t.Error("the request taken whole was not journaled as its own bytes")
	}
	if b, _ := pipeline.DecodeRecord(recs[1]); b.(*pipeline.Traces).SpanCount() != 1 {
		t.Errorf("the request with an invalid span was journaled with %d spans, want the 1 stored", b.(*pipeline.Traces).SpanCount())
	}
	if b, _ := pipeline.DecodeRecord(recs[2]); b.(*pipeline.Traces).Resources[0].Service != pipeline.UnknownService {
		t.Error("the unnamed resource was journaled without the name it was stored under")
	} else if v, ok := b.(*pipeline.Traces).ResourceSpans().At(0).Resource().Attributes().Get("service.name"); !ok || v.Str() != pipeline.UnknownService {
		t.Error("the journaled resource does not carry service.name=unknown_service")
	}
}
