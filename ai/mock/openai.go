package mock

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strings"
	"time"

	"github.com/relia-dev/relia/ai/wire"
)

// dialect writes answers, streams and errors in one provider's format.
type dialect interface {
	writeError(w http.ResponseWriter, status int, msg, code string, retryAfter time.Duration)
	writeEmbeddings(w http.ResponseWriter, j *job, vecs [][]float64)
	answer(a *answer) []byte
	streamType() string
	streamStart(buf []byte, a *answer) []byte
	streamToken(buf []byte, a *answer, i int, tok string) []byte
	streamEnd(buf []byte, a *answer) []byte
	streamError(buf []byte, a *answer, status int, msg string) []byte
}

func (j *job) parseOpenAIChat(body []byte) error {
	j.api, j.op = APIOpenAI, "chat"
	var req wire.ChatRequest
	if err := json.Unmarshal(body, &req); err != nil {
		return err
	}
	if len(req.Messages) == 0 {
		return errors.New("messages: empty")
	}
	j.model, j.stream, j.format = req.Model, req.Stream, req.ResponseFormat
	j.includeUsage = req.StreamOptions != nil && req.StreamOptions.IncludeUsage
	for i := range req.Messages {
		j.texts = append(j.texts, req.Messages[i].Text())
	}
	if n, ok := req.OutputLimit(); ok {
		j.limit = n
	}
	return nil
}

func (j *job) parseOpenAIEmbeddings(body []byte) error {
	j.api, j.op = APIOpenAI, "embeddings"
	var req wire.EmbeddingRequest
	if err := json.Unmarshal(body, &req); err != nil {
		return err
	}
	j.model, j.encoding = req.Model, req.EncodingFormat
	j.inputs = req.Inputs()
	if len(j.inputs) == 0 {
		return errors.New("input: empty or not text")
	}
	return nil
}

// parseAzure reads /openai/deployments/{deployment}/{chat/completions |
// embeddings}: OpenAI's bodies, the deployment naming the model.
func (j *job) parseAzure(p string, body []byte) error {
	rest := strings.TrimPrefix(p, "/openai/deployments/")
	dep, op, _ := strings.Cut(rest, "/")
	var err error
	switch op {
	case "chat/completions":
		err = j.parseOpenAIChat(body)
	case "embeddings":
		err = j.parseOpenAIEmbeddings(body)
	default:
		j.api, j.op = APIOpenAI, "chat"
		return fmt.Errorf("unknown operation %q", op)
	}
	j.model = dep
	return err
}

type openAI struct{}

func (openAI) writeError(w http.ResponseWriter, status int, msg, code string, retryAfter time.Duration) {
	typ := wire.OpenAIErrorType(status)
	if retryAfter > 0 {
		w.Header().Set("Retry-After", retryAfterSeconds(retryAfter))
	}
	writeJSON(w, status, wire.NewError(typ, code, msg))
}

func (openAI) writeEmbeddings(w http.ResponseWriter, j *job, vecs [][]float64) {
	resp := wire.EmbeddingResponse{Object: "list", Model: j.model}
	tokens := 0
	for i, v := range vecs {
		tokens += CountTokens(j.inputs[i])
		var raw []byte
		if j.encoding == "base64" {
			b := make([]byte, 0, 4*len(v))
			for _, x := range v {
				b = binary.LittleEndian.AppendUint32(b, math.Float32bits(float32(x)))
			}
			raw, _ = json.Marshal(base64.StdEncoding.EncodeToString(b))
		} else {
			raw, _ = json.Marshal(v)
		}
		resp.Data = append(resp.Data, wire.Embedding{Object: "embedding", Index: i, Embedding: raw})
	}
	resp.Usage = wire.Usage{PromptTokens: tokens, TotalTokens: tokens}
	writeJSON(w, http.StatusOK, resp)
}

func (a *answer) id() string { return fmt.Sprintf("chatcmpl-mock%d", a.n) }

func (a *answer) usage() *wire.Usage {
	return &wire.Usage{PromptTokens: a.prompt, CompletionTokens: len(a.tokens), TotalTokens: a.prompt + len(a.tokens)}
}

func (openAI) answer(a *answer) []byte {
	resp := wire.ChatResponse{
		ID: a.id(), Object: "chat.completion", Created: a.start.Unix(), Model: a.model,
		Choices: []wire.ChatChoice{{Message: wire.ChatMessage{Role: "assistant", Content: wire.TextContent(a.text())}, FinishReason: a.finish}},
		Usage:   a.usage(),
	}
	b, _ := json.Marshal(resp)
	return b
}

func (openAI) streamType() string { return "text/event-stream" }

func (a *answer) chunk(delta wire.Delta, finish *string) wire.ChatChunk {
	return wire.ChatChunk{
		ID: a.id(), Object: "chat.completion.chunk", Created: a.start.Unix(), Model: a.model,
		Choices: []wire.ChunkChoice{{Delta: delta, FinishReason: finish}},
	}
}

func appendJSONEvent(buf []byte, name string, v any) []byte {
	b, _ := json.Marshal(v)
	return wire.AppendSSE(buf, name, b)
}

func (openAI) streamStart(buf []byte, a *answer) []byte {
	empty := ""
	return appendJSONEvent(buf, "", a.chunk(wire.Delta{Role: "assistant", Content: &empty}, nil))
}

func (openAI) streamToken(buf []byte, a *answer, _ int, tok string) []byte {
	return appendJSONEvent(buf, "", a.chunk(wire.Delta{Content: &tok}, nil))
}

func (openAI) streamEnd(buf []byte, a *answer) []byte {
	finish := a.finish
	buf = appendJSONEvent(buf, "", a.chunk(wire.Delta{}, &finish))
	if a.includeUsage {
		c := a.chunk(wire.Delta{}, nil)
		c.Choices = []wire.ChunkChoice{}
		c.Usage = a.usage()
		buf = appendJSONEvent(buf, "", c)
	}
	return wire.AppendSSE(buf, "", wire.Done)
}

func (openAI) streamError(buf []byte, _ *answer, status int, msg string) []byte {
	return appendJSONEvent(buf, "", wire.NewError(wire.OpenAIErrorType(status), "", msg))
}
