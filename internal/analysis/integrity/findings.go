package integrity

import (
	"cmp"
	"fmt"
	"slices"
	"time"
)

// Kinds of finding.
const (
	// KindBrokenTrace: spans whose parent never arrived.
	KindBrokenTrace = "broken_trace"
	// KindLostPropagation: a call to an instrumented service whose server
	// span starts a new trace instead of joining the caller's.
	KindLostPropagation = "lost_propagation"
	// KindPropagatorMismatch: the same, between a SkyWalking (sw8) caller
	// and an OpenTelemetry (W3C) service or the other way round.
	KindPropagatorMismatch = "propagator_mismatch"
	// KindDetachedRoot: roots that are not entry spans in a service that
	// receives requests: context lost, usually in a goroutine.
	KindDetachedRoot = "detached_root"
	// KindUninstrumentedPeer: an address called by client spans that never
	// answers with spans of its own.
	KindUninstrumentedPeer = "uninstrumented_peer"
	// KindSilentInstance: an instance that sends keep-alives but no spans.
	KindSilentInstance = "silent_instance"
	// KindStoppedInstance: an alive instance whose spans stopped.
	KindStoppedInstance = "stopped_instance"
	// KindDuplicateInstance: one program reporting under several instance IDs.
	KindDuplicateInstance = "duplicate_instance"
	// KindClockSkew: a server span starting outside the call that caused it.
	KindClockSkew = "clock_skew"
	// KindExitWithoutPeer: client (exit) spans that do not say what they called.
	KindExitWithoutPeer = "exit_without_peer"
	// KindRejectedData: spans the receivers refused.
	KindRejectedData = "rejected_data"
	// KindAnalysisOverflow: traces not judged for lack of room.
	KindAnalysisOverflow = "analysis_overflow"
)

// Severities, most urgent first.
const (
	SeverityError   = "error"
	SeverityWarning = "warning"
	SeverityInfo    = "info"
)

// key identifies a finding: what, where, and which variant of the remedy.
type key struct {
	kind, service, peer, instance, variant string
}

// Finding is one thing wrong, in plain words, with the fix.
type Finding struct {
	Kind     string `json:"kind"`
	Severity string `json:"severity"`
	// Service is the service the finding is about ("" for the server).
	Service string `json:"service,omitempty"`
	// Peer is the other side: the called service or address for call
	// findings, the caller for broken traces and clock skew, the instance
	// replaced for duplicates, the receiver for rejected data, the nearest
	// known name for a service that never sent a span.
	Peer     string `json:"peer,omitempty"`
	Instance string `json:"instance,omitempty"`
	// Count is how many traces showed it (instances: 1; rejected data:
	// spans refused).
	Count int64 `json:"count"`
	// Traces is how many judged traces the service took part in since the
	// finding first appeared, and Share is Count/Traces, for per-trace
	// findings.
	Traces    int64     `json:"traces,omitempty"`
	Share     float64   `json:"share,omitempty"`
	Examples  []string  `json:"exampleTraceIDs,omitempty"`
	FirstSeen time.Time `json:"firstSeen"`
	LastSeen  time.Time `json:"lastSeen"`
	Summary   string    `json:"summary"`
	Detail    string    `json:"detail,omitempty"`
	Remedy    string    `json:"remedy"`
	// Clients are the addresses whose requests were refused, for
	// rejected_data, most first.
	Clients []ClientRejections `json:"clients,omitempty"`

	variant    string
	tracesBase int64
}

func newFinding(k key, first time.Time) *Finding {
	f := &Finding{Kind: k.kind, Service: k.service, Peer: k.peer, Instance: k.instance, FirstSeen: first.UTC(), LastSeen: first.UTC(), variant: k.variant}
	f.Severity, f.Summary, f.Remedy = describe(k)
	return f
}

