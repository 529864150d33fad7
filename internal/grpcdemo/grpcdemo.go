// Package grpcdemo is a gRPC service to send load to, proxy and break:
// gRPC's own interoperability test service (grpc.testing.TestService)
// served by grpc-go with server reflection and the standard health
// service, so that relia's tests, examples and docs reach a real gRPC
// server with every kind of call.
//
//	srv := grpcdemo.NewServer(grpcdemo.Options{})
//	go srv.Serve(lis)
//	defer srv.Stop()
//
// What each method does (the request's fields drive it):
//
//   - EmptyCall: answers at once.
//   - UnaryCall: answers with a payload of response_size bytes, or with
//     the status in response_status ({"code": 14, "message": "..."}).
//   - StreamingOutputCall (server streaming): one response per
//     response_parameters entry, each of its size after its interval_us,
//     then response_status if set.
//   - StreamingInputCall (client streaming): the total payload size of
//     the requests, once the client closes its side.
//   - FullDuplexCall (bidirectional): answers each request as it comes,
//     as StreamingOutputCall does.
//   - HalfDuplexCall: reads every request, then answers them in order.
package grpcdemo

import (
	"context"
	_ "embed"
	"errors"
	"io"
	"net"
	"strconv"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	testpb "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/reflection"
	"google.golang.org/grpc/status"
)

// ServiceName is the full name of the demo's service.
const ServiceName = "grpc.testing.TestService"

// Proto is the part of the service's definition that relia's tests,
// examples and docs call, as a .proto file (testservice.proto), written
// for relia from the service's wire format: the same package, names and
// field numbers, so a client built from it talks to the real service.
//
//go:embed testservice.proto
var Proto []byte

// Options configure the demo server. The zero value serves everything.
type Options struct {
	// RequireMetadata lists metadata every call must carry with these
	// values; a call without them fails UNAUTHENTICATED.
	RequireMetadata map[string]string
	// Name is sent back in every call's "x-served-by" header, so that a
	// test behind a balancer can tell the servers apart. A call with a
	// deadline gets "x-deadline-ms" back too: what was left of it when
	// the call arrived.
	Name string
	// ServerOptions are passed to grpc.NewServer.
	ServerOptions []grpc.ServerOption
}

// Server is the demo's grpc.Server with its health service, whose status
// a test may change (SetServing).
type Server struct {
	*grpc.Server
	Health *health.Server
}

// NewServer returns a server with the test service, reflection and the
// health service registered; the whole server and the test service
// report SERVING.
func NewServer(o Options) *Server {
	s := grpc.NewServer(o.ServerOptions...)
	testpb.RegisterTestServiceServer(s, &service{o: o})
	h := health.NewServer()
	healthpb.RegisterHealthServer(s, h)
	h.SetServingStatus(ServiceName, healthpb.HealthCheckResponse_SERVING)
	reflection.Register(s)
	return &Server{Server: s, Health: h}
}

// Serve listens on addr ("127.0.0.1:0" for a free port) and serves the
// demo there until Stop; it returns the address it listens on.
func Serve(o Options, addr string) (*Server, string, error) {
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, "", err
	}
	s := NewServer(o)
	go func() { _ = s.Serve(lis) }() // ends with Stop
	return s, lis.Addr().String(), nil
}

// SetServing sets the health status of the whole server and of the test
// service: SERVING when serving is true, NOT_SERVING otherwise.
func (s *Server) SetServing(serving bool) {
	st := healthpb.HealthCheckResponse_SERVING
	if !serving {
		st = healthpb.HealthCheckResponse_NOT_SERVING
	}
	s.Health.SetServingStatus("", st)
	s.Health.SetServingStatus(ServiceName, st)
}

type service struct {
	testpb.UnimplementedTestServiceServer
	o Options
}

