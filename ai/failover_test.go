package ai

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"

	"github.com/relia-dev/relia/ai/mock"
	"github.com/relia-dev/relia/clock"
)

// failoverConfig routes gpt-4o-mini to providers a and b, split evenly.
const failoverConfig = `
kind: AIGateway
version: relia/v1
metadata: {name: failover}
spec:
  providers:
    - {name: a, type: openai, url: "%s/v1", keys: [{name: a1, value: sk-a1}]}
    - {name: b, type: anthropic, url: "%s", keys: [{value: sk-b}]}
  routes:
    - model: gpt-4o-mini
      targets: [{provider: a}, {provider: b, model: claude-3-5-haiku-latest}]
      timeouts: {firstToken: 1s, idle: 2s}
`

// records collects a Service's call records.
type records struct {
	mu   sync.Mutex
	list []Record
}

func (r *records) add(rec Record) { r.mu.Lock(); r.list = append(r.list, rec); r.mu.Unlock() }
func (r *records) all() []Record {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Record(nil), r.list...)
}

func chatOnce(t *testing.T, url, body string) (int, []byte) {
	t.Helper()
	resp, err := http.Post(url+"/v1/chat/completions", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

const hello = `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hello"}]}`

// TestFailoverHonoursRetryAfter: provider A answers 429 (and then 529)
// with Retry-After for 30 s of fake time under a steady 10 calls a
// second: no client call fails, A is not called again before its
// Retry-After passes, and A serves again once it recovers.
func TestFailoverHonoursRetryAfter(t *testing.T) {
	t.Parallel()
	for _, status := range []int{429, 529} {
		t.Run(fmt.Sprint(status), func(t *testing.T) {
			fc := clock.NewFake(time.Time{})
			simA, a := startMock(t, mock.Options{Clock: fc, Faults: []mock.Fault{{Kind: mock.FaultStatus, Status: status, RetryAfter: 2 * time.Second}}})
			simB, b := startMock(t, mock.Options{Clock: fc})
			var recs records
			g := startService(t, failoverConfig, fc, Options{OnRecord: recs.add}, a, b)
			start := fc.Now()
			failed := 0
			const faulty = 30 * time.Second
			for step := range 400 { // 40 s of 10 calls a second
				if step == 300 {
					simA.SetFaults(nil) // A recovers after 30 s
				}
				if code, body := chatOnce(t, g.url, hello); code != 200 {
					failed++
					t.Logf("call %d: %d %s", step, code, body)
				}
				fc.Advance(100 * time.Millisecond)
			}
			if failed > 0 {
				t.Errorf("%d client calls failed", failed)
			}
			var faulted []time.Time
			servedAfter := 0
			for _, r := range simA.Requests() {
				if r.Status == status {
					faulted = append(faulted, r.Time)
				}
				if r.Status == 200 && r.Time.Sub(start) < faulty {
					t.Errorf("A served at %s, while it was refusing", r.Time.Sub(start))
				}
				if r.Time.Sub(start) >= faulty && r.Status == 200 {
					servedAfter++
				}
			}
			// A is called at most once per Retry-After while it refuses.
			for i := 1; i < len(faulted); i++ {
				if gap := faulted[i].Sub(faulted[i-1]); gap < 2*time.Second {
					t.Errorf("A was called %s after a Retry-After of 2s", gap)
				}
			}
			if len(faulted) < 14 || len(faulted) > 16 {
				t.Errorf("A refused %d calls in 30 s with Retry-After 2s, want 14 to 16", len(faulted))
			}
			if servedAfter < 30 {
				t.Errorf("A served %d calls after it recovered, want it readmitted", servedAfter)
			}
			if simB.Count() < 300 {
				t.Errorf("B served %d calls", simB.Count())
			}
			var retried int
			for _, r := range recs.all() {
				if len(r.Path) == 2 {
					retried++
					if !strings.HasSuffix(r.Path[0], ":rate_limited") && !strings.HasSuffix(r.Path[0], ":overloaded") {
						t.Errorf("path %v", r.Path)
					}
				}
			}
			if retried != len(faulted) {
				t.Errorf("%d calls failed over, %d refusals", retried, len(faulted))
			}
		})
	}
}

// TestSteadyStreamOutlivesItsIdleTimeout: a stream whose tokens come
// further apart than nothing (1.5 s) but closer than the idle timeout (2
// s) runs past that timeout whole: the timer is set again as each token's
// bytes come, not only as the first's did. Each provider's wire format,
// read in place (the SSE ones) or through Read (Bedrock's event stream).
func TestSteadyStreamOutlivesItsIdleTimeout(t *testing.T) {
	t.Parallel()
	for _, p := range []struct{ kind, provider, model string }{
		{"openai", `{name: p, type: openai, url: "%s/v1", keys: [{value: k}]}`, "gpt-4o-mini"},
		{"anthropic", `{name: p, type: anthropic, url: "%s", keys: [{value: k}]}`, "claude-3-5-haiku-latest"},
		{"gemini", `{name: p, type: gemini, url: "%s", keys: [{value: k}]}`, "gemini-2.0-flash"},
		{"bedrock", `{name: p, type: bedrock, url: "%s", region: us-east-1, keys: [{accessKeyID: AKIDEXAMPLE, value: secret}]}`, "anthropic.claude-3-haiku-20240307-v1:0"},
	} {
		t.Run(p.kind, func(t *testing.T) {
			t.Parallel()
			fc := clock.NewFake(time.Time{})
			_, url := startMock(t, mock.Options{Clock: fc, TokensPerSecond: 1 / 1.5, OutputTokens: 5})
			var recs records
			g := startService(t, `kind: AIGateway
version: relia/v1
metadata: {name: steady}
spec:
  providers:
    - `+p.provider+`
  routes:
    - model: gpt-4o-mini
      targets: [{provider: p, model: "`+p.model+`"}]
      timeouts: {firstToken: 1s, idle: 2s}
`, fc, Options{OnRecord: recs.add}, url)
			client := newOpenAI(g.url, "")
			stream := client.Chat.Completions.NewStreaming(context.Background(), openai.ChatCompletionNewParams{
				Model: "gpt-4o-mini", Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("hi")},
			})
			start, tokens := fc.Now(), 0
			for stream.Next() {
				if len(stream.Current().Choices) == 0 || stream.Current().Choices[0].Delta.Content == "" {
					continue
				}
				if tokens++; tokens < 5 {
					fc.BlockUntil(2) // the simulator's wait for the next token, and the stream's timer
					fc.Advance(1500 * time.Millisecond)
				}
			}
			if err := stream.Err(); err != nil || tokens != 5 {
				t.Fatalf("%d tokens, error %v; want 5 and none", tokens, err)
			}
			if took := fc.Since(start); took <= 2*time.Second {
				t.Fatalf("the stream took %s, not past its idle timeout", took)
			}
			waitRecords(t, &recs, 1)
			if r := recs.all()[0]; r.Outcome != OutcomeOK {
				t.Errorf("record %+v, want ok", r)
			}
		})
	}
}

// TestStallEndsStreamWithErrorEvent: a stream that stalls after its first
// tokens ends, within the idle timeout, with an error event the official
// client reports, and the call is recorded as failed mid-stream.
func TestStallEndsStreamWithErrorEvent(t *testing.T) {
	t.Parallel()
	fc := clock.NewFake(time.Time{})
	_, a := startMock(t, mock.Options{Clock: fc, Faults: []mock.Fault{{Kind: mock.FaultStall, AfterTokens: 2}}})
	simB, b := startMock(t, mock.Options{Clock: fc})
	var recs records
	g := startService(t, failoverConfig, fc, Options{OnRecord: recs.add}, a, b)
	client := newOpenAI(g.url, "")
	stream := client.Chat.Completions.NewStreaming(context.Background(), openai.ChatCompletionNewParams{
		Model: "gpt-4o-mini", Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("hi")},
	})
	tokens := 0
	for tokens < 2 && stream.Next() {
		if len(stream.Current().Choices) > 0 && stream.Current().Choices[0].Delta.Content != "" {
			tokens++
		}
	}
	start := fc.Now()
	fc.BlockUntil(1) // the stream's timer: its idle timeout, and the call's total timeout
	fc.Advance(2 * time.Second)
	for stream.Next() {
	}
	err := stream.Err()
	if err == nil || !strings.Contains(err.Error(), "stream_interrupted") {
		t.Fatalf("stream error %v, want the error event", err)
	}
	if waited := fc.Since(start); waited > 2*time.Second {
		t.Errorf("the stall ended after %s, past the idle timeout", waited)
	}
	if simB.Count() != 0 {
		t.Error("a stream that sent tokens was retried on another provider")
	}
	waitRecords(t, &recs, 1)
	if r := recs.all()[0]; r.Outcome != OutcomeFailedMidStream || r.Reason != "timeout" || r.Provider != "a" {
		t.Errorf("record %+v", r)
	}
}

