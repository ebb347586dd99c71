package loadgen

import (
	"context"
	cryptorand "crypto/rand"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protowire"
)

// Run sends load as cfg says until cfg.Duration has passed, cfg.Spans were
// issued, or ctx is cancelled, then waits for the requests in flight and
// reports what was acknowledged. Failed requests are counted in the Result,
// not returned as an error; the error is for a load that could not start.
func Run(ctx context.Context, cfg Config) (Result, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return Result{}, fmt.Errorf("loadgen config: %w", err)
	}
	seed := cfg.Seed
	if seed == 0 {
		var b [8]byte
		_, _ = cryptorand.Read(b[:])
		seed = binary.LittleEndian.Uint64(b[:])
	}
	pool, err := buildPool(cfg, seed)
	if err != nil {
		return Result{}, err
	}

	creds := insecure.NewCredentials()
	if cfg.TLS {
		tc := cfg.TLSConfig
		if tc == nil {
			tc = &tls.Config{MinVersion: tls.VersionTLS12}
		}
		creds = credentials.NewTLS(tc)
	}
	conn, err := grpc.NewClient(cfg.Endpoint,
		grpc.WithTransportCredentials(creds),
		grpc.WithDefaultCallOptions(grpc.ForceCodecV2(rawCodec{})))
	if err != nil {
		return Result{}, fmt.Errorf("connecting to %s: %w", cfg.Endpoint, err)
	}
	defer conn.Close()

	r := &runner{
		cfg:    cfg,
		conn:   conn,
		ids:    newIDSource(seed),
		free:   make(chan *batch, len(pool)),
		method: otlpExportMethod,
		stats:  newStats(),
	}
	if cfg.Protocol == ProtocolSkyWalking {
		r.method = skyWalkingCollectMethod
	}
	var bytes, spans int
	for _, b := range pool {
		r.free <- b
		bytes += len(b.buf)
		spans += b.spans
	}

	runCtx, cancel := context.WithCancel(ctx)
	if cfg.Duration > 0 {
		runCtx, cancel = context.WithTimeout(ctx, cfg.Duration)
	}
	defer cancel()
	// Requests in flight finish even when ctx is cancelled, so what was sent
	// is counted; each attempt is bounded by RequestTimeout instead.
	r.rpcCtx = context.WithoutCancel(ctx)
	switch {
	case cfg.Token == "":
	case cfg.Protocol == ProtocolSkyWalking:
		r.rpcCtx = metadata.AppendToOutgoingContext(r.rpcCtx, "Authentication", cfg.Token)
	default:
		r.rpcCtx = metadata.AppendToOutgoingContext(r.rpcCtx, "Authorization", "Bearer "+cfg.Token)
	}

	start := time.Now()
	if cfg.Rate > 0 {
		r.pacer = &pacer{start: start, nsPerSpan: float64(time.Second) / cfg.Rate}
	}
	var workers sync.WaitGroup
	for range cfg.Concurrency {
		workers.Go(func() { r.work(runCtx, cancel) })
	}
	progressDone := make(chan struct{})
	var progress sync.WaitGroup
	if cfg.Progress != nil {
		progress.Go(func() { r.report(start, progressDone) })
	}
	workers.Wait()
	close(progressDone)
	progress.Wait()

	res := r.stats.result(time.Since(start))
	res.Protocol, res.Endpoint = cfg.Protocol, cfg.Endpoint
	res.EncodedBytesPerSpan = float64(bytes) / float64(spans)
	if r.fatal != nil {
		return res, r.fatal
	}
	return res, nil
}

