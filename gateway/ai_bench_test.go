package gateway

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// cannedChatAnswer is a provider's non-streaming chat completion, as the
// benchmarks' raw provider answers every request.
const cannedChatAnswer = `{"id":"chatcmpl-1","object":"chat.completion","created":1,"model":"gpt-4o-mini","choices":[{"index":0,"message":{"role":"assistant","content":"the system stays within its error budget"},"finish_reason":"stop"}],"usage":{"prompt_tokens":12,"completion_tokens":8,"total_tokens":20}}`

// benchChatBody is the client's chat completion request of the AI route
// benchmarks.
const benchChatBody = `{"model":"gpt-4o-mini","messages":[{"role":"system","content":"be brief"},{"role":"user","content":"hello there, how are you today?"}],"max_tokens":64}`

// rawChatProvider answers every request, read by its head and its
// Content-Length, with cannedChatAnswer: the provider costs the
// benchmark as little as it can.
func rawChatProvider(t testing.TB) string {
	return rawProvider(t, fmt.Appendf(nil, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", len(cannedChatAnswer), cannedChatAnswer))
}

// atOnceStreamAnswer is a 100-token OpenAI stream, usage and [DONE]
// included, written whole in one chunk: a provider that answers at once,
// as bench/ai's simulator does in its time-to-first-token step.
func atOnceStreamAnswer() []byte { return streamAnswer(100) }

// streamAnswer is an OpenAI stream of tokens tokens, as atOnceStreamAnswer
// writes it.
func streamAnswer(tokens int) []byte {
	var events []byte
	for i := range tokens {
		events = fmt.Appendf(events, `data: {"id":"c1","object":"chat.completion.chunk","model":"gpt-4o-mini","choices":[{"index":0,"delta":{"content":"tok%d "},"finish_reason":null}]}`+"\n\n", i)
	}
	events = fmt.Appendf(events, `data: {"id":"c1","object":"chat.completion.chunk","model":"gpt-4o-mini","choices":[{"index":0,"delta":{},"finish_reason":"stop"}],"usage":{"prompt_tokens":12,"completion_tokens":%d,"total_tokens":%d}}`+"\n\ndata: [DONE]\n\n", tokens, 12+tokens)
	return fmt.Appendf(nil, "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n0\r\n\r\n", len(events), events)
}

// rawProvider answers every request, read by its head and its
// Content-Length, with reply.
func rawProvider(t testing.TB, reply []byte) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() { // ends when the listener closes
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				for {
					n := int64(0)
					for {
						line, err := br.ReadSlice('\n')
						if err != nil {
							return
						}
						if len(line) <= 2 {
							break
						}
						if k, v, ok := bytes.Cut(line, []byte(":")); ok && bytes.EqualFold(k, []byte("Content-Length")) {
							n, _ = strconv.ParseInt(string(bytes.TrimSpace(v)), 10, 64)
						}
					}
					if _, err := br.Discard(int(n)); err != nil {
						return
					}
					if _, err := c.Write(reply); err != nil {
						return
					}
				}
			}()
		}
	}()
	return ln.Addr().String()
}

// BenchmarkAIRoute weighs what the AI route adds to a non-streaming chat
// completion beyond the plain proxy path: the same request and the same
// provider answer through a route with an upstream (proxy) and a route
// with ai (ai), with the harness's metrics and access log, reporting the
// process's CPU time per call (client, gateway and provider). The
// difference between the two is the AI gateway's cost.
func BenchmarkAIRoute(b *testing.B) {
	addr := rawChatProvider(b)
	for _, bc := range []struct{ name, route string }{
		{"proxy", "    - {name: llm, match: {path: {prefix: /v1}}, upstream: p}\n"},
		{"ai", "    - {name: llm, match: {path: {prefix: /v1}}, ai: assist}\n"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			c := aiBenchGateway(b, addr, bc.route)
			req := chatRequest(benchChatBody)
			br := bufio.NewReader(c)
			do := func() {
				resp := benchExchange(b, c, br, req)
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 || len(body) != len(cannedChatAnswer) {
					b.Fatalf("%d %s", resp.StatusCode, body)
				}
			}
			benchCPU(b, 200, do)
		})
	}
}

// aiBenchGateway starts a gateway whose one route is route (on /v1, with
// an upstream p or an AI gateway assist over the provider at addr) and
// returns a client connection to it.
func aiBenchGateway(b testing.TB, addr, route string) net.Conn {
	_, c := aiBenchGatewayAndConn(b, addr, route)
	return c
}

// aiBenchGatewayAndConn is aiBenchGateway, the gateway returned too.
func aiBenchGatewayAndConn(b testing.TB, addr, route string) (*Gateway, net.Conn) {
	cfg, err := Parse("bench.yaml", []byte(`kind: Gateway
version: relia/v1
spec:
  listeners: [{name: main, address: "127.0.0.1:0"}]
  admin: {address: "off"}
  upstreams: [{name: p, targets: [{address: "`+addr+`"}]}]
  routes:
`+route+`---
kind: AIGateway
version: relia/v1
metadata: {name: assist}
spec:
  providers:
    - {name: a, type: openai, url: "http://`+addr+`/v1", keys: [{value: sk-a}]}
  routes:
    - {model: gpt-4o-mini, targets: [{provider: a}]}
`))
	if err != nil {
		b.Fatal(err)
	}
	g, err := New(cfg, Options{Registry: prometheus.NewRegistry(), AccessLog: io.Discard, Logger: quietLogger()})
	if err != nil {
		b.Fatal(err)
	}
	if err := g.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { g.Shutdown(canceled()) })
	c, err := net.Dial("tcp", g.Addr("main"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { c.Close() })
	return g, c
}

