package fault

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/anthropics/anthropic-sdk-go/v2"
	aoption "github.com/anthropics/anthropic-sdk-go/v2/option"
	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/openai/openai-go/v3/packages/ssestream"

	"github.com/relia-dev/relia/ai/mock"
	"github.com/relia-dev/relia/clock"
)

// The model API faults, checked through the official openai-go SDK
// streaming chat completions from relia's provider simulator (ai/mock)
// through a fault proxy in HTTP mode. Each test also runs with its fault
// off (a toxic that matches no request) and checks that the SDK then sees
// a whole, good stream, so what it asserts comes from the fault.

// mockTokens is how many tokens the simulator streams: one chunk each,
// after a first chunk with the role and before one with the finish
// reason.
const mockTokens = 6

// aiProxy starts the simulator behind a proxy in HTTP mode and returns
// the fault server, its fake clock and an SDK client through the proxy.
func aiProxy(t *testing.T, seed uint64) (*Server, *clock.Fake, openai.Client) {
	t.Helper()
	sim, err := mock.New(mock.Options{Seed: 1, OutputTokens: mockTokens})
	if err != nil {
		t.Fatal(err)
	}
	up := httptest.NewServer(sim)
	t.Cleanup(up.Close)
	s, fc, _ := newTestServer(t, seed)
	info, err := s.CreateProxy(ProxyConfig{Name: "llm", Listen: "127.0.0.1:0", Upstream: strings.TrimPrefix(up.URL, "http://"), Mode: "http"})
	if err != nil {
		t.Fatal(err)
	}
	c := openai.NewClient(option.WithBaseURL("http://"+info.Listen+"/v1/"), option.WithAPIKey("sk-test"), option.WithMaxRetries(0))
	return s, fc, c
}

// onAndOff runs test with its fault on, and again with it off, in
// parallel.
func onAndOff(t *testing.T, test func(t *testing.T, on bool)) {
	t.Parallel()
	for _, on := range []bool{true, false} {
		t.Run(fmt.Sprintf("fault=%v", on), func(t *testing.T) {
			t.Parallel()
			test(t, on)
		})
	}
}

// offSwitch turns a toxic's attributes into ones that match no request,
// so the same toxic is there but does nothing.
func offSwitch(attrs string, on bool) string {
	if on {
		return attrs
	}
	return strings.Replace(attrs, "{", `{"path":"/nowhere",`, 1)
}

// chatStream streams one chat completion and returns the content chunks
// it got and how the stream ended.
func chatStream(ctx context.Context, c openai.Client, model string) (chunks int, text string, err error) {
	stream := c.Chat.Completions.NewStreaming(ctx, openai.ChatCompletionNewParams{
		Model:    model,
		Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("tell me about error budgets")},
	})
	defer stream.Close()
	var b strings.Builder
	for stream.Next() {
		ch := stream.Current()
		if len(ch.Choices) > 0 && ch.Choices[0].Delta.Content != "" {
			chunks++
			b.WriteString(ch.Choices[0].Delta.Content)
		}
	}
	return chunks, b.String(), stream.Err()
}

func TestFaultAIStallAfterEvents(t *testing.T) {
	onAndOff(t, func(t *testing.T, on bool) {
		s, _, c := aiProxy(t, 1)
		// The first event carries the role; two token events follow.
		addToxic(t, s, "llm", `{"name":"stall","type":"http","attributes":`+offSwitch(`{"stall_after_events":3}`, on)+`}`)
		// The SDK's caller bounds the stream: two seconds are far more
		// than the simulator needs for the whole answer.
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		chunks, _, err := chatStream(ctx, c, "gpt-4o-mini")
		if !on {
			if err != nil || chunks != mockTokens {
				t.Fatalf("without the fault: %d chunks, %v; want %d and no error", chunks, err, mockTokens)
			}
			return
		}
		if !errors.Is(err, context.DeadlineExceeded) || chunks != 2 {
			t.Fatalf("stalled stream: %d chunks, %v; want 2 and the caller's deadline", chunks, err)
		}
	})
}

