package spanstore

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/VictoriaMetrics/VictoriaLogs/lib/logstorage"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/skytrail/skytrail/internal/pipeline"
)

const (
	defaultSearchLimit = 20
	maxSearchLimit     = 1000
	// defaultLookback bounds a search given no start.
	defaultLookback = time.Hour
	maxOperations   = 10_000
)

// run executes a LogsQL query and hands each result block to fn, one block
// at a time. fn must copy any string it keeps. When ctx ends, run returns
// its error: logstorage then stops scheduling blocks but reports success
// with whatever it had found, a partial answer nobody should mistake for a
// whole one.
func (s *Store) run(ctx context.Context, tenant logstorage.TenantID, q *logstorage.Query, fn func(db *logstorage.DataBlock)) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if s.remote != nil {
		return s.remote.runQuery(ctx, tenant, q, func(db *logstorage.DataBlock) {
			if ctx.Err() == nil {
				fn(db)
			}
		})
	}
	qs := &logstorage.QueryStats{}
	qctx := logstorage.NewQueryContext(ctx, qs, []logstorage.TenantID{tenant}, q, false, nil)
	var mu sync.Mutex
	err := s.storage.RunQuery(qctx, func(_ uint, db *logstorage.DataBlock) {
		mu.Lock()
		defer mu.Unlock()
		// Blocks already being searched when ctx ended still arrive; decoding
		// them is work nobody waits for.
		if ctx.Err() != nil {
			return
		}
		fn(db)
	})
	if s.queryStats != nil {
		s.queryStats.UpdateAtomic(qs)
	}
	if err == nil {
		err = ctx.Err()
	}
	return err
}

func parse(query string) (*logstorage.Query, error) {
	q, err := logstorage.ParseQuery(query)
	if err != nil {
		return nil, fmt.Errorf("build span query %q: %w", query, err)
	}
	return q, nil
}

// quote makes s a LogsQL string literal (LogsQL reads Go-quoted strings).
func quote(s string) string { return strconv.Quote(s) }

// Services implements Reader.
func (s *Store) Services(ctx context.Context) ([]string, error) {
	q, err := parse("*")
	if err != nil {
		return nil, err
	}
	lo, hi := s.heldRange(time.Now())
	q.AddTimeFilter(lo, hi-1)
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("list services: %w", err)
	}
	var out []string
	if s.remote != nil {
		if out, err = s.remote.streamFieldValues(ctx, tenantSpans, q, fieldService); err != nil {
			return nil, fmt.Errorf("list services: %w", err)
		}
		sort.Strings(out)
		return out, nil
	}
	qctx := logstorage.NewQueryContext(ctx, &logstorage.QueryStats{}, []logstorage.TenantID{tenantSpans}, q, false, nil)
	values, err := s.storage.GetStreamFieldValues(qctx, fieldService, "", 0)
	if err == nil {
		// As in run: a cancelled lookup ends early and reports success.
		err = ctx.Err()
	}
	if err != nil {
		return nil, fmt.Errorf("list services: %w", err)
	}
	out = make([]string, 0, len(values))
	for _, v := range values {
		if v.Value == pipeline.ProbeService {
			continue // doctor's probes are stored but are no service
		}
		out = append(out, v.Value)
	}
	sort.Strings(out)
	return out, nil
}

// Operations implements Reader.
func (s *Store) Operations(ctx context.Context, service string) ([]Operation, error) {
	q, err := parse(fmt.Sprintf("_stream:{%s=%s} | uniq by (%s, %s) limit %d", fieldService, quote(service), fieldName, fieldKind, maxOperations))
	if err != nil {
		return nil, err
	}
	lo, hi := s.heldRange(time.Now())
	q.AddTimeFilter(lo, hi-1)
	var ops []Operation
	err = s.run(ctx, tenantSpans, q, func(db *logstorage.DataBlock) {
		names, kinds := db.GetColumnByName(fieldName), db.GetColumnByName(fieldKind)
		for i := 0; i < db.RowsCount(); i++ {
			op := Operation{Name: strings.Clone(names.Values[i])}
			if kinds != nil {
				n, _ := strconv.Atoi(kinds.Values[i])
				op.SpanKind = SpanKindName(ptrace.SpanKind(n))
			}
			ops = append(ops, op)
		}
	})
	if err != nil {
		return nil, fmt.Errorf("list operations of %q: %w", service, err)
	}
	sort.Slice(ops, func(i, j int) bool {
		if ops[i].Name != ops[j].Name {
			return ops[i].Name < ops[j].Name
		}
		return ops[i].SpanKind < ops[j].SpanKind
	})
	return ops, nil
}

