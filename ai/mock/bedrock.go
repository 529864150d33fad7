package mock

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/relia-dev/relia/ai/wire"
)

// parseBedrock reads /model/{modelId}/converse and /converse-stream.
func (j *job) parseBedrock(p string, body []byte) error {
	j.api, j.op = APIBedrock, "chat"
	rest := strings.TrimPrefix(p, "/model/")
	i := strings.LastIndexByte(rest, '/')
	if i < 0 {
		return errors.New("path: want /model/{modelId}/converse")
	}
	model, err := url.PathUnescape(rest[:i])
	if err != nil {
		return err
	}
	j.model = model
	switch rest[i+1:] {
	case "converse":
	case "converse-stream":
		j.stream = true
	default:
		return errors.New("path: want converse or converse-stream")
	}
	var req wire.ConverseRequest
	if err := json.Unmarshal(body, &req); err != nil {
		return err
	}
	if len(req.Messages) == 0 {
		return errors.New("messages: empty")
	}
	for _, s := range req.System {
		j.texts = append(j.texts, s.Text)
	}
	for _, m := range req.Messages {
		var b strings.Builder
		for _, c := range m.Content {
			b.WriteString(c.Text)
		}
		j.texts = append(j.texts, b.String())
	}
	if c := req.InferenceConfig; c != nil && c.MaxTokens != nil {
		j.limit = *c.MaxTokens
	}
	return nil
}

type bedrock struct{}

func (bedrock) writeError(w http.ResponseWriter, status int, msg, _ string, retryAfter time.Duration) {
	if status == wire.StatusOverloaded {
		status = http.StatusServiceUnavailable // Bedrock has no 529
	}
	if retryAfter > 0 {
		w.Header().Set("Retry-After", retryAfterSeconds(retryAfter))
	}
	w.Header().Set("X-Amzn-Errortype", wire.BedrockErrorType(status))
	writeJSON(w, status, wire.BedrockErrorBody{Message: msg})
}

func (bedrock) writeEmbeddings(w http.ResponseWriter, _ *job, _ [][]float64) {
	http.Error(w, "not found", http.StatusNotFound)
}

func (a *answer) bedrockStop() string {
	if a.finish == "length" {
		return "max_tokens"
	}
	return "end_turn"
}

func (a *answer) bedrockUsage() *wire.BedrockUsage {
	return &wire.BedrockUsage{InputTokens: a.prompt, OutputTokens: len(a.tokens), TotalTokens: a.prompt + len(a.tokens)}
}

func (bedrock) answer(a *answer) []byte {
	var resp wire.ConverseResponse
	resp.Output.Message = wire.BedrockMessage{Role: "assistant", Content: []wire.BedrockBlock{{Text: a.text()}}}
	resp.StopReason = a.bedrockStop()
	resp.Usage = *a.bedrockUsage()
	resp.Metrics = json.RawMessage(`{"latencyMs":0}`)
	b, _ := json.Marshal(resp)
	return b
}

func (bedrock) streamType() string { return "application/vnd.amazon.eventstream" }

func appendBedrockEvent(buf []byte, typ string, ev wire.BedrockStreamEvent) []byte {
	b, _ := json.Marshal(ev)
	return wire.AppendEventStream(buf, b, ":event-type", typ, ":content-type", "application/json", ":message-type", "event")
}

func (bedrock) streamStart(buf []byte, _ *answer) []byte {
	return appendBedrockEvent(buf, wire.BedrockMessageStart, wire.BedrockStreamEvent{Role: "assistant"})
}

func (bedrock) streamToken(buf []byte, _ *answer, _ int, tok string) []byte {
	ev := wire.BedrockStreamEvent{}
	ev.Delta = &struct {
		Text string `json:"text,omitempty"`
	}{Text: tok}
	return appendBedrockEvent(buf, wire.BedrockContentBlockDelta, ev)
}

func (bedrock) streamEnd(buf []byte, a *answer) []byte {
	buf = appendBedrockEvent(buf, wire.BedrockContentBlockStop, wire.BedrockStreamEvent{})
	buf = appendBedrockEvent(buf, wire.BedrockMessageStop, wire.BedrockStreamEvent{StopReason: a.bedrockStop()})
	return appendBedrockEvent(buf, wire.BedrockMetadata, wire.BedrockStreamEvent{Usage: a.bedrockUsage()})
}

func (bedrock) streamError(buf []byte, _ *answer, status int, msg string) []byte {
	exc := "internalServerException"
	switch status {
	case 429:
		exc = "throttlingException"
	case 503, wire.StatusOverloaded:
		exc = "serviceUnavailableException"
	}
	b, _ := json.Marshal(wire.BedrockErrorBody{Message: msg})
	return wire.AppendEventStream(buf, b, ":exception-type", exc, ":content-type", "application/json", ":message-type", "exception")
}
