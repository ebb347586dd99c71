package promapi

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"

	"github.com/skytrail/skytrail/internal/storage/metricstore"
)

// newServer opens a store with a float series and a histogram series,
// one sample a minute for ten minutes ending at end, behind the API.
func newServer(t *testing.T, end time.Time) *httptest.Server {
	t.Helper()
	store, err := metricstore.Open(metricstore.Config{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	app := store.Appender(context.Background())
	for i := range 10 {
		ts := end.Add(-time.Duration(i) * time.Minute).UnixMilli()
		if _, err := app.Append(0, labels.FromStrings("__name__", "skytrail_service_calls:increase1m", "service", "checkout"), ts, 12); err != nil {
			t.Fatal(err)
		}
		h := &histogram.FloatHistogram{CounterResetHint: histogram.GaugeType, Schema: 3, Count: 4, Sum: 0.4,
			PositiveSpans: []histogram.Span{{Offset: -26, Length: 1}}, PositiveBuckets: []float64{4}}
		if _, err := app.AppendHistogram(0, labels.FromStrings("__name__", "skytrail_service_duration_seconds:increase1m", "service", "checkout"), ts, nil, h); err != nil {
			t.Fatal(err)
		}
	}
	if err := app.Commit(); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(NewHandler(store))
	t.Cleanup(srv.Close)
	return srv
}

func get(t *testing.T, srv *httptest.Server, path string, params url.Values) (int, map[string]any) {
	t.Helper()
	resp, err := http.Get(srv.URL + path + "?" + params.Encode())
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var v map[string]any
	if err := json.Unmarshal(body, &v); err != nil {
		t.Fatalf("GET %s: %v in %s", path, err, body)
	}
	return resp.StatusCode, v
}

func TestQueries(t *testing.T) {
	t.Parallel()
	end := time.Now().Truncate(time.Minute)
	srv := newServer(t, end)
	at := strconv.FormatInt(end.Unix(), 10)

	code, v := get(t, srv, "/api/v1/query", url.Values{"query": {`sum_over_time(skytrail_service_calls:increase1m[10m])`}, "time": {at}})
	res := v["data"].(map[string]any)["result"].([]any)
	if code != 200 || v["status"] != "success" || len(res) != 1 || res[0].(map[string]any)["value"].([]any)[1] != "120" {
		t.Errorf("instant query: %d %v", code, v)
	}

	code, v = get(t, srv, "/api/v1/query", url.Values{"query": {`skytrail_service_duration_seconds:increase1m`}, "time": {at}})
	res = v["data"].(map[string]any)["result"].([]any)
	if code != 200 || len(res) != 1 {
		t.Fatalf("histogram query: %d %v", code, v)
	}
	hist := res[0].(map[string]any)["histogram"].([]any)[1].(map[string]any)
	if hist["count"] != "4" || hist["sum"] != "0.4" || len(hist["buckets"].([]any)) != 1 {
		t.Errorf("histogram JSON: %v", hist)
	}

	code, v = get(t, srv, "/api/v1/query_range", url.Values{"query": {`skytrail_service_calls:increase1m`},
		"start": {strconv.FormatInt(end.Add(-5*time.Minute).Unix(), 10)}, "end": {at}, "step": {"60"}})
	data := v["data"].(map[string]any)
	if code != 200 || data["resultType"] != "matrix" || len(data["result"].([]any)[0].(map[string]any)["values"].([]any)) != 6 {
		t.Errorf("range query: %d %v", code, v)
	}

	code, v = get(t, srv, "/api/v1/series", url.Values{"match[]": {`{service="checkout"}`}})
	if code != 200 || len(v["data"].([]any)) != 2 {
		t.Errorf("series: %d %v", code, v)
	}
	code, v = get(t, srv, "/api/v1/labels", nil)
	if code != 200 || strings.Join(toStrings(v["data"]), ",") != "__name__,service" {
		t.Errorf("labels: %d %v", code, v)
	}
	code, v = get(t, srv, "/api/v1/label/__name__/values", url.Values{"match[]": {`{service="checkout"}`}})
	if code != 200 || strings.Join(toStrings(v["data"]), ",") != "skytrail_service_calls:increase1m,skytrail_service_duration_seconds:increase1m" {
		t.Errorf("label values: %d %v", code, v)
	}
}

// rate() over a per-minute series is answered with the engine's notes on
// why it is wrong, as Prometheus' API gives them: an info for the float
// series, a warning for the gauge histogram.
func TestRateOverPerMinuteSeriesIsFlagged(t *testing.T) {
	t.Parallel()
	end := time.Now().Truncate(time.Minute)
	srv := newServer(t, end)
	at := strconv.FormatInt(end.Unix(), 10)
	_, v := get(t, srv, "/api/v1/query", url.Values{"query": {`rate(skytrail_service_calls:increase1m[5m])`}, "time": {at}})
	if infos := strings.Join(toStrings(v["infos"]), " "); !strings.Contains(infos, "might not be a counter") {
		t.Errorf("rate over a per-minute series: infos %q, want the engine's note that it might not be a counter (%v)", infos, v)
	}
	_, v = get(t, srv, "/api/v1/query", url.Values{"query": {`rate(skytrail_service_duration_seconds:increase1m[5m])`}, "time": {at}})
	if warnings := strings.Join(toStrings(v["warnings"]), " "); !strings.Contains(warnings, "not a counter") {
		t.Errorf("rate over a per-minute histogram: warnings %q, want the engine's warning (%v)", warnings, v)
	}
}

// Queries at the edges of what is accepted are answered: a subquery without
// a step (the engine had no default and the request died with its
// connection), long subqueries at the default step, and the time bounds
// Prometheus' clients send.
func TestQueriesAtTheLimits(t *testing.T) {
	end := time.Now().Truncate(time.Minute)
	srv := newServer(t, end)
	at := strconv.FormatInt(end.Unix(), 10)
	for _, c := range []struct {
		path   string
		params url.Values
		want   int // results
	}{
		{"/api/v1/query", url.Values{"query": {"max_over_time(skytrail_service_calls:increase1m[30m:])"}, "time": {at}}, 1},
		{"/api/v1/query", url.Values{"query": {"max_over_time(skytrail_service_calls:increase1m[30d:1m])"}, "time": {at}}, 1},
		{"/api/v1/query_range", url.Values{"query": {"max_over_time(skytrail_service_calls:increase1m[1d:])"},
			"start": {strconv.FormatInt(end.Add(-10*time.Minute).Unix(), 10)}, "end": {at}, "step": {"60"}}, 1},
		{"/api/v1/series", url.Values{"match[]": {`{service="checkout"}`}, "start": {minTimeFormatted}, "end": {maxTimeFormatted}}, 2},
		{"/api/v1/series", url.Values{"match[]": {`{service="checkout"}`}, "start": {"-9223372036854"}, "end": {"9223372036854"}}, 2},
	} {
		code, v := get(t, srv, c.path, c.params)
		var n int
		switch d := v["data"].(type) {
		case []any:
			n = len(d)
		case map[string]any:
			n = len(d["result"].([]any))
		}
		if code != http.StatusOK || n != c.want {
			t.Errorf("GET %s %v: %d %v, want 200 with %d results", c.path, c.params, code, v, c.want)
		}
	}
}

func toStrings(v any) []string {
	var out []string
	for _, s := range v.([]any) {
		out = append(out, s.(string))
	}
	return out
}

func TestBadRequests(t *testing.T) {
	t.Parallel()
	srv := newServer(t, time.Now().Truncate(time.Minute))
	for _, c := range []struct {
		path   string
		params url.Values
		want   string
	}{
		{"/api/v1/query", url.Values{"query": {"sum("}}, `invalid parameter "query"`},
		{"/api/v1/query", url.Values{"query": {"up"}, "time": {"yesterday"}}, `invalid parameter "time"`},
		{"/api/v1/query_range", url.Values{"query": {"up"}, "start": {"10"}, "end": {"5"}, "step": {"1"}}, "end timestamp must not be before start"},
		{"/api/v1/query_range", url.Values{"query": {"up"}, "start": {"0"}, "end": {"100000"}, "step": {"1"}}, "exceeded maximum resolution"},
		{"/api/v1/query_range", url.Values{"query": {"up"}, "start": {"0"}, "end": {"10"}, "step": {"0"}}, "zero or negative"},
		// Issue 18: ranges and steps that would overflow, spin or exhaust memory.
		{"/api/v1/query_range", url.Values{"query": {"up"}, "start": {"-9000000000000000"}, "end": {"9000000000000000"}, "step": {"9000000000"}}, "exceeded maximum resolution"},
		{"/api/v1/query_range", url.Values{"query": {"up"}, "start": {"1"}, "end": {"2"}, "step": {"0.0001"}}, `invalid parameter "step"`},
		{"/api/v1/query_range", url.Values{"query": {"up"}, "start": {"-1e30"}, "end": {"0"}, "step": {"1"}}, `invalid parameter "start"`},
		{"/api/v1/query", url.Values{"query": {"up"}, "time": {"1e30"}}, `invalid parameter "time"`},
		{"/api/v1/labels", url.Values{"start": {"-1e30"}, "end": {"1e30"}}, `invalid parameter "start"`},
		{"/api/v1/series", url.Values{"match[]": {"up"}, "end": {"1e17"}}, `invalid parameter "end"`},
		{"/api/v1/query", url.Values{"query": {"max_over_time(skytrail_service_calls:increase1m[100y:1ms])"}}, "more than 100000"},
		{"/api/v1/query", url.Values{"query": {"max_over_time(vector(1)[1d:10ms])"}}, "would evaluate 8640000 steps"},
		{"/api/v1/query", url.Values{"query": {"max_over_time(max_over_time(vector(1)[1d:1s])[30d:1h])"}}, "subquery vector(1)[1d:1s] would evaluate 2678400 steps"},
		{"/api/v1/query_range", url.Values{"query": {"max_over_time(vector(1)[1d:1s])"}, "start": {"0"}, "end": {"20000"}, "step": {"2"}}, "would evaluate 106400 steps"},
		{"/api/v1/series", nil, "no match[]"},
		{"/api/v1/series", url.Values{"match[]": {"{"}}, `invalid parameter "match[]"`},
		{"/api/v1/label/%FF/values", nil, "invalid label name"},
	} {
		code, v := get(t, srv, c.path, c.params)
		if code != http.StatusBadRequest || v["errorType"] != "bad_data" || !strings.Contains(v["error"].(string), c.want) {
			t.Errorf("GET %s %v: %d %v, want 400 bad_data mentioning %q", c.path, c.params, code, v, c.want)
		}
	}
}
