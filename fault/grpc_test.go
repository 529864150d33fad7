package fault

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	testpb "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/relia-dev/relia/internal/grpcdemo"
)

// grpcThroughProxy serves the demo gRPC service behind a proxy in HTTP
// mode on s and returns a client of the service that calls through the
// proxy.
func grpcThroughProxy(t *testing.T, s *Server) testpb.TestServiceClient {
	t.Helper()
	srv, addr, err := grpcdemo.Serve(grpcdemo.Options{}, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Stop)
	info, err := s.CreateProxy(ProxyConfig{Name: "grpc", Listen: "127.0.0.1:0", Upstream: addr, Mode: "http"})
	if err != nil {
		t.Fatal(err)
	}
	conn, err := grpc.NewClient(info.Listen, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return testpb.NewTestServiceClient(conn)
}

func grpcCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), safety)
	t.Cleanup(cancel)
	return ctx
}

// TestGRPCThroughHTTPMode: every kind of gRPC call goes through a proxy
// in HTTP mode with its messages and its status, and HTTP/1.1 clients of
// the same proxy are still served.
func TestGRPCThroughHTTPMode(t *testing.T) {
	t.Parallel()
	s, _, _ := newTestServer(t, 1)
	c := grpcThroughProxy(t, s)
	ctx := grpcCtx(t)

	r, err := c.UnaryCall(ctx, &testpb.SimpleRequest{ResponseSize: 7})
	if err != nil || len(r.GetPayload().GetBody()) != 7 {
		t.Fatalf("unary: %v %v", r, err)
	}
	_, err = c.UnaryCall(ctx, &testpb.SimpleRequest{ResponseStatus: &testpb.EchoStatus{Code: int32(codes.NotFound), Message: "nothing here"}})
	if st := status.Convert(err); st.Code() != codes.NotFound || st.Message() != "nothing here" {
		t.Errorf("a status the server sent: %v", err)
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
	if n != 3 {
		t.Errorf("server stream: %d responses, want 3", n)
	}

	cs, err := c.StreamingInputCall(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, size := range []int{3, 4} {
		if err := cs.Send(&testpb.StreamingInputCallRequest{Payload: &testpb.Payload{Body: make([]byte, size)}}); err != nil {
			t.Fatal(err)
		}
	}
	sum, err := cs.CloseAndRecv()
	if err != nil || sum.GetAggregatedPayloadSize() != 7 {
		t.Errorf("client stream: %v %v", sum, err)
	}

	// Each answer is awaited before the next message goes: the proxy
	// passes a bidirectional stream on as it comes.
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
}

func TestGRPCStatusFaults(t *testing.T) {
	t.Parallel()
	s, _, _ := newTestServer(t, 1)
	c := grpcThroughProxy(t, s)
	ctx := grpcCtx(t)
	for _, tox := range []string{
		`{"name":"down","type":"http","attributes":{"path":"/grpc.testing.TestService/UnaryCall","grpc_status":"UNAVAILABLE","grpc_message":"replica gone: 100%"}}`,
		`{"name":"quota","type":"http","attributes":{"path":"/grpc.testing.TestService/StreamingInputCall","grpc_status":"RESOURCE_EXHAUSTED","grpc_retry_pushback_ms":250}}`,
		`{"name":"slow","type":"http","attributes":{"path":"/grpc.testing.TestService/Streaming*","grpc_status":"4"}}`,
	} {
		if _, err := s.AddToxic("grpc", strings.NewReader(tox)); err != nil {
			t.Fatal(err)
		}
	}
	_, err := c.UnaryCall(ctx, &testpb.SimpleRequest{})
	if st := status.Convert(err); st.Code() != codes.Unavailable || st.Message() != "replica gone: 100%" {
		t.Errorf("unary: %v, want UNAVAILABLE with the fault's message", err)
	}
	var trailer metadata.MD
	cs, err := c.StreamingInputCall(ctx, grpc.Trailer(&trailer))
	if err == nil {
		_, err = cs.CloseAndRecv()
	}
	if status.Code(err) != codes.ResourceExhausted {
		t.Errorf("client stream: %v, want RESOURCE_EXHAUSTED", err)
	}
	if got := trailer.Get("grpc-retry-pushback-ms"); len(got) != 1 || got[0] != "250" {
		t.Errorf("pushback %q, want 250", got)
	}
	ss, err := c.StreamingOutputCall(ctx, &testpb.StreamingOutputCallRequest{})
	if err == nil {
		_, err = ss.Recv()
	}
	if status.Code(err) != codes.DeadlineExceeded {
		t.Errorf("server stream: %v, want DEADLINE_EXCEEDED", err)
	}
	// A method no fault names is untouched.
	if _, err := c.EmptyCall(ctx, &testpb.Empty{}); err != nil {
		t.Errorf("empty call: %v", err)
	}
}

// TestGRPCDelayPerMethod: a delay holds the calls of the method it names
// until the fault's time has passed on the server's clock, and no other.
func TestGRPCDelayPerMethod(t *testing.T) {
	t.Parallel()
	s, clk, _ := newTestServer(t, 1)
	c := grpcThroughProxy(t, s)
	ctx := grpcCtx(t)
	if _, err := s.AddToxic("grpc", strings.NewReader(`{"name":"lag","type":"http","attributes":{"path":"/grpc.testing.TestService/UnaryCall","delay":300}}`)); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	waiters := clk.Waiters() // before the call: it may reach its timer before this line would
	go func() {
		_, err := c.UnaryCall(ctx, &testpb.SimpleRequest{})
		done <- err
	}()
	for clk.Waiters() == waiters { // the call waits on the delay's timer
		select {
		case err := <-done:
			t.Fatalf("the delayed call ended before its delay: %v", err)
		case <-time.After(time.Millisecond):
		}
	}
	if _, err := c.EmptyCall(ctx, &testpb.Empty{}); err != nil { // not delayed: ends while the other waits
		t.Fatal(err)
	}
	clk.Advance(299 * time.Millisecond)
	select {
	case err := <-done:
		t.Fatalf("the delayed call ended 1ms early: %v", err)
	case <-time.After(20 * time.Millisecond):
	}
	clk.Advance(time.Millisecond)
	if err := <-done; err != nil {
		t.Errorf("delayed call: %v", err)
	}
}

func TestGRPCFaultValidation(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ f, want string }{
		{`{"grpc_status":"NOPE"}`, `grpc_status "NOPE"`},
		{`{"grpc_status":"17"}`, `grpc_status "17"`},
		{`{"grpc_status":"OK"}`, "OK is no fault"},
		{`{"grpc_status":"UNAVAILABLE","abort_status":503}`, "not both"},
		{`{"grpc_message":"x"}`, "need grpc_status"},
	} {
		s, _, _ := newTestServer(t, 1)
		if _, err := s.CreateProxy(ProxyConfig{Name: "g", Listen: "127.0.0.1:0", Upstream: "127.0.0.1:1", Mode: "http"}); err != nil {
			t.Fatal(err)
		}
		_, err := s.AddToxic("g", strings.NewReader(`{"name":"x","type":"http","attributes":`+tc.f+`}`))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.f, err, tc.want)
		}
	}
}