// describe says what a finding means and how to fix it.
func describe(k key) (severity, summary, remedy string) {
	s, p := k.service, k.peer
	switch k.kind {
	case KindBrokenTrace:
		if k.variant == "local" {
			return SeverityError, fmt.Sprintf("%s sends spans whose parent span, in the same process, never arrived", s),
				"A span was started but never ended, or the process exited before exporting it: end every span (defer span.End()) and call the tracer provider's Shutdown before the process exits."
		}
		caller := "their caller"
		if p != "" {
			caller = p
		}
		return SeverityError, fmt.Sprintf("%s receives requests whose parent span (in %s) never arrived", s, caller),
			fmt.Sprintf("The trace context arrives but %s's spans do not: make sure %s exports to SkyTrail (check it with `skytrail doctor`), uses a parent-based sampler (OTEL_TRACES_SAMPLER=parentbased_traceidratio) so it keeps what it propagates, and that no proxy in between invents trace headers.", caller, caller)
	case KindLostPropagation:
		return SeverityError, fmt.Sprintf("%s calls %s, but %s starts new traces: the trace context is lost on the way", s, p, p),
			fmt.Sprintf("%s does not extract the incoming context, or %s does not inject it. On the server: wrap the handler with otelhttp.NewHandler (gRPC: otelgrpc.NewServerHandler; gin: otelgin.Middleware) and set a propagator, otel.SetTextMapPropagator(propagation.TraceContext{}) — the default propagates nothing. On the client: use otelhttp.NewTransport (gRPC: otelgrpc.NewClientHandler) and pass the request's context to the call.", p, s)
	case KindPropagatorMismatch:
		from, to := "sw8 (SkyWalking)", "W3C traceparent"
		if k.variant == "otel" {
			from, to = to, from
		}
		return SeverityError, fmt.Sprintf("%s calls %s, but %s starts new traces: %s sends %s, %s only reads %s", s, p, p, s, from, p, to),
			"The two services' propagators do not meet. Make the OpenTelemetry side speak both: start it with SkyTrail's SDK (sdk.Start reads and writes sw8 beside traceparent), or add github.com/skytrail/skytrail/sdk/sw8's propagator: otel.SetTextMapPropagator(propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, sw8.New())). See docs/sdk.md."
	case KindDetachedRoot:
		return SeverityWarning, fmt.Sprintf("%s starts traces from spans that are not requests: the request's context was lost", s),
			"Spans started from context.Background() (often in a goroutine, or in a helper that takes no context) begin a new trace. Pass the request's ctx on: go work(ctx), tracer.Start(ctx, ...), or SkyTrail's sdk.Go(ctx, name, fn). If this is background work meant to be its own trace, give its root span kind server or consumer, or ignore this."
	case KindUninstrumentedPeer:
		return SeverityInfo, fmt.Sprintf("%s calls %s, which sends no spans", s, p),
			fmt.Sprintf("If %s is one of your services, it is not instrumented, or it is but its spans do not say it listens there: add tracing middleware (otelhttp.NewHandler, otelgrpc.NewServerHandler) and an exporter to it. If it is an external API, nothing to do.", p)
	case KindSilentInstance:
		return SeverityError, fmt.Sprintf("instance %s of %s reports itself alive but sends no spans", k.instance, s),
			"The agent connects (its keep-alives arrive) but no segment does: the sampler may be at 0 (go2sky.WithSampler(0), agent.sample_n_per_3_secs), no entry point is instrumented (no middleware or plugin around the handlers), or the reporter fails after connecting (check the agent's log for errors sending segments)."
	case KindStoppedInstance:
		return SeverityError, fmt.Sprintf("instance %s of %s is alive but stopped sending spans", k.instance, s),
			"The agent still sends keep-alives, so the process runs and reaches SkyTrail: the service may get no traffic, or its reporter's queue is stuck or dropping (look for 'buffer full' or send errors in the agent's log)."
	case KindDuplicateInstance:
		return SeverityWarning, fmt.Sprintf("instance %s of %s is the same program as %s under a new instance ID", k.instance, s, p),
			"Instance IDs that change on every restart (skywalking-go's default UUID@IP) scatter one instance's metrics: set a stable name (SW_AGENT_INSTANCE_NAME, or the service.instance.id resource attribute, e.g. from the pod name)."
	case KindClockSkew:
		return SeverityWarning, fmt.Sprintf("%s's server spans start outside the calls from %s that caused them: the hosts' clocks disagree", s, p),
			fmt.Sprintf("Synchronise the clocks of %s's and %s's hosts (NTP, chrony); until then their spans are drawn out of order.", p, s)
	case KindExitWithoutPeer:
		if k.variant == "skywalking" {
			return SeverityWarning, fmt.Sprintf("%s sends exit spans with no peer", s),
				"SkyWalking exit spans need the address they called: pass it to CreateExitSpan(ctx, name, peer, ...); without it the service map cannot draw the call."
		}
		return SeverityWarning, fmt.Sprintf("%s sends client spans that do not say what they called", s),
			"Set server.address and server.port (or peer.service) on client spans, or use instrumentation that does (otelhttp.NewTransport, otelgrpc, otelsql); without them the service map cannot draw the call."
	case KindRejectedData:
		return SeverityError, fmt.Sprintf("the %s receiver refused spans (%s)", p, k.variant), rejectedRemedy(k.variant)
	case KindNoSpans, KindUnknownService, KindSilentService:
		return describeSilence(k)
	case KindAnalysisOverflow:
		return SeverityWarning, "some traces were not checked for integrity: too many spans were waiting to be judged",
			"A burst outgrew the integrity buffer before sampling caught up (the spans themselves were stored): raise the buffer (Config.MaxSpans) or shorten the grace period."
	}
	return SeverityInfo, k.kind, ""
}

