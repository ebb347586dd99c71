package spanstore

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// maxColumnsPerService bounds the distinct field names one service's rows
// may use as columns on one day; attributes beyond go to the "overflow"
// field (see schema.go), read back whole but not searchable by tag.
//
// Why per service and day, and why it must outlive the process: logstorage
// keeps at most 2,000 field names in a block (maxColumnsPerBlock in
// lib/logstorage/consts.go) and drops the rows that would take a block past
// that with only a warning (block.mustInitFromRows), rows SkyTrail has long
// acknowledged. A block holds rows of one log stream of one day partition:
// ingestion cuts an in-memory part into blocks by stream
// (inmemoryPart.mustInitFromRows), and merging a partition's parts joins
// blocks of the same stream only (blockStreamMerger.mustWriteBlock), up to
// 2-4 MiB uncompressed: thousands of small spans, written hours and restarts
// apart, end up in one block. Every stream SkyTrail writes has the service
// as its first stream field (see instanceStreams; agent logs are streamed by
// service alone), so whatever the merges do, a block's field names are
// among the fields outside the budget (at most 14 for a span: service,
// resource, name, trace_id, span, kind, duration, status_code,
// status_message, trace_state, flags, types, extra, overflow; 9 for a log
// record) and the names admitted for its service on its day, by every
// process that ever wrote that day. So the budget is kept per (day,
// service) and on disk: a name admitted is appended to the day's file in
// columns/ and fsynced before any row using it reaches logstorage, and the
// file is read again after a restart. (Held in memory only, the budget let
// each run admit 900 new names: three runs in a day made a merge drop 813
// of 3,000 spans, TestColumnBudgetSurvivesRestartAndMerge.)
//
// 14 + 900 is far from 2,000 on purpose: a day partly written by a SkyTrail
// that kept the budget in memory (up to 900 names a run) still merges
// within the limit with what this one admits, 900 + 900 + 14 = 1,814; and a
// service with more than a few hundred distinct keys a day has IDs in its
// keys, which cost logstorage memory and query time as columns and are
// better kept in overflow. Spans and agent logs of a service share the
// budget, though they are different streams: conservative, and simple.
const maxColumnsPerService = 900

// columnsDir is the directory, in the store's, of the per-day files of
// admitted column names: one file a day named like logstorage's partition
// (YYYYMMDD), one line a name, Go-quoted service, space, Go-quoted name.
const columnsDir = "columns"

const nsecsPerDay = 24 * 60 * 60 * int64(time.Second)

// columnRetryAfter is how long a day admits no new names after its file
// could not be written (a full disk, most likely): the attributes go to
// overflow meanwhile, rather than every span trying the disk again.
const columnRetryAfter = 10 * time.Second

// columnBudget admits field names per service and day, first come first
// served, and keeps what it admitted in files that outlive the process.
type columnBudget struct {
	dir       string
	retention time.Duration // logstorage drops days older than this, their files go too

	mu   sync.Mutex
	days map[int64]*dayColumns
	rec  []byte // a record being appended
}

// dayColumns is one day's admitted names and its file.
type dayColumns struct {
	day  int64
	path string
	// services maps a service to its admitted names, each with the number
	// of its record among those this process appended (0: read from the
	// file at load, so durable).
	services map[string]map[string]uint64

	f       *os.File // open for appending from the first name admitted
	size    int64    // bytes of whole records in the file
	written uint64   // records this process appended
	synced  uint64   // records among them known to be on disk
	dirSync bool     // the file's directory entry is on disk

	// full: the file could not be read whole, so the day's names are not
	// all known; no name beyond those read is admitted (they go to overflow).
	full bool
	// broken: the file may not hold every name in memory (a write or fsync
	// failed and could not be undone); it is written again whole before
	// anything else, and no new name is admitted until then.
	broken  bool
	retryAt time.Time

	syncMu sync.Mutex // one fsync at a time; those waiting find their records synced by it
}