func TestFaultAIStallEndsWithTheFault(t *testing.T) {
	t.Parallel()
	s, _, c := aiProxy(t, 1)
	addToxic(t, s, "llm", `{"name":"stall","type":"http","attributes":{"stall_after_events":2}}`)
	ctx, cancel := context.WithTimeout(context.Background(), safety)
	defer cancel()
	stream := c.Chat.Completions.NewStreaming(ctx, openai.ChatCompletionNewParams{
		Model: "gpt-4o-mini", Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("hi")},
	})
	defer stream.Close()
	for range 2 {
		if !stream.Next() {
			t.Fatalf("stream ended before the stall: %v", stream.Err())
		}
	}
	// Removing the fault (a rollback, or its lease running out) breaks
	// the stalled stream rather than leaving it held.
	if err := s.RemoveToxic("llm", "stall"); err != nil {
		t.Fatal(err)
	}
	if stream.Next() {
		t.Fatalf("stream went on after the stall: %+v", stream.Current())
	}
	if err := stream.Err(); err == nil || !strings.Contains(err.Error(), "unexpected EOF") {
		t.Fatalf("stream after the fault ended: %v, want the broken connection", err)
	}
}

func TestFaultAITruncateAfterEvents(t *testing.T) {
	onAndOff(t, func(t *testing.T, on bool) {
		s, _, c := aiProxy(t, 1)
		addToxic(t, s, "llm", `{"name":"cut","type":"http","attributes":`+offSwitch(`{"truncate_after_events":4}`, on)+`}`)
		chunks, _, err := chatStream(context.Background(), c, "gpt-4o-mini")
		if !on {
			if err != nil || chunks != mockTokens {
				t.Fatalf("without the fault: %d chunks, %v; want %d and no error", chunks, err, mockTokens)
			}
			return
		}
		// The stream ends before [DONE], so the SDK reports it
		// broken rather than finished.
		if err == nil || !strings.Contains(err.Error(), "unexpected EOF") || chunks != 3 {
			t.Fatalf("truncated stream: %d chunks, %v; want 3 and unexpected EOF", chunks, err)
		}
	})
}

func TestFaultAIErrorEvent(t *testing.T) {
	onAndOff(t, func(t *testing.T, on bool) {
		s, _, c := aiProxy(t, 1)
		addToxic(t, s, "llm", `{"name":"boom","type":"http","attributes":`+
			offSwitch(`{"error_after_events":3,"error_format":"openai","error_type":"rate_limit_error"}`, on)+`}`)
		chunks, _, err := chatStream(context.Background(), c, "gpt-4o-mini")
		if !on {
			if err != nil || chunks != mockTokens {
				t.Fatalf("without the fault: %d chunks, %v; want %d and no error", chunks, err, mockTokens)
			}
			return
		}
		var se *ssestream.StreamError
		if !errors.As(err, &se) || chunks != 2 {
			t.Fatalf("stream with an error event: %d chunks, %v; want 2 and the SDK's stream error", chunks, err)
		}
		var body struct {
			Error struct{ Type, Message string }
		}
		if err := json.Unmarshal(se.Event.Data, &body); err != nil || body.Error.Type != "rate_limit_error" || !strings.Contains(body.Error.Message, "boom") {
			t.Fatalf("error event %s (%v)", se.Event.Data, err)
		}
	})
}

func TestFaultAIProviderStatus(t *testing.T) {
	onAndOff(t, func(t *testing.T, on bool) {
		s, _, c := aiProxy(t, 1)
		// 429 for one model only, chosen by the request body.
		addToxic(t, s, "llm", `{"name":"limited","type":"http","attributes":`+
			offSwitch(`{"json_field":"model","json_equals":"gpt-4o","abort_status":429,"retry_after":7,"error_format":"openai"}`, on)+`}`)
		addToxic(t, s, "llm", `{"name":"too-long","type":"http","attributes":`+
			offSwitch(`{"json_field":"model","json_in":["o3","o4-mini"],"abort_status":400,"error_format":"openai"}`, on)+`}`)
		ask := func(model string) error {
			_, err := c.Chat.Completions.New(context.Background(), openai.ChatCompletionNewParams{
				Model: model, Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("hi")},
			})
			return err
		}
		if err := ask("gpt-4o-mini"); err != nil {
			t.Fatalf("a model no fault matches: %v", err)
		}
		errLimited, errLong := ask("gpt-4o"), ask("o4-mini")
		if !on {
			if errLimited != nil || errLong != nil {
				t.Fatalf("without the faults: %v, %v", errLimited, errLong)
			}
			return
		}
		var apiErr *openai.Error
		if !errors.As(errLimited, &apiErr) || apiErr.StatusCode != 429 || apiErr.Type != "rate_limit_error" ||
			apiErr.Code != "rate_limit_exceeded" || apiErr.Response.Header.Get("Retry-After") != "7" {
			t.Fatalf("429: %v", errLimited)
		}
		if !errors.As(errLong, &apiErr) || apiErr.StatusCode != 400 || apiErr.Code != "context_length_exceeded" || apiErr.Param != "messages" {
			t.Fatalf("400: %v", errLong)
		}
	})
}

