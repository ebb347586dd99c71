package otlp

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/skytrail/skytrail/internal/pipeline"
	"github.com/skytrail/skytrail/internal/storage/spanstore"
)

// receiverOn is the OTLP receiver over the real front door and span store,
// with an in-flight budget of budget bytes, served on loopback over gRPC and
// HTTP.
func receiverOn(t *testing.T, budget int64) (p *pipeline.Pipeline, store *spanstore.Store, grpcAddr, httpURL string) {
	t.Helper()
	store, err := spanstore.Open(spanstore.Config{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	p = pipeline.New(pipeline.Config{MaxInFlightBytes: budget, Storage: store.Limits()}, pipeline.Consumers{Traces: []pipeline.TracesConsumer{store}})
	r := New(p, Config{})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := r.NewGRPCServer()
	go func() { _ = gs.Serve(ln) }()
	t.Cleanup(gs.Stop)
	hs := httptest.NewServer(r.HTTPHandler())
	t.Cleanup(hs.Close)
	return p, store, ln.Addr().String(), hs.URL
}

// emptyResources is an export of n empty ResourceSpans: 2 bytes each on the
// wire, about 170 bytes each once decoded.
func emptyResources(n int) []byte {
	return bytes.Repeat([]byte{0x0a, 0x00}, n)
}

// A request whose decoding would take more memory than the whole in-flight
// budget is refused before it is decoded, as too large (the client must not
// retry it): 8 MiB of empty resources would take 700 MB decoded. It once
// took the server to 4.9 GB.
func TestDecodingIsChargedBeforeItHappens(t *testing.T) {
	t.Parallel()
	_, _, grpcAddr, httpURL := receiverOn(t, 64<<20)
	bomb := emptyResources(4 << 20)

	conn, err := grpc.NewClient(grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	err = conn.Invoke(context.Background(), "/opentelemetry.proto.collector.trace.v1.TraceService/Export", &rawMessage{b: bomb}, &rawMessage{},
		grpc.ForceCodecV2(rawCodec{}))
	if st := status.Convert(err); st.Code() != codes.InvalidArgument || !strings.Contains(st.Message(), "more than the server's in-flight budget") {
		t.Fatalf("gRPC: %v, want InvalidArgument: more than the in-flight budget", err)
	}

	res, err := http.Post(httpURL+"/v1/traces", contentProtobuf, bytes.NewReader(bomb))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusRequestEntityTooLarge || !bytes.Contains(body, []byte("in-flight budget")) {
		t.Fatalf("HTTP: %d %q, want 413", res.StatusCode, body)
	}

	// JSON is counted by its objects the same way.
	res, err = http.Post(httpURL+"/v1/traces", contentJSON, strings.NewReader(`{"resourceSpans":[`+strings.Repeat(`{},`, 1<<20)+`{}]}`))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusRequestEntityTooLarge {
		t.Fatalf("HTTP JSON of 1M empty objects: %d, want 413", res.StatusCode)
	}
}

// Slow clients hold only what they have sent: four connections dribbling
// the body of a declared 16 MiB request once kept every other client
// answered 429 for 40 s. Now an ordinary export goes through beside them.
func TestSlowBodiesDoNotBlockOthers(t *testing.T) {
	t.Parallel()
	_, store, _, httpURL := receiverOn(t, 16<<20)
	addr := strings.TrimPrefix(httpURL, "http://")
	for range 4 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		fmt.Fprintf(c, "POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: %s\r\nContent-Length: %d\r\n\r\n\x0a", contentProtobuf, 16<<20)
	}
	time.Sleep(100 * time.Millisecond) // let the server start reading them

	td := seedRequest()
	body, _ := ptraceotlp.NewExportRequestFromTraces(td).MarshalProto()
	res, err := http.Post(httpURL+"/v1/traces", contentProtobuf, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("an export beside four slow bodies: %d, want 200", res.StatusCode)
	}
	store.Flush()
	if got, err := store.GetTrace(context.Background(), td.ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0).TraceID()); err != nil || got.SpanCount() != 1 {
		t.Fatalf("the export was not stored: %v", err)
	}
}

// A client that stopped waiting before its spans were stored gets nothing
// stored: it sends them again, and storing both copies would duplicate
// them (64 exporters timing out once left 365k spans stored, none
// acknowledged).
func TestAbandonedRequestsAreNotStored(t *testing.T) {
	t.Parallel()
	p, store, _, _ := receiverOn(t, 64<<20)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	td := seedRequest()
	_, err := p.Ingest(ctx, pipeline.Source{Receiver: GRPCReceiver}, &pipeline.Traces{Traces: td})
	if pipeline.ReasonOf(err) != pipeline.Abandoned {
		t.Fatalf("err = %v, want Abandoned", err)
	}
	store.Flush()
	if _, err := store.GetTrace(context.Background(), seedRequest().ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0).TraceID()); err == nil {
		t.Fatal("spans of an abandoned request were stored")
	}
}
