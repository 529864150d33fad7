package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestValidate(t *testing.T) {
	t.Parallel()
	gw, err := os.ReadFile(filepath.Join("..", "..", "examples", "gateway.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	slo, err := os.ReadFile(filepath.Join("..", "..", "slo", "testdata", "availability.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	mixed := write("mixed.yaml", string(slo)+"\n---\n"+string(gw))
	sloth := filepath.Join("..", "..", "slo", "testdata", "sloth.yaml")
	badField := write("bad-field.yaml", strings.Replace(string(gw), "kind: Gateway\n", "kind: Gateway\nspek: {}\n", 1))
	// The inserted field sits on the line after kind:.
	spekAt := fmt.Sprintf("bad-field.yaml:%d:1", strings.Count(string(gw)[:strings.Index(string(gw), "kind: Gateway\n")], "\n")+2)
	unknownKind := write("unknown.yaml", "kind: Nope\nversion: relia/v1\n")
	noKind := write("nokind.yaml", "version: relia/v1\nspec: {}\n")
	empty := write("empty.yaml", "")
	keys := filepath.Join("..", "..", "examples", "api-management", "keys.yaml")
	badKeys := write("keys.yaml", "kind: APIKeys\nversion: relia/v1\nspec:\n  keys:\n    - {id: a, tenant: t, routes: [\"*\"], sha256: nothex}\n")
	scenario := filepath.Join("..", "..", "examples", "scenario.yaml")
	badTemplate := write("template.yaml", "kind: Scenario\nversion: relia/v1\nspec:\n  baseURL: http://127.0.0.1:1\n  requests: [{path: '/x/{{nope}}'}]\n  load: {rate: 5, duration: 1s}\n")

	tests := []struct {
		name    string
		files   []string
		code    int
		wantOut string
		wantErr []string
	}{
		{"mixed kinds in one file", []string{mixed}, exitPass, "mixed.yaml: ok: SLO, Gateway", nil},
		{"an imported SLO format", []string{sloth}, exitPass, "sloth.yaml: ok: SLO", nil},
		{"Sloth's Kubernetes form", []string{filepath.Join("..", "..", "slo", "testdata", "corpus", "sloth", "k8s-multifile.yml")}, exitPass, "k8s-multifile.yml: ok: SLO", nil},
		{"an unknown field names its place", []string{badField}, exitBadInput, "", []string{spekAt, "spek: unknown field"}},
		{"an unknown kind", []string{unknownKind}, exitBadInput, "", []string{"unknown.yaml:1:7", `unknown kind "Nope"`, "Experiment, Gateway"}},
		{"a missing kind", []string{noKind}, exitBadInput, "", []string{"nokind.yaml", "kind: missing"}},
		{"a scenario", []string{scenario}, exitPass, "scenario.yaml: ok: Scenario", nil},
		{"a scenario is built, not only decoded", []string{badTemplate}, exitBadInput, "", []string{"template.yaml:5:", `unknown variable "nope"`}},
		{"an API key file", []string{keys}, exitPass, "keys.yaml: ok: APIKeys", nil},
		{"an API key file is checked entry by entry", []string{badKeys}, exitBadInput, "", []string{"keys.yaml:5:", "sha256"}},
		{"an empty file", []string{empty}, exitBadInput, "", []string{"empty.yaml"}},
		{"a missing file", []string{filepath.Join(dir, "none.yaml")}, exitBadInput, "", []string{"none.yaml"}},
		{"every file is reported", []string{mixed, unknownKind, badField}, exitBadInput, "mixed.yaml: ok", []string{"unknown.yaml", "bad-field.yaml"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			code, out, errOut := runCLI(t, append([]string{"validate"}, tt.files...)...)
			if code != tt.code {
				t.Fatalf("exit %d, want %d; stdout %q, stderr %q", code, tt.code, out, errOut)
			}
			if !strings.Contains(out, tt.wantOut) {
				t.Errorf("stdout %q lacks %q", out, tt.wantOut)
			}
			for _, w := range tt.wantErr {
				if !strings.Contains(errOut, w) {
					t.Errorf("stderr %q lacks %q", errOut, w)
				}
			}
		})
	}
}