// TestFaultAIFirstByteAndThrottle checks the slow first byte and the
// event rate on the server's fake clock: each wait the proxy starts is
// the one the fault asks for, and without the fault it starts none.
func TestFaultAIFirstByteAndThrottle(t *testing.T) {
	onAndOff(t, func(t *testing.T, on bool) {
		s, fc, c := aiProxy(t, 1)
		addToxic(t, s, "llm", `{"name":"slow","type":"http","attributes":`+
			offSwitch(`{"first_byte_delay":1500,"events_per_second":4}`, on)+`}`)
		type result struct {
			chunks int
			err    error
		}
		done := make(chan result, 1)
		go func() {
			n, _, err := chatStream(context.Background(), c, "gpt-4o-mini")
			done <- result{n, err}
		}()
		var waits []time.Duration
		for {
			pending := make(chan time.Duration, 1)
			go func() { pending <- nextWait(fc, 1) }()
			select {
			case r := <-done:
				if r.err != nil || r.chunks != mockTokens {
					t.Fatalf("stream: %d chunks, %v", r.chunks, r.err)
				}
				// The role, the tokens, the finish and the usage-less
				// [DONE]: every event after the first waits a quarter
				// of a second.
				want := []time.Duration{1500 * time.Millisecond}
				for range mockTokens + 2 {
					want = append(want, 250*time.Millisecond)
				}
				if !on {
					want = nil
				}
				if fmt.Sprint(waits) != fmt.Sprint(want) {
					t.Fatalf("waits %v, want %v", waits, want)
				}
				fc.NewTimer(time.Hour) // a timer for the last watcher above to see, so it ends
				return
			case d := <-pending:
				waits = append(waits, d)
				fc.Advance(d)
			}
		}
	})
}

func TestFaultAIRequestCounts(t *testing.T) {
	t.Parallel()
	s, _, c := aiProxy(t, 1)
	addToxic(t, s, "llm", `{"name":"first2","type":"http","attributes":{"json_field":"model","json_equals":"a","first_requests":2,"abort_status":529,"error_format":"anthropic"}}`)
	addToxic(t, s, "llm", `{"name":"third","type":"http","attributes":{"json_field":"model","json_equals":"b","nth_request":3,"abort_status":503}}`)
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
	if g := got("a"); g != "529 529 ok ok" {
		t.Errorf("first_requests 2: %s", g)
	}
	if g := got("b"); g != "ok ok 503 ok" {
		t.Errorf("nth_request 3: %s", g)
	}
}

// TestFaultAIAnthropicSDK checks Anthropic's shapes through Anthropic's
// official SDK: a 529 overloaded_error, and the error event mid-stream.
func TestFaultAIAnthropicSDK(t *testing.T) {
	onAndOff(t, func(t *testing.T, on bool) {
		s, _, _ := aiProxy(t, 1)
		addToxic(t, s, "llm", `{"name":"busy","type":"http","attributes":`+
			offSwitch(`{"first_requests":1,"abort_status":529,"error_format":"anthropic"}`, on)+`}`)
		addToxic(t, s, "llm", `{"name":"boom","type":"http","attributes":`+
			offSwitch(`{"json_field":"stream","json_equals":true,"error_after_events":4,"error_format":"anthropic"}`, on)+`}`)
		proxy, _ := s.Proxy("llm")
		c := anthropic.NewClient(aoption.WithBaseURL("http://"+proxy.Listen), aoption.WithAPIKey("sk-ant-test"), aoption.WithMaxRetries(0))
		params := anthropic.MessageNewParams{
			Model: "claude-3-5-haiku-latest", MaxTokens: 20,
			Messages: []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock("hi"))},
		}
		_, errWhole := c.Messages.New(context.Background(), params)
		stream := c.Messages.NewStreaming(context.Background(), params)
		events := 0
		for stream.Next() {
			events++
		}
		errStream := stream.Err()
		stream.Close()
		if !on {
			if errWhole != nil || errStream != nil {
				t.Fatalf("without the faults: %v, %v", errWhole, errStream)
			}
			return
		}
		var apiErr *anthropic.Error
		if !errors.As(errWhole, &apiErr) || apiErr.StatusCode != 529 || !strings.Contains(apiErr.RawJSON(), `"overloaded_error"`) {
			t.Fatalf("529: %v", errWhole)
		}
		// message_start, content_block_start, ping and one token pass
		// (the SDK keeps the ping to itself), then the error event.
		if events != 3 || errStream == nil || !strings.Contains(errStream.Error(), "overloaded_error") {
			t.Fatalf("stream: %d events, %v; want 3 and the overloaded error", events, errStream)
		}
	})
}

