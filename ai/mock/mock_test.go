package mock

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/relia-dev/relia/ai/wire"
	"github.com/relia-dev/relia/clock"
)

func newServer(t *testing.T, o Options) (*Server, *httptest.Server) {
	t.Helper()
	sim, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	return sim, srv
}

func post(t *testing.T, url, body string, header ...string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

const chatBody = `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hello there"}],"max_tokens":5,"seed_field_kept":1}`

func TestOpenAIChat(t *testing.T) {
	t.Parallel()
	_, srv := newServer(t, Options{Seed: 7})
	resp := post(t, srv.URL+"/v1/chat/completions", chatBody)
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	var cr wire.ChatResponse
	if err := json.NewDecoder(resp.Body).Decode(&cr); err != nil {
		t.Fatal(err)
	}
	if cr.Object != "chat.completion" || len(cr.Choices) != 1 || cr.Choices[0].FinishReason != "length" {
		t.Fatalf("answer %+v", cr)
	}
	text := cr.Choices[0].Message.Text()
	if n := len(strings.Fields(text)); n != 5 {
		t.Errorf("answer %q has %d words, want the request's cap of 5", text, n)
	}
	// "hello there" is 11 bytes: 3 tokens, plus 3 for the message.
	if u := cr.Usage; u == nil || u.PromptTokens != 6 || u.CompletionTokens != 5 || u.TotalTokens != 11 {
		t.Errorf("usage %+v, want 6 + 5", cr.Usage)
	}
	again := post(t, srv.URL+"/v1/chat/completions", chatBody)
	var cr2 wire.ChatResponse
	json.NewDecoder(again.Body).Decode(&cr2)
	if cr2.Choices[0].Message.Text() != text {
		t.Errorf("same request, same seed: %q then %q", text, cr2.Choices[0].Message.Text())
	}
}

// readSSE returns the events of a stream until its end.
func readSSE(t *testing.T, r io.Reader) ([]wire.SSEEvent, error) {
	t.Helper()
	sr := wire.NewSSEReader(r, 0)
	var evs []wire.SSEEvent
	for {
		ev, err := sr.Next()
		if err == io.EOF {
			return evs, nil
		}
		if err != nil {
			return evs, err
		}
		evs = append(evs, wire.SSEEvent{Name: ev.Name, Data: bytes.Clone(ev.Data)})
	}
}

func TestOpenAIStream(t *testing.T) {
	t.Parallel()
	_, srv := newServer(t, Options{OutputTokens: 4})
	resp := post(t, srv.URL+"/v1/chat/completions", `{"model":"m","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"hi"}]}`)
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("content type %q", ct)
	}
	evs, err := readSSE(t, resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	// role chunk, 4 tokens, finish chunk, usage chunk, [DONE]
	if len(evs) != 8 || string(evs[7].Data) != "[DONE]" {
		t.Fatalf("%d events, last %q", len(evs), evs[len(evs)-1].Data)
	}
	var text strings.Builder
	for _, ev := range evs[1:5] {
		var c wire.ChatChunk
		if err := json.Unmarshal(ev.Data, &c); err != nil {
			t.Fatal(err)
		}
		text.WriteString(*c.Choices[0].Delta.Content)
	}
	if len(strings.Fields(text.String())) != 4 {
		t.Errorf("text %q", text.String())
	}
	var fin, usage wire.ChatChunk
	json.Unmarshal(evs[5].Data, &fin)
	json.Unmarshal(evs[6].Data, &usage)
	if fin.Choices[0].FinishReason == nil || *fin.Choices[0].FinishReason != "stop" {
		t.Errorf("finish chunk %s", evs[5].Data)
	}
	if usage.Usage == nil || usage.Usage.CompletionTokens != 4 || len(usage.Choices) != 0 {
		t.Errorf("usage chunk %s", evs[6].Data)
	}
}

func TestAnthropicStream(t *testing.T) {
	t.Parallel()
	_, srv := newServer(t, Options{OutputTokens: 3})
	resp := post(t, srv.URL+"/v1/messages", `{"model":"claude","max_tokens":100,"stream":true,"system":"be brief","messages":[{"role":"user","content":"hi"}]}`)
	evs, err := readSSE(t, resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, ev := range evs {
		names = append(names, ev.Name)
		var se wire.StreamEvent
		if err := json.Unmarshal(ev.Data, &se); err != nil || se.Type != ev.Name {
			t.Fatalf("event %s: type %q, %v", ev.Name, se.Type, err)
		}
	}
	want := "message_start content_block_start ping content_block_delta content_block_delta content_block_delta content_block_stop message_delta message_stop"
	if got := strings.Join(names, " "); got != want {
		t.Errorf("events\n%s\nwant\n%s", got, want)
	}
	var md wire.StreamEvent
	json.Unmarshal(evs[7].Data, &md)
	if md.Usage.OutputTokens != 3 || *md.Delta.StopReason != "end_turn" {
		t.Errorf("message_delta %s", evs[7].Data)
	}
}

func TestGeminiAndBedrock(t *testing.T) {
	t.Parallel()
	_, srv := newServer(t, Options{OutputTokens: 3})
	resp := post(t, srv.URL+"/v1beta/models/gemini-2.0-flash:streamGenerateContent?alt=sse", `{"contents":[{"role":"user","parts":[{"text":"hi"}]}]}`)
	evs, err := readSSE(t, resp.Body)
	if err != nil || len(evs) != 3 {
		t.Fatalf("%d events, %v", len(evs), err)
	}
	var last wire.GenerateContentResponse
	json.Unmarshal(evs[2].Data, &last)
	if last.Candidates[0].FinishReason != "STOP" || last.UsageMetadata.CandidatesTokenCount != 3 {
		t.Errorf("last chunk %s", evs[2].Data)
	}

	resp = post(t, srv.URL+"/model/anthropic.claude-3-haiku/converse-stream", `{"messages":[{"role":"user","content":[{"text":"hi"}]}]}`,
		"Authorization", "AWS4-HMAC-SHA256 Credential=x")
	er := wire.NewEventStreamReader(resp.Body)
	var types []string
	for {
		m, err := er.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		types = append(types, m.Headers[":event-type"])
	}
	if got := strings.Join(types, " "); got != "messageStart contentBlockDelta contentBlockDelta contentBlockDelta contentBlockStop messageStop metadata" {
		t.Errorf("bedrock events %s", got)
	}
	if resp := post(t, srv.URL+"/model/m/converse", `{"messages":[{"role":"user","content":[{"text":"hi"}]}]}`); resp.StatusCode != 401 {
		t.Errorf("unsigned bedrock request: %d, want 401", resp.StatusCode)
	}
}

func TestStatusFaults(t *testing.T) {
	t.Parallel()
	sim, srv := newServer(t, Options{Faults: []Fault{{Kind: FaultStatus, Status: 429, RetryAfter: 1500 * time.Millisecond}}})
	resp := post(t, srv.URL+"/v1/chat/completions", chatBody)
	var eb wire.ErrorBody
	json.NewDecoder(resp.Body).Decode(&eb)
	if resp.StatusCode != 429 || resp.Header.Get("Retry-After") != "2" || eb.Error.Type != "rate_limit_error" {
		t.Errorf("429 fault: %d, Retry-After %q, %+v", resp.StatusCode, resp.Header.Get("Retry-After"), eb)
	}
	sim.SetFaults([]Fault{{Kind: FaultStatus, Status: 529, API: APIAnthropic}})
	resp = post(t, srv.URL+"/v1/messages", `{"model":"c","max_tokens":5,"messages":[{"role":"user","content":"hi"}]}`)
	var ab wire.AnthropicErrorBody
	json.NewDecoder(resp.Body).Decode(&ab)
	if resp.StatusCode != 529 || ab.Type != "error" || ab.Error.Type != "overloaded_error" {
		t.Errorf("529 fault: %d %+v", resp.StatusCode, ab)
	}
	if resp := post(t, srv.URL+"/v1/chat/completions", chatBody); resp.StatusCode != 200 {
		t.Errorf("an Anthropic-only fault hit an OpenAI request: %d", resp.StatusCode)
	}
	recs := sim.Requests()
	if len(recs) != 3 || recs[0].Fault != FaultStatus || recs[0].Status != 429 || recs[2].Fault != "" {
		t.Errorf("records %+v", recs)
	}
}

func TestContextWindow(t *testing.T) {
	t.Parallel()
	_, srv := newServer(t, Options{ContextWindows: map[string]int{"small": 8}})
	resp := post(t, srv.URL+"/v1/chat/completions", strings.Replace(chatBody, "gpt-4o-mini", "small", 1))
	var eb wire.ErrorBody
	json.NewDecoder(resp.Body).Decode(&eb)
	if resp.StatusCode != 400 || eb.Error.Code == nil || *eb.Error.Code != "context_length_exceeded" {
		t.Errorf("%d %+v", resp.StatusCode, eb)
	}
	if resp := post(t, srv.URL+"/v1/chat/completions", chatBody); resp.StatusCode != 200 {
		t.Errorf("a model with no window: %d", resp.StatusCode)
	}
}

func TestStreamFaults(t *testing.T) {
	t.Parallel()
	body := `{"model":"m","stream":true,"messages":[{"role":"user","content":"hi"}]}`
	t.Run("error event", func(t *testing.T) {
		_, srv := newServer(t, Options{Faults: []Fault{{Kind: FaultErrorEvent, AfterTokens: 2, Status: 529}}})
		evs, err := readSSE(t, post(t, srv.URL+"/v1/chat/completions", body).Body)
		if err != nil || len(evs) != 4 {
			t.Fatalf("%d events, %v", len(evs), err)
		}
		var eb wire.ErrorBody
		if json.Unmarshal(evs[3].Data, &eb) != nil || eb.Error.Type != "overloaded_error" {
			t.Errorf("last event %s", evs[3].Data)
		}
	})
	t.Run("truncate", func(t *testing.T) {
		_, srv := newServer(t, Options{Faults: []Fault{{Kind: FaultTruncate, AfterTokens: 2}}})
		evs, err := readSSE(t, post(t, srv.URL+"/v1/chat/completions", body).Body)
		if err == nil || len(evs) != 3 {
			t.Errorf("truncated stream: %d events, error %v", len(evs), err)
		}
	})
	t.Run("stall", func(t *testing.T) {
		_, srv := newServer(t, Options{Faults: []Fault{{Kind: FaultStall, AfterTokens: 1}}})
		resp := post(t, srv.URL+"/v1/chat/completions", body)
		sr := wire.NewSSEReader(resp.Body, 0)
		for range 2 { // the role chunk and one token
			if _, err := sr.Next(); err != nil {
				t.Fatal(err)
			}
		}
		got := make(chan error, 1)
		go func() { _, err := sr.Next(); got <- err }()
		select {
		case err := <-got:
			t.Fatalf("a stalled stream went on: %v", err)
		case <-time.After(50 * time.Millisecond):
		}
		resp.Body.Close()
		if err := <-got; err == nil {
			t.Error("a read of a closed stalled stream returned an event")
		}
	})
}

func TestPacingOnClock(t *testing.T) {
	t.Parallel()
	fc := clock.NewFake(time.Time{})
	_, srv := newServer(t, Options{Clock: fc, TimeToFirstToken: time.Second, TokensPerSecond: 10, OutputTokens: 3,
		Faults: []Fault{{Kind: FaultSlowFirstToken, Delay: 2 * time.Second}}})
	resp := post(t, srv.URL+"/v1/chat/completions", `{"model":"m","stream":true,"messages":[{"role":"user","content":"hi"}]}`)
	br := bufio.NewReader(resp.Body)
	events := make(chan time.Time, 16)
	go func() {
		sr := wire.NewSSEReader(br, 0)
		for {
			if _, err := sr.Next(); err != nil {
				close(events)
				return
			}
			events <- fc.Now()
		}
	}()
	start := fc.Now()
	recv := func(n int) []time.Duration {
		var ts []time.Duration
		for range n {
			ts = append(ts, (<-events).Sub(start))
		}
		return ts
	}
	fc.BlockUntil(1)
	fc.Advance(2999 * time.Millisecond)
	select {
	case <-events:
		t.Fatal("an event before the first token's time")
	case <-time.After(20 * time.Millisecond):
	}
	fc.Advance(time.Millisecond)
	got := recv(2) // the role chunk and the first token, at 3s
	for _, step := range []int{1, 3} {
		fc.BlockUntil(1)
		fc.Advance(100 * time.Millisecond)
		got = append(got, recv(step)...)
	}
	want := []time.Duration{3 * time.Second, 3 * time.Second, 3100 * time.Millisecond, 3200 * time.Millisecond, 3200 * time.Millisecond, 3200 * time.Millisecond}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("event times %v, want %v", got, want)
	}
}

func TestDeterministicFaults(t *testing.T) {
	t.Parallel()
	run := func(seed int64) []uint64 {
		sim, srv := newServer(t, Options{Seed: seed, Faults: []Fault{{Kind: FaultStatus, Status: 500, Rate: 0.3}}})
		for range 40 {
			post(t, srv.URL+"/v1/chat/completions", chatBody)
		}
		var hit []uint64
		for _, r := range sim.Requests() {
			if r.Status == 500 {
				hit = append(hit, r.N)
			}
		}
		return hit
	}
	a, b, c := run(1), run(1), run(2)
	if len(a) < 4 || len(a) > 24 {
		t.Errorf("rate 0.3 of 40 hit %d", len(a))
	}
	if !slices.Equal(a, b) {
		t.Errorf("seed 1 twice: %v and %v", a, b)
	}
	if slices.Equal(a, c) {
		t.Errorf("seeds 1 and 2 hit the same requests %v", a)
	}
}

func TestFaultControlAPI(t *testing.T) {
	t.Parallel()
	sim, srv := newServer(t, Options{})
	req, _ := http.NewRequest(http.MethodPut, srv.URL+"/mock/faults", strings.NewReader(`[{"kind":"status","status":429,"retry_after":"3s"}]`))
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("%v %v", resp.StatusCode, err)
	}
	resp.Body.Close()
	if f := sim.Faults(); len(f) != 1 || f[0].RetryAfter != 3*time.Second {
		t.Errorf("faults %+v", f)
	}
	req, _ = http.NewRequest(http.MethodPut, srv.URL+"/mock/faults", strings.NewReader(`[{"kind":"status","status":418}]`))
	resp, _ = http.DefaultClient.Do(req)
	resp.Body.Close()
	if resp.StatusCode != 400 || len(sim.Faults()) != 1 {
		t.Errorf("an invalid fault: %d, faults %+v", resp.StatusCode, sim.Faults())
	}
}

