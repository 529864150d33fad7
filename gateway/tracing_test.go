package gateway

import (
	"context"
	"encoding/hex"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
)

// spanSink keeps the spans and service names of the OTLP exports an
// in-process receiver is sent, whatever transport carried them.
type spanSink struct {
	mu    sync.Mutex
	spans []*tracepb.Span
	svc   []string
}

func (k *spanSink) add(exp *coltracepb.ExportTraceServiceRequest) {
	k.mu.Lock()
	defer k.mu.Unlock()
	for _, rs := range exp.ResourceSpans {
		for _, a := range rs.GetResource().GetAttributes() {
			if a.Key == "service.name" {
				k.svc = append(k.svc, a.GetValue().GetStringValue())
			}
		}
		for _, ss := range rs.ScopeSpans {
			k.spans = append(k.spans, ss.Spans...)
		}
	}
}

// otlpReceiver is an OTLP/HTTP trace endpoint on loopback that keeps the
// spans it is sent.
type otlpReceiver struct {
	*httptest.Server
	spanSink
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
		r.add(&exp)
		out, _ := proto.Marshal(&coltracepb.ExportTraceServiceResponse{})
		w.Header().Set("Content-Type", "application/x-protobuf")
		w.Write(out)
	}))
	t.Cleanup(r.Close)
	return r
}

// grpcReceiver is an OTLP/gRPC trace service on loopback that keeps the
// spans it is sent.
type grpcReceiver struct {
	coltracepb.UnimplementedTraceServiceServer
	spanSink
	addr string
}

func (r *grpcReceiver) Export(_ context.Context, exp *coltracepb.ExportTraceServiceRequest) (*coltracepb.ExportTraceServiceResponse, error) {
	r.add(exp)
	return &coltracepb.ExportTraceServiceResponse{}, nil
}

