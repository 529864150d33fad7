package ai

import (
	"strings"
	"testing"
)

func TestConfigErrors(t *testing.T) {
	t.Parallel()
	base := `kind: AIGateway
version: relia/v1
metadata: {name: x}
spec:
  providers:
    - {name: a, type: openai, url: "http://127.0.0.1:1/v1", keys: [{value: k}]}
`
	for _, tc := range []struct{ extra, want string }{
		{"  routes: [{model: gpt-5-ultra, targets: [{provider: a}]}]\n", `test.yaml:7:20: spec.routes[0].model: unknown model "gpt-5-ultra"`},
		{"  routes: [{model: gpt-4o, targets: [{provider: b}]}]\n", `spec.routes[0].targets[0].provider: unknown provider "b"`},
		{"  routes: [{model: gpt-4o, targets: [{provider: a}], fallbacks: [gpt-4o-mini]}]\n", `spec.routes[0].fallbacks[0]: model "gpt-4o-mini" has no route`},
		{"  routes: [{model: gpt-4o, targets: [{provider: a}], slo: {objective: 1}}]\n", "spec.routes[0].slo.objective"},
		{"  routes: [{model: gpt-4o, targets: [{provider: a}], timeout: {total: 1s}}]\n", "unknown field"},
		{"  tenants: [{name: t, quotas: [{model: gpt-4o}]}]\n", "a quota needs at least one of"},
		{"  tenants: [{name: t, keys: [{value: k1}]}, {name: u, keys: [{value: k1}]}]\n", `key already given to tenant "t"`},
		{"  quotaStore: {redis: {address: 'x:1', onUnreachable: local}}\n", "want open or closed"},
		{"  logging: {redact: ['(']}\n", "spec.logging.redact[0]"},
	} {
		_, err := Parse("test.yaml", []byte(base+tc.extra))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.extra, err, tc.want)
		}
	}
	_, err := Parse("test.yaml", []byte(strings.Replace(base, "keys: [{value: k}]", "keys: [{value: k}], maxConnections: -1", 1)))
	if err == nil || !strings.Contains(err.Error(), "test.yaml:6:97: spec.providers[0].maxConnections: -1 is not in [1, 1048576]") {
		t.Errorf("negative maxConnections: %v", err)
	}
	_, err = Parse("test.yaml", []byte(strings.Replace(base, "type: openai", "type: cohere", 1)))
	if err == nil || !strings.Contains(err.Error(), "test.yaml:6:23: spec.providers[0].type: unknown provider type") {
		t.Errorf("unknown type: %v", err)
	}
}

func TestCatalog(t *testing.T) {
	t.Parallel()
	c := ShippedCatalog()
	m, ok := c.Lookup("claude-3-5-haiku-20241022")
	if !ok || m.Name != "claude-3-5-haiku-latest" || m.Providers["bedrock"] == "" {
		t.Fatalf("alias lookup: %+v %v", m, ok)
	}
	// 1M input tokens at $0.80, 1M output at $4, 0.5M of the input cached at $0.08.
	if got := m.Price.Cost(Usage{InputTokens: 1_000_000, OutputTokens: 1_000_000, CachedTokens: 500_000}); got < 4.439 || got > 4.441 {
		t.Errorf("cost %v, want 4.44", got)
	}
	c, err := ParseModels("mine.yaml", []byte(`kind: Models
version: relia/v1
metadata: {name: mine}
spec:
  models:
    - {name: gpt-4o-mini, aliases: [fast], price: {input: 1, output: 2}}
    - {name: local-llama, contextWindow: 8192}
`))
	if err != nil {
		t.Fatal(err)
	}
	if m, _ := c.Lookup("fast"); m == nil || m.Price.Input != 1 {
		t.Errorf("an override: %+v", m)
	}
	if _, ok := c.Lookup("local-llama"); !ok || len(c.Models()) != len(ShippedCatalog().Models())+1 {
		t.Errorf("an addition: %d models", len(c.Models()))
	}
	_, err = ParseModels("bad.yaml", []byte("kind: Models\nversion: relia/v1\nmetadata: {name: b}\nspec:\n  models:\n    - {name: x, aliases: [gpt-4o]}\n"))
	if err == nil || !strings.Contains(err.Error(), `bad.yaml:6:27: spec.models[0].aliases[0]: "gpt-4o" already names "gpt-4o"`) {
		t.Errorf("an alias taken: %v", err)
	}
}

func FuzzParseBundle(f *testing.F) {
	f.Add([]byte("kind: AIGateway\nversion: relia/v1\nmetadata: {name: x}\nspec: {}\n"))
	f.Add([]byte("kind: Prompt\nversion: relia/v1\nmetadata: {name: p}\nspec: {version: 1, model: gpt-4o, messages: [{role: user, content: '{{.a}}'}]}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		ParseBundle("fuzz.yaml", data) // must not panic
	})
}
