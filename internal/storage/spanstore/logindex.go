package spanstore

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/VictoriaMetrics/VictoriaLogs/lib/logstorage"
	"go.opentelemetry.io/collector/pdata/pcommon"
)

// The trace-ID index of log lines says in which minutes a trace wrote log
// lines, so that the lines of a trace are looked for in those minutes
// rather than over the whole retention (which checked every block's bloom
// filter: p99 99.6 ms at 5M lines).
//
// Its rows live in their own tenant: one row a trace key and minute,
// written once (logIndexFilter remembers the pairs written), timestamp the
// minute's start, stream field bucket (see logIndexBucket), field
// trace_key (see logTraceKey). No service: a trace's five lines usually
// come from three or four services, so a row a (trace, service, minute)
// would be nearly a row a line, while a minute of every service is a small
// search.
//
// A row costs what its key costs: the timestamps of a block repeat
// (minutes), the bucket is the stream, and trace_key takes its bytes and
// a bloom-filter entry. So the key is short, and a lookup may find the
// minutes of another trace with the same key too: those are searched for
// the whole trace ID and give nothing.
var tenantLogIndex = logstorage.TenantID{AccountID: 0, ProjectID: 3}

const fieldTraceKey = "trace_key"

var logIndexStreamFields = []string{fieldIndexBucket}

// logTraceKey is what the log index keeps of a trace ID: its last bytes
// (random in every trace-ID form stored, see traceIDSuffix), split into a
// bucket (the row's log stream: a lookup reads a 16th of the index) and
// the key stored in the row.
func logTraceKey(id *pcommon.TraceID) (bucket byte, key uint32) {
	v := binary.BigEndian.Uint32(id[12:])
	return byte(v >> 28), v & logTraceKeyMask
}

// logTraceKeyMask keeps the key's low 16 bits: logstorage stores a column
// whose values all fit 16 bits in 2 bytes a row. With the bucket, 20 bits
// of the ID: at 2M traces in the store a lookup finds about 2 other traces'
// minutes besides its own.
const logTraceKeyMask = 1<<16 - 1

// logIndexEntry is one index row: a trace key in a minute (Unix minutes).
type logIndexEntry struct {
	bucket byte
	key    uint32
	minute int64
}

func (e logIndexEntry) packed() uint64 {
	return uint64(e.minute)<<32 | uint64(e.bucket)<<28 | uint64(e.key)
}

func logIndexEntryOf(id *pcommon.TraceID, ts int64) logIndexEntry {
	b, k := logTraceKey(id)
	return logIndexEntry{bucket: b, key: k, minute: ts / int64(time.Minute)}
}

// logIndexFilter remembers the index rows written, in two generations of
// bounded size, so a trace's lines of one minute make one row. A forgotten
// entry gets a second, harmless row.
type logIndexFilter struct {
	mu       sync.Mutex
	cur, old map[uint64]struct{}
}

const logIndexFilterSize = 256 << 10

// has reports whether e's row was written.
func (f *logIndexFilter) has(e uint64) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.cur[e]; ok {
		return true
	}
	_, ok := f.old[e]
	return ok
}

// add records that e's row was written.
func (f *logIndexFilter) add(e uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.cur == nil || len(f.cur) >= logIndexFilterSize {
		f.old, f.cur = f.cur, make(map[uint64]struct{}, 1024)
	}
	f.cur[e] = struct{}{}
}

// addLogIndexRows adds the index rows of entries not written yet to idx
// and returns the packed entries added. The embedded engine cannot fail a
// write, so they are recorded at once; a remote store records them once
// the server acknowledged them (ConsumeLogs), lest a retried batch skip
// rows that were never stored.
func (s *Store) addLogIndexRows(idx *logstorage.LogRows, entries []logIndexEntry, e *rowEncoder) []uint64 {
	var added []uint64
	for _, ent := range entries {
		p := ent.packed()
		if s.logIndex.has(p) || slices.Contains(added, p) {
			continue
		}
		added = append(added, p)
		e.buf = strconv.AppendUint(e.buf[:0], uint64(ent.key), 10)
		bucket := hexDigits[ent.bucket : ent.bucket+1]
		fields := append(e.fields[:0],
			logstorage.Field{Name: fieldIndexBucket, Value: bucket},
			logstorage.Field{Name: fieldTraceKey, Value: unsafeString(e.buf)})
		idx.MustAdd(tenantLogIndex, ent.minute*int64(time.Minute), fields, -1)
		e.fields = fields
		if s.remote == nil {
			s.logIndex.add(p)
		}
	}
	return added
}

