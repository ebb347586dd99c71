package metricstore

import (
	"context"

	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
)

// AppenderV2 is the storage.AppendableV2 the rules engine writes recording
// rules, ALERTS and ALERTS_FOR_STATE through. While the disk is too full
// (Writable fails) it hands out an appender that refuses every sample with
// that error instead of the TSDB's: a head chunk the TSDB cannot write
// makes it panic (see Writable), and a rule evaluation that fails softly
// is counted by the rules engine and tried again next interval.
func (s *Store) AppenderV2(ctx context.Context) storage.AppenderV2 {
	if s.remote != nil {
		return v2{s.remote.appender(ctx)}
	}
	if err := s.Writable(); err != nil {
		return refusingAppender{err: err}
	}
	return s.db.AppenderV2(ctx)
}

type refusingAppender struct{ err error }

func (r refusingAppender) Append(storage.SeriesRef, labels.Labels, int64, int64, float64, *histogram.Histogram, *histogram.FloatHistogram, storage.AOptions) (storage.SeriesRef, error) {
	return 0, r.err
}
func (r refusingAppender) Commit() error   { return nil }
func (r refusingAppender) Rollback() error { return nil }
