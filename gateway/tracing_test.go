package gateway

import (
	"context"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"
)

// otlpReceiver is an OTLP/HTTP trace endpoint on loopback that keeps the
// spans it is sent.
type otlpReceiver struct {
	*httptest.Server
	mu    sync.Mutex
	spans []*tracepb.Span
	svc   []string
}

func newOTLPReceiver(t *testing.T) *otlpReceiver {
	r := &otlpReceiver{}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.URL.Path != "/v1/traces" || req.Header.Get("Content-Type") != "application/x-protobuf" {
			http.Error(w, "not an OTLP/HTTP protobuf trace export", http.StatusBadRequest)
			return
		}
		body, _ := io.ReadAll(req.Body)
		var exp coltracepb.ExportTraceServiceRequest
		if err := proto.Unmarshal(body, &exp); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		r.mu.Lock()
		for _, rs := range exp.ResourceSpans {
			for _, a := range rs.GetResource().GetAttributes() {
				if a.Key == "service.name" {
					r.svc = append(r.svc, a.GetValue().GetStringValue())
				}
			}
			for _, ss := range rs.ScopeSpans {
				r.spans = append(r.spans, ss.Spans...)
			}
		}
		r.mu.Unlock()
		out, _ := proto.Marshal(&coltracepb.ExportTraceServiceResponse{})
		w.Header().Set("Content-Type", "application/x-protobuf")
		w.Write(out)
	}))
	t.Cleanup(r.Close)
	return r
}

func spanAttr(s *tracepb.Span, key string) (string, int64, bool) {
	for _, a := range s.Attributes {
		if a.Key == key {
			return a.GetValue().GetStringValue(), a.GetValue().GetIntValue(), true
		}
	}
	return "", 0, false
}

// TestTracesExportedOverOTLP sets process environment, so it does not run
// in parallel.
func TestTracesExportedOverOTLP(t *testing.T) {
	rcv := newOTLPReceiver(t)
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", rcv.URL)
	t.Setenv("OTEL_SERVICE_NAME", "edge-test")
	be := newBackend(t, "svc")
	var mu sync.Mutex
	var upstreamParents []string
	calls := 0
	be.handle(func(w http.ResponseWriter, r *http.Request) bool {
		mu.Lock()
		defer mu.Unlock()
		calls++
		upstreamParents = append(upstreamParents, r.Header.Get("Traceparent"))
		if calls == 1 {
			w.WriteHeader(http.StatusServiceUnavailable) // retried: a second client span
			return true
		}
		return false
	})
	g, url := startGateway(t, `  upstreams: [{name: svc, targets: [{address: "`+be.addr()+`"}]}]
  routes:
    - {name: orders, upstream: svc, retry: {attempts: 2, on: [5xx], base: 1ms, cap: 1ms}}
`, Options{})
	if g.tracing == nil {
		t.Fatal("OTEL_EXPORTER_OTLP_ENDPOINT is set but the gateway does not trace")
	}
	const traceID, parentID = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
	code, _, _ := get(t, "GET", url+"/orders/7", map[string]string{"Traceparent": "00-" + traceID + "-" + parentID + "-01"})
	if code != 200 {
		t.Fatalf("status %d", code)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := g.Shutdown(ctx); err != nil { // flushes the exporter
		t.Fatal(err)
	}

	rcv.mu.Lock()
	defer rcv.mu.Unlock()
	var server *tracepb.Span
	var clients []*tracepb.Span
	for _, s := range rcv.spans {
		if hex.EncodeToString(s.TraceId) != traceID {
			t.Errorf("span %q in trace %x, want the client's trace %s", s.Name, s.TraceId, traceID)
		}
		switch s.Kind {
		case tracepb.Span_SPAN_KIND_SERVER:
			server = s
		case tracepb.Span_SPAN_KIND_CLIENT:
			clients = append(clients, s)
		}
	}
	if server == nil || len(clients) != 2 {
		t.Fatalf("got %d spans (server %v, %d client), want a server span and two client spans", len(rcv.spans), server != nil, len(clients))
	}
	if len(rcv.svc) == 0 || rcv.svc[0] != "edge-test" {
		t.Errorf("service.name %q, want OTEL_SERVICE_NAME's edge-test", rcv.svc)
	}
	if server.Name != "GET orders" || hex.EncodeToString(server.ParentSpanId) != parentID {
		t.Errorf("server span %q with parent %x, want \"GET orders\" under the client's %s", server.Name, server.ParentSpanId, parentID)
	}
	if r, _, _ := spanAttr(server, "http.route"); r != "orders" {
		t.Errorf("server span http.route %q", r)
	}
	if _, st, _ := spanAttr(server, "http.response.status_code"); st != 200 {
		t.Errorf("server span http.response.status_code %d", st)
	}
	wantStatus := []int64{503, 200}
	for i, c := range clients {
		if c.Name != "GET" || string(c.ParentSpanId) != string(server.SpanId) {
			t.Errorf("client span %d: %q with parent %x, want GET under the server span %x", i, c.Name, c.ParentSpanId, server.SpanId)
		}
		if _, st, _ := spanAttr(c, "http.response.status_code"); st != wantStatus[i] {
			t.Errorf("client span %d: status %d, want %d", i, st, wantStatus[i])
		}
		want := "00-" + traceID + "-" + hex.EncodeToString(c.SpanId) + "-01"
		if upstreamParents[i] != want {
			t.Errorf("attempt %d went upstream with traceparent %q, want its client span's %q", i, upstreamParents[i], want)
		}
	}
}

func TestTracesOffWithoutEnvironment(t *testing.T) {
	for _, k := range []string{"OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_TRACES_EXPORTER"} {
		t.Setenv(k, "")
	}
	be := newBackend(t, "svc")
	g, url := startGateway(t, `  upstreams: [{name: svc, targets: [{address: "`+be.addr()+`"}]}]
  routes: [{name: r, upstream: svc}]
`, Options{})
	if g.tracing != nil {
		t.Fatal("traces are on with no OTEL_* variable set")
	}
	// The trace context is still continued: same trace, a new parent.
	get(t, "GET", url+"/", map[string]string{"Traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"})
	tp := be.lastRequest().Header.Get("Traceparent")
	if !strings.HasPrefix(tp, "00-4bf92f3577b34da6a3ce929d0e0e4736-") || strings.Contains(tp, "00f067aa0ba902b7") {
		t.Errorf("upstream traceparent %q does not continue the trace under a new parent", tp)
	}
	t.Setenv("OTEL_TRACES_EXPORTER", "none")
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:1")
	if tracesFromEnv() {
		t.Error("OTEL_TRACES_EXPORTER=none does not turn traces off")
	}
}
