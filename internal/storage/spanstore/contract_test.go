package spanstore_test

import (
	"testing"

	"github.com/skytrail/skytrail/internal/storage/spanstore"
	"github.com/skytrail/skytrail/internal/storage/spanstoretest"
	"github.com/skytrail/skytrail/internal/testutil/victorialogs"
)

// The same contract, run against both implementations.

func TestContractEmbedded(t *testing.T) {
	t.Parallel()
	spanstoretest.Run(t, func(t *testing.T) spanstoretest.Store {
		s, err := spanstore.Open(spanstore.Config{Dir: t.TempDir()})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Close() })
		return s
	})
}

func TestContractRemote(t *testing.T) {
	t.Parallel()
	vl := victorialogs.Start(t)
	spanstoretest.Run(t, func(t *testing.T) spanstoretest.Store {
		return openRemote(t, spanstore.RemoteConfig{InsertURL: vl.URL})
	})
}

func openRemote(t *testing.T, cfg spanstore.RemoteConfig) *spanstore.Store {
	t.Helper()
	if cfg.Dir == "" {
		cfg.Dir = t.TempDir()
	}
	s, err := spanstore.OpenRemote(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}
