package load

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/relia-dev/relia/internal/grpcdemo"
	"github.com/relia-dev/relia/outcome"
)

// grpcServer serves the demo gRPC service on a loopback port of its own.
func grpcServer(t *testing.T, o grpcdemo.Options) string {
	t.Helper()
	srv, addr, err := grpcdemo.Serve(o, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Stop)
	return addr
}

func buildScenario(t *testing.T, yaml string) *Test {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "testservice.proto"), grpcdemo.Proto, 0o644); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "scenario.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	test, err := LoadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return test
}

// grpcScenario calls all four kinds of method, with a login from setup
// carried as metadata, expected and unexpected error codes.
func grpcScenario(addr, grpcSpec, load string) string {
	return `kind: Scenario
version: relia/v1
metadata: {name: grpc}
spec:
  baseURL: grpc://` + addr + `
` + grpcSpec + `
  timeout: 5s
  vars: {user: alice}
  setup:
    name: login
    path: /grpc.testing.TestService/UnaryCall
    body: '{"response_size": 3}'
    extract: {token: $.payload.body}
  headers: {x-user: "{{user}}", x-token: "{{token}}"}
  requests:
    - name: unary
      path: /grpc.testing.TestService/UnaryCall
      body: '{"response_size": {{randInt 1 100}}}'
      checks: [{status: [200]}, {jsonPath: $.payload.body}]
    - name: server
      path: /grpc.testing.TestService/StreamingOutputCall
      body: '{"response_parameters": [{"size": 1}, {"size": 2}]}'
    - name: client
      path: /grpc.testing.TestService/StreamingInputCall
      messages: ['{"payload": {"body": "AAAA"}}', '{"payload": {"body": "AAAA"}}']
      checks: [{jsonPath: $.aggregatedPayloadSize, equals: "6"}]
    - name: bidi
      path: /grpc.testing.TestService/FullDuplexCall
      messages: ['{"response_parameters": [{"size": 1}]}', '{"response_parameters": [{"size": 1}]}']
    - name: not found on purpose
      path: /grpc.testing.TestService/UnaryCall
      body: '{"response_status": {"code": 5}}'
      expectedCodes: [NOT_FOUND]
    - name: shed
      path: /grpc.testing.TestService/UnaryCall
      body: '{"response_status": {"code": 14, "message": "shedding"}}'
` + load + `
  thresholds:
    "http_req_failed{name:shed}": ["rate==1"]
    "http_req_failed{name:unary}": ["rate==0"]
    "checks": ["rate==1"]
`
}

func TestGRPCScenarioEveryKind(t *testing.T) {
	t.Parallel()
	addr := grpcServer(t, grpcdemo.Options{RequireMetadata: map[string]string{"x-user": "alice"}})
	for _, tc := range []struct {
		name, grpc, load string
		model            Model
	}{
		{"reflection, open model", "", "  load: {rate: 120, duration: 1s, minOnTime: 0}", Open},
		{"proto file, closed model", "  grpc: {protoFiles: [testservice.proto], connections: 2}", "  load: {vus: 3, duration: 600ms}", Closed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			test := buildScenario(t, grpcScenario(addr, tc.grpc, tc.load))
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if err := test.Preflight(ctx); err != nil {
				t.Fatal(err)
			}
			res, err := test.Run(ctx, RunOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if res.Setup == nil || res.Setup.Error != "" || res.Setup.Status != 200 {
				t.Fatalf("setup: %+v", res.Setup)
			}
			if res.Model != tc.model {
				t.Errorf("model %s", res.Model)
			}
			for _, name := range []string{"unary", "server", "client", "bidi", "not found on purpose"} {
				sum := res.ByName[name].Total()
				if sum.Total == 0 || sum.ByClass[outcome.ClassOK] != sum.Total {
					t.Errorf("%s: %d calls, classes %v", name, sum.Total, sum.ByClass)
				}
			}
			shed := res.ByName["shed"].Total()
			if shed.Total == 0 || shed.ByClass[outcome.ClassStatus] != shed.Total {
				t.Errorf("shed: %d calls, classes %v", shed.Total, shed.ByClass)
			}
			codes := res.Requests.StatusCodes()
			if codes[503] != shed.Total || codes[404] == 0 || codes[200] == 0 {
				t.Errorf("statuses %v", codes)
			}
			for _, v := range res.Evaluate() {
				if !v.Passed || v.NoData {
					t.Errorf("threshold %s: %v (no data %v)", v, v.Value, v.NoData)
				}
			}
			if all := res.Requests.Total(); all.BytesIn == 0 || all.BytesOut == 0 {
				t.Errorf("bytes in %d out %d", all.BytesIn, all.BytesOut)
			}
		})
	}
}

