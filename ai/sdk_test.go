package ai

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/anthropics/anthropic-sdk-go/v2"
	aoption "github.com/anthropics/anthropic-sdk-go/v2/option"
	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"

	"github.com/relia-dev/relia/ai/mock"
)

// sdkConfig routes a chat model and an embedding model to one
// OpenAI-compatible simulator, and a Claude model to an Anthropic one.
const sdkConfig = `
kind: AIGateway
version: relia/v1
metadata: {name: sdk}
spec:
  providers:
    - {name: openai-a, type: openai, url: "%s/v1", keys: [{value: sk-provider-a}]}
    - {name: claude, type: anthropic, url: "%s", keys: [{value: sk-ant-provider}]}
  routes:
    - model: gpt-4o-mini
      targets: [{provider: openai-a}]
    - model: text-embedding-3-small
      targets: [{provider: openai-a}]
    - model: claude-3-5-haiku-latest
      targets: [{provider: claude}]
  tenants:
    - name: acme
      keys: [{value: sk-acme}]
    - name: narrow
      keys: [{value: sk-narrow}]
      models: [claude-3-5-haiku-latest]
`

func newOpenAI(url, key string) openai.Client {
	return openai.NewClient(option.WithBaseURL(url+"/v1/"), option.WithAPIKey(key), option.WithMaxRetries(0))
}

func TestOpenAISDKChat(t *testing.T) {
	t.Parallel()
	_, a := startMock(t, mock.Options{Seed: 3, OutputTokens: 6})
	_, c := startMock(t, mock.Options{Seed: 3, OutputTokens: 6})
	g := startService(t, sdkConfig, nil, Options{}, a, c)
	client := newOpenAI(g.url, "sk-acme")
	ctx := context.Background()

	for _, model := range []string{"gpt-4o-mini", "claude-3-5-haiku-latest"} {
		resp, err := client.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{
			Model:    model,
			Messages: []openai.ChatCompletionMessageParamUnion{openai.SystemMessage("be brief"), openai.UserMessage("hello there")},
		})
		if err != nil {
			t.Fatalf("%s: %v", model, err)
		}
		if len(resp.Choices) != 1 || len(strings.Fields(resp.Choices[0].Message.Content)) != 6 || resp.Usage.CompletionTokens != 6 {
			t.Errorf("%s: answer %+v usage %+v", model, resp.Choices, resp.Usage)
		}
		if resp.Usage.PromptTokens == 0 || resp.Usage.TotalTokens != resp.Usage.PromptTokens+6 {
			t.Errorf("%s: usage %+v", model, resp.Usage)
		}

		stream := client.Chat.Completions.NewStreaming(ctx, openai.ChatCompletionNewParams{
			Model:         model,
			Messages:      []openai.ChatCompletionMessageParamUnion{openai.UserMessage("hello there")},
			StreamOptions: openai.ChatCompletionStreamOptionsParam{IncludeUsage: openai.Bool(true)},
		})
		var acc openai.ChatCompletionAccumulator
		for stream.Next() {
			acc.AddChunk(stream.Current())
		}
		if err := stream.Err(); err != nil {
			t.Fatalf("%s stream: %v", model, err)
		}
		if got := acc.Choices[0].Message.Content; len(strings.Fields(got)) != 6 {
			t.Errorf("%s stream: content %q", model, got)
		}
		if acc.Usage.CompletionTokens != 6 || acc.Choices[0].FinishReason != "stop" {
			t.Errorf("%s stream: usage %+v finish %q", model, acc.Usage, acc.Choices[0].FinishReason)
		}
	}
}

func TestOpenAISDKStreamWithoutUsage(t *testing.T) {
	t.Parallel()
	sim, a := startMock(t, mock.Options{OutputTokens: 3})
	g := startService(t, sdkConfig, nil, Options{}, a, a)
	client := newOpenAI(g.url, "sk-acme")
	stream := client.Chat.Completions.NewStreaming(context.Background(), openai.ChatCompletionNewParams{
		Model: "gpt-4o-mini", Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("hi")},
	})
	n := 0
	for stream.Next() {
		if stream.Current().Usage.TotalTokens != 0 {
			t.Error("a usage chunk the client did not ask for")
		}
		n++
	}
	if stream.Err() != nil || n != 5 { // role, 3 tokens, finish
		t.Errorf("%d chunks, %v", n, stream.Err())
	}
	// relia asked the provider for usage all the same: quotas need it.
	if rs := sim.Requests(); len(rs) != 1 {
		t.Fatalf("%d requests", len(rs))
	}
}

