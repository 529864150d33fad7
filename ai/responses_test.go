package ai

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/responses"
	"github.com/openai/openai-go/v3/shared"

	"github.com/relia-dev/relia/ai/mock"
	"github.com/relia-dev/relia/ai/wire"
)

// TestOpenAISDKResponses: the official client's Responses API, whole and
// streamed, over an OpenAI-compatible provider and an Anthropic one: the
// text, usage, status and the request's metadata come back in the
// Responses format, and the stream's events in order.
func TestOpenAISDKResponses(t *testing.T) {
	t.Parallel()
	_, a := startMock(t, mock.Options{Seed: 5, OutputTokens: 6})
	_, c := startMock(t, mock.Options{Seed: 5, OutputTokens: 6})
	g := startService(t, sdkConfig, nil, Options{}, a, c)
	client := newOpenAI(g.url, "sk-acme")
	ctx := context.Background()
	for _, model := range []string{"gpt-4o-mini", "claude-3-5-haiku-latest"} {
		params := responses.ResponseNewParams{
			Model:        model,
			Instructions: openai.String("be brief"),
			Input:        responses.ResponseNewParamsInputUnion{OfString: openai.String("hello there")},
			Metadata:     shared.Metadata{"team": "search"},
		}
		resp, err := client.Responses.New(ctx, params)
		if err != nil {
			t.Fatalf("%s: %v", model, err)
		}
		if resp.OutputText() == "" || resp.Status != "completed" || resp.Usage.OutputTokens != 6 || resp.Usage.InputTokens == 0 || resp.Metadata["team"] != "search" || !strings.HasPrefix(resp.ID, "resp_") {
			t.Errorf("%s: response %s", model, resp.RawJSON())
		}

		params.Input = responses.ResponseNewParamsInputUnion{OfInputItemList: responses.ResponseInputParam{
			responses.ResponseInputItemParamOfMessage("hi", responses.EasyInputMessageRoleUser),
			responses.ResponseInputItemParamOfMessage("hello, how can I help?", responses.EasyInputMessageRoleAssistant),
			responses.ResponseInputItemParamOfMessage("say something", responses.EasyInputMessageRoleUser),
		}}
		stream := client.Responses.NewStreaming(ctx, params)
		var deltas strings.Builder
		var types []string
		var final responses.Response
		seq := int64(-1)
		for stream.Next() {
			ev := stream.Current()
			if ev.SequenceNumber != seq+1 {
				t.Errorf("%s: event %s numbered %d after %d", model, ev.Type, ev.SequenceNumber, seq)
			}
			seq = ev.SequenceNumber
			types = append(types, ev.Type)
			switch ev.Type {
			case "response.output_text.delta":
				deltas.WriteString(ev.Delta)
			case "response.completed":
				final = ev.Response
			}
		}
		if err := stream.Err(); err != nil {
			t.Fatalf("%s: stream: %v", model, err)
		}
		if deltas.Len() == 0 || final.OutputText() != deltas.String() || final.Usage.OutputTokens != 6 || final.Status != "completed" {
			t.Errorf("%s: deltas %q, final %s", model, deltas.String(), final.RawJSON())
		}
		if types[0] != "response.created" || types[len(types)-1] != "response.completed" {
			t.Errorf("%s: events %v", model, types)
		}
	}

	// What relia does not translate is refused in words.
	_, err := client.Responses.New(ctx, responses.ResponseNewParams{Model: "gpt-4o-mini", Input: responses.ResponseNewParamsInputUnion{OfInputItemList: responses.ResponseInputParam{
		responses.ResponseInputItemParamOfFunctionCall(`{}`, "call_1", "lookup"),
	}}})
	var apiErr *openai.Error
	if !errors.As(err, &apiErr) || apiErr.StatusCode != 400 || !strings.Contains(apiErr.Message, "not translated") {
		t.Errorf("a function call output: %v", err)
	}
}

// FuzzFromResponses: any body either is refused in words or becomes a
// chat request with messages.
func FuzzFromResponses(f *testing.F) {
	f.Add([]byte(`{"model":"m","input":"hi","instructions":"x"}`))
	f.Add([]byte(`{"model":"m","input":[{"role":"user","content":[{"type":"input_text","text":"a"}]},{"type":"message","role":"developer","content":"b"}]}`))
	f.Add([]byte(`{"model":"m","input":[{"type":"function_call","call_id":"c"}]}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		var rr wire.ResponsesRequest
		if json.Unmarshal(body, &rr) != nil {
			return
		}
		req, err := fromResponses(&rr)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("an error without words")
			}
			return
		}
		if len(req.Messages) == 0 || req.Model != rr.Model || req.Raw != nil {
			t.Fatalf("request %+v from %s", req, body)
		}
	})
}
