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
		r.Header.Set("Authorization", t.cred.bearer)
	}
}

func (a openAIAdapter) chatRequest(ctx context.Context, t *target, req *wire.ChatRequest) (*http.Request, error) {
	var body []byte
	var err error
	if req.Raw != nil {
		body, err = forwardChat(req.Raw, t.rt.modelJSON, req.Stream)
	} else {
		out := *req
		out.Model = t.model
		if out.Stream {
			out.StreamOptions = &wire.StreamOptions{IncludeUsage: true}
		}
		body, err = json.Marshal(out)
	}
	if err != nil {
		return nil, fmt.Errorf("encoding request: %w", err)
	}
	r, err := newRequest(ctx, a.url(t, "chat/completions"), body)
	if err != nil {
		return nil, err
	}
	a.auth(r, t)
	return r, nil
}

// forwardChat edits a client's chat body for a provider of the same
// format: the provider's model id, and, for a stream, usage asked for
// (quotas and costs are made of it). Every other member stays as the
// client wrote it.
func forwardChat(raw, model []byte, stream bool) ([]byte, error) {
	body, err := wire.SetMember(raw, "model", model)
	if err != nil || !stream {
		return body, err
	}
	so := []byte(`{"include_usage":true}`)
	if cur, ok, _ := wire.Member(body, "stream_options"); ok && len(cur) > 0 && cur[0] == '{' {
		if so, err = wire.SetMember(cur, "include_usage", []byte("true")); err != nil {
			return nil, err
		}
	}
	return wire.SetMember(body, "stream_options", so)
}

// chatResponse keeps the answer as the provider wrote it: the client of
// the same format gets it unchanged, and only its usage is read here
// (decodeChat decodes the rest for the callers that need it).
func (openAIAdapter) chatResponse(_ *target, body []byte) (*wire.ChatResponse, []byte, error) {
	if !validJSON(body) {
		return nil, nil, fmt.Errorf("decoding the provider's answer: not JSON")
	}
	return nil, body, nil
}

// usageOf reads the usage member of an OpenAI answer without decoding
// the rest of it.
func usageOf(raw []byte) Usage {
	u, ok, _ := wire.Member(raw, "usage")
	if !ok || wire.IsNull(u) {
		return Usage{}
	}
	var out Usage
	wire.Members(u, func(k, v []byte) bool {
		switch {
		case wire.KeyIs(k, "prompt_tokens"):
			out.InputTokens = intOf(v)
		case wire.KeyIs(k, "completion_tokens"):
			out.OutputTokens = intOf(v)
		case wire.KeyIs(k, "prompt_tokens_details"):
			out.CachedTokens = 0
			if c, ok, _ := wire.Member(v, "cached_tokens"); ok {
				out.CachedTokens = intOf(c)
			}
		}
		return true
	})
	return out
}

// intOf reads a JSON integer as decoding it into an int would; anything
// else (a fraction, a string, null, a number past 18 digits) is 0.
func intOf(v []byte) int {
	neg := len(v) > 0 && v[0] == '-'
	if neg {
		v = v[1:]
	}
	if len(v) == 0 || len(v) > 18 || len(v) > 1 && v[0] == '0' {
		return 0
	}
	n := 0
	for _, c := range v {
		if c < '0' || c > '9' {
			return 0
		}
		n = n*10 + int(c-'0')
	}
	if neg {
		return -n
	}
	return n
}

// decodeChat returns the decoded answer, decoding raw when the adapter
// kept it whole.
func decodeChat(resp *wire.ChatResponse, raw []byte) *wire.ChatResponse {
	if resp != nil {
		return resp
	}
	var r wire.ChatResponse
	json.Unmarshal(raw, &r)
	return &r
}

func (openAIAdapter) chatStream(_ *target, body io.Reader) streamDecoder {
	return &openAIStream{r: wire.NewSSEReader(body, 0), body: body}
}

