package ui_test

import (
	"context"
	"encoding/json"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/SkyAPM/go2sky"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	agentv3 "skywalking.apache.org/repo/goapi/collect/language/agent/v3"

	"github.com/skytrail/skytrail/internal/servertest"
	"github.com/skytrail/skytrail/internal/testutil/poll"
)

// Stored XSS payloads, each naming itself in window.__pwned (and alert) if
// it ever ran. Service names carry no '/' so their pages have a path.
const (
	evilService  = `evil<img src=x onerror="window.__pwned='service';alert('service')">`
	evilCallee   = `"><svg onload="window.__pwned='callee'">`
	evilSpan     = `GET /x<script>window.__pwned='span'</script>`
	evilKey      = `key<img src=x onerror=window.__pwned='key'>`
	evilValue    = `"><img src=x onerror="window.__pwned='value'">`
	evilURL      = `javascript:window.__pwned='url'`
	evilEvent    = `<script>window.__pwned='event'</script>`
	evilEventMsg = `<iframe srcdoc="<script>parent.__pwned='eventmsg'</script>">`
	evilStatus   = `<img src=x onerror=window.__pwned='status'>`
	evilInstance = `inst<svg onload=window.__pwned='instance'>`
	evilPeer     = `db<img src=x onerror=window.__pwned='peer'>`
	evilSW       = `sw<img src=x onerror=window.__pwned='sw'>`
	evilSWOp     = `<a href="javascript:window.__pwned='swop'">op</a>`
	evilSWTag    = `<style>*{display:none}</style><b onmouseover=window.__pwned='tag'>`
	evilLog      = `<img src=x onerror=window.__pwned='log'> lock wait timeout`
)

