package spanstore

import (
	"sync"

	"go.opentelemetry.io/collector/pdata/pcommon"
)

// traceWindow is the span-start range of a trace, in Unix nanoseconds; end is
// the latest span end, which bounds every span start.
type traceWindow struct {
	start, end int64
}

func (w traceWindow) covers(o traceWindow) bool {
	return w.start <= o.start && o.end <= w.end
}

// traceIndexFilter remembers which trace windows already have an index row,
// so a trace whose spans arrive in many batches is indexed once per new
// window rather than once per batch. It forgets in two generations of
// bounded size: a forgotten trace gets a second, harmless index row.
type traceIndexFilter struct {
	mu       sync.Mutex
	cur, old map[pcommon.TraceID]traceWindow
	limit    int
}

const traceIndexFilterSize = 256 << 10

func (f *traceIndexFilter) init() {
	f.cur = make(map[pcommon.TraceID]traceWindow)
	f.limit = traceIndexFilterSize
}

// needsRow records w for id and reports whether an index row must be written.
func (f *traceIndexFilter) needsRow(id pcommon.TraceID, w traceWindow) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	known, ok := f.cur[id]
	if !ok {
		known, ok = f.old[id]
	}
	if ok && known.covers(w) {
		return false
	}
	if ok {
		w.start = min(w.start, known.start)
		w.end = max(w.end, known.end)
	}
	if len(f.cur) >= f.limit {
		f.old, f.cur = f.cur, make(map[pcommon.TraceID]traceWindow, f.limit)
	}
	f.cur[id] = w
	return true
}

// lookup returns the window recorded for id, if the filter still holds it.
// Every span of the trace written since the process started lies in it.
func (f *traceIndexFilter) lookup(id pcommon.TraceID) (traceWindow, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if w, ok := f.cur[id]; ok {
		return w, true
	}
	w, ok := f.old[id]
	return w, ok
}
