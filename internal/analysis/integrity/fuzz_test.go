package integrity

import (
	"context"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/skytrail/skytrail/internal/pipeline"
)

// FuzzConsumeTraces feeds any decodable batch through the hot path and a
// judging pass: client data must never make the analysis panic.
func FuzzConsumeTraces(f *testing.F) {
	seed, err := (&ptrace.ProtoMarshaler{}).MarshalTraces(batch(1))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(seed)
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		td, err := (&ptrace.ProtoUnmarshaler{}).UnmarshalTraces(data)
		if err != nil {
			return
		}
		a := New(Config{MaxSpans: 500})
		if err := a.ConsumeTraces(context.Background(), pipeline.TracesOf(td)); err != nil {
			t.Fatalf("ConsumeTraces failed: %v", err)
		}
		a.Judge(time.Now().Add(time.Hour))
		_ = a.Findings("")
	})
}
