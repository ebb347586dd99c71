package integrity

import (
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/skytrail/skytrail/internal/selfmetrics"
)

// rejectedBaseline holds the receivers' refusal counters as they were when
// the analyser started, so a finding counts only what this server refused.
type rejectedBaseline map[[2]string]float64

func newRejectedBaseline() rejectedBaseline {
	b := rejectedBaseline{}
	for k, v := range readRejected() {
		b[k] = v
	}
	return b
}

// readRejected reads skytrail_receiver_spans_rejected_total by receiver
// and reason.
func readRejected() map[[2]string]float64 {
	ch := make(chan prometheus.Metric, 64)
	go func() {
		selfmetrics.SpansRejected.Collect(ch)
		close(ch)
	}()
	out := map[[2]string]float64{}
	for m := range ch {
		var d dto.Metric
		if m.Write(&d) != nil || d.Counter == nil {
			continue
		}
		var k [2]string
		for _, l := range d.Label {
			switch l.GetName() {
			case "receiver":
				k[0] = l.GetValue()
			case "reason":
				k[1] = l.GetValue()
			}
		}
		out[k] = d.Counter.GetValue()
	}
	return out
}

// rejectedFindings reports what each receiver refused, by reason, with the
// clients refused there: the receivers count spans by receiver and reason,
// the transport watchers (clients.go) count requests by client.
func (j *judge) rejectedFindings(nowNs int64) {
	for k, v := range readRejected() {
		fk := key{kind: KindRejectedData, peer: k[0], variant: k[1]}
		f := j.findings[fk]
		if n := v - j.rejected[k]; n >= 1 {
			f = j.record(fk, "", nowNs, uint64(n))
			j.rejected[k] = v
		}
		if f == nil {
			continue
		}
		f.Detail = "reason: " + k[1]
		f.Clients = j.clients.of(k[0], k[1])
		if len(f.Clients) > 0 {
			f.Detail += "; from " + f.Clients[0].Client
			if len(f.Clients) > 1 {
				f.Detail += " and others"
			}
		}
	}
}

// rejectedRemedy says what to do about spans refused for reason.
func rejectedRemedy(reason string) string {
	switch reason {
	case "unauthenticated":
		return "A SkyWalking agent sends no token or the wrong one: set SW_AGENT_AUTHENTICATION (go2sky: reporter.WithAuthentication) to the server's --sw-token."
	case "invalid":
		return "Spans break a limit (all-zero IDs, a start older than the retention or more than a day ahead, too many or too large attributes): the client got the reason in its response and its SDK logs it. Check the client's clock."
	case "malformed":
		return "Requests were not valid OTLP or SkyWalking protobuf/JSON: check the exporter's protocol matches the port (gRPC 4317/11800, HTTP 4318/12800) and that no proxy rewrites bodies."
	case "too_large":
		return "Requests were over --max-request-bytes: lower the exporter's batch size (OTEL_BSP_MAX_EXPORT_BATCH_SIZE) or raise the limit."
	case "overloaded":
		return "The server asked clients to retry later: SDKs retry by themselves; if it persists, give the server more CPU or disk bandwidth, or raise --max-inflight-bytes."
	case "storage":
		return "The server could not store spans: check its log and free disk space."
	}
	return "See the server's log and docs/troubleshooting.md for this reason."
}
