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
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	reply := fmt.Appendf(nil, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", len(cannedChatAnswer), cannedChatAnswer)
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
			cfg, err := Parse("bench.yaml", []byte(`kind: Gateway
version: relia/v1
spec:
  listeners: [{name: main, address: "127.0.0.1:0"}]
  admin: {address: "off"}
  upstreams: [{name: p, targets: [{address: "`+addr+`"}]}]
  routes:
`+bc.route+`---
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
			req := fmt.Appendf(nil, "POST /v1/chat/completions HTTP/1.1\r\nHost: gw\r\nContent-Type: application/json\r\nAuthorization: Bearer sk-client\r\nContent-Length: %d\r\n\r\n%s", len(benchChatBody), benchChatBody)
			br := bufio.NewReader(c)
			do := func() {
				if _, err := c.Write(req); err != nil {
					b.Fatal(err)
				}
				resp, err := http.ReadResponse(br, nil)
				if err != nil {
					b.Fatal(err)
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 || len(body) != len(cannedChatAnswer) {
					b.Fatalf("%d %s", resp.StatusCode, body)
				}
			}
			for range 200 { // warm pools, connections and label children
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
		})
	}
}
