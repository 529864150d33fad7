package grpcload_test

import (
	"context"
	"net"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	testpb "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/reflection"
	rpbalpha "google.golang.org/grpc/reflection/grpc_reflection_v1alpha"

	"github.com/relia-dev/relia/grpcload"
	"github.com/relia-dev/relia/internal/grpcdemo"
	"github.com/relia-dev/relia/outcome"
)

// serve starts the demo service on a loopback port of its own and
// returns a connection to it.
func serve(t *testing.T, o grpcdemo.Options) *grpc.ClientConn {
	t.Helper()
	srv, addr, err := grpcdemo.Serve(o, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Stop)
	return dial(t, addr)
}

func dial(t *testing.T, addr string) *grpc.ClientConn {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return c
}

// schemas returns the demo's schema from reflection and from the proto
// file, so every test runs against both sources.
func schemas(t *testing.T, conn *grpc.ClientConn) map[string]*grpcload.Schema {
	t.Helper()
	refl, err := grpcload.Reflect(ctx(t), conn)
	if err != nil {
		t.Fatal(err)
	}
	file, err := grpcload.ParseProtoFiles(ctx(t), []string{"../internal/grpcdemo"}, "testservice.proto")
	if err != nil {
		t.Fatal(err)
	}
	return map[string]*grpcload.Schema{"reflection": refl, "proto file": file}
}

