package gateway

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/openai/openai-go/v3/packages/ssestream"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/net/http2"

	"github.com/relia-dev/relia/ai/mock"
)

// The route faults on model APIs, checked through the official openai-go
// SDK against relia's provider simulator (ai/mock) behind a real gateway
// on loopback: on a route that proxies to the simulator and on an ai
// route (the AI gateway calling it), over HTTP/1.1 and HTTP/2. Each test
// runs again with its fault off (the same fault, keyed on a header no
// request carries) and checks the SDK then gets a whole, good answer, so
// what it asserts comes from the fault.

// gwMockTokens is how many tokens the simulator streams: a chunk each,
// after a first chunk with the role and before one with the finish.
const gwMockTokens = 6

// faultRoute is a gateway whose route llm (/v1) carries the route faults
// faults (YAML flow maps), as a proxy to the simulator at mockURL (kind
// "proxy") or an ai route whose AI gateway calls it (kind "ai").
func faultRoute(kind, mockURL, listeners string, faults ...string) string {
	list := "[" + strings.Join(faults, ", ") + "]"
	if kind == "proxy" {
		return fmt.Sprintf(`%s  upstreams: [{name: mock, targets: [{address: %s}]}]
  routes:
    - name: llm
      match: {path: {prefix: /v1}}
      upstream: mock
      faults: %s
`, listeners, strings.TrimPrefix(mockURL, "http://"), list)
	}
	return fmt.Sprintf(`%s  routes:
    - name: llm
      match: {path: {prefix: /v1}}
      ai: assist
      faults: %s
---
kind: AIGateway
version: relia/v1
metadata: {name: assist}
spec:
  providers:
    - {name: a, type: openai, url: "%s/v1", keys: [{value: sk-a}]}
  routes:
    - {model: gpt-4o-mini, targets: [{provider: a}]}
    - {model: gpt-4o, targets: [{provider: a}]}
`, listeners, list, mockURL)
}

// offFault turns a fault into one that matches no request.
func offFault(f string, on bool) string {
	if on {
		return f
	}
	return strings.Replace(f, "{", "{headers: {X-Never: \"1\"}, ", 1)
}

// offKey turns a fault keyed on a header into one that matches no
// request.
func offKey(f string, on bool) string {
	if on {
		return f
	}
	return strings.Replace(f, `"1"}`, `"never"}`, 1)
}

// faultClient starts the simulator and a gateway with faults on its
// route, and returns an SDK client through the gateway (over HTTP/2 with
// prior knowledge when h2 is set) and the gateway's registry.
func faultClient(t *testing.T, kind string, h2 bool, faults ...string) (openai.Client, *prometheus.Registry) {
	t.Helper()
	_, m := startMockProvider(t, mock.Options{Seed: 1, OutputTokens: gwMockTokens})
	listeners := ""
	if h2 {
		listeners = "  listeners: [{name: main, address: 127.0.0.1:0, h2c: true}]\n"
	}
	reg := prometheus.NewRegistry()
	_, base := startGateway(t, faultRoute(kind, m, listeners, faults...), Options{Registry: reg})
	opts := []option.RequestOption{option.WithBaseURL(base + "/v1/"), option.WithAPIKey("sk-test"), option.WithMaxRetries(0)}
	if h2 {
		tr := &http2.Transport{AllowHTTP: true, DialTLSContext: func(ctx context.Context, network, addr string, _ *tls.Config) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, network, addr)
		}}
		t.Cleanup(tr.CloseIdleConnections)
		opts = append(opts, option.WithHTTPClient(&http.Client{Transport: tr}))
	}
	return openai.NewClient(opts...), reg
}

// chatStreamVia streams one chat completion and returns the content
// chunks it got and how the stream ended.
func chatStreamVia(ctx context.Context, c openai.Client, model string) (int, error) {
	s := c.Chat.Completions.NewStreaming(ctx, openai.ChatCompletionNewParams{
		Model: model, Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("tell me about error budgets")},
	})
	defer s.Close()
	n := 0
	for s.Next() {
		if ch := s.Current(); len(ch.Choices) > 0 && ch.Choices[0].Delta.Content != "" {
			n++
		}
	}
	return n, s.Err()
}

