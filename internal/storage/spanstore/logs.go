package spanstore

import (
	"context"
	"encoding/hex"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/VictoriaMetrics/VictoriaLogs/lib/logstorage"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/skytrail/skytrail/internal/pipeline"
)

// Log records (OTLP logs, SkyWalking's LogReportService, the log shippers'
// APIs) live in the same engine, in their own tenant, one log stream a
// service (never a field of the line: an order ID as a stream would make a
// stream of every order). A row's fields, written so that a LogsQL user
// reads them as VictoriaLogs' own:
//
//	service              the resource's service.name; the log stream
//	_msg                 the body as text (LogsQL's word and phrase
//	                     filters search it without a field name); rows
//	                     written before 2026-12 have it as "body"
//	severity_text, severity_number (OTLP's 1-24, derived from the text when
//	                     the sender gave none: package logfields)
//	trace_id, span_id    lowercase hex, as spans store them
//	original_time        see fieldOriginalTime
//	resource             the packed resource, as for spans (schema.go)
//	scope.name, scope.version, scope_attr.<key>
//	<key>                every attribute (a JSON line's fields), under its
//	                     own name; a name the row uses itself (above), or
//	                     one starting with "_", "attr." or "scope_attr.",
//	                     is stored as attr.<key>. Values are text: the
//	                     APIs give them as text, so no types field.
//	overflow             attributes over the service's column budget, as
//	                     for spans (columns.go)
var tenantLogs = logstorage.TenantID{AccountID: 0, ProjectID: 2}

const (
	fieldMessage        = "_msg"
	fieldBody           = "body" // the message field of rows written before 2026-12
	fieldSeverityText   = "severity_text"
	fieldSeverityNumber = "severity_number"
	// fieldOriginalTime keeps a record's own timestamp when it lies outside
	// what storage accepts (older than the retention, or a day ahead) and the
	// record is stored at the time it was received instead.
	fieldOriginalTime = "original_time"
)

// logFieldName is the stored name of a log attribute: its own, unless the
// row's own fields or LogsQL's reserved names could take it for theirs.
func logFieldName(buf []byte, key string) []byte {
	switch {
	case key == fieldService, key == fieldBody, key == fieldSeverityText, key == fieldSeverityNumber,
		key == fieldTraceID, key == fieldSpanID, key == fieldOriginalTime, key == fieldResource,
		key == fieldScopeName, key == fieldScopeVersion, key == fieldOverflow, key == fieldTypes,
		strings.HasPrefix(key, "_"), strings.HasPrefix(key, prefixAttr), strings.HasPrefix(key, prefixScopeAttr):
		buf = append(buf, prefixAttr...)
	}
	return append(buf, key...)
}

// logAttributeKey is the attribute a stored log field name stands for, and
// false for the row's own fields.
func logAttributeKey(name string) (string, bool) {
	switch {
	case strings.HasPrefix(name, prefixAttr):
		return name[len(prefixAttr):], true
	case name == fieldService, name == fieldMessage, name == fieldBody, name == fieldSeverityText, name == fieldSeverityNumber,
		name == fieldTraceID, name == fieldSpanID, name == fieldOriginalTime, name == fieldResource,
		name == fieldScopeName, name == fieldScopeVersion, name == fieldOverflow, name == fieldTypes,
		strings.HasPrefix(name, "_"), strings.HasPrefix(name, prefixScopeAttr):
		return "", false
	}
	return name, true
}

