package integrity

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/agnivade/levenshtein"
)

// Silence is a finding too: what never arrived, or stopped arriving, is
// the first thing someone asks about ("why does it have no traces?").
const (
	// KindNoSpans: the server holds no span at all.
	KindNoSpans = "no_spans"
	// KindUnknownService: a service asked about (doctor --service, a URL)
	// that never sent a span, with the nearest known name.
	KindUnknownService = "unknown_service"
	// KindSilentService: a service that sent spans and has sent none for
	// SilentAfter.
	KindSilentService = "silent_service"
)

// forgetSilence is how long after its last span a silent service is still
// reported: past it the service is taken to be gone on purpose.
const forgetSilence = 24 * time.Hour

// Silence answers the findings about what never arrived, from known, the
// services that have sent spans (stored, or seen since the server
// started): when service is not empty and not among them, unknown_service
// naming the nearest known name; else no_spans when there are none.
func Silence(known []string, service string, now time.Time) []Finding {
	var out []Finding
	switch {
	case service != "" && !slices.Contains(known, service):
		near := Nearest(service, known)
		f := newFinding(key{kind: KindUnknownService, service: service, variant: near}, now)
		f.Peer = near
		if len(known) == 0 {
			f.Summary += ", nor from any other service"
		}
		f.Count = 1
		out = append(out, *f)
	case len(known) == 0:
		f := newFinding(key{kind: KindNoSpans}, now)
		f.Count = 1
		out = append(out, *f)
	}
	return out
}

// Nearest is the known name closest to name by edit distance (ignoring
// case), if it is close enough to be a typo of it: at most a third of the
// name's letters apart (and at least 2). Ties go to the first in order.
func Nearest(name string, known []string) string {
	best, bestD := "", max(2, len(name)/3)+1
	lower := strings.ToLower(name)
	for _, k := range known {
		d := levenshtein.ComputeDistance(lower, strings.ToLower(k))
		if d < bestD || d == bestD && best != "" && k < best {
			best, bestD = k, d
		}
	}
	return best
}

// silentServices keeps a silent_service finding for each service whose
// last span (unix ns, in last) is older than SilentAfter, and drops it once
// the service sends again.
func (j *judge) silentServices(now time.Time, last map[string]int64) {
	nowNs := now.UnixNano()
	for service, ns := range last {
		k := key{kind: KindSilentService, service: service}
		quiet := time.Duration(nowNs - ns)
		if quiet <= j.cfg.SilentAfter || quiet > forgetSilence {
			delete(j.findings, k)
			continue
		}
		if f := j.setInstance(k, time.Unix(0, ns), nowNs); f != nil {
			at := time.Unix(0, ns).UTC()
			f.Summary = fmt.Sprintf("%s has sent no span since %s UTC (%s ago)", service, at.Format("2006-01-02 15:04:05"), quiet.Round(time.Second))
			f.Detail = "last span received at " + at.Format(time.RFC3339)
		}
	}
}

// describeSilence says what a silence finding means and how to fix it.
func describeSilence(k key) (severity, summary, remedy string) {
	switch k.kind {
	case KindNoSpans:
		return SeverityError, "SkyTrail has never received a span",
			"No service sends spans here yet: point the SDK's exporter at this server (OTEL_EXPORTER_OTLP_ENDPOINT, or SW_AGENT_REPORTER_GRPC_BACKEND_SERVICE for SkyWalking agents) and run `skytrail doctor` with the service's environment to see where the path breaks."
	case KindUnknownService:
		summary = fmt.Sprintf("SkyTrail has never received a span from %s", k.service)
		if k.variant != "" {
			summary += fmt.Sprintf("; did you mean %s?", k.variant)
		}
		return SeverityError, summary,
			fmt.Sprintf("Spans arrive under the service.name the SDK reports: check OTEL_SERVICE_NAME (or SW_AGENT_NAME) of %s, and run `skytrail doctor --service-name %s` with its environment to check its exporter reaches this server.", k.service, k.service)
	case KindSilentService:
		// silentServices writes the time into the summary.
		return SeverityError, fmt.Sprintf("%s has stopped sending spans", k.service),
			fmt.Sprintf("%s sent spans before and stopped: check that it still runs and gets traffic, that its exporter logs no errors, and run `skytrail doctor --service-name %s` with its environment.", k.service, k.service)
	}
	return SeverityInfo, k.kind, ""
}
