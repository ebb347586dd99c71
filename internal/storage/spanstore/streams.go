package spanstore

import (
	"hash/maphash"
	"strings"
	"sync"
	"time"
)

// instanceStreams decides which log stream a service instance's spans go
// to. Normally each instance (service and packed resource) has a stream of
// its own: a block then holds one instance's spans, the resource is a
// constant column stored once a block (2.4 bytes a span less on disk than
// one stream a service), and a trace's spans within the instance still sit
// side by side, as the trace_id column's compression needs.
//
// But every stream costs the engine index entries and blocks of its own, and
// a service that starts instance after instance (a function platform, a
// crash loop, an SDK that makes a new instance ID per process start) would
// make a stream of each. So a service gets at most maxInstanceStreams
// streams of its own a day; the instances beyond share the service's
// stream, where the resource is an ordinary column.
type instanceStreams struct {
	mu   sync.Mutex
	day  int64
	seen map[string]map[uint64]struct{} // service -> hashes of its resources with a stream
}

const maxInstanceStreams = 1000

var resourceHashSeed = maphash.MakeSeed()

// streamFields returns how many of a span row's leading fields (service,
// then resource) make its log stream: 2 for an instance stream, 1 for the
// service's shared one.
func (s *instanceStreams) streamFields(service, resource string, now time.Time) int {
	if resource == "" {
		return 1
	}
	h := maphash.String(resourceHashSeed, resource)
	s.mu.Lock()
	defer s.mu.Unlock()
	// logstorage partitions by day; a new day's partition starts afresh.
	if day := now.Unix() / (24 * 60 * 60); day != s.day || s.seen == nil {
		s.day, s.seen = day, map[string]map[uint64]struct{}{}
	}
	resources := s.seen[service]
	if resources == nil {
		resources = map[uint64]struct{}{}
		s.seen[strings.Clone(service)] = resources
	}
	if _, ok := resources[h]; ok {
		return 2
	}
	if len(resources) >= maxInstanceStreams {
		return 1
	}
	resources[h] = struct{}{}
	return 2
}