// TestFaultAIFilterInProcess checks the stream faults of an HTTPFilter in
// front of a handler served by net/http, as a Go service embeds it: the
// truncation reaches the SDK as a broken stream, and a stall ends when
// the client gives up.
func TestFaultAIFilterInProcess(t *testing.T) {
	onAndOff(t, func(t *testing.T, on bool) {
		sim, err := mock.New(mock.Options{Seed: 1, OutputTokens: mockTokens})
		if err != nil {
			t.Fatal(err)
		}
		cut, stall := int64(2), int64(3)
		rules := []HTTPRule{
			{Name: "cut", Probability: 1, Fault: HTTPFault{JSONField: "model", JSONEquals: ptr(JSONScalar("cut")), TruncateAfterEvents: &cut}},
			{Name: "stall", Probability: 1, Fault: HTTPFault{JSONField: "model", JSONEquals: ptr(JSONScalar("stall")), StallAfterEvents: &stall}},
		}
		if !on {
			rules = nil
		}
		_, srv := newFilterServer(t, rules, HTTPFilterOptions{Seed: 1}, sim)
		c := openai.NewClient(option.WithBaseURL(srv.URL+"/v1/"), option.WithAPIKey("sk-test"), option.WithMaxRetries(0))
		chunksCut, _, errCut := chatStream(context.Background(), c, "cut")
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		chunksStall, _, errStall := chatStream(ctx, c, "stall")
		if !on {
			if errCut != nil || errStall != nil || chunksCut != mockTokens || chunksStall != mockTokens {
				t.Fatalf("without the faults: %d chunks, %v; %d chunks, %v", chunksCut, errCut, chunksStall, errStall)
			}
			return
		}
		if errCut == nil || !strings.Contains(errCut.Error(), "unexpected EOF") || chunksCut != 1 {
			t.Errorf("truncated: %d chunks, %v", chunksCut, errCut)
		}
		if !errors.Is(errStall, context.DeadlineExceeded) || chunksStall != 2 {
			t.Errorf("stalled: %d chunks, %v", chunksStall, errStall)
		}
	})
}

func ptr[T any](v T) *T { return &v }

// TestFaultAIBodyMatchForwardsEveryByte checks that matching on the body
// forwards it unchanged: a body the fault reads whole, and one past the
// bound that it does not match.
func TestFaultAIBodyMatchForwardsEveryByte(t *testing.T) {
	t.Parallel()
	up := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		fmt.Fprintf(w, "%x", sha256.Sum256(b))
	})
	s, base := proxyInFront(t, up)
	addToxic(t, s, "web", `{"name":"m","type":"http","attributes":{"json_field":"model","json_equals":"x","abort_status":429}}`)
	pad := strings.Repeat("p", MaxJSONMatchBody)
	for _, tc := range []struct {
		body   string
		status int
	}{
		{`{"model":"y","pad":"` + pad[:1000] + `"}`, 200},
		{`{"model":"x","pad":"` + pad[:1000] + `"}`, 429},
		{`{"model":"x","pad":"` + pad + `"}`, 200}, // past the bound: no match
		{`{"model":"x"`, 200},                      // not a JSON object
		{`{"stream":true,"model":"x"}`, 429},
	} {
		resp, err := http.Post(base+"/v1/chat/completions", "application/json", bytes.NewReader([]byte(tc.body)))
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.status {
			t.Errorf("body of %d bytes: status %d, want %d", len(tc.body), resp.StatusCode, tc.status)
		}
		if want := fmt.Sprintf("%x", sha256.Sum256([]byte(tc.body))); tc.status == 200 && string(got) != want {
			t.Errorf("body of %d bytes reached the upstream changed", len(tc.body))
		}
	}
}