// admit checks the required metadata and sends the server's name.
func (s *service) admit(ctx context.Context) error {
	if len(s.o.RequireMetadata) > 0 {
		md, _ := metadata.FromIncomingContext(ctx)
		for k, want := range s.o.RequireMetadata {
			if got := md.Get(k); len(got) == 0 || got[0] != want {
				return status.Errorf(codes.Unauthenticated, "metadata %s: want %q", k, want)
			}
		}
	}
	var md metadata.MD
	if s.o.Name != "" {
		md = metadata.Pairs("x-served-by", s.o.Name)
	}
	if d, ok := ctx.Deadline(); ok {
		// What was left of the call's deadline when it arrived, so that
		// a test can see a proxy propagate (and cap) it.
		md = metadata.Join(md, metadata.Pairs("x-deadline-ms", strconv.FormatInt(time.Until(d).Milliseconds(), 10)))
	}
	if md != nil {
		_ = grpc.SetHeader(ctx, md)
	}
	return nil
}

func echoStatus(e *testpb.EchoStatus) error {
	if e == nil || e.GetCode() == 0 {
		return nil
	}
	return status.Error(codes.Code(e.GetCode()), e.GetMessage())
}

func payload(n int32) *testpb.Payload {
	return &testpb.Payload{Body: make([]byte, max(n, 0))}
}

func (s *service) EmptyCall(ctx context.Context, _ *testpb.Empty) (*testpb.Empty, error) {
	if err := s.admit(ctx); err != nil {
		return nil, err
	}
	return &testpb.Empty{}, nil
}

func (s *service) UnaryCall(ctx context.Context, req *testpb.SimpleRequest) (*testpb.SimpleResponse, error) {
	if err := s.admit(ctx); err != nil {
		return nil, err
	}
	if err := echoStatus(req.GetResponseStatus()); err != nil {
		return nil, err
	}
	return &testpb.SimpleResponse{Payload: payload(req.GetResponseSize())}, nil
}

// respond sends the responses a request asks for, each after its
// interval, and then its status.
func respond(ctx context.Context, req *testpb.StreamingOutputCallRequest, send func(*testpb.StreamingOutputCallResponse) error) error {
	for _, p := range req.GetResponseParameters() {
		if d := time.Duration(p.GetIntervalUs()) * time.Microsecond; d > 0 {
			t := time.NewTimer(d)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
				return status.FromContextError(ctx.Err()).Err()
			}
		}
		if err := send(&testpb.StreamingOutputCallResponse{Payload: payload(p.GetSize())}); err != nil {
			return err
		}
	}
	return echoStatus(req.GetResponseStatus())
}

func (s *service) StreamingOutputCall(req *testpb.StreamingOutputCallRequest, st grpc.ServerStreamingServer[testpb.StreamingOutputCallResponse]) error {
	if err := s.admit(st.Context()); err != nil {
		return err
	}
	return respond(st.Context(), req, st.Send)
}

func (s *service) StreamingInputCall(st grpc.ClientStreamingServer[testpb.StreamingInputCallRequest, testpb.StreamingInputCallResponse]) error {
	if err := s.admit(st.Context()); err != nil {
		return err
	}
	var total int32
	for {
		req, err := st.Recv()
		if errors.Is(err, io.EOF) {
			return st.SendAndClose(&testpb.StreamingInputCallResponse{AggregatedPayloadSize: total})
		}
		if err != nil {
			return err
		}
		total += int32(len(req.GetPayload().GetBody()))
	}
}

func (s *service) FullDuplexCall(st grpc.BidiStreamingServer[testpb.StreamingOutputCallRequest, testpb.StreamingOutputCallResponse]) error {
	if err := s.admit(st.Context()); err != nil {
		return err
	}
	for {
		req, err := st.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if err := respond(st.Context(), req, st.Send); err != nil {
			return err
		}
	}
}

func (s *service) HalfDuplexCall(st grpc.BidiStreamingServer[testpb.StreamingOutputCallRequest, testpb.StreamingOutputCallResponse]) error {
	if err := s.admit(st.Context()); err != nil {
		return err
	}
	var reqs []*testpb.StreamingOutputCallRequest
	for {
		req, err := st.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		reqs = append(reqs, req)
	}
	for _, req := range reqs {
		if err := respond(st.Context(), req, st.Send); err != nil {
			return err
		}
	}
	return nil
}
