package llmload

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/relia-dev/relia/ai/wire"
)

// API is the wire format of the streams a test reads.
type API string

// The formats a test understands.
const (
	// APISSE is any Server-Sent Events stream: every event counts as one
	// token; an event named "error" is an error event; "[DONE]" or the
	// end of the stream after a whole event ends it well.
	APISSE API = "sse"
	// APIOpenAI is OpenAI's chat completions stream (and every server
	// that speaks it): ended by "data: [DONE]".
	APIOpenAI API = "openai"
	// APIAnthropic is Anthropic's Messages stream: ended by message_stop.
	APIAnthropic API = "anthropic"
	// APIGemini is Gemini's streamGenerateContent?alt=sse: ended by the
	// end of the stream after a chunk with a finishReason.
	APIGemini API = "gemini"
	// APIWebSocket is a WebSocket (ws:// or wss://): relia sends the
	// prompt as one text message (OpenAI's chat request) and counts every
	// message back as a token; "[DONE]" or a normal close ends it well, a
	// close with another status is an error event, a connection lost
	// without a close is a truncation.
	APIWebSocket API = "websocket"
)

// ParseAPI reads an API name.
func ParseAPI(s string) (API, error) {
	switch a := API(s); a {
	case APISSE, APIOpenAI, APIAnthropic, APIGemini, APIWebSocket:
		return a, nil
	}
	return "", fmt.Errorf("api %q: want openai, anthropic, gemini, sse or websocket", s)
}

// DetectAPI guesses a stream's format from the path of its URL: OpenAI's
// /chat/completions, Anthropic's /v1/messages, Gemini's
// :streamGenerateContent; anything else is a plain SSE stream.
func DetectAPI(path string) API {
	switch {
	case strings.HasSuffix(path, "/chat/completions"):
		return APIOpenAI
	case strings.HasSuffix(path, "/v1/messages"):
		return APIAnthropic
	case strings.Contains(path, ":streamGenerateContent"):
		return APIGemini
	}
	return APISSE
}

// Ending is how a stream ended.
type Ending string

// The endings of a request, as counted in Result.Endings.
const (
	// EndDone is a stream that ended with its format's last event.
	EndDone Ending = "done"
	// EndErrorEvent is a stream that carried an error event.
	EndErrorEvent Ending = "error_event"
	// EndTruncated is a stream cut before its last event: the connection
	// closed in the middle, or cleanly but too early.
	EndTruncated Ending = "truncated"
	// EndStalled is a stream that sent nothing for longer than the idle
	// timeout (before its first event, or between two).
	EndStalled Ending = "stalled"
	// EndStatus is an answer whose status was not 2xx.
	EndStatus Ending = "status"
	// EndFailed is a request that got no answer: refused, reset before
	// the head, timed out, or a stream relia could not read.
	EndFailed Ending = "failed"
	// EndDropped is an arrival never sent: the in-flight cap was reached.
	EndDropped Ending = "dropped"
)

// Endings lists every ending in the order outputs show them.
var Endings = []Ending{EndDone, EndErrorEvent, EndTruncated, EndStalled, EndStatus, EndFailed, EndDropped}

// event is what one SSE event adds to a stream.
type event struct {
	// tokens is the output tokens the event carries as text (one per
	// content event; the usage figures, when the server sends them, win).
	tokens int
	// usageOut and usageIn are the output and input tokens the server
	// reports as of this event, -1 when it reports none.
	usageOut, usageIn int
	done, failed      bool
}

// decoder turns a format's events into tokens and endings.
type decoder interface {
	decode(ev wire.SSEEvent) (event, error)
	// endOK says whether a stream that ends cleanly here ended well.
	endOK() bool
}

func newDecoder(api API) decoder {
	switch api {
	case APIOpenAI:
		return &openAIDecoder{}
	case APIAnthropic:
		return &anthropicDecoder{}
	case APIGemini:
		return &geminiDecoder{}
	}
	return &sseDecoder{}
}

type sseDecoder struct{}

