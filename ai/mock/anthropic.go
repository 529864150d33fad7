package mock

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/relia-dev/relia/ai/wire"
)

func (j *job) parseAnthropic(body []byte) error {
	j.api, j.op = APIAnthropic, "chat"
	var req wire.MessagesRequest
	if err := json.Unmarshal(body, &req); err != nil {
		return err
	}
	if len(req.Messages) == 0 {
		return errors.New("messages: empty")
	}
	if req.MaxTokens <= 0 {
		return errors.New("max_tokens: required")
	}
	j.model, j.stream, j.limit = req.Model, req.Stream, req.MaxTokens
	if s := wire.ContentText(req.System); s != "" {
		j.texts = append(j.texts, s)
	}
	for _, m := range req.Messages {
		j.texts = append(j.texts, wire.ContentText(m.Content))
	}
	return nil
}

type anthropic struct{}

func (anthropic) writeError(w http.ResponseWriter, status int, msg, _ string, retryAfter time.Duration) {
	if retryAfter > 0 {
		w.Header().Set("Retry-After", retryAfterSeconds(retryAfter))
	}
	writeJSON(w, status, wire.AnthropicErrorBody{Type: "error", Error: wire.AnthropicError{Type: wire.AnthropicErrorType(status), Message: msg}})
}

func (anthropic) writeEmbeddings(w http.ResponseWriter, _ *job, _ [][]float64) {
	http.Error(w, "not found", http.StatusNotFound)
}

func (a *answer) anthropicStop() *string {
	s := "end_turn"
	if a.finish == "length" {
		s = "max_tokens"
	}
	return &s
}

func (a *answer) message() wire.MessagesResponse {
	return wire.MessagesResponse{
		ID: fmt.Sprintf("msg_mock%d", a.n), Type: "message", Role: "assistant", Model: a.model,
		Content: []wire.ContentBlock{},
		Usage:   wire.AnthropicUsage{InputTokens: a.prompt, OutputTokens: 1},
	}
}

func (anthropic) answer(a *answer) []byte {
	m := a.message()
	m.Content = []wire.ContentBlock{{Type: "text", Text: a.text()}}
	m.StopReason = a.anthropicStop()
	m.Usage.OutputTokens = len(a.tokens)
	b, _ := json.Marshal(m)
	return b
}

func (anthropic) streamType() string { return "text/event-stream" }

func (anthropic) streamStart(buf []byte, a *answer) []byte {
	m := a.message()
	zero := 0
	buf = appendJSONEvent(buf, wire.EventMessageStart, wire.StreamEvent{Type: wire.EventMessageStart, Message: &m})
	buf = appendJSONEvent(buf, wire.EventContentBlockStart, wire.StreamEvent{Type: wire.EventContentBlockStart, Index: &zero, ContentBlock: &wire.ContentBlock{Type: "text", Text: ""}})
	return appendJSONEvent(buf, wire.EventPing, wire.StreamEvent{Type: wire.EventPing})
}

func (anthropic) streamToken(buf []byte, _ *answer, _ int, tok string) []byte {
	zero := 0
	return appendJSONEvent(buf, wire.EventContentBlockDelta, wire.StreamEvent{Type: wire.EventContentBlockDelta, Index: &zero, Delta: &wire.StreamDelta{Type: "text_delta", Text: tok}})
}

func (anthropic) streamEnd(buf []byte, a *answer) []byte {
	zero := 0
	buf = appendJSONEvent(buf, wire.EventContentBlockStop, wire.StreamEvent{Type: wire.EventContentBlockStop, Index: &zero})
	buf = appendJSONEvent(buf, wire.EventMessageDelta, wire.StreamEvent{Type: wire.EventMessageDelta, Delta: &wire.StreamDelta{StopReason: a.anthropicStop()}, Usage: &wire.AnthropicUsage{OutputTokens: len(a.tokens)}})
	return appendJSONEvent(buf, wire.EventMessageStop, wire.StreamEvent{Type: wire.EventMessageStop})
}

func (anthropic) streamError(buf []byte, _ *answer, status int, msg string) []byte {
	return appendJSONEvent(buf, wire.EventError, wire.AnthropicErrorBody{Type: "error", Error: wire.AnthropicError{Type: wire.AnthropicErrorType(status), Message: msg}})
}
