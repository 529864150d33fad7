package gateway

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	testpb "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/relia-dev/relia/callstore"
	"github.com/relia-dev/relia/clock"
	"github.com/relia-dev/relia/fault"
	"github.com/relia-dev/relia/internal/grpcdemo"
)

// demo serves the demo gRPC service, named name, on a port of its own.
func demo(t *testing.T, name string, opts ...grpc.ServerOption) (*grpcdemo.Server, string) {
	t.Helper()
	srv, addr, err := grpcdemo.Serve(grpcdemo.Options{Name: name, ServerOptions: opts}, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Stop)
	return srv, addr
}

// grpcGateway starts a gateway with an h2c listener from the spec's
// upstreams and routes, and returns a client of the demo service that
// calls through it.
func grpcGateway(t *testing.T, spec string, o Options) (*Gateway, testpb.TestServiceClient) {
	t.Helper()
	g, base := startGateway(t, "  listeners:\n    - name: main\n      address: 127.0.0.1:0\n      h2c: true\n"+spec, o)
	conn, err := grpc.NewClient(strings.TrimPrefix(base, "http://"), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return g, testpb.NewTestServiceClient(conn)
}

func callCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func servedBy(md metadata.MD) string {
	if v := md.Get("x-served-by"); len(v) == 1 {
		return v[0]
	}
	return ""
}

// TestGRPCEveryKindThroughTheGateway: unary, server, client and
// bidirectional streaming calls go through, each to the pool its method's
// route names; the target's statuses come back; the codes are counted.
func TestGRPCEveryKindThroughTheGateway(t *testing.T) {
	t.Parallel()
	_, a := demo(t, "a")
	_, b := demo(t, "b")
	reg := prometheus.NewRegistry()
	_, c := grpcGateway(t, `  upstreams:
    - name: unary
      targets: [{address: `+a+`}]
      grpc: {}
    - name: streams
      targets: [{address: `+b+`}]
      grpc: {}
  routes:
    - name: unary-call
      match: {path: {exact: /grpc.testing.TestService/UnaryCall}}
      upstream: unary
    - name: test-service
      match: {path: {prefix: /grpc.testing.TestService}}
      upstream: streams
`, Options{Registry: reg})
	ctx := callCtx(t)

	var hdr metadata.MD
	r, err := c.UnaryCall(ctx, &testpb.SimpleRequest{ResponseSize: 5}, grpc.Header(&hdr))
	if err != nil || len(r.GetPayload().GetBody()) != 5 || servedBy(hdr) != "a" {
		t.Fatalf("unary: %v %v, served by %q", r, err, servedBy(hdr))
	}
	_, err = c.UnaryCall(ctx, &testpb.SimpleRequest{ResponseStatus: &testpb.EchoStatus{Code: int32(codes.NotFound), Message: "no such thing"}})
	if st := status.Convert(err); st.Code() != codes.NotFound || st.Message() != "no such thing" {
		t.Errorf("a target's status: %v", err)
	}

	ss, err := c.StreamingOutputCall(ctx, &testpb.StreamingOutputCallRequest{ResponseParameters: []*testpb.ResponseParameters{{Size: 1}, {Size: 2}, {Size: 3}}})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for {
		_, err := ss.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("server stream: %v", err)
		}
		n++
	}
	if h, _ := ss.Header(); n != 3 || servedBy(h) != "b" {
		t.Errorf("server stream: %d responses from %q", n, servedBy(h))
	}

	cs, err := c.StreamingInputCall(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, size := range []int{3, 4, 5} {
		if err := cs.Send(&testpb.StreamingInputCallRequest{Payload: &testpb.Payload{Body: make([]byte, size)}}); err != nil {
			t.Fatal(err)
		}
	}
	if sum, err := cs.CloseAndRecv(); err != nil || sum.GetAggregatedPayloadSize() != 12 {
		t.Errorf("client stream: %v %v", sum, err)
	}

	// Each answer is awaited before the next message goes: the gateway
	// passes both directions on as they come.
	bs, err := c.FullDuplexCall(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if err := bs.Send(&testpb.StreamingOutputCallRequest{ResponseParameters: []*testpb.ResponseParameters{{Size: int32(i + 1)}}}); err != nil {
			t.Fatal(err)
		}
		resp, err := bs.Recv()
		if err != nil || len(resp.GetPayload().GetBody()) != i+1 {
			t.Fatalf("bidi message %d: %v %v", i, resp, err)
		}
	}
	if err := bs.CloseSend(); err != nil {
		t.Fatal(err)
	}
	if _, err := bs.Recv(); !errors.Is(err, io.EOF) {
		t.Errorf("bidi end: %v", err)
	}

	// A client that leaves mid-stream cancelled its call: the gateway
	// counts it CANCELLED, not as a target that became UNAVAILABLE.
	cctx, cancel := context.WithCancel(ctx)
	ss, err = c.StreamingOutputCall(cctx, &testpb.StreamingOutputCallRequest{ResponseParameters: []*testpb.ResponseParameters{{Size: 1}, {Size: 1, IntervalUs: 60_000_000}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ss.Recv(); err != nil {
		t.Fatal(err)
	}
	cancel()
	for deadline := time.Now().Add(10 * time.Second); testutil.ToFloat64(mustCounter(t, reg, "test-service", "CANCELLED")) == 0; {
		if time.Now().After(deadline) {
			t.Fatal("the call the client left was never counted CANCELLED")
		}
		time.Sleep(5 * time.Millisecond)
	}

	for _, tc := range []struct {
		route, code string
		want        float64
	}{{"unary-call", "OK", 1}, {"unary-call", "NOT_FOUND", 1}, {"test-service", "OK", 3}, {"test-service", "CANCELLED", 1}, {"test-service", "UNAVAILABLE", 0}} {
		if got := testutil.ToFloat64(mustCounter(t, reg, tc.route, tc.code)); got != tc.want {
			t.Errorf("relia_gateway_grpc_calls_total{%s,%s} = %v, want %v", tc.route, tc.code, got, tc.want)
		}
	}
}

func mustCounter(t *testing.T, reg *prometheus.Registry, route, code string) prometheus.Collector {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "x"})
	for _, mf := range mfs {
		if mf.GetName() != "relia_gateway_grpc_calls_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["http_route"] == route && labels["rpc_grpc_status_code"] == code {
				c.Add(m.GetCounter().GetValue())
			}
		}
	}
	return c
}