func TestAPIKeys(t *testing.T) {
	t.Parallel()
	sim, srv := newServer(t, Options{APIKeys: []string{"sk-good-1234"}})
	if resp := post(t, srv.URL+"/v1/chat/completions", chatBody, "Authorization", "Bearer sk-bad"); resp.StatusCode != 401 {
		t.Errorf("bad key: %d", resp.StatusCode)
	}
	if resp := post(t, srv.URL+"/v1/messages", `{"model":"c","max_tokens":5,"messages":[{"role":"user","content":"hi"}]}`, "X-Api-Key", "sk-good-1234"); resp.StatusCode != 200 {
		t.Errorf("good key: %d", resp.StatusCode)
	}
	if r := sim.Requests(); r[1].Key != "1234" {
		t.Errorf("key recorded as %q", r[1].Key)
	}
}

func TestParseFault(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   string
		want Fault
		err  string
	}{
		{in: "429,retry-after=2s,rate=50%", want: Fault{Kind: FaultStatus, Status: 429, RetryAfter: 2 * time.Second, Rate: 0.5}},
		{in: "529", want: Fault{Kind: FaultStatus, Status: 529}},
		{in: "stall,after=5,model=gpt-4o", want: Fault{Kind: FaultStall, AfterTokens: 5, Model: "gpt-4o"}},
		{in: "slow-first-token,delay=1s,api=gemini", want: Fault{Kind: FaultSlowFirstToken, Delay: time.Second, API: "gemini"}},
		{in: "418", err: "status 418"},
		{in: "stall,after", err: "not key=value"},
		{in: "stall,colour=red", err: "unknown setting"},
		{in: "explode", err: "unknown fault kind"},
		{in: "429,rate=2", err: "rate"},
		{in: "slow_first_token", err: "delay must be positive"},
		{in: "429,api=cohere", err: "unknown api"},
	} {
		got, err := ParseFault(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%q: error %v, want %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%q: %+v, %v; want %+v", tc.in, got, err, tc.want)
		}
	}
}

