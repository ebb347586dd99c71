package logship

import (
	"errors"
	"fmt"
	"mime"
	"net/http"
	"strconv"
	"time"

	"github.com/VictoriaMetrics/VictoriaLogs/lib/logstorage"
	"github.com/golang/snappy"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/valyala/fastjson"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/skytrail/skytrail/internal/pipeline"
	"github.com/skytrail/skytrail/internal/receiver/wire"
)

// serveLoki takes Loki's push API: protobuf (logproto.PushRequest, snappy
// compressed, what Promtail and Alloy send) or JSON
// ({"streams":[{"stream":{labels},"values":[[ns,line,{metadata}]]}]}).
// A stream's labels are its lines' resource (service from service_name,
// service, app or job); structured metadata (Loki 3) are attributes; a
// line that is JSON is spread into fields by the front door. Lines the
// front door refuses are left out and named in a 400 (Loki's answer to
// lines it will not take), the rest are stored; success is 204.
func (r *Receiver) serveLoki(w http.ResponseWriter, req *http.Request) {
	if req.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		textError(w, http.StatusMethodNotAllowed, fmt.Errorf("the Loki push API takes POST, not %s", req.Method))
		return
	}
	mediaType, _, _ := mime.ParseMediaType(req.Header.Get("Content-Type"))
	admitted, body, done, ok := r.begin(w, req, LokiReceiver, textError)
	if !ok {
		return
	}
	defer done()
	d := lokiDecoder{b: newBuilder(params{}), p: r.p, scratch: plog.NewLogRecord(), labelParser: parser.NewParser(parser.Options{EnableUnquotedUTF8Names: true})}
	var err error
	switch mediaType {
	case "application/json":
		err = d.decodeJSON(body)
	case "application/x-protobuf", "":
		var raw []byte
		if raw, err = r.unsnappy(admitted, body); err == nil {
			err = d.decodeProtobuf(raw)
		}
	default:
		err = admitted.Refuse(pipeline.Malformed, fmt.Errorf("unsupported Content-Type %q: send application/x-protobuf (snappy) or application/json", mediaType))
	}
	if err != nil {
		if _, counted := err.(*pipeline.Error); !counted {
			err = admitted.Refuse(pipeline.Malformed, err)
		}
		textError(w, wire.HTTPStatus(w.Header(), err), err)
		return
	}
	out, err := admitted.Ingest(req.Context(), &pipeline.Logs{Logs: d.b.ld, Refused: d.refused, Checked: true})
	switch {
	case err != nil:
		textError(w, wire.HTTPStatus(w.Header(), err), err)
	case out.Rejected > 0:
		textError(w, http.StatusBadRequest, fmt.Errorf("%s; the other %d lines were stored", out.Message, out.Accepted))
	default:
		w.WriteHeader(http.StatusNoContent)
	}
}

// unsnappy decompresses a protobuf push body (snappy's block format),
// charging the budget for it first.
func (r *Receiver) unsnappy(admitted *pipeline.Request, body []byte) ([]byte, error) {
	n, err := snappy.DecodedLen(body)
	if err != nil {
		return nil, fmt.Errorf("the body is not snappy-compressed, as Loki's protobuf push must be: %v", err)
	}
	if n > r.cfg.MaxRequestBytes {
		return nil, admitted.Refuse(pipeline.TooLarge, fmt.Errorf("the body decompresses to %d bytes, over the limit of %d: send smaller batches", n, r.cfg.MaxRequestBytes))
	}
	if err := admitted.Grow(n + decodedSize(body)); err != nil {
		return nil, err
	}
	raw, err := snappy.Decode(nil, body)
	if err != nil {
		return nil, fmt.Errorf("decompress the snappy body: %v", err)
	}
	return raw, nil
}

type lokiDecoder struct {
	b       *builder
	p       *pipeline.Pipeline
	scratch plog.LogRecord
	refused pipeline.Refused
	labels  []logstorage.Field
	meta    []logstorage.Field
	// labelParser reads stream labels as Prometheus does.
	labelParser parser.Parser
}

// setStream reads a stream's labels, Prometheus' text form {a="b"}.
func (d *lokiDecoder) setStream(text string) error {
	lset, err := d.labelParser.ParseMetric(text)
	if err != nil {
		return fmt.Errorf("stream labels %q: %v", truncate(text, 128), err)
	}
	d.labels = d.labels[:0]
	lset.Range(func(l labels.Label) { d.labels = append(d.labels, logstorage.Field{Name: l.Name, Value: l.Value}) })
	return nil
}

// entry adds one line at ts (Unix ns; 0: none given).
func (d *lokiDecoder) entry(ts int64, line string) {
	recs, res := d.b.record(d.meta, d.labels, d.scratch)
	if ts > 0 {
		d.scratch.SetTimestamp(pcommon.Timestamp(ts))
	}
	d.scratch.Body().SetStr(validUTF8(line))
	if reason := d.p.CheckLog(res, d.scratch); reason != "" {
		d.refused.Items++
		if d.refused.First == "" {
			d.refused.First = reason
		}
		return
	}
	d.scratch.MoveTo(recs.AppendEmpty())
}

