package ai

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/relia-dev/relia/ai/wire"
)

// geminiAdapter speaks Google's Gemini API (generateContent,
// streamGenerateContent with alt=sse, batchEmbedContents).
type geminiAdapter struct{}

func (geminiAdapter) url(t *target, method string) string {
	return strings.TrimSuffix(t.provider.URL, "/") + "/v1beta/models/" + url.PathEscape(t.model) + ":" + method
}

// toGemini translates a chat request: system messages become the system
// instruction, assistant turns the model's.
func toGemini(req *wire.ChatRequest) wire.GenerateContentRequest {
	var out wire.GenerateContentRequest
	var system []wire.GeminiPart
	for i := range req.Messages {
		m := &req.Messages[i]
		switch m.Role {
		case "system", "developer":
			system = append(system, wire.GeminiPart{Text: m.Text()})
		case "assistant":
			out.Contents = append(out.Contents, wire.GeminiContent{Role: "model", Parts: []wire.GeminiPart{{Text: m.Text()}}})
		default:
			out.Contents = append(out.Contents, wire.GeminiContent{Role: "user", Parts: []wire.GeminiPart{{Text: m.Text()}}})
		}
	}
	if len(system) > 0 {
		out.SystemInstruction = &wire.GeminiContent{Parts: system}
	}
	g := &wire.GenerationConfig{Temperature: req.Temperature, TopP: req.TopP, StopSequences: req.StopList()}
	if n, ok := req.OutputLimit(); ok {
		g.MaxOutputTokens = &n
	}
	var rf struct {
		Type string `json:"type"`
	}
	if json.Unmarshal(req.ResponseFormat, &rf) == nil && (rf.Type == "json_object" || rf.Type == "json_schema") {
		g.ResponseMimeType = "application/json"
	}
	out.GenerationConfig = g
	return out
}

func (a geminiAdapter) chatRequest(ctx context.Context, t *target, req *wire.ChatRequest) (*http.Request, error) {
	u := a.url(t, "generateContent")
	if req.Stream {
		u = a.url(t, "streamGenerateContent") + "?alt=sse"
	}
	r, err := newJSONRequest(ctx, u, toGemini(req))
	if err != nil {
		return nil, err
	}
	r.Header.Set("X-Goog-Api-Key", t.key)
	return r, nil
}

func finishFromGemini(s string) string {
	switch s {
	case "":
		return ""
	case wire.GeminiMaxTokens:
		return "length"
	case "SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII":
		return "content_filter"
	}
	return "stop"
}

func usageFromGemini(u *wire.UsageMetadata) Usage {
	if u == nil {
		return Usage{}
	}
	return Usage{InputTokens: u.PromptTokenCount, OutputTokens: u.CandidatesTokenCount, CachedTokens: u.CachedContentTokenCount}
}

func geminiText(c wire.GeminiContent) string {
	var b strings.Builder
	for _, p := range c.Parts {
		b.WriteString(p.Text)
	}
	return b.String()
}

func (geminiAdapter) chatResponse(t *target, body []byte) (*wire.ChatResponse, []byte, error) {
	var g wire.GenerateContentResponse
	if err := json.Unmarshal(body, &g); err != nil {
		return nil, nil, fmt.Errorf("decoding the provider's answer: %w", err)
	}
	resp := &wire.ChatResponse{ID: g.ResponseID, Object: "chat.completion", Model: t.model, Usage: usageFromGemini(g.UsageMetadata).openAI()}
	for i, c := range g.Candidates {
		resp.Choices = append(resp.Choices, wire.ChatChoice{Index: i, Message: wire.ChatMessage{Role: "assistant", Content: wire.TextContent(geminiText(c.Content))}, FinishReason: finishFromGemini(c.FinishReason)})
	}
	return resp, nil, nil
}

func (geminiAdapter) chatStream(t *target, body io.Reader) streamDecoder {
	return &geminiStream{r: wire.NewSSEReader(body, 0), model: t.model}
}

