package ai

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"github.com/relia-dev/relia/ai/wire"
)

// egress writes answers, streams and errors in an ingress's format.
type egress interface {
	writeError(w http.ResponseWriter, e *apiError)
	writeResponse(w http.ResponseWriter, resp *wire.ChatResponse, raw []byte, t *target)
	streamStart(buf []byte, t *target) []byte
	streamPiece(buf []byte, p piece, sw *streamWriter) []byte
	streamEnd(buf []byte, sw *streamWriter) []byte
	streamFail(buf []byte, e *apiError, sw *streamWriter) []byte
}

// openAIEgress answers in OpenAI's format.
type openAIEgress struct{}

func (openAIEgress) writeError(w http.ResponseWriter, e *apiError) {
	e.headers(w.Header())
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(e.status)
	w.Write(e.body())
}

func (openAIEgress) writeResponse(w http.ResponseWriter, resp *wire.ChatResponse, raw []byte, _ *target) {
	if raw != nil {
		w.Header()["Content-Type"] = jsonContentType
		w.WriteHeader(http.StatusOK)
		w.Write(raw)
		return
	}
	writeJSON(w, http.StatusOK, resp)
}

func (openAIEgress) streamStart(buf []byte, _ *target) []byte { return buf }

func (openAIEgress) streamPiece(buf []byte, p piece, sw *streamWriter) []byte {
	if p.usageOnly && !sw.includeUsage {
		return buf // relia asked for the usage; the client did not
	}
	if p.raw != nil {
		return wire.AppendSSE(buf, "", p.raw)
	}
	if p.chunk == nil {
		return buf
	}
	b, _ := json.Marshal(p.chunk)
	return wire.AppendSSE(buf, "", b)
}

func (openAIEgress) streamEnd(buf []byte, sw *streamWriter) []byte {
	if sw.includeUsage && sw.t.prov.cfg.Type != ProviderOpenAI && sw.t.prov.cfg.Type != ProviderOpenAICompatible && sw.t.prov.cfg.Type != ProviderAzure {
		c := wire.ChatChunk{ID: sw.id, Object: "chat.completion.chunk", Model: sw.t.model, Choices: []wire.ChunkChoice{}, Usage: sw.usage.openAI()}
		b, _ := json.Marshal(c)
		buf = wire.AppendSSE(buf, "", b)
	}
	return wire.AppendSSE(buf, "", wire.Done)
}

func (openAIEgress) streamFail(buf []byte, e *apiError, _ *streamWriter) []byte {
	return wire.AppendSSE(buf, "", e.body())
}

// anthropicEgress answers in Anthropic's Messages format, for clients of
// the Anthropic-compatible ingress.
type anthropicEgress struct{}

func anthropicErrorBody(e *apiError) []byte {
	typ := wire.AnthropicErrorType(e.status)
	b, _ := json.Marshal(wire.AnthropicErrorBody{Type: "error", Error: wire.AnthropicError{Type: typ, Message: e.message}})
	return b
}

func (anthropicEgress) writeError(w http.ResponseWriter, e *apiError) {
	e.headers(w.Header())
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(e.status)
	w.Write(anthropicErrorBody(e))
}

func stopToAnthropic(finish string) *string {
	s := "end_turn"
	switch finish {
	case "length":
		s = "max_tokens"
	case "tool_calls":
		s = "tool_use"
	case "content_filter":
		s = "refusal"
	}
	return &s
}

func (anthropicEgress) writeResponse(w http.ResponseWriter, resp *wire.ChatResponse, raw []byte, _ *target) {
	resp = decodeChat(resp, raw)
	m := wire.MessagesResponse{ID: resp.ID, Type: "message", Role: "assistant", Model: resp.Model, Content: []wire.ContentBlock{}}
	if !strings.HasPrefix(m.ID, "msg_") {
		m.ID = "msg_" + m.ID
	}
	if len(resp.Choices) > 0 {
		c := resp.Choices[0]
		if t := c.Message.Text(); t != "" {
			m.Content = append(m.Content, wire.ContentBlock{Type: "text", Text: t})
		}
		for _, tc := range c.Message.ToolCalls {
			input := json.RawMessage(tc.Function.Arguments)
			if !json.Valid(input) {
				input = json.RawMessage("{}")
			}
			m.Content = append(m.Content, wire.ContentBlock{Type: "tool_use", ID: tc.ID, Name: tc.Function.Name, Input: input})
		}
		m.StopReason = stopToAnthropic(c.FinishReason)
	}
	u := usageFromOpenAI(resp.Usage)
	m.Usage = wire.AnthropicUsage{InputTokens: u.InputTokens - u.CachedTokens, OutputTokens: u.OutputTokens, CacheReadInputTokens: u.CachedTokens}
	writeJSON(w, http.StatusOK, m)
}