func FuzzParseFault(f *testing.F) {
	for _, s := range []string{"429,retry-after=2s", "stall,after=3", "error_event,status=529,after=1", ",,=", "429,rate=1e400"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		fl, err := ParseFault(s)
		if err != nil {
			return
		}
		if err := fl.Validate(); err != nil {
			t.Fatalf("ParseFault(%q) returned an invalid fault: %v", s, err)
		}
		b, _ := json.Marshal(fl)
		var back Fault
		if err := json.Unmarshal(b, &back); err != nil || back != fl {
			t.Fatalf("%q: JSON round trip %s gave %+v, %v", s, b, back, err)
		}
	})
}

func TestStructuredAnswer(t *testing.T) {
	t.Parallel()
	_, srv := newServer(t, Options{})
	resp := post(t, srv.URL+"/v1/chat/completions", `{"model":"m","messages":[{"role":"user","content":"hi"}],
		"response_format":{"type":"json_schema","json_schema":{"name":"x","schema":{"type":"object","required":["mood","n"],"properties":{"mood":{"enum":["up","down"]},"n":{"type":"integer","minimum":3},"tags":{"type":"array","items":{"type":"string"},"minItems":2}}}}}}`)
	var cr wire.ChatResponse
	json.NewDecoder(resp.Body).Decode(&cr)
	var v struct {
		Mood string   `json:"mood"`
		N    int      `json:"n"`
		Tags []string `json:"tags"`
	}
	if err := json.Unmarshal([]byte(cr.Choices[0].Message.Text()), &v); err != nil || (v.Mood != "up" && v.Mood != "down") || v.N != 3 || len(v.Tags) != 2 {
		t.Errorf("answer %q: %+v %v", cr.Choices[0].Message.Text(), v, err)
	}
}

