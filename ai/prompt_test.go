package ai

import (
	"encoding/json"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/relia-dev/relia/ai/mock"
)

const promptConfig = `
kind: AIGateway
version: relia/v1
metadata: {name: prompts}
spec:
  providers:
    - {name: a, type: openai, url: "%s/v1", keys: [{value: k}]}
  routes:
    - {model: gpt-4o-mini, targets: [{provider: a}], logContent: true}
  logging:
    redact: ["secret-[0-9]+"]
    maxContentBytes: 200
  tenants:
    - {name: team, keys: [{value: sk-team}], models: [gpt-4o], prompts: [summarize]}
---
kind: Prompt
version: relia/v1
metadata: {name: summarize}
spec:
  version: 1
  model: gpt-4o-mini
  inputs: [{name: text}]
  messages: [{role: user, content: "v1: {{.text}}"}]
---
kind: Prompt
version: relia/v1
metadata: {name: summarize}
spec:
  version: 2
  model: gpt-4o-mini
  inputs: [{name: text}, {name: words, type: integer}, {name: tone, enum: [dry, warm], optional: true}]
  messages:
    - {role: system, content: "Be {{.tone}}."}
    - {role: user, content: "In {{.words}} words: {{.text}}"}
  maxTokens: 3
---
kind: Prompt
version: relia/v1
metadata: {name: classify}
spec:
  version: 1
  model: gpt-4o-mini
  inputs: [{name: text}]
  messages: [{role: user, content: "{{.text}}"}]
  output:
    schema:
      type: object
      required: [label]
      properties: {label: {enum: [spam, ham]}}
`

func callPrompt(t *testing.T, url, path, key, body string) (int, map[string]any) {
	t.Helper()
	resp := postJSON(t, url+path, body, "Authorization", "Bearer "+key)
	var m map[string]any
	json.NewDecoder(resp.Body).Decode(&m)
	return resp.StatusCode, m
}

// TestPromptAPI: a prompt served and versioned, its inputs typed, its
// structured output checked, and a tenant's access to prompts and
// models kept apart.
func TestPromptAPI(t *testing.T) {
	t.Parallel()
	sim, a := startMock(t, mock.Options{})
	var recs records
	g := startService(t, promptConfig, nil, Options{OnRecord: recs.add}, a)

	code, m := callPrompt(t, g.url, "/prompts/summarize", "sk-team", `{"text":"mail bob@example.com secret-42","words":3}`)
	if code != 200 || m["version"] != 2.0 || m["model"] != "gpt-4o-mini" || len(strings.Fields(m["output"].(string))) != 3 {
		t.Fatalf("%d %v", code, m)
	}
	code, m = callPrompt(t, g.url, "/prompts/summarize?version=1", "sk-team", `{"text":"hi"}`)
	if code != 200 || m["version"] != 1.0 {
		t.Errorf("version 1: %d %v", code, m)
	}
	for _, tc := range []struct{ body, want string }{
		{`{"text":"hi"}`, `input "words": required`},
		{`{"text":"hi","words":1.5}`, "want an integer"},
		{`{"text":"hi","words":2,"tone":"loud"}`, "is not one of"},
		{`{"text":"hi","words":2,"colour":"red"}`, "no such input"},
		{`[1]`, "JSON object"},
	} {
		code, m := callPrompt(t, g.url, "/prompts/summarize", "sk-team", tc.body)
		if e, _ := m["error"].(map[string]any); code != 400 || !strings.Contains(e["message"].(string), tc.want) {
			t.Errorf("%s: %d %v, want 400 %q", tc.body, code, m, tc.want)
		}
	}
	// The tenant may call the prompt, not the prompt's model directly,
	// and not another prompt.
	if code, _ := chatAs(t, g.url, "sk-team", "gpt-4o-mini"); code != 403 {
		t.Errorf("the prompt's model called directly: %d", code)
	}
	if code, m := callPrompt(t, g.url, "/prompts/classify", "sk-team", `{"text":"buy now"}`); code != 403 {
		t.Errorf("another prompt: %d %v", code, m)
	}
	// The rendered prompt reached the model.
	reqs := sim.Requests()
	if len(reqs) != 2 {
		t.Fatalf("%d provider calls", len(reqs))
	}
	waitRecords(t, &recs, 2)
	r := recs.all()[0]
	if r.Operation != "prompt" || !strings.Contains(r.PromptText, "In 3 words") || strings.Contains(r.PromptText, "bob@example.com") || strings.Contains(r.PromptText, "secret-42") || r.Completion == "" {
		t.Errorf("record of a route that logs content: prompt %q completion %q", r.PromptText, r.Completion)
	}
}

func TestStructuredPrompt(t *testing.T) {
	t.Parallel()
	_, a := startMock(t, mock.Options{})
	cfg := strings.Replace(promptConfig, "prompts: [summarize]", "prompts: [summarize, classify]", 1)
	g := startService(t, cfg, nil, Options{}, a)
	code, m := callPrompt(t, g.url, "/prompts/classify", "sk-team", `{"text":"buy now"}`)
	out, _ := m["output"].(map[string]any)
	if code != 200 || (out["label"] != "spam" && out["label"] != "ham") {
		t.Errorf("%d %v", code, m)
	}
}

func TestPromptOutputRefusedWhenInvalid(t *testing.T) {
	t.Parallel()
	srv := httpServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"id":"x","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"{\"label\":\"maybe\"}"},"finish_reason":"stop"}],"usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2}}`)
	})
	cfg := strings.Replace(promptConfig, "prompts: [summarize]", "prompts: [classify]", 1)
	g := startService(t, cfg, nil, Options{}, srv)
	code, m := callPrompt(t, g.url, "/prompts/classify", "sk-team", `{"text":"x"}`)
	if e, _ := m["error"].(map[string]any); code != 502 || e["code"] != "output_invalid" {
		t.Errorf("%d %v", code, m)
	}
}

func TestPromptErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ doc, want string }{
		{"spec: {version: 0, model: gpt-4o, messages: [{role: user, content: x}]}", "test.yaml:5:17: spec.version: must be 1 or more"},
		{"spec: {version: 1, model: gpt-4o, messages: [{role: robot, content: x}]}", "spec.messages[0].role: unknown role"},
		{"spec: {version: 1, model: gpt-4o, messages: [{role: user, content: '{{.x'}]}", "spec.messages[0].content"},
		{"spec: {version: 1, model: gpt-4o, inputs: [{name: a, type: date}], messages: [{role: user, content: x}]}", `unknown type "date"`},
		{"spec: {version: 1, model: gpt-4o, messages: [{role: user, content: x}], output: {schema: {type: 7}}}", "not a valid JSON Schema"},
	} {
		_, err := ParsePrompts("test.yaml", []byte("kind: Prompt\nversion: relia/v1\nmetadata: {name: p}\n\n"+tc.doc))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.doc, err, tc.want)
		}
	}
}

func TestExampleConfigLoads(t *testing.T) {
	t.Parallel()
	b, err := LoadFiles(filepath.Join("..", "examples", "ai-gateway.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(b.Prompts) != 2 || len(b.Config.Spec.Tenants) != 2 {
		t.Errorf("%+v", b)
	}
}
