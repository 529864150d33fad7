package ai

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/relia-dev/relia/ai/wire"
)

// anthropicAdapter speaks Anthropic's Messages API.
type anthropicAdapter struct{}

// DefaultAnthropicVersion is the anthropic-version header relia sends
// when the provider sets none.
const DefaultAnthropicVersion = "2023-06-01"

// defaultMaxTokens is the max_tokens sent to providers that require one
// when neither the request nor the catalog gives it.
const defaultMaxTokens = 4096

// toAnthropic translates a chat request: system messages become the
// system prompt, tool calls and results become tool_use and tool_result
// blocks, and the output cap becomes the required max_tokens.
func toAnthropic(req *wire.ChatRequest, model string, maxOut int) (wire.MessagesRequest, error) {
	out := wire.MessagesRequest{Model: model, Stream: req.Stream, Temperature: req.Temperature, TopP: req.TopP, StopSequences: req.StopList()}
	if n, ok := req.OutputLimit(); ok {
		out.MaxTokens = n
	} else if maxOut > 0 {
		out.MaxTokens = maxOut
	} else {
		out.MaxTokens = defaultMaxTokens
	}
	var system []string
	for i := range req.Messages {
		m := &req.Messages[i]
		switch m.Role {
		case "system", "developer":
			system = append(system, m.Text())
		case "tool":
			blocks := []wire.ContentBlock{{Type: "tool_result", ToolUseID: m.ToolCallID, Content: wire.TextContent(m.Text())}}
			out.Messages = appendAnthropic(out.Messages, "user", blocks)
		case "assistant":
			var blocks []wire.ContentBlock
			if t := m.Text(); t != "" {
				blocks = append(blocks, wire.ContentBlock{Type: "text", Text: t})
			}
			for _, tc := range m.ToolCalls {
				input := json.RawMessage(tc.Function.Arguments)
				if !json.Valid(input) {
					input = json.RawMessage("{}")
				}
				blocks = append(blocks, wire.ContentBlock{Type: "tool_use", ID: tc.ID, Name: tc.Function.Name, Input: input})
			}
			out.Messages = appendAnthropic(out.Messages, "assistant", blocks)
		case "user":
			out.Messages = appendAnthropic(out.Messages, "user", []wire.ContentBlock{{Type: "text", Text: m.Text()}})
		default:
			return out, fmt.Errorf("messages: role %q has no Anthropic counterpart", m.Role)
		}
	}
	if len(system) > 0 {
		out.System = wire.TextContent(strings.Join(system, "\n\n"))
	}
	for _, t := range req.Tools {
		schema := t.Function.Parameters
		if len(schema) == 0 {
			schema = json.RawMessage(`{"type":"object"}`)
		}
		out.Tools = append(out.Tools, wire.AnthropicTool{Name: t.Function.Name, Description: t.Function.Description, InputSchema: schema})
	}
	if len(req.ToolChoice) > 0 {
		var s string
		var named struct {
			Function struct {
				Name string `json:"name"`
			} `json:"function"`
		}
		switch {
		case json.Unmarshal(req.ToolChoice, &s) == nil:
			m := map[string]string{"auto": "auto", "required": "any", "none": "none"}
			if t, ok := m[s]; ok {
				out.ToolChoice, _ = json.Marshal(map[string]string{"type": t})
			}
		case json.Unmarshal(req.ToolChoice, &named) == nil && named.Function.Name != "":
			out.ToolChoice, _ = json.Marshal(map[string]string{"type": "tool", "name": named.Function.Name})
		}
	}
	return out, nil
}

// appendAnthropic adds blocks as a turn of role, merged into the last
// turn when it has the same role (Anthropic wants turns to alternate).
func appendAnthropic(msgs []wire.AnthropicMessage, role string, blocks []wire.ContentBlock) []wire.AnthropicMessage {
	if n := len(msgs); n > 0 && msgs[n-1].Role == role {
		var prev []wire.ContentBlock
		json.Unmarshal(msgs[n-1].Content, &prev)
		msgs[n-1].Content, _ = json.Marshal(append(prev, blocks...))
		return msgs
	}
	content, _ := json.Marshal(blocks)
	return append(msgs, wire.AnthropicMessage{Role: role, Content: content})
}

func (anthropicAdapter) chatRequest(ctx context.Context, t *target, req *wire.ChatRequest) (*http.Request, error) {
	body, err := toAnthropic(req, t.model, t.maxOutput)
	if err != nil {
		return nil, err
	}
	r, err := newJSONRequest(ctx, strings.TrimSuffix(t.provider.URL, "/")+"/v1/messages", body)
	if err != nil {
		return nil, err
	}
	r.Header.Set("X-Api-Key", t.key)
	v := t.provider.APIVersion
	if v == "" {
		v = DefaultAnthropicVersion
	}
	r.Header.Set("Anthropic-Version", v)
	return r, nil
}

// finishFromAnthropic maps a stop_reason to OpenAI's finish_reason.
func finishFromAnthropic(s *string) string {
	if s == nil {
		return ""
	}
	switch *s {
	case "max_tokens":
		return "length"
	case "tool_use":
		return "tool_calls"
	case "refusal":
		return "content_filter"
	}
	return "stop"
}

func usageFromAnthropic(u wire.AnthropicUsage) Usage {
	return Usage{
		InputTokens:  u.InputTokens + u.CacheCreationInputTokens + u.CacheReadInputTokens,
		OutputTokens: u.OutputTokens,
		CachedTokens: u.CacheReadInputTokens,
	}
}

