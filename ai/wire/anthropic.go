package wire

import "encoding/json"

// MessagesRequest is the body of Anthropic's POST /v1/messages.
type MessagesRequest struct {
	Model         string             `json:"model"`
	Messages      []AnthropicMessage `json:"messages"`
	System        json.RawMessage    `json:"system,omitempty"` // a string or text blocks
	MaxTokens     int                `json:"max_tokens"`
	StopSequences []string           `json:"stop_sequences,omitempty"`
	Stream        bool               `json:"stream,omitempty"`
	Temperature   *float64           `json:"temperature,omitempty"`
	TopP          *float64           `json:"top_p,omitempty"`
	TopK          *int               `json:"top_k,omitempty"`
	Tools         []AnthropicTool    `json:"tools,omitempty"`
	ToolChoice    json.RawMessage    `json:"tool_choice,omitempty"`
	Extra         Extra              `json:"-"`
}

// UnmarshalJSON decodes the request, keeping unknown members in Extra.
func (r *MessagesRequest) UnmarshalJSON(b []byte) error {
	type plain MessagesRequest
	return decodeObject(b, (*plain)(r), &r.Extra)
}

// MarshalJSON encodes the request with its Extra members.
func (r MessagesRequest) MarshalJSON() ([]byte, error) {
	type plain MessagesRequest
	return encodeObject(plain(r), r.Extra)
}

// AnthropicMessage is one turn: its content a string or content blocks.
type AnthropicMessage struct {
	Role    string          `json:"role"`
	Content json.RawMessage `json:"content"`
}

// AnthropicTool declares a tool to Anthropic.
type AnthropicTool struct {
	Name        string          `json:"name"`
	Description string          `json:"description,omitempty"`
	InputSchema json.RawMessage `json:"input_schema"`
	Extra       Extra           `json:"-"`
}

// UnmarshalJSON decodes the tool, keeping unknown members in Extra.
func (t *AnthropicTool) UnmarshalJSON(b []byte) error {
	type plain AnthropicTool
	return decodeObject(b, (*plain)(t), &t.Extra)
}

// MarshalJSON encodes the tool with its Extra members.
func (t AnthropicTool) MarshalJSON() ([]byte, error) {
	type plain AnthropicTool
	return encodeObject(plain(t), t.Extra)
}

// ContentBlock is one block of Anthropic content: text, tool_use,
// tool_result, image, ...
type ContentBlock struct {
	Type      string          `json:"type"`
	Text      string          `json:"text,omitempty"`
	ID        string          `json:"id,omitempty"`
	Name      string          `json:"name,omitempty"`
	Input     json.RawMessage `json:"input,omitempty"`
	ToolUseID string          `json:"tool_use_id,omitempty"`
	Content   json.RawMessage `json:"content,omitempty"`
	Extra     Extra           `json:"-"`
}

// UnmarshalJSON decodes the block, keeping unknown members in Extra.
func (c *ContentBlock) UnmarshalJSON(b []byte) error {
	type plain ContentBlock
	return decodeObject(b, (*plain)(c), &c.Extra)
}

// MarshalJSON encodes the block with its Extra members.
func (c ContentBlock) MarshalJSON() ([]byte, error) {
	type plain ContentBlock
	return encodeObject(plain(c), c.Extra)
}

// MessagesResponse is Anthropic's answer to a non-streaming request, and
// the message of a stream's message_start event.
type MessagesResponse struct {
	ID           string         `json:"id"`
	Type         string         `json:"type"`
	Role         string         `json:"role"`
	Model        string         `json:"model"`
	Content      []ContentBlock `json:"content"`
	StopReason   *string        `json:"stop_reason"`
	StopSequence *string        `json:"stop_sequence"`
	Usage        AnthropicUsage `json:"usage"`
	Extra        Extra          `json:"-"`
}