// ConsumeLogs stores log records; implements pipeline.LogsConsumer. Like
// ConsumeTraces it writes nothing and fails with ErrDiskFull while the disk
// is too full.
func (s *Store) ConsumeLogs(ctx context.Context, ld pipeline.Logs) error {
	if err := s.disk.Err(); err != nil {
		return err
	}
	e, _ := s.encoders.Get().(*rowEncoder)
	if e == nil {
		e = newRowEncoder(s.columns)
	}
	defer s.encoders.Put(e)
	lr := logstorage.GetLogRows([]string{fieldService}, nil, nil, nil, "")
	defer logstorage.PutLogRows(lr)
	idx := logstorage.GetLogRows(logIndexStreamFields, nil, nil, nil, "")
	defer logstorage.PutLogRows(idx)
	var entries []logIndexEntry

	now := time.Now()
	e.now = now
	oldest := now.Add(-s.retention + time.Hour).UnixNano()
	newest := now.Add(23 * time.Hour).UnixNano()
	rls := ld.ResourceLogs()
	for i := 0; i < rls.Len(); i++ {
		e.setResource(rls.At(i).Resource(), ld.Resources[i].Service)
		sls := rls.At(i).ScopeLogs()
		for j := 0; j < sls.Len(); j++ {
			e.setScope(sls.At(j).Scope())
			records := sls.At(j).LogRecords()
			for k := 0; k < records.Len(); k++ {
				rec := records.At(k)
				ts := int64(rec.Timestamp())
				if ts == 0 {
					ts = int64(rec.ObservedTimestamp())
				}
				original := int64(0)
				if ts < oldest || ts > newest {
					original, ts = ts, now.UnixNano()
				}
				lr.MustAdd(tenantLogs, ts, e.encodeLog(rec, ts, original), -1)
				if id := rec.TraceID(); !id.IsEmpty() {
					entries = append(entries, logIndexEntryOf(&id, ts))
				}
			}
		}
	}
	// As for spans: column names on disk first, then the index rows, so
	// that a failed batch leaves no index entry remembered.
	if err := e.admitted.sync(s.columns); err != nil {
		return fmt.Errorf("store log records: %w", err)
	}
	added := s.addLogIndexRows(idx, entries, e)
	if err := s.addRows(ctx, lr, idx); err != nil {
		return fmt.Errorf("store log records: %w", err)
	}
	if s.remote != nil {
		for _, p := range added {
			s.logIndex.add(p)
		}
	}
	return nil
}

// encodeLog returns the fields of one log record's row, stored at ts.
func (e *rowEncoder) encodeLog(rec plog.LogRecord, ts, originalTime int64) []logstorage.Field {
	e.buf = e.buf[:0]
	f := e.fields[:0]
	f = append(f, logstorage.Field{Name: fieldService, Value: e.service})
	if body := rec.Body(); body.Type() == pcommon.ValueTypeStr {
		f = append(f, logstorage.Field{Name: fieldMessage, Value: body.Str()})
	} else if body.Type() != pcommon.ValueTypeEmpty {
		f = append(f, logstorage.Field{Name: fieldMessage, Value: body.AsString()})
	}
	if t := rec.SeverityText(); t != "" {
		f = append(f, logstorage.Field{Name: fieldSeverityText, Value: t})
	}
	if n := rec.SeverityNumber(); n != 0 {
		f = append(f, e.intField(fieldSeverityNumber, int64(n)))
	}
	if id := rec.TraceID(); !id.IsEmpty() {
		f = append(f, e.hexField(fieldTraceID, id[:]))
	}
	if id := rec.SpanID(); !id.IsEmpty() {
		f = append(f, e.hexField(fieldSpanID, id[:]))
	}
	if originalTime != 0 {
		f = append(f, e.intField(fieldOriginalTime, originalTime))
	}
	attrsFrom := len(f)
	f = append(f, e.resourceFields...)
	f = append(f, e.scopeFields...)
	rec.Attributes().Range(func(k string, v pcommon.Value) bool {
		start := len(e.buf)
		e.buf = logFieldName(e.buf, k)
		name := unsafeString(e.buf[start:])
		if v.Type() == pcommon.ValueTypeStr {
			f = append(f, logstorage.Field{Name: name, Value: v.Str()})
			return true
		}
		start = len(e.buf)
		e.buf, _ = appendValueText(e.buf, v)
		f = append(f, logstorage.Field{Name: name, Value: unsafeString(e.buf[start:])})
		return true
	})
	f = e.spillOverBudget(f, attrsFrom, ts/nsecsPerDay)
	e.fields = f
	return f
}