func call(t *testing.T, s *grpcload.Schema, method string, msgs ...string) *grpcload.Call {
	t.Helper()
	md, err := s.Method(method)
	if err != nil {
		t.Fatal(err)
	}
	c, err := grpcload.NewCall(md, msgs...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestEveryKindOfCall(t *testing.T) {
	t.Parallel()
	conn := serve(t, grpcdemo.Options{})
	for source, s := range schemas(t, conn) {
		t.Run(source, func(t *testing.T) {
			tests := []struct {
				method   string
				msgs     []string
				kind     grpcload.Kind
				received int
				last     string // the last response as JSON, when checked
			}{
				{"grpc.testing.TestService/UnaryCall", []string{`{"response_size": 10}`}, grpcload.Unary, 1, ""},
				{"/grpc.testing.TestService/StreamingOutputCall",
					[]string{`{"response_parameters": [{"size": 1}, {"size": 2}, {"size": 3}]}`}, grpcload.ServerStream, 3, ""},
				{"grpc.testing.TestService.StreamingInputCall",
					[]string{`{"payload": {"body": "AAAA"}}`, `{"payload": {"body": "AAAAAAAA"}}`}, grpcload.ClientStream, 1,
					`{"aggregatedPayloadSize":9}`},
				{"grpc.testing.TestService/FullDuplexCall",
					[]string{`{"response_parameters": [{"size": 4}, {"size": 4}]}`, `{"response_parameters": [{"size": 8}]}`},
					grpcload.BidiStream, 3, ""},
			}
			for _, tt := range tests {
				c := call(t, s, tt.method, tt.msgs...)
				c.KeepLast = true
				if c.Kind != tt.kind {
					t.Errorf("%s: kind %s, want %s", tt.method, c.Kind, tt.kind)
				}
				r := grpcload.NewInvoker(conn).Invoke(ctx(t), c)
				if r.Code != codes.OK || r.Err != nil {
					t.Fatalf("%s: %v %v", tt.method, r.Code, r.Err)
				}
				if r.Received != tt.received {
					t.Errorf("%s: received %d messages, want %d", tt.method, r.Received, tt.received)
				}
				if r.BytesOut <= int64(5*len(tt.msgs)) || r.BytesIn < int64(5*tt.received) {
					t.Errorf("%s: bytes out %d, in %d", tt.method, r.BytesOut, r.BytesIn)
				}
				if tt.last != "" {
					js, err := grpcload.DecodeJSON(c.Method.Output(), r.Last)
					if err != nil {
						t.Fatal(err)
					}
					if got := strings.ReplaceAll(string(js), " ", ""); got != tt.last {
						t.Errorf("%s: last response %s, want %s", tt.method, got, tt.last)
					}
				}
			}
		})
	}
}

func TestStatusCodesAndClasses(t *testing.T) {
	t.Parallel()
	conn := serve(t, grpcdemo.Options{})
	s := schemas(t, conn)["reflection"]
	for _, tt := range []struct {
		code     int
		want     codes.Code
		class    outcome.Class
		http     int
		expected []codes.Code
	}{
		{0, codes.OK, outcome.ClassOK, 200, nil},
		{14, codes.Unavailable, outcome.ClassStatus, 503, nil}, // a server that sheds load answered
		{8, codes.ResourceExhausted, outcome.ClassStatus, 429, nil},
		{5, codes.NotFound, outcome.ClassOK, 404, []codes.Code{codes.NotFound}},
		{13, codes.Internal, outcome.ClassStatus, 500, []codes.Code{codes.NotFound}},
	} {
		c := call(t, s, "grpc.testing.TestService/UnaryCall", `{"response_status": {"code": `+itoa(tt.code)+`, "message": "told to"}}`)
		r := grpcload.NewInvoker(conn).Invoke(ctx(t), c)
		if r.Code != tt.want {
			t.Errorf("code %d: got %v", tt.code, r.Code)
		}
		if got := grpcload.Class(r.Code, r.Err, tt.expected); got != tt.class {
			t.Errorf("code %v: class %s, want %s", r.Code, got, tt.class)
		}
		if got := grpcload.HTTPStatus(r.Code); got != tt.http {
			t.Errorf("code %v: HTTP status %d, want %d", r.Code, got, tt.http)
		}
		if (r.Err == nil) != (r.Code == codes.OK) {
			t.Errorf("code %v: err %v", r.Code, r.Err)
		}
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

func TestNoServerIsRefusedNotAStatus(t *testing.T) {
	t.Parallel()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := lis.Addr().String()
	lis.Close()
	s, err := grpcload.ParseProtoFiles(ctx(t), []string{"../internal/grpcdemo"}, "testservice.proto")
	if err != nil {
		t.Fatal(err)
	}
	c := call(t, s, "grpc.testing.TestService/EmptyCall")
	r := grpcload.NewInvoker(dial(t, addr)).Invoke(ctx(t), c)
	if r.Code != codes.Unavailable {
		t.Fatalf("code %v (%v), want UNAVAILABLE", r.Code, r.Err)
	}
	if got := grpcload.Class(r.Code, r.Err, nil); got != outcome.ClassRefused {
		t.Errorf("class %s (%v), want refused", got, r.Err)
	}
}

func TestDeadlineIsSentAndTimesOut(t *testing.T) {
	t.Parallel()
	conn := serve(t, grpcdemo.Options{})
	s := schemas(t, conn)["proto file"]
	// The server would answer after an hour; the call's deadline ends it.
	c := call(t, s, "grpc.testing.TestService/StreamingOutputCall", `{"response_parameters": [{"size": 1, "interval_us": 2000000000}]}`)
	c.Timeout = 50 * time.Millisecond
	r := grpcload.NewInvoker(conn).Invoke(ctx(t), c)
	if r.Code != codes.DeadlineExceeded {
		t.Fatalf("code %v (%v), want DEADLINE_EXCEEDED", r.Code, r.Err)
	}
	if got := grpcload.Class(r.Code, r.Err, nil); got != outcome.ClassTimeout {
		t.Errorf("class %s, want timeout", got)
	}
}

func TestMetadataIsSent(t *testing.T) {
	t.Parallel()
	conn := serve(t, grpcdemo.Options{RequireMetadata: map[string]string{"x-user": "alice"}})
	s := schemas(t, conn)["proto file"]
	c := call(t, s, "grpc.testing.TestService/UnaryCall", `{}`)
	if r := grpcload.NewInvoker(conn).Invoke(ctx(t), c); r.Code != codes.Unauthenticated {
		t.Fatalf("without metadata: %v, want UNAUTHENTICATED", r.Code)
	}
	c.Metadata = metadata.Pairs("x-user", "alice")
	if r := grpcload.NewInvoker(conn).Invoke(ctx(t), c); r.Code != codes.OK {
		t.Fatalf("with metadata: %v %v", r.Code, r.Err)
	}
}

func TestBadInputSaysWhat(t *testing.T) {
	t.Parallel()
	s, err := grpcload.ParseProtoFiles(ctx(t), []string{"../internal/grpcdemo"}, "testservice.proto")
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct{ method, msg, want string }{
		{"grpc.testing.TestService/UnaryCall", `{"response_sise": 1}`, "response_sise"},
		{"grpc.testing.TestService/UnaryCall", `{"response_size": "x"}`, "field responseSize"},
		{"grpc.testing.Nope/UnaryCall", `{}`, "no service grpc.testing.Nope"},
		{"grpc.testing.TestService/Nope", `{}`, "has no method Nope (methods: EmptyCall, UnaryCall"},
		{"UnaryCall", `{}`, "want package.Service/Method"},
	} {
		md, err := s.Method(tt.method)
		if err == nil {
			_, err = grpcload.NewCall(md, tt.msg)
		}
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s %s: error %v, want it to say %q", tt.method, tt.msg, err, tt.want)
		}
	}
	_, err = grpcload.ParseProtoFiles(ctx(t), []string{"../internal/grpcdemo"}, "missing.proto")
	if err == nil || !strings.Contains(err.Error(), "missing.proto") {
		t.Errorf("missing file: %v", err)
	}
}

func TestCodeNames(t *testing.T) {
	t.Parallel()
	for c := codes.OK; c <= codes.Unauthenticated; c++ {
		name := grpcload.CodeName(c)
		if got, ok := grpcload.ParseCode(name); !ok || got != c {
			t.Errorf("ParseCode(%q) = %v, %v", name, got, ok)
		}
		if got, ok := grpcload.ParseCode(strings.ToLower(name)); !ok || got != c {
			t.Errorf("ParseCode(%q) = %v, %v", strings.ToLower(name), got, ok)
		}
	}
	if c, ok := grpcload.ParseCode("14"); !ok || c != codes.Unavailable {
		t.Errorf("ParseCode(14) = %v %v", c, ok)
	}
	for _, bad := range []string{"", "17", "UNAVAIL", "-1"} {
		if _, ok := grpcload.ParseCode(bad); ok {
			t.Errorf("ParseCode(%q) accepted", bad)
		}
	}
}

func FuzzParseCode(f *testing.F) {
	for _, s := range []string{"OK", "unavailable", "14", "CANCELED", "x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, ok := grpcload.ParseCode(s)
		if ok && c > codes.Unauthenticated {
			t.Fatalf("ParseCode(%q) = %v beyond the specification", s, c)
		}
		if ok {
			if back, ok2 := grpcload.ParseCode(grpcload.CodeName(c)); !ok2 || back != c {
				t.Fatalf("round trip of %q: %v", s, back)
			}
		}
	})
}

// TestReflectionV1alpha: a server that only speaks the older reflection
// service is asked through it.
func TestReflectionV1alpha(t *testing.T) {
	t.Parallel()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	testpb.RegisterTestServiceServer(srv, testpb.UnimplementedTestServiceServer{})
	rpbalpha.RegisterServerReflectionServer(srv, reflection.NewServer(reflection.ServerOptions{Services: srv}))
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	s, err := grpcload.Reflect(ctx(t), dial(t, lis.Addr().String()))
	if err != nil {
		t.Fatal(err)
	}
	if got := s.Services(); !slices.Contains(got, "grpc.testing.TestService") {
		t.Errorf("services %q", got)
	}
	if _, err := s.Method("grpc.testing.TestService/FullDuplexCall"); err != nil {
		t.Error(err)
	}
}
