package wire

import (
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"sync"

	"github.com/skytrail/skytrail/internal/pipeline"
)

// chargeChunk is how much of the in-flight budget a body is charged at a
// time as it arrives: a slow client holds only what it has sent, not the
// size it declared (four connections sending a byte every 2 s once held the
// whole budget for 40 s), and a fast one costs a budget operation every
// 64 KiB, not every read.
const chargeChunk = 64 << 10

// ReadBody reads r's body into buf, gunzipping it when Content-Encoding
// says so, and charges req for it as it arrives. More than limit bytes,
// before or after decompression, is refused as TooLarge; an unknown
// encoding, a body that is not gzip or does not arrive whole is Malformed,
// or Abandoned when the server's read timeout passed. Every error is a
// *pipeline.Error already counted and published through req.
func ReadBody(w http.ResponseWriter, r *http.Request, req *pipeline.Request, limit int64, buf *bytes.Buffer) error {
	var src io.Reader = http.MaxBytesReader(w, r.Body, limit)
	switch enc := r.Header.Get("Content-Encoding"); enc {
	case "", "identity":
	case "gzip":
		zr, err := gzip.NewReader(src)
		if err != nil {
			return refuseRead(req, limit, fmt.Errorf("Content-Encoding is gzip but the body is not: %w", err))
		}
		defer zr.Close()
		src = zr
	default:
		return req.Refuse(pipeline.Malformed, fmt.Errorf("unsupported Content-Encoding %q: send gzip or none", enc))
	}
	// What piles up is the body as decompressed: charge that.
	src = &chargingReader{r: io.LimitReader(src, limit+1), req: req}
	if _, err := buf.ReadFrom(src); err != nil {
		return refuseRead(req, limit, err)
	}
	if int64(buf.Len()) > limit {
		return refuseRead(req, limit, &http.MaxBytesError{Limit: limit})
	}
	return nil
}

// refuseRead refuses a request whose body could not be read whole.
func refuseRead(req *pipeline.Request, limit int64, err error) error {
	var refused *pipeline.Error
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &refused):
		return refused // the budget said no; counted already
	case errors.As(err, &tooLarge):
		return req.Refuse(pipeline.TooLarge, fmt.Errorf("request body over the limit of %d bytes (after decompression); send smaller batches", limit))
	case errors.Is(err, os.ErrDeadlineExceeded):
		return req.Refuse(pipeline.Abandoned, fmt.Errorf("the request body did not arrive within the server's read timeout: %w", err))
	}
	return req.Refuse(pipeline.Malformed, fmt.Errorf("read request body: %w", err))
}

// chargingReader charges req for what is read through it, chargeChunk at a
// time, before reading it.
type chargingReader struct {
	r      io.Reader
	req    *pipeline.Request
	credit int
}

func (c *chargingReader) Read(p []byte) (int, error) {
	if c.credit == 0 {
		if err := c.req.Grow(chargeChunk); err != nil {
			return 0, err
		}
		c.credit = chargeChunk
	}
	n, err := c.r.Read(p[:min(len(p), c.credit)])
	c.credit -= n
	return n, err
}

// bodyPool recycles request-body buffers: requests arrive continuously and
// are all roughly the same size.
var bodyPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// maxPooledBody is the largest buffer kept for reuse: a rare huge request
// should not pin its memory.
const maxPooledBody = 1 << 20

// Buffer is an empty body buffer; PutBuffer it when done with what was read
// into it (pdata and protojson copy what they decode).
func Buffer() *bytes.Buffer {
	buf := bodyPool.Get().(*bytes.Buffer)
	buf.Reset()
	return buf
}

// PutBuffer gives a buffer from Buffer back.
func PutBuffer(buf *bytes.Buffer) {
	if buf.Cap() <= maxPooledBody {
		bodyPool.Put(buf)
	}
}
