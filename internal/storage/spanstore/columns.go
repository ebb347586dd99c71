package spanstore

import (
	"sync"
)

// maxColumnsPerService bounds the distinct field names a service's spans
// may use as columns. logstorage keeps at most 2,000 columns in a block and
// drops rows beyond that (with only a log line), and blocks hold one
// service's spans, merged over time: with fewer than half that many names
// per service, even the data written before and after a restart (when this
// budget starts afresh) merges within the limit. Attributes beyond the
// budget are kept in the "overflow" field instead, readable but not indexed.
const maxColumnsPerService = 900

// columnBudget admits field names per service, first come first served.
type columnBudget struct {
	mu         sync.Mutex
	perService map[string]map[string]struct{}
	overflowed map[string]bool
}

func newColumnBudget() *columnBudget {
	return &columnBudget{perService: map[string]map[string]struct{}{}, overflowed: map[string]bool{}}
}

// admit reports whether name may be a column of service's spans.
func (b *columnBudget) admit(service, name string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	names := b.perService[service]
	if names == nil {
		names = map[string]struct{}{}
		b.perService[service] = names
	}
	if _, ok := names[name]; ok {
		return true
	}
	if len(names) >= maxColumnsPerService {
		b.overflowed[service] = true
		return false
	}
	names[string([]byte(name))] = struct{}{}
	return true
}

// admittedCache remembers, per encoder, names the budget already admitted:
// an admission is never revoked, so the shared lock is taken only for names
// this encoder has not seen.
type admittedCache map[string]map[string]struct{}

func (c admittedCache) admit(b *columnBudget, service, name string) bool {
	if names, ok := c[service]; ok {
		if _, ok := names[name]; ok {
			return true
		}
	}
	if !b.admit(service, name) {
		return false
	}
	names := c[service]
	if names == nil {
		names = map[string]struct{}{}
		c[string([]byte(service))] = names
	}
	names[string([]byte(name))] = struct{}{}
	return true
}