const hexDigits = "0123456789abcdef"

// logMinutes looks the trace IDs up in the log index: the start (Unix
// nanoseconds) of every minute in which one of them, or a trace sharing its
// key, wrote lines, in ascending order.
func (s *Store) logMinutes(ctx context.Context, ids []pcommon.TraceID) ([]int64, error) {
	byBucket := map[byte][]string{}
	for i := range ids {
		b, k := logTraceKey(&ids[i])
		v := strconv.FormatUint(uint64(k), 10)
		if !slices.Contains(byBucket[b], v) {
			byBucket[b] = append(byBucket[b], v)
		}
	}
	var minutes []int64
	var ts []int64
	for b, keys := range byBucket {
		q, err := parse(fmt.Sprintf("_stream:{%s=%s} %s", fieldIndexBucket, quote(hexDigits[b:b+1]), anyOf(fieldTraceKey, keys)))
		if err != nil {
			return nil, err
		}
		q.AddTimeFilter(s.heldRangeInclusive())
		err = s.run(ctx, tenantLogIndex, q, func(db *logstorage.DataBlock) {
			ts, _ = db.GetTimestamps(ts[:0])
			minutes = append(minutes, ts...)
		})
		if err != nil {
			return nil, fmt.Errorf("look up trace IDs in the log index: %w", err)
		}
	}
	slices.Sort(minutes)
	return slices.Compact(minutes), nil
}

// minuteRanges joins adjacent minutes into [start, end) ranges.
func minuteRanges(minutes []int64) [][2]int64 {
	var out [][2]int64
	for _, m := range minutes {
		if n := len(out); n > 0 && out[n-1][1] >= m {
			out[n-1][1] = m + int64(time.Minute)
			continue
		}
		out = append(out, [2]int64{m, m + int64(time.Minute)})
	}
	return out
}

// logIndexSinceFile, in the store's directory, holds when this store began
// indexing log lines (Unix nanoseconds, decimal), or 0 when it did from its
// first line. Lines stored before then are not in the log index: a trace
// not found in it is looked for among them the old way, over every block
// of that time.
const logIndexSinceFile = "log-index-since"

// openLogIndexSince reads the file, writing it first: 0 into a store with
// no lines yet (fresh), now into one that has some.
func openLogIndexSince(dir string, fresh bool, now time.Time) (int64, error) {
	path := filepath.Join(dir, logIndexSinceFile)
	if b, err := os.ReadFile(path); err == nil {
		since, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("read %s: %w", path, err)
		}
		return since, nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return 0, fmt.Errorf("read the log index's start: %w", err)
	}
	since := int64(0)
	if !fresh {
		since = now.UnixNano()
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return 0, fmt.Errorf("write the log index's start: %w", err)
	}
	if err := os.WriteFile(path, []byte(strconv.FormatInt(since, 10)+"\n"), 0o644); err != nil {
		return 0, fmt.Errorf("write the log index's start: %w", err)
	}
	return since, nil
}

// unindexedRange is the time range (Unix nanoseconds, inclusive) of the
// lines stored before the log index began, as far as the store still
// holds them; ok is false when there are none. A line stored before
// logIndexSince may be stamped up to futureRetention after it.
func (s *Store) unindexedRange() (lo, hi int64, ok bool) {
	if s.logIndexSince == 0 {
		return 0, 0, false
	}
	lo, hi = s.heldRangeInclusive()
	hi = min(hi, s.logIndexSince+int64(futureRetention))
	return lo, hi, lo <= hi
}