// TestFaultAIAttributesRefusedInWords checks that the control API
// refuses what the model API faults cannot mean, saying why.
func TestFaultAIAttributesRefusedInWords(t *testing.T) {
	t.Parallel()
	s, _, _ := httpModeProxy(t, 1)
	for _, tc := range []struct{ attrs, want string }{
		{`{"json_equals":"gpt-4o"}`, "json_equals and json_in need json_field"},
		{`{"json_field":"model","json_equals":"a","json_in":["b"]}`, "give one"},
		{`{"json_field":"model","json_equals":{"a":1}}`, "must be a string, a number or true/false"},
		{`{"nth_request":2,"first_requests":3}`, "nth_request and first_requests both set"},
		{`{"first_requests":-1}`, "first_requests must not be negative"},
		{`{"error_after_events":2}`, "error_after_events needs error_format"},
		{`{"abort_status":429,"error_format":"gemini"}`, `error_format must be openai or anthropic, got "gemini"`},
		{`{"error_format":"openai"}`, "give one"},
		{`{"stall_after_events":2,"truncate_after_events":3}`, "each end a stream"},
		{`{"stall_after_events":-2}`, "stall_after_events must not be negative"},
		{`{"events_per_second":-1}`, "events_per_second must be within"},
		{`{"first_byte_delay":100,"abort_status":503}`, "cannot go together"},
		{`{"stall_after_event":2}`, `unknown attribute "stall_after_event"`},
		{`{"first_byte_delay":"2s"}`, `attribute "first_byte_delay": want a whole number of milliseconds`},
	} {
		_, err := s.AddToxic("web", strings.NewReader(`{"name":"x","type":"http","attributes":`+tc.attrs+`}`))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error saying %q", tc.attrs, err, tc.want)
		}
	}
	// A number or a boolean compares with the member's JSON text, so -a
	// json_equals=4 (a number on the command line) is taken.
	addToxic(t, s, "web", `{"name":"n","type":"http","attributes":{"json_field":"n","json_in":[4,true,"x"],"abort_status":503}}`)
}

func TestFaultJSONMatch(t *testing.T) {
	t.Parallel()
	eq := func(v string) *JSONScalar { s := JSONScalar(v); return &s }
	for _, tc := range []struct {
		f    HTTPFault
		body string
		want bool
	}{
		{HTTPFault{JSONField: "model"}, `{"model":null}`, true},
		{HTTPFault{JSONField: "model"}, `{"models":1}`, false},
		{HTTPFault{JSONField: "model", JSONEquals: eq("a")}, `{"model":"a"}`, true},
		{HTTPFault{JSONField: "model", JSONEquals: eq("a")}, `{"model":"a","model":"b"}`, false}, // the last wins, as upstream reads it
		{HTTPFault{JSONField: "model", JSONEquals: eq("a")}, `{"nested":{"model":"a"}}`, false},
		{HTTPFault{JSONField: "model", JSONEquals: eq("a")}, `["model","a"]`, false},
		{HTTPFault{JSONField: "stream", JSONEquals: eq("true")}, `{"stream": true}`, true},
		{HTTPFault{JSONField: "n", JSONIn: []JSONScalar{"2", "4"}}, `{"n":4}`, true},
		{HTTPFault{JSONField: "n", JSONIn: []JSONScalar{"2", "4"}}, `{"n":[4]}`, false},
		{HTTPFault{JSONField: "model", JSONEquals: eq("é")}, `{"model":"\u00e9"}`, true},
	} {
		if got := tc.f.matchesJSON([]byte(tc.body)); got != tc.want {
			t.Errorf("%+v on %s: %v, want %v", tc.f, tc.body, got, tc.want)
		}
	}
}

// FuzzFaultJSONMatch feeds hostile bodies to the body matcher: it must
// not fail, and the body must be forwarded whole whatever it decided.
func FuzzFaultJSONMatch(f *testing.F) {
	f.Add([]byte(`{"model":"gpt-4o","stream":true}`), "model", "gpt-4o")
	f.Add([]byte(`{"model":"\u0067"}`), "model", "g")
	f.Add([]byte(`{"a":[1,{"b":"}"}],"model":4}`), "model", "4")
	f.Fuzz(func(t *testing.T, body []byte, field, value string) {
		if field == "" {
			return
		}
		r := httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(body))
		peeked := peekBody(r)
		eq := JSONScalar(value)
		(&HTTPFault{JSONField: field, JSONEquals: &eq}).matchesJSON(peeked)
		(&HTTPFault{JSONField: field}).matchesJSON(peeked)
		got, err := io.ReadAll(r.Body)
		if err != nil || !bytes.Equal(got, body) || peeked != nil && !bytes.Equal(peeked, body) {
			t.Fatalf("body %q forwarded as %q (%v)", body, got, err)
		}
	})
}

