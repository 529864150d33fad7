package ai_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/relia-dev/relia/ai"
	"github.com/relia-dev/relia/ai/mock"
)

// A gateway in front of a simulated OpenAI provider.
func Example() {
	sim, _ := mock.New(mock.Options{Seed: 1, OutputTokens: 3})
	provider := httptest.NewServer(sim)
	defer provider.Close()

	b, err := ai.ParseBundle("ai.yaml", []byte(`
kind: AIGateway
version: relia/v1
metadata: {name: example}
spec:
  providers:
    - {name: openai, type: openai, url: "`+provider.URL+`/v1", keys: [{value: sk-test}]}
  routes:
    - {model: gpt-4o-mini, targets: [{provider: openai}]}
`))
	if err != nil {
		fmt.Println(err)
		return
	}
	svc, _ := ai.New(b.Config, b.Catalog, ai.Options{})
	gateway := httptest.NewServer(svc)
	defer gateway.Close()

	resp, _ := http.Post(gateway.URL+"/v1/chat/completions", "application/json",
		strings.NewReader(`{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}`))
	body, _ := io.ReadAll(resp.Body)
	fmt.Println(resp.StatusCode, strings.Contains(string(body), `"completion_tokens":3`))
	// Output: 200 true
}