func appendAnthropicEvent(buf []byte, ev wire.StreamEvent) []byte {
	b, _ := json.Marshal(ev)
	return wire.AppendSSE(buf, ev.Type, b)
}

func (anthropicEgress) streamStart(buf []byte, t *target) []byte {
	m := wire.MessagesResponse{ID: "msg_relia", Type: "message", Role: "assistant", Model: t.model, Content: []wire.ContentBlock{}}
	buf = appendAnthropicEvent(buf, wire.StreamEvent{Type: wire.EventMessageStart, Message: &m})
	zero := 0
	return appendAnthropicEvent(buf, wire.StreamEvent{Type: wire.EventContentBlockStart, Index: &zero, ContentBlock: &wire.ContentBlock{Type: "text", Text: ""}})
}

func (anthropicEgress) streamPiece(buf []byte, p piece, _ *streamWriter) []byte {
	c := p.chatChunk()
	if c == nil {
		return buf
	}
	zero := 0
	for _, ch := range c.Choices {
		if ch.Delta.Content != nil && *ch.Delta.Content != "" {
			buf = appendAnthropicEvent(buf, wire.StreamEvent{Type: wire.EventContentBlockDelta, Index: &zero, Delta: &wire.StreamDelta{Type: "text_delta", Text: *ch.Delta.Content}})
		}
	}
	return buf
}

func (anthropicEgress) streamEnd(buf []byte, sw *streamWriter) []byte {
	zero := 0
	buf = appendAnthropicEvent(buf, wire.StreamEvent{Type: wire.EventContentBlockStop, Index: &zero})
	u := wire.AnthropicUsage{InputTokens: sw.usage.InputTokens, OutputTokens: sw.usage.OutputTokens}
	buf = appendAnthropicEvent(buf, wire.StreamEvent{Type: wire.EventMessageDelta, Delta: &wire.StreamDelta{StopReason: stopToAnthropic(sw.finish)}, Usage: &u})
	return appendAnthropicEvent(buf, wire.StreamEvent{Type: wire.EventMessageStop})
}

func (anthropicEgress) streamFail(buf []byte, e *apiError, _ *streamWriter) []byte {
	return wire.AppendSSE(buf, wire.EventError, anthropicErrorBody(e))
}

// fromAnthropic translates a Messages request into the unified chat
// request: the system prompt becomes a system message, text blocks the
// messages' text, tool_use and tool_result blocks tool calls and tool
// messages.
func fromAnthropic(a *wire.MessagesRequest) (*wire.ChatRequest, error) {
	req := &wire.ChatRequest{Model: a.Model, Stream: a.Stream, Temperature: a.Temperature, TopP: a.TopP}
	if a.MaxTokens > 0 {
		n := a.MaxTokens
		req.MaxTokens = &n
	}
	if len(a.StopSequences) > 0 {
		req.Stop, _ = json.Marshal(a.StopSequences)
	}
	if s := wire.ContentText(a.System); s != "" {
		req.Messages = append(req.Messages, wire.ChatMessage{Role: "system", Content: wire.TextContent(s)})
	}
	for i, m := range a.Messages {
		if m.Role != "user" && m.Role != "assistant" {
			return nil, fmt.Errorf("messages[%d]: role %q (want user or assistant)", i, m.Role)
		}
		var blocks []wire.ContentBlock
		if len(m.Content) > 0 && m.Content[0] == '[' {
			if err := json.Unmarshal(m.Content, &blocks); err != nil {
				return nil, fmt.Errorf("messages[%d].content: %w", i, err)
			}
		} else {
			blocks = []wire.ContentBlock{{Type: "text", Text: wire.ContentText(m.Content)}}
		}
		msg := wire.ChatMessage{Role: m.Role}
		var text strings.Builder
		for _, b := range blocks {
			switch b.Type {
			case "text":
				text.WriteString(b.Text)
			case "tool_use":
				msg.ToolCalls = append(msg.ToolCalls, wire.ToolCall{ID: b.ID, Type: "function", Function: wire.ToolCallFunction{Name: b.Name, Arguments: string(b.Input)}})
			case "tool_result":
				req.Messages = append(req.Messages, wire.ChatMessage{Role: "tool", ToolCallID: b.ToolUseID, Content: wire.TextContent(wire.ContentText(b.Content))})
			}
		}
		if text.Len() > 0 || len(msg.ToolCalls) > 0 {
			msg.Content = wire.TextContent(text.String())
			req.Messages = append(req.Messages, msg)
		}
	}
	for _, t := range a.Tools {
		req.Tools = append(req.Tools, wire.Tool{Type: "function", Function: wire.ToolFunction{Name: t.Name, Description: t.Description, Parameters: t.InputSchema}})
	}
	if len(req.Messages) == 0 {
		return nil, fmt.Errorf("messages: empty")
	}
	return req, nil
}
