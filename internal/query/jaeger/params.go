package jaeger

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"

	"github.com/skytrail/skytrail/internal/storage/spanstore"
	"github.com/skytrail/skytrail/internal/traceid"
)

const (
	// defaultLimit is Jaeger's own default; Grafana always sends limit.
	defaultLimit = 100
	// maxLimit bounds the traces one search fetches whole, found or named by
	// traceID parameters (Jaeger UI's own maximum is 1500).
	maxLimit = 1500
	// maxTraceIDLength bounds a trace ID string; SkyWalking's longest forms
	// are well under 100 characters.
	maxTraceIDLength = 256
	// maxLookbackDays bounds a lookback, in days or as a Go duration: a
	// century is already far beyond any retention.
	maxLookbackDays = 100 * 365
	// defaultDependenciesLookback is Jaeger's.
	defaultDependenciesLookback = 24 * time.Hour
)

var errServiceRequired = errors.New("parameter 'service' is required")

// latestTime bounds the times a client may send. A time past the year 9999
// is a mistake or a probe, not a search (RFC 3339 cannot even write it);
// times merely outside the retention are fine, the store narrows a search
// to what it holds.
var latestTime = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)

// requestedTrace is one trace ID a client asked for: the string it sent and
// the IDs it may be stored under, most likely first.
type requestedTrace struct {
	raw        string
	candidates []pcommon.TraceID
}

// searchParams is a parsed GET /api/traces: either explicit trace IDs, which
// Jaeger fetches ignoring every other parameter, or a query.
type searchParams struct {
	traces []requestedTrace
	query  spanstore.TraceQuery
}

func parseError(param string, err error) error {
	return fmt.Errorf("unable to parse param '%s': %w", param, err)
}

// parseSearchParams reads Jaeger's search parameters. now resolves a lookback
// given without an end.
func parseSearchParams(v url.Values, now time.Time) (searchParams, error) {
	var p searchParams
	if n := len(v["traceID"]); n > maxLimit {
		return p, fmt.Errorf("%d traceID parameters, at most %d", n, maxLimit)
	}
	for _, raw := range v["traceID"] {
		t, err := parseTraceID(raw)
		if err != nil {
			return p, parseError("traceID", err)
		}
		p.traces = append(p.traces, t)
	}
	q := &p.query
	q.Service = v.Get("service")
	q.Operation = v.Get("operation")
	if len(p.traces) == 0 && q.Service == "" {
		return p, errServiceRequired
	}

	var err error
	if q.Attributes, err = parseTags(v["tag"], v["tags"]); err != nil {
		return p, err
	}
	if q.Start, err = parseMicros(v, "start"); err != nil {
		return p, err
	}
	if q.End, err = parseMicros(v, "end"); err != nil {
		return p, err
	}
	// Jaeger's UI and Grafana send start and end with the lookback they came
	// from; a bare lookback (curl) means "this long before end".
	if lookback := v.Get("lookback"); q.Start.IsZero() && lookback != "" && lookback != "custom" {
		d, err := parseLookback(lookback)
		if err != nil {
			return p, parseError("lookback", err)
		}
		end := q.End
		if end.IsZero() {
			end = now
		}
		q.Start = end.Add(-d)
	}
	if !q.Start.IsZero() && !q.End.IsZero() && q.Start.After(q.End) {
		return p, errors.New("'start' must not be after 'end'")
	}

	if q.MinDuration, err = parseDuration(v, "minDuration"); err != nil {
		return p, err
	}
	if q.MaxDuration, err = parseDuration(v, "maxDuration"); err != nil {
		return p, err
	}
	if q.MinDuration != 0 && q.MaxDuration != 0 && q.MaxDuration < q.MinDuration {
		return p, errors.New("'maxDuration' should be greater than 'minDuration'")
	}

	q.Limit = defaultLimit
	if s := v.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		switch {
		case err != nil:
			return p, parseError("limit", err)
		case n < 0 || n > maxLimit:
			return p, parseError("limit", fmt.Errorf("%d is outside 0..%d", n, maxLimit))
		case n > 0: // 0 keeps the default, as in Jaeger
			q.Limit = n
		}
	}
	return p, nil
}