// pendingColumns is the last record of a day that rows about to be added
// rely on: it must be on disk first (columnBudget.sync).
type pendingColumns struct {
	day int64
	seq uint64
}

// openColumnBudget opens the budget kept in storeDir, dropping the files of
// days logstorage no longer keeps.
func openColumnBudget(storeDir string, retention time.Duration, now time.Time) (*columnBudget, error) {
	b := &columnBudget{dir: filepath.Join(storeDir, columnsDir), retention: retention, days: map[int64]*dayColumns{}}
	if err := os.MkdirAll(b.dir, 0o755); err != nil {
		return nil, fmt.Errorf("create the column budget directory: %w", err)
	}
	if err := syncDir(storeDir); err != nil {
		return nil, fmt.Errorf("sync the span store directory: %w", err)
	}
	entries, err := os.ReadDir(b.dir)
	if err != nil {
		return nil, fmt.Errorf("read the column budget directory: %w", err)
	}
	minDay := b.minDay(now)
	for _, de := range entries {
		day, ok := parseDayName(de.Name())
		if ok && day >= minDay {
			continue
		}
		// A day logstorage has dropped, or a rewrite's leftover.
		if err := os.Remove(filepath.Join(b.dir, de.Name())); err != nil {
			return nil, fmt.Errorf("remove an old column budget file: %w", err)
		}
	}
	return b, nil
}

// minDay is the oldest day logstorage still takes rows for.
func (b *columnBudget) minDay(now time.Time) int64 {
	return (now.UnixNano() - b.retention.Nanoseconds()) / nsecsPerDay
}

func dayName(day int64) string {
	return time.Unix(0, day*nsecsPerDay).UTC().Format("20060102")
}

func parseDayName(name string) (int64, bool) {
	t, err := time.Parse("20060102", name)
	if err != nil || len(name) != 8 {
		return 0, false
	}
	return t.UnixNano() / nsecsPerDay, true
}

// admit reports whether name may be a column of service's rows on day (a
// row's timestamp / nsecsPerDay: logstorage's partition). seq > 0 means the
// admission is not known to be on disk yet: rows using it may be added only
// after sync(day, seq) returns nil.
func (b *columnBudget) admit(day int64, service, name string, now time.Time) (ok bool, seq uint64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	d := b.days[day]
	if d == nil {
		if day < b.minDay(now) {
			return false, 0 // logstorage drops the row anyway: leave no file behind
		}
		d = b.loadLocked(day, now)
	}
	names := d.services[service]
	if seq, ok := names[name]; ok {
		if seq > d.synced {
			return true, seq
		}
		return true, 0
	}
	if len(names) >= maxColumnsPerService || d.full || now.Before(d.retryAt) {
		return false, 0
	}
	if d.broken {
		if err := b.rewriteLocked(d); err != nil {
			d.retryAt = now.Add(columnRetryAfter)
			slog.Warn("span store: column budget file could not be written; new attribute keys of the day go to the overflow field meanwhile", "file", d.path, "error", err)
			return false, 0
		}
	}
	if err := b.appendLocked(d, service, name); err != nil {
		d.retryAt = now.Add(columnRetryAfter)
		slog.Warn("span store: column budget file could not be written; new attribute keys of the day go to the overflow field meanwhile", "file", d.path, "error", err)
		return false, 0
	}
	if names == nil {
		names = map[string]uint64{}
		d.services[strings.Clone(service)] = names
	}
	d.written++
	names[strings.Clone(name)] = d.written
	return true, d.written
}