func (anthropicAdapter) chatResponse(_ *target, body []byte) (*wire.ChatResponse, []byte, error) {
	var m wire.MessagesResponse
	if err := json.Unmarshal(body, &m); err != nil {
		return nil, nil, fmt.Errorf("decoding the provider's answer: %w", err)
	}
	msg := wire.ChatMessage{Role: "assistant"}
	var text strings.Builder
	for _, b := range m.Content {
		switch b.Type {
		case "text":
			text.WriteString(b.Text)
		case "tool_use":
			msg.ToolCalls = append(msg.ToolCalls, wire.ToolCall{ID: b.ID, Type: "function", Function: wire.ToolCallFunction{Name: b.Name, Arguments: string(b.Input)}})
		}
	}
	msg.Content = wire.TextContent(text.String())
	u := usageFromAnthropic(m.Usage)
	return &wire.ChatResponse{
		ID: m.ID, Object: "chat.completion", Model: m.Model,
		Choices: []wire.ChatChoice{{Message: msg, FinishReason: finishFromAnthropic(m.StopReason)}},
		Usage:   u.openAI(),
	}, nil, nil
}

func (anthropicAdapter) chatStream(t *target, body io.Reader) streamDecoder {
	return &anthropicStream{r: wire.NewSSEReader(body, 0), body: body, model: t.model}
}

// anthropicStream reads Anthropic's stream events as chunks.
type anthropicStream struct {
	r     *wire.SSEReader
	body  io.Reader
	model string
	id    string
	usage Usage
	tools int // tool_use blocks seen, numbering OpenAI's tool call index
	done  bool
}

func (s *anthropicStream) chunk(d wire.Delta, finish *string) *wire.ChatChunk {
	return &wire.ChatChunk{ID: s.id, Object: "chat.completion.chunk", Model: s.model, Choices: []wire.ChunkChoice{{Delta: d, FinishReason: finish}}}
}

func (s *anthropicStream) buffered() int { return s.r.Buffered() }
func (s *anthropicStream) idle()         { s.r.Idle() }
func (s *anthropicStream) release()      { s.r.Idle() }

func (s *anthropicStream) next() (piece, error) {
	for {
		if s.done {
			return piece{}, io.EOF
		}
		ev, err := s.r.Next()
		if err == io.EOF {
			return piece{}, io.ErrUnexpectedEOF // no message_stop
		}
		if err != nil {
			return piece{}, err
		}
		var e wire.StreamEvent
		if err := json.Unmarshal(ev.Data, &e); err != nil {
			return piece{}, fmt.Errorf("decoding a stream event: %w", err)
		}
		switch e.Type {
		case wire.EventMessageStart:
			if e.Message != nil {
				s.id = e.Message.ID
				s.usage = usageFromAnthropic(e.Message.Usage)
				s.usage.OutputTokens = 0
			}
			return piece{chunk: s.chunk(wire.Delta{Role: "assistant", Content: strPtr("")}, nil)}, nil
		case wire.EventContentBlockStart:
			if b := e.ContentBlock; b != nil && b.Type == "tool_use" {
				i := s.tools
				s.tools++
				tc := wire.ToolCall{Index: &i, ID: b.ID, Type: "function", Function: wire.ToolCallFunction{Name: b.Name}}
				return piece{chunk: s.chunk(wire.Delta{ToolCalls: []wire.ToolCall{tc}}, nil), tokens: true}, nil
			}
		case wire.EventContentBlockDelta:
			if d := e.Delta; d != nil {
				switch d.Type {
				case "text_delta":
					return piece{chunk: s.chunk(wire.Delta{Content: &d.Text}, nil), tokens: true}, nil
				case "input_json_delta":
					i := s.tools - 1
					tc := wire.ToolCall{Index: &i, Function: wire.ToolCallFunction{Arguments: d.PartialJSON}}
					return piece{chunk: s.chunk(wire.Delta{ToolCalls: []wire.ToolCall{tc}}, nil), tokens: true}, nil
				}
			}
		case wire.EventMessageDelta:
			if e.Usage != nil {
				s.usage.OutputTokens = e.Usage.OutputTokens
			}
			var stop *string
			if e.Delta != nil {
				stop = e.Delta.StopReason
			}
			finish := finishFromAnthropic(stop)
			u := s.usage
			return piece{chunk: s.chunk(wire.Delta{}, &finish), finish: finish, usage: &u}, nil
		case wire.EventMessageStop:
			s.done = true
			finishAtHand(s.body)
			return piece{}, io.EOF
		case wire.EventError:
			var eb wire.AnthropicErrorBody
			json.Unmarshal(ev.Data, &eb)
			return piece{}, streamErrorOf(eb.Error.Type, eb.Error.Message)
		}
	}
}

func (anthropicAdapter) embedRequest(context.Context, *target, *wire.EmbeddingRequest) (*http.Request, error) {
	return nil, errNoEmbeddings
}

func (anthropicAdapter) embedResponse(*target, *wire.EmbeddingRequest, []byte) ([]byte, Usage, error) {
	return nil, Usage{}, errNoEmbeddings
}

func (anthropicAdapter) errorOf(status int, h http.Header, body []byte, now time.Time) *callError {
	var eb wire.AnthropicErrorBody
	msg := http.StatusText(status)
	if json.Unmarshal(body, &eb) == nil && eb.Error.Message != "" {
		msg = eb.Error.Message
	}
	return classify(status, h, msg, "", body, now)
}
