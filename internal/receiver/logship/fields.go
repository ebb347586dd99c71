package logship

import (
	"net/http"
	"slices"
	"strings"
	"time"
	"unicode/utf8"
	"unsafe"

	"github.com/VictoriaMetrics/VictoriaLogs/lib/logstorage"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/skytrail/skytrail/internal/logfields"
)

// Which fields of a line say who sent it (its resource): these by default,
// the service under OpenTelemetry's name, and any named in the request's
// _stream_fields parameter (or VL-Stream-Fields header), as VictoriaLogs
// takes them. They only group lines by sender: the store streams lines by
// service alone, so a high-cardinality field named here costs a little
// grouping, never a stream of its own.
var (
	serviceFields  = []string{"service.name", "service_name", "service", "app", "application", "job"}
	instanceFields = map[string]string{"service.instance.id": "service.instance.id", "host.name": "host.name", "host.hostname": "host.name", "hostname": "host.name"}
)

// params are VictoriaLogs' ingestion parameters SkyTrail honours.
type params struct {
	streamFields []string // _stream_fields: more resource fields
	msgFields    []string // _msg_field: the message, when not a usual name
	timeFields   []string // _time_field: the time, when not a usual name
}

func readParams(r *http.Request) params {
	get := func(arg, header string) []string {
		var out []string
		for _, v := range append(r.URL.Query()[arg], r.Header.Values(header)...) {
			for _, f := range strings.Split(v, ",") {
				if f = strings.TrimSpace(f); f != "" {
					out = append(out, f)
				}
			}
		}
		return out
	}
	return params{
		streamFields: get("_stream_fields", "VL-Stream-Fields"),
		msgFields:    get("_msg_field", "VL-Msg-Field"),
		timeFields:   get("_time_field", "VL-Time-Field"),
	}
}

// builder collects decoded lines into a batch, one ResourceLogs for each
// sender.
type builder struct {
	p      params
	ld     plog.Logs
	groups map[string]int // sender key -> index in ld.ResourceLogs()
	now    int64
	seq    int64
	key    []byte
	pairs  []logstorage.Field
	isRes  []bool // isRes[i]: the line's field i goes to the resource

	// text holds the copies of the request's strings that the batch keeps
	// (the parsed fields view the request buffer, reused once it is
	// answered), many to an allocation; names keeps field names, which
	// repeat line after line, copied once.
	text  []byte
	names map[string]string
}

func newBuilder(p params) *builder {
	return &builder{p: p, ld: plog.NewLogs(), groups: map[string]int{}, now: time.Now().UnixNano(), names: map[string]string{}}
}

// textChunk is the size of the allocations copies are made in: a request's
// worth of short lines in a few of them, and a lone copy holding at most
// this much beyond what it needs.
const textChunk = 32 << 10

// copyText is validUTF8 for a value the batch keeps: the copy shares an
// allocation with others of the request instead of taking one of its own.
func (b *builder) copyText(s string) string {
	if s == "" {
		return ""
	}
	if !utf8.ValidString(s) {
		return strings.ToValidUTF8(s, "\uFFFD")
	}
	if len(s) > cap(b.text)-len(b.text) {
		// A new chunk: the strings already made keep the old one alive,
		// and appending never moves what they point at.
		b.text = make([]byte, 0, max(textChunk, len(s)))
	}
	start := len(b.text)
	b.text = append(b.text, s...)
	return unsafe.String(&b.text[start], len(s))
}

// maxNames bounds the field names remembered for a request: a request of
// lines with ten thousand different fields copies the rest one by one.
const maxNames = 1024

// copyName is copyText for a field name, shared by every line using it.
func (b *builder) copyName(s string) string {
	if n, ok := b.names[s]; ok {
		return n
	}
	n := validUTF8(s)
	if len(b.names) < maxNames {
		b.names[n] = n
	}
	return n
}

// serviceRank is the place of name in serviceFields, len(serviceFields)
// when it is not there.
func serviceRank(name string) int {
	switch name {
	case "service.name":
		return 0
	case "service_name":
		return 1
	case "service":
		return 2
	case "app":
		return 3
	case "application":
		return 4
	case "job":
		return 5
	}
	return len(serviceFields)
}

// resourceName says under which resource attribute a field goes, "" for
// none.
func (b *builder) resourceName(name string) string {
	if serviceRank(name) < len(serviceFields) {
		return "service.name"
	}
	if n, ok := instanceFields[name]; ok {
		return n
	}
	if slices.Contains(b.p.streamFields, name) {
		return name
	}
	return ""
}