type openAIStream struct {
	r    *wire.SSEReader
	body io.Reader
	done bool
	// shape reads the chunks that differ from the last one scanned in
	// full only in strings (chunkShape).
	shape chunkShape
}

// finishAtHand reads a provider's body to its framing's end, without
// waiting, once its stream said it ended, when the body can
// (upstreamBody.finishAtHand): its connection then serves the next call.
func finishAtHand(body io.Reader) {
	if f, ok := body.(interface{ finishAtHand() }); ok {
		f.finishAtHand()
	}
}

func (s *openAIStream) buffered() int { return s.r.Buffered() }
func (s *openAIStream) idle()         { s.r.Idle() }

func (s *openAIStream) release() {
	s.r.Idle()
	s.shape.release()
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
		finishAtHand(s.body)
		return piece{}, io.EOF
	}
	if p, ok := s.shape.read(ev.Data); ok {
		return p, nil
	}
	p, err := scanChunk(ev.Data)
	if err != nil {
		return piece{}, err
	}
	s.shape.learn(ev.Data, p)
	return p, nil
}

// scanChunk reads what relia needs of an OpenAI stream chunk (an error,
// whether it carries output, its finish reason and usage) by scanning it
// rather than decoding it: the chunk goes on to an OpenAI client as the
// provider wrote it. The piece's raw is data itself, valid until the
// stream's next read. A chunk whose members relia reads have the wrong
// types is refused, as decoding it would.
//
// One walk both checks the chunk is JSON by encoding/json's strict rules
// (it is forwarded as written) and reads the members: a chunk is walked
// once, not once to check it and again for each level read. Where a key
// comes twice, the last one counts, as in decoding; and a chunk that is
// not JSON is refused as such before any member of a wrong type.
func scanChunk(data []byte) (piece, error) {
	bad := func(err error) (piece, error) {
		return piece{}, fmt.Errorf("decoding a stream chunk: %w", err)
	}
	var (
		errv, usage []byte
		choices     chunkChoices
	)
	i := skipSpace(data, 0)
	if i >= len(data) || data[i] != '{' {
		if !validJSON(data) {
			return bad(errors.New("not valid JSON"))
		}
		return bad(wire.ErrNotObject)
	}
	end, ok := walkObject(data, i, 1, func(key []byte, plain bool, at int) (int, bool) {
		if keyIs(key, plain, "choices") {
			var end int
			var ok bool
			choices, end, ok = scanChoices(data, at)
			return end, ok
		}
		end, ok := validValue(data, at, 1)
		switch {
		case !ok:
		case keyIs(key, plain, "usage"):
			usage = data[at:end]
		case keyIs(key, plain, "error"):
			errv = data[at:end]
		}
		return end, ok
	})
	if !ok || skipSpace(data, end) != len(data) {
		return bad(errors.New("not valid JSON"))
	}
	if errv != nil && !wire.IsNull(errv) {
		var e wire.ErrorObject
		if err := json.Unmarshal(errv, &e); err != nil {
			return bad(err)
		}
		return piece{}, streamErrorOf(e.Type, e.Message)
	}
	if choices.err != nil {
		return bad(choices.err)
	}
	p := piece{raw: data, tokens: choices.tokens}
	if choices.finish != nil {
		f := choices.finish[1 : len(choices.finish)-1]
		if !bytes.ContainsRune(f, '\\') {
			p.finish = string(f)
		} else {
			// Decoded into a string of its own: &p.finish given to
			// json.Unmarshal would put every chunk's piece on the heap.
			var escaped string
			if err := json.Unmarshal(choices.finish, &escaped); err != nil {
				return bad(err)
			}
			p.finish = escaped
		}
	}
	if usage != nil && !wire.IsNull(usage) {
		var w wire.Usage
		if err := json.Unmarshal(usage, &w); err != nil {
			return bad(err)
		}
		u := usageFromOpenAI(&w)
		p.usage = &u
		p.usageOnly = choices.n == 0
	}
	return p, nil
}

var errChunkType = errors.New("a member of the chunk has the wrong type")