func newGRPCReceiver(t *testing.T) *grpcReceiver {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &grpcReceiver{addr: ln.Addr().String()}
	srv := grpc.NewServer()
	coltracepb.RegisterTraceServiceServer(srv, r)
	done := make(chan struct{})
	go func() { // ends when Stop closes ln
		defer close(done)
		srv.Serve(ln)
	}()
	t.Cleanup(func() { srv.Stop(); <-done })
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

// checkTracesExported sends two requests through a gateway whose OTEL_*
// variables the caller has pointed at rcv, the first retried once, and
// checks that rcv was sent, per request, a server span continuing the
// client's traceparent and a client span per upstream attempt, with the
// attributes the docs promise and the contexts sent upstream.
func checkTracesExported(t *testing.T, rcv *spanSink) {
	t.Helper()
	t.Setenv("OTEL_SERVICE_NAME", "edge-test")
	be := newBackend(t, "svc")
	var mu sync.Mutex
	upstreamParents := map[string][]string{} // by trace id
	calls := 0
	be.handle(func(w http.ResponseWriter, r *http.Request) bool {
		mu.Lock()
		defer mu.Unlock()
		calls++
		tp := r.Header.Get("Traceparent")
		if len(tp) > 35 {
			upstreamParents[tp[3:35]] = append(upstreamParents[tp[3:35]], tp)
		}
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
		t.Fatal("the OTEL_* variables ask for traces but the gateway does not trace")
	}
	requests := []struct {
		traceID, parentID string
		wantStatus        []int64 // of the client spans, one per attempt
	}{
		{"4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7", []int64{503, 200}},
		{"0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331", []int64{200}},
	}
	for _, rq := range requests {
		code, _, _ := get(t, "GET", url+"/orders/7", map[string]string{"Traceparent": "00-" + rq.traceID + "-" + rq.parentID + "-01"})
		if code != 200 {
			t.Fatalf("status %d", code)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := g.Shutdown(ctx); err != nil { // flushes the exporter
		t.Fatal(err)
	}

	rcv.mu.Lock()
	defer rcv.mu.Unlock()
	if len(rcv.svc) == 0 || rcv.svc[0] != "edge-test" {
		t.Errorf("service.name %q, want OTEL_SERVICE_NAME's edge-test", rcv.svc)
	}
	byTrace := map[string][]*tracepb.Span{}
	for _, s := range rcv.spans {
		byTrace[hex.EncodeToString(s.TraceId)] = append(byTrace[hex.EncodeToString(s.TraceId)], s)
	}
	if len(byTrace) != len(requests) {
		t.Errorf("spans in %d traces, want the %d clients' traces", len(byTrace), len(requests))
	}
	for _, rq := range requests {
		var server *tracepb.Span
		var clients []*tracepb.Span
		for _, s := range byTrace[rq.traceID] {
			switch s.Kind {
			case tracepb.Span_SPAN_KIND_SERVER:
				server = s
			case tracepb.Span_SPAN_KIND_CLIENT:
				clients = append(clients, s)
			}
		}
		if server == nil || len(clients) != len(rq.wantStatus) {
			t.Errorf("trace %s: %d spans (server %v, %d client), want a server span and %d client spans",
				rq.traceID, len(byTrace[rq.traceID]), server != nil, len(clients), len(rq.wantStatus))
			continue
		}
		if server.Name != "GET orders" || hex.EncodeToString(server.ParentSpanId) != rq.parentID {
			t.Errorf("server span %q with parent %x, want \"GET orders\" under the client's %s", server.Name, server.ParentSpanId, rq.parentID)
		}
		if r, _, _ := spanAttr(server, "http.route"); r != "orders" {
			t.Errorf("server span http.route %q", r)
		}
		if _, st, _ := spanAttr(server, "http.response.status_code"); st != 200 {
			t.Errorf("server span http.response.status_code %d", st)
		}
		// The exporter may batch attempts in any order; resend_count says
		// which attempt a span was.
		for _, c := range clients {
			_, n, _ := spanAttr(c, "http.request.resend_count")
			if n < 0 || int(n) >= len(rq.wantStatus) {
				t.Errorf("client span with http.request.resend_count %d", n)
				continue
			}
			if c.Name != "GET" || string(c.ParentSpanId) != string(server.SpanId) {
				t.Errorf("attempt %d: %q with parent %x, want GET under the server span %x", n, c.Name, c.ParentSpanId, server.SpanId)
			}
			if _, st, _ := spanAttr(c, "http.response.status_code"); st != rq.wantStatus[n] {
				t.Errorf("attempt %d: status %d, want %d", n, st, rq.wantStatus[n])
			}
			want := "00-" + rq.traceID + "-" + hex.EncodeToString(c.SpanId) + "-01"
			if got := upstreamParents[rq.traceID]; int(n) >= len(got) || got[n] != want {
				t.Errorf("attempt %d went upstream with traceparents %q, want its client span's %q", n, got, want)
			}
		}
	}
}

// The tests below set process environment, so they do not run in
// parallel.

func TestTracesExportedOverOTLP(t *testing.T) {
	rcv := newOTLPReceiver(t)
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", rcv.URL)
	checkTracesExported(t, &rcv.spanSink)
}

func TestTracesExportedOverOTLPGRPC(t *testing.T) {
	rcv := newGRPCReceiver(t)
	t.Setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://"+rcv.addr)
	t.Setenv("OTEL_EXPORTER_OTLP_INSECURE", "true")
	checkTracesExported(t, &rcv.spanSink)
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

func TestTraceProtocolSelection(t *testing.T) {
	tests := []struct {
		name   string
		traces string // OTEL_EXPORTER_OTLP_TRACES_PROTOCOL
		all    string // OTEL_EXPORTER_OTLP_PROTOCOL
		want   string // the protocol chosen; "" when the gateway must refuse
		bad    string // the variable the refusal names
	}{
		{name: "unset", want: "http/protobuf"},
		{name: "grpc", all: "grpc", want: "grpc"},
		{name: "http/protobuf", all: "http/protobuf", want: "http/protobuf"},
		{name: "traces variable wins", traces: "grpc", all: "http/protobuf", want: "grpc"},
		{name: "traces variable wins both ways", traces: "http/protobuf", all: "grpc", want: "http/protobuf"},
		{name: "traces variable shadows a bad general one", traces: "grpc", all: "http/json", want: "grpc"},
		{name: "http/json", all: "http/json", bad: "OTEL_EXPORTER_OTLP_PROTOCOL"},
		{name: "typo", all: "gprc", bad: "OTEL_EXPORTER_OTLP_PROTOCOL"},
		{name: "case matters", all: "GRPC", bad: "OTEL_EXPORTER_OTLP_PROTOCOL"},
		{name: "bad traces variable", traces: "http/json", all: "grpc", bad: "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", tc.traces)
			t.Setenv("OTEL_EXPORTER_OTLP_PROTOCOL", tc.all)
			t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:1") // never dialled: nothing is exported
			tr, err := newTracing(Options{})
			if tc.bad != "" {
				if err == nil {
					t.Fatalf("newTracing accepted %s %q", tc.bad, os.Getenv(tc.bad))
				}
				for _, s := range []string{tc.bad, strconv.Quote(os.Getenv(tc.bad)), `"grpc"`, `"http/protobuf"`} {
					if !strings.Contains(err.Error(), s) {
						t.Errorf("error %q does not name %s", err, s)
					}
				}
				return
			}
			if err != nil || tr == nil {
				t.Fatalf("newTracing: %v, %v; want an exporter", tr, err)
			}
			tr.shutdown(context.Background())
			if got, err := traceProtocolFromEnv(); got != tc.want || err != nil {
				t.Errorf("protocol %q, %v; want %q", got, err, tc.want)
			}
		})
	}
	// With traces off the protocol variables are never read.
	t.Setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json")
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "")
	t.Setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "")
	t.Setenv("OTEL_TRACES_EXPORTER", "")
	if tr, err := newTracing(Options{}); tr != nil || err != nil {
		t.Errorf("with no endpoint: %v, %v; want no tracing and no error", tr, err)
	}
}