// parseTags merges repeated tag=key:value parameters and tags={JSON object}
// parameters. JSON values may be strings, numbers or booleans; they are
// matched as strings.
func parseTags(simple, jsonTags []string) (map[string]string, error) {
	if len(simple) == 0 && len(jsonTags) == 0 {
		return nil, nil
	}
	tags := map[string]string{}
	for _, tag := range simple {
		key, value, ok := strings.Cut(tag, ":")
		if !ok {
			return nil, fmt.Errorf("malformed 'tag' parameter, expecting key:value, received: %s", tag)
		}
		tags[key] = value
	}
	for _, raw := range jsonTags {
		var obj map[string]json.RawMessage
		if err := json.Unmarshal([]byte(raw), &obj); err != nil {
			return nil, fmt.Errorf("malformed 'tags' parameter, cannot unmarshal JSON object: %w", err)
		}
		for key, value := range obj {
			s, err := tagValueString(value)
			if err != nil {
				return nil, fmt.Errorf("malformed 'tags' parameter, value of %q: %w", key, err)
			}
			tags[key] = s
		}
	}
	for key := range tags {
		if key == "" || len(key) > spanstore.MaxAttributeKeyLen {
			return nil, fmt.Errorf("tag key %q: want 1 to %d bytes", key, spanstore.MaxAttributeKeyLen)
		}
	}
	return tags, nil
}

// tagValueString turns a JSON scalar into the string a tag is compared as:
// strings unquoted, numbers and booleans as written.
func tagValueString(raw json.RawMessage) (string, error) {
	var v any
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		return "", err
	}
	switch v := v.(type) {
	case string:
		return v, nil
	case json.Number:
		return v.String(), nil
	case bool:
		return strconv.FormatBool(v), nil
	}
	return "", errors.New("must be a string, number or boolean")
}

// parseMicros reads microseconds since the epoch; absent is the zero time.
func parseMicros(v url.Values, param string) (time.Time, error) {
	s := v.Get(param)
	if s == "" {
		return time.Time{}, nil
	}
	us, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return time.Time{}, parseError(param, err)
	}
	if us <= 0 {
		return time.Time{}, parseError(param, fmt.Errorf("%d is not a time in microseconds since the epoch", us))
	}
	if us >= latestTime.UnixMicro() {
		return time.Time{}, parseError(param, fmt.Errorf("%d µs since the epoch is after the year 9999", us))
	}
	return time.UnixMicro(us), nil
}

// parseDuration reads a Go duration such as 1.2s or 100ms; absent is 0.
func parseDuration(v url.Values, param string) (time.Duration, error) {
	s := v.Get(param)
	if s == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, parseError(param, err)
	}
	if d < 0 {
		return 0, parseError(param, fmt.Errorf("%s is negative", s))
	}
	return d, nil
}

// parseLookback reads the lookbacks Jaeger's UI offers: Go durations plus
// days and weeks ("2d", "1w").
func parseLookback(s string) (time.Duration, error) {
	var d time.Duration
	var err error
	if unit := s[len(s)-1]; unit == 'd' || unit == 'w' {
		days, perr := strconv.ParseUint(s[:len(s)-1], 10, 32)
		if perr != nil {
			return 0, fmt.Errorf("%q is not a duration such as 1h, 2d or 1w", s)
		}
		if unit == 'w' {
			days *= 7
		}
		if days > maxLookbackDays {
			return 0, fmt.Errorf("%s is longer than %d days", s, maxLookbackDays)
		}
		d = time.Duration(days) * 24 * time.Hour
	} else if d, err = time.ParseDuration(s); err != nil {
		return 0, err
	}
	if d <= 0 {
		return 0, fmt.Errorf("%s is not positive", s)
	}
	if d > maxLookbackDays*24*time.Hour {
		return 0, fmt.Errorf("%s is longer than %d days", s, maxLookbackDays)
	}
	return d, nil
}

// parseTraceID maps a trace ID string to the IDs it may be stored under
// (traceid.Candidates).
func parseTraceID(s string) (requestedTrace, error) {
	ids, err := traceid.Candidates(s)
	return requestedTrace{raw: s, candidates: ids}, err
}

// parseDependenciesParams reads endTs and lookback, both in milliseconds, as
// Jaeger does: endTs defaults to now, lookback to 24h.
func parseDependenciesParams(v url.Values, now time.Time) (end time.Time, lookback time.Duration, err error) {
	end, lookback = now, defaultDependenciesLookback
	if s := v.Get("endTs"); s != "" {
		ms, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return end, lookback, parseError("endTs", err)
		}
		if ms <= 0 {
			return end, lookback, parseError("endTs", fmt.Errorf("%d is not a time in milliseconds since the epoch", ms))
		}
		if ms >= latestTime.UnixMilli() {
			return end, lookback, parseError("endTs", fmt.Errorf("%d ms since the epoch is after the year 9999", ms))
		}
		end = time.UnixMilli(ms)
	}
	if s := v.Get("lookback"); s != "" {
		ms, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return end, lookback, parseError("lookback", err)
		}
		if ms <= 0 || ms > int64(365*24*time.Hour/time.Millisecond) {
			return end, lookback, parseError("lookback", fmt.Errorf("%d ms is not between 1 ms and a year", ms))
		}
		lookback = time.Duration(ms) * time.Millisecond
	}
	return end, lookback, nil
}