// wholeStream checks a stream without its fault: every token, no error.
func wholeStream(t *testing.T, n int, err error) {
	t.Helper()
	if err != nil || n != gwMockTokens {
		t.Fatalf("without the fault: %d chunks, %v; want %d and no error", n, err, gwMockTokens)
	}
}

// eachRoute runs test on both kinds of route, over HTTP/1.1 and HTTP/2,
// with the fault on and off, in parallel.
func eachRoute(t *testing.T, test func(t *testing.T, kind string, h2, on bool)) {
	t.Parallel()
	for _, kind := range []string{"proxy", "ai"} {
		for _, h2 := range []bool{false, true} {
			for _, on := range []bool{true, false} {
				t.Run(fmt.Sprintf("%s/h2=%v/fault=%v", kind, h2, on), func(t *testing.T) {
					t.Parallel()
					test(t, kind, h2, on)
				})
			}
		}
	}
}

func TestRouteFaultStall(t *testing.T) {
	eachRoute(t, func(t *testing.T, kind string, h2, on bool) {
		// The role's event, then two tokens; then nothing.
		c, _ := faultClient(t, kind, h2, offFault(`{name: stall, percentage: 100%, stallAfterEvents: 3}`, on))
		// The caller bounds the stream: far more than the simulator
		// needs for the whole answer.
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		n, err := chatStreamVia(ctx, c, "gpt-4o-mini")
		if !on {
			wholeStream(t, n, err)
			return
		}
		if !errors.Is(err, context.DeadlineExceeded) || n != 2 {
			t.Fatalf("stalled stream: %d chunks, %v; want 2 and the caller's deadline", n, err)
		}
	})
}

func TestRouteFaultTruncate(t *testing.T) {
	eachRoute(t, func(t *testing.T, kind string, h2, on bool) {
		c, _ := faultClient(t, kind, h2, offFault(`{name: cut, percentage: 100%, truncateAfterEvents: 4}`, on))
		n, err := chatStreamVia(context.Background(), c, "gpt-4o-mini")
		if !on {
			wholeStream(t, n, err)
			return
		}
		// The stream breaks before [DONE]: the SDK reports it broken, not
		// finished, and not as an error event.
		var se *ssestream.StreamError
		if err == nil || errors.As(err, &se) || n != 3 {
			t.Fatalf("truncated stream: %d chunks, %v; want 3 and a broken stream", n, err)
		}
	})
}

func TestRouteFaultErrorEvent(t *testing.T) {
	eachRoute(t, func(t *testing.T, kind string, h2, on bool) {
		c, _ := faultClient(t, kind, h2, offFault(`{name: boom, percentage: 100%, errorAfterEvents: 3, errorFormat: openai, errorType: overloaded_error}`, on))
		n, err := chatStreamVia(context.Background(), c, "gpt-4o-mini")
		if !on {
			wholeStream(t, n, err)
			return
		}
		var se *ssestream.StreamError
		if !errors.As(err, &se) || n != 2 {
			t.Fatalf("stream with an error event: %d chunks, %v; want 2 and the SDK's stream error", n, err)
		}
		var body struct {
			Error struct{ Type, Message string }
		}
		if err := json.Unmarshal(se.Event.Data, &body); err != nil || body.Error.Type != "overloaded_error" || !strings.Contains(body.Error.Message, "boom") {
			t.Fatalf("error event %s (%v)", se.Event.Data, err)
		}
	})
}

// TestRouteFaultProviderAbort: a 429 in OpenAI's shape, for one model
// only (matched on the request's JSON body, which still reaches the
// provider whole for the others), is the SDK's rate-limit error with its
// Retry-After; the gateway counts it as the fault_injected rejection.
func TestRouteFaultProviderAbort(t *testing.T) {
	eachRoute(t, func(t *testing.T, kind string, h2, on bool) {
		c, reg := faultClient(t, kind, h2, offFault(`{name: limited, jsonField: model, jsonEquals: gpt-4o, abortStatus: 429, retryAfter: 7s, errorFormat: openai}`, on))
		ask := func(model string) error {
			_, err := c.Chat.Completions.New(context.Background(), openai.ChatCompletionNewParams{
				Model: model, Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("hi")},
			})
			return err
		}
		if err := ask("gpt-4o-mini"); err != nil {
			t.Fatalf("a model the fault does not match: %v", err)
		}
		err := ask("gpt-4o")
		if !on {
			if err != nil {
				t.Fatalf("without the fault: %v", err)
			}
			return
		}
		var apiErr *openai.Error
		if !errors.As(err, &apiErr) || apiErr.StatusCode != 429 || apiErr.Type != "rate_limit_error" ||
			apiErr.Code != "rate_limit_exceeded" || apiErr.Response.Header.Get("Retry-After") != "7" {
			t.Fatalf("429: %v", err)
		}
		if got := rejections(t, reg, "fault_injected"); got != 1 {
			t.Errorf("relia_rejections_total{reason=fault_injected} = %v, want 1", got)
		}
	})
}

