package ai

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/relia-dev/relia/ai/mock"
)

// nodeClient is a script run by Node with the official openai package:
// a chat, a stream, an embedding and a refused call through relia.
const nodeClient = `
const OpenAI = require(process.env.OPENAI_MODULE);
const client = new OpenAI({ baseURL: process.env.BASE_URL + "/v1", apiKey: "sk-acme", maxRetries: 0 });
(async () => {
  const out = {};
  const chat = await client.chat.completions.create({ model: "gpt-4o-mini", messages: [{ role: "user", content: "hello" }] });
  out.chat = chat.choices[0].message.content;
  out.usage = chat.usage.completion_tokens;
  const stream = await client.chat.completions.create({ model: "claude-3-5-haiku-latest", stream: true, stream_options: { include_usage: true }, messages: [{ role: "user", content: "hello" }] });
  out.stream = "";
  for await (const chunk of stream) {
    if (chunk.choices.length > 0 && chunk.choices[0].delta.content) out.stream += chunk.choices[0].delta.content;
    if (chunk.usage) out.streamUsage = chunk.usage.completion_tokens;
  }
  const emb = await client.embeddings.create({ model: "text-embedding-3-small", input: "hello" });
  out.dims = emb.data[0].embedding.length;
  try {
    await new OpenAI({ baseURL: process.env.BASE_URL + "/v1", apiKey: "sk-narrow", maxRetries: 0 }).chat.completions.create({ model: "gpt-4o-mini", messages: [{ role: "user", content: "hi" }] });
  } catch (e) {
    out.refused = e.status;
    out.refusedClass = e.constructor.name;
  }
  console.log(JSON.stringify(out));
})().catch((e) => { console.error(e); process.exit(1); });
`

// TestNodeOpenAIClient calls relia through the official openai package
// for Node, which make test-deps installs into .tools/node when node is
// on the machine.
func TestNodeOpenAIClient(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skipf("node is not installed, so the Node client is not tried: %v", err)
	}
	module, _ := filepath.Abs(filepath.Join("..", ".tools", "node", "node_modules", "openai"))
	if _, err := os.Stat(module); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("node is installed but the openai package is not (make test-deps installs it): %v", err)
		}
		t.Skipf("the openai package for Node is not in .tools/node (make test-deps installs it): %v", err)
	}
	_, a := startMock(t, mock.Options{OutputTokens: 5, EmbeddingDimensions: 6})
	g := startService(t, sdkConfig, nil, Options{}, a, a)
	script := filepath.Join(t.TempDir(), "client.js")
	os.WriteFile(script, []byte(nodeClient), 0o644)
	cmd := exec.CommandContext(t.Context(), node, script)
	cmd.Env = append(os.Environ(), "OPENAI_MODULE="+module, "BASE_URL="+g.url)
	out, err := cmd.Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		t.Fatalf("node: %v\n%s", err, stderr)
	}
	var got struct {
		Chat         string `json:"chat"`
		Usage        int    `json:"usage"`
		Stream       string `json:"stream"`
		StreamUsage  int    `json:"streamUsage"`
		Dims         int    `json:"dims"`
		Refused      int    `json:"refused"`
		RefusedClass string `json:"refusedClass"`
	}
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("%s: %v", out, err)
	}
	if got.Usage != 5 || got.StreamUsage != 5 || got.Dims != 6 || got.Refused != 403 || got.RefusedClass != "PermissionDeniedError" || len(got.Stream) == 0 || len(got.Chat) == 0 {
		t.Errorf("node client saw %+v", got)
	}
}
