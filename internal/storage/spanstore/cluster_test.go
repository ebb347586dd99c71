package spanstore_test

import (
	"strings"
	"testing"
	"time"

	"github.com/skytrail/skytrail/internal/pipeline"
	"github.com/skytrail/skytrail/internal/storage/spanstore"
	"github.com/skytrail/skytrail/internal/storage/spanstoretest"
	"github.com/skytrail/skytrail/internal/testutil/poll"
	"github.com/skytrail/skytrail/internal/testutil/victorialogs"
)

// vlCluster starts two VictoriaLogs storage nodes and one node that
// inserts and selects over them (-storageNode), as a VictoriaLogs cluster
// runs: vlstorage, vlstorage, vlinsert+vlselect.
func vlCluster(t *testing.T) (front *victorialogs.Server, storage []*victorialogs.Server) {
	t.Helper()
	storage = []*victorialogs.Server{victorialogs.Start(t), victorialogs.Start(t)}
	front = victorialogs.Start(t, "-storageNode="+hostPort(storage[0])+","+hostPort(storage[1]))
	return front, storage
}

func hostPort(s *victorialogs.Server) string { return strings.TrimPrefix(s.URL, "http://") }

// The contract holds on a VictoriaLogs cluster: rows spread over two
// storage nodes, every query answered by the select node from both.
func TestContractRemoteCluster(t *testing.T) {
	t.Parallel()
	front, _ := vlCluster(t)
	spanstoretest.Run(t, func(t *testing.T) spanstoretest.Store {
		return openRemote(t, spanstore.RemoteConfig{InsertURL: front.URL})
	})
}

// A storage node down: queries fail and name it, rather than answer from
// the other node alone; writes go on (the insert node sends the rows to
// the node that is up); once it is back, a trace written meanwhile and one
// written before are whole.
func TestRemoteClusterStorageNodeDown(t *testing.T) {
	t.Parallel()
	front, storage := vlCluster(t)
	s := openRemote(t, spanstore.RemoteConfig{InsertURL: front.URL, Timeout: 5 * time.Second})
	p := pipeline.New(pipeline.Config{Storage: s.Limits()}, pipeline.Consumers{Traces: []pipeline.TracesConsumer{s}})
	ctx := t.Context()
	if _, err := p.Ingest(ctx, src, oneTrace(3, 50)); err != nil {
		t.Fatal(err)
	}
	s.Flush()
	poll.Until(t, 10*time.Second, "trace 3, whole", func() bool { return len(spanIDs(t, s, 3)) == 50 })

	storage[1].Stop()
	if _, err := s.GetTrace(ctx, traceID(3)); err == nil || !strings.Contains(err.Error(), hostPort(storage[1])) {
		t.Errorf("GetTrace with storage node %s down: %v; want an error naming it", hostPort(storage[1]), err)
	}
	if _, err := s.FindTraces(ctx, spanstore.TraceQuery{}); err == nil || !strings.Contains(err.Error(), hostPort(storage[1])) {
		t.Errorf("FindTraces with storage node %s down: %v; want an error naming it", hostPort(storage[1]), err)
	}
	// Written while the node is down: acknowledged only if stored.
	_, err := p.Ingest(ctx, src, oneTrace(4, 50))
	if err != nil && pipeline.ReasonOf(err) != pipeline.Unavailable {
		t.Fatalf("ingest with a storage node down: %v; want success or a retryable error", err)
	}
	storage[1].Restart(t)
	if err != nil {
		if _, err := p.Ingest(ctx, src, oneTrace(4, 50)); err != nil {
			t.Fatalf("retry with both storage nodes up: %v", err)
		}
	}
	s.Flush()
	poll.Until(t, 20*time.Second, "traces 3 and 4, whole", func() bool {
		return len(spanIDs(t, s, 3)) == 50 && len(spanIDs(t, s, 4)) == 50
	})
}

func traceID(id byte) [16]byte {
	return [16]byte{id, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, id}
}
