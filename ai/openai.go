package ai

import (
	"bytes"
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

// openAIAdapter speaks OpenAI's API, which OpenAI-compatible servers
// share, and Azure OpenAI's variant of it (deployment paths, api-key
// header, api-version).
type openAIAdapter struct{ azure bool }

// DefaultAzureAPIVersion is the api-version relia sends to Azure OpenAI
// when the provider sets none.
const DefaultAzureAPIVersion = "2024-10-21"

func (a openAIAdapter) url(t *target, op string) string {
	if a.azure {
		v := t.provider.APIVersion
		if v == "" {
			v = DefaultAzureAPIVersion
		}
		return strings.TrimSuffix(t.provider.URL, "/") + "/openai/deployments/" + url.PathEscape(t.model) + "/" + op + "?api-version=" + url.QueryEscape(v)
	}
	return strings.TrimSuffix(t.provider.URL, "/") + "/" + op
}

func (a openAIAdapter) auth(r *http.Request, t *target) {
	switch {
	case t.key == "":
	case a.azure:
		r.Header.Set("Api-Key", t.key)
	default:
		r.Header.Set("Authorization", "Bearer "+t.key)
	}
}

func (a openAIAdapter) chatRequest(ctx context.Context, t *target, req *wire.ChatRequest) (*http.Request, error) {
	out := *req
	out.Model = t.model
	if out.Stream {
		// Usage is what quotas and costs are made of: ask for it.
		so := wire.StreamOptions{}
		if req.StreamOptions != nil {
			so = *req.StreamOptions
		}
		so.IncludeUsage = true
		out.StreamOptions = &so
	}
	r, err := newJSONRequest(ctx, a.url(t, "chat/completions"), out)
	if err != nil {
		return nil, err
	}
	a.auth(r, t)
	return r, nil
}

func (openAIAdapter) chatResponse(_ *target, body []byte) (*wire.ChatResponse, []byte, error) {
	var resp wire.ChatResponse
	if err := json.Unmarshal(body, &resp); err != nil {
		return nil, nil, fmt.Errorf("decoding the provider's answer: %w", err)
	}
	return &resp, body, nil
}

func (openAIAdapter) chatStream(_ *target, body io.Reader) streamDecoder {
	return &openAIStream{r: wire.NewSSEReader(body, 0)}
}

type openAIStream struct {
	r    *wire.SSEReader
	done bool
}

func (s *openAIStream) next() (piece, error) {
	if s.done {
		return piece{}, io.EOF
	}
	ev, err := s.r.Next()
	if err == io.EOF {
		return piece{}, io.ErrUnexpectedEOF // no [DONE]: cut short
	}
	if err != nil {
		return piece{}, err
	}
	if bytes.Equal(ev.Data, wire.Done) {
		s.done = true
		return piece{}, io.EOF
	}
	var c wire.ChatChunk
	if err := json.Unmarshal(ev.Data, &c); err != nil {
		return piece{}, fmt.Errorf("decoding a stream chunk: %w", err)
	}
	if c.Extra["error"] != nil {
		var eb wire.ErrorBody
		json.Unmarshal(ev.Data, &eb)
		return piece{}, streamErrorOf(eb.Error.Type, eb.Error.Message)
	}
	p := piece{raw: bytes.Clone(ev.Data)}
	for _, ch := range c.Choices {
		if (ch.Delta.Content != nil && *ch.Delta.Content != "") || len(ch.Delta.ToolCalls) > 0 {
			p.tokens = true
		}
		if ch.FinishReason != nil {
			p.finish = *ch.FinishReason
		}
	}
	if c.Usage != nil {
		u := usageFromOpenAI(c.Usage)
		p.usage = &u
		p.usageOnly = len(c.Choices) == 0
	}
	return p, nil
}

// streamErrorOf classifies an error event by its type.
func streamErrorOf(typ, msg string) *callError {
	e := &callError{message: msg, kind: kindServer}
	switch typ {
	case wire.ErrTypeRateLimit:
		e.kind = kindRateLimited
	case wire.ErrTypeOverloaded:
		e.kind = kindOverloaded
	}
	return e
}

func (a openAIAdapter) embedRequest(ctx context.Context, t *target, req *wire.EmbeddingRequest) (*http.Request, error) {
	out := *req
	out.Model = t.model
	r, err := newJSONRequest(ctx, a.url(t, "embeddings"), out)
	if err != nil {
		return nil, err
	}
	a.auth(r, t)
	return r, nil
}

func (openAIAdapter) embedResponse(_ *target, _ *wire.EmbeddingRequest, body []byte) ([]byte, Usage, error) {
	var resp struct {
		Usage wire.Usage `json:"usage"`
	}
	if err := json.Unmarshal(body, &resp); err != nil {
		return nil, Usage{}, fmt.Errorf("decoding the provider's answer: %w", err)
	}
	return body, Usage{InputTokens: resp.Usage.PromptTokens}, nil
}

func (openAIAdapter) errorOf(status int, h http.Header, body []byte, now time.Time) *callError {
	var eb wire.ErrorBody
	msg, code := "", ""
	if json.Unmarshal(body, &eb) == nil {
		msg = eb.Error.Message
		if eb.Error.Code != nil {
			code = *eb.Error.Code
		}
	}
	if msg == "" {
		msg = http.StatusText(status)
	}
	return classify(status, h, msg, code, body, now)
}