// severityRank orders findings most urgent first.
var severityRank = map[string]int{SeverityError: 0, SeverityWarning: 1, SeverityInfo: 2}

// Report is what /api/v1/diagnostics answers.
type Report struct {
	Findings []Finding `json:"findings"`
	// JudgedTraces and PendingTraces: traces judged since the server
	// started, and waiting for their grace period.
	JudgedTraces  uint64 `json:"judgedTraces"`
	PendingTraces int    `json:"pendingTraces"`
	// Sampled is the share of new traces taken for judging: 1, unless
	// the load outgrew the buffer and a sample of whole traces is judged.
	Sampled     float64   `json:"sampled"`
	Grace       string    `json:"grace"`
	GeneratedAt time.Time `json:"generatedAt"`
}

// Findings lists the current findings, about service only when it is not
// empty (a finding about a call counts for both of its services; one about
// the server, such as refused data, for every service), most urgent first,
// then most frequent.
func (a *Analyser) Findings(service string) Report {
	j := a.judge
	j.mu.Lock()
	out := make([]Finding, 0, len(j.findings))
	for _, f := range j.findings {
		if service != "" && f.Service != "" && f.Service != service && !(f.Peer == service && calls(f.Kind)) {
			continue
		}
		if !j.visible(f) {
			continue
		}
		c := *f
		c.Examples = slices.Clone(f.Examples)
		c.Clients = slices.Clone(f.Clients)
		if perTrace(c.Kind) {
			c.Traces = max(j.traces[c.Service]-f.tracesBase, c.Count)
			c.Share = float64(c.Count) / float64(c.Traces)
		}
		out = append(out, c)
	}
	r := Report{JudgedTraces: j.judged, PendingTraces: j.pendingTraces, Sampled: j.sampled, Grace: a.cfg.Grace.String(), GeneratedAt: a.cfg.Now().UTC()}
	j.mu.Unlock()
	slices.SortFunc(out, func(x, y Finding) int {
		return cmp.Or(cmp.Compare(severityRank[x.Severity], severityRank[y.Severity]), cmp.Compare(y.Count, x.Count),
			cmp.Compare(x.Kind, y.Kind), cmp.Compare(x.Service, y.Service), cmp.Compare(x.Peer, y.Peer), cmp.Compare(x.Instance, y.Instance))
	})
	r.Findings = out
	return r
}

// calls tells kinds whose peer is a service on the other end of a call.
func calls(kind string) bool {
	switch kind {
	case KindLostPropagation, KindPropagatorMismatch, KindBrokenTrace, KindClockSkew:
		return true
	}
	return false
}

func perTrace(kind string) bool {
	switch kind {
	case KindBrokenTrace, KindLostPropagation, KindPropagatorMismatch, KindDetachedRoot, KindUninstrumentedPeer, KindClockSkew, KindExitWithoutPeer:
		return true
	}
	return false
}

// visible tells whether a finding stands given everything learnt since it
// was recorded.
func (j *judge) visible(f *Finding) bool {
	switch f.Kind {
	case KindDetachedRoot:
		// A service that receives no requests (a batch job, a client)
		// starts its own traces by design.
		return j.entries[f.Service] != 0
	case KindUninstrumentedPeer:
		// Someone answers there after all.
		_, known := j.aliases[f.Peer]
		return !known
	}
	return true
}
