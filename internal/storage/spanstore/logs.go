package spanstore

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/VictoriaMetrics/VictoriaLogs/lib/logstorage"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/skytrail/skytrail/internal/pipeline"
)

// Agent logs (SkyWalking's LogReportService, later OTLP logs) live in the
// same engine, in their own tenant, with the span schema's field names:
// service (the stream), body, severity_text, severity_number, trace_id,
// span_id, attr.<key>, resource.<key>, scope.name, types.
var tenantLogs = logstorage.TenantID{AccountID: 0, ProjectID: 2}

const (
	fieldBody           = "body"
	fieldSeverityText   = "severity_text"
	fieldSeverityNumber = "severity_number"
	// fieldOriginalTime keeps a record's own timestamp when it lies outside
	// what storage accepts (older than the retention, or a day ahead) and the
	// record is stored at the time it was received instead.
	fieldOriginalTime = "original_time"
)

// ConsumeLogs stores log records; implements pipeline.LogsConsumer. Like
// ConsumeTraces it writes nothing and fails with ErrDiskFull while the disk
// is too full.
func (s *Store) ConsumeLogs(_ context.Context, ld pipeline.Logs) error {
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
			}
		}
	}
	if err := e.admitted.sync(s.columns); err != nil {
		return fmt.Errorf("store log records: %w", err)
	}
	s.storage.MustAddRows(lr)
	return nil
}

// encodeLog returns the fields of one log record's row, stored at ts.
func (e *rowEncoder) encodeLog(rec plog.LogRecord, ts, originalTime int64) []logstorage.Field {
	e.buf = e.buf[:0]
	e.types = e.types[:0]
	f := e.fields[:0]
	f = append(f, logstorage.Field{Name: fieldService, Value: e.service})
	f = append(f, logstorage.Field{Name: fieldBody, Value: rec.Body().AsString()})
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
		f, e.types, e.buf = appendAttr(f, e.types, e.buf, prefixAttr, k, v)
		return true
	})
	f = e.spillOverBudget(f, attrsFrom, ts/nsecsPerDay)
	if len(e.types) > 0 {
		start := len(e.buf)
		e.buf = append(e.buf, e.types...)
		f = append(f, logstorage.Field{Name: fieldTypes, Value: unsafeString(e.buf[start:])})
	}
	e.fields = f
	return f
}

// LogQuery selects stored log records; zero values mean any.
type LogQuery struct {
	Service    string
	TraceID    pcommon.TraceID
	Start, End time.Time
	Limit      int
}

// LogEntry is one stored log record.
type LogEntry struct {
	Time       time.Time         `json:"time"`
	Service    string            `json:"service"`
	Body       string            `json:"body"`
	Severity   string            `json:"severity,omitempty"`
	TraceID    string            `json:"traceID,omitempty"`
	SpanID     string            `json:"spanID,omitempty"`
	Attributes map[string]string `json:"attributes"`
	Resource   map[string]string `json:"resource"`
}

// addField adds an attribute or the packed resource, the fields a record
// may keep in overflow too.
func (le *LogEntry) addField(name, v string) {
	switch {
	case strings.HasPrefix(name, prefixAttr):
		le.Attributes[name[len(prefixAttr):]] = v
	case name == fieldResource:
		forEachResourcePair(v, func(k, v string, _ byte) { le.Resource[k] = v })
	}
}

// Logs returns matching log records, newest first.
func (s *Store) Logs(ctx context.Context, lq LogQuery) ([]LogEntry, error) {
	var parts []string
	if lq.Service != "" {
		parts = append(parts, fmt.Sprintf("_stream:{%s=%s}", fieldService, quote(lq.Service)))
	}
	if !lq.TraceID.IsEmpty() {
		parts = append(parts, fieldTraceID+":="+quote(fmt.Sprintf("%x", lq.TraceID[:])))
	}
	filter := "*"
	if len(parts) > 0 {
		filter = strings.Join(parts, " ")
	}
	limit := lq.Limit
	if limit <= 0 || limit > 1000 {
		limit = 100
	}
	q, err := parse(fmt.Sprintf("%s | sort by (_time desc) limit %d", filter, limit))
	if err != nil {
		return nil, err
	}
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
	q.AddTimeFilter(lo, hi-1)
	var out []LogEntry
	var ts []int64
	err = s.run(ctx, tenantLogs, q, func(db *logstorage.DataBlock) {
		ts, _ = db.GetTimestamps(ts[:0])
		cols := db.GetColumns(false)
		for row := 0; row < db.RowsCount(); row++ {
			le := LogEntry{Time: nsToTime(ts[row]), Attributes: map[string]string{}, Resource: map[string]string{}}
			for _, c := range cols {
				v := c.Values[row]
				if v == "" {
					continue
				}
				v = strings.Clone(v)
				switch {
				case c.Name == fieldService:
					le.Service = v
				case c.Name == fieldBody:
					le.Body = v
				case c.Name == fieldSeverityText:
					le.Severity = v
				case c.Name == fieldTraceID:
					le.TraceID = v
				case c.Name == fieldSpanID:
					le.SpanID = v
				case c.Name == fieldOriginalTime:
					if n, err := strconv.ParseInt(v, 10, 64); err == nil {
						le.Attributes["original_time"] = nsToTime(n).Format(time.RFC3339Nano)
					}
				case c.Name == fieldOverflow:
					// Fields over the service's column budget (see columns.go).
					forEachOverflowPair(v, func(name, v string) { le.addField(name, v) })
				default:
					le.addField(c.Name, v)
				}
			}
			out = append(out, le)
		}
	})
	if err != nil {
		return nil, fmt.Errorf("read logs: %w", err)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Time.After(out[j].Time) })
	return out, nil
}