func TestOpenAISDKEmbeddingsAndModels(t *testing.T) {
	t.Parallel()
	_, a := startMock(t, mock.Options{EmbeddingDimensions: 4})
	g := startService(t, sdkConfig, nil, Options{}, a, a)
	client := newOpenAI(g.url, "sk-acme")
	ctx := context.Background()
	emb, err := client.Embeddings.New(ctx, openai.EmbeddingNewParams{
		Model: "text-embedding-3-small",
		Input: openai.EmbeddingNewParamsInputUnion{OfArrayOfStrings: []string{"one", "two words"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(emb.Data) != 2 || len(emb.Data[1].Embedding) != 4 || emb.Usage.PromptTokens == 0 {
		t.Errorf("embeddings %+v", emb)
	}
	page, err := client.Models.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, m := range page.Data {
		ids = append(ids, m.ID)
	}
	if strings.Join(ids, " ") != "claude-3-5-haiku-latest gpt-4o-mini text-embedding-3-small" {
		t.Errorf("models %v", ids)
	}
	narrow := newOpenAI(g.url, "sk-narrow")
	page, _ = narrow.Models.List(ctx)
	if len(page.Data) != 1 || page.Data[0].ID != "claude-3-5-haiku-latest" {
		t.Errorf("a narrow tenant's models %+v", page.Data)
	}
}

func TestOpenAISDKErrors(t *testing.T) {
	t.Parallel()
	sim, a := startMock(t, mock.Options{})
	g := startService(t, sdkConfig, nil, Options{}, a, a)
	ctx := context.Background()
	params := openai.ChatCompletionNewParams{Model: "gpt-4o-mini", Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("hi")}}
	for _, tc := range []struct {
		key    string
		model  string
		status int
		code   string
	}{
		{key: "sk-wrong", model: "gpt-4o-mini", status: 401, code: "invalid_api_key"},
		{key: "sk-narrow", model: "gpt-4o-mini", status: 403, code: "model_not_allowed"},
		{key: "sk-acme", model: "no-such-model", status: 404, code: "model_not_found"},
	} {
		p := params
		p.Model = tc.model
		client := newOpenAI(g.url, tc.key)
		_, err := client.Chat.Completions.New(ctx, p)
		var apiErr *openai.Error
		if !errors.As(err, &apiErr) || apiErr.StatusCode != tc.status || apiErr.Code != tc.code {
			t.Errorf("%s calling %s: %v, want %d %s", tc.key, tc.model, err, tc.status, tc.code)
		}
	}
	// A provider's refusal of the request reaches the client as a 400.
	sim.SetFaults([]mock.Fault{{Kind: mock.FaultStatus, Status: 429, RetryAfter: time.Second}})
	client := newOpenAI(g.url, "sk-acme")
	_, err := client.Chat.Completions.New(ctx, params)
	var apiErr *openai.Error
	if !errors.As(err, &apiErr) || apiErr.StatusCode != 429 {
		t.Errorf("every provider rate-limited: %v", err)
	}
	if apiErr != nil && apiErr.Response.Header.Get("Retry-After") == "" {
		t.Error("no Retry-After")
	}
}

func TestOpenAISDKMidStreamError(t *testing.T) {
	t.Parallel()
	_, a := startMock(t, mock.Options{Faults: []mock.Fault{{Kind: mock.FaultErrorEvent, AfterTokens: 2, Status: 529}}})
	g := startService(t, sdkConfig, nil, Options{}, a, a)
	client := newOpenAI(g.url, "sk-acme")
	stream := client.Chat.Completions.NewStreaming(context.Background(), openai.ChatCompletionNewParams{
		Model: "gpt-4o-mini", Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("hi")},
	})
	var text strings.Builder
	for stream.Next() {
		if len(stream.Current().Choices) > 0 {
			text.WriteString(stream.Current().Choices[0].Delta.Content)
		}
	}
	if stream.Err() == nil || !strings.Contains(stream.Err().Error(), "stream_interrupted") {
		t.Errorf("stream error %v, want the error event", stream.Err())
	}
	if len(strings.Fields(text.String())) != 2 {
		t.Errorf("text before the error %q", text.String())
	}
}

func TestAnthropicSDK(t *testing.T) {
	t.Parallel()
	_, a := startMock(t, mock.Options{OutputTokens: 4})
	g := startService(t, sdkConfig, nil, Options{}, a, a)
	client := anthropic.NewClient(aoption.WithBaseURL(g.url), aoption.WithAPIKey("sk-acme"), aoption.WithMaxRetries(0))
	ctx := context.Background()
	for _, model := range []string{"claude-3-5-haiku-latest", "gpt-4o-mini"} {
		params := anthropic.MessageNewParams{
			Model: anthropic.Model(model), MaxTokens: 100,
			System:   []anthropic.TextBlockParam{{Text: "be brief"}},
			Messages: []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock("hello"))},
		}
		msg, err := client.Messages.New(ctx, params)
		if err != nil {
			t.Fatalf("%s: %v", model, err)
		}
		if len(msg.Content) != 1 || len(strings.Fields(msg.Content[0].Text)) != 4 || msg.Usage.OutputTokens != 4 || msg.StopReason != "end_turn" {
			t.Errorf("%s: %+v", model, msg)
		}
		stream := client.Messages.NewStreaming(ctx, params)
		var acc anthropic.Message
		for stream.Next() {
			if err := acc.Accumulate(stream.Current()); err != nil {
				t.Fatal(err)
			}
		}
		if err := stream.Err(); err != nil {
			t.Fatalf("%s stream: %v", model, err)
		}
		if len(acc.Content) != 1 || len(strings.Fields(acc.Content[0].Text)) != 4 || acc.Usage.OutputTokens != 4 {
			t.Errorf("%s stream: %+v", model, acc)
		}
	}
	narrow := anthropic.NewClient(aoption.WithBaseURL(g.url), aoption.WithAPIKey("sk-narrow"), aoption.WithMaxRetries(0))
	_, err := narrow.Messages.New(ctx, anthropic.MessageNewParams{
		Model: "gpt-4o-mini", MaxTokens: 10, Messages: []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock("hi"))},
	})
	var apiErr *anthropic.Error
	if !errors.As(err, &apiErr) || apiErr.StatusCode != 403 {
		t.Errorf("a tenant refused a model: %v", err)
	}
}
