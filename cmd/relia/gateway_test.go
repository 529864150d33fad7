package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestGatewayValidate(t *testing.T) {
	t.Parallel()
	example := filepath.Join("..", "..", "examples", "gateway.yaml")
	code, out, errOut := runCLI(t, "gateway", "validate", example)
	if code != exitPass || !strings.Contains(out, "ok: 1 listeners, 2 upstreams, 2 routes") {
		t.Fatalf("validate example: exit %d, out %q, stderr %q", code, out, errOut)
	}
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	os.WriteFile(bad, []byte("kind: Gateway\nversion: relia/v1\nspec:\n  listeners: [{address: \"127.0.0.1:1\"}]\n  upstreams: [{name: u, targets: [{address: \"127.0.0.1:2\"}]}]\n  routes: [{name: r, upstream: x}]\n"), 0o644)
	code, _, errOut = runCLI(t, "gateway", "validate", bad)
	if code != exitBadInput || !strings.Contains(errOut, bad+`:6:32: spec.routes[0].upstream: unknown upstream "x"`) {
		t.Errorf("validate of a bad config: exit %d, stderr %q", code, errOut)
	}
	if code, _, _ := runCLI(t, "gateway"); code != exitBadInput {
		t.Errorf("gateway without --config: exit %d, want %d", code, exitBadInput)
	}
}

func TestGatewaySchema(t *testing.T) {
	t.Parallel()
	code, out, _ := runCLI(t, "gateway", "schema")
	want, err := os.ReadFile(filepath.Join("..", "..", "docs", "schema", "gateway.json"))
	if err != nil {
		t.Fatal(err)
	}
	if code != exitPass || out != string(want) {
		t.Errorf("schema: exit %d, output differs from docs/schema/gateway.json", code)
	}
}