// chatRequest is a client's chat completion request of body.
func chatRequest(body string) []byte {
	return fmt.Appendf(nil, "POST /v1/chat/completions HTTP/1.1\r\nHost: gw\r\nContent-Type: application/json\r\nAuthorization: Bearer sk-client\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
}

// benchExchange writes req on c and reads the response's head from br.
func benchExchange(b *testing.B, c net.Conn, br *bufio.Reader, req []byte) *http.Response {
	if _, err := c.Write(req); err != nil {
		b.Fatal(err)
	}
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		b.Fatal(err)
	}
	return resp
}

// benchCPU runs do warm times, then b.N times, reporting the process's
// CPU time per run (cpu-ns/op).
func benchCPU(b *testing.B, warm int, do func()) {
	for range warm { // warm pools, connections and label children
		do()
	}
	b.ReportAllocs()
	b.ResetTimer()
	cpu := processCPU()
	for i := 0; i < b.N; i++ {
		do()
	}
	cpu = processCPU() - cpu
	b.StopTimer()
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/op")
}

// pacedStreamProvider answers every request with a 100-token OpenAI
// stream whose tokens it writes one at a time: each after the client
// told it (next) that it read the one before, so that the gateway's
// stream waits for its provider before every token, as a real one does.
func pacedStreamProvider(t testing.TB, next <-chan struct{}) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	chunk := func(b []byte, event string) []byte {
		b = fmt.Appendf(b, "%x\r\n", len(event))
		return append(append(b, event...), "\r\n"...)
	}
	go func() { // ends when the listener closes
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				var b []byte
				for {
					req, err := http.ReadRequest(br)
					if err != nil {
						return
					}
					io.Copy(io.Discard, req.Body)
					b = append(b[:0], "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"...)
					for i := range 100 {
						if i > 0 {
							<-next
						}
						b = chunk(b, fmt.Sprintf(`data: {"id":"c1","object":"chat.completion.chunk","model":"gpt-4o-mini","choices":[{"index":0,"delta":{"content":"tok%d "},"finish_reason":null}]}`+"\n\n", i))
						if _, err := c.Write(b); err != nil {
							return
						}
						b = b[:0]
					}
					b = chunk(b, `data: {"id":"c1","object":"chat.completion.chunk","model":"gpt-4o-mini","choices":[{"index":0,"delta":{},"finish_reason":"stop"}],"usage":{"prompt_tokens":12,"completion_tokens":100,"total_tokens":112}}`+"\n\n")
					b = chunk(b, "data: [DONE]\n\n")
					b = append(b, "0\r\n\r\n"...)
					if _, err := c.Write(b); err != nil {
						return
					}
					b = b[:0]
				}
			}()
		}
	}()
	return ln.Addr().String()
}

// BenchmarkAIRouteStreamAtOnce is one 100-token stream through an AI
// route whose provider sends its whole answer at once: the stream of
// bench/ai's time-to-first-token step, whose bytes allocated a stream set
// how often the collector runs there. It reports the process's CPU time
// per stream (client, gateway and provider); the provider allocates
// nothing a stream but its reading of the request's head.
func BenchmarkAIRouteStreamAtOnce(b *testing.B) {
	c := aiBenchGateway(b, rawProvider(b, atOnceStreamAnswer()), "    - {name: llm, match: {path: {prefix: /v1}}, ai: assist}\n")
	req := chatRequest(`{"model":"gpt-4o-mini","stream":true,"messages":[{"role":"user","content":"hello there, how are you today?"}],"max_tokens":128}`)
	br := bufio.NewReader(c)
	do := func() {
		resp := benchExchange(b, c, br, req)
		n, err := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != 200 || n < 100*100 {
			b.Fatalf("%d, %d bytes, %v", resp.StatusCode, n, err)
		}
	}
	benchCPU(b, 200, do)
}

// BenchmarkAIRouteStream is the CPU of one 100-token stream through an
// AI route on the gateway's edge whose provider writes each token only
// once the client read the one before: the stream waits for its
// provider 99 times (with no goroutine, on Linux: ai.Relay). It reports
// the process's CPU time per stream (client, gateway and provider).
func BenchmarkAIRouteStream(b *testing.B) {
	next := make(chan struct{}, 1)
	c := aiBenchGateway(b, pacedStreamProvider(b, next), "    - {name: llm, match: {path: {prefix: /v1}}, ai: assist}\n")
	body := `{"model":"gpt-4o-mini","stream":true,"messages":[{"role":"user","content":"hello there, how are you today?"}],"max_tokens":128}`
	req := chatRequest(body)
	br := bufio.NewReader(c)
	do := func() {
		resp := benchExchange(b, c, br, req)
		events := bufio.NewReader(resp.Body)
		tokens := 0
		for {
			line, err := events.ReadSlice('\n')
			if err != nil {
				b.Fatalf("after %d tokens: %v", tokens, err)
			}
			if bytes.Contains(line, []byte(`"content":"tok`)) {
				if tokens++; tokens < 100 {
					next <- struct{}{}
				}
			}
			if bytes.HasPrefix(line, []byte("data: [DONE]")) {
				break
			}
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || tokens != 100 {
			b.Fatalf("%d, %d tokens", resp.StatusCode, tokens)
		}
	}
	benchCPU(b, 20, do)
}