// loadLocked reads day's file (none is an empty day) and drops from memory
// the days logstorage no longer keeps, with their files.
func (b *columnBudget) loadLocked(day int64, now time.Time) *dayColumns {
	minDay := b.minDay(now)
	for old, d := range b.days {
		if old < minDay {
			if d.f != nil {
				_ = d.f.Close()
			}
			_ = os.Remove(d.path)
			delete(b.days, old)
		}
	}
	d := &dayColumns{day: day, path: filepath.Join(b.dir, dayName(day)), services: map[string]map[string]uint64{}}
	b.days[day] = d
	data, err := os.ReadFile(d.path)
	if errors.Is(err, fs.ErrNotExist) {
		return d
	}
	if err != nil {
		d.full = true
		slog.Warn("span store: column budget file could not be read; new attribute keys of the day go to the overflow field", "file", d.path, "error", err)
		return d
	}
	good := 0 // bytes of whole records
	for rest := data; len(rest) > 0; {
		nl := bytes.IndexByte(rest, '\n')
		if nl < 0 {
			break // a record cut short by a crash: its rows were never added
		}
		service, name, ok := parseColumnRecord(string(rest[:nl]))
		if !ok {
			// Whatever name this was, rows may use it: admit nothing new.
			d.full = true
			slog.Warn("span store: column budget file has an unreadable line; new attribute keys of the day go to the overflow field", "file", d.path, "offset", good)
			break
		}
		names := d.services[service]
		if names == nil {
			names = map[string]uint64{}
			d.services[service] = names
		}
		names[name] = 0
		rest = rest[nl+1:]
		good += nl + 1
	}
	d.size = int64(good)
	d.dirSync = true
	if !d.full && good < len(data) {
		// Drop the cut record, so appends start on a line of their own.
		if err := os.Truncate(d.path, d.size); err != nil {
			d.broken = true
		}
	}
	return d
}

func parseColumnRecord(line string) (service, name string, ok bool) {
	qs, err := strconv.QuotedPrefix(line)
	if err != nil || len(line) <= len(qs) || line[len(qs)] != ' ' {
		return "", "", false
	}
	qn := line[len(qs)+1:]
	if service, err = strconv.Unquote(qs); err != nil {
		return "", "", false
	}
	if name, err = strconv.Unquote(qn); err != nil {
		return "", "", false
	}
	return service, name, true
}