// SpanKindName is the lowercase kind name Jaeger uses ("server", "client", ...).
func SpanKindName(k ptrace.SpanKind) string {
	switch k {
	case ptrace.SpanKindServer:
		return "server"
	case ptrace.SpanKindClient:
		return "client"
	case ptrace.SpanKindProducer:
		return "producer"
	case ptrace.SpanKindConsumer:
		return "consumer"
	case ptrace.SpanKindInternal:
		return "internal"
	}
	return ""
}

func spanKindFromName(name string) (ptrace.SpanKind, bool) {
	switch strings.ToLower(strings.TrimPrefix(strings.ToLower(name), "span_kind_")) {
	case "server":
		return ptrace.SpanKindServer, true
	case "client":
		return ptrace.SpanKindClient, true
	case "producer":
		return ptrace.SpanKindProducer, true
	case "consumer":
		return ptrace.SpanKindConsumer, true
	case "internal":
		return ptrace.SpanKindInternal, true
	case "unspecified", "unset":
		return ptrace.SpanKindUnspecified, true
	}
	return 0, false
}

// GetTrace implements Reader.
func (s *Store) GetTrace(ctx context.Context, id pcommon.TraceID) (ptrace.Traces, error) {
	td, err := s.getTraces(ctx, []pcommon.TraceID{id}, nil)
	if err != nil {
		return td, err
	}
	if td.SpanCount() == 0 {
		return td, ErrNotFound
	}
	return td, nil
}

// GetTraces implements Reader.
func (s *Store) GetTraces(ctx context.Context, ids []pcommon.TraceID) (ptrace.Traces, error) {
	return s.getTraces(ctx, ids, nil)
}

// traceWindows looks the trace IDs up in the trace-ID index: the span-start
// window of each. Traces not in the index are absent from the result.
// Traces written recently by this process are answered from memory, which
// saves a query for the lookups users make most: traces they just found
// (embedded store only: other nodes write to a remote one too).
func (s *Store) traceWindows(ctx context.Context, ids []pcommon.TraceID) (map[pcommon.TraceID]traceWindow, error) {
	windows := make(map[pcommon.TraceID]traceWindow, len(ids))
	var missing []pcommon.TraceID
	for _, id := range ids {
		// A remote store's index is shared with other nodes, which may have
		// written spans of the trace outside what this one remembers.
		if w, ok := s.index.lookup(id); ok && s.remote == nil {
			windows[id] = w
		} else {
			missing = append(missing, id)
		}
	}
	if len(missing) == 0 {
		return windows, nil
	}
	suffixes := make([]string, len(missing))
	for i, id := range missing {
		suffixes[i] = hex.EncodeToString(traceIDSuffix(&id))
	}
	var buckets []string
	for _, sfx := range suffixes {
		if b := indexBucket(sfx); !slices.Contains(buckets, b) {
			buckets = append(buckets, b)
		}
	}
	q, err := parse(fmt.Sprintf("_stream:{%s in (%s)} %s", fieldIndexBucket, quoteAll(buckets), anyOf(fieldTraceSuffix, suffixes)))
	if err != nil {
		return nil, err
	}
	q.AddTimeFilter(s.heldRangeInclusive())
	// Traces whose IDs share a suffix (rare: 48 bits) get the union of
	// their windows; the span query then matches the whole trace ID.
	bySuffix := make(map[string]traceWindow, len(missing))
	var ts []int64
	err = s.run(ctx, tenantTraceIndex, q, func(db *logstorage.DataBlock) {
		ts, _ = db.GetTimestamps(ts[:0])
		sfx, lengths := db.GetColumnByName(fieldTraceSuffix), db.GetColumnByName(fieldWindowMs)
		if sfx == nil || lengths == nil {
			return
		}
		for i, v := range sfx.Values {
			ms, _ := strconv.ParseInt(lengths.Values[i], 10, 64)
			w := traceWindow{start: ts[i], end: ts[i] + ms*int64(time.Millisecond)}
			if known, ok := bySuffix[v]; ok {
				w.start, w.end = min(w.start, known.start), max(w.end, known.end)
			}
			bySuffix[strings.Clone(v)] = w
		}
	})
	if err != nil {
		return nil, fmt.Errorf("look up trace IDs in the index: %w", err)
	}
	for i, id := range missing {
		if w, ok := bySuffix[suffixes[i]]; ok {
			windows[id] = w
		}
	}
	return windows, nil
}

