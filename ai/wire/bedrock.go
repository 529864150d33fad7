package wire

import "encoding/json"

// ConverseRequest is the body of Bedrock Runtime's POST
// /model/{modelId}/converse and /converse-stream.
type ConverseRequest struct {
	Messages        []BedrockMessage `json:"messages"`
	System          []BedrockBlock   `json:"system,omitempty"`
	InferenceConfig *InferenceConfig `json:"inferenceConfig,omitempty"`
	Extra           Extra            `json:"-"`
}

// UnmarshalJSON decodes the request, keeping unknown members in Extra.
func (r *ConverseRequest) UnmarshalJSON(b []byte) error {
	type plain ConverseRequest
	return decodeObject(b, (*plain)(r), &r.Extra)
}

// MarshalJSON encodes the request with its Extra members.
func (r ConverseRequest) MarshalJSON() ([]byte, error) {
	type plain ConverseRequest
	return encodeObject(plain(r), r.Extra)
}

// BedrockMessage is one turn of a Converse conversation.
type BedrockMessage struct {
	Role    string         `json:"role"`
	Content []BedrockBlock `json:"content"`
}

// BedrockBlock is a content block; relia maps text blocks.
type BedrockBlock struct {
	Text  string `json:"text,omitempty"`
	Extra Extra  `json:"-"`
}

// UnmarshalJSON decodes the block, keeping unknown members in Extra.
func (b *BedrockBlock) UnmarshalJSON(data []byte) error {
	type plain BedrockBlock
	return decodeObject(data, (*plain)(b), &b.Extra)
}

// MarshalJSON encodes the block with its Extra members.
func (b BedrockBlock) MarshalJSON() ([]byte, error) {
	type plain BedrockBlock
	return encodeObject(plain(b), b.Extra)
}

// InferenceConfig is a Converse request's generation parameters.
type InferenceConfig struct {
	MaxTokens     *int     `json:"maxTokens,omitempty"`
	Temperature   *float64 `json:"temperature,omitempty"`
	TopP          *float64 `json:"topP,omitempty"`
	StopSequences []string `json:"stopSequences,omitempty"`
}

// ConverseResponse is Bedrock's answer to a Converse request.
type ConverseResponse struct {
	Output struct {
		Message BedrockMessage `json:"message"`
	} `json:"output"`
	StopReason string          `json:"stopReason"`
	Usage      BedrockUsage    `json:"usage"`
	Metrics    json.RawMessage `json:"metrics,omitempty"`
}

// BedrockUsage is Bedrock's token usage.
type BedrockUsage struct {
	InputTokens          int `json:"inputTokens"`
	OutputTokens         int `json:"outputTokens"`
	TotalTokens          int `json:"totalTokens"`
	CacheReadInputTokens int `json:"cacheReadInputTokens,omitempty"`
}

// ConverseStream event types (the :event-type header of each event
// stream message) and the payloads relia reads from them.
const (
	BedrockMessageStart      = "messageStart"
	BedrockContentBlockDelta = "contentBlockDelta"
	BedrockContentBlockStop  = "contentBlockStop"
	BedrockMessageStop       = "messageStop"
	BedrockMetadata          = "metadata"
)

// BedrockStreamEvent is the JSON payload of a ConverseStream event; which
// fields are set depends on the event type.
type BedrockStreamEvent struct {
	Role              string `json:"role,omitempty"`
	ContentBlockIndex int    `json:"contentBlockIndex,omitempty"`
	Delta             *struct {
		Text string `json:"text,omitempty"`
	} `json:"delta,omitempty"`
	StopReason string        `json:"stopReason,omitempty"`
	Usage      *BedrockUsage `json:"usage,omitempty"`
	Message    string        `json:"message,omitempty"` // exceptions
}

// BedrockErrorBody is Bedrock's error body; the error's name comes in the
// X-Amzn-ErrorType header ("ThrottlingException", ...).
type BedrockErrorBody struct {
	Message string `json:"message"`
}

// BedrockErrorType returns the exception name Bedrock sends with an HTTP
// status.
func BedrockErrorType(status int) string {
	switch status {
	case 400:
		return "ValidationException"
	case 403:
		return "AccessDeniedException"
	case 404:
		return "ResourceNotFoundException"
	case 408:
		return "ModelTimeoutException"
	case 424:
		return "ModelErrorException"
	case 429:
		return "ThrottlingException"
	case 503:
		return "ServiceUnavailableException"
	}
	return "InternalServerException"
}
