package cluster

import (
	"github.com/cespare/xxhash/v2"
	"go.opentelemetry.io/collector/pdata/pcommon"
)

// rendezvous is highest-random-weight hashing over the members: a trace
// belongs to the member whose score for the trace ID is highest, and when
// that member is down, to the next highest. Adding a member takes from
// each of the others only the traces it now scores highest for (1/n of
// them); removing one moves only its own traces. Every node computes the
// same owner from the same member names, with no coordination.
type rendezvous struct {
	members []string
	seeds   []uint64 // xxhash of each member's name
}

func newRendezvous(members []string) *rendezvous {
	r := &rendezvous{members: members, seeds: make([]uint64, len(members))}
	for i, m := range members {
		r.seeds[i] = xxhash.Sum64String(m)
	}
	return r
}

// key is a trace ID's hash: trace IDs are mostly random, but SkyWalking
// IDs converted to 16 bytes and hand-made IDs need not be, so they are
// hashed rather than used as they are.
func key(id pcommon.TraceID) uint64 { return xxhash.Sum64(id[:]) }

// score mixes a trace's key with a member's seed (the SplitMix64
// finaliser): cheaper than hashing the pair again, and as uniform for
// the ranking, which the rendezvous tests measure.
func score(k, seed uint64) uint64 {
	z := k ^ seed
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// owner is the index of the member with the highest score for k among
// those skip does not exclude (nil: none excluded), or -1 when every
// member is excluded.
func (r *rendezvous) owner(k uint64, skip func(i int) bool) int {
	best, bestScore := -1, uint64(0)
	for i, seed := range r.seeds {
		if skip != nil && skip(i) {
			continue
		}
		if s := score(k, seed); best < 0 || s > bestScore {
			best, bestScore = i, s
		}
	}
	return best
}