// traceIDSuffix is what the trace-ID index keeps of a trace ID: its last 6
// bytes. They are random in W3C trace IDs (and in X-Ray's and 64-bit legacy
// IDs, which pad or stamp the front), and 6 bytes rather than 16 take a byte
// a span off the disk; a lookup matches the whole ID among the spans.
func traceIDSuffix(id *pcommon.TraceID) []byte { return id[len(id)-6:] }

// anyOf is the LogsQL filter for field equal to one of values. One value
// is an exact match, not in(...): logstorage checks an exact match against
// each block's bloom filter before anything else, so the blocks without the
// value are skipped before their timestamps are read.
func anyOf(field string, values []string) string {
	if len(values) == 1 {
		return field + ":=" + quote(values[0])
	}
	return field + ":in(" + quoteAll(values) + ")"
}

// quoteAll quotes values for a LogsQL list: "a","b".
func quoteAll(values []string) string {
	quoted := make([]string, len(values))
	for i, v := range values {
		quoted[i] = quote(v)
	}
	return strings.Join(quoted, ",")
}

// getTraces returns the spans of the given traces; fields, when given,
// limits the columns read (the rest of the span is left empty).
func (s *Store) getTraces(ctx context.Context, ids []pcommon.TraceID, fields []string) (ptrace.Traces, error) {
	b := newTraceBuilder()
	if len(ids) == 0 {
		return b.td, nil
	}
	windows, err := s.traceWindows(ctx, ids)
	if err != nil || len(windows) == 0 {
		return b.td, err
	}
	lo, hi := int64(math.MaxInt64), int64(math.MinInt64)
	found := make([]pcommon.TraceID, 0, len(windows))
	for _, id := range ids {
		if w, ok := windows[id]; ok {
			lo, hi = min(lo, w.start), max(hi, w.end)
			found = append(found, id)
		}
	}
	// A window's end is a span's end, which may lie beyond any start the
	// store holds (issue 18 saw one in 2100).
	heldLo, heldHi := s.heldRangeInclusive()
	if lo, hi = max(lo, heldLo), min(hi, heldHi); lo > hi {
		return b.td, nil
	}
	hexIDs := make([]string, len(found))
	for i, id := range found {
		hexIDs[i] = hex.EncodeToString(id[:])
	}
	pipes := ""
	if len(fields) > 0 {
		pipes = " | fields " + strings.Join(fields, ", ")
	}
	// One query a shard of the services, run side by side: logstorage hands
	// all the blocks of a part to one worker, and the blocks of a trace (one
	// for each service instance it touched) usually sit in one part.
	var mu sync.Mutex
	addBlock := func(db *logstorage.DataBlock) {
		mu.Lock()
		defer mu.Unlock()
		b.addBlock(db)
	}
	shards := s.serviceShards(ctx)
	errs := make([]error, len(shards))
	var wg sync.WaitGroup
	for i, shard := range shards {
		q, err := parse(shard + anyOf(fieldTraceID, hexIDs) + pipes)
		if err != nil {
			return b.td, err
		}
		q.AddTimeFilter(lo, hi)
		wg.Go(func() { errs[i] = s.run(ctx, tenantSpans, q, addBlock) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return b.td, fmt.Errorf("read spans of %d traces: %w", len(found), err)
	}
	return b.td, nil
}

// serviceShards splits the span streams by service into one stream filter a
// CPU (each ending in a space), services dealt out in turn; the last filter
// takes every service the others do not name, so a service first seen since
// the list was made is still searched. One CPU, one service, or more
// services than a filter should list, make one empty filter.
func (s *Store) serviceShards(ctx context.Context) []string {
	if s.remote != nil {
		// The server spreads one query over its own CPUs.
		return []string{""}
	}
	services := s.cachedServices(ctx)
	n := min(runtime.GOMAXPROCS(0), len(services))
	if n < 2 || len(services) > maxShardedServices {
		return []string{""}
	}
	groups := make([][]string, n-1)
	var named []string
	for i, svc := range services {
		if g := i % n; g < n-1 {
			groups[g] = append(groups[g], svc)
			named = append(named, svc)
		}
	}
	shards := make([]string, 0, n)
	for _, g := range groups {
		shards = append(shards, fmt.Sprintf("_stream:{%s in (%s)} ", fieldService, quoteAll(g)))
	}
	return append(shards, fmt.Sprintf("_stream:{%s not_in (%s)} ", fieldService, quoteAll(named)))
}

// cachedServices is Services, refreshed at most every servicesCacheTTL:
// lookups shard by it and must not list the services each time.
func (s *Store) cachedServices(ctx context.Context) []string {
	s.servicesMu.Lock()
	defer s.servicesMu.Unlock()
	if time.Since(s.servicesAt) > servicesCacheTTL {
		if services, err := s.Services(ctx); err == nil {
			s.services, s.servicesAt = services, time.Now()
		}
	}
	return s.services
}

const servicesCacheTTL = 10 * time.Second

// maxShardedServices bounds the names a lookup's shard filters list (and
// logstorage parses on every lookup).
const maxShardedServices = 1000

// searchFilter builds the LogsQL filter for a span matching q.
func searchFilter(q TraceQuery) (string, error) {
	var parts []string
	if q.Service != "" {
		parts = append(parts, fmt.Sprintf("_stream:{%s=%s}", fieldService, quote(q.Service)))
	}
	if q.Operation != "" {
		parts = append(parts, fieldName+":="+quote(q.Operation))
	}
	keys := make([]string, 0, len(q.Attributes))
	for k := range q.Attributes {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		f, err := attributeFilter(k, q.Attributes[k])
		if err != nil {
			return "", err
		}
		parts = append(parts, f)
	}
	if q.MinDuration > 0 {
		parts = append(parts, fmt.Sprintf("%s:>=%d", fieldDuration, q.MinDuration.Nanoseconds()))
	}
	if q.MaxDuration > 0 {
		parts = append(parts, fmt.Sprintf("%s:<=%d", fieldDuration, q.MaxDuration.Nanoseconds()))
	}
	if q.ErrorsOnly {
		parts = append(parts, fieldStatusCode+":=2")
	}
	if len(parts) == 0 {
		return "*", nil
	}
	return strings.Join(parts, " "), nil
}

// attributeFilter matches key=value on a span: the keys Jaeger derives from
// span fields map to those fields, any other key to a span or resource
// attribute of that name.
func attributeFilter(key, value string) (string, error) {
	switch key {
	case "error":
		switch value {
		case "true":
			return fieldStatusCode + ":=2", nil
		case "false":
			return "-" + fieldStatusCode + ":=2", nil
		}
		return "", fmt.Errorf("%w: tag error=%q: want true or false", ErrBadQuery, value)
	case "span.kind":
		k, ok := spanKindFromName(value)
		if !ok {
			return "", fmt.Errorf("%w: tag span.kind=%q: want server, client, producer, consumer or internal", ErrBadQuery, value)
		}
		return fmt.Sprintf("%s:=%d", fieldKind, int(k)), nil
	case "otel.status_code":
		switch strings.ToUpper(value) {
		case "OK":
			return fieldStatusCode + ":=1", nil
		case "ERROR":
			return fieldStatusCode + ":=2", nil
		case "UNSET":
			return "-" + fieldStatusCode + ":*", nil
		}
		return "", fmt.Errorf("%w: tag otel.status_code=%q: want OK, ERROR or UNSET", ErrBadQuery, value)
	case "otel.status_description":
		return fieldStatusMessage + ":=" + quote(value), nil
	case "service.name":
		return fmt.Sprintf("_stream:{%s=%s}", fieldService, quote(value)), nil
	case "otel.scope.name":
		return quote(fieldScopeName) + ":=" + quote(value), nil
	}
	if err := CheckFilterKey(key); err != nil {
		return "", err
	}
	// The resource's attributes are packed in one field: match the pair.
	return fmt.Sprintf("(%s:=%s or %s:~%s)", quote(prefixAttr+key), quote(value), fieldResource, quote(resourcePairPattern(key, value))), nil
}

// CheckFilterKey says why an attribute key cannot be searched for, nil when
// it can. A key ending in '*' would be a field-name prefix to LogsQL (any
// attribute whose name starts so), quoted or not: refused rather than
// widened, as ErrBadQuery (a 400 from the APIs).
func CheckFilterKey(key string) error {
	switch {
	case key == "" || len(key) > MaxAttributeKeyLen:
		return fmt.Errorf("%w: attribute filter key %q: want 1 to %d bytes", ErrBadQuery, shorten(key), MaxAttributeKeyLen)
	case strings.HasSuffix(key, "*"):
		return fmt.Errorf("%w: attribute filter key %q: a key ending in * cannot be searched (keys are matched literally, not as patterns)", ErrBadQuery, shorten(key))
	}
	return nil
}

func (q TraceQuery) bounds() (start, end time.Time, limit int) {
	end = q.End
	if end.IsZero() {
		end = time.Now()
	}
	start = q.Start
	if start.IsZero() {
		start = end.Add(-defaultLookback)
	}
	limit = q.Limit
	if limit <= 0 {
		limit = defaultSearchLimit
	}
	return start, end, min(limit, maxSearchLimit)
}

// FindTraceIDs implements Reader: the traces of the newest matching spans.
//
// It searches backwards in windows that grow eightfold, starting with the
// last five minutes: a search that matches plenty of recent spans (the
// common case: "the latest traces of this service") never touches older
// data, and one that matches little still covers the whole range. The range
// is first narrowed to what the store can hold (heldPart), so a search from
// year 1 costs what one over the retention does: at most
// 1+log8(range/5m) windows, 5 over the default 7 days.
func (s *Store) FindTraceIDs(ctx context.Context, tq TraceQuery) ([]pcommon.TraceID, error) {
	return s.findTraceIDs(ctx, tq, nil)
}

// findTraceIDs is FindTraceIDs; when matched is not nil, it records there
// the newest matching span of each trace found, by trace ID in hex.
func (s *Store) findTraceIDs(ctx context.Context, tq TraceQuery, matched map[string]MatchedSpan) ([]pcommon.TraceID, error) {
	filter, err := searchFilter(tq)
	if err != nil {
		return nil, err
	}
	start, end, limit := tq.bounds()
	lo, hi, ok := s.heldPart(start, end)
	if !ok {
		return nil, nil
	}
	seen := map[string]bool{}
	var out []pcommon.TraceID
	window := int64(firstSearchWindow)
	for winEnd := hi; winEnd > lo && len(out) < limit; {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("search spans: %w", err)
		}
		// lo >= 0 and window <= winEnd-lo after the first round: no overflow.
		winStart := max(lo, winEnd-window)
		if out, err = s.findInWindow(ctx, filter, winStart, winEnd, limit, seen, out, matched); err != nil {
			return nil, err
		}
		winEnd = winStart
		// Widen, but never past what is left of the range: the window stays
		// a duration the range holds and cannot overflow (it did, issue 18).
		if left := winEnd - lo; window > left/8 {
			window = left
		} else {
			window *= 8
		}
	}
	return out, nil
}

// firstSearchWindow is the most recent stretch FindTraceIDs searches first.
const firstSearchWindow = 5 * time.Minute

// heldRange is the span-start range [lo, hi), in Unix nanoseconds, that the
// store can hold at now. logstorage keeps and accepts rows by UTC day: back
// to the day now-retention falls in (older days are dropped), ahead to the
// day now+futureRetention falls in (later ones are refused). Span times are
// unsigned, so nothing before the epoch is held.
func (s *Store) heldRange(now time.Time) (lo, hi int64) {
	const day = int64(24 * time.Hour)
	n := now.UnixNano()
	lo = max(n-int64(s.retention), 0) / day * day
	hi = ((n+int64(futureRetention))/day + 1) * day
	return lo, hi
}

// heldRangeInclusive is heldRange(time.Now()) as logstorage's inclusive
// time filter takes it.
func (s *Store) heldRangeInclusive() (lo, hi int64) {
	lo, hi = s.heldRange(time.Now())
	return lo, hi - 1
}

// heldPart narrows [start, end) to the part the store can hold, in Unix
// nanoseconds; ok is false when it holds none of it. The times are compared
// as time.Time before either becomes nanoseconds: UnixNano is undefined
// outside the years 1678 to 2262, and year 1 and year 3000 are ranges
// clients send.
func (s *Store) heldPart(start, end time.Time) (lo, hi int64, ok bool) {
	lo, hi = s.heldRange(time.Now())
	if start.After(time.Unix(0, lo)) {
		if !start.Before(time.Unix(0, hi)) {
			return 0, 0, false
		}
		lo = start.UnixNano()
	}
	if end.Before(time.Unix(0, hi)) {
		if !end.After(time.Unix(0, lo)) {
			return 0, 0, false
		}
		hi = end.UnixNano()
	}
	return lo, hi, true
}

// findInWindow appends to out, newest first, the traces of the newest spans
// matching filter in [start, end) that are not in seen, until out holds
// limit traces or the window is exhausted.
func (s *Store) findInWindow(ctx context.Context, filter string, start, end int64, limit int, seen map[string]bool, out []pcommon.TraceID, matched map[string]MatchedSpan) ([]pcommon.TraceID, error) {
	type hit struct {
		ts    int64
		id    string
		match MatchedSpan
	}
	fields := fieldTraceID
	if matched != nil {
		fields += ", " + fieldSpan + ", " + fieldService + ", " + fieldName
	}
	// Take the newest matching spans, a few per wanted trace, and take more
	// while they fall in too few traces; run checks ctx before each round.
	for rows := (limit - len(out)) * 8; ; rows *= 4 {
		q, err := parse(fmt.Sprintf("%s | sort by (_time desc) limit %d | fields _time, %s", filter, rows, fields))
		if err != nil {
			return out, err
		}
		q.AddTimeFilter(start, end-1)
		var hits []hit
		var ts []int64
		err = s.run(ctx, tenantSpans, q, func(db *logstorage.DataBlock) {
			ts, _ = db.GetTimestamps(ts[:0])
			ids := db.GetColumnByName(fieldTraceID)
			if ids == nil {
				return
			}
			var spans, services, names *logstorage.BlockColumn
			if matched != nil {
				spans, services, names = db.GetColumnByName(fieldSpan), db.GetColumnByName(fieldService), db.GetColumnByName(fieldName)
			}
			for i, v := range ids.Values {
				h := hit{ts: ts[i], id: strings.Clone(v)}
				if spans != nil && len(spans.Values[i]) >= 16 {
					h.match.SpanID = strings.Clone(spans.Values[i][:16])
					if services != nil {
						h.match.Service = strings.Clone(services.Values[i])
					}
					if names != nil {
						h.match.Name = strings.Clone(names.Values[i])
					}
				}
				hits = append(hits, h)
			}
		})
		if err != nil {
			return out, fmt.Errorf("search spans: %w", err)
		}
		slices.SortStableFunc(hits, func(a, b hit) int { return -cmpInt(a.ts, b.ts) })
		found := out
		taken := map[string]bool{}
		for _, h := range hits {
			if len(found) == limit {
				break
			}
			if seen[h.id] || taken[h.id] {
				continue
			}
			var id pcommon.TraceID
			if _, err := hex.Decode(id[:], []byte(h.id)); err == nil {
				taken[h.id] = true
				found = append(found, id)
				if matched != nil && h.match.SpanID != "" {
					matched[h.id] = h.match
				}
			}
		}
		if len(found) == limit || len(hits) < rows || rows >= 1<<20 {
			for id := range taken {
				seen[id] = true
			}
			return found, nil
		}
	}
}

func cmpInt(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// summaryFields are the columns a trace summary needs.
var summaryFields = []string{"_time", fieldTraceID, fieldSpan, fieldService, fieldName, fieldDuration, fieldStatusCode}

// FindTraces implements Reader.
func (s *Store) FindTraces(ctx context.Context, tq TraceQuery) ([]TraceSummary, error) {
	// A search with conditions says which span met them; one by time
	// alone is met by every span.
	var matched map[string]MatchedSpan
	if tq.Service != "" || tq.Operation != "" || len(tq.Attributes) > 0 || tq.MinDuration > 0 || tq.MaxDuration > 0 || tq.ErrorsOnly {
		matched = map[string]MatchedSpan{}
	}
	ids, err := s.findTraceIDs(ctx, tq, matched)
	if err != nil {
		return nil, err
	}
	td, err := s.getTraces(ctx, ids, summaryFields)
	if err != nil {
		return nil, err
	}
	out := Summarize(td)
	for i := range out {
		if m, ok := matched[out[i].TraceID]; ok {
			out[i].Matched = &m
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Start.After(out[j].Start) })
	return out, nil
}

// Summarize describes each trace in td.
func Summarize(td ptrace.Traces) []TraceSummary {
	type acc struct {
		sum      TraceSummary
		start    int64
		end      int64
		root     ptrace.Span
		rootSvc  string
		hasRoot  bool
		spanIDs  map[pcommon.SpanID]bool
		services map[string]bool
		orphans  []struct {
			span ptrace.Span
			svc  string
		}
	}
	traces := map[pcommon.TraceID]*acc{}
	var order []pcommon.TraceID
	rss := td.ResourceSpans()
	for i := 0; i < rss.Len(); i++ {
		svc := ""
		if v, ok := rss.At(i).Resource().Attributes().Get("service.name"); ok {
			svc = v.AsString()
		}
		sss := rss.At(i).ScopeSpans()
		for j := 0; j < sss.Len(); j++ {
			spans := sss.At(j).Spans()
			for k := 0; k < spans.Len(); k++ {
				sp := spans.At(k)
				a := traces[sp.TraceID()]
				if a == nil {
					a = &acc{start: math.MaxInt64, end: math.MinInt64, spanIDs: map[pcommon.SpanID]bool{}, services: map[string]bool{}}
					traces[sp.TraceID()] = a
					order = append(order, sp.TraceID())
				}
				a.sum.SpanCount++
				a.start = min(a.start, int64(sp.StartTimestamp()))
				a.end = max(a.end, int64(sp.EndTimestamp()))
				a.services[svc] = true
				a.spanIDs[sp.SpanID()] = true
				if sp.Status().Code() == ptrace.StatusCodeError {
					a.sum.ErrorCount++
				}
				if sp.ParentSpanID().IsEmpty() {
					if !a.hasRoot || sp.StartTimestamp() < a.root.StartTimestamp() {
						a.root, a.rootSvc, a.hasRoot = sp, svc, true
					}
				} else {
					a.orphans = append(a.orphans, struct {
						span ptrace.Span
						svc  string
					}{sp, svc})
				}
			}
		}
	}
	out := make([]TraceSummary, 0, len(order))
	for _, id := range order {
		a := traces[id]
		if !a.hasRoot {
			// No true root stored (yet): the earliest span whose parent is missing stands in.
			for _, o := range a.orphans {
				if a.spanIDs[o.span.ParentSpanID()] {
					continue
				}
				if !a.hasRoot || o.span.StartTimestamp() < a.root.StartTimestamp() {
					a.root, a.rootSvc, a.hasRoot = o.span, o.svc, true
				}
			}
		}
		s := a.sum
		s.TraceID = hex.EncodeToString(id[:])
		if a.hasRoot {
			s.RootService, s.RootOperation = a.rootSvc, a.root.Name()
		}
		s.Start = nsToTime(a.start)
		s.Duration = time.Duration(a.end - a.start)
		s.DurationUS = s.Duration.Microseconds()
		for svc := range a.services {
			s.Services = append(s.Services, svc)
		}
		sort.Strings(s.Services)
		s.Error = s.ErrorCount > 0
		out = append(out, s)
	}
	return out
}

// shorten keeps a client's long input readable in an error message.
func shorten(s string) string {
	if len(s) <= 32 {
		return s
	}
	return s[:32] + "..."
}

// SlowestSpans implements Reader: logstorage sorts the service's spans in
// the range by duration (stored in nanoseconds, compared as numbers) and
// answers the first Limit.
func (s *Store) SlowestSpans(ctx context.Context, sq SpanQuery) ([]RankedSpan, error) {
	if sq.Service == "" {
		return nil, fmt.Errorf("%w: slowest spans need a service", ErrBadQuery)
	}
	limit := sq.Limit
	if limit <= 0 {
		limit = 10
	}
	limit = min(limit, maxSearchLimit)
	end := sq.End
	if end.IsZero() {
		end = time.Now()
	}
	start := sq.Start
	if start.IsZero() {
		start = end.Add(-defaultLookback)
	}
	lo, hi, ok := s.heldPart(start, end)
	if !ok {
		return nil, nil
	}
	q, err := parse(fmt.Sprintf("_stream:{%s=%s} | sort by (%s desc) limit %d | fields _time, %s, %s, %s, %s, %s, %s, %s",
		fieldService, quote(sq.Service), fieldDuration, limit, fieldTraceID, fieldSpan, fieldName, fieldKind, fieldDuration, fieldStatusCode, fieldStatusMessage))
	if err != nil {
		return nil, err
	}
	q.AddTimeFilter(lo, hi-1)
	var out []RankedSpan
	var ts []int64
	err = s.run(ctx, tenantSpans, q, func(db *logstorage.DataBlock) {
		ts, _ = db.GetTimestamps(ts[:0])
		col := func(name string) []string {
			if c := db.GetColumnByName(name); c != nil {
				return c.Values
			}
			return make([]string, len(ts))
		}
		ids, spans, names, kinds, durs, codes, msgs := col(fieldTraceID), col(fieldSpan), col(fieldName), col(fieldKind), col(fieldDuration), col(fieldStatusCode), col(fieldStatusMessage)
		for i := range ts {
			ns, _ := strconv.ParseInt(durs[i], 10, 64)
			r := RankedSpan{TraceID: strings.Clone(ids[i]), Name: strings.Clone(names[i]), Start: nsToTime(ts[i]), DurationUS: ns / 1000,
				Error: codes[i] == strconv.Itoa(int(ptrace.StatusCodeError))}
			if len(spans[i]) >= 16 {
				r.SpanID = strings.Clone(spans[i][:16])
			}
			if k, err := strconv.Atoi(kinds[i]); err == nil {
				r.Kind = SpanKindName(ptrace.SpanKind(k))
			}
			if r.Error {
				r.StatusMessage = strings.Clone(msgs[i])
			}
			out = append(out, r)
		}
	})
	if err != nil {
		return nil, fmt.Errorf("rank the spans of %s: %w", sq.Service, err)
	}
	// Blocks arrive in any order: rank them again.
	slices.SortStableFunc(out, func(a, b RankedSpan) int { return -cmpInt(a.DurationUS, b.DurationUS) })
	return out, nil
}
