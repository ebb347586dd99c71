package jaeger

import (
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"

	"github.com/skytrail/skytrail/internal/storage/spanstore"
	"github.com/skytrail/skytrail/internal/traceid"
)

func TestParseSearchParams(t *testing.T) {
	t.Parallel()
	now := time.UnixMicro(1_700_000_000_000_000)
	for _, tc := range []struct {
		query string
		want  spanstore.TraceQuery
	}{
		{"service=a", spanstore.TraceQuery{Service: "a", Limit: 100}},
		{"service=a&limit=0", spanstore.TraceQuery{Service: "a", Limit: 100}},
		// What Grafana's Jaeger data source sends.
		{"service=a&operation=GET+%2F&tags=%7B%22error%22%3A%22true%22%2C%22n%22%3A7%2C%22b%22%3Afalse%7D&minDuration=1.2s&maxDuration=5s&limit=20&start=1699999000000000&end=1700000000000000",
			spanstore.TraceQuery{
				Service: "a", Operation: "GET /",
				Attributes:  map[string]string{"error": "true", "n": "7", "b": "false"},
				MinDuration: 1200 * time.Millisecond, MaxDuration: 5 * time.Second, Limit: 20,
				Start: time.UnixMicro(1_699_999_000_000_000), End: time.UnixMicro(1_700_000_000_000_000),
			}},
		// What Jaeger's UI sends: lookback alongside start and end, which win.
		{"service=a&lookback=1h&start=1699999000000000&end=1700000000000000",
			spanstore.TraceQuery{Service: "a", Limit: 100, Start: time.UnixMicro(1_699_999_000_000_000), End: time.UnixMicro(1_700_000_000_000_000)}},
		{"service=a&lookback=custom", spanstore.TraceQuery{Service: "a", Limit: 100}},
		{"service=a&lookback=2d", spanstore.TraceQuery{Service: "a", Limit: 100, Start: now.Add(-48 * time.Hour)}},
		{"service=a&lookback=1w&end=1700000000000000", spanstore.TraceQuery{Service: "a", Limit: 100, Start: now.Add(-7 * 24 * time.Hour), End: now}},
		{"service=a&tag=http.url:https://x:8080/&tag=k:", spanstore.TraceQuery{Service: "a", Limit: 100, Attributes: map[string]string{"http.url": "https://x:8080/", "k": ""}}},
	} {
		v, err := url.ParseQuery(tc.query)
		if err != nil {
			t.Fatal(err)
		}
		p, err := parseSearchParams(v, now)
		if err != nil {
			t.Errorf("%s: %v", tc.query, err)
			continue
		}
		if !reflect.DeepEqual(p.query, tc.want) || len(p.traces) != 0 {
			t.Errorf("%s:\n got %+v\nwant %+v", tc.query, p.query, tc.want)
		}
	}
}

func TestParseTraceID(t *testing.T) {
	t.Parallel()
	sw, _ := traceid.FromString(swTraceID)
	short, _ := traceid.FromString("abc")
	for _, tc := range []struct {
		in   string
		want []pcommon.TraceID
	}{
		{"0102030405060708090a0b0c0d0e0f10", []pcommon.TraceID{{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}}},
		{"0102030405060708090A0B0C0D0E0F10", []pcommon.TraceID{{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}}},
		// Short hex is Jaeger's left-padded form first, else a SkyWalking
		// string that happens to be hex.
		{"abc", []pcommon.TraceID{{14: 0x0a, 15: 0xbc}, short}},
		{swTraceID, []pcommon.TraceID{sw}},
	} {
		got, err := parseTraceID(tc.in)
		if err != nil || got.raw != tc.in || !reflect.DeepEqual(got.candidates, tc.want) {
			t.Errorf("parseTraceID(%q) = %+v, %v; want candidates %v", tc.in, got, err, tc.want)
		}
	}
	for _, bad := range []string{"", "0", strings.Repeat("0", 32), strings.Repeat("z", 257)} {
		if _, err := parseTraceID(bad); err == nil {
			t.Errorf("parseTraceID(%q) accepted", bad)
		}
	}
}

// FuzzParseSearchParams checks that no query string crashes the parser and
// that whatever it accepts is a query the store can run.
func FuzzParseSearchParams(f *testing.F) {
	for _, seed := range []string{
		"service=a&operation=b&tags=%7B%22error%22%3A%22true%22%7D&minDuration=1ms&maxDuration=2s&limit=20&start=1&end=2",
		"service=a&lookback=2d",
		"service=a&lookback=9999999w",
		"service=a&tag=k:v&tag=x",
		"traceID=abc&traceID=6e4a083be8da11f1918c9e2254654e93.28.40073696306070001",
		"service=a&tags=%7B%22k%22%3A1e400%7D",
		"service=a&start=9223372036854775807&end=-1",
		"service=a&start=1&end=32503680000000000&lookback=1h",
		"service=a&end=253402300800000000&lookback=876000h",
		"service=a&limit=-1",
		"service=a&minDuration=-1s",
	} {
		f.Add(seed)
	}
	now := time.Now()
	f.Fuzz(func(t *testing.T, raw string) {
		v, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		p, err := parseSearchParams(v, now)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("error without a message")
			}
			return
		}
		q := p.query
		if len(p.traces) == 0 && q.Service == "" {
			t.Fatalf("accepted a search without service or traceID: %q", raw)
		}
		if q.Limit < 1 || q.Limit > maxLimit {
			t.Fatalf("limit %d accepted from %q", q.Limit, raw)
		}
		if q.MinDuration < 0 || q.MaxDuration < 0 || (q.MaxDuration != 0 && q.MaxDuration < q.MinDuration) {
			t.Fatalf("durations %v..%v accepted from %q", q.MinDuration, q.MaxDuration, raw)
		}
		if !q.Start.IsZero() && !q.End.IsZero() && q.Start.After(q.End) {
			t.Fatalf("start after end accepted from %q", raw)
		}
		if !q.Start.Before(latestTime) || !q.End.Before(latestTime) {
			t.Fatalf("a time after the year 9999 accepted from %q", raw)
		}
		for k := range q.Attributes {
			if k == "" || len(k) > spanstore.MaxAttributeKeyLen {
				t.Fatalf("tag key %q accepted", k)
			}
		}
		if len(p.traces) > maxLimit {
			t.Fatalf("%d trace IDs accepted", len(p.traces))
		}
		for _, tr := range p.traces {
			if len(tr.candidates) == 0 {
				t.Fatalf("trace ID %q accepted with nothing to look up", tr.raw)
			}
			for _, id := range tr.candidates {
				if id.IsEmpty() {
					t.Fatalf("trace ID %q maps to the empty ID", tr.raw)
				}
			}
		}
	})
}
