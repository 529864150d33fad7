package ai

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/relia-dev/relia/ai/wire"
	"github.com/relia-dev/relia/resilience"
)

// Usage is the tokens one call used, in the unified form every adapter
// reads its provider's usage into.
type Usage struct {
	InputTokens  int `json:"input_tokens"`
	OutputTokens int `json:"output_tokens"`
	// CachedTokens are the input tokens read from the provider's prompt
	// cache (part of InputTokens).
	CachedTokens int `json:"cached_tokens,omitempty"`
}

// Total returns input plus output tokens.
func (u Usage) Total() int { return u.InputTokens + u.OutputTokens }

func usageFromOpenAI(u *wire.Usage) Usage {
	if u == nil {
		return Usage{}
	}
	out := Usage{InputTokens: u.PromptTokens, OutputTokens: u.CompletionTokens}
	if u.PromptTokensDetails != nil {
		out.CachedTokens = u.PromptTokensDetails.CachedTokens
	}
	return out
}

func (u Usage) openAI() *wire.Usage {
	w := &wire.Usage{PromptTokens: u.InputTokens, CompletionTokens: u.OutputTokens, TotalTokens: u.Total()}
	if u.CachedTokens > 0 {
		w.PromptTokensDetails = &wire.PromptTokenDetails{CachedTokens: u.CachedTokens}
	}
	return w
}

// errKind classifies a failed attempt, deciding what relia does next.
type errKind uint8

const (
	kindClient        errKind = iota + 1 // the request is wrong: no failover, the client gets the error
	kindRateLimited                      // 429: this credential waits out Retry-After, the call fails over
	kindOverloaded                       // 529, 503: the provider waits out Retry-After, the call fails over
	kindServer                           // other 5xx: fail over
	kindContextLength                    // the prompt is too long for the model: the context fallback
	kindAuth                             // the provider refused relia's credential: fail over to another key
	kindTimeout                          // no first token in time
	kindNetwork                          // no answer: connection refused, reset, truncated
)

var kindNames = [...]string{"", "client_error", "rate_limited", "overloaded", "server_error", "context_length", "provider_auth", "timeout", "network"}

func (k errKind) String() string { return kindNames[k] }

// callError is a failed attempt or call, with what the client is told.
type callError struct {
	kind    errKind
	status  int // the provider's status, 0 when there was no answer
	message string
	// retryAfter is the provider's Retry-After, zero when none.
	retryAfter time.Duration
	// body is the provider's error body, for a client error relayed in
	// the provider's own format.
	body []byte
}

func (e *callError) Error() string {
	if e.status > 0 {
		return fmt.Sprintf("%s (%d): %s", e.kind, e.status, e.message)
	}
	return fmt.Sprintf("%s: %s", e.kind, e.message)
}

// RetryHint returns the provider's Retry-After.
func (e *callError) RetryHint() (time.Duration, bool) { return e.retryAfter, e.retryAfter > 0 }

// retryable reports whether another target may be tried.
func (e *callError) retryable() bool { return e.kind != kindClient }

var _ resilience.RetryHinter = (*callError)(nil)

// classify turns a provider's error answer into a callError.
func classify(status int, h http.Header, message, code string, body []byte, now time.Time) *callError {
	e := &callError{status: status, message: message, body: body}
	if ra, ok := resilience.ParseRetryAfter(h.Get("Retry-After"), now); ok {
		e.retryAfter = ra
	}
	switch {
	case status == http.StatusTooManyRequests:
		e.kind = kindRateLimited
	case status == wire.StatusOverloaded || status == http.StatusServiceUnavailable:
		e.kind = kindOverloaded
	case status >= 500:
		e.kind = kindServer
	case status == http.StatusRequestTimeout:
		e.kind = kindTimeout
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		e.kind = kindAuth
	case isContextLength(status, code, message):
		e.kind = kindContextLength
	default:
		e.kind = kindClient
	}
	return e
}

// contextPhrases are how providers word a prompt too long for the model.
var contextPhrases = []string{"context length", "context_length", "context window", "prompt is too long", "input is too long", "exceeds the maximum number of tokens", "too many input tokens", "maximum context"}

func isContextLength(status int, code, message string) bool {
	if status != http.StatusBadRequest && status != http.StatusRequestEntityTooLarge {
		return false
	}
	if code == wire.CodeContextLength {
		return true
	}
	m := strings.ToLower(message)
	for _, p := range contextPhrases {
		if strings.Contains(m, p) {
			return true
		}
	}
	return false
}

// piece is one step of a provider's stream, read into the unified form.
type piece struct {
	// raw is an OpenAI chunk as the provider sent it, forwarded as is to
	// an OpenAI client (valid until the decoder's next read: a piece
	// held longer holds a copy); chunk is the chunk built from another
	// format.
	raw   []byte
	chunk *wire.ChatChunk
	// tokens reports that the piece carries output (text or a tool call):
	// the first such piece is the call's first token.
	tokens bool
	// usage is set when the piece reports the call's usage;
	// usageOnly marks a piece that carries nothing else.
	usage     *Usage
	usageOnly bool
	// finish is set on the piece that carries the finish reason.
	finish string
}