// flakyTarget puts a fault proxy in HTTP mode in front of a demo server
// and makes every unary and client-streaming call to it fail with toxic.
func flakyTarget(t *testing.T, name, toxic string) string {
	t.Helper()
	_, addr := demo(t, name)
	s, err := fault.NewServer(fault.Options{Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	info, err := s.CreateProxy(fault.ProxyConfig{Name: "flaky", Listen: "127.0.0.1:0", Upstream: addr, Mode: "http"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.AddToxic("flaky", strings.NewReader(toxic)); err != nil {
		t.Fatal(err)
	}
	return info.Listen
}

// TestGRPCRetries: a call that a target answers UNAVAILABLE is made again
// on another target, messages and all; a negative pushback forbids it.
// Each attempt is a step of the call's record, with its status and the
// target's pushback.
func TestGRPCRetries(t *testing.T) {
	t.Parallel()
	down := flakyTarget(t, "down", `{"name":"down","type":"http","attributes":{"path":"/grpc.testing.TestService/*","grpc_status":"UNAVAILABLE","grpc_retry_pushback_ms":10}}`)
	never := flakyTarget(t, "never", `{"name":"never","type":"http","attributes":{"path":"/grpc.testing.TestService/*","grpc_status":"UNAVAILABLE","grpc_retry_pushback_ms":-1}}`)
	_, good := demo(t, "good")
	calls := make(keptCalls, 16)
	_, c := grpcGateway(t, `  upstreams:
    - name: flaky
      targets: [{address: `+down+`}, {address: `+good+`}]
      grpc: {}
      health: {passive: {consecutive5xx: 100}}
    - name: stubborn
      targets: [{address: `+never+`}, {address: `+good+`}]
      grpc: {}
      health: {passive: {consecutive5xx: 100}}
  routes:
    - name: stubborn
      match: {path: {prefix: /grpc.testing.TestService}, headers: {x-pool: stubborn}}
      upstream: stubborn
      retry: {attempts: 3, retryOn: [unavailable], base: 1ms}
    - name: flaky
      match: {path: {prefix: /grpc.testing.TestService}}
      upstream: flaky
      retry: {attempts: 3, retryOn: [unavailable], base: 1ms}
`, Options{Calls: calls})
	ctx := callCtx(t)
	for i := range 4 {
		var hdr metadata.MD
		if _, err := c.UnaryCall(ctx, &testpb.SimpleRequest{}, grpc.Header(&hdr)); err != nil || servedBy(hdr) != "good" {
			t.Fatalf("unary %d: %v, served by %q", i, err, servedBy(hdr))
		}
		// The messages sent to the target that failed are sent again.
		cs, err := c.StreamingInputCall(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, size := range []int{3, 4} {
			if err := cs.Send(&testpb.StreamingInputCallRequest{Payload: &testpb.Payload{Body: make([]byte, size)}}); err != nil {
				t.Fatal(err)
			}
		}
		if sum, err := cs.CloseAndRecv(); err != nil || sum.GetAggregatedPayloadSize() != 7 {
			t.Fatalf("client stream %d: %v %v", i, sum, err)
		}
	}
	failed := 0
	sctx := metadata.AppendToOutgoingContext(ctx, "x-pool", "stubborn")
	for range 4 {
		var trailer metadata.MD
		_, err := c.UnaryCall(sctx, &testpb.SimpleRequest{}, grpc.Trailer(&trailer))
		if err == nil {
			continue
		}
		failed++
		if status.Code(err) != codes.Unavailable || strings.Join(trailer.Get("grpc-retry-pushback-ms"), "") != "-1" {
			t.Errorf("a call the target forbade retrying: %v, trailer %v", err, trailer)
		}
	}
	if failed == 0 {
		t.Error("every call to the pool whose target pushes back with -1 succeeded: the gateway retried them anyway")
	}

	// The calls' stories: 8 to the flaky pool, 4 to the stubborn one.
	stories := map[string]int{}
	for range 12 {
		var r callstore.Record
		select {
		case r = <-calls:
		case <-time.After(10 * time.Second):
			t.Fatal("a call has no record")
		}
		var story []string
		for _, s := range r.Steps {
			who := "good"
			if s.Target != good {
				who = "flaky"
			}
			story = append(story, fmt.Sprintf("%s %s %d %s (%s)", s.Kind, who, s.Status, s.Outcome, s.Reason))
		}
		if r.Status == 200 && (r.BytesIn < 5 || r.BytesOut < 5) { // a message's frame head is 5 bytes
			t.Errorf("%s: %d bytes in, %d out", r.Route, r.BytesIn, r.BytesOut)
		}
		if r.Attempts != len(r.Steps) {
			t.Errorf("%s: %d attempts, %d steps: %v", r.Route, r.Attempts, len(r.Steps), story)
		}
		stories[fmt.Sprintf("%s %d: %s", r.Route, r.Status, strings.Join(story, "; "))]++
	}
	retried := "flaky 200: attempt flaky 503 status (UNAVAILABLE, pushback 10ms); attempt good 200 ok (OK)"
	refused := "stubborn 503: attempt flaky 503 status (UNAVAILABLE, pushback: no retry)"
	if stories[retried] == 0 || stories[refused] != failed {
		t.Errorf("stories of the calls: %v", stories)
	}
}

// TestGRPCRecordSplitsTheLatency: a streaming call's record tells the
// time to its response's head apart from the whole call, which goes on
// while the target pauses 30ms before its second message (the head comes
// with the first); the upstream share is the attempt's, up to the head.
func TestGRPCRecordSplitsTheLatency(t *testing.T) {
	t.Parallel()
	_, a := demo(t, "a")
	calls := make(keptCalls, 1)
	_, c := grpcGateway(t, `  upstreams: [{name: a, targets: [{address: `+a+`}], grpc: {}}]
  routes: [{name: rpc, match: {path: {prefix: /grpc.testing.TestService}}, upstream: a}]
`, Options{Calls: calls})
	ss, err := c.StreamingOutputCall(callCtx(t), &testpb.StreamingOutputCallRequest{ResponseParameters: []*testpb.ResponseParameters{{Size: 1}, {Size: 1, IntervalUs: 30_000}}})
	if err != nil {
		t.Fatal(err)
	}
	for n := 0; ; n++ {
		if _, err := ss.Recv(); err == io.EOF {
			if n != 2 {
				t.Fatalf("%d messages", n)
			}
			break
		} else if err != nil {
			t.Fatal(err)
		}
	}
	r := calls.next(t, "/grpc.testing.TestService/StreamingOutputCall")
	if r.TTFB <= 0 || r.TTFB >= r.Latency || r.Upstream <= 0 || r.Upstream > r.TTFB {
		t.Errorf("latency %s, first byte %s, upstream %s: the head came before the 30ms pause", r.Latency, r.TTFB, r.Upstream)
	}
}

// TestGRPCDeadlines: the target sees the call's deadline, capped by the
// route's timeout.
func TestGRPCDeadlines(t *testing.T) {
	t.Parallel()
	_, a := demo(t, "a")
	_, c := grpcGateway(t, `  upstreams:
    - name: svc
      targets: [{address: `+a+`}]
      grpc: {}
  routes:
    - name: svc
      match: {path: {prefix: /grpc.testing.TestService}}
      upstream: svc
      timeout: 2s
`, Options{})
	left := func(d time.Duration) int {
		ctx := callCtx(t)
		if d > 0 {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, d)
			defer cancel()
		}
		var hdr metadata.MD
		if _, err := c.UnaryCall(ctx, &testpb.SimpleRequest{}, grpc.Header(&hdr)); err != nil {
			t.Fatal(err)
		}
		v := hdr.Get("x-deadline-ms")
		if len(v) != 1 {
			t.Fatalf("the target saw no deadline (timeout %s)", d)
		}
		n, _ := strconv.Atoi(v[0])
		return n
	}
	if n := left(0); n <= 0 || n > 2000 {
		t.Errorf("no client deadline: the target saw %dms, want the route's 2s at most", n)
	}
	if n := left(time.Minute); n <= 0 || n > 2000 {
		t.Errorf("a minute's deadline: the target saw %dms, want the route's 2s at most", n)
	}
	if n := left(time.Second); n <= 0 || n > 1000 {
		t.Errorf("a second's deadline: the target saw %dms, want 1s at most", n)
	}
	// A call still running at the route's timeout ends DEADLINE_EXCEEDED.
	ss, err := c.StreamingOutputCall(callCtx(t), &testpb.StreamingOutputCallRequest{ResponseParameters: []*testpb.ResponseParameters{{Size: 1, IntervalUs: 60_000_000}}})
	if err == nil {
		_, err = ss.Recv()
	}
	if status.Code(err) != codes.DeadlineExceeded {
		t.Errorf("a call past the route's timeout: %v", err)
	}
}

// TestGRPCHealthCheckEjects: a target whose gRPC health service says
// NOT_SERVING is taken out of the pool by the active checks, and comes
// back when it serves again.
func TestGRPCHealthCheckEjects(t *testing.T) {
	t.Parallel()
	_, a := demo(t, "a")
	sb, b := demo(t, "b")
	clk := clock.NewFake(time.Now())
	g, c := grpcGateway(t, `  upstreams:
    - name: svc
      targets: [{address: `+a+`}, {address: `+b+`}]
      grpc: {}
      health:
        active: {interval: 1s, healthyThreshold: 1, unhealthyThreshold: 1, grpcService: grpc.testing.TestService}
  routes:
    - name: svc
      match: {path: {prefix: /grpc.testing.TestService}}
      upstream: svc
`, Options{Clock: clk})
	ctx := callCtx(t)
	seen := func() map[string]int {
		out := map[string]int{}
		for range 6 {
			var hdr metadata.MD
			if _, err := c.UnaryCall(ctx, &testpb.SimpleRequest{}, grpc.Header(&hdr)); err != nil {
				t.Fatal(err)
			}
			out[servedBy(hdr)]++
		}
		return out
	}
	if s := seen(); s["a"] == 0 || s["b"] == 0 {
		t.Fatalf("both targets healthy: calls went to %v", s)
	}
	bUp := func() bool { return g.state.Load().pools["svc"].targets[1].activeUp.Load() }
	// Each step of the fake clock lets the loop probe once more; the
	// probes themselves go over the network.
	step := func(until func() bool) {
		for deadline := time.Now().Add(10 * time.Second); !until(); {
			if time.Now().After(deadline) {
				t.Fatal("the health check did not change the target's state")
			}
			clk.Advance(time.Second)
			time.Sleep(5 * time.Millisecond)
		}
	}
	sb.SetServing(false)
	step(func() bool { return !bUp() })
	if s := seen(); s["b"] != 0 || s["a"] != 6 {
		t.Errorf("b NOT_SERVING: calls went to %v, want all to a", s)
	}
	sb.SetServing(true)
	step(bUp)
	if s := seen(); s["b"] == 0 {
		t.Errorf("b SERVING again: calls went to %v", s)
	}
}

// TestGRPCOverTLSToTargets: a pool with tls: true reaches its targets
// over TLS, checked against the pool's CA.
func TestGRPCOverTLSToTargets(t *testing.T) {
	t.Parallel()
	ca, keyFile, _ := selfSigned(t)
	cert, err := tls.LoadX509KeyPair(ca, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	_, a := demo(t, "secure", grpc.Creds(credentials.NewTLS(&tls.Config{Certificates: []tls.Certificate{cert}})))
	_, c := grpcGateway(t, `  upstreams:
    - name: svc
      targets: [{address: `+a+`}]
      grpc: {tls: true, caFile: `+ca+`}
  routes:
    - name: svc
      match: {path: {prefix: /grpc.testing.TestService}}
      upstream: svc
`, Options{})
	var hdr metadata.MD
	if _, err := c.UnaryCall(callCtx(t), &testpb.SimpleRequest{ResponseSize: 3}, grpc.Header(&hdr)); err != nil || servedBy(hdr) != "secure" {
		t.Fatalf("over TLS: %v, served by %q", err, servedBy(hdr))
	}
}

// TestGRPCRouteNeedsHTTP2: an HTTP/1.1 request to a gRPC route is told
// why it is refused.
func TestGRPCRouteNeedsHTTP2(t *testing.T) {
	t.Parallel()
	_, a := demo(t, "a")
	_, base := startGateway(t, `  upstreams:
    - name: svc
      targets: [{address: `+a+`}]
      grpc: {}
  routes:
    - name: svc
      upstream: svc
`, Options{})
	resp, err := http.Post(base+"/grpc.testing.TestService/UnaryCall", "application/grpc", strings.NewReader(""))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusHTTPVersionNotSupported || !strings.Contains(string(body), ReasonGRPCNeedsHTTP2) {
		t.Errorf("HTTP/1.1 to a gRPC route: %d %s", resp.StatusCode, body)
	}
}

func TestGRPCConfigErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ spec, want string }{
		{"  upstreams:\n    - {name: u, targets: [{address: 127.0.0.1:1}], grpc: {caFile: x.pem}}\n  routes:\n    - {name: r, upstream: u}\n", "need tls: true"},
		{"  upstreams:\n    - {name: u, targets: [{address: 127.0.0.1:1}], grpc: {tls: true, caFile: /nonexistent.pem}}\n  routes:\n    - {name: r, upstream: u}\n", "grpc caFile"},
		{"  upstreams:\n    - {name: u, targets: [{address: 127.0.0.1:1}], grpc: {}, health: {active: {path: /healthz}}}\n  routes:\n    - {name: r, upstream: u}\n", "give grpcService"},
		{"  upstreams:\n    - {name: u, targets: [{address: 127.0.0.1:1}], health: {active: {grpcService: x}}}\n  routes:\n    - {name: r, upstream: u}\n", "is for gRPC pools"},
		{"  upstreams:\n    - {name: u, targets: [{address: 127.0.0.1:1}], grpc: {}}\n  routes:\n    - {name: r, upstream: u, hedge: {delay: 10ms}}\n", "hedging them is not supported"},
		{"  upstreams:\n    - {name: u, targets: [{address: 127.0.0.1:1}], grpc: {}}\n  routes:\n    - {name: r, upstream: u, retry: {retryOn: [unavailble]}}\n", `unknown retry condition "unavailble"`},
	} {
		doc := "kind: Gateway\nversion: relia/v1\nspec:\n  listeners: [{name: main, address: 127.0.0.1:0}]\n" + tc.spec
		_, err := Parse("g.yaml", []byte(doc))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.spec, err, tc.want)
		}
	}
}

func TestGRPCTimeoutHeader(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		d    time.Duration
		want string
	}{{0, "0n"}, {time.Second, "1000000u"}, {1500 * time.Millisecond, "1500000u"}, {3 * time.Minute, "180000m"}, {time.Nanosecond, "1n"}} {
		got := formatGRPCTimeout(tc.d)
		if got != tc.want {
			t.Errorf("formatGRPCTimeout(%s) = %s, want %s", tc.d, got, tc.want)
		}
		if back, ok := parseGRPCTimeout(got); !ok || back < tc.d {
			t.Errorf("parseGRPCTimeout(%s) = %s %v", got, back, ok)
		}
	}
	if d, ok := parseGRPCTimeout("99999999H"); !ok || d < 24*time.Hour {
		t.Errorf("parseGRPCTimeout(99999999H) = %s %v, want a long deadline", d, ok)
	}
	for _, bad := range []string{"", "5", "123456789S", "10x", "-5S", "+5S", " 5S"} {
		if _, ok := parseGRPCTimeout(bad); ok {
			t.Errorf("parseGRPCTimeout(%q) accepted", bad)
		}
	}
}

// FuzzGRPCTimeout: a client's grpc-timeout header, whatever it holds,
// is refused or read as a deadline that is never negative, and what the
// gateway sends on reads back no shorter than what it meant.
func FuzzGRPCTimeout(f *testing.F) {
	for _, s := range []string{"1S", "99999999H", "0n", "+5S", "12345678m", "5", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		d, ok := parseGRPCTimeout(v)
		if !ok {
			return
		}
		if d < 0 {
			t.Fatalf("parseGRPCTimeout(%q) = %s: negative", v, d)
		}
		out := formatGRPCTimeout(d)
		back, ok := parseGRPCTimeout(out)
		if !ok || back < d {
			t.Fatalf("%q -> %s -> %q -> %s %v", v, d, out, back, ok)
		}
	})
}
