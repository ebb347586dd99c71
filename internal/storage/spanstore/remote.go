package spanstore

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/VictoriaMetrics/VictoriaLogs/lib/logstorage"
	"github.com/klauspost/compress/zstd"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/valyala/fastjson"

	"github.com/skytrail/skytrail/internal/storage/diskspace"
)

// RemoteConfig sets up a span store kept in a VictoriaLogs server or
// cluster instead of in the process. The rows, tenants and queries are the
// embedded store's, row for row: only where the engine runs differs, so
// every reader (trace by ID, search, services, agent logs) works the same
// over both, and the contract tests (spanstoretest) run against both.
type RemoteConfig struct {
	// InsertURL is where rows are written: a single-node victoria-logs or
	// a vlinsert, e.g. http://vl:9428. Rows go to its native multitenant
	// endpoint (/insert/multitenant/native), each with its tenant and log
	// stream as the embedded store gives them.
	InsertURL string
	// SelectURL answers queries (/select/logsql/*): the same server, or a
	// vlselect. Empty means InsertURL.
	SelectURL string
	// Dir keeps what the store must remember across restarts on this node:
	// the per-service, per-day column budget (columns.go).
	Dir string
	// Retention must not exceed the server's -retentionPeriod: rows older
	// than that are dropped by VictoriaLogs after they were acknowledged.
	Retention time.Duration
	// Timeout bounds one request to VictoriaLogs (default 10s): a slow
	// server fails the batch retryably rather than holding the client.
	Timeout time.Duration
	// Client makes the requests (default: a client of its own).
	Client *http.Client
	// Registerer takes the store's metrics; nil keeps them unregistered.
	Registerer prometheus.Registerer
	Logger     *slog.Logger
}

// OpenRemote opens a span store over VictoriaLogs' HTTP API. It checks that
// the server answers, so a wrong URL fails at start, not at the first span.
func OpenRemote(cfg RemoteConfig) (*Store, error) {
	if cfg.InsertURL == "" {
		return nil, fmt.Errorf("open remote span store: no VictoriaLogs URL given")
	}
	if cfg.SelectURL == "" {
		cfg.SelectURL = cfg.InsertURL
	}
	if cfg.Dir == "" {
		return nil, fmt.Errorf("open remote span store: no directory for the column budget given")
	}
	if cfg.Retention <= 0 {
		cfg.Retention = 7 * 24 * time.Hour
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	r, err := newRemote(cfg)
	if err != nil {
		return nil, fmt.Errorf("open remote span store: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), cfg.Timeout)
	defer cancel()
	for _, base := range slices.Compact([]string{r.insertBase, r.selectBase}) {
		if err := r.ping(ctx, base); err != nil {
			return nil, fmt.Errorf("open remote span store: %w", err)
		}
	}
	// A node whose directory is new is taken to write to a new store (one
	// joining a cluster that older builds wrote to should be given their
	// directory, or the file, see logIndexSinceFile).
	_, err = os.Stat(filepath.Join(cfg.Dir, columnsDir))
	logIndexSince, err := openLogIndexSince(cfg.Dir, errors.Is(err, fs.ErrNotExist), time.Now())
	if err != nil {
		return nil, fmt.Errorf("open remote span store: %w", err)
	}
	columns, err := openColumnBudget(cfg.Dir, max(cfg.Retention, 24*time.Hour), time.Now())
	if err != nil {
		return nil, fmt.Errorf("open remote span store: %w", err)
	}
	s := &Store{
		remote:        r,
		logIndexSince: logIndexSince,
		retention:     max(cfg.Retention, 24*time.Hour),
		columns:       columns,
		// Nothing of the spans is on this node's disk; the guard never refuses.
		disk:         diskspace.NewGuard("spans", cfg.Dir, 0, cfg.Logger, nil),
		writeSeconds: newWriteSeconds(),
	}
	if cfg.Registerer != nil {
		cfg.Registerer.MustRegister(s.writeSeconds, r.failures)
	}
	s.index.init()
	return s, nil
}

// remote runs the store's writes and queries on a VictoriaLogs server.
type remote struct {
	insertBase, selectBase string
	client                 *http.Client
	timeout                time.Duration
	zstd                   *zstd.Encoder
	failures               *prometheus.CounterVec
}

func newRemote(cfg RemoteConfig) (*remote, error) {
	insertBase, err := baseURL(cfg.InsertURL)
	if err != nil {
		return nil, fmt.Errorf("insert URL: %w", err)
	}
	selectBase, err := baseURL(cfg.SelectURL)
	if err != nil {
		return nil, fmt.Errorf("select URL: %w", err)
	}
	client := cfg.Client
	if client == nil {
		client = &http.Client{Transport: &http.Transport{
			Proxy:               http.ProxyFromEnvironment,
			MaxIdleConnsPerHost: 64,
			IdleConnTimeout:     90 * time.Second,
		}}
	}
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderConcurrency(1))
	if err != nil {
		return nil, err
	}
	return &remote{
		insertBase: insertBase, selectBase: selectBase, client: client, timeout: cfg.Timeout, zstd: enc,
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "skytrail_spanstore_remote_failures_total",
			Help: "Requests to the remote span store (VictoriaLogs) that failed, by operation (insert, query).",
		}, []string{"op"}),
	}, nil
}

