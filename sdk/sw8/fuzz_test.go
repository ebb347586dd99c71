package sw8

import (
	"context"
	"strconv"
	"strings"
	"testing"

	"github.com/SkyAPM/go2sky/propagation"
	otelprop "go.opentelemetry.io/otel/propagation"
)

func addSeeds(f *testing.F) {
	for _, s := range []string{
		"1-NGJmOTJmMzU3N2IzNGRhNmEzY2U5MjlkMGUwZTQ3MzY=-MDBmMDY3YWEwYmE5MDJiNw==-0-Y2hlY2tvdXQ=-Y2hlY2tvdXQtMQ==-R0VUIC9vcmRlcnM=-MTI3LjAuMC4xOjgwODA=",
		"0-MQ-Mg-7-YQ-Yg-Yw-ZA-future",
		"1-ZTRhMDgzYmU4ZGExMWYxOTE4YzllMjI1NDY1NGU5My4yOC40MDA3MzY5NjMwNjA3MDAwMQ==-NmU0YTA4M2JlOGRhMTFmMTkxOGM5ZTIyNTQ2NTRlOTM=-3-Z2F0ZXdheQ==-Z3ctMQ==-L2FwaQ==-Y2hlY2tvdXQ6ODA4MA==",
		"1-MQ==-MQ==--1-YQ==-YQ==-YQ==-YQ==", "1--------", "-", "",
	} {
		f.Add(s, "dGVuYW50:YWNtZQ==,eA==:eQ==")
	}
}

// FuzzParse checks that Parse never panics, that what it accepts go2sky
// accepts too, and that encoding a parsed header parses back to it.
func FuzzParse(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, v, _ string) {
		h, err := Parse(v)
		// Differential check: what go2sky decodes with a 0/1 flag, a plain
		// decimal span ID and both IDs present, we decode alike.
		var g2 propagation.SpanContext
		if len(v) <= MaxHeaderLen && g2.DecodeSW8(v) == nil && g2.TraceID != "" && g2.ParentSegmentID != "" && g2.ParentSpanID >= 0 {
			parts := strings.Split(v, "-")
			if (parts[0] == "0" || parts[0] == "1") && strconv.Itoa(int(g2.ParentSpanID)) == parts[3] {
				if err != nil {
					t.Fatalf("go2sky accepts %q, Parse says %v", v, err)
				}
				if h.TraceID != g2.TraceID || h.ParentSegmentID != g2.ParentSegmentID || h.ParentService != g2.ParentService ||
					h.ParentServiceInstance != g2.ParentServiceInstance || h.ParentEndpoint != g2.ParentEndpoint ||
					h.AddressUsedAtClient != g2.AddressUsedAtClient || h.ParentSpanID != g2.ParentSpanID || h.Sampled != (g2.Sample == 1) {
					t.Fatalf("%q: Parse %+v, go2sky %+v", v, h, g2)
				}
			}
		}
		if err != nil {
			return
		}
		if _, ok := h.SpanContext(); !ok {
			return
		}
		enc := h.String()
		var g propagation.SpanContext
		if err := g.DecodeSW8(enc); err != nil {
			t.Fatalf("go2sky rejects %q (re-encoded from %q): %v", enc, v, err)
		}
		back, err := Parse(enc)
		if err != nil {
			t.Fatalf("re-encoded %q does not parse: %v", enc, err)
		}
		dash := func(s string) string {
			if s == "" {
				return "-"
			}
			return s
		}
		h.ParentService, h.ParentServiceInstance = dash(h.ParentService), dash(h.ParentServiceInstance)
		h.ParentEndpoint, h.AddressUsedAtClient = dash(h.ParentEndpoint), dash(h.AddressUsedAtClient)
		if back != h {
			t.Fatalf("round trip of %q: %+v became %+v", v, h, back)
		}
	})
}

// FuzzExtract runs arbitrary sw8 and sw8-correlation values through the
// propagator: it must never panic and never produce an invalid context.
func FuzzExtract(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, v, corr string) {
		ctx := New().Extract(context.Background(), otelprop.MapCarrier{"sw8": v, "sw8-correlation": corr})
		if h, ok := FromContext(ctx); ok {
			if _, ok := h.SpanContext(); !ok {
				t.Fatalf("stored header %+v maps to no span context", h)
			}
		}
		_ = ParseCorrelation(corr)
	})
}