// UnmarshalJSON decodes the response, keeping unknown members in Extra.
func (r *MessagesResponse) UnmarshalJSON(b []byte) error {
	type plain MessagesResponse
	return decodeObject(b, (*plain)(r), &r.Extra)
}

// MarshalJSON encodes the response with its Extra members.
func (r MessagesResponse) MarshalJSON() ([]byte, error) {
	type plain MessagesResponse
	return encodeObject(plain(r), r.Extra)
}

// AnthropicUsage is Anthropic's token usage. In a message_delta event
// only OutputTokens is meaningful, and it is cumulative.
type AnthropicUsage struct {
	InputTokens              int `json:"input_tokens"`
	OutputTokens             int `json:"output_tokens"`
	CacheCreationInputTokens int `json:"cache_creation_input_tokens,omitempty"`
	CacheReadInputTokens     int `json:"cache_read_input_tokens,omitempty"`
}

// Anthropic stream event types (the SSE event names, repeated in each
// event's "type").
const (
	EventMessageStart      = "message_start"
	EventContentBlockStart = "content_block_start"
	EventContentBlockDelta = "content_block_delta"
	EventContentBlockStop  = "content_block_stop"
	EventMessageDelta      = "message_delta"
	EventMessageStop       = "message_stop"
	EventPing              = "ping"
	EventError             = "error"
)

// StreamEvent is one event of an Anthropic Messages stream; which fields
// are set depends on Type.
type StreamEvent struct {
	Type         string            `json:"type"`
	Message      *MessagesResponse `json:"message,omitempty"`
	Index        *int              `json:"index,omitempty"`
	ContentBlock *ContentBlock     `json:"content_block,omitempty"`
	Delta        *StreamDelta      `json:"delta,omitempty"`
	Usage        *AnthropicUsage   `json:"usage,omitempty"`
	Error        *AnthropicError   `json:"error,omitempty"`
}

// StreamDelta is the delta of a content_block_delta (text_delta,
// input_json_delta) or a message_delta event (stop_reason).
type StreamDelta struct {
	Type         string  `json:"type,omitempty"`
	Text         string  `json:"text,omitempty"`
	PartialJSON  string  `json:"partial_json,omitempty"`
	StopReason   *string `json:"stop_reason,omitempty"`
	StopSequence *string `json:"stop_sequence,omitempty"`
}

// AnthropicErrorBody is Anthropic's error response body and the data of
// a stream's error event.
type AnthropicErrorBody struct {
	Type  string         `json:"type"`
	Error AnthropicError `json:"error"`
}

// AnthropicError is the error inside an AnthropicErrorBody.
type AnthropicError struct {
	Type    string `json:"type"`
	Message string `json:"message"`
}

// Anthropic error types, with the HTTP status each comes with.
const (
	AnthropicInvalidRequest = "invalid_request_error" // 400
	AnthropicAuthentication = "authentication_error"  // 401
	AnthropicPermission     = "permission_error"      // 403
	AnthropicNotFound       = "not_found_error"       // 404
	AnthropicTooLarge       = "request_too_large"     // 413
	AnthropicRateLimit      = "rate_limit_error"      // 429
	AnthropicAPIError       = "api_error"             // 500
	AnthropicOverloaded     = "overloaded_error"      // 529
)

// StatusOverloaded is the status Anthropic answers with when it is
// overloaded; it is not registered with IANA.
const StatusOverloaded = 529

// AnthropicErrorType returns the Anthropic error type for an HTTP status.
func AnthropicErrorType(status int) string {
	switch status {
	case 400:
		return AnthropicInvalidRequest
	case 401:
		return AnthropicAuthentication
	case 403:
		return AnthropicPermission
	case 404:
		return AnthropicNotFound
	case 413:
		return AnthropicTooLarge
	case 429:
		return AnthropicRateLimit
	case StatusOverloaded, 503:
		return AnthropicOverloaded
	}
	return AnthropicAPIError
}