// LogQuery selects stored log records; zero values mean any.
type LogQuery struct {
	Service string
	// TraceIDs: records of any of these traces (the candidates of one ID as
	// a user wrote it, traceid.Candidates).
	TraceIDs []pcommon.TraceID
	// MinSeverity: records at least this severe (OTLP severity numbers:
	// 9 info, 13 warn, 17 error, 21 fatal); records without one never match.
	MinSeverity plog.SeverityNumber
	// Text must appear in the message, as words, in any case.
	Text string
	// Fields must all match exactly: attribute (a JSON line's field) or
	// resource attribute name and value, compared as text.
	Fields []FieldFilter
	// Start and End bound record times, both inclusive; zero End means now,
	// zero Start a day before End.
	Start, End time.Time
	// Skip leaves out the first Skip records at exactly End: the ones an
	// earlier page already returned (the API's cursor).
	Skip  int
	Limit int
	// Oldest first rather than newest first.
	Ascending bool
}

// FieldFilter matches one field exactly.
type FieldFilter struct{ Name, Value string }

// MaxLogLimit is the most records one query returns.
const MaxLogLimit = 1000

// LogEntry is one stored log record.
type LogEntry struct {
	Time           time.Time         `json:"time"`
	Service        string            `json:"service"`
	Body           string            `json:"body"`
	Severity       string            `json:"severity,omitempty"`
	SeverityNumber int               `json:"severityNumber,omitempty"`
	TraceID        string            `json:"traceID,omitempty"`
	SpanID         string            `json:"spanID,omitempty"`
	Attributes     map[string]string `json:"attributes"`
	Resource       map[string]string `json:"resource"`
}

// addField adds an attribute or the packed resource, the fields a record
// may keep in overflow too.
func (le *LogEntry) addField(name, v string) {
	if name == fieldResource {
		forEachResourcePair(v, func(k, v string, _ byte) { le.Resource[k] = v })
		return
	}
	if k, ok := logAttributeKey(name); ok {
		le.Attributes[k] = v
	}
}

// CheckLogField says why a field cannot be filtered on, nil when it can:
// ErrBadQuery for an empty name, one longer than any stored, one ending in
// "*" (a prefix to LogsQL, so refused rather than widened) or one that is
// not UTF-8 text without control characters.
func CheckLogField(name string) error {
	if err := CheckFilterKey(name); err != nil {
		return err
	}
	if !utf8.ValidString(name) || strings.ContainsFunc(name, unicode.IsControl) {
		return fmt.Errorf("%w: field name %q: want text without control characters", ErrBadQuery, shorten(name))
	}
	return nil
}

// logFilter builds the LogsQL filter of lq. Every value a user gave is a
// quoted LogsQL string, so quotes, pipes, colons and newlines in it are
// matched as themselves.
func logFilter(lq LogQuery) (string, error) {
	var parts []string
	if lq.Service != "" {
		parts = append(parts, fmt.Sprintf("_stream:{%s=%s}", fieldService, quote(lq.Service)))
	}
	if len(lq.TraceIDs) > 0 {
		ids := make([]string, len(lq.TraceIDs))
		for i, id := range lq.TraceIDs {
			ids[i] = hex.EncodeToString(id[:])
		}
		parts = append(parts, anyOf(fieldTraceID, ids))
	}
	if lq.MinSeverity > 0 {
		parts = append(parts, fmt.Sprintf("%s:>=%d", fieldSeverityNumber, int(lq.MinSeverity)))
	}
	if t := strings.TrimSpace(lq.Text); t != "" {
		if !utf8.ValidString(t) {
			return "", fmt.Errorf("%w: search text is not UTF-8", ErrBadQuery)
		}
		parts = append(parts, fieldMessage+":i("+quote(t)+")")
	}
	for _, ff := range lq.Fields {
		if err := CheckLogField(ff.Name); err != nil {
			return "", err
		}
		if !utf8.ValidString(ff.Value) {
			return "", fmt.Errorf("%w: value of field %q is not UTF-8", ErrBadQuery, shorten(ff.Name))
		}
		parts = append(parts, fieldMatch(ff.Name, ff.Value))
	}
	if len(parts) == 0 {
		return "*", nil
	}
	return strings.Join(parts, " "), nil
}

