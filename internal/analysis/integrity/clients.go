package integrity

import (
	"cmp"
	"context"
	"net"
	"net/http"
	"slices"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/stats"
	"google.golang.org/grpc/status"
)

// ClientRejections is one client's refused requests at one receiver.
type ClientRejections struct {
	Client   string    `json:"client"` // the peer's IP address
	Reason   string    `json:"reason"`
	Requests int64     `json:"requests"`
	LastSeen time.Time `json:"lastSeen"`
}

// clients counts refused requests by receiver, reason and client address,
// watched from outside the receivers: a gRPC stats handler and an HTTP
// middleware see every answer and the peer it went to.
type clients struct {
	mu   sync.Mutex
	seen map[clientKey]*ClientRejections
}

type clientKey struct{ receiver, reason, client string }

// maxClients bounds the clients remembered; past it new ones are not.
const maxClients = 10_000

func (c *clients) record(receiver, reason, addr string) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		host = addr
	}
	k := clientKey{receiver, reason, host}
	c.mu.Lock()
	defer c.mu.Unlock()
	r := c.seen[k]
	if r == nil {
		if len(c.seen) >= maxClients {
			return
		}
		r = &ClientRejections{Client: host, Reason: reason}
		c.seen[k] = r
	}
	r.Requests++
	r.LastSeen = time.Now().UTC()
}

// of lists the clients refused at receiver for reason within the window
// (older ones expire), most first, or,
// when the transport's view of the reason differs from the receiver's
// (a malformed body answered 400 like an invalid span), every client
// refused there.
func (c *clients) of(receiver, reason string) []ClientRejections {
	c.mu.Lock()
	var same, all []ClientRejections
	for k, r := range c.seen {
		if k.receiver != receiver {
			continue
		}
		all = append(all, *r)
		if k.reason == reason {
			same = append(same, *r)
		}
	}
	c.mu.Unlock()
	if len(same) > 0 {
		all = same
	}
	slices.SortFunc(all, func(a, b ClientRejections) int {
		return cmp.Or(cmp.Compare(b.Requests, a.Requests), cmp.Compare(a.Client, b.Client))
	})
	return all[:min(len(all), maxExamples)]
}

// expire forgets clients not refused since oldest.
func (c *clients) expire(oldest time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, r := range c.seen {
		if r.LastSeen.Before(oldest) {
			delete(c.seen, k)
		}
	}
}

// grpcReason names a refusal as the receivers' counters do.
func grpcReason(code codes.Code) string {
	switch code {
	case codes.InvalidArgument:
		return "invalid"
	case codes.Unauthenticated, codes.PermissionDenied:
		return "unauthenticated"
	case codes.ResourceExhausted:
		return "overloaded"
	case codes.Unavailable, codes.Internal:
		return "storage"
	}
	return ""
}

// GRPCStatsHandler attributes the receiver's refused RPCs to the client
// that sent them; install it with grpc.StatsHandler on the receiver's
// server.
func (a *Analyser) GRPCStatsHandler(receiver string) stats.Handler {
	return rejectionStats{c: &a.clients, receiver: receiver}
}

type rejectionStats struct {
	c        *clients
	receiver string
}

func (h rejectionStats) TagRPC(ctx context.Context, _ *stats.RPCTagInfo) context.Context { return ctx }
func (h rejectionStats) TagConn(ctx context.Context, _ *stats.ConnTagInfo) context.Context {
	return ctx
}
func (h rejectionStats) HandleConn(context.Context, stats.ConnStats) {}

func (h rejectionStats) HandleRPC(ctx context.Context, s stats.RPCStats) {
	end, ok := s.(*stats.End)
	if !ok || end.Error == nil {
		return
	}
	reason := grpcReason(status.Code(end.Error))
	if reason == "" {
		return
	}
	if p, ok := peer.FromContext(ctx); ok && p.Addr != nil {
		h.c.record(h.receiver, reason, p.Addr.String())
	}
}

// HTTPMiddleware attributes the receiver's refused requests (4xx but 404
// and 405, and 5xx) to the client address that sent them.
func (a *Analyser) HTTPMiddleware(receiver string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		next.ServeHTTP(sw, r)
		if reason := httpReason(sw.status); reason != "" {
			a.clients.record(receiver, reason, r.RemoteAddr)
		}
	})
}

func httpReason(code int) string {
	switch code {
	case http.StatusBadRequest:
		return "invalid"
	case http.StatusUnauthorized, http.StatusForbidden:
		return "unauthenticated"
	case http.StatusRequestEntityTooLarge:
		return "too_large"
	case http.StatusUnsupportedMediaType:
		return "malformed"
	case http.StatusTooManyRequests, http.StatusServiceUnavailable:
		return "overloaded"
	case http.StatusInternalServerError:
		return "storage"
	}
	return ""
}

// statusWriter remembers the status a handler answered.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}

// Unwrap lets http.ResponseController reach the real writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
