package integrity

import (
	"cmp"
	"net"
	"slices"
	"sync"
	"time"

	"github.com/skytrail/skytrail/internal/pipeline"
)

// ClientRejections is one client's refused requests at one receiver.
type ClientRejections struct {
	Client   string    `json:"client"` // the peer's IP address
	Reason   string    `json:"reason"`
	Requests int64     `json:"requests"`
	LastSeen time.Time `json:"lastSeen"`
}

// rejections gathers what the front door refused, as it tells it: items
// refused by receiver and reason since the last judging pass, and requests
// refused by client.
type rejections struct {
	mu      sync.Mutex
	pending map[rejectionKey]uint64
	clients map[clientKey]*ClientRejections
}

type rejectionKey struct{ receiver, reason string }

type clientKey struct{ receiver, reason, client string }

// maxClients bounds the clients remembered; past it new ones are not.
const maxClients = 10_000

// Rejected takes one refusal from the front door; subscribe it with
// pipeline.Pipeline.Subscribe.
func (a *Analyser) Rejected(r pipeline.Rejection) {
	a.rejections.add(r)
}

func (c *rejections) add(r pipeline.Rejection) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.pending[rejectionKey{r.Receiver, string(r.Reason)}] += uint64(max(r.Items, 1))
	if r.Client == "" {
		return
	}
	host, _, err := net.SplitHostPort(r.Client)
	if err != nil {
		host = r.Client
	}
	k := clientKey{r.Receiver, string(r.Reason), host}
	cr := c.clients[k]
	if cr == nil {
		if len(c.clients) >= maxClients {
			return
		}
		cr = &ClientRejections{Client: host, Reason: string(r.Reason)}
		c.clients[k] = cr
	}
	cr.Requests++
	cr.LastSeen = r.At.UTC()
}

// drain returns the items refused since the last call, by receiver and reason.
func (c *rejections) drain() map[rejectionKey]uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := c.pending
	c.pending = map[rejectionKey]uint64{}
	return out
}

// of lists the clients refused at receiver for reason, most first.
func (c *rejections) of(receiver, reason string) []ClientRejections {
	c.mu.Lock()
	var out []ClientRejections
	for k, r := range c.clients {
		if k.receiver == receiver && k.reason == reason {
			out = append(out, *r)
		}
	}
	c.mu.Unlock()
	slices.SortFunc(out, func(a, b ClientRejections) int {
		return cmp.Or(cmp.Compare(b.Requests, a.Requests), cmp.Compare(a.Client, b.Client))
	})
	return out[:min(len(out), maxExamples)]
}

// expire forgets clients not refused since oldest.
func (c *rejections) expire(oldest time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, r := range c.clients {
		if r.LastSeen.Before(oldest) {
			delete(c.clients, k)
		}
	}
}

// rejectedFindings reports what each receiver refused, by reason, with the
// clients refused there.
func (j *judge) rejectedFindings(nowNs int64) {
	for k, n := range j.rejections.drain() {
		j.record(key{kind: KindRejectedData, peer: k.receiver, variant: k.reason}, "", nowNs, n)
	}
	for fk, f := range j.findings {
		if fk.kind != KindRejectedData {
			continue
		}
		f.Detail = "reason: " + fk.variant
		f.Clients = j.rejections.of(fk.peer, fk.variant)
		if len(f.Clients) > 0 {
			f.Detail += "; from " + f.Clients[0].Client
			if len(f.Clients) > 1 {
				f.Detail += " and others"
			}
		}
	}
}

// rejectedRemedy says what to do about data refused for reason.
func rejectedRemedy(reason string) string {
	switch pipeline.Reason(reason) {
	case pipeline.Unauthenticated:
		return "A SkyWalking agent sends no token or the wrong one: set SW_AGENT_AUTHENTICATION (go2sky: reporter.WithAuthentication) to the server's --sw-token."
	case pipeline.Forbidden:
		return "Requests named a tenant (X-Scope-OrgID) that is not configured, or that their ingest token may not write to: check the exporter's headers against --tenants and the token's tenant= in the tokens file."
	case pipeline.Invalid:
		return "Spans break a limit (all-zero IDs, a start older than the retention or more than a day ahead, too many or too large attributes): the client got the reason in its response and its SDK logs it. Check the client's clock."
	case pipeline.Malformed:
		return "Requests were not valid OTLP or SkyWalking protobuf/JSON: check the exporter's protocol matches the port (gRPC 4317/11800, HTTP 4318/12800) and that no proxy rewrites bodies."
	case pipeline.TooLarge:
		return "Requests were over --max-request-bytes: lower the exporter's batch size (OTEL_BSP_MAX_EXPORT_BATCH_SIZE) or raise the limit."
	case pipeline.Overloaded:
		return "The server asked clients to retry later: SDKs retry by themselves; if it persists, give the server more CPU or disk bandwidth, or raise --max-inflight-bytes."
	case pipeline.Unavailable:
		return "The server could not store spans: check its log and free disk space."
	}
	return "See the server's log and docs/troubleshooting.md for this reason."
}