func (d *lokiDecoder) decodeJSON(body []byte) error {
	var p fastjson.Parser
	v, err := p.ParseBytes(body)
	if err != nil {
		return fmt.Errorf("the body is not JSON: %v", err)
	}
	sv := v.Get("streams")
	if sv == nil || sv.Type() != fastjson.TypeArray {
		return errors.New(`the body has no "streams" array`)
	}
	streams, _ := sv.Array()
	for i, s := range streams {
		d.labels = d.labels[:0]
		if o := s.GetObject("stream"); o != nil {
			var bad error
			o.Visit(func(k []byte, v *fastjson.Value) {
				sv, err := v.StringBytes()
				if err != nil {
					bad = fmt.Errorf("stream %d: label %q is not a string", i, truncate(string(k), 64))
				}
				d.labels = append(d.labels, logstorage.Field{Name: validUTF8(string(k)), Value: validUTF8(string(sv))})
			})
			if bad != nil {
				return bad
			}
		}
		for j, e := range s.GetArray("values") {
			vals, err := e.Array()
			if err != nil || len(vals) < 2 || len(vals) > 3 {
				return fmt.Errorf("stream %d, value %d: want [\"<unix ns>\", \"<line>\"] or [\"<unix ns>\", \"<line>\", {metadata}]", i, j)
			}
			tsText, err1 := vals[0].StringBytes()
			line, err2 := vals[1].StringBytes()
			if err1 != nil || err2 != nil {
				return fmt.Errorf("stream %d, value %d: the time and the line must be strings", i, j)
			}
			ts, err := strconv.ParseInt(string(tsText), 10, 64)
			if err != nil || ts < 0 {
				return fmt.Errorf("stream %d, value %d: time %q is not Unix nanoseconds", i, j, truncate(string(tsText), 64))
			}
			d.meta = d.meta[:0]
			if len(vals) == 3 {
				o, err := vals[2].Object()
				if err != nil {
					return fmt.Errorf("stream %d, value %d: structured metadata is not an object", i, j)
				}
				o.Visit(func(k []byte, v *fastjson.Value) {
					sv := v.GetStringBytes()
					d.meta = append(d.meta, logstorage.Field{Name: string(k), Value: string(sv)})
				})
			}
			d.entry(ts, string(line))
		}
	}
	return nil
}

// decodeProtobuf reads logproto.PushRequest: streams (1) of labels (1),
// entries (2) of timestamp (1: seconds 1, nanos 2), line (2) and
// structured metadata (3: name 1, value 2).
func (d *lokiDecoder) decodeProtobuf(b []byte) error {
	return eachField(b, func(num protowire.Number, typ protowire.Type, v []byte, _ uint64) error {
		if num != 1 || typ != protowire.BytesType {
			return nil
		}
		var entries [][]byte
		d.labels = d.labels[:0]
		err := eachField(v, func(num protowire.Number, typ protowire.Type, v []byte, _ uint64) error {
			switch {
			case num == 1 && typ == protowire.BytesType:
				return d.setStream(string(v))
			case num == 2 && typ == protowire.BytesType:
				entries = append(entries, v)
			}
			return nil
		})
		if err != nil {
			return err
		}
		for _, e := range entries {
			var ts int64
			var line string
			d.meta = d.meta[:0]
			err := eachField(e, func(num protowire.Number, typ protowire.Type, v []byte, _ uint64) error {
				switch {
				case num == 1 && typ == protowire.BytesType:
					var sec, nanos uint64
					if err := eachField(v, func(num protowire.Number, typ protowire.Type, _ []byte, n uint64) error {
						if typ == protowire.VarintType && num == 1 {
							sec = n
						} else if typ == protowire.VarintType && num == 2 {
							nanos = n
						}
						return nil
					}); err != nil {
						return err
					}
					if int64(sec) < 0 || sec > uint64(maxUnixSeconds) || nanos >= 1e9 {
						return fmt.Errorf("entry timestamp %d.%09d is out of range", int64(sec), nanos)
					}
					ts = int64(sec)*int64(time.Second) + int64(nanos)
				case num == 2 && typ == protowire.BytesType:
					line = string(v)
				case num == 3 && typ == protowire.BytesType:
					var name, value string
					if err := eachField(v, func(num protowire.Number, typ protowire.Type, v []byte, _ uint64) error {
						if typ == protowire.BytesType && num == 1 {
							name = string(v)
						} else if typ == protowire.BytesType && num == 2 {
							value = string(v)
						}
						return nil
					}); err != nil {
						return err
					}
					d.meta = append(d.meta, logstorage.Field{Name: name, Value: value})
				}
				return nil
			})
			if err != nil {
				return err
			}
			d.entry(ts, line)
		}
		return nil
	})
}

// maxUnixSeconds is the last second whose nanoseconds fit an int64 (2262).
const maxUnixSeconds = int64(9_223_372_036)

// eachField calls fn with every field of the protobuf message b: its bytes
// for a length-delimited field, its value for a varint (others skipped).
func eachField(b []byte, fn func(num protowire.Number, typ protowire.Type, v []byte, n uint64) error) error {
	for len(b) > 0 {
		num, typ, l := protowire.ConsumeTag(b)
		if l < 0 {
			return fmt.Errorf("protobuf: %v", protowire.ParseError(l))
		}
		b = b[l:]
		var v []byte
		var n uint64
		switch typ {
		case protowire.BytesType:
			v, l = protowire.ConsumeBytes(b)
		case protowire.VarintType:
			n, l = protowire.ConsumeVarint(b)
		default:
			l = protowire.ConsumeFieldValue(num, typ, b)
		}
		if l < 0 {
			return fmt.Errorf("protobuf: %v", protowire.ParseError(l))
		}
		b = b[l:]
		if err := fn(num, typ, v, n); err != nil {
			return err
		}
	}
	return nil
}
