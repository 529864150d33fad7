package ai

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestCountTextBPE: OpenAI models of the shipped catalog are counted by
// their BPE encoding, to the token counts OpenAI's tokenizers give (the
// strings and counts of the tokenizer library's own tests, and counts
// cross-checked with js-tiktoken from npm); a model without an encoding
// is estimated at a quarter of its bytes.
func TestCountTextBPE(t *testing.T) {
	cat := ShippedCatalog()
	long := strings.Repeat("hello world ", 100)
	mixed := "The gateway retries a 429 after Retry-After; the breaker opens at 50% errors.\n\tfunc main() { fmt.Println(\"héllo, 世界\") }"
	for _, tc := range []struct {
		model, text string
		want        int
	}{
		{"gpt-4o", "hello world", 2},
		{"gpt-4o", "supercalifragilistic", 6},
		{"gpt-4o", "We know what we are, but know not what we may be.", 14},
		{"gpt-4o", long, 201},
		{"gpt-4.1-mini", mixed, 33},
		{"text-embedding-3-small", "hello world", 2},
		{"text-embedding-3-small", "supercalifragilistic", 7},
		{"text-embedding-3-small", "We know what we are, but know not what we may be.", 14},
		{"text-embedding-3-large", long, 201},
		{"text-embedding-3-large", mixed, 37},
		// No tokenizer: the approximation.
		{"claude-sonnet-4-0", "supercalifragilistic", 5},
		{"claude-sonnet-4-0", long, 300},
	} {
		m, ok := cat.Lookup(tc.model)
		if !ok {
			t.Fatalf("%s is not in the shipped catalog", tc.model)
		}
		if got := m.CountText(tc.text); got != tc.want {
			t.Errorf("%s (%s): %q is %d tokens, want %d", tc.model, m.Encoding, trimmed(tc.text), got, tc.want)
		}
	}
}

func trimmed(s string) string {
	if len(s) > 40 {
		return s[:40] + "..."
	}
	return s
}

// TestCatalogRefusesUnknownEncoding: an encoding relia has no tokenizer
// for is a config error, named where it is.
func TestCatalogRefusesUnknownEncoding(t *testing.T) {
	_, err := ParseModels("m.yaml", []byte("kind: Models\nversion: relia/v1\nmetadata: {name: m}\nspec:\n  models:\n    - {name: x, encoding: p50k}\n"))
	if err == nil || !strings.Contains(err.Error(), "m.yaml:6") || !strings.Contains(err.Error(), `unknown encoding "p50k"`) {
		t.Fatalf("err = %v", err)
	}
}

// tokenQuotaConfig gives tenant acme 250 tokens a minute on gpt-4o-mini
// (o200k_base) and on house, a model of the same provider whose
// tokenizer relia does not know.
const tokenQuotaConfig = `
kind: Models
version: relia/v1
metadata: {name: house}
spec:
  models:
    - {name: house, contextWindow: 8000}
---
kind: AIGateway
version: relia/v1
metadata: {name: tq}
spec:
  providers:
    - {name: a, type: openai, url: "http://127.0.0.1:1/v1", keys: [{value: k}]}
  routes:
    - {model: gpt-4o-mini, targets: [{provider: a}]}
    - {model: house, targets: [{provider: a}]}
  tenants:
    - name: acme
      keys: [{value: sk-acme}]
      quotas: [{tokensPerMinute: 250}]
    - name: free
      keys: [{value: sk-free}]
`

