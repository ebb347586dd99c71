package analysis

import (
	"context"
	"testing"

	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/skytrail/skytrail/internal/storage/metricstore"

	"github.com/skytrail/skytrail/internal/pipeline"
)

// FuzzConsumeTraces feeds whatever an OTLP client could send (any span
// kinds, IDs, timestamps, attributes) through the analysis and into the
// store: nothing may panic, and the caps must hold.
func FuzzConsumeTraces(f *testing.F) {
	var m ptrace.ProtoMarshaler
	seed, err := m.MarshalTraces(realisticBatch())
	if err != nil {
		f.Fatal(err)
	}
	f.Add(seed)
	f.Add([]byte{})
	store, err := metricstore.Open(metricstore.Config{Dir: f.TempDir()})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { _ = store.Close() })
	a := New(Config{MaxEndpointsPerService: 3, MaxServices: 3, MaxEdges: 3, MaxWaitingSpans: 5}, store)
	var u ptrace.ProtoUnmarshaler
	f.Fuzz(func(t *testing.T, data []byte) {
		td, err := u.UnmarshalTraces(data)
		if err != nil {
			return
		}
		if err := a.ConsumeTraces(context.Background(), pipeline.TracesOf(td)); err != nil {
			t.Fatal(err)
		}
		a.mu.Lock()
		services, waiting := len(a.services), a.joiner.Len()
		a.mu.Unlock()
		if services > 4 || waiting > 5 {
			t.Fatalf("caps broken: %d services, %d waiting spans", services, waiting)
		}
		if err := a.Flush(context.Background()); err != nil {
			t.Fatal(err)
		}
	})
}