// buildPool encodes cfg.PoolSize distinct requests, on all CPUs.
func buildPool(cfg Config, seed uint64) ([]*batch, error) {
	pool := make([]*batch, cfg.PoolSize)
	errs := make([]error, cfg.PoolSize)
	base := time.Now()
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(runtime.GOMAXPROCS(0), cfg.PoolSize) {
		wg.Go(func() {
			for i := int(next.Add(1) - 1); i < cfg.PoolSize; i = int(next.Add(1) - 1) {
				p := newPlanner(cfg.Services, seed+uint64(i)*0x9e3779b97f4a7c15)
				if cfg.Protocol == ProtocolSkyWalking {
					pool[i], errs[i] = buildSkyWalkingBatch(p, cfg.Batch, base)
				} else {
					pool[i], errs[i] = buildOTLPBatch(p, cfg.Batch, base)
				}
				if errs[i] == nil {
					pool[i].released = make(chan struct{}, 1)
				}
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("building %s requests: %w", cfg.Protocol, err)
	}
	return pool, nil
}

type runner struct {
	cfg    Config
	conn   *grpc.ClientConn
	ids    *idSource
	free   chan *batch
	method string
	rpcCtx context.Context
	pacer  *pacer // nil when sending flat out
	stats  *stats

	issued   atomic.Int64 // spans taken for sending, for the cfg.Spans limit
	fatalMu  sync.Mutex
	fatal    error
	inflight atomic.Int64
}

// work sends batches until the run is over.
func (r *runner) work(runCtx context.Context, stop context.CancelFunc) {
	for runCtx.Err() == nil {
		var b *batch
		select {
		case b = <-r.free:
		case <-runCtx.Done():
			return
		}
		if !r.take(b.spans) || r.pacer.wait(runCtx, b.spans) != nil {
			r.free <- b
			return
		}
		if err := r.send(runCtx, b); err != nil {
			r.fatalMu.Lock()
			r.fatal = errors.Join(r.fatal, err)
			r.fatalMu.Unlock()
			stop()
		}
		r.free <- b
	}
}

// take reserves n spans against the cfg.Spans limit.
func (r *runner) take(n int) bool {
	if r.cfg.Spans == 0 {
		return true
	}
	return r.issued.Add(int64(n))-int64(n) < r.cfg.Spans
}

const (
	firstBackoff = 50 * time.Millisecond
	maxBackoff   = 2 * time.Second
)

// send delivers one batch, retrying retryable failures with exponential
// backoff (or the server's RetryInfo delay) until MaxRetryTime or the end of
// the run. Only an acknowledged request counts as sent; one still waiting to
// be retried when the run ends counts as unsent.
func (r *runner) send(runCtx context.Context, b *batch) error {
	first := time.Now()
	backoff := firstBackoff
	for {
		// Fresh IDs on every attempt: a failed attempt may have been stored.
		if err := b.patch(r.ids, time.Now()); err != nil {
			return err
		}
		ctx, cancel := context.WithTimeout(r.rpcCtx, r.cfg.RequestTimeout)
		var resp []byte
		r.inflight.Add(1)
		sent := time.Now()
		err := r.conn.Invoke(ctx, r.method, b, &resp)
		took := time.Since(sent)
		r.inflight.Add(-1)
		cancel()
		b.awaitRelease()
		if err == nil {
			r.stats.acknowledged(b.spans, rejectedSpans(r.cfg.Protocol, resp), took)
			return nil
		}
		code := status.Code(err)
		if !retryable(err) {
			r.stats.failed(code, b.spans, err)
			return nil
		}
		r.stats.retried(code, err)
		if time.Since(first) > r.cfg.MaxRetryTime {
			r.stats.failed(code, b.spans, err)
			return nil
		}
		delay := retryDelay(err, backoff)
		backoff = min(2*backoff, maxBackoff)
		if sleep(runCtx, delay) != nil {
			// The run ended while the server was pushing back: that is
			// backpressure doing its job, not a failure.
			r.stats.unsent.Add(int64(b.spans))
			return nil
		}
	}
}

// retryable reports whether a failed attempt may succeed later. gRPC servers
// refuse an oversized request with ResourceExhausted too, but that one will
// never pass, so it is not retried.
func retryable(err error) bool {
	st := status.Convert(err)
	switch st.Code() {
	case codes.Unavailable:
		return true
	case codes.ResourceExhausted:
		return !strings.Contains(st.Message(), "larger than max")
	}
	return false
}

// retryDelay is the server's RetryInfo delay if it sent one, else backoff
// with ±50% jitter so workers do not retry in lockstep.
func retryDelay(err error, backoff time.Duration) time.Duration {
	if st, ok := status.FromError(err); ok {
		for _, d := range st.Details() {
			if ri, ok := d.(*errdetails.RetryInfo); ok && ri.GetRetryDelay() != nil {
				return ri.GetRetryDelay().AsDuration()
			}
		}
	}
	return backoff/2 + rand.N(backoff)
}

// rejectedSpans reads partial_success.rejected_spans from an OTLP
// ExportTraceServiceResponse; SkyWalking's Commands has no such field.
func rejectedSpans(p Protocol, resp []byte) int64 {
	if p != ProtocolOTLP {
		return 0
	}
	var rejected int64
	_ = walk(resp, 0, func(f field) error {
		if f.num != 1 || f.typ != protowire.BytesType { // partial_success
			return nil
		}
		return walk(f.val, f.off, func(f field) error {
			if f.num == 1 && f.typ == protowire.VarintType { // rejected_spans
				v, _ := protowire.ConsumeVarint(f.val)
				rejected = int64(v)
			}
			return nil
		})
	})
	return rejected
}

func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// pacer spreads requests evenly at a rate in spans per second: the request
// that holds spans k..k+n goes out at start + k/rate. A client that falls
// behind catches up rather than lowering the average.
type pacer struct {
	start     time.Time
	nsPerSpan float64
	reserved  atomic.Int64
}

func (p *pacer) wait(ctx context.Context, spans int) error {
	if p == nil {
		return ctx.Err()
	}
	k := p.reserved.Add(int64(spans)) - int64(spans)
	return sleep(ctx, time.Until(p.start.Add(time.Duration(float64(k)*p.nsPerSpan))))
}
