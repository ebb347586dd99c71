package server_test

import (
	"context"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/skytrail/skytrail/internal/server"
	"github.com/skytrail/skytrail/internal/servertest"
	"github.com/skytrail/skytrail/internal/testutil/poll"
)

// A SkyWalking agent keeps its segment stream open for as long as it
// runs, so gRPC's graceful stop waits for it until the shutdown's deadline.
// The flush after that wait must still happen: the running minute's figures
// (here without the write-ahead log, which would replay them) are in the
// metric store after a restart.
func TestShutdownFlushesAfterAnAgentOutlastsTheDeadline(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "data")
	noWAL := func(c *server.Config) { c.WAL = false }
	s := servertest.StartIn(t, dir, noWAL)
	api := "http://" + s.Addrs["query API"]
	tracer := servertest.Go2sky(t, s, "keeper")
	const calls = 5
	for range calls {
		span, _, err := tracer.CreateEntrySpan(context.Background(), "GET /keep", func(string) (string, error) { return "", nil })
		if err != nil {
			t.Fatal(err)
		}
		span.End()
	}
	served := func(base string) uint64 {
		var got struct {
			Services []struct {
				Name    string
				Figures *struct{ Calls uint64 }
			}
		}
		if servertest.GetJSON(t, base+"/api/v1/services?service=keeper", &got) != http.StatusOK || len(got.Services) != 1 || got.Services[0].Figures == nil {
			return 0
		}
		return got.Services[0].Figures.Calls
	}
	poll.Until(t, waitTimeout, "keeper's calls counted", func() bool { return served(api) == calls })

	// The go2sky reporter is still connected: the graceful stop cannot end.
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Errorf("shutdown after its deadline: %v", err)
	}

	s = servertest.StartIn(t, dir, noWAL)
	if got := served("http://" + s.Addrs["query API"]); got != calls {
		t.Errorf("after a shutdown whose deadline an agent's stream outlasted, keeper has %d calls, want %d", got, calls)
	}
}
