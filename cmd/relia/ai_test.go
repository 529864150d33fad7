package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/relia-dev/relia/ai/mock"
)

// TestAIServeOnTheEdge runs relia ai serve against the provider
// simulator: the AI API on the gateway's edge, its access log line per
// call on stderr, the admin API's paths (/usage, /metrics, /healthz,
// POST /reload, browsers' writes refused), SIGHUP's reload and the drain.
func TestAIServeOnTheEdge(t *testing.T) {
	t.Parallel()
	sim, err := mock.New(mock.Options{})
	if err != nil {
		t.Fatal(err)
	}
	provider := httptest.NewServer(sim)
	defer provider.Close()
	doc := `kind: AIGateway
version: relia/v1
metadata: {name: edge}
spec:
  providers:
    - {name: mock, type: openai, url: "` + provider.URL + `/v1", keys: [{value: sk-mock}]}
  routes:
    - {model: gpt-4o-mini, targets: [{provider: mock}]}
  tenants:
    - {name: acme, keys: [{value: sk-acme}]}
`
	file := filepath.Join(t.TempDir(), "ai.yaml")
	if err := os.WriteFile(file, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	hup := make(chan os.Signal, 1)
	stderr := &lockedBuffer{}
	ready := make(chan [2]string, 1)
	done := make(chan error, 1)
	go func() {
		done <- serveAI(ctx, aiServeOptions{files: []string{file}, listen: "127.0.0.1:0", admin: "127.0.0.1:0"}, hup, stderr, ready)
	}()
	var api, admin string
	select {
	case a := <-ready:
		api, admin = "http://"+a[0], "http://"+a[1]
	case err := <-done:
		t.Fatalf("serve ended: %v\n%s", err, stderr)
	}
	if want := "relia ai serve: the AI gateway on " + api + ", admin on " + admin; !strings.Contains(stderr.String(), want) {
		t.Errorf("stderr %q lacks the startup line %q", stderr, want)
	}

	do := func(method, url, body string, header ...string) (int, string) {
		t.Helper()
		req, err := http.NewRequest(method, url, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i+1 < len(header); i += 2 {
			req.Header.Set(header[i], header[i+1])
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}

	code, body := do("POST", api+"/v1/chat/completions", `{"model":"gpt-4o-mini","max_tokens":4,"messages":[{"role":"user","content":"hi"}]}`,
		"Authorization", "Bearer sk-acme")
	if code != 200 || !strings.Contains(body, `"chat.completion"`) {
		t.Fatalf("chat: %d %s", code, body)
	}
	if code, body := do("GET", api+"/v1/models", "", "Authorization", "Bearer sk-acme"); code != 200 || !strings.Contains(body, `"gpt-4o-mini"`) {
		t.Errorf("models: %d %s", code, body)
	}
	if code, body := do("POST", api+"/v1/chat/completions", `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}`,
		"Authorization", "Bearer sk-nobody"); code != 401 || !strings.Contains(body, `"error"`) {
		t.Errorf("unknown key: %d %s; want 401 in OpenAI's shape", code, body)
	}

	// A body over the AI gateway's limit (4MiB here) is refused by it, in
	// its API's format, not by the edge's.
	big := `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"` + strings.Repeat("x", 5<<20) + `"}]}`
	if code, body := do("POST", api+"/v1/chat/completions", big, "Authorization", "Bearer sk-acme"); code != 413 || !strings.Contains(body, `"request_too_large"`) {
		t.Errorf("a 5MB body: %d %.300s; want 413 request_too_large", code, body)
	}

	// The call's line of the access log, with the AI call's fields.
	deadline := time.Now().Add(10 * time.Second)
	var line map[string]any
	for line == nil && time.Now().Before(deadline) {
		for _, l := range strings.Split(stderr.String(), "\n") {
			if strings.Contains(l, `"ai_outcome":"ok"`) {
				if err := json.Unmarshal([]byte(l), &line); err != nil {
					t.Fatalf("access log line %q: %v", l, err)
				}
			}
		}
		if line == nil {
			time.Sleep(20 * time.Millisecond)
		}
	}
	if line == nil {
		t.Fatalf("no access log line of the call on stderr:\n%s", stderr)
	}
	if line["tenant"] != "acme" || line["model"] != "gpt-4o-mini" || line["provider"] != "mock" || line["status"] != 200.0 {
		t.Errorf("access log line %v: want tenant acme, model gpt-4o-mini, provider mock, status 200", line)
	}

	if code, body := do("GET", admin+"/usage", ""); code != 200 || !strings.Contains(body, `"usage"`) {
		t.Errorf("/usage: %d %s", code, body)
	}
	if code, body := do("GET", admin+"/metrics", ""); code != 200 || !strings.Contains(body, `gen_ai_client_token_usage_sum{`) ||
		!strings.Contains(body, "http_server_request_duration_seconds") {
		t.Errorf("/metrics: %d, want the GenAI and the gateway's metrics:\n%.2000s", code, body)
	}
	if code, _ := do("GET", admin+"/healthz", ""); code != 200 {
		t.Errorf("/healthz: %d", code)
	}
	if code, body := do("POST", admin+"/reload", "", "Origin", "https://elsewhere.example", "Sec-Fetch-Site", "cross-site"); code != 403 {
		t.Errorf("a browser's POST /reload for another site: %d %s; want 403", code, body)
	}

	// A reload reads the files again: a model added is served.
	if err := os.WriteFile(file, []byte(strings.Replace(doc, "  tenants:", "    - {model: gpt-4o, targets: [{provider: mock}]}\n  tenants:", 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, body := do("POST", admin+"/reload", ""); code != 200 {
		t.Fatalf("POST /reload: %d %s", code, body)
	}
	if code, body := do("GET", api+"/v1/models", "", "Authorization", "Bearer sk-acme"); code != 200 || !strings.Contains(body, `"gpt-4o"`) {
		t.Errorf("models after the reload: %d %s; want gpt-4o", code, body)
	}
	// SIGHUP with a broken file: refused, said on stderr, and the config
	// in force keeps serving.
	if err := os.WriteFile(file, []byte("kind: AIGateway\nversion: relia/v1\nspec: {providers: 3}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	hup <- os.Interrupt
	for !strings.Contains(stderr.String(), "relia ai serve: reload refused:") {
		if time.Now().After(deadline) {
			t.Fatalf("no refusal of the broken file on stderr:\n%s", stderr)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if code, body := do("GET", api+"/v1/models", "", "Authorization", "Bearer sk-acme"); code != 200 || !strings.Contains(body, `"gpt-4o"`) {
		t.Errorf("models after the refused reload: %d %s", code, body)
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("serve: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("serve did not drain")
	}
}

func TestAIServeRefusesBadInput(t *testing.T) {
	t.Parallel()
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	os.WriteFile(bad, []byte("kind: AIGateway\nversion: relia/v1\nmetadata: {name: x}\nspec: {providrs: []}\n"), 0o600)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"ai", "serve"}, "--config is required"},
		{[]string{"ai", "serve", "--config", bad}, `providrs`},
		{[]string{"ai", "serve", "--config", "../../examples/ai-gateway.yaml", "--admin-addr", "0.0.0.0:0"}, "tokenFile"},
	} {
		code, _, errOut := runCLI(t, c.args...)
		if code != exitBadInput || !strings.Contains(errOut, c.want) {
			t.Errorf("%v: exit %d, stderr %q; want exit %d and %q", c.args, code, errOut, exitBadInput, c.want)
		}
	}
}
