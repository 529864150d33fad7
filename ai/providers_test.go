package ai

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/relia-dev/relia/ai/mock"
	"github.com/relia-dev/relia/ai/wire"
)

// providerConfig routes one model to each provider type, all served by
// one simulator.
const providerConfig = `
kind: Models
version: relia/v1
metadata: {name: test}
spec:
  models:
    - {name: via-openai}
    - {name: via-compat}
    - {name: via-azure}
    - {name: via-anthropic}
    - {name: via-gemini}
    - {name: via-bedrock}
    - {name: gemini-embed, type: embedding}
---
kind: AIGateway
version: relia/v1
metadata: {name: providers}
spec:
  providers:
    - {name: oa, type: openai, url: "%[1]s/v1", keys: [{value: sk-1}]}
    - {name: compat, type: openai-compatible, url: "%[1]s/v1"}
    - {name: az, type: azure, url: "%[1]s", keys: [{value: az-key}]}
    - {name: an, type: anthropic, url: "%[1]s", keys: [{value: ant-key}]}
    - {name: ge, type: gemini, url: "%[1]s", keys: [{value: g-key}]}
    - {name: br, type: bedrock, url: "%[1]s", region: us-east-1, keys: [{accessKeyID: AKIDEXAMPLE, value: secret}]}
  routes:
    - {model: via-openai, targets: [{provider: oa, model: gpt-4o-mini}]}
    - {model: via-compat, targets: [{provider: compat, model: llama3}]}
    - {model: via-azure, targets: [{provider: az, model: my-deployment}]}
    - {model: via-anthropic, targets: [{provider: an, model: claude-3-5-haiku-latest}]}
    - {model: via-gemini, targets: [{provider: ge, model: gemini-2.0-flash}]}
    - {model: via-bedrock, targets: [{provider: br, model: "anthropic.claude-3-haiku-20240307-v1:0"}]}
    - {model: gemini-embed, targets: [{provider: ge, model: text-embedding-004}]}
`

func postJSON(t *testing.T, url, body string, header ...string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

// streamText reads an OpenAI stream and returns its text, usage and
// whether it ended with [DONE].
func streamText(t *testing.T, r io.Reader) (string, *wire.Usage, bool, string) {
	t.Helper()
	sr := wire.NewSSEReader(r, 0)
	var text strings.Builder
	var usage *wire.Usage
	finish := ""
	for {
		ev, err := sr.Next()
		if err != nil {
			return text.String(), usage, false, finish
		}
		if bytes.Equal(ev.Data, wire.Done) {
			return text.String(), usage, true, finish
		}
		var c wire.ChatChunk
		if err := json.Unmarshal(ev.Data, &c); err != nil {
			t.Fatalf("chunk %s: %v", ev.Data, err)
		}
		for _, ch := range c.Choices {
			if ch.Delta.Content != nil {
				text.WriteString(*ch.Delta.Content)
			}
			if ch.FinishReason != nil {
				finish = *ch.FinishReason
			}
		}
		if c.Usage != nil {
			usage = c.Usage
		}
	}
}

func TestEveryProviderType(t *testing.T) {
	t.Parallel()
	sim, err := mock.New(mock.Options{Seed: 9, OutputTokens: 5})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	g := startService(t, providerConfig, nil, Options{}, srv.URL)
	for _, model := range []string{"via-openai", "via-compat", "via-azure", "via-anthropic", "via-gemini", "via-bedrock"} {
		t.Run(model, func(t *testing.T) {
			body := `{"model":"` + model + `","messages":[{"role":"system","content":"be brief"},{"role":"user","content":"hello there"}],"max_tokens":4}`
			resp := postJSON(t, g.url+"/v1/chat/completions", body)
			var cr wire.ChatResponse
			json.NewDecoder(resp.Body).Decode(&cr)
			if resp.StatusCode != 200 || len(cr.Choices) != 1 {
				t.Fatalf("status %d: %+v", resp.StatusCode, cr)
			}
			if n := len(strings.Fields(cr.Choices[0].Message.Text())); n != 4 || cr.Choices[0].FinishReason != "length" {
				t.Errorf("answer %q finish %q", cr.Choices[0].Message.Text(), cr.Choices[0].FinishReason)
			}
			if cr.Usage == nil || cr.Usage.CompletionTokens != 4 || cr.Usage.PromptTokens != 11 {
				t.Errorf("usage %+v, want 11 prompt tokens (2+3, 3+3) and 4", cr.Usage)
			}

			resp = postJSON(t, g.url+"/v1/chat/completions", strings.Replace(body, `"max_tokens":4`, `"stream":true,"stream_options":{"include_usage":true}`, 1))
			text, usage, done, finish := streamText(t, resp.Body)
			if !done || len(strings.Fields(text)) != 5 || finish != "stop" {
				t.Errorf("stream: text %q done %v finish %q", text, done, finish)
			}
			if usage == nil || usage.CompletionTokens != 5 || usage.PromptTokens != 11 {
				t.Errorf("stream usage %+v", usage)
			}
		})
	}
	// The simulator records a request when its handler returns, which
	// can be after the client read the stream's last event: Close waits
	// for every handler.
	srv.Close()
	apis := map[string]int{}
	for _, r := range sim.Requests() {
		apis[r.API]++
	}
	if apis["openai"] != 6 || apis["anthropic"] != 2 || apis["gemini"] != 2 || apis["bedrock"] != 2 {
		t.Errorf("requests per API %v", apis)
	}
}

func TestGeminiEmbeddings(t *testing.T) {
	t.Parallel()
	_, url := startMock(t, mock.Options{EmbeddingDimensions: 3})
	g := startService(t, providerConfig, nil, Options{}, url)
	resp := postJSON(t, g.url+"/v1/embeddings", `{"model":"gemini-embed","input":["a","bb"]}`)
	var er wire.EmbeddingResponse
	json.NewDecoder(resp.Body).Decode(&er)
	if resp.StatusCode != 200 || len(er.Data) != 2 || er.Usage.PromptTokens != 2 {
		t.Errorf("%d %+v", resp.StatusCode, er)
	}
}

func TestUnknownFieldsPassThrough(t *testing.T) {
	t.Parallel()
	var got []byte
	srv := httpServer(t, func(w http.ResponseWriter, r *http.Request) {
		got, _ = io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"id":"x","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"ok","annotations":[]},"finish_reason":"stop"}],"usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2},"service_tier":"default","system_fingerprint":"fp"}`)
	})
	g := startService(t, providerConfig, nil, Options{}, srv)
	resp := postJSON(t, g.url+"/v1/chat/completions", `{"model":"via-openai","messages":[{"role":"user","content":"hi","name":"bob"}],"seed":7,"logit_bias":{"50":-100},"metadata":{"k":"v"}}`)
	answer, _ := io.ReadAll(resp.Body)
	for _, want := range []string{`"seed":7`, `"logit_bias":{"50":-100}`, `"metadata":{"k":"v"}`, `"name":"bob"`, `"model":"gpt-4o-mini"`} {
		if !bytes.Contains(got, []byte(want)) {
			t.Errorf("the provider got %s, without %s", got, want)
		}
	}
	for _, want := range []string{`"service_tier":"default"`, `"system_fingerprint":"fp"`, `"annotations":[]`} {
		if !bytes.Contains(answer, []byte(want)) {
			t.Errorf("the client got %s, without %s", answer, want)
		}
	}
}

func httpServer(t *testing.T, h http.HandlerFunc) string {
	t.Helper()
	_, url := startMockHandler(t, h)
	return url
}