// chatChunk returns the piece as an OpenAI chunk: the one built from
// another format, else the provider's decoded; nil when it is neither.
func (p piece) chatChunk() *wire.ChatChunk {
	if p.chunk != nil || p.raw == nil {
		return p.chunk
	}
	var c wire.ChatChunk
	if json.Unmarshal(p.raw, &c) != nil {
		return nil
	}
	return &c
}

// streamDecoder reads a provider's stream as pieces. next returns io.EOF
// at the stream's proper end, a *callError for the provider's error
// event, and io.ErrUnexpectedEOF or another error for a broken stream.
type streamDecoder interface {
	next() (piece, error)
	// buffered is how many bytes of the stream are read but not yet
	// decoded: while there are, relia holds its flush to the client.
	buffered() int
	// idle lets go of what the decoder holds between events while its
	// stream waits with nothing buffered (wire.SSEReader.Idle).
	idle()
	// release lets go of what the decoder holds once its stream is
	// closed, for the streams after it: a stream answered at once never
	// waits, and without this each one grew its buffers anew.
	release()
}

// adapter translates between the unified format (OpenAI's) and one
// provider's API.
type adapter interface {
	chatRequest(ctx context.Context, t *target, req *wire.ChatRequest) (*http.Request, error)
	chatResponse(t *target, body []byte) (*wire.ChatResponse, []byte, error)
	chatStream(t *target, body io.Reader) streamDecoder
	embedRequest(ctx context.Context, t *target, req *wire.EmbeddingRequest) (*http.Request, error)
	embedResponse(t *target, req *wire.EmbeddingRequest, body []byte) ([]byte, Usage, error)
	errorOf(status int, h http.Header, body []byte, now time.Time) *callError
}

// errNoEmbeddings is returned by providers relia has no embeddings
// mapping for.
var errNoEmbeddings = errors.New("this provider type serves no embeddings through relia")

func newJSONRequest(ctx context.Context, url string, v any) (*http.Request, error) {
	body, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("encoding request: %w", err)
	}
	return newRequest(ctx, url, body)
}

// newRequest returns a POST of a JSON body: what
// http.NewRequestWithContext makes, from a URL parsed once (providerURL)
// and in two allocations, the request and what it points to, rather
// than eight. The request is WithContext's own copy of an empty one, its
// fields set after: a request made first would be copied whole.
func newRequest(ctx context.Context, rawURL string, body []byte) (*http.Request, error) {
	u, err := providerURL(rawURL)
	if err != nil {
		return nil, err
	}
	o := &outRequest{url: *u}
	o.body.reset(body)
	req := (&http.Request{}).WithContext(ctx)
	req.Method, req.URL, req.Host = http.MethodPost, &o.url, o.url.Host
	req.Proto, req.ProtoMajor, req.ProtoMinor = "HTTP/1.1", 1, 1
	req.Header = http.Header{"Content-Type": jsonContentType}
	req.Body, req.ContentLength = &o.body, int64(len(body))
	if len(body) == 0 {
		req.Body = http.NoBody
	}
	if o.url.Scheme == "https" {
		// Go's transport sends the body again on a kept connection the
		// provider closed meanwhile.
		req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
	}
	return req, nil
}

// outRequest is what a request to a provider points to.
type outRequest struct {
	url  url.URL
	body requestBody
}

// requestBody is a request's body in memory. UpstreamTransport sends
// its bytes as they are (unread), rather than reading them into a copy.
type requestBody struct {
	bytes.Reader
	all []byte
}

func (b *requestBody) reset(body []byte) {
	b.Reader.Reset(body)
	b.all = body
}

// unread returns the body's bytes if none was read yet.
func (b *requestBody) unread() ([]byte, bool) {
	if b.Len() != len(b.all) {
		return nil, false
	}
	return b.all, true
}

func (*requestBody) Close() error { return nil }

// providerURLs holds the providers' request URLs parsed, up to
// maxProviderURLs: they come from the config (a provider's URL, a
// model's id), so a service meets few of them, each on every call.
var (
	providerURLs  sync.Map // string: *url.URL, never changed once stored
	providerURLsN atomic.Int64
)

const maxProviderURLs = 4096

// providerURL parses a request URL to a provider, once.
func providerURL(raw string) (*url.URL, error) {
	if u, ok := providerURLs.Load(raw); ok {
		return u.(*url.URL), nil
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, err
	}
	if providerURLsN.Load() < maxProviderURLs {
		if _, loaded := providerURLs.LoadOrStore(raw, u); !loaded {
			providerURLsN.Add(1)
		}
	}
	return u, nil
}

// jsonContentType is the Content-Type header's value of a JSON body,
// shared by every request and answer that sets it (a header Set replaces
// the slice rather than writing into it).
var jsonContentType = []string{"application/json"}

// The fields of every stream's head (streamWriter.start), shared as
// jsonContentType is.
var (
	eventStreamType  = []string{"text/event-stream"}
	noCache          = []string{"no-cache"}
	noAccelBuffering = []string{"no"}
)

func adapterFor(typ string) adapter {
	switch typ {
	case ProviderAnthropic:
		return anthropicAdapter{}
	case ProviderGemini:
		return geminiAdapter{}
	case ProviderBedrock:
		return bedrockAdapter{}
	case ProviderAzure:
		return openAIAdapter{azure: true}
	}
	return openAIAdapter{}
}

func strPtr(s string) *string { return &s }