// appendLocked appends a record to d's file, undoing a partial write.
func (b *columnBudget) appendLocked(d *dayColumns, service, name string) error {
	if d.f == nil {
		f, err := os.OpenFile(d.path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
		if err != nil {
			return fmt.Errorf("open: %w", err)
		}
		d.f = f
	}
	b.rec = strconv.AppendQuote(b.rec[:0], service)
	b.rec = append(b.rec, ' ')
	b.rec = strconv.AppendQuote(b.rec, name)
	b.rec = append(b.rec, '\n')
	n, err := d.f.Write(b.rec)
	if err != nil {
		if n > 0 {
			if terr := d.f.Truncate(d.size); terr != nil {
				d.broken = true
			}
		}
		return fmt.Errorf("append: %w", err)
	}
	d.size += int64(n)
	return nil
}

// rewriteLocked writes d's file again, whole, from memory: after a failed
// fsync the file's recent pages may never reach the disk, whatever later
// fsyncs say, so it is replaced rather than trusted.
func (b *columnBudget) rewriteLocked(d *dayColumns) error {
	if d.f != nil {
		_ = d.f.Close()
		d.f = nil
	}
	var buf []byte
	for service, names := range d.services {
		for name := range names {
			buf = strconv.AppendQuote(buf, service)
			buf = append(buf, ' ')
			buf = strconv.AppendQuote(buf, name)
			buf = append(buf, '\n')
		}
	}
	tmp := d.path + ".tmp"
	err := writeFileSync(tmp, buf)
	if err == nil {
		err = os.Rename(tmp, d.path)
	}
	if err == nil {
		err = syncDir(b.dir)
	}
	if err != nil {
		_ = os.Remove(tmp)
		d.broken = true
		return fmt.Errorf("rewrite: %w", err)
	}
	d.broken, d.size, d.synced, d.dirSync = false, int64(len(buf)), d.written, true
	return nil
}

func writeFileSync(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// sync returns once the records pending names are on disk: one fsync a day
// for all the names admitted meanwhile, whoever admitted them. An error
// means the rows relying on them must not be added (the caller answers with
// a retryable error).
func (b *columnBudget) sync(pending []pendingColumns) error {
	for _, p := range pending {
		b.mu.Lock()
		d := b.days[p.day]
		b.mu.Unlock()
		if d == nil {
			continue // dropped with its day: logstorage drops the rows too
		}
		if err := b.syncDay(d, p.seq); err != nil {
			return fmt.Errorf("save the column budget of %s: %w", dayName(d.day), err)
		}
	}
	return nil
}

func (b *columnBudget) syncDay(d *dayColumns, seq uint64) error {
	d.syncMu.Lock()
	defer d.syncMu.Unlock()
	b.mu.Lock()
	if seq <= d.synced {
		b.mu.Unlock()
		return nil
	}
	f, target, broken, dirSync := d.f, d.written, d.broken, d.dirSync
	b.mu.Unlock()

	var err error
	if !broken && f != nil {
		err = f.Sync()
		if err == nil && !dirSync {
			err = syncDir(b.dir) // the file's name, when this process made it
		}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if !broken && f != nil && err == nil {
		d.synced = max(d.synced, target)
		d.dirSync = true
		return nil
	}
	if d.synced >= seq {
		return nil // rewritten meanwhile
	}
	if rerr := b.rewriteLocked(d); rerr != nil {
		return errors.Join(err, rerr)
	}
	return nil
}

// close closes the open day files (the records are on disk already, or
// belong to rows that were never added).
func (b *columnBudget) close() {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, d := range b.days {
		if d.f != nil {
			_ = d.f.Close()
			d.f = nil
		}
	}
}

// admittedCache remembers, per encoder, names the budget admitted: an
// admission is never revoked, so the shared lock is taken only for names
// this encoder has not seen. It holds names on disk, and names whose
// records the batch being encoded waits for (pending); when that wait
// fails, the cache is emptied.
type admittedCache struct {
	days    map[int64]map[string]map[string]struct{} // day -> service -> names
	pending []pendingColumns
}

// names is the cache of one service's names on day (nil when empty).
func (c *admittedCache) names(day int64, service string) map[string]struct{} {
	return c.days[day][service]
}

// admit reports whether name may be a column of service's rows on day,
// asking the budget when cached (the names found for day and service, may
// be nil) does not hold it.
func (c *admittedCache) admit(b *columnBudget, cached map[string]struct{}, day int64, service, name string, now time.Time) bool {
	if _, ok := cached[name]; ok {
		return true
	}
	ok, seq := b.admit(day, service, name, now)
	if !ok {
		return false
	}
	if seq > 0 {
		c.wait(day, seq)
	}
	if c.days == nil {
		c.days = map[int64]map[string]map[string]struct{}{}
	}
	services := c.days[day]
	if services == nil {
		if len(c.days) >= 4 {
			// Spans come for a day or two at a time; a late one rebuilds.
			clear(c.days)
		}
		services = map[string]map[string]struct{}{}
		c.days[day] = services
	}
	names := services[service]
	if names == nil {
		names = map[string]struct{}{}
		services[strings.Clone(service)] = names
	}
	names[strings.Clone(name)] = struct{}{}
	return true
}

func (c *admittedCache) wait(day int64, seq uint64) {
	for i := range c.pending {
		if c.pending[i].day == day {
			c.pending[i].seq = max(c.pending[i].seq, seq)
			return
		}
	}
	c.pending = append(c.pending, pendingColumns{day: day, seq: seq})
}

// sync waits for the budget records the encoded batch relies on.
func (c *admittedCache) sync(b *columnBudget) error {
	if len(c.pending) == 0 {
		return nil
	}
	err := b.sync(c.pending)
	c.pending = c.pending[:0]
	if err != nil {
		clear(c.days)
	}
	return err
}