func (*sseDecoder) decode(ev wire.SSEEvent) (event, error) {
	switch {
	case ev.Name == "error":
		return event{failed: true, usageOut: -1, usageIn: -1}, nil
	case bytes.Equal(ev.Data, wire.Done):
		return event{done: true, usageOut: -1, usageIn: -1}, nil
	}
	return event{tokens: 1, usageOut: -1, usageIn: -1}, nil
}

func (*sseDecoder) endOK() bool { return true }

type openAIDecoder struct{}

func (*openAIDecoder) decode(ev wire.SSEEvent) (event, error) {
	out := event{usageOut: -1, usageIn: -1}
	if bytes.Equal(ev.Data, wire.Done) {
		out.done = true
		return out, nil
	}
	var c wire.ChatChunk
	if err := json.Unmarshal(ev.Data, &c); err != nil {
		return out, fmt.Errorf("reading an OpenAI chunk: %w", err)
	}
	if c.Error != nil {
		out.failed = true
		return out, nil
	}
	for _, ch := range c.Choices {
		if ch.Delta.Content != nil && *ch.Delta.Content != "" {
			out.tokens = 1
		}
	}
	if c.Usage != nil {
		out.usageOut, out.usageIn = c.Usage.CompletionTokens, c.Usage.PromptTokens
	}
	return out, nil
}

func (*openAIDecoder) endOK() bool { return false }

type anthropicDecoder struct{ in int }

func (d *anthropicDecoder) decode(ev wire.SSEEvent) (event, error) {
	out := event{usageOut: -1, usageIn: -1}
	var e wire.StreamEvent
	if err := json.Unmarshal(ev.Data, &e); err != nil {
		return out, fmt.Errorf("reading an Anthropic event: %w", err)
	}
	typ := e.Type
	if typ == "" {
		typ = ev.Name
	}
	switch typ {
	case wire.EventError:
		out.failed = true
	case wire.EventMessageStop:
		out.done = true
	case wire.EventContentBlockDelta:
		if e.Delta != nil && e.Delta.Text != "" {
			out.tokens = 1
		}
	case wire.EventMessageStart:
		if e.Message != nil {
			d.in = e.Message.Usage.InputTokens
			out.usageIn = d.in
		}
	case wire.EventMessageDelta:
		if e.Usage != nil {
			out.usageOut, out.usageIn = e.Usage.OutputTokens, d.in
		}
	}
	return out, nil
}

func (*anthropicDecoder) endOK() bool { return false }

type geminiDecoder struct{ finished bool }

func (d *geminiDecoder) decode(ev wire.SSEEvent) (event, error) {
	out := event{usageOut: -1, usageIn: -1}
	if _, ok, _ := wire.Member(ev.Data, "error"); ok {
		out.failed = true
		return out, nil
	}
	var r wire.GenerateContentResponse
	if err := json.Unmarshal(ev.Data, &r); err != nil {
		return out, fmt.Errorf("reading a Gemini chunk: %w", err)
	}
	for _, c := range r.Candidates {
		for _, p := range c.Content.Parts {
			if p.Text != "" {
				out.tokens = 1
			}
		}
		if c.FinishReason != "" {
			d.finished = true
		}
	}
	if u := r.UsageMetadata; u != nil {
		out.usageOut, out.usageIn = u.CandidatesTokenCount, u.PromptTokenCount
	}
	return out, nil
}

func (d *geminiDecoder) endOK() bool { return d.finished }

// errStreamEnd tells readStream's caller the stream ended without error.
var errStreamEnd = errors.New("end of stream")

// streamReader reads a stream's events and sums them up.
type streamReader struct {
	sse *wire.SSEReader
	dec decoder
}

// next reads one event; at the end of the stream it returns the ending
// and errStreamEnd.
func (r *streamReader) next() (event, Ending, error) {
	ev, err := r.sse.Next()
	switch {
	case err == io.EOF:
		if r.dec.endOK() {
			return event{}, EndDone, errStreamEnd
		}
		return event{}, EndTruncated, errStreamEnd
	case err != nil:
		return event{}, "", err
	}
	e, err := r.dec.decode(ev)
	if err != nil {
		return e, EndFailed, err
	}
	return e, "", nil
}
