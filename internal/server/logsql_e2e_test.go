package server_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/skytrail/skytrail/internal/server"
	"github.com/skytrail/skytrail/internal/servertest"
	"github.com/skytrail/skytrail/internal/testutil/poll"
	"github.com/skytrail/skytrail/internal/testutil/victorialogs"
)

// The answers Grafana's VictoriaLogs data source parses, as its types read
// them (pkg/plugin/response.go in victoriametrics-logs-datasource).
type (
	hitsAnswer struct {
		Hits []struct {
			Fields     map[string]string `json:"fields"`
			Timestamps []time.Time       `json:"timestamps"`
			Values     []int             `json:"values"`
			Total      int               `json:"total"`
		} `json:"hits"`
	}
	valuesAnswer struct {
		Values []struct {
			Value string `json:"value"`
			Hits  int    `json:"hits"`
		} `json:"values"`
	}
	statsAnswer struct {
		Status string `json:"status"`
		Data   struct {
			ResultType string `json:"resultType"`
			Result     []struct {
				Metric map[string]string `json:"metric"`
				Values [][2]any          `json:"values"`
				Value  [2]any            `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
)

// Grafana's VictoriaLogs data source calls more than /select/logsql/query:
// the logs volume histogram (hits), field name and value completion, and
// metric queries (stats_query_range, stats_query). A SkyTrail keeping its
// logs in a real VictoriaLogs answers each exactly as that VictoriaLogs
// answers the same request over the same rows (asked directly, in the logs'
// tenant); the embedded store's answers are checked in the shapes the
// plugin parses, with the counts the lines sent make.
func TestLogsQLGrafanaEndpoints(t *testing.T) {
	t.Parallel()
	vl := victorialogs.Start(t)
	remote := servertest.Start(t, func(c *server.Config) { c.Spans = server.RemoteSpans{URL: vl.URL, Timeout: 5 * time.Second} })
	embedded := servertest.Start(t)

	// 12 lines over 3 minutes: payment errors and infos, checkout infos.
	base := time.Now().Add(-10 * time.Minute).Truncate(time.Minute)
	var body strings.Builder
	for i := range 12 {
		svc, level := "checkout", "info"
		if i%3 == 0 {
			svc, level = "payment", "error"
		} else if i%3 == 1 {
			svc = "payment"
		}
		fmt.Fprintf(&body, `{"service.name":%q,"level":%q,"msg":"line %d","order_id":"%d","ts":%q}`+"\n",
			svc, level, i, 1000+i%4, base.Add(time.Duration(i)*15*time.Second).UTC().Format(time.RFC3339Nano))
	}
	for _, s := range []*server.Server{remote, embedded} {
		post(t, "http://"+s.Addrs["OTLP HTTP"]+"/insert/jsonline", "application/json", body.String(), http.StatusOK)
	}
	start, end := base.Add(-time.Minute), base.Add(5*time.Minute)
	form := func(kv ...string) url.Values {
		v := url.Values{"start": {start.Format(time.RFC3339)}, "end": {end.Format(time.RFC3339)}}
		for i := 0; i < len(kv); i += 2 {
			v.Add(kv[i], kv[i+1])
		}
		return v
	}
	requests := []struct {
		path string
		form url.Values
	}{
		{"/select/logsql/hits", form("query", "*", "step", "1m")},
		{"/select/logsql/hits", form("query", "*", "step", "1m", "field", "service", "field", "severity_text")},
		{"/select/logsql/hits", form("query", "order_id:1001", "step", "2m", "field", "service", "fields_limit", "1")},
		{"/select/logsql/field_names", form("query", "*")},
		{"/select/logsql/field_values", form("query", "*", "field", "order_id")},
		{"/select/logsql/field_values", form("query", "severity_text:error", "field", "service", "limit", "5")},
		{"/select/logsql/stats_query_range", form("query", "* | stats by (service) count() lines", "step", "1m")},
		{"/select/logsql/stats_query_range", form("query", "severity_text:error | stats count() errors, count_uniq(order_id) orders", "step", "2m")},
		{"/select/logsql/stats_query", form("query", "* | stats by (service, severity_text) count() lines", "time", end.Format(time.RFC3339))},
	}

	ask := func(base string, path string, f url.Values, tenant bool) (int, []byte) {
		req, err := http.NewRequest(http.MethodPost, base+path, strings.NewReader(f.Encode()))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if tenant {
			// The logs' tenant in SkyTrail's rows (spanstore: tenantLogs).
			req.Header.Set("AccountID", "0")
			req.Header.Set("ProjectID", "2")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}
	// VictoriaLogs makes rows searchable a second or so after taking them.
	for _, s := range []string{"http://" + remote.Addrs["query API"], "http://" + embedded.Addrs["query API"]} {
		poll.Until(t, waitTimeout, "the 12 lines to be searchable at "+s, func() bool {
			_, b := ask(s, "/select/logsql/stats_query", form("query", "* | stats count() n", "time", end.Format(time.RFC3339)), false)
			return strings.Contains(string(b), `"12"`)
		})
	}

	for _, r := range requests {
		name := r.path + "?" + r.form.Encode()
		code, mine := ask("http://"+remote.Addrs["query API"], r.path, r.form, false)
		vlCode, theirs := ask(vl.URL, r.path, r.form, true)
		if code != http.StatusOK || vlCode != http.StatusOK {
			t.Errorf("%s: SkyTrail HTTP %d %s; VictoriaLogs HTTP %d %s", name, code, mine, vlCode, theirs)
			continue
		}
		var a, b any
		if err := json.Unmarshal(mine, &a); err != nil {
			t.Errorf("%s: SkyTrail's answer is not JSON: %v: %s", name, err, mine)
			continue
		}
		_ = json.Unmarshal(theirs, &b)
		if strings.HasSuffix(r.path, "field_names") {
			// VictoriaLogs lists its own _stream and _stream_id, which
			// SkyTrail's reads of a remote store leave out.
			b = withoutValues(b, "_stream", "_stream_id")
			a = withoutValues(a, "_stream", "_stream_id")
		}
		if strings.HasSuffix(r.path, "stats_query") {
			// VictoriaLogs gives an instant query's series in no order.
			a, b = sortedResult(a), sortedResult(b)
		}
		if !reflect.DeepEqual(a, b) {
			t.Errorf("%s:\nSkyTrail:      %s\nVictoriaLogs:  %s", name, mine, theirs)
		}
	}

	// The embedded store, in the plugin's shapes.
	api := "http://" + embedded.Addrs["query API"]
	get := func(path string, f url.Values, into any) {
		t.Helper()
		code, b := ask(api, path, f, false)
		if err := json.Unmarshal(b, into); code != http.StatusOK || err != nil {
			t.Fatalf("%s: HTTP %d %s (%v)", path, code, b, err)
		}
	}
	var hits hitsAnswer
	get("/select/logsql/hits", form("query", "*", "step", "1m", "field", "service"), &hits)
	totals := map[string]int{}
	for _, h := range hits.Hits {
		sum := 0
		for _, v := range h.Values {
			sum += v
		}
		if len(h.Timestamps) != len(h.Values) || sum != h.Total || len(h.Timestamps) != 6 {
			t.Errorf("hits series %v: %d timestamps, %d values summing to %d, total %d; want 6 minutes (zeros included, end exclusive) summing to the total",
				h.Fields, len(h.Timestamps), len(h.Values), sum, h.Total)
		}
		totals[h.Fields["service"]] = h.Total
	}
	if want := map[string]int{"payment": 8, "checkout": 4}; !reflect.DeepEqual(totals, want) {
		t.Errorf("hits by service = %v, want %v", totals, want)
	}
	var values valuesAnswer
	get("/select/logsql/field_values", form("query", "*", "field", "order_id"), &values)
	if len(values.Values) != 4 || values.Values[0].Hits != 3 {
		t.Errorf("order_id values = %+v, want 4 values of 3 lines each", values.Values)
	}
	var names valuesAnswer
	get("/select/logsql/field_names", form("query", "service:payment"), &names)
	found := map[string]int{}
	for _, v := range names.Values {
		found[v.Value] = v.Hits
	}
	if found["order_id"] != 8 || found["_msg"] != 8 || found["severity_text"] != 8 {
		t.Errorf("field names of payment's lines = %v, want order_id, _msg, severity_text on all 8", found)
	}
	var rng statsAnswer
	get("/select/logsql/stats_query_range", form("query", "* | stats by (service) count() lines", "step", "1m"), &rng)
	if rng.Status != "success" || rng.Data.ResultType != "matrix" || len(rng.Data.Result) != 2 {
		t.Fatalf("stats_query_range = %+v, want a matrix of 2 series", rng)
	}
	for _, s := range rng.Data.Result {
		n := 0
		for _, p := range s.Values {
			var v int
			fmt.Sscan(p[1].(string), &v)
			n += v
		}
		if s.Metric["__name__"] != "lines" || (s.Metric["service"] == "payment") != (n == 8) {
			t.Errorf("series %v counts %d lines", s.Metric, n)
		}
	}
	var inst statsAnswer
	get("/select/logsql/stats_query", form("query", "severity_text:error | stats count() errors", "time", end.Format(time.RFC3339)), &inst)
	if inst.Data.ResultType != "vector" || len(inst.Data.Result) != 1 || inst.Data.Result[0].Value[1] != "4" {
		t.Errorf("stats_query = %+v, want one value of 4 errors", inst)
	}

	// Bad requests are 400s that say what is wrong.
	for _, r := range []struct {
		path string
		form url.Values
	}{
		{"/select/logsql/hits", form("query", "*")},
		{"/select/logsql/hits", form("query", "*", "step", "soon")},
		{"/select/logsql/field_values", form("query", "*")},
		{"/select/logsql/stats_query", form("query", "* | fields _msg")},
		{"/select/logsql/stats_query_range", form("query", "foo | bar(", "step", "1m")},
		{"/select/logsql/field_names", form()},
	} {
		if code, b := ask(api, r.path, r.form, false); code != http.StatusBadRequest || !strings.Contains(string(b), "error") {
			t.Errorf("%s?%s: HTTP %d %s, want 400 with the reason", r.path, r.form.Encode(), code, b)
		}
	}
}

// withoutValues drops the named entries of a {"values":[{"value":...}]}
// answer.
func withoutValues(v any, drop ...string) any {
	m, ok := v.(map[string]any)
	if !ok {
		return v
	}
	list, _ := m["values"].([]any)
	var kept []any
	for _, item := range list {
		if e, ok := item.(map[string]any); ok {
			if name, _ := e["value"].(string); contains(drop, name) {
				continue
			}
		}
		kept = append(kept, item)
	}
	return map[string]any{"values": kept}
}

// sortedResult orders a Prometheus-shaped answer's result by its text.
func sortedResult(v any) any {
	m, _ := v.(map[string]any)
	data, _ := m["data"].(map[string]any)
	result, _ := data["result"].([]any)
	sort.Slice(result, func(i, j int) bool {
		x, _ := json.Marshal(result[i])
		y, _ := json.Marshal(result[j])
		return string(x) < string(y)
	})
	return v
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
