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
// written once (logIndexFilter remembers the rows written), stream field
// bucket (the trace key's first hex digit), and the rest of the key in the
// row's timestamp, not in a field: the timestamp is the last 2^20 ns of
// the line's day plus the key in nanoseconds. The row's one field, minute,
// is the line's minute of that day.
//
// Why the key is a time: a row must cost well under a byte a line (the
// lines take 39.5 B, the target is 40). A key in a field costs its bytes
// and as many again in the block's bloom filter (4.25 B a row for 16 bits,
// measured at 100k lines: 0.85 B a line); as a time it costs the
// compressed gap between sorted timestamps, and no bloom filter, and a
// lookup is a time range, for which logstorage skips by their headers all
// but one block of the bucket's stream a part (that one's timestamps it
// unpacks: a third of a lookup's CPU at 10M lines). The
// day's end rather than its start: logstorage refuses a row older than
// the retention to the nanosecond, and a day's end is never older than the
// lines of the day; nor is it beyond the day logstorage accepts the lines
// in. No service either: a trace's five lines usually come from three or
// four services, so a row a (trace, service, minute) would be nearly a row
// a line, while a minute of every service is a small search.
//
// The key is 24 bits of the trace ID: other traces sharing it add minutes
// to a lookup (at 2M traces a day, one lookup in eight), whose lines are
// then searched for the whole trace ID and not returned.
var tenantLogIndex = logstorage.TenantID{AccountID: 0, ProjectID: 3}

const fieldMinute = "minute"

var logIndexStreamFields = []string{fieldIndexBucket}

// logKeyBits is how many bits of the key a row's timestamp holds.
const logKeyBits = 20

// logTraceKey is what the log index keeps of a trace ID: 24 of its last
// bits (random in every trace-ID form stored, see traceIDSuffix), split
// into a bucket (the row's log stream: a lookup reads a 16th of the index)
// and the key within it.
func logTraceKey(id *pcommon.TraceID) (bucket byte, key int64) {
	v := binary.BigEndian.Uint32(id[12:])
	return byte(v>>28) & 0xf, int64(v>>8) & (1<<logKeyBits - 1)
}

// logIndexEntry is one index row: a trace key in a minute (Unix minutes).
type logIndexEntry struct {
	bucket byte
	key    int64
	minute int64
}

func (e logIndexEntry) packed() uint64 {
	return uint64(e.minute)<<32 | uint64(e.bucket)<<28 | uint64(e.key)
}

func logIndexEntryOf(id *pcommon.TraceID, ts int64) logIndexEntry {
	b, k := logTraceKey(id)
	return logIndexEntry{bucket: b, key: k, minute: ts / int64(time.Minute)}
}

const minutesPerDay = 24 * 60

// timestamp is the row's timestamp: in the last 2^logKeyBits ns of its
// day, the key's.
func (e logIndexEntry) timestamp() int64 {
	return logKeyTime(e.minute/minutesPerDay*nsecsPerDay, e.key)
}

// logKeyTime is the time of key's rows in the day starting at day.
func logKeyTime(day, key int64) int64 {
	return day + nsecsPerDay - 1<<logKeyBits + key
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
		e.buf = strconv.AppendInt(e.buf[:0], ent.minute%minutesPerDay, 10)
		fields := append(e.fields[:0],
			logstorage.Field{Name: fieldIndexBucket, Value: hexDigits[ent.bucket : ent.bucket+1]},
			logstorage.Field{Name: fieldMinute, Value: unsafeString(e.buf)})
		idx.MustAdd(tenantLogIndex, ent.timestamp(), fields, -1)
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
	lo, hi := s.heldRangeInclusive()
	byBucket := map[byte][]int64{}
	for i := range ids {
		b, k := logTraceKey(&ids[i])
		if !slices.Contains(byBucket[b], k) {
			byBucket[b] = append(byBucket[b], k)
		}
	}
	var minutes []int64
	var ts []int64
	for b, keys := range byBucket {
		// The key's time in every day the store holds.
		var slots []string
		for day := lo / nsecsPerDay * nsecsPerDay; day <= hi; day += nsecsPerDay {
			for _, k := range keys {
				t := rfc3339(logKeyTime(day, k))
				slots = append(slots, fmt.Sprintf("_time:[%s, %s]", t, t))
			}
		}
		q, err := parse(fmt.Sprintf("_stream:{%s=%s} (%s)", fieldIndexBucket, quote(hexDigits[b:b+1]), strings.Join(slots, " or ")))
		if err != nil {
			return nil, err
		}
		q.AddTimeFilter(lo, hi)
		err = s.run(ctx, tenantLogIndex, q, func(db *logstorage.DataBlock) {
			ts, _ = db.GetTimestamps(ts[:0])
			col := db.GetColumnByName(fieldMinute)
			if col == nil {
				return
			}
			for i, v := range col.Values {
				m, err := strconv.ParseInt(v, 10, 64)
				if err != nil || i >= len(ts) {
					continue
				}
				minutes = append(minutes, ts[i]/nsecsPerDay*nsecsPerDay+m*int64(time.Minute))
			}
		})
		if err != nil {
			return nil, fmt.Errorf("look up trace IDs in the log index: %w", err)
		}
	}
	slices.Sort(minutes)
	return slices.Compact(minutes), nil
}

func rfc3339(ns int64) string { return time.Unix(0, ns).UTC().Format(time.RFC3339Nano) }

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
