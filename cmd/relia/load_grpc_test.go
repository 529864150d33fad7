package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/relia-dev/relia/internal/grpcdemo"
)

func TestLoadGRPCOneLiner(t *testing.T) {
	t.Parallel()
	srv, addr, err := grpcdemo.Serve(grpcdemo.Options{}, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Stop)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "ts.proto"), grpcdemo.Proto, 0o644); err != nil {
		t.Fatal(err)
	}
	unary := "grpc://" + addr + "/grpc.testing.TestService/UnaryCall"
	for _, tc := range []struct {
		name string
		args []string
		code int
		want string // in stdout for passes, stderr otherwise
	}{
		{"reflection", []string{unary, "-d", `{"response_size": 10}`, "--vus", "2", "--duration", "300ms", "--threshold", "http_req_failed:rate==0"}, exitPass, "grpc.testing.TestService/UnaryCall"},
		{"proto file, server streaming", []string{"grpc://" + addr + "/grpc.testing.TestService/StreamingOutputCall", "-d", `{"response_parameters": [{"size": 1}]}`,
			"--proto", "ts.proto", "--import-path", dir, "--vus", "1", "--duration", "200ms"}, exitPass, "statuses: 200:"},
		{"status failures", []string{unary, "-d", `{"response_status": {"code": 8}}`, "--vus", "1", "--duration", "200ms", "--threshold", "http_req_failed:rate<0.5"}, exitFailed, "http_req_failed rate<0.5"},
		{"no such method", []string{"grpc://" + addr + "/grpc.testing.TestService/Nope", "--vus", "1"}, exitBadInput, "has no method Nope"},
		{"bad message", []string{unary, "-d", `{"nope": 1}`, "--vus", "1"}, exitBadInput, `unknown field "nope"`},
		{"no server", []string{"grpc://127.0.0.1:1/a.B/C", "--vus", "1"}, exitBadInput, "server reflection"},
		{"no port", []string{"grpc://127.0.0.1/a.B/C", "--vus", "1"}, exitBadInput, "needs a port"},
		{"proto on http", []string{"http://" + addr + "/", "--vus", "1", "--proto", "x.proto"}, exitBadInput, "apply to a grpc:// URL"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			code, out, errOut := runCLI(t, append([]string{"load"}, tc.args...)...)
			where := errOut
			if tc.code == exitPass {
				where = out
			}
			if code != tc.code || !strings.Contains(where, tc.want) {
				t.Errorf("exit %d, want %d with %q\nstdout:\n%s\nstderr:\n%s", code, tc.code, tc.want, out, errOut)
			}
		})
	}
}
