package wire

import (
	"bytes"
	"encoding/json"
	"strings"
)

// ChatRequest is the body of OpenAI's POST /v1/chat/completions, the
// format relia's AI ingress accepts and OpenAI, Azure OpenAI and the
// OpenAI-compatible servers receive.
type ChatRequest struct {
	Model               string          `json:"model"`
	Messages            []ChatMessage   `json:"messages"`
	Stream              bool            `json:"stream,omitempty"`
	StreamOptions       *StreamOptions  `json:"stream_options,omitempty"`
	MaxTokens           *int            `json:"max_tokens,omitempty"`
	MaxCompletionTokens *int            `json:"max_completion_tokens,omitempty"`
	Temperature         *float64        `json:"temperature,omitempty"`
	TopP                *float64        `json:"top_p,omitempty"`
	N                   *int            `json:"n,omitempty"`
	Stop                json.RawMessage `json:"stop,omitempty"` // a string or a list of strings
	Tools               []Tool          `json:"tools,omitempty"`
	ToolChoice          json.RawMessage `json:"tool_choice,omitempty"`
	ResponseFormat      json.RawMessage `json:"response_format,omitempty"`
	User                string          `json:"user,omitempty"`
	// Raw is the body as the client sent it, kept by relia's ingress so
	// that a provider of the same format gets every member, known or
	// not, as written (relia edits only model and stream_options).
	Raw json.RawMessage `json:"-"`
}

// OutputLimit returns the request's cap on output tokens
// (max_completion_tokens, else max_tokens) and whether it set one.
func (r *ChatRequest) OutputLimit() (int, bool) {
	switch {
	case r.MaxCompletionTokens != nil:
		return *r.MaxCompletionTokens, true
	case r.MaxTokens != nil:
		return *r.MaxTokens, true
	}
	return 0, false
}

// StopList returns the stop sequences, whether given as one string or a
// list.
func (r *ChatRequest) StopList() []string {
	return stringOrList(r.Stop)
}

func stringOrList(raw json.RawMessage) []string {
	if len(raw) == 0 {
		return nil
	}
	var one string
	if json.Unmarshal(raw, &one) == nil {
		return []string{one}
	}
	var list []string
	_ = json.Unmarshal(raw, &list)
	return list
}

// StreamOptions is the request's stream_options.
type StreamOptions struct {
	IncludeUsage bool `json:"include_usage,omitempty"`
}

// ChatMessage is one message of a chat: its content is a string, a list
// of parts ({"type":"text","text":...}, images, ...) or null.
type ChatMessage struct {
	Role       string          `json:"role"`
	Content    json.RawMessage `json:"content,omitempty"`
	Name       string          `json:"name,omitempty"`
	ToolCalls  []ToolCall      `json:"tool_calls,omitempty"`
	ToolCallID string          `json:"tool_call_id,omitempty"`
}

// Text returns the message's text: its content when a string, or its
// text parts joined.
func (m *ChatMessage) Text() string { return ContentText(m.Content) }

// ContentText returns the text of an OpenAI or Anthropic content value:
// the string itself, or the "text" of each part of a list, joined.
func ContentText(raw json.RawMessage) string {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || raw[0] == 'n' {
		return ""
	}
	if raw[0] == '"' {
		var s string
		_ = json.Unmarshal(raw, &s)
		return s
	}
	var parts []struct {
		Type string `json:"type"`
		Text string `json:"text"`
	}
	if json.Unmarshal(raw, &parts) != nil {
		return ""
	}
	var b strings.Builder
	for _, p := range parts {
		if p.Text != "" {
			b.WriteString(p.Text)
		}
	}
	return b.String()
}

// TextContent returns a JSON string content value.
func TextContent(s string) json.RawMessage {
	b, _ := json.Marshal(s)
	return b
}

// Tool is one tool a chat request offers the model.
type Tool struct {
	Type     string       `json:"type"`
	Function ToolFunction `json:"function"`
}

// ToolFunction is a function tool's declaration.
type ToolFunction struct {
	Name        string          `json:"name"`
	Description string          `json:"description,omitempty"`
	Parameters  json.RawMessage `json:"parameters,omitempty"`
}

// ToolCall is a call of a tool in an assistant message or a stream delta.
type ToolCall struct {
	Index    *int             `json:"index,omitempty"`
	ID       string           `json:"id,omitempty"`
	Type     string           `json:"type,omitempty"`
	Function ToolCallFunction `json:"function"`
}

// ToolCallFunction names the function a tool call calls and its JSON
// arguments, as a string.
type ToolCallFunction struct {
	Name      string `json:"name,omitempty"`
	Arguments string `json:"arguments"`
}

// ChatResponse is the body of a non-streaming chat completion.
type ChatResponse struct {
	ID      string       `json:"id"`
	Object  string       `json:"object"`
	Created int64        `json:"created"`
	Model   string       `json:"model"`
	Choices []ChatChoice `json:"choices"`
	Usage   *Usage       `json:"usage,omitempty"`
}

// ChatChoice is one choice of a chat completion.
type ChatChoice struct {
	Index        int             `json:"index"`
	Message      ChatMessage     `json:"message"`
	FinishReason string          `json:"finish_reason"`
	Logprobs     json.RawMessage `json:"logprobs,omitempty"`
}