func waitRecords(t *testing.T, recs *records, n int) {
	t.Helper()
	for range 500 {
		if len(recs.all()) >= n {
			return
		}
		time.Sleep(2 * time.Millisecond)
	}
	t.Fatalf("%d records, want %d", len(recs.all()), n)
}

// TestFirstTokenTimeoutFailsOver: A's first token comes too late; the
// call goes to B before the client sees a byte.
func TestFirstTokenTimeoutFailsOver(t *testing.T) {
	t.Parallel()
	fc := clock.NewFake(time.Time{})
	_, a := startMock(t, mock.Options{Clock: fc, Faults: []mock.Fault{{Kind: mock.FaultSlowFirstToken, Delay: 10 * time.Second}}})
	_, b := startMock(t, mock.Options{Clock: fc, OutputTokens: 3})
	var recs records
	g := startService(t, failoverConfig, fc, Options{OnRecord: recs.add}, a, b)
	done := make(chan string, 1)
	go func() {
		resp, err := http.Post(g.url+"/v1/chat/completions", "application/json", strings.NewReader(strings.Replace(hello, `"messages"`, `"stream":true,"messages"`, 1)))
		if err != nil {
			done <- err.Error()
			return
		}
		text, _, ok, _ := streamText(t, resp.Body)
		resp.Body.Close()
		done <- fmt.Sprintf("%v %s", ok, text)
	}()
	fc.BlockUntil(3) // total, first-token timer, A's slow first token
	fc.Advance(time.Second)
	got := <-done
	if !strings.HasPrefix(got, "true ") || len(strings.Fields(got)) != 4 {
		t.Errorf("client got %q", got)
	}
	waitRecords(t, &recs, 1)
	if r := recs.all()[0]; r.Outcome != OutcomeOK || len(r.Path) != 2 || !strings.HasSuffix(r.Path[0], ":timeout") {
		t.Errorf("record %+v", r)
	}
}