// fieldMatch matches name=value wherever a log record may keep it: its own
// field (or attr.<name>, for names the row uses itself and rows of before
// 2026-12), the packed resource, or the overflow.
func fieldMatch(name, value string) string {
	stored := string(logFieldName(nil, name))
	alts := []string{quote(stored) + ":=" + quote(value)}
	if stored == name {
		alts = append(alts, quote(prefixAttr+name)+":="+quote(value))
	}
	switch name {
	case "service.name":
		alts = append(alts, fmt.Sprintf("_stream:{%s=%s}", fieldService, quote(value)))
	default:
		alts = append(alts, fieldResource+":~"+quote(resourcePairPattern(name, value)))
	}
	// The overflow holds Go-quoted names and values side by side.
	alts = append(alts, fieldOverflow+":"+quote(strconv.Quote(stored)+" "+strconv.Quote(value)))
	return "(" + strings.Join(alts, " or ") + ")"
}

// Logs returns matching log records, newest first (oldest first when
// lq.Ascending).
func (s *Store) Logs(ctx context.Context, lq LogQuery) ([]LogEntry, error) {
	filter, err := logFilter(lq)
	if err != nil {
		return nil, err
	}
	limit := lq.Limit
	if limit <= 0 || limit > MaxLogLimit {
		limit = 100
	}
	skip := max(lq.Skip, 0)
	end := lq.End
	if end.IsZero() {
		end = time.Now()
	}
	start := lq.Start
	if start.IsZero() {
		start = end.Add(-24 * time.Hour)
	}
	// [start, end] inclusive, narrowed to what the store holds.
	lo, hi, ok := s.heldPart(start, end.Add(1))
	if !ok {
		return nil, nil
	}
	out, err := s.edgeLogs(ctx, filter, lo, hi-1, limit+skip, lq.Ascending)
	if err != nil {
		return nil, fmt.Errorf("read logs: %w", err)
	}
	sort.SliceStable(out, func(i, j int) bool {
		if lq.Ascending {
			return out[i].Time.Before(out[j].Time)
		}
		return out[i].Time.After(out[j].Time)
	})
	if skip > 0 && !lq.Ascending {
		endNs := end.UnixNano()
		n := 0
		for n < len(out) && n < skip && out[n].Time.UnixNano() == endNs {
			n++
		}
		out = out[n:]
	}
	if len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

// edgeLogs returns the n newest log records matching filter in [lo, hi]
// (Unix nanoseconds, inclusive), or the n oldest when ascending, in no
// particular order; fewer when fewer match. It is VictoriaLogs' own "last
// N results" search (app/vlstorage/lastnoptimization.go, not importable
// with the embedded engine): "sort by (_time desc) limit n" over the whole
// range reads every column of every matching block before it keeps n rows
// (6.6 s of CPU for a service's newest 100 of 10M lines), while "limit"
// stops the search once it has its rows. So: take up to 2n matches from
// anywhere in the range; fewer means they are all there are (a field value
// as rare as an order ID: one pass). Otherwise halve the range towards its
// newest end until it holds fewer than 2n matches, and move back from
// there by widening windows until n are found.
func (s *Store) edgeLogs(ctx context.Context, filter string, lo, hi int64, n int, ascending bool) ([]LogEntry, error) {
	order := "desc"
	if ascending {
		order = "asc"
	}
	got, err := s.logRows(ctx, filter, lo, hi, 2*n, "")
	if err != nil || len(got) < 2*n {
		return got, err
	}
	var found []LogEntry
	a, b := lo, hi
	for need := n; ; {
		if len(got) >= 2*need {
			if b-a < int64(time.Second) {
				// So narrow a range is cheaper to sort than to halve further.
				got, err = s.logRows(ctx, filter, a, b, need, order)
				return append(found, got...), err
			}
			// Too many here: the newest half alone has enough.
			if mid := a + (b-a)/2; ascending {
				b = mid
			} else {
				a = mid + 1
			}
		} else {
			// All of [a, b]'s matches are in got, the rest lie beyond it:
			// on to the next window, twice as wide, so that a sparse
			// stretch takes a few steps rather than one a width.
			found = append(found, got...)
			need -= len(got)
			w := 2 * (b - a + 1)
			switch {
			case need <= 0:
				return found, nil
			case ascending && b < hi:
				a, b = b+1, b+min(w, hi-b)
			case !ascending && a > lo:
				a, b = a-min(w, a-lo), a-1
			default:
				return found, nil
			}
		}
		if got, err = s.logRows(ctx, filter, a, b, 2*need, ""); err != nil {
			return nil, err
		}
	}
}

// logRows returns up to limit log records matching filter in [lo, hi]
// (Unix nanoseconds, inclusive): any of them, or with order "desc" the
// newest and with "asc" the oldest.
func (s *Store) logRows(ctx context.Context, filter string, lo, hi int64, limit int, order string) ([]LogEntry, error) {
	query := fmt.Sprintf("%s | limit %d", filter, limit)
	if order != "" {
		query = fmt.Sprintf("%s | sort by (_time %s) limit %d", filter, order, limit)
	}
	q, err := parse(query)
	if err != nil {
		return nil, err
	}
	q.AddTimeFilter(lo, hi)
	var out []LogEntry
	var ts []int64
	err = s.run(ctx, tenantLogs, q, func(db *logstorage.DataBlock) {
		ts, _ = db.GetTimestamps(ts[:0])
		cols := db.GetColumns(false)
		for row := 0; row < db.RowsCount(); row++ {
			out = append(out, logEntry(cols, row, ts[row]))
		}
	})
	return out, err
}

// TraceLogs returns the log records of a trace, oldest first: those stored
// under any of ids, searched in the minutes the log index gives for them
// (and, for lines stored before the index began, over that whole time).
func (s *Store) TraceLogs(ctx context.Context, ids []pcommon.TraceID, limit int) ([]LogEntry, error) {
	if limit <= 0 || limit > MaxLogLimit {
		limit = 100
	}
	minutes, err := s.logMinutes(ctx, ids)
	if err != nil {
		return nil, fmt.Errorf("read the logs of a trace: %w", err)
	}
	ranges := minuteRanges(minutes)
	if len(ranges) == 0 {
		if lo, hi, ok := s.unindexedRange(); ok {
			ranges = append(ranges, [2]int64{lo, hi + 1})
		}
	}
	var out []LogEntry
	for _, r := range ranges {
		lq := LogQuery{TraceIDs: ids, Limit: limit, Ascending: true, Start: time.Unix(0, r[0]), End: time.Unix(0, r[1]-1)}
		got, err := s.Logs(ctx, lq)
		if err != nil {
			return nil, err
		}
		out = append(out, got...)
		if len(out) >= limit {
			// Ranges are in time order: the first limit lines are found.
			break
		}
	}
	if len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

// logEntry reads one row of a result block.
func logEntry(cols []logstorage.BlockColumn, row int, ts int64) LogEntry {
	le := LogEntry{Time: nsToTime(ts), Attributes: map[string]string{}, Resource: map[string]string{}}
	for _, c := range cols {
		v := c.Values[row]
		if v == "" {
			continue
		}
		v = strings.Clone(v)
		switch c.Name {
		case fieldService:
			le.Service = v
		case fieldMessage, fieldBody:
			le.Body = v
		case fieldSeverityText:
			le.Severity = v
		case fieldSeverityNumber:
			le.SeverityNumber, _ = strconv.Atoi(v)
		case fieldTraceID:
			le.TraceID = v
		case fieldSpanID:
			le.SpanID = v
		case fieldOriginalTime:
			if n, err := strconv.ParseInt(v, 10, 64); err == nil {
				le.Attributes["original_time"] = nsToTime(n).Format(time.RFC3339Nano)
			}
		case fieldOverflow:
			// Fields over the service's column budget (see columns.go).
			forEachOverflowPair(v, func(name, v string) { le.addField(name, v) })
		case fieldTypes, "_time", "_stream", "_stream_id":
		default:
			le.addField(c.Name, v)
		}
	}
	return le
}
