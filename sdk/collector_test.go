package sdk_test

import (
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/proto"
)

// collector is a minimal OTLP trace receiver (gRPC and HTTP/protobuf) on
// 127.0.0.1 that keeps what it is sent, for the SDK's real exporters to talk to.
type collector struct {
	coltracepb.UnimplementedTraceServiceServer
	mu       sync.Mutex
	resource []*tracepb.ResourceSpans
	headers  []map[string][]string
	paths    []string
}

func (c *collector) Export(ctx context.Context, req *coltracepb.ExportTraceServiceRequest) (*coltracepb.ExportTraceServiceResponse, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	c.keep(req, md, "grpc")
	return &coltracepb.ExportTraceServiceResponse{}, nil
}

func (c *collector) keep(req *coltracepb.ExportTraceServiceRequest, headers map[string][]string, path string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.resource = append(c.resource, req.ResourceSpans...)
	c.headers = append(c.headers, headers)
	c.paths = append(c.paths, path)
}

// startGRPCCollector serves OTLP/gRPC and returns its host:port.
func startGRPCCollector(t *testing.T) (*collector, string) {
	t.Helper()
	c := &collector{}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	coltracepb.RegisterTraceServiceServer(srv, c)
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	return c, lis.Addr().String()
}

// startHTTPCollector serves OTLP/HTTP protobuf and returns its host:port.
func startHTTPCollector(t *testing.T) (*collector, string) {
	t.Helper()
	c := &collector{}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: c.httpHandler()}
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(func() { _ = srv.Close() })
	return c, lis.Addr().String()
}

// startHTTPSCollector serves OTLP/HTTP over TLS with a self-signed
// certificate and returns its host:port and a client TLS config trusting it.
func startHTTPSCollector(t *testing.T) (*collector, string, *tls.Config) {
	t.Helper()
	c := &collector{}
	srv := httptest.NewUnstartedServer(c.httpHandler())
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return c, srv.Listener.Addr().String(), srv.Client().Transport.(*http.Transport).TLSClientConfig
}

func (c *collector) httpHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		var req coltracepb.ExportTraceServiceRequest
		if err == nil {
			err = proto.Unmarshal(body, &req)
		}
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		c.keep(&req, r.Header, r.URL.Path)
		out, _ := proto.Marshal(&coltracepb.ExportTraceServiceResponse{})
		w.Header().Set("Content-Type", "application/x-protobuf")
		_, _ = w.Write(out)
	})
}

// exported is one received span with its resource attributes.
type exported struct {
	span     *tracepb.Span
	resource map[string]string
}

func (c *collector) spans() []exported {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []exported
	for _, rs := range c.resource {
		res := attrs(rs.GetResource().GetAttributes())
		for _, ss := range rs.ScopeSpans {
			for _, s := range ss.Spans {
				out = append(out, exported{span: s, resource: res})
			}
		}
	}
	return out
}

func (c *collector) span(t *testing.T, name string) exported {
	t.Helper()
	for _, s := range c.spans() {
		if s.span.Name == name {
			return s
		}
	}
	var names []string
	for _, s := range c.spans() {
		names = append(names, s.span.Name)
	}
	t.Fatalf("no span %q received; got %q", name, names)
	return exported{}
}

func attrs(kvs []*commonpb.KeyValue) map[string]string {
	m := map[string]string{}
	for _, kv := range kvs {
		m[kv.Key] = kv.Value.GetStringValue()
	}
	return m
}