// TestTokenQuotaAdmitsByBPE: a prompt of 1,200 bytes is 201 tokens under
// o200k_base and about 300 by the quarter-of-bytes approximation. Under
// a quota of 250 tokens a minute the BPE count admits it on gpt-4o-mini,
// while the approximation, all house has, refuses it as larger than the
// quota alone. A caller without a token quota is not counted at all.
func TestTokenQuotaAdmitsByBPE(t *testing.T) {
	call := cannedService(t, tokenQuotaConfig)
	long := strings.Repeat("hello world ", 100)
	if w := call("sk-acme", "gpt-4o-mini", long, 16); w.Code != http.StatusOK {
		t.Fatalf("gpt-4o-mini, 201+3 tokens under a 250-token quota: %d %s", w.Code, w.Body)
	}
	w := call("sk-acme", "house", long, 16)
	if w.Code != http.StatusTooManyRequests || !strings.Contains(w.Body.String(), "larger than the tokensPerMinute quota") {
		t.Fatalf("house, about 300+3 tokens under a 250-token quota: %d %s", w.Code, w.Body)
	}
	before := tokenized.Load()
	if w := call("sk-free", "gpt-4o-mini", long, 16); w.Code != http.StatusOK {
		t.Fatalf("free: %d %s", w.Code, w.Body)
	}
	if n := tokenized.Load() - before; n != 0 {
		t.Errorf("a call without a token quota, well inside the context window, tokenized %d texts", n)
	}
}

// cannedService serves cfg's AI gateway, its provider answering every
// call with cannedChat; it returns the function that makes one chat call
// with a key, a model, one user message and an output cap.
func cannedService(t *testing.T, cfg string) func(key, model, text string, maxTokens int) *httptest.ResponseRecorder {
	t.Helper()
	svc := startService(t, cfg, nil, Options{Transport: cannedTransport{[]byte(cannedChat)}}).svc
	return func(key, model, text string, maxTokens int) *httptest.ResponseRecorder {
		body, _ := json.Marshal(map[string]any{"model": model, "messages": []map[string]string{{"role": "user", "content": text}}, "max_tokens": maxTokens})
		req := httptest.NewRequest(http.MethodPost, "/v1/chat/completions", strings.NewReader(string(body)))
		req.Header.Set("Authorization", "Bearer "+key)
		w := httptest.NewRecorder()
		svc.ServeHTTP(w, req)
		return w
	}
}

// TestContextCheckCountsOnlyNearTheWindow: a prompt whose bytes fit the
// context window is not tokenized for the check; one whose bytes could
// exceed it is counted, and refused only when its tokens do.
func TestContextCheckCountsOnlyNearTheWindow(t *testing.T) {
	cfg := strings.Replace(tokenQuotaConfig, "contextWindow: 8000", "contextWindow: 1100, encoding: o200k_base", 1)
	call := cannedService(t, cfg)
	before := tokenized.Load()
	if w := call("sk-free", "house", "hello", 100); w.Code != http.StatusOK {
		t.Fatalf("short prompt: %d %s", w.Code, w.Body)
	}
	if n := tokenized.Load() - before; n != 0 {
		t.Errorf("a prompt far inside the window tokenized %d texts", n)
	}
	// 2,400 bytes but 401 tokens: over the window by bytes, inside it by
	// tokens (401+3+100 <= 1100).
	if w := call("sk-free", "house", strings.Repeat("hello world ", 200), 100); w.Code != http.StatusOK {
		t.Fatalf("a prompt inside the window by its tokens: %d %s", w.Code, w.Body)
	}
	if tokenized.Load() == before {
		t.Error("a prompt whose bytes exceed the window was not counted")
	}
	// 1,001 tokens + 3 + 100 > 1100.
	if w := call("sk-free", "house", strings.Repeat("hello world ", 500), 100); w.Code != http.StatusBadRequest || !strings.Contains(w.Body.String(), "context window") {
		t.Fatalf("a prompt over the window: %d %s", w.Code, w.Body)
	}
}

// BenchmarkCountText is what counting a 1 KiB English prompt costs under
// each encoding, and under the approximation: the price a call with a
// token quota pays before it is sent.
func BenchmarkCountText(b *testing.B) {
	text := strings.Repeat("The service answered within its objective while the provider throttled; ", 20)[:1024]
	cat := ShippedCatalog()
	for _, model := range []string{"gpt-4o", "text-embedding-3-small", "claude-sonnet-4-0"} {
		m, _ := cat.Lookup(model)
		b.Run(orDefault(m.Encoding, "approximation"), func(b *testing.B) {
			m.CountText(text) // the encoding loads once, outside the measurement
			b.ReportAllocs()
			b.SetBytes(int64(len(text)))
			for b.Loop() {
				m.CountText(text)
			}
		})
	}
}
