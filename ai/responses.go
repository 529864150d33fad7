package ai

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"github.com/relia-dev/relia/ai/wire"
)

// OpenAI's Responses API (POST /v1/responses) for text: its input (a
// string, or message items with text parts) and instructions become a
// unified chat request, which fails over like any other; the answer,
// whole or streamed, is written back as a response object and the
// Responses API's stream events. Tools, files, images, reasoning items
// and stored conversations (previous_response_id) are not translated:
// members of the request relia does not know are not sent to providers,
// whose chat APIs have no place for them.

// fromResponses translates a Responses request into the unified chat
// request.
func fromResponses(rr *wire.ResponsesRequest) (*wire.ChatRequest, error) {
	req := &wire.ChatRequest{Model: rr.Model, Stream: rr.Stream, Temperature: rr.Temperature, TopP: rr.TopP, MaxTokens: rr.MaxOutputTokens, User: rr.User}
	if rr.Instructions != "" {
		req.Messages = append(req.Messages, wire.ChatMessage{Role: "system", Content: wire.TextContent(rr.Instructions)})
	}
	in := rr.Input
	switch {
	case len(in) == 0:
		return nil, fmt.Errorf("input: missing")
	case in[0] == '"':
		var s string
		if err := json.Unmarshal(in, &s); err != nil {
			return nil, fmt.Errorf("input: %w", err)
		}
		req.Messages = append(req.Messages, wire.ChatMessage{Role: "user", Content: wire.TextContent(s)})
	default:
		var items []wire.ResponseInputItem
		if err := json.Unmarshal(in, &items); err != nil {
			return nil, fmt.Errorf("input: %w", err)
		}
		for i, it := range items {
			if it.Type != "" && it.Type != "message" {
				return nil, fmt.Errorf("input[%d]: items of type %q are not translated by relia (message items with text are)", i, it.Type)
			}
			role := it.Role
			switch role {
			case "user", "assistant", "system":
			case "developer":
				role = "system"
			default:
				return nil, fmt.Errorf("input[%d].role: %q (want user, assistant, system or developer)", i, it.Role)
			}
			text, err := responseText(it.Content)
			if err != nil {
				return nil, fmt.Errorf("input[%d].content: %w", i, err)
			}
			req.Messages = append(req.Messages, wire.ChatMessage{Role: role, Content: wire.TextContent(text)})
		}
	}
	if len(req.Messages) == 0 {
		return nil, fmt.Errorf("input: empty")
	}
	return req, nil
}

// responseText is an input message's text: a string, or its text parts
// joined.
func responseText(raw json.RawMessage) (string, error) {
	if len(raw) > 0 && raw[0] == '"' {
		var s string
		err := json.Unmarshal(raw, &s)
		return s, err
	}
	var parts []wire.ResponseContentPart
	if err := json.Unmarshal(raw, &parts); err != nil {
		return "", err
	}
	var b strings.Builder
	for j, p := range parts {
		switch p.Type {
		case "input_text", "output_text", "text":
			b.WriteString(p.Text)
		default:
			return "", fmt.Errorf("[%d]: parts of type %q are not translated by relia (input_text is)", j, p.Type)
		}
	}
	return b.String(), nil
}

// responsesEgress answers in the Responses API's format. It is made per
// call: it echoes the request's settings and counts its stream's events.
type responsesEgress struct {
	openAIEgress // errors are OpenAI's
	req          *wire.ResponsesRequest
	created      int64
	seq          int
	text         strings.Builder
}

func (e *responsesEgress) response(id, model, status string) *wire.Response {
	r := &wire.Response{ID: id, Object: "response", CreatedAt: e.created, Status: status, Model: model, Output: []wire.ResponseOutputItem{},
		MaxOutputTokens: e.req.MaxOutputTokens, Temperature: e.req.Temperature, TopP: e.req.TopP, Metadata: e.req.Metadata}
	if e.req.Instructions != "" {
		r.Instructions = &e.req.Instructions
	}
	if len(r.Metadata) == 0 {
		r.Metadata = json.RawMessage("{}")
	}
	return r
}

func responseID(id string) string {
	if strings.HasPrefix(id, "resp_") {
		return id
	}
	return "resp_" + id
}

func outputMessage(id, status, text string) wire.ResponseOutputItem {
	return wire.ResponseOutputItem{Type: "message", ID: "msg_" + strings.TrimPrefix(id, "resp_"), Status: status, Role: "assistant",
		Content: []wire.ResponseContentPart{{Type: "output_text", Text: text, Annotations: []json.RawMessage{}}}}
}