// The records keep the newest MaxRecords requests, oldest first, however
// many times the ring has wrapped.
func TestRequestsKeepTheNewest(t *testing.T) {
	t.Parallel()
	sim, srv := newServer(t, Options{MaxRecords: 3})
	for n := 1; n <= 8; n++ {
		resp := post(t, srv.URL+"/v1/chat/completions", chatBody)
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		recs := sim.Requests()
		want := min(n, 3)
		if len(recs) != want {
			t.Fatalf("after %d requests: %d records, want %d", n, len(recs), want)
		}
		for i, r := range recs {
			if r.N != uint64(n-want+1+i) {
				t.Fatalf("after %d requests: record %d is request %d, want %d", n, i, r.N, n-want+1+i)
			}
		}
	}
}

// A simulator that has filled its records records each further request
// at the same cost as the first ones (the records used to be shifted by
// one on every request once full).
func BenchmarkRecordWhenFull(b *testing.B) {
	sim, err := New(Options{})
	if err != nil {
		b.Fatal(err)
	}
	for n := range DefaultMaxRecords {
		sim.record(Request{N: uint64(n + 1)})
	}
	b.ResetTimer()
	for n := range b.N {
		sim.record(Request{N: uint64(n)})
	}
}

// Streams answered at once share the simulator's buffers one after
// another, never two at a time: many concurrent streams, each with its own
// prompt, each get the same text as that prompt's answer on its own.
func TestConcurrentStreamsKeepTheirOwnText(t *testing.T) {
	t.Parallel()
	_, srv := newServer(t, Options{OutputTokens: 60})
	text := func(prompt string) string {
		resp := post(t, srv.URL+"/v1/chat/completions", `{"model":"m","stream":true,"messages":[{"role":"user","content":"`+prompt+`"}]}`)
		evs, err := readSSE(t, resp.Body)
		if err != nil {
			t.Error(err)
			return ""
		}
		var b strings.Builder
		for _, ev := range evs {
			var c wire.ChatChunk
			if json.Unmarshal(ev.Data, &c) == nil && len(c.Choices) > 0 && c.Choices[0].Delta.Content != nil {
				b.WriteString(*c.Choices[0].Delta.Content)
			}
		}
		return b.String()
	}
	const prompts = 16
	want := make([]string, prompts)
	for i := range want {
		want[i] = text(fmt.Sprintf("prompt %d", i))
	}
	got := make([]string, prompts*8)
	var wg sync.WaitGroup
	for i := range got {
		wg.Go(func() { got[i] = text(fmt.Sprintf("prompt %d", i%prompts)) })
	}
	wg.Wait()
	for i, g := range got {
		if w := want[i%prompts]; g != w || len(strings.Fields(g)) != 60 {
			t.Fatalf("stream %d (prompt %d): %q, want %q", i, i%prompts, g, w)
		}
	}
}

// discardWriter is a ResponseWriter (and Flusher) that keeps nothing, so
// that a benchmark counts the simulator's own allocations.
type discardWriter struct {
	h     http.Header
	bytes int
}

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) Write(p []byte) (int, error) { w.bytes += len(p); return len(p), nil }
func (w *discardWriter) WriteHeader(int)             {}
func (w *discardWriter) Flush()                      {}

// A streamed answer of 100 tokens that comes at once, as bench/ai asks
// for it: what the simulator allocates for one.
func BenchmarkStream100(b *testing.B) {
	sim, err := New(Options{OutputTokens: 100})
	if err != nil {
		b.Fatal(err)
	}
	body := `{"model":"gpt-4o-mini","stream":true,"max_tokens":100,"messages":[{"role":"user","content":"Summarize the error budget policy in one line."}]}`
	req := httptest.NewRequest(http.MethodPost, "/v1/chat/completions", strings.NewReader(body))
	w := &discardWriter{h: http.Header{}}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		req.Body = io.NopCloser(strings.NewReader(body))
		clear(w.h)
		sim.ServeHTTP(w, req)
	}
	b.SetBytes(int64(w.bytes / max(b.N, 1)))
}