// Usage is OpenAI's token usage of one call.
type Usage struct {
	PromptTokens            int                 `json:"prompt_tokens"`
	CompletionTokens        int                 `json:"completion_tokens"`
	TotalTokens             int                 `json:"total_tokens"`
	PromptTokensDetails     *PromptTokenDetails `json:"prompt_tokens_details,omitempty"`
	CompletionTokensDetails json.RawMessage     `json:"completion_tokens_details,omitempty"`
}

// PromptTokenDetails splits the prompt's tokens; CachedTokens were read
// from the provider's prompt cache.
type PromptTokenDetails struct {
	CachedTokens int `json:"cached_tokens"`
}

// ChatChunk is one event of a streaming chat completion.
type ChatChunk struct {
	ID      string        `json:"id"`
	Object  string        `json:"object"`
	Created int64         `json:"created"`
	Model   string        `json:"model"`
	Choices []ChunkChoice `json:"choices"`
	Usage   *Usage        `json:"usage,omitempty"`
	// Error is set on the error event of a stream.
	Error *ErrorObject `json:"error,omitempty"`
}

// ChunkChoice is one choice's part of a stream chunk.
type ChunkChoice struct {
	Index        int     `json:"index"`
	Delta        Delta   `json:"delta"`
	FinishReason *string `json:"finish_reason"`
}

// Delta is what a stream chunk adds to a choice's message.
type Delta struct {
	Role      string     `json:"role,omitempty"`
	Content   *string    `json:"content,omitempty"`
	ToolCalls []ToolCall `json:"tool_calls,omitempty"`
}

// EmbeddingRequest is the body of POST /v1/embeddings. Input is a
// string, a list of strings, or token arrays.
type EmbeddingRequest struct {
	Model          string          `json:"model"`
	Input          json.RawMessage `json:"input"`
	EncodingFormat string          `json:"encoding_format,omitempty"`
	Dimensions     *int            `json:"dimensions,omitempty"`
	User           string          `json:"user,omitempty"`
	// Raw is the body as the client sent it (see ChatRequest.Raw).
	Raw json.RawMessage `json:"-"`
}

// Inputs returns the texts to embed; token-array inputs are returned as
// nil strings counted by InputCount.
func (r *EmbeddingRequest) Inputs() []string {
	return stringOrList(r.Input)
}

// EmbeddingResponse is the body answering POST /v1/embeddings.
type EmbeddingResponse struct {
	Object string      `json:"object"`
	Data   []Embedding `json:"data"`
	Model  string      `json:"model"`
	Usage  Usage       `json:"usage"`
}

// Embedding is one input's vector: a list of floats, or a base64 string
// when the request asked for encoding_format base64.
type Embedding struct {
	Object    string          `json:"object"`
	Index     int             `json:"index"`
	Embedding json.RawMessage `json:"embedding"`
}

// ModelList is the body of GET /v1/models.
type ModelList struct {
	Object string      `json:"object"`
	Data   []ModelInfo `json:"data"`
}

// ModelInfo is one model in a ModelList.
type ModelInfo struct {
	ID      string `json:"id"`
	Object  string `json:"object"`
	Created int64  `json:"created"`
	OwnedBy string `json:"owned_by"`
}

// ErrorBody is OpenAI's error response body.
type ErrorBody struct {
	Error ErrorObject `json:"error"`
}

// ErrorObject is the error inside an ErrorBody.
type ErrorObject struct {
	Message string  `json:"message"`
	Type    string  `json:"type"`
	Param   *string `json:"param"`
	Code    *string `json:"code"`
}

// OpenAI error types and codes relia writes and reads.
const (
	ErrTypeInvalidRequest = "invalid_request_error"
	ErrTypeAuthentication = "authentication_error"
	ErrTypePermission     = "permission_error"
	ErrTypeNotFound       = "not_found_error"
	ErrTypeRateLimit      = "rate_limit_error"
	ErrTypeServer         = "server_error"
	ErrTypeOverloaded     = "overloaded_error"
	ErrTypeTimeout        = "timeout_error"

	CodeContextLength = "context_length_exceeded"
	CodeQuotaExceeded = "quota_exceeded"
	CodeRateLimit     = "rate_limit_exceeded"
)

// OpenAIErrorType returns the OpenAI error type for an HTTP status: the
// type OpenAI's SDKs expect with it (429 a rate_limit_error, 529 an
// overloaded_error, any other status server_error); relia ai mock and the
// fault proxy's OpenAI-shaped errors both take it from here.
func OpenAIErrorType(status int) string {
	switch status {
	case 400:
		return ErrTypeInvalidRequest
	case 401:
		return ErrTypeAuthentication
	case 403:
		return ErrTypePermission
	case 404:
		return ErrTypeNotFound
	case 429:
		return ErrTypeRateLimit
	case StatusOverloaded:
		return ErrTypeOverloaded
	}
	return ErrTypeServer
}

// NewError returns an OpenAI error body.
func NewError(typ, code, msg string) ErrorBody {
	e := ErrorBody{Error: ErrorObject{Message: msg, Type: typ}}
	if code != "" {
		e.Error.Code = &code
	}
	return e
}
