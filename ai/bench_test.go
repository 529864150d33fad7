package ai

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"syscall"
	"testing"
)

// cannedTransport answers every request with the same chat completion,
// so a benchmark weighs relia's own work and not a network's.
type cannedTransport struct{ body []byte }

func (c cannedTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	io.Copy(io.Discard, r.Body)
	r.Body.Close()
	return &http.Response{StatusCode: 200, Header: http.Header{"Content-Type": {"application/json"}}, Body: io.NopCloser(bytes.NewReader(c.body)), Request: r}, nil
}

const cannedChat = `{"id":"chatcmpl-1","object":"chat.completion","created":1,"model":"gpt-4o-mini","choices":[{"index":0,"message":{"role":"assistant","content":"the system stays within its error budget"},"finish_reason":"stop"}],"usage":{"prompt_tokens":12,"completion_tokens":8,"total_tokens":20}}`

// BenchmarkChatNonStreaming is the CPU relia adds to one non-streaming
// call: parse, route, quota, translate, record, answer.
func BenchmarkChatNonStreaming(b *testing.B) {
	svc := benchService(b, cannedTransport{[]byte(cannedChat)})
	body := `{"model":"gpt-4o-mini","messages":[{"role":"system","content":"be brief"},{"role":"user","content":"hello there, how are you today?"}],"max_tokens":64}`
	benchCalls(b, svc, body, func(w *httptest.ResponseRecorder) bool { return w.Code == 200 })
}

// benchCalls sends body to h once per iteration, checking each answer
// with ok, and reports the CPU time per call.
func benchCalls(b *testing.B, h http.Handler, body string, ok func(*httptest.ResponseRecorder) bool) {
	b.ReportAllocs()
	start := cpuTime()
	for b.Loop() {
		req := httptest.NewRequest(http.MethodPost, "/v1/chat/completions", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer sk-t")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if !ok(w) {
			b.Fatal(w.Code, w.Body.String())
		}
	}
	b.ReportMetric(float64(cpuTime()-start)/float64(b.N), "cpu-ns/op")
}

// BenchmarkChatNoTokenQuota is BenchmarkChatNonStreaming for a tenant
// whose quota counts requests, not tokens: the prompt is not counted.
func BenchmarkChatNoTokenQuota(b *testing.B) {
	svc := benchServiceQuota(b, cannedTransport{[]byte(cannedChat)}, "requestsPerMinute: 1000000000")
	body := `{"model":"gpt-4o-mini","messages":[{"role":"system","content":"be brief"},{"role":"user","content":"hello there, how are you today?"}],"max_tokens":64}`
	benchCalls(b, svc, body, func(w *httptest.ResponseRecorder) bool { return w.Code == 200 })
}

// benchService is an AI gateway of one OpenAI provider, its calls sent
// through tr, and one tenant with a token quota, which has each call's
// prompt counted.
func benchService(b testing.TB, tr http.RoundTripper) *Service {
	return benchServiceQuota(b, tr, "tokensPerMinute: 1000000000")
}

// benchServiceQuota is benchService with the tenant's quota given.
func benchServiceQuota(b testing.TB, tr http.RoundTripper, quota string) *Service {
	cfg, err := ParseBundle("bench.yaml", []byte(`
kind: AIGateway
version: relia/v1
metadata: {name: bench}
spec:
  providers:
    - {name: a, type: openai, url: "http://127.0.0.1:1/v1", keys: [{value: sk}]}
  routes:
    - {model: gpt-4o-mini, targets: [{provider: a}]}
  tenants:
    - {name: t, keys: [{value: sk-t}], quotas: [{`+quota+`}]}
`))
	if err != nil {
		b.Fatal(err)
	}
	svc, err := New(cfg.Config, cfg.Catalog, Options{Transport: tr})
	if err != nil {
		b.Fatal(err)
	}
	return svc
}

// cpuTime is the process's CPU time (user and system) in nanoseconds:
// on a shared machine, a truer measure of work than wall time.
func cpuTime() int64 {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return ru.Utime.Nano() + ru.Stime.Nano()
}

// BenchmarkPlainProxy is the floor BenchmarkChatNonStreaming is compared
// with: the same request and canned answer through a handler that only
// forwards the body and copies the answer back, as a plain proxy does.
func BenchmarkPlainProxy(b *testing.B) {
	tr := cannedTransport{[]byte(cannedChat)}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		req, _ := http.NewRequestWithContext(r.Context(), http.MethodPost, "http://127.0.0.1:1/v1/chat/completions", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", r.Header.Get("Authorization"))
		resp, _ := tr.RoundTrip(req)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(resp.StatusCode)
		io.Copy(w, resp.Body)
		resp.Body.Close()
	})
	body := `{"model":"gpt-4o-mini","messages":[{"role":"system","content":"be brief"},{"role":"user","content":"hello there, how are you today?"}],"max_tokens":64}`
	benchCalls(b, h, body, func(w *httptest.ResponseRecorder) bool { return w.Code == 200 })
}
