package query

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/skytrail/skytrail/internal/storage/spanstore"
)

// Times and ranges in every /api/v1 endpoint, read by one parser:
//
//   - start, end: RFC 3339 (2026-01-02T15:04:05Z), or a Unix time in
//     seconds (fractions allowed), milliseconds, microseconds or
//     nanoseconds, told apart by size, so what `date +%s`, JavaScript's
//     Date.now() and Grafana send all work;
//   - lookback: a Go duration (15m, 1h, 168h) before end, used when start
//     is not given.
//
// A time before 1970 or after 2261 is refused (400): no span can be there,
// and times beyond 2262 do not fit the nanoseconds storage counts in.

var (
	minTime = time.Unix(0, 0).UTC()
	maxTime = time.Date(2262, 1, 1, 0, 0, 0, 0, time.UTC)
)

// ParseTime reads one time parameter (see above).
func ParseTime(s string) (time.Time, error) {
	var t time.Time
	if f, err := strconv.ParseFloat(s, 64); err == nil && !math.IsNaN(f) && !math.IsInf(f, 0) {
		switch abs := math.Abs(f); {
		case abs >= 1e17:
			t = time.Unix(0, int64(f))
		case abs >= 1e14:
			t = time.UnixMicro(int64(f))
		case abs >= 1e11:
			t = time.UnixMilli(int64(f))
		default:
			sec, frac := math.Modf(f)
			t = time.Unix(int64(sec), int64(frac*1e9))
		}
	} else if t, err = time.Parse(time.RFC3339Nano, s); err != nil {
		return time.Time{}, errors.New("want RFC 3339 (2026-01-02T15:04:05Z) or a Unix time in seconds, milliseconds, microseconds or nanoseconds")
	}
	if t.Before(minTime) || !t.Before(maxTime) {
		return time.Time{}, errors.New("out of range: want a time between 1970 and 2261")
	}
	return t, nil
}

// timeParam reads parameter name from v, or def when it is absent.
func timeParam(v url.Values, name string, def time.Time) (time.Time, error) {
	s := v.Get(name)
	if s == "" {
		return def, nil
	}
	t, err := ParseTime(s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%s %q: %v", name, s, err)
	}
	return t, nil
}

// lookbackParam reads lookback from v, or def when it is absent.
func lookbackParam(v url.Values, def time.Duration) (time.Duration, error) {
	s := v.Get("lookback")
	if s == "" {
		return def, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("lookback %q: want a duration such as 15m or 1h", s)
	}
	return d, nil
}

// timeRange reads start, end and lookback for the figures endpoints: the
// default end is the end of the current minute, where analysis stamps that
// minute's figures, and the default start def before end.
func timeRange(v url.Values, def time.Duration) (start, end time.Time, err error) {
	if end, err = timeParam(v, "end", time.Now().Truncate(time.Minute).Add(time.Minute)); err != nil {
		return start, end, err
	}
	lookback, err := lookbackParam(v, def)
	if err != nil {
		return start, end, err
	}
	if start, err = timeParam(v, "start", end.Add(-lookback)); err != nil {
		return start, end, err
	}
	if end.Before(start) {
		return start, end, fmt.Errorf("end %s is before start %s", end.UTC().Format(time.RFC3339), start.UTC().Format(time.RFC3339))
	}
	return start, end, nil
}

// parseSearch reads a trace search from URL parameters: service, operation,
// repeated tag=key=value (or key:value), tags as a JSON object, minDuration /
// maxDuration (Go durations), errors=true, start / end / lookback (see
// above; without them the store searches the last hour), limit.
func parseSearch(v url.Values) (spanstore.TraceQuery, error) {
	q := spanstore.TraceQuery{Service: v.Get("service"), Operation: v.Get("operation"), Attributes: map[string]string{}}
	for _, t := range v["tag"] {
		k, val, ok := strings.Cut(t, "=")
		if !ok {
			k, val, ok = strings.Cut(t, ":")
		}
		if !ok || k == "" {
			return q, fmt.Errorf("tag %q: want key=value", t)
		}
		q.Attributes[k] = val
	}
	if tags := v.Get("tags"); tags != "" {
		var m map[string]any
		if err := json.Unmarshal([]byte(tags), &m); err != nil {
			return q, fmt.Errorf("tags %q: want a JSON object of key to value: %v", tags, err)
		}
		for k, val := range m {
			q.Attributes[k] = fmt.Sprint(val)
		}
	}
	var err error
	for _, d := range []struct {
		key string
		dst *time.Duration
	}{{"minDuration", &q.MinDuration}, {"maxDuration", &q.MaxDuration}} {
		if s := v.Get(d.key); s != "" {
			if *d.dst, err = time.ParseDuration(s); err != nil || *d.dst < 0 {
				return q, fmt.Errorf("%s %q: want a duration such as 250ms or 1.5s", d.key, s)
			}
		}
	}
	if q.MinDuration > 0 && q.MaxDuration > 0 && q.MaxDuration < q.MinDuration {
		return q, fmt.Errorf("maxDuration %s is below minDuration %s", q.MaxDuration, q.MinDuration)
	}
	if s := v.Get("errors"); s != "" {
		if q.ErrorsOnly, err = strconv.ParseBool(s); err != nil {
			return q, fmt.Errorf("errors %q: want true or false", s)
		}
	}
	if q.Start, err = timeParam(v, "start", time.Time{}); err != nil {
		return q, err
	}
	if q.End, err = timeParam(v, "end", time.Time{}); err != nil {
		return q, err
	}
	if q.Start.IsZero() && v.Get("lookback") != "" {
		d, err := lookbackParam(v, 0)
		if err != nil {
			return q, err
		}
		end := q.End
		if end.IsZero() {
			end = time.Now()
		}
		q.Start = end.Add(-d)
	}
	if !q.Start.IsZero() && !q.End.IsZero() && q.End.Before(q.Start) {
		return q, errors.New("end is before start")
	}
	if q.Limit, err = limitParam(v); err != nil {
		return q, err
	}
	return q, nil
}

// limitParam reads limit: a positive number, 0 when absent.
func limitParam(v url.Values) (int, error) {
	s := v.Get("limit")
	if s == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("limit %q: want a positive number", s)
	}
	return n, nil
}