// TestBrowserHostileInput ingests HTML and script payloads in every field
// a user sees (service, span, attribute key and value, URL, event, status,
// instance, peer; over OTLP, SkyWalking gRPC and SkyWalking's log API) and
// visits every page of the UI with them, asserting nothing ran, no markup
// was made of them, and the text appears literally.
func TestBrowserHostileInput(t *testing.T) {
	dir := browserPrereqs(t)
	s, base := startSkyTrail(t)
	api := "http://" + s.Addrs["query API"]
	f := &feeder{t: t, addr: s.Addrs["OTLP gRPC"], tps: map[string]*sdktrace.TracerProvider{}}
	defer f.shutdown()

	now := time.Now()
	start := now.Add(-2 * time.Minute)
	evil := f.instance(evilService, evilInstance)
	ctx, endRoot := span(context.Background(), evil, evilSpan, trace.SpanKindServer, start, 120*time.Millisecond,
		attribute.String(evilKey, evilValue), attribute.String("url.full", evilURL), attribute.String("http.route", evilSpan),
		attribute.String("order_id", "6666"))
	dctx, endDB := span(ctx, evil, "SELECT "+evilValue, trace.SpanKindClient, start.Add(5*time.Millisecond), 30*time.Millisecond,
		attribute.String("db.system", "postgresql"), attribute.String("server.address", evilPeer), attribute.String("db.statement", evilValue))
	trace.SpanFromContext(dctx).AddEvent(evilEvent, trace.WithTimestamp(start.Add(10*time.Millisecond)),
		trace.WithAttributes(attribute.String("exception.message", evilEventMsg), attribute.String(evilKey, evilURL)))
	trace.SpanFromContext(dctx).SetStatus(codes.Error, evilStatus)
	endDB()
	// A call whose callee starts a new trace: a lost_propagation finding
	// naming both services on the Health page, and an edge on the map.
	cctx, endCall := span(ctx, evil, "GET "+evilCallee, trace.SpanKindClient, start.Add(40*time.Millisecond), 50*time.Millisecond,
		attribute.String("server.address", "callee"), attribute.Int("server.port", 8080), attribute.String("url.full", evilURL))
	_ = cctx
	_, endServe := span(context.Background(), f.tracer(evilCallee), "GET "+evilCallee, trace.SpanKindServer, start.Add(42*time.Millisecond), 40*time.Millisecond,
		attribute.String("server.address", "callee"), attribute.Int("server.port", 8080), attribute.String("http.route", "/"+evilValue))
	endServe()
	endCall()
	endRoot()
	traceID := trace.SpanContextFromContext(ctx).TraceID().String()
	for i := range 3 { // the finding needs several traces
		at := start.Add(time.Duration(i+1) * time.Second)
		c, end := span(context.Background(), evil, evilSpan, trace.SpanKindServer, at, 60*time.Millisecond)
		_, endC := span(c, evil, "GET "+evilCallee, trace.SpanKindClient, at.Add(2*time.Millisecond), 30*time.Millisecond,
			attribute.String("server.address", "callee"), attribute.Int("server.port", 8080), attribute.String("url.full", "http://callee:8080/x"))
		_, endS := span(context.Background(), f.tracer(evilCallee), "GET "+evilCallee, trace.SpanKindServer, at.Add(4*time.Millisecond), 25*time.Millisecond,
			attribute.String("server.address", "callee"), attribute.Int("server.port", 8080), attribute.String("http.route", "/x"))
		endS()
		endC()
		end()
	}

	// SkyWalking: a go2sky service, operation, tag and span log.
	sw := servertest.Go2sky(t, s, evilSW)
	entry, swCtx, err := sw.CreateEntrySpan(context.Background(), evilSWOp, func(string) (string, error) { return "", nil })
	if err != nil {
		t.Fatal(err)
	}
	entry.Tag(go2sky.Tag(evilSWTag), evilValue)
	entry.Log(time.Now(), "event", evilEvent, "message", evilEventMsg)
	exit, err := sw.CreateExitSpan(swCtx, evilSWOp, evilPeer, func(string, string) error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	exit.SetSpanLayer(agentv3.SpanLayer_Database)
	exit.Error(time.Now(), evilStatus)
	exit.End()
	entry.End()
	swTraceID := go2sky.TraceID(swCtx)

	f.flush()
	// Root, database call and client call; the callee started a trace of its own.
	poll.Until(t, waitTimeout, "the hostile OTLP trace", func() bool { return traceSpans(api, traceID) == 3 })
	poll.Until(t, waitTimeout, "the hostile go2sky trace", func() bool { return traceSpans(api, url.PathEscape(swTraceID)) == 2 })
	postAgentLog(t, s.Addrs["SkyWalking HTTP"], swTraceID, evilLog)
	poll.Until(t, waitTimeout, "the lost_propagation finding about the hostile service", func() bool {
		return findingOf(s, api, "lost_propagation", evilService)
	})
	if err := s.Analyser.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}

	texts, _ := json.Marshal(map[string][]string{
		"services":  {evilService, evilCallee, evilSW},
		"service":   {evilService, evilSpan},
		"traces":    {evilSpan},
		"trace":     {evilService, evilSpan, evilKey, evilValue, evilURL, evilEvent, evilEventMsg, evilStatus, evilPeer, "SELECT " + evilValue},
		"swtrace":   {evilSW, evilSWOp, evilSWTag, evilLog},
		"instances": {evilInstance},
		"health":    {evilService},
		"map":       {evilService, evilPeer},
	})
	ctxRun, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctxRun, "node", "hostile.mjs")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "BASE_URL="+base, "TRACE_ID="+traceID, "SW_TRACE_ID="+swTraceID,
		"EVIL_SERVICE="+evilService, "EVIL_SW="+evilSW, "TEXTS="+string(texts), "CHROMIUM="+chromium,
		"ALLOW_MISSING="+strings.Join(missingAPIs(t, base), ","), "SCREENSHOTS="+os.Getenv("UI_SCREENSHOTS"))
	out, err := cmd.CombinedOutput()
	t.Logf("browser:\n%s", out)
	if err != nil {
		t.Fatalf("hostile input checks failed: %v", err)
	}
}
