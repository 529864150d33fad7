package wire

import "encoding/json"

// ResponsesRequest is a request to OpenAI's Responses API (POST
// /v1/responses), the members relia translates: text input as a string
// or as message items, instructions, the output cap, sampling and
// metadata.
type ResponsesRequest struct {
	Model           string          `json:"model"`
	Input           json.RawMessage `json:"input"` // a string or a list of input items
	Instructions    string          `json:"instructions,omitempty"`
	Stream          bool            `json:"stream,omitempty"`
	MaxOutputTokens *int            `json:"max_output_tokens,omitempty"`
	Temperature     *float64        `json:"temperature,omitempty"`
	TopP            *float64        `json:"top_p,omitempty"`
	Metadata        json.RawMessage `json:"metadata,omitempty"`
	User            string          `json:"user,omitempty"`
}

// ResponseInputItem is one item of a Responses request's input list;
// relia reads message items (Type "message" or left out).
type ResponseInputItem struct {
	Type    string          `json:"type,omitempty"`
	Role    string          `json:"role"`
	Content json.RawMessage `json:"content"` // a string or a list of content parts
}

// ResponseContentPart is a part of an input message or of an output
// message: input_text, output_text.
type ResponseContentPart struct {
	Type        string            `json:"type"`
	Text        string            `json:"text"`
	Annotations []json.RawMessage `json:"annotations"`
}

// Response is the Responses API's response object.
type Response struct {
	ID                string               `json:"id"`
	Object            string               `json:"object"` // "response"
	CreatedAt         int64                `json:"created_at"`
	Status            string               `json:"status"` // in_progress, completed, incomplete, failed
	Model             string               `json:"model"`
	Output            []ResponseOutputItem `json:"output"`
	Usage             *ResponseUsage       `json:"usage,omitempty"`
	Error             *ResponseError       `json:"error"`
	IncompleteDetails *IncompleteDetails   `json:"incomplete_details"`
	Instructions      *string              `json:"instructions"`
	MaxOutputTokens   *int                 `json:"max_output_tokens"`
	Temperature       *float64             `json:"temperature"`
	TopP              *float64             `json:"top_p"`
	Metadata          json.RawMessage      `json:"metadata"`
}

// ResponseOutputItem is an item of a response's output: relia writes
// assistant messages.
type ResponseOutputItem struct {
	Type    string                `json:"type"` // "message"
	ID      string                `json:"id"`
	Status  string                `json:"status"`
	Role    string                `json:"role"`
	Content []ResponseContentPart `json:"content"`
}

// ResponseUsage is a response's token counts.
type ResponseUsage struct {
	InputTokens         int                   `json:"input_tokens"`
	InputTokensDetails  ResponseInputDetails  `json:"input_tokens_details"`
	OutputTokens        int                   `json:"output_tokens"`
	OutputTokensDetails ResponseOutputDetails `json:"output_tokens_details"`
	TotalTokens         int                   `json:"total_tokens"`
}

// ResponseInputDetails breaks down a response's input tokens.
type ResponseInputDetails struct {
	CachedTokens int `json:"cached_tokens"`
}

// ResponseOutputDetails breaks down a response's output tokens.
type ResponseOutputDetails struct {
	ReasoningTokens int `json:"reasoning_tokens"`
}

// ResponseError is why a response failed.
type ResponseError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// IncompleteDetails says why a response is incomplete.
type IncompleteDetails struct {
	Reason string `json:"reason"` // max_output_tokens, content_filter
}

// ResponseStreamEvent is one server-sent event of a streamed response;
// the event's name is its Type.
type ResponseStreamEvent struct {
	Type           string               `json:"type"`
	SequenceNumber int                  `json:"sequence_number"`
	Response       *Response            `json:"response,omitempty"`
	OutputIndex    *int                 `json:"output_index,omitempty"`
	ContentIndex   *int                 `json:"content_index,omitempty"`
	ItemID         string               `json:"item_id,omitempty"`
	Item           *ResponseOutputItem  `json:"item,omitempty"`
	Part           *ResponseContentPart `json:"part,omitempty"`
	Delta          *string              `json:"delta,omitempty"`
	Text           *string              `json:"text,omitempty"`
	// Code and Message are an error event's.
	Code    string `json:"code,omitempty"`
	Message string `json:"message,omitempty"`
}
