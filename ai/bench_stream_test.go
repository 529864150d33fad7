package ai

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"

	"github.com/relia-dev/relia/ai/wire"
)

// cannedStream is an OpenAI stream of n one-word tokens, a finish
// chunk, a usage chunk and [DONE], as a provider writes it.
func cannedStream(n int) []byte {
	var b []byte
	for i := range n {
		b = wire.AppendSSE(b, "", fmt.Appendf(nil, `{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"gpt-4o-mini","choices":[{"index":0,"delta":{"content":"tok%d "},"finish_reason":null}]}`, i))
	}
	b = wire.AppendSSE(b, "", []byte(`{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"gpt-4o-mini","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}`))
	b = wire.AppendSSE(b, "", []byte(`{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"gpt-4o-mini","choices":[],"usage":{"prompt_tokens":12,"completion_tokens":100,"total_tokens":112}}`))
	return wire.AppendSSE(b, "", wire.Done)
}

// eventReader hands out a canned stream one event at a time, as a
// provider's connection does when each token is written on its own.
type eventReader struct{ rest []byte }

func (e *eventReader) Read(p []byte) (int, error) {
	if len(e.rest) == 0 {
		return 0, io.EOF
	}
	end := bytes.Index(e.rest, []byte("\n\n"))
	if end < 0 {
		end = len(e.rest)
	} else {
		end += 2
	}
	n := copy(p, e.rest[:end])
	e.rest = e.rest[n:]
	return n, nil
}

type cannedStreamTransport struct{ body []byte }

func (c cannedStreamTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	io.Copy(io.Discard, r.Body)
	r.Body.Close()
	return &http.Response{StatusCode: 200, Header: http.Header{"Content-Type": {"text/event-stream"}}, Body: io.NopCloser(&eventReader{rest: c.body}), Request: r}, nil
}

// BenchmarkChatStreaming is the CPU relia adds to one 100-token stream
// from a provider of the client's format, each event read on its own.
func BenchmarkChatStreaming(b *testing.B) {
	svc := benchService(b, cannedStreamTransport{cannedStream(100)})
	body := `{"model":"gpt-4o-mini","stream":true,"messages":[{"role":"user","content":"hello there, how are you today?"}],"max_tokens":128}`
	benchCalls(b, svc, body, func(w *httptest.ResponseRecorder) bool {
		return w.Code == 200 && bytes.HasSuffix(w.Body.Bytes(), []byte("data: [DONE]\n\n"))
	})
}

// TestScanChunk: a stream chunk scanned, not decoded, gives what decoding
// it gave: output, finish, usage, errors, and refusals of wrong types.
func TestScanChunk(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in, want string
	}{
		{`{"id":"c","choices":[{"index":0,"delta":{"content":"hi"},"finish_reason":null}]}`, "tokens=true finish= usage=false usageOnly=false"},
		{`{"choices":[{"delta":{"content":""}}]}`, "tokens=false finish= usage=false usageOnly=false"},
		{`{"choices":[{"delta":{"content":null,"tool_calls":[{"id":"t"}]}}]}`, "tokens=true finish= usage=false usageOnly=false"},
		{`{"choices":[{"delta":{"tool_calls":[]},"finish_reason":"tool_calls"}]}`, "tokens=false finish=tool_calls usage=false usageOnly=false"},
		{`{"choices":[{"delta":{},"finish_reason":"st\u006fp"}]}`, "tokens=false finish=stop usage=false usageOnly=false"},
		{`{"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":4}}`, "tokens=false finish= usage=true usageOnly=true"},
		{`{"choices":[{"delta":{"content":"x"}}],"usage":{"prompt_tokens":3}}`, "tokens=true finish= usage=true usageOnly=false"},
		{`{"error":{"type":"rate_limit_error","message":"slow down"}}`, "error: rate_limited: slow down"},
		{`{"choices":[{"delta":{"content":5}}]}`, "error: decoding a stream chunk"},
		{`{"choices":{"delta":{}}}`, "error: decoding a stream chunk"},
		{`{"choices":[{"finish_reason":1}]}`, "error: decoding a stream chunk"},
		{`{"choices":[]`, "error: decoding a stream chunk"},
		// What the scan skips must still be JSON: the chunk goes on as written.
		{`{"choices":[],"x":01}`, "error: decoding a stream chunk: not valid JSON"},
		{`{"choices":[],"x":"\q"}`, "error: decoding a stream chunk: not valid JSON"},
		{`{"choices":[],"x":"a` + "\x01" + `"}`, "error: decoding a stream chunk: not valid JSON"},
	} {
		p, err := scanChunk([]byte(tc.in))
		got := fmt.Sprintf("tokens=%v finish=%s usage=%v usageOnly=%v", p.tokens, p.finish, p.usage != nil, p.usageOnly)
		if err != nil {
			got = "error: " + err.Error()
		}
		if !strings.HasPrefix(got, tc.want) {
			t.Errorf("%s: %s, want %s", tc.in, got, tc.want)
		}
	}
}

// BenchmarkChatStreamingYield is what the yield between a stream's
// chunks costs: BenchmarkChatStreaming on one processor, with the yield
// and without it, side by side.
func BenchmarkChatStreamingYield(b *testing.B) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	svc := benchService(b, cannedStreamTransport{cannedStream(100)})
	body := `{"model":"gpt-4o-mini","stream":true,"messages":[{"role":"user","content":"hello there, how are you today?"}],"max_tokens":128}`
	ok := func(w *httptest.ResponseRecorder) bool {
		return w.Code == 200 && bytes.HasSuffix(w.Body.Bytes(), []byte("data: [DONE]\n\n"))
	}
	for _, on := range []bool{true, false} {
		b.Run(fmt.Sprintf("yield=%v", on), func(b *testing.B) {
			if !on {
				defer func(y func()) { yield = y }(yield)
				yield = func() {}
			}
			benchCalls(b, svc, body, ok)
		})
	}
}
