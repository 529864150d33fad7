package ai

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/aws/smithy-go/aws-http-auth/credentials"
	"github.com/aws/smithy-go/aws-http-auth/sigv4"

	"github.com/relia-dev/relia/ai/wire"
)

// bedrockAdapter speaks AWS Bedrock Runtime's Converse API, each request
// signed with AWS Signature Version 4.
type bedrockAdapter struct{}

var bedrockSigner = sigv4.New()

func (bedrockAdapter) url(t *target, op string) string {
	return strings.TrimSuffix(t.provider.URL, "/") + "/model/" + url.PathEscape(t.model) + "/" + op
}

// toBedrock translates a chat request into a Converse request.
func toBedrock(req *wire.ChatRequest) wire.ConverseRequest {
	var out wire.ConverseRequest
	for i := range req.Messages {
		m := &req.Messages[i]
		switch m.Role {
		case "system", "developer":
			out.System = append(out.System, wire.BedrockBlock{Text: m.Text()})
		case "assistant":
			out.Messages = appendBedrock(out.Messages, "assistant", m.Text())
		default:
			out.Messages = appendBedrock(out.Messages, "user", m.Text())
		}
	}
	ic := &wire.InferenceConfig{Temperature: req.Temperature, TopP: req.TopP, StopSequences: req.StopList()}
	if n, ok := req.OutputLimit(); ok {
		ic.MaxTokens = &n
	}
	out.InferenceConfig = ic
	return out
}

// appendBedrock adds a text turn, merged into the last turn of the same
// role: Converse wants turns to alternate.
func appendBedrock(msgs []wire.BedrockMessage, role, text string) []wire.BedrockMessage {
	if n := len(msgs); n > 0 && msgs[n-1].Role == role {
		msgs[n-1].Content = append(msgs[n-1].Content, wire.BedrockBlock{Text: text})
		return msgs
	}
	return append(msgs, wire.BedrockMessage{Role: role, Content: []wire.BedrockBlock{{Text: text}}})
}

// sign signs r for Bedrock with the target's AWS credentials.
func (bedrockAdapter) sign(r *http.Request, t *target, body []byte, now time.Time) error {
	sum := sha256.Sum256(body)
	return bedrockSigner.SignRequest(&sigv4.SignRequestInput{
		Request:     r,
		PayloadHash: sum[:],
		Credentials: credentials.Credentials{AccessKeyID: t.cred.cfg.AccessKeyID, SecretAccessKey: t.key, SessionToken: t.cred.cfg.SessionToken},
		Service:     "bedrock",
		Region:      t.provider.Region,
		Time:        now,
	})
}