func responseUsage(u Usage) *wire.ResponseUsage {
	return &wire.ResponseUsage{InputTokens: u.InputTokens, InputTokensDetails: wire.ResponseInputDetails{CachedTokens: u.CachedTokens}, OutputTokens: u.OutputTokens, TotalTokens: u.Total()}
}

// finishStatus maps a chat finish reason to a response's status.
func finishStatus(r *wire.Response, finish string) {
	switch finish {
	case "length":
		r.Status, r.IncompleteDetails = "incomplete", &wire.IncompleteDetails{Reason: "max_output_tokens"}
	case "content_filter":
		r.Status, r.IncompleteDetails = "incomplete", &wire.IncompleteDetails{Reason: "content_filter"}
	default:
		r.Status = "completed"
	}
}

func (e *responsesEgress) writeResponse(w http.ResponseWriter, resp *wire.ChatResponse, raw []byte, _ *target) {
	resp = decodeChat(resp, raw)
	if resp.Created > 0 {
		e.created = resp.Created
	}
	id := responseID(resp.ID)
	r := e.response(id, resp.Model, "completed")
	finish := ""
	if len(resp.Choices) > 0 {
		c := resp.Choices[0]
		r.Output = append(r.Output, outputMessage(id, "completed", c.Message.Text()))
		finish = c.FinishReason
	}
	finishStatus(r, finish)
	r.Usage = responseUsage(usageFromOpenAI(resp.Usage))
	writeJSON(w, http.StatusOK, r)
}

func (e *responsesEgress) event(buf []byte, ev wire.ResponseStreamEvent) []byte {
	ev.SequenceNumber = e.seq
	e.seq++
	b, _ := json.Marshal(ev)
	return wire.AppendSSE(buf, ev.Type, b)
}

// streamID is the id of a streamed response: the provider's chunks
// carry theirs only as they come, so relia names it.
const streamID = "resp_relia"

func (e *responsesEgress) streamStart(buf []byte, t *target) []byte {
	zero := 0
	buf = e.event(buf, wire.ResponseStreamEvent{Type: "response.created", Response: e.response(streamID, t.model, "in_progress")})
	buf = e.event(buf, wire.ResponseStreamEvent{Type: "response.in_progress", Response: e.response(streamID, t.model, "in_progress")})
	item := outputMessage(streamID, "in_progress", "")
	item.Content = []wire.ResponseContentPart{}
	buf = e.event(buf, wire.ResponseStreamEvent{Type: "response.output_item.added", OutputIndex: &zero, Item: &item})
	return e.event(buf, wire.ResponseStreamEvent{Type: "response.content_part.added", ItemID: item.ID, OutputIndex: &zero, ContentIndex: &zero,
		Part: &wire.ResponseContentPart{Type: "output_text", Annotations: []json.RawMessage{}}})
}

func (e *responsesEgress) streamPiece(buf []byte, p piece, _ *streamWriter) []byte {
	c := p.chatChunk()
	if c == nil {
		return buf
	}
	zero := 0
	for _, ch := range c.Choices {
		if d := ch.Delta.Content; d != nil && *d != "" {
			e.text.WriteString(*d)
			buf = e.event(buf, wire.ResponseStreamEvent{Type: "response.output_text.delta", ItemID: "msg_relia", OutputIndex: &zero, ContentIndex: &zero, Delta: d})
		}
	}
	return buf
}

func (e *responsesEgress) streamEnd(buf []byte, sw *streamWriter) []byte {
	zero := 0
	text := e.text.String()
	item := outputMessage(streamID, "completed", text)
	buf = e.event(buf, wire.ResponseStreamEvent{Type: "response.output_text.done", ItemID: item.ID, OutputIndex: &zero, ContentIndex: &zero, Text: &text})
	buf = e.event(buf, wire.ResponseStreamEvent{Type: "response.content_part.done", ItemID: item.ID, OutputIndex: &zero, ContentIndex: &zero, Part: &item.Content[0]})
	buf = e.event(buf, wire.ResponseStreamEvent{Type: "response.output_item.done", OutputIndex: &zero, Item: &item})
	r := e.response(streamID, sw.t.model, "completed")
	r.Output = append(r.Output, item)
	finishStatus(r, sw.finish)
	r.Usage = responseUsage(sw.usage)
	return e.event(buf, wire.ResponseStreamEvent{Type: "response.completed", Response: r})
}

func (e *responsesEgress) streamFail(buf []byte, ae *apiError, _ *streamWriter) []byte {
	code := ae.code
	if code == "" {
		code = ae.typ
	}
	return e.event(buf, wire.ResponseStreamEvent{Type: "error", Code: code, Message: ae.message})
}