// group returns the records of the sender named by pairs (resource
// attribute name and value, the first of each name winning), and its
// resource's attributes.
func (b *builder) group(pairs []logstorage.Field) (plog.LogRecordSlice, pcommon.Map) {
	slices.SortStableFunc(pairs, func(a, c logstorage.Field) int { return strings.Compare(a.Name, c.Name) })
	pairs = slices.CompactFunc(pairs, func(a, c logstorage.Field) bool { return a.Name == c.Name })
	b.key = b.key[:0]
	for _, p := range pairs {
		b.key = append(b.key, p.Name...)
		b.key = append(b.key, 0)
		b.key = append(b.key, p.Value...)
		b.key = append(b.key, 0)
	}
	if i, ok := b.groups[string(b.key)]; ok {
		rl := b.ld.ResourceLogs().At(i)
		return rl.ScopeLogs().At(0).LogRecords(), rl.Resource().Attributes()
	}
	b.groups[string(b.key)] = b.ld.ResourceLogs().Len()
	rl := b.ld.ResourceLogs().AppendEmpty()
	attrs := rl.Resource().Attributes()
	for _, p := range pairs {
		attrs.PutStr(b.copyName(p.Name), b.copyText(p.Value))
	}
	return rl.ScopeLogs().AppendEmpty().LogRecords(), attrs
}

// record turns one line's fields into a record in scratch (cleared first)
// and returns the records and resource it belongs to. Every field of
// sender (a Loki stream's labels) is a resource attribute; of fields, those
// resourceName names. A line without a time of its own is stamped with the
// request's arrival plus its place in the request, so lines keep their
// order.
func (b *builder) record(fields []logstorage.Field, sender []logstorage.Field, scratch plog.LogRecord) (plog.LogRecordSlice, pcommon.Map) {
	b.pairs = b.pairs[:0]
	// The service: the first of serviceFields present, the sender's first.
	service, rank := "", len(serviceFields)
	for _, group := range [][]logstorage.Field{sender, fields} {
		for _, f := range group {
			if r := serviceRank(f.Name); r < rank && f.Value != "" {
				service, rank = f.Value, r
			}
		}
		if service != "" {
			break
		}
	}
	// The group's key is made of these pairs and a new group copies them:
	// they may view the request buffer until then.
	if service != "" {
		b.pairs = append(b.pairs, logstorage.Field{Name: "service.name", Value: service})
	}
	for _, f := range sender {
		if serviceRank(f.Name) < len(serviceFields) || f.Value == "" {
			continue
		}
		n := b.resourceName(f.Name)
		if n == "" {
			n = f.Name
		}
		b.pairs = append(b.pairs, logstorage.Field{Name: n, Value: f.Value})
	}
	b.isRes = slices.Grow(b.isRes[:0], len(fields))[:len(fields)]
	for i, f := range fields {
		n := b.resourceName(f.Name)
		b.isRes[i] = n != ""
		if n == "" || serviceRank(f.Name) < len(serviceFields) || f.Value == "" {
			continue
		}
		b.pairs = append(b.pairs, logstorage.Field{Name: n, Value: f.Value})
	}
	recs, res := b.group(b.pairs)

	scratch.Attributes().Clear()
	scratch.Body().SetStr("")
	scratch.SetTimestamp(0)
	scratch.SetSeverityText("")
	scratch.SetSeverityNumber(0)
	scratch.SetTraceID(pcommon.TraceID{})
	scratch.SetSpanID(pcommon.SpanID{})
	scratch.SetObservedTimestamp(pcommon.Timestamp(b.now + b.seq))
	b.seq++
	attrs := scratch.Attributes()
	attrs.EnsureCapacity(len(fields))
	for i, f := range fields {
		if f.Value == "" || f.Name == "" {
			continue
		}
		switch {
		case b.isRes[i]:
			continue
		case len(b.p.msgFields) > 0 && slices.Contains(b.p.msgFields, f.Name) && scratch.Body().Str() == "":
			scratch.Body().SetStr(b.copyText(f.Value))
			continue
		case len(b.p.timeFields) > 0 && slices.Contains(b.p.timeFields, f.Name) && scratch.Timestamp() == 0:
			if ts, ok := logfields.ParseTimeString(f.Value); ok {
				scratch.SetTimestamp(pcommon.Timestamp(ts))
				continue
			}
		}
		attrs.PutStr(b.copyName(f.Name), b.copyText(f.Value))
	}
	return recs, res
}

// validUTF8 copies s (which views a request buffer), with any byte that
// is not UTF-8 replaced by U+FFFD: the store and the APIs speak UTF-8.
func validUTF8(s string) string {
	if utf8.ValidString(s) {
		return strings.Clone(s)
	}
	return strings.ToValidUTF8(s, "\uFFFD")
}

func unsafeString(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }

// nextLine returns the first line of b and the rest, without the newline
// (and a carriage return before it).
func nextLine(b []byte) (line, rest []byte) {
	for i, c := range b {
		if c == '\n' {
			line, rest = b[:i], b[i+1:]
			if n := len(line); n > 0 && line[n-1] == '\r' {
				line = line[:n-1]
			}
			return line, rest
		}
	}
	return b, nil
}