// TestRouteFaultRequestCounts: nthRequest and firstRequests fault exactly
// the requests they name.
func TestRouteFaultRequestCounts(t *testing.T) {
	eachRoute(t, func(t *testing.T, kind string, h2, on bool) {
		c, _ := faultClient(t, kind, h2,
			offFault(`{name: first2, jsonField: model, jsonEquals: gpt-4o, firstRequests: 2, abortStatus: 529, errorFormat: openai}`, on),
			offFault(`{name: third, jsonField: model, jsonEquals: gpt-4o-mini, nthRequest: 3, abortStatus: 503}`, on))
		got := func(model string) string {
			var out []string
			for range 4 {
				_, err := c.Chat.Completions.New(context.Background(), openai.ChatCompletionNewParams{
					Model: model, Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("hi")},
				})
				var apiErr *openai.Error
				switch {
				case err == nil:
					out = append(out, "ok")
				case errors.As(err, &apiErr):
					out = append(out, fmt.Sprint(apiErr.StatusCode))
				default:
					t.Fatal(err)
				}
			}
			return strings.Join(out, " ")
		}
		first, third := "529 529 ok ok", "ok ok 503 ok"
		if !on {
			first, third = "ok ok ok ok", "ok ok ok ok"
		}
		if g := got("gpt-4o"); g != first {
			t.Errorf("firstRequests 2: %s, want %s", g, first)
		}
		if g := got("gpt-4o-mini"); g != third {
			t.Errorf("nthRequest 3: %s, want %s", g, third)
		}
	})
}

// TestRouteFaultBodyAndHeaders: setHeaders over the upstream's, and a
// body cut short, on an answer that is not a stream.
func TestRouteFaultBodyAndHeaders(t *testing.T) {
	t.Parallel()
	for _, on := range []bool{true, false} {
		t.Run(fmt.Sprintf("fault=%v", on), func(t *testing.T) {
			t.Parallel()
			_, m := startMockProvider(t, mock.Options{Seed: 1, OutputTokens: gwMockTokens})
			_, base := startGateway(t, faultRoute("proxy", m, "",
				offKey(`{name: marked, headers: {X-Mark: "1"}, setHeaders: {X-Fault: marked, Content-Type: text/plain}}`, on),
				offKey(`{name: cut, headers: {X-Cut: "1"}, truncateBody: 10B}`, on)), Options{})
			body := `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}`
			post := func(hdr string) (*http.Response, []byte, error) {
				req, _ := http.NewRequest("POST", base+"/v1/chat/completions", strings.NewReader(body))
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set(hdr, "1")
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				defer resp.Body.Close()
				b, err := io.ReadAll(resp.Body)
				return resp, b, err
			}
			resp, b, err := post("X-Mark")
			if err != nil || resp.StatusCode != 200 || !json.Valid(b) {
				t.Fatalf("marked answer: %v %d %s", err, resp.StatusCode, b)
			}
			if on && (resp.Header.Get("X-Fault") != "marked" || resp.Header.Values("Content-Type")[0] != "text/plain" || len(resp.Header.Values("Content-Type")) != 1) {
				t.Errorf("headers with the fault: %v", resp.Header)
			}
			if !on && (resp.Header.Get("X-Fault") != "" || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json")) {
				t.Errorf("headers without the fault: %v", resp.Header)
			}
			_, b, err = post("X-Cut")
			if on && (err == nil || len(b) != 10) {
				t.Errorf("cut body: %d bytes, %v; want 10 and a broken answer", len(b), err)
			}
			if !on && (err != nil || !json.Valid(b)) {
				t.Errorf("without the fault: %v %s", err, b)
			}
		})
	}
}
