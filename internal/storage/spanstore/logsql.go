package spanstore

import (
	"context"
	"fmt"
	"time"

	"github.com/VictoriaMetrics/VictoriaLogs/lib/logstorage"
)

// LogsQLField is one field of a LogsQL result row.
type LogsQLField struct{ Name, Value string }

// LogsQLQuery is a LogsQL query over the log records, as VictoriaLogs'
// /select/logsql/query takes it.
type LogsQLQuery struct {
	Query string
	// Start and End bound the records searched, inclusive, besides any time
	// filter in the query; both are narrowed to what the store holds.
	Start, End time.Time
	// Limit caps the rows returned (newest first when the query's results
	// have times), at most MaxLogsQLLimit; Offset skips that many first.
	Limit, Offset int
}

// MaxLogsQLLimit is the most rows one LogsQL query returns.
const MaxLogsQLLimit = 10_000

// LogsQL runs q over the log records, and only them (the span and index
// tenants are out of its reach), handing each result row to emit, whose
// fields are valid during the call only. The query is bounded: its time
// range to what the store holds, its rows to q.Limit. A query that does not
// parse is ErrBadQuery.
func (s *Store) LogsQL(ctx context.Context, lq LogsQLQuery, emit func(row []LogsQLField)) error {
	end := lq.End
	if end.IsZero() {
		end = time.Now()
	}
	q, err := logstorage.ParseQueryAtTimestamp(lq.Query, end.UnixNano())
	if err != nil {
		return fmt.Errorf("%w: LogsQL: %v", ErrBadQuery, err)
	}
	limit := lq.Limit
	if limit <= 0 || limit > MaxLogsQLLimit {
		limit = MaxLogsQLLimit
	}
	if q.CanReturnLastNResults() {
		q.AddPipeSortByTimeDesc()
	}
	q.AddPipeOffsetLimit(uint64(max(lq.Offset, 0)), uint64(limit))
	start := lq.Start
	if start.IsZero() {
		start = end.Add(-24 * time.Hour)
	}
	lo, hi, ok := s.heldPart(start, end.Add(1))
	if !ok {
		return nil
	}
	q.AddTimeFilter(lo, hi-1)
	var row []LogsQLField
	var ts []int64
	return s.run(ctx, tenantLogs, q, func(db *logstorage.DataBlock) {
		cols := db.GetColumns(true)
		hasTime := false
		for _, c := range cols {
			hasTime = hasTime || c.Name == "_time"
		}
		if !hasTime {
			ts, hasTime = db.GetTimestamps(ts[:0])
			hasTime = hasTime && len(ts) == db.RowsCount()
		}
		for i := 0; i < db.RowsCount(); i++ {
			row = row[:0]
			if hasTime && len(ts) > i {
				row = append(row, LogsQLField{Name: "_time", Value: time.Unix(0, ts[i]).UTC().Format(time.RFC3339Nano)})
			}
			for _, c := range cols {
				if v := c.Values[i]; v != "" {
					row = append(row, LogsQLField{Name: c.Name, Value: v})
				}
			}
			emit(row)
		}
	})
}

// ParseLogsQL parses a LogsQL query evaluated at time at (what relative
// time filters such as _time:5m count back from); one that does not parse
// is ErrBadQuery.
func ParseLogsQL(query string, at time.Time) (*logstorage.Query, error) {
	q, err := logstorage.ParseQueryAtTimestamp(query, at.UnixNano())
	if err != nil {
		return nil, fmt.Errorf("%w: LogsQL: %v", ErrBadQuery, err)
	}
	return q, nil
}

// RunLogsQL runs q (from ParseLogsQL, with whatever pipes the caller
// added) over the log records, and only them, in [start, end] inclusive,
// narrowed to what the store holds, handing each result block to fn, one
// at a time; a block is valid during the call only. Unlike LogsQL it adds
// no sort and no limit: for queries whose pipes bound their results
// (stats, field names, hits over time).
func (s *Store) RunLogsQL(ctx context.Context, q *logstorage.Query, start, end time.Time, fn func(db *logstorage.DataBlock)) error {
	lo, hi, ok := s.heldPart(start, end.Add(1))
	if !ok {
		return nil
	}
	q.AddTimeFilter(lo, hi-1)
	return s.run(ctx, tenantLogs, q, fn)
}
