package cluster

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"testing"

	"go.opentelemetry.io/collector/pdata/pcommon"
)

func traceIDs(n int) []pcommon.TraceID {
	rng := rand.New(rand.NewPCG(1, 2))
	ids := make([]pcommon.TraceID, n)
	for i := range ids {
		binary.BigEndian.PutUint64(ids[i][:8], rng.Uint64())
		binary.BigEndian.PutUint64(ids[i][8:], rng.Uint64())
	}
	return ids
}

func owners(members []string, ids []pcommon.TraceID) []string {
	h := newRendezvous(members)
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = members[h.owner(key(id), nil)]
	}
	return out
}

// A membership change moves few traces: adding a fourth node moves about a
// quarter of the trace IDs, all of them to the new node; removing one
// moves only the removed node's, and the traces spread evenly.
func TestRendezvousMovesFewTraces(t *testing.T) {
	const n = 100_000
	ids := traceIDs(n)
	three := []string{"10.0.0.1:4317", "10.0.0.2:4317", "10.0.0.3:4317"}
	four := append(append([]string{}, three...), "10.0.0.4:4317")
	before, after := owners(three, ids), owners(four, ids)

	per := map[string]int{}
	for _, o := range before {
		per[o]++
	}
	for _, m := range three {
		if share := float64(per[m]) / n; share < 0.32 || share > 0.347 {
			t.Errorf("%s owns %.3f of the traces, want about 1/3", m, share)
		}
	}
	moved := 0
	for i := range ids {
		if before[i] != after[i] {
			moved++
			if after[i] != "10.0.0.4:4317" {
				t.Fatalf("trace %d moved from %s to %s, not to the new node", i, before[i], after[i])
			}
		}
	}
	if share := float64(moved) / n; share < 0.24 || share > 0.26 {
		t.Errorf("adding a 4th node moved %.3f of the traces, want about 1/4", share)
	}

	// Removing 10.0.0.2 moves its traces only, spread over the other two.
	two := []string{"10.0.0.1:4317", "10.0.0.3:4317"}
	afterRemove := owners(two, ids)
	to := map[string]int{}
	for i := range ids {
		if before[i] != afterRemove[i] {
			if before[i] != "10.0.0.2:4317" {
				t.Fatalf("trace %d moved from %s, which stayed", i, before[i])
			}
			to[afterRemove[i]]++
		} else if before[i] == "10.0.0.2:4317" {
			t.Fatalf("trace %d stayed on the removed node", i)
		}
	}
	if a, b := to["10.0.0.1:4317"], to["10.0.0.3:4317"]; a+b != per["10.0.0.2:4317"] || float64(a)/float64(a+b) < 0.47 || float64(a)/float64(a+b) > 0.53 {
		t.Errorf("the removed node's %d traces went %d / %d to the others, want about half each", per["10.0.0.2:4317"], a, b)
	}
}

// The next node in rendezvous order is where a down peer's traces go, and
// it is the owner the same traces get once that peer is gone from the list.
func TestRendezvousSkipIsRemoval(t *testing.T) {
	ids := traceIDs(10_000)
	three := []string{"a:1", "b:1", "c:1"}
	h := newRendezvous(three)
	without := owners([]string{"a:1", "c:1"}, ids)
	for i, id := range ids {
		got := h.owner(key(id), func(m int) bool { return m == 1 })
		if three[got] != without[i] {
			t.Fatalf("trace %d: skipping b gives %s, removing b gives %s", i, three[got], without[i])
		}
	}
	if h.owner(key(ids[0]), func(int) bool { return true }) != -1 {
		t.Error("with every member skipped, owner should be -1")
	}
}

func BenchmarkOwner(b *testing.B) {
	for _, n := range []int{3, 10} {
		members := make([]string, n)
		for i := range members {
			members[i] = fmt.Sprintf("10.0.0.%d:4317", i)
		}
		h := newRendezvous(members)
		ids := traceIDs(1024)
		b.Run(fmt.Sprint(n, "_members"), func(b *testing.B) {
			for i := 0; b.Loop(); i++ {
				_ = h.owner(key(ids[i&1023]), nil)
			}
		})
	}
}