// chunkChoices is what a chunk's choices carry: how many were read,
// whether any has output, the last finish reason given (quoted, as
// written), or why they are refused.
type chunkChoices struct {
	n      int
	tokens bool
	finish []byte
	err    error
}

// scanChoices checks the chunk's choices at data[at] (a member of the
// chunk, so two deep) and reads them; it returns the index past them and
// whether they are JSON. A choice of the wrong shape or type is
// refused, and the choices after it are only checked.
func scanChoices(data []byte, at int) (chunkChoices, int, bool) {
	var c chunkChoices
	switch {
	case at < len(data) && data[at] == '[':
	case at < len(data) && data[at] == 'n':
		end, ok := validLiteral(data, at, "null")
		return c, end, ok
	default:
		end, ok := validValue(data, at, 1)
		c.err = wire.ErrNotArray
		return c, end, ok
	}
	end, ok := walkArray(data, at, 2, func(at int) (int, bool) {
		if c.err != nil {
			return validValue(data, at, 2)
		}
		c.n++
		return scanChoice(data, at, &c)
	})
	return c, end, ok
}

// scanChoice checks and reads one choice at data[at]: its delta's output
// (text or tool calls) and its finish reason, the last of each key
// written.
func scanChoice(data []byte, at int, c *chunkChoices) (int, bool) {
	if at >= len(data) || data[at] != '{' {
		end, ok := validValue(data, at, 2)
		c.err = wire.ErrNotObject
		return end, ok
	}
	var (
		tokens   bool
		deltaErr error
		finish   []byte
	)
	end, ok := walkObject(data, at, 3, func(key []byte, plain bool, at int) (int, bool) {
		if keyIs(key, plain, "delta") {
			var end int
			var ok bool
			tokens, deltaErr, end, ok = scanDelta(data, at)
			return end, ok
		}
		end, ok := validValue(data, at, 3)
		if ok && keyIs(key, plain, "finish_reason") {
			finish = data[at:end]
		}
		return end, ok
	})
	switch {
	case !ok:
	case deltaErr != nil:
		c.err = deltaErr
	case finish != nil && !wire.IsNull(finish) && finish[0] != '"':
		c.err = errChunkType
	default:
		c.tokens = c.tokens || tokens
		if finish != nil && !wire.IsNull(finish) {
			c.finish = finish
		}
	}
	return end, ok
}

// scanDelta checks and reads a choice's delta at data[at]: whether it
// carries text or a tool call, or why it is refused.
func scanDelta(data []byte, at int) (tokens bool, err error, end int, ok bool) {
	switch {
	case at < len(data) && data[at] == '{':
	case at < len(data) && data[at] == 'n':
		end, ok = validLiteral(data, at, "null")
		return false, nil, end, ok
	default:
		end, ok = validValue(data, at, 3)
		return false, wire.ErrNotObject, end, ok
	}
	end, ok = walkObject(data, at, 4, func(key []byte, plain bool, at int) (int, bool) {
		end, ok := validValue(data, at, 4)
		if !ok || err != nil {
			return end, ok
		}
		v := data[at:end]
		switch {
		case keyIs(key, plain, "content"):
			switch {
			case wire.IsNull(v):
			case v[0] != '"':
				err = errChunkType
			case len(v) > 2:
				tokens = true
			}
		case keyIs(key, plain, "tool_calls"):
			switch {
			case wire.IsNull(v):
			case v[0] != '[':
				err = errChunkType
			case data[skipSpace(data, at+1)] != ']':
				tokens = true
			}
		}
		return end, ok
	})
	return tokens, err, end, ok
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
	var body []byte
	var err error
	if req.Raw != nil {
		q, _ := json.Marshal(t.model)
		body, err = wire.SetMember(req.Raw, "model", q)
	} else {
		out := *req
		out.Model = t.model
		body, err = json.Marshal(out)
	}
	if err != nil {
		return nil, fmt.Errorf("encoding request: %w", err)
	}
	r, err := newRequest(ctx, a.url(t, "embeddings"), body)
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