// baseURL checks a server URL and drops a trailing slash.
func baseURL(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", err
	}
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return "", fmt.Errorf("%q: want http(s)://host:port", raw)
	}
	return strings.TrimRight(u.String(), "/"), nil
}

func (r *remote) ping(ctx context.Context, base string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/health", nil)
	if err != nil {
		return err
	}
	resp, err := r.client.Do(req)
	if err != nil {
		return fmt.Errorf("VictoriaLogs at %s did not answer: %w", base, err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("VictoriaLogs at %s: GET /health answered %s", base, resp.Status)
	}
	return nil
}

// nativeProtocolVersion is the version of VictoriaLogs' native insert
// protocol (netinsert.ProtocolVersion in VictoriaLogs v1.52.1), which the
// server checks.
const nativeProtocolVersion = "v1"

// maxInsertBody is the most uncompressed row data one insert request
// carries, well under the server's -nativeinsert.maxRequestSize (64 MiB).
const maxInsertBody = 16 << 20

// addRows writes the rows of every lr in VictoriaLogs' native format, the
// rows vlagent and vlinsert send, each with its own tenant and stream. It
// returns once the server acknowledged them: an error means the batch must
// be retried (a part of a batch split over requests may be stored twice
// then, never lost).
func (r *remote) addRows(ctx context.Context, rows ...*logstorage.LogRows) error {
	// Buffers are reused from batch to batch: growing a fresh one to a
	// batch's megabyte took a seventh of the node's CPU (profiled).
	bp, _ := insertBuffers.Get().(*[]byte)
	if bp == nil {
		bp = new([]byte)
	}
	defer insertBuffers.Put(bp)
	buf := (*bp)[:0]
	defer func() { *bp = buf[:0] }()
	var err error
	for _, lr := range rows {
		lr.ForEachRow(func(_ uint64, row *logstorage.InsertRow) {
			if err != nil {
				return
			}
			buf = row.Marshal(buf)
			if len(buf) >= maxInsertBody {
				err = r.insert(ctx, buf)
				buf = buf[:0]
			}
		})
	}
	if err == nil && len(buf) > 0 {
		err = r.insert(ctx, buf)
	}
	if err != nil {
		r.failures.WithLabelValues("insert").Inc()
	}
	return err
}

var insertBuffers sync.Pool

func (r *remote) insert(ctx context.Context, rows []byte) error {
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	// Not pooled: the transport may still read a request's body after Do
	// returned. Sized for the usual ratio, so it rarely grows.
	body := r.zstd.EncodeAll(rows, make([]byte, 0, len(rows)/4))
	u := r.insertBase + "/insert/multitenant/native?version=" + nativeProtocolVersion
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Encoding", "zstd")
	resp, err := r.client.Do(req)
	if err != nil {
		return fmt.Errorf("VictoriaLogs at %s did not take the rows: %w", r.insertBase, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("VictoriaLogs at %s refused the rows: %s: %s", r.insertBase, resp.Status, errorBody(resp.Body))
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	return nil
}

// errorBody is the start of a failed answer's text, which names what went
// wrong (in a cluster, the storage node that did not answer).
func errorBody(body io.Reader) string {
	b, _ := io.ReadAll(io.LimitReader(body, 2048))
	return strings.TrimSpace(string(b))
}

// tenantHeaders set the tenant a select request reads.
func tenantHeaders(h http.Header, tenant logstorage.TenantID) {
	h.Set("AccountID", strconv.FormatUint(uint64(tenant.AccountID), 10))
	h.Set("ProjectID", strconv.FormatUint(uint64(tenant.ProjectID), 10))
}

// selectRequest posts a LogsQL request; q is sent as logstorage prints it,
// with its time filter to the nanosecond, so VictoriaLogs' parser reads
// exactly what ours did. Partial answers are refused: a query a storage node
// did not answer fails and names the node.
func (r *remote) selectRequest(ctx context.Context, path string, tenant logstorage.TenantID, form url.Values) (*http.Response, error) {
	form.Set("allow_partial_response", "0")
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.selectBase+path, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	tenantHeaders(req.Header, tenant)
	resp, err := r.client.Do(req)
	if err != nil {
		r.failures.WithLabelValues("query").Inc()
		return nil, fmt.Errorf("%w: VictoriaLogs at %s did not answer: %w", ErrUnavailable, r.selectBase, err)
	}
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		r.failures.WithLabelValues("query").Inc()
		err := fmt.Errorf("VictoriaLogs at %s answered %s: %s", r.selectBase, resp.Status, errorBody(resp.Body))
		if resp.StatusCode >= 500 {
			err = fmt.Errorf("%w: %w", ErrUnavailable, err)
		}
		return nil, err
	}
	return resp, nil
}

// remoteBlockRows is how many result rows make one block handed to a
// reader: the embedded engine's blocks are of the same order.
const remoteBlockRows = 1024

// runQuery runs q and hands its result rows to fn in blocks, as
// logstorage's RunQuery does, the columns of a block sorted by name.
func (r *remote) runQuery(ctx context.Context, tenant logstorage.TenantID, q *logstorage.Query, fn func(db *logstorage.DataBlock)) error {
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	// VictoriaLogs adds the row's stream (service and resource, again) and
	// its ID to every row it returns, and to span rows, which have no
	// message, a constant _msg unless run with -defaultMsgValue='': more
	// bytes than a span's own fields, which no reader uses. (Agent logs
	// keep their message in _msg.)
	query := q.String() + " | delete _stream, _stream_id"
	if tenant != tenantLogs {
		query += ", _msg"
	}
	resp, err := r.selectRequest(ctx, "/select/logsql/query", tenant, url.Values{"query": {query}})
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if err := readResultRows(resp.Body, fn); err != nil {
		r.failures.WithLabelValues("query").Inc()
		return fmt.Errorf("VictoriaLogs at %s: %w", r.selectBase, err)
	}
	return ctx.Err()
}

// readResultRows decodes the JSON lines of a /select/logsql/query answer
// into blocks for fn. A line that is not a JSON object fails the read: an
// answer cut short must not pass for a whole one.
func readResultRows(body io.Reader, fn func(db *logstorage.DataBlock)) error {
	br := bufio.NewReaderSize(body, 64<<10)
	var p fastjson.Parser
	var b blockAssembler
	for {
		line, err := br.ReadBytes('\n')
		if len(bytes.TrimSpace(line)) > 0 {
			v, perr := p.ParseBytes(line)
			if perr != nil {
				return fmt.Errorf("unreadable result row (the answer was cut short?): %w", perr)
			}
			obj, oerr := v.Object()
			if oerr != nil {
				return fmt.Errorf("result row is not an object: %w", oerr)
			}
			b.addRow(obj)
			if b.rows == remoteBlockRows {
				fn(b.block())
			}
		}
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("stopped answering: %w", err)
		}
	}
	if b.rows > 0 {
		fn(b.block())
	}
	return nil
}

// blockAssembler collects JSON result rows into the columns of a block.
type blockAssembler struct {
	rows    int
	index   map[string]int
	columns []logstorage.BlockColumn
}

func (b *blockAssembler) addRow(obj *fastjson.Object) {
	if b.index == nil {
		b.index = map[string]int{}
	}
	obj.Visit(func(k []byte, v *fastjson.Value) {
		i, ok := b.index[string(k)]
		if !ok {
			i = len(b.columns)
			b.index[string(k)] = i
			b.columns = append(b.columns, logstorage.BlockColumn{Name: string(k), Values: make([]string, b.rows, remoteBlockRows)})
		}
		c := &b.columns[i]
		// Every value VictoriaLogs returns is a JSON string.
		s, _ := v.StringBytes()
		if len(c.Values) > b.rows {
			// A key repeated in one row: the last value counts, and the
			// column stays as long as the block.
			c.Values[b.rows] = string(s)
			return
		}
		c.Values = append(c.Values, string(s))
	})
	b.rows++
	for i := range b.columns {
		if c := &b.columns[i]; len(c.Values) < b.rows {
			c.Values = append(c.Values, "")
		}
	}
}

// block returns the rows collected as a block and starts a new one.
func (b *blockAssembler) block() *logstorage.DataBlock {
	cols := b.columns
	slices.SortFunc(cols, func(x, y logstorage.BlockColumn) int { return strings.Compare(x.Name, y.Name) })
	db := &logstorage.DataBlock{}
	db.SetColumns(cols)
	b.rows, b.columns = 0, nil
	clear(b.index)
	return db
}

// streamFieldValues lists the values of a stream field among the rows q
// selects (/select/logsql/stream_field_values).
func (r *remote) streamFieldValues(ctx context.Context, tenant logstorage.TenantID, q *logstorage.Query, field string) ([]string, error) {
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	resp, err := r.selectRequest(ctx, "/select/logsql/stream_field_values", tenant, url.Values{"query": {q.String()}, "field": {field}})
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("VictoriaLogs at %s stopped answering: %w", r.selectBase, err)
	}
	v, err := fastjson.ParseBytes(raw)
	if err != nil {
		return nil, fmt.Errorf("VictoriaLogs at %s: unreadable stream field values: %w", r.selectBase, err)
	}
	var out []string
	for _, item := range v.GetArray("values") {
		out = append(out, string(item.GetStringBytes("value")))
	}
	return out, nil
}

// forceFlush asks the server to make what it was sent searchable now
// (VictoriaLogs' /internal/force_flush, meant for tests).
func (r *remote) forceFlush() {
	ctx, cancel := context.WithTimeout(context.Background(), r.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.insertBase+"/internal/force_flush", nil)
	if err != nil {
		return
	}
	if resp, err := r.client.Do(req); err == nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
}

func (r *remote) close() {
	r.client.CloseIdleConnections()
	_ = r.zstd.Close()
}

// Remote reports whether the store is kept in VictoriaLogs over HTTP.
func (s *Store) Remote() bool { return s.remote != nil }