// TestHedgeOnFirstToken: with hedgeAfter set, a slow first token sends a
// second attempt, whose stream wins.
func TestHedgeOnFirstToken(t *testing.T) {
	t.Parallel()
	fc := clock.NewFake(time.Time{})
	simA, a := startMock(t, mock.Options{Clock: fc, TimeToFirstToken: 5 * time.Second})
	_, b := startMock(t, mock.Options{Clock: fc, OutputTokens: 3})
	cfg := strings.Replace(failoverConfig, "timeouts: {firstToken: 1s, idle: 2s}", "timeouts: {firstToken: 30s}\n      hedgeAfter: 500ms", 1)
	var recs records
	g := startService(t, cfg, fc, Options{OnRecord: recs.add}, a, b)
	done := make(chan string, 1)
	go func() {
		resp, err := http.Post(g.url+"/v1/chat/completions", "application/json", strings.NewReader(strings.Replace(hello, `"messages"`, `"stream":true,"messages"`, 1)))
		if err != nil {
			done <- err.Error()
			return
		}
		text, _, ok, _ := streamText(t, resp.Body)
		resp.Body.Close()
		done <- fmt.Sprintf("%v %s", ok, text)
	}()
	fc.BlockUntil(4) // total, first-token, hedge delay, A's first token
	fc.Advance(500 * time.Millisecond)
	if got := <-done; !strings.HasPrefix(got, "true ") || len(strings.Fields(got)) != 4 {
		t.Errorf("client got %q", got)
	}
	waitRecords(t, &recs, 1)
	if r := recs.all()[0]; r.Provider != "b" || r.Outcome != OutcomeOK {
		t.Errorf("record %+v", r)
	}
	if simA.Count() != 1 {
		t.Errorf("A got %d requests", simA.Count())
	}
}

// TestContextFallback: a provider refusing the prompt as too long sends
// the call to the route's larger model.
func TestContextFallback(t *testing.T) {
	t.Parallel()
	_, a := startMock(t, mock.Options{ContextWindows: map[string]int{"gpt-4o-mini": 10}})
	cfg := `
kind: AIGateway
version: relia/v1
metadata: {name: ctx}
spec:
  providers:
    - {name: a, type: openai, url: "%s/v1", keys: [{value: k}]}
  routes:
    - {model: gpt-4o-mini, targets: [{provider: a}], contextFallback: gpt-4.1}
    - {model: gpt-4.1, targets: [{provider: a}]}
`
	var recs records
	g := startService(t, cfg, nil, Options{OnRecord: recs.add}, a)
	code, body := chatOnce(t, g.url, `{"model":"gpt-4o-mini","max_tokens":5,"messages":[{"role":"user","content":"a prompt that is long enough"}]}`)
	if code != 200 {
		t.Fatalf("%d %s", code, body)
	}
	waitRecords(t, &recs, 1)
	if p := recs.all()[0].Path; len(p) != 2 || p[0] != "a/gpt-4o-mini:context_length" || p[1] != "a/gpt-4.1:ok" {
		t.Errorf("path %v", p)
	}
}

