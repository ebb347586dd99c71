package metricstore

import (
	"context"
	"slices"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
	"github.com/prometheus/prometheus/util/annotations"

	"github.com/skytrail/skytrail/internal/analysis/red"
)

// remoteMaxTimeSeries is the series MaxTime reads in a remote store: the
// per-minute calls of every service, written for each minute with calls.
var remoteMaxTimeSeries = red.MinuteName("skytrail_service_", red.FieldCalls)

// nodeQuerier gives a live source's series this node's NodeLabel, as the
// same series carry in the remote store, so that the merge of the two reads
// each sample once; a matcher on the node label is answered here.
type nodeQuerier struct {
	storage.Querier
	node string
}

func (q *nodeQuerier) Select(ctx context.Context, _ bool, hints *storage.SelectHints, ms ...*labels.Matcher) storage.SeriesSet {
	rest, ok := q.others(ms)
	if !ok {
		return storage.EmptySeriesSet()
	}
	set := q.Querier.Select(ctx, false, hints, rest...)
	var out []storage.Series
	for set.Next() {
		s := set.At()
		b := labels.NewBuilder(s.Labels())
		b.Set(NodeLabel, q.node)
		out = append(out, &relabelled{Series: s, lbls: b.Labels()})
	}
	if err := set.Err(); err != nil {
		return storage.ErrSeriesSet(err)
	}
	// A label added to every series can change their order.
	slices.SortFunc(out, func(a, b storage.Series) int { return labels.Compare(a.Labels(), b.Labels()) })
	return &listSet{series: out, warnings: set.Warnings()}
}

// others drops the matchers on the node label; ok is false when one of
// them does not match this node.
func (q *nodeQuerier) others(ms []*labels.Matcher) (rest []*labels.Matcher, ok bool) {
	for _, m := range ms {
		if m.Name != NodeLabel {
			rest = append(rest, m)
		} else if !m.Matches(q.node) {
			return nil, false
		}
	}
	return rest, true
}

func (q *nodeQuerier) LabelValues(ctx context.Context, name string, hints *storage.LabelHints, ms ...*labels.Matcher) ([]string, annotations.Annotations, error) {
	rest, ok := q.others(ms)
	if !ok {
		return nil, nil, nil
	}
	vals, ann, err := q.Querier.LabelValues(ctx, name, hints, rest...)
	if name == NodeLabel && err == nil {
		// The source's series have no node label of their own.
		vals = nil
		if set := q.Querier.Select(ctx, false, nil, rest...); set.Next() {
			vals = []string{q.node}
		}
	}
	return vals, ann, err
}

func (q *nodeQuerier) LabelNames(ctx context.Context, hints *storage.LabelHints, ms ...*labels.Matcher) ([]string, annotations.Annotations, error) {
	rest, ok := q.others(ms)
	if !ok {
		return nil, nil, nil
	}
	names, ann, err := q.Querier.LabelNames(ctx, hints, rest...)
	if err != nil || len(names) == 0 {
		return names, ann, err
	}
	names = append(names, NodeLabel)
	slices.Sort(names)
	return slices.Compact(names), ann, nil
}

type relabelled struct {
	storage.Series
	lbls labels.Labels
}

func (r *relabelled) Labels() labels.Labels                           { return r.lbls }
func (r *relabelled) Iterator(it chunkenc.Iterator) chunkenc.Iterator { return r.Series.Iterator(it) }