func TestGRPCFailuresAreClassified(t *testing.T) {
	t.Parallel()
	addr := grpcServer(t, grpcdemo.Options{})
	test := buildScenario(t, `kind: Scenario
version: relia/v1
spec:
  baseURL: grpc://`+addr+`
  timeout: 50ms
  requests:
    - name: slow
      path: /grpc.testing.TestService/StreamingOutputCall
      body: '{"response_parameters": [{"size": 1, "interval_us": 2000000000}]}'
  load: {vus: 2, duration: 300ms}
`)
	res, err := test.Run(context.Background(), RunOptions{})
	if err != nil {
		t.Fatal(err)
	}
	sum := res.Requests.Total()
	if sum.Total == 0 || sum.ByClass[outcome.ClassTimeout] != sum.Total {
		t.Errorf("a call past its deadline: classes %v, want every call a timeout", sum.ByClass)
	}
}

func TestGRPCScenarioErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ req, want string }{
		{"{path: 'grpc://127.0.0.1/a.B/C'}", "needs a port"},
		{"{path: 'grpc://127.0.0.1:1/a.B/C/D'}", "want grpc://host:port/package.Service/Method"},
		{"{path: 'grpc://127.0.0.1:1/{{randInt 1 2}}/C'}", "may not hold template actions"},
		{"{path: 'grpc://127.0.0.1:1/a.B/C', method: GET}", "a gRPC call is a POST"},
		{"{path: 'grpc://127.0.0.1:1/a.B/C', body: '{}', messages: ['{}']}", "give body (one message) or messages"},
		{"{path: 'grpc://127.0.0.1:1/a.B/C', expectedCodes: [NOPE]}", `"NOPE" is not a gRPC status code`},
		{"{path: 'http://127.0.0.1:1/x', expectedCodes: [OK]}", "are for gRPC calls"},
	} {
		sc, err := ParseScenarios("s.yaml", []byte("kind: Scenario\nversion: relia/v1\nspec:\n  requests:\n    - "+tc.req+"\n  load: {rate: 1, duration: 1s}\n"))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := sc[0].Build(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.req, err, tc.want)
		}
	}
	addr := grpcServer(t, grpcdemo.Options{})
	for _, tc := range []struct{ req, want string }{
		{"{path: /grpc.testing.TestService/Nope}", "has no method Nope"},
		{"{path: /grpc.testing.TestService/UnaryCall, body: '{\"nope\": 1}'}", `unknown field "nope"`},
		{"{path: /grpc.testing.TestService/UnaryCall, messages: ['{}', '{}']}", "takes one message"},
	} {
		sc, err := ParseScenarios("s.yaml", []byte("kind: Scenario\nversion: relia/v1\nspec:\n  baseURL: grpc://"+addr+"\n  requests:\n    - "+tc.req+"\n  load: {rate: 1, duration: 1s}\n"))
		if err != nil {
			t.Fatal(err)
		}
		test, err := sc[0].Build()
		if err != nil {
			t.Fatal(err)
		}
		if err := test.Preflight(context.Background()); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.req, err, tc.want)
		}
	}
}
