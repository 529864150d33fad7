package wire

import "encoding/json"

// GenerateContentRequest is the body of Gemini's
// models/{model}:generateContent and :streamGenerateContent.
type GenerateContentRequest struct {
	Contents          []GeminiContent   `json:"contents"`
	SystemInstruction *GeminiContent    `json:"systemInstruction,omitempty"`
	GenerationConfig  *GenerationConfig `json:"generationConfig,omitempty"`
	Extra             Extra             `json:"-"`
}

// UnmarshalJSON decodes the request, keeping unknown members in Extra.
func (r *GenerateContentRequest) UnmarshalJSON(b []byte) error {
	type plain GenerateContentRequest
	return decodeObject(b, (*plain)(r), &r.Extra)
}

// MarshalJSON encodes the request with its Extra members.
func (r GenerateContentRequest) MarshalJSON() ([]byte, error) {
	type plain GenerateContentRequest
	return encodeObject(plain(r), r.Extra)
}

// GeminiContent is one turn; Role is "user" or "model".
type GeminiContent struct {
	Role  string       `json:"role,omitempty"`
	Parts []GeminiPart `json:"parts"`
}

// GeminiPart is one part of a turn; relia maps text parts and keeps
// the others as they are.
type GeminiPart struct {
	Text  string `json:"text,omitempty"`
	Extra Extra  `json:"-"`
}

// UnmarshalJSON decodes the part, keeping unknown members in Extra.
func (p *GeminiPart) UnmarshalJSON(b []byte) error {
	type plain GeminiPart
	return decodeObject(b, (*plain)(p), &p.Extra)
}

// MarshalJSON encodes the part with its Extra members.
func (p GeminiPart) MarshalJSON() ([]byte, error) {
	type plain GeminiPart
	return encodeObject(plain(p), p.Extra)
}

// GenerationConfig is a request's generation parameters.
type GenerationConfig struct {
	MaxOutputTokens  *int            `json:"maxOutputTokens,omitempty"`
	Temperature      *float64        `json:"temperature,omitempty"`
	TopP             *float64        `json:"topP,omitempty"`
	TopK             *int            `json:"topK,omitempty"`
	StopSequences    []string        `json:"stopSequences,omitempty"`
	CandidateCount   *int            `json:"candidateCount,omitempty"`
	ResponseMimeType string          `json:"responseMimeType,omitempty"`
	ResponseSchema   json.RawMessage `json:"responseSchema,omitempty"`
}

// GenerateContentResponse is Gemini's answer, and each event of its
// stream (streamGenerateContent?alt=sse sends one per SSE event, with no
// event names and no terminal marker).
type GenerateContentResponse struct {
	Candidates    []GeminiCandidate `json:"candidates"`
	UsageMetadata *UsageMetadata    `json:"usageMetadata,omitempty"`
	ModelVersion  string            `json:"modelVersion,omitempty"`
	ResponseID    string            `json:"responseId,omitempty"`
	Extra         Extra             `json:"-"`
}

// UnmarshalJSON decodes the response, keeping unknown members in Extra.
func (r *GenerateContentResponse) UnmarshalJSON(b []byte) error {
	type plain GenerateContentResponse
	return decodeObject(b, (*plain)(r), &r.Extra)
}

// MarshalJSON encodes the response with its Extra members.
func (r GenerateContentResponse) MarshalJSON() ([]byte, error) {
	type plain GenerateContentResponse
	return encodeObject(plain(r), r.Extra)
}

// GeminiCandidate is one candidate answer.
type GeminiCandidate struct {
	Content      GeminiContent `json:"content"`
	FinishReason string        `json:"finishReason,omitempty"`
	Index        int           `json:"index"`
}

// UsageMetadata is Gemini's token usage.
type UsageMetadata struct {
	PromptTokenCount        int `json:"promptTokenCount"`
	CandidatesTokenCount    int `json:"candidatesTokenCount"`
	TotalTokenCount         int `json:"totalTokenCount"`
	CachedContentTokenCount int `json:"cachedContentTokenCount,omitempty"`
}

// GeminiErrorBody is Google's error body: {"error": {code, message,
// status}}.
type GeminiErrorBody struct {
	Error GeminiError `json:"error"`
}

// GeminiError is the error inside a GeminiErrorBody; Status is the
// google.rpc code name ("RESOURCE_EXHAUSTED", "UNAVAILABLE", ...).
type GeminiError struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
	Status  string `json:"status"`
}

// GeminiStatus returns the google.rpc status name Google sends with an
// HTTP status.
func GeminiStatus(status int) string {
	switch status {
	case 400:
		return "INVALID_ARGUMENT"
	case 401:
		return "UNAUTHENTICATED"
	case 403:
		return "PERMISSION_DENIED"
	case 404:
		return "NOT_FOUND"
	case 429:
		return "RESOURCE_EXHAUSTED"
	case 503:
		return "UNAVAILABLE"
	case 504:
		return "DEADLINE_EXCEEDED"
	}
	return "INTERNAL"
}

// Gemini finish reasons relia maps.
const (
	GeminiStop      = "STOP"
	GeminiMaxTokens = "MAX_TOKENS"
)

// BatchEmbedRequest is the body of Gemini's models/{model}:batchEmbedContents.
type BatchEmbedRequest struct {
	Requests []EmbedContentRequest `json:"requests"`
}

// EmbedContentRequest is one text to embed.
type EmbedContentRequest struct {
	Model   string        `json:"model"`
	Content GeminiContent `json:"content"`
}

// BatchEmbedResponse answers a BatchEmbedRequest.
type BatchEmbedResponse struct {
	Embeddings []struct {
		Values []float64 `json:"values"`
	} `json:"embeddings"`
}
