package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/skytrail/skytrail/internal/wal"
)

// Journal is the write-ahead log (internal/wal): the front door writes
// every batch to it before any consumer sees it, so nothing a consumer
// took is missing from it if the process dies, and acknowledges the
// request only once the record is fsynced (Appended.Durable). Append's
// error refuses the request as retryable and nothing reaches a consumer.
// At start the server replays what the journal holds through
// Pipeline.Replay, before any listener opens.
type Journal interface {
	Append(ctx context.Context, record []byte) (*wal.Appended, error)
}

// TracesReplayer is a traces consumer that may already hold part of a
// replayed batch, having made it durable on its own after the journal's
// last checkpoint (the span store flushes every second): ReplayTraces keeps
// only what it does not hold. Consumers without it get ConsumeTraces.
type TracesReplayer interface {
	ReplayTraces(ctx context.Context, td Traces) error
}

// A record is a version byte, a kind byte and the batch: OTLP protobuf for
// spans, logs and metrics (pdata's own marshalers, the wire format SkyTrail
// receives), JSON for heartbeats.
const recordVersion = 1

const (
	kindTraces byte = iota + 1
	kindLogs
	kindMetrics
	kindHeartbeats
)

// EncodeRecord is b, validated and identified, as a journal record: the
// request's own bytes (Raw) when Ingest found them still b, else b
// marshalled.
func EncodeRecord(b Batch) ([]byte, error) {
	var (
		kind          byte
		payload, room []byte
		err           error
	)
	switch b := b.(type) {
	case *Traces:
		kind, room = kindTraces, b.RawRoom
		if payload = b.Raw; !b.rawOK {
			payload, err = (&ptrace.ProtoMarshaler{}).MarshalTraces(b.Traces)
		}
	case *Logs:
		kind, room = kindLogs, b.RawRoom
		if payload = b.Raw; !b.rawOK {
			payload, err = (&plog.ProtoMarshaler{}).MarshalLogs(b.Logs)
		}
	case *Metrics:
		kind, room = kindMetrics, b.RawRoom
		if payload = b.Raw; !b.rawOK {
			payload, err = (&pmetric.ProtoMarshaler{}).MarshalMetrics(b.Metrics)
		}
	case *Heartbeats:
		kind, room = kindHeartbeats, nil
		payload, err = json.Marshal([]Heartbeat(*b))
	default:
		return nil, fmt.Errorf("encode a journal record: unknown batch type %T", b)
	}
	if err != nil {
		return nil, fmt.Errorf("encode a journal record: %w", err)
	}
	if len(room) == RecordHeaderSize+len(payload) && len(payload) > 0 && &room[RecordHeaderSize] == &payload[0] {
		// The request itself, with the header written in the room the
		// receiver left in front of it.
		room[0], room[1] = recordVersion, kind
		return room, nil
	}
	rec := make([]byte, 0, RecordHeaderSize+len(payload))
	return append(append(rec, recordVersion, kind), payload...), nil
}

// errRecord is what DecodeRecord's errors wrap.
var errRecord = errors.New("bad journal record")

// DecodeRecord is the batch EncodeRecord encoded, its resources worked out
// again (the same as before: identification is deterministic and the
// record holds its result).
func DecodeRecord(rec []byte) (Batch, error) {
	if len(rec) < 2 {
		return nil, fmt.Errorf("%w: %d bytes, shorter than its header", errRecord, len(rec))
	}
	if rec[0] != recordVersion {
		return nil, fmt.Errorf("%w: version %d, this server reads %d", errRecord, rec[0], recordVersion)
	}
	payload := rec[2:]
	switch rec[1] {
	case kindTraces:
		td, err := (&ptrace.ProtoUnmarshaler{}).UnmarshalTraces(payload)
		if err != nil {
			return nil, fmt.Errorf("%w: spans: %v", errRecord, err)
		}
		t := TracesOf(td)
		return &t, nil
	case kindLogs:
		ld, err := (&plog.ProtoUnmarshaler{}).UnmarshalLogs(payload)
		if err != nil {
			return nil, fmt.Errorf("%w: logs: %v", errRecord, err)
		}
		l := LogsOf(ld)
		return &l, nil
	case kindMetrics:
		md, err := (&pmetric.ProtoUnmarshaler{}).UnmarshalMetrics(payload)
		if err != nil {
			return nil, fmt.Errorf("%w: metrics: %v", errRecord, err)
		}
		m := MetricsOf(md)
		return &m, nil
	case kindHeartbeats:
		var hbs Heartbeats
		if err := json.Unmarshal(payload, &hbs); err != nil {
			return nil, fmt.Errorf("%w: heartbeats: %v", errRecord, err)
		}
		return &hbs, nil
	}
	return nil, fmt.Errorf("%w: unknown kind %d", errRecord, rec[1])
}

// Replay hands a batch read back from the journal to the consumers of its
// kind, as Ingest did before the process stopped: without admission,
// validation (it was valid when written) or counting, and to a
// TracesReplayer through ReplayTraces. It returns the items the record
// held. A record that does not decode is an error the caller logs and
// skips; a consumer's error is returned as it is.
func (p *Pipeline) Replay(ctx context.Context, rec []byte) (Signal, int, error) {
	b, err := DecodeRecord(rec)
	if err != nil {
		return "", 0, err
	}
	return b.signal(), b.items(), b.replay(ctx, p.consumers)
}

func (t *Traces) replay(ctx context.Context, c Consumers) error {
	for _, tc := range c.Traces {
		var err error
		if r, ok := tc.(TracesReplayer); ok {
			err = r.ReplayTraces(ctx, *t)
		} else {
			err = tc.ConsumeTraces(ctx, *t)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func (l *Logs) replay(ctx context.Context, c Consumers) error       { return l.consume(ctx, c) }
func (m *Metrics) replay(ctx context.Context, c Consumers) error    { return m.consume(ctx, c) }
func (h *Heartbeats) replay(ctx context.Context, c Consumers) error { return h.consume(ctx, c) }
