package mock

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/relia-dev/relia/ai/wire"
)

// parseGemini reads /v1beta/models/{model}:{generateContent |
// streamGenerateContent | batchEmbedContents}.
func (j *job) parseGemini(p, alt string, body []byte) error {
	j.api, j.op = APIGemini, "chat"
	rest := p[strings.Index(p, "/models/")+len("/models/"):]
	model, method, ok := strings.Cut(rest, ":")
	j.model = model
	if !ok {
		return errors.New("path: no :method after the model")
	}
	switch method {
	case "generateContent":
	case "streamGenerateContent":
		if alt != "sse" {
			return errors.New("streamGenerateContent: only alt=sse is simulated")
		}
		j.stream = true
	case "batchEmbedContents":
		j.op = "embeddings"
		var req wire.BatchEmbedRequest
		if err := json.Unmarshal(body, &req); err != nil {
			return err
		}
		for _, r := range req.Requests {
			var b strings.Builder
			for _, part := range r.Content.Parts {
				b.WriteString(part.Text)
			}
			j.inputs = append(j.inputs, b.String())
		}
		if len(j.inputs) == 0 {
			return errors.New("requests: empty")
		}
		return nil
	default:
		return fmt.Errorf("unknown method %q", method)
	}
	var req wire.GenerateContentRequest
	if err := json.Unmarshal(body, &req); err != nil {
		return err
	}
	if len(req.Contents) == 0 {
		return errors.New("contents: empty")
	}
	if req.SystemInstruction != nil {
		j.texts = append(j.texts, geminiText(*req.SystemInstruction))
	}
	for _, c := range req.Contents {
		j.texts = append(j.texts, geminiText(c))
	}
	if g := req.GenerationConfig; g != nil && g.MaxOutputTokens != nil {
		j.limit = *g.MaxOutputTokens
	}
	return nil
}

func geminiText(c wire.GeminiContent) string {
	var b strings.Builder
	for _, p := range c.Parts {
		b.WriteString(p.Text)
	}
	return b.String()
}

type gemini struct{}

func (gemini) writeError(w http.ResponseWriter, status int, msg, _ string, retryAfter time.Duration) {
	if retryAfter > 0 {
		w.Header().Set("Retry-After", retryAfterSeconds(retryAfter))
	}
	writeJSON(w, status, wire.GeminiErrorBody{Error: wire.GeminiError{Code: status, Message: msg, Status: wire.GeminiStatus(status)}})
}

func (gemini) writeEmbeddings(w http.ResponseWriter, _ *job, vecs [][]float64) {
	var resp wire.BatchEmbedResponse
	resp.Embeddings = make([]struct {
		Values []float64 `json:"values"`
	}, len(vecs))
	for i, v := range vecs {
		resp.Embeddings[i].Values = v
	}
	writeJSON(w, http.StatusOK, resp)
}

func (a *answer) geminiFinish() string {
	if a.finish == "length" {
		return wire.GeminiMaxTokens
	}
	return wire.GeminiStop
}

func (a *answer) geminiChunk(text, finish string, outTokens int) wire.GenerateContentResponse {
	return wire.GenerateContentResponse{
		Candidates: []wire.GeminiCandidate{{
			Content:      wire.GeminiContent{Role: "model", Parts: []wire.GeminiPart{{Text: text}}},
			FinishReason: finish,
		}},
		UsageMetadata: &wire.UsageMetadata{PromptTokenCount: a.prompt, CandidatesTokenCount: outTokens, TotalTokenCount: a.prompt + outTokens},
		ModelVersion:  a.model,
		ResponseID:    fmt.Sprintf("mock%d", a.n),
	}
}

func (gemini) answer(a *answer) []byte {
	b, _ := json.Marshal(a.geminiChunk(a.text(), a.geminiFinish(), len(a.tokens)))
	return b
}

func (gemini) streamType() string { return "text/event-stream" }

func (gemini) streamStart(buf []byte, _ *answer) []byte { return buf }

func (gemini) streamToken(buf []byte, a *answer, i int, tok string) []byte {
	finish := ""
	if i == len(a.tokens)-1 {
		finish = a.geminiFinish()
	}
	return appendJSONEvent(buf, "", a.geminiChunk(tok, finish, i+1))
}

func (gemini) streamEnd(buf []byte, _ *answer) []byte { return buf }

func (gemini) streamError(buf []byte, _ *answer, status int, msg string) []byte {
	return appendJSONEvent(buf, "", wire.GeminiErrorBody{Error: wire.GeminiError{Code: status, Message: msg, Status: wire.GeminiStatus(status)}})
}