// TestKeyRotation: calls rotate over a provider's keys by weight, and a
// rate-limited key rests while the others serve.
func TestKeyRotation(t *testing.T) {
	t.Parallel()
	fc := clock.NewFake(time.Time{})
	sim, a := startMock(t, mock.Options{Clock: fc})
	cfg := `
kind: AIGateway
version: relia/v1
metadata: {name: keys}
spec:
  providers:
    - name: a
      type: openai
      url: "%s/v1"
      keys: [{name: one, value: sk-aaaa, weight: 2}, {name: two, value: sk-bbbb}]
  routes:
    - {model: gpt-4o-mini, targets: [{provider: a}]}
`
	g := startService(t, cfg, fc, Options{}, a)
	for range 6 {
		chatOnce(t, g.url, hello)
	}
	count := map[string]int{}
	for _, r := range sim.Requests() {
		count[r.Key]++
	}
	if count["aaaa"] != 4 || count["bbbb"] != 2 {
		t.Errorf("keys used %v, want 4 and 2", count)
	}
	sim.SetFaults([]mock.Fault{{Kind: mock.FaultStatus, Status: 429, RetryAfter: 5 * time.Second, Rate: 1}})
	code, _ := chatOnce(t, g.url, hello) // key one refused, then key two: the call fails
	sim.SetFaults(nil)
	for range 4 {
		chatOnce(t, g.url, hello)
	}
	count = map[string]int{}
	for _, r := range sim.Requests()[6:] {
		count[r.Key]++
	}
	if code != 429 {
		t.Errorf("call with every key refused: %d", code)
	}
	// Both keys rest for 5 s: no further call reaches the provider.
	if count["aaaa"]+count["bbbb"] != 2 {
		t.Errorf("keys used while resting %v", count)
	}
}

// TestSLODrain: a target burning its error budget fast is tried after
// the healthy one.
func TestSLODrain(t *testing.T) {
	t.Parallel()
	fc := clock.NewFake(time.Time{})
	simA, a := startMock(t, mock.Options{Clock: fc, Seed: 4, Faults: []mock.Fault{{Kind: mock.FaultStatus, Status: 500, Rate: 0.5}}})
	_, b := startMock(t, mock.Options{Clock: fc})
	cfg := strings.Replace(failoverConfig, "timeouts: {firstToken: 1s, idle: 2s}", "slo: {objective: 99%%, window: 1m, minCalls: 10}\n      maxAttempts: 2", 1)
	g := startService(t, cfg, fc, Options{}, a, b)
	for range 40 {
		chatOnce(t, g.url, hello)
		fc.Advance(100 * time.Millisecond)
	}
	before := simA.Count()
	for range 40 {
		if code, body := chatOnce(t, g.url, hello); code != 200 {
			t.Fatalf("%d %s", code, body)
		}
		fc.Advance(100 * time.Millisecond)
	}
	if got := simA.Count() - before; got > 0 {
		t.Errorf("a drained target got %d first attempts", got)
	}
}

// TestClientCancelIsNoProviderFailure: clients that hang up before the
// answer do not trip the provider's breaker.
func TestClientCancelIsNoProviderFailure(t *testing.T) {
	t.Parallel()
	fc := clock.NewFake(time.Time{})
	sim, a := startMock(t, mock.Options{Clock: fc, TimeToFirstToken: time.Hour})
	var recs records
	g := startService(t, failoverConfig, fc, Options{OnRecord: recs.add}, a, a)
	for i := range 12 { // six a target: past the breaker's five failures in a row
		ctx, cancel := context.WithCancel(context.Background())
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, g.url+"/v1/chat/completions", strings.NewReader(hello))
		go http.DefaultClient.Do(req)
		for wait := 0; sim.Count() < uint64(i+1); wait++ {
			if wait == 5000 {
				t.Fatalf("call %d never reached the provider (a breaker tripped by hung-up clients?)", i+1)
			}
			time.Sleep(time.Millisecond)
		}
		cancel()
		waitRecords(t, &recs, i+1)
	}
	st := g.svc.state.Load()
	for _, p := range []string{"a", "b"} {
		for _, c := range st.provider(p).creds {
			if s := c.breaker.State(); s.String() != "closed" {
				t.Errorf("%s/%s: breaker %s after clients hung up", p, c.name, s)
			}
		}
	}
	for _, r := range recs.all() {
		if r.Outcome != OutcomeCancelled {
			t.Errorf("record %+v", r)
		}
	}
}