// geminiStream reads Gemini's stream: each event a whole response
// holding the next text; the one with a finish reason is the last, since
// the stream has no end marker of its own.
type geminiStream struct {
	r        *wire.SSEReader
	model    string
	started  bool
	finished bool
}

func (s *geminiStream) buffered() int { return s.r.Buffered() }
func (s *geminiStream) idle()         { s.r.Idle() }
func (s *geminiStream) release()      { s.r.Idle() }

func (s *geminiStream) next() (piece, error) {
	ev, err := s.r.Next()
	if err == io.EOF {
		if s.finished {
			return piece{}, io.EOF
		}
		return piece{}, io.ErrUnexpectedEOF
	}
	if err != nil {
		return piece{}, err
	}
	var g wire.GenerateContentResponse
	if err := json.Unmarshal(ev.Data, &g); err != nil {
		return piece{}, fmt.Errorf("decoding a stream event: %w", err)
	}
	if g.Extra["error"] != nil {
		var eb wire.GeminiErrorBody
		json.Unmarshal(ev.Data, &eb)
		e := classify(eb.Error.Code, http.Header{}, eb.Error.Message, "", nil, time.Time{})
		return piece{}, e
	}
	c := &wire.ChatChunk{ID: g.ResponseID, Object: "chat.completion.chunk", Model: s.model}
	p := piece{chunk: c}
	ch := wire.ChunkChoice{}
	if !s.started {
		ch.Delta.Role = "assistant"
		s.started = true
	}
	if len(g.Candidates) > 0 {
		cand := g.Candidates[0]
		if text := geminiText(cand.Content); text != "" {
			ch.Delta.Content = &text
			p.tokens = true
		}
		if f := finishFromGemini(cand.FinishReason); f != "" {
			ch.FinishReason = &f
			p.finish = f
			s.finished = true
		}
	}
	c.Choices = []wire.ChunkChoice{ch}
	if g.UsageMetadata != nil {
		u := usageFromGemini(g.UsageMetadata)
		p.usage = &u
	}
	return p, nil
}

func (a geminiAdapter) embedRequest(ctx context.Context, t *target, req *wire.EmbeddingRequest) (*http.Request, error) {
	inputs := req.Inputs()
	if len(inputs) == 0 {
		return nil, fmt.Errorf("input: gemini embeddings take text inputs only")
	}
	var body wire.BatchEmbedRequest
	for _, in := range inputs {
		body.Requests = append(body.Requests, wire.EmbedContentRequest{Model: "models/" + t.model, Content: wire.GeminiContent{Parts: []wire.GeminiPart{{Text: in}}}})
	}
	r, err := newJSONRequest(ctx, a.url(t, "batchEmbedContents"), body)
	if err != nil {
		return nil, err
	}
	r.Header.Set("X-Goog-Api-Key", t.key)
	return r, nil
}

func (geminiAdapter) embedResponse(t *target, req *wire.EmbeddingRequest, body []byte) ([]byte, Usage, error) {
	var g wire.BatchEmbedResponse
	if err := json.Unmarshal(body, &g); err != nil {
		return nil, Usage{}, fmt.Errorf("decoding the provider's answer: %w", err)
	}
	// Gemini reports no usage for embeddings: relia counts the inputs.
	tokens := 0
	for _, in := range req.Inputs() {
		tokens += EstimateText(in)
	}
	out := wire.EmbeddingResponse{Object: "list", Model: t.model, Usage: wire.Usage{PromptTokens: tokens, TotalTokens: tokens}}
	for i, e := range g.Embeddings {
		v, _ := json.Marshal(e.Values)
		out.Data = append(out.Data, wire.Embedding{Object: "embedding", Index: i, Embedding: v})
	}
	b, err := json.Marshal(out)
	return b, Usage{InputTokens: tokens}, err
}

func (geminiAdapter) errorOf(status int, h http.Header, body []byte, now time.Time) *callError {
	var eb wire.GeminiErrorBody
	msg := http.StatusText(status)
	if json.Unmarshal(body, &eb) == nil && eb.Error.Message != "" {
		msg = eb.Error.Message
	}
	return classify(status, h, msg, "", body, now)
}