// TestFaultAISeededDecisionsWithBodyMatch checks that a toxicity among
// the requests a body match picks replays from the server's seed.
func TestFaultAISeededDecisionsWithBodyMatch(t *testing.T) {
	t.Parallel()
	decide := func(seed uint64) string {
		_, _, base := httpModeProxy(t, seed, `{"name":"half","type":"http","toxicity":0.5,"attributes":{"json_field":"model","json_in":["a"],"abort_status":429,"error_format":"openai"}}`)
		var out []byte
		for i := range 40 {
			model := "a"
			if i%3 == 0 {
				model = "b" // never matched, never counted
			}
			resp, err := http.Post(base+"/", "application/json", strings.NewReader(`{"model":"`+model+`"}`))
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			switch {
			case resp.StatusCode == 429:
				out = append(out, 'x')
			case model == "b":
				out = append(out, '-')
			default:
				out = append(out, '.')
			}
		}
		return string(out)
	}
	a := decide(5)
	if a != decide(5) {
		t.Fatal("same seed, different decisions")
	}
	if a == decide(6) || !strings.Contains(a, "x") || !strings.Contains(a, ".") || strings.Count(a, "-") != 14 {
		t.Fatalf("decisions %s", a)
	}
}

// TestFaultAIEventOverTheBound checks that an event past the SSE reader's
// bound breaks the stream instead of growing the proxy's memory.
func TestFaultAIEventOverTheBound(t *testing.T) {
	t.Parallel()
	up := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, "data: small\n\n")
		big := bytes.Repeat([]byte("x"), 64<<10)
		io.WriteString(w, "data: ")
		for range 40 { // 2.5 MiB in one event, past the 1 MiB bound
			if _, err := w.Write(big); err != nil {
				return
			}
		}
		io.WriteString(w, "\n\n")
	})
	s, base := proxyInFront(t, up)
	addToxic(t, s, "web", `{"name":"slow","type":"http","attributes":{"events_per_second":1000}}`)
	resp, err := http.Get(base + "/")
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err == nil || string(got) != "data: small\n\n" {
		t.Fatalf("read %d bytes, %v; want the small event and a broken stream", len(got), err)
	}
}

// TestFaultAIEncodedStreamPassesAsItCame checks that a compressed event
// stream, whose events the proxy cannot read, passes byte for byte.
func TestFaultAIEncodedStreamPassesAsItCame(t *testing.T) {
	t.Parallel()
	body := "\x1f\x8b\x08\x00data: not really\n\n\x00\xff"
	up := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.Header().Set("Content-Encoding", "gzip")
		io.WriteString(w, body)
	})
	s, base := proxyInFront(t, up)
	addToxic(t, s, "web", `{"name":"cut","type":"http","attributes":{"truncate_after_events":0}}`)
	req, _ := http.NewRequest(http.MethodGet, base+"/", nil)
	req.Header.Set("Accept-Encoding", "gzip") // so the client leaves the body as it came
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || string(got) != body {
		t.Fatalf("got %q, %v; want the body as the upstream sent it", got, err)
	}
}

// proxyInFront starts h and a proxy in HTTP mode in front of it; it
// returns the server and the proxy's base URL.
func proxyInFront(t *testing.T, h http.Handler) (*Server, string) {
	t.Helper()
	up := httptest.NewServer(h)
	t.Cleanup(up.Close)
	s, _, _ := newTestServer(t, 1)
	info, err := s.CreateProxy(ProxyConfig{Name: "web", Listen: "127.0.0.1:0", Upstream: strings.TrimPrefix(up.URL, "http://"), Mode: "http"})
	if err != nil {
		t.Fatal(err)
	}
	return s, "http://" + info.Listen
}

// TestFaultAIAbortKeepsTheConnection checks that a fault answering a POST
// in place reads what is left of its body, so that the client's next
// request on the connection is served (SDKs keep connections alive).
func TestFaultAIAbortKeepsTheConnection(t *testing.T) {
	t.Parallel()
	s, base := proxyInFront(t, okHandler)
	addToxic(t, s, "web", `{"name":"busy","type":"http","attributes":{"first_requests":1,"abort_status":529,"error_format":"anthropic"}}`)
	c := dial(t, strings.TrimPrefix(base, "http://"))
	body := `{"model":"claude","messages":[]}`
	br := bufio.NewReader(c)
	for i, want := range []int{529, 200} {
		fmt.Fprintf(c, "POST /v1/messages HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("request %d on the connection: %v", i+1, err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Fatalf("request %d: status %d, want %d", i+1, resp.StatusCode, want)
		}
	}
}