func (a bedrockAdapter) chatRequest(ctx context.Context, t *target, req *wire.ChatRequest) (*http.Request, error) {
	op := "converse"
	if req.Stream {
		op = "converse-stream"
	}
	body, err := json.Marshal(toBedrock(req))
	if err != nil {
		return nil, err
	}
	r, err := http.NewRequestWithContext(ctx, http.MethodPost, a.url(t, op), bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	r.Header.Set("Content-Type", "application/json")
	if err := a.sign(r, t, body, t.clock.Now()); err != nil {
		return nil, fmt.Errorf("signing the request: %w", err)
	}
	return r, nil
}

func finishFromBedrock(s string) string {
	switch s {
	case "":
		return ""
	case "max_tokens":
		return "length"
	case "tool_use":
		return "tool_calls"
	case "guardrail_intervened", "content_filtered":
		return "content_filter"
	}
	return "stop"
}

func usageFromBedrock(u wire.BedrockUsage) Usage {
	return Usage{InputTokens: u.InputTokens, OutputTokens: u.OutputTokens, CachedTokens: u.CacheReadInputTokens}
}

func (bedrockAdapter) chatResponse(t *target, body []byte) (*wire.ChatResponse, []byte, error) {
	var c wire.ConverseResponse
	if err := json.Unmarshal(body, &c); err != nil {
		return nil, nil, fmt.Errorf("decoding the provider's answer: %w", err)
	}
	var text strings.Builder
	for _, b := range c.Output.Message.Content {
		text.WriteString(b.Text)
	}
	return &wire.ChatResponse{
		Object: "chat.completion", Model: t.model,
		Choices: []wire.ChatChoice{{Message: wire.ChatMessage{Role: "assistant", Content: wire.TextContent(text.String())}, FinishReason: finishFromBedrock(c.StopReason)}},
		Usage:   usageFromBedrock(c.Usage).openAI(),
	}, nil, nil
}

func (bedrockAdapter) chatStream(t *target, body io.Reader) streamDecoder {
	return &bedrockStream{r: wire.NewEventStreamReader(body), model: t.model}
}

// bedrockStream reads ConverseStream's event stream; the metadata event
// after messageStop carries the usage and ends it.
type bedrockStream struct {
	r       *wire.EventStreamReader
	model   string
	stopped bool
	done    bool
}

func (s *bedrockStream) chunk(d wire.Delta, finish *string) *wire.ChatChunk {
	return &wire.ChatChunk{Object: "chat.completion.chunk", Model: s.model, Choices: []wire.ChunkChoice{{Delta: d, FinishReason: finish}}}
}

func (s *bedrockStream) buffered() int { return s.r.Buffered() }
func (s *bedrockStream) idle()         {} // its reader's buffer is its own
func (s *bedrockStream) release()      {}

func (s *bedrockStream) next() (piece, error) {
	for {
		if s.done {
			return piece{}, io.EOF
		}
		m, err := s.r.Next()
		if err == io.EOF {
			if s.stopped {
				return piece{}, io.EOF
			}
			return piece{}, io.ErrUnexpectedEOF
		}
		if err != nil {
			return piece{}, err
		}
		var ev wire.BedrockStreamEvent
		json.Unmarshal(m.Payload, &ev)
		if m.Headers[":message-type"] == "exception" {
			e := &callError{kind: kindServer, message: ev.Message}
			switch m.Headers[":exception-type"] {
			case "throttlingException":
				e.kind = kindRateLimited
			case "serviceUnavailableException", "modelNotReadyException":
				e.kind = kindOverloaded
			}
			return piece{}, e
		}
		switch m.Headers[":event-type"] {
		case wire.BedrockMessageStart:
			return piece{chunk: s.chunk(wire.Delta{Role: "assistant", Content: strPtr("")}, nil)}, nil
		case wire.BedrockContentBlockDelta:
			if ev.Delta != nil && ev.Delta.Text != "" {
				text := ev.Delta.Text
				return piece{chunk: s.chunk(wire.Delta{Content: &text}, nil), tokens: true}, nil
			}
		case wire.BedrockMessageStop:
			s.stopped = true
			f := finishFromBedrock(ev.StopReason)
			return piece{chunk: s.chunk(wire.Delta{}, &f), finish: f}, nil
		case wire.BedrockMetadata:
			s.done = s.stopped
			if ev.Usage != nil {
				u := usageFromBedrock(*ev.Usage)
				return piece{usage: &u, usageOnly: true}, nil
			}
		}
	}
}

func (bedrockAdapter) embedRequest(context.Context, *target, *wire.EmbeddingRequest) (*http.Request, error) {
	return nil, errNoEmbeddings
}

func (bedrockAdapter) embedResponse(*target, *wire.EmbeddingRequest, []byte) ([]byte, Usage, error) {
	return nil, Usage{}, errNoEmbeddings
}

func (bedrockAdapter) errorOf(status int, h http.Header, body []byte, now time.Time) *callError {
	var eb wire.BedrockErrorBody
	msg := http.StatusText(status)
	if json.Unmarshal(body, &eb) == nil && eb.Message != "" {
		msg = eb.Message
	}
	if typ, _, _ := strings.Cut(h.Get("X-Amzn-Errortype"), ":"); typ == "ModelNotReadyException" {
		status = http.StatusServiceUnavailable
	}
	return classify(status, h, msg, "", body, now)
}
