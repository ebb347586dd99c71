package metricstore_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/prometheus/model/labels"

	"github.com/skytrail/skytrail/internal/storage/metricstore"
	"github.com/skytrail/skytrail/internal/storage/metricstoretest"
	"github.com/skytrail/skytrail/internal/testutil/poll"
	"github.com/skytrail/skytrail/internal/testutil/victoriametrics"
)

// TestEmbeddedContract runs the metric store's contract on the embedded
// TSDB.
func TestEmbeddedContract(t *testing.T) {
	metricstoretest.Run(t, func(t *testing.T) *metricstore.Store {
		s, err := metricstore.Open(metricstore.Config{Dir: t.TempDir()})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Close() })
		return s
	})
}

func openRemote(t *testing.T, vm *victoriametrics.Server, node string, reg prometheus.Registerer) *metricstore.Store {
	t.Helper()
	s, err := metricstore.Open(metricstore.Config{WriteURL: vm.URL + "/api/v1/write", QueryURL: vm.URL, Node: node,
		RemoteTimeout: 3 * time.Second, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// TestVictoriaMetricsContract runs the same contract on a real
// VictoriaMetrics, a new server for each part (each starts empty).
func TestVictoriaMetricsContract(t *testing.T) {
	metricstoretest.Run(t, func(t *testing.T) *metricstore.Store {
		return openRemote(t, victoriametrics.Start(t), "node-a", nil)
	})
}

// TestVictoriaMetricsNodes: two nodes write the same series to one
// VictoriaMetrics; each keeps its own (node label), queries sum both, and
// a node's live source merges only with what that node wrote.
func TestVictoriaMetricsNodes(t *testing.T) {
	vm := victoriametrics.Start(t)
	a, b := openRemote(t, vm, "node-a", nil), openRemote(t, vm, "node-b", nil)
	end := time.Now().Add(-2 * time.Minute).Truncate(time.Minute)
	ls := labels.FromStrings("__name__", "skytrail_service_calls:increase1m", "service", "checkout")
	for i, s := range []*metricstore.Store{a, b} {
		app := s.Appender(t.Context())
		if _, err := app.Append(0, ls, end.UnixMilli(), float64(10*(i+1))); err != nil {
			t.Fatal(err)
		}
		if err := app.Commit(); err != nil {
			t.Fatal(err)
		}
	}
	for _, s := range []*metricstore.Store{a, b} {
		poll.UntilNil(t, 20*time.Second, func() error {
			v, err := s.InstantQuery(t.Context(), `sum(sum_over_time(skytrail_service_calls:increase1m[5m]))`, end)
			if err != nil {
				return err
			}
			if len(v) != 1 || v[0].F != 30 {
				return fmt.Errorf("sum over both nodes = %v, want 30", v)
			}
			v, err = s.InstantQuery(t.Context(), `sum by (node) (sum_over_time(skytrail_service_calls:increase1m[5m]))`, end)
			if err != nil {
				return err
			}
			if len(v) != 2 {
				return fmt.Errorf("by node = %v, want two nodes", v)
			}
			return nil
		})
	}
	if got := a.MaxTime(); got != end.UnixMilli() {
		t.Errorf("node-a's MaxTime = %v, want %v", got, end.UnixMilli())
	}
}

// TestVictoriaMetricsDown: with VictoriaMetrics stopped, a commit fails
// with ErrUnavailable (counted on /metrics) and queries fail with it; once
// it is back, the same samples written again are stored.
func TestVictoriaMetricsDown(t *testing.T) {
	vm := victoriametrics.Start(t)
	reg := prometheus.NewRegistry()
	s := openRemote(t, vm, "node-a", reg)
	vm.Stop()
	end := time.Now().Add(-2 * time.Minute).Truncate(time.Minute)
	ls := labels.FromStrings("__name__", "skytrail_service_calls:increase1m", "service", "checkout")
	app := s.Appender(t.Context())
	if _, err := app.Append(0, ls, end.UnixMilli(), 7); err != nil {
		t.Fatal(err)
	}
	if err := app.Commit(); !errors.Is(err, metricstore.ErrUnavailable) {
		t.Fatalf("commit with VictoriaMetrics down: %v, want ErrUnavailable", err)
	}
	if _, err := s.InstantQuery(context.Background(), `sum(skytrail_service_calls:increase1m)`, end); !errors.Is(err, metricstore.ErrUnavailable) {
		t.Fatalf("query with VictoriaMetrics down: %v, want ErrUnavailable", err)
	}
	want := `
# HELP skytrail_metricstore_remote_failures_total Requests to the remote metric store that failed, by operation (write: remote write, query: PromQL API).
# TYPE skytrail_metricstore_remote_failures_total counter
skytrail_metricstore_remote_failures_total{op="query"} 1
skytrail_metricstore_remote_failures_total{op="write"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "skytrail_metricstore_remote_failures_total"); err != nil {
		t.Fatal(err)
	}
	vm.Restart(t)
	app = s.Appender(t.Context())
	if _, err := app.Append(0, ls, end.UnixMilli(), 7); err != nil {
		t.Fatal(err)
	}
	if err := app.Commit(); err != nil {
		t.Fatalf("commit after VictoriaMetrics returned: %v", err)
	}
	poll.UntilNil(t, 20*time.Second, func() error {
		v, err := s.InstantQuery(t.Context(), `sum(sum_over_time(skytrail_service_calls:increase1m[5m]))`, end)
		if err != nil || len(v) != 1 || v[0].F != 7 {
			return fmt.Errorf("after the retry: %v, %v; want 7", v, err)
		}
		return nil
	})
}
