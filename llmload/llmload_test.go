package llmload

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/relia-dev/relia/ai/mock"
	"github.com/relia-dev/relia/ai/wire"
	"github.com/relia-dev/relia/clock"
	"github.com/relia-dev/relia/load"
	"github.com/relia-dev/relia/outcome"
)

// mockServer serves relia ai mock on a loopback port of the test's own.
func mockServer(t *testing.T, o mock.Options) (*mock.Server, string) {
	t.Helper()
	sim, err := mock.New(o)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	return sim, srv.URL
}

// paths are each format's streaming path on the mock.
var paths = map[API]string{
	APIOpenAI:    "/v1/chat/completions",
	APIAnthropic: "/v1/messages",
	APIGemini:    "/v1beta/models/gemini-2.0-flash:streamGenerateContent?alt=sse",
}

// openRun runs n requests at 50/s against url.
func openRun(t *testing.T, url string, n int, o Options) *Result {
	t.Helper()
	sched, err := load.ConstantSchedule(50, time.Duration(n)*20*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	o.URL, o.Schedule = url, sched
	if o.Prompts == nil {
		o.Prompts = Synthetic(1, 4, Lengths{Mean: 20, StdDev: 5}, Lengths{Mean: 100})
	}
	if o.Model == "" {
		o.Model = "gpt-4o-mini"
	}
	o.MinOnTime = -1 // the machine is shared; the generator is judged elsewhere
	res, err := Run(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	// On the wall clock alone, as the result's JSON keeps them: the span
	// its rates divide by is the span read back from its file.
	if res.Start != res.Start.Round(0) || res.End != res.End.Round(0) {
		t.Errorf("the result's start and end carry the monotonic clock: %v, %v", res.Start, res.End)
	}
	return res
}

func TestStreamsOfEveryFormat(t *testing.T) {
	t.Parallel()
	const ttft, tokens, perSecond = 40 * time.Millisecond, 6, 250
	for api, path := range paths {
		t.Run(string(api), func(t *testing.T) {
			t.Parallel()
			sim, base := mockServer(t, mock.Options{Seed: 3, TimeToFirstToken: ttft, TokensPerSecond: perSecond, OutputTokens: tokens})
			res := openRun(t, base+path, 8, Options{})
			if got := res.Endings[EndDone]; got != 8 {
				t.Fatalf("endings %v: want 8 done", res.Endings)
			}
			if sim.Count() != 8 {
				t.Fatalf("mock received %d requests, want 8", sim.Count())
			}
			// Token counts are exactly what the mock sent.
			tok := res.Tokens.Total()
			if tok.BytesIn != 8*tokens {
				t.Errorf("output tokens %d, want %d", tok.BytesIn, 8*tokens)
			}
			if tok.BytesOut <= 0 {
				t.Errorf("input tokens %d: the mock reports usage", tok.BytesOut)
			}
			if n := res.ITL.Total().Total; n != 8*(tokens-1) {
				t.Errorf("%d inter-token gaps, want %d", n, 8*(tokens-1))
			}
			if n := res.TPOT.Total().Total; n != 8 {
				t.Errorf("%d requests with a time per output token, want 8", n)
			}
			// The first token cannot come before the mock's wait.
			if min := res.TTFT.Total().Latency.Min(); min < ttft {
				t.Errorf("TTFT min %s below the mock's %s", min, ttft)
			}
			// Nor the last before the first token's wait and the gaps.
			if min := res.Requests.Total().Latency.Min(); min < ttft+(tokens-1)*time.Second/perSecond {
				t.Errorf("request latency min %s below what the mock paces", min)
			}
			if v, _ := res.Value(load.Threshold{Metric: "llm_goodput", Aggregation: "count"}); v != 8 {
				t.Errorf("goodput count %v, want 8 (no objectives)", v)
			}
		})
	}
}

func TestEndings(t *testing.T) {
	t.Parallel()
	cases := []struct {
		fault  mock.Fault
		want   Ending
		tokens int64
	}{
		{mock.Fault{Kind: mock.FaultStall, AfterTokens: 2}, EndStalled, 2},
		{mock.Fault{Kind: mock.FaultTruncate, AfterTokens: 3}, EndTruncated, 3},
		{mock.Fault{Kind: mock.FaultErrorEvent, AfterTokens: 2, Status: 529}, EndErrorEvent, 2},
		{mock.Fault{Kind: mock.FaultStatus, Status: 429, RetryAfter: time.Second}, EndStatus, 0},
	}
	for _, c := range cases {
		for api, path := range paths {
			t.Run(string(c.fault.Kind)+"/"+string(api), func(t *testing.T) {
				t.Parallel()
				_, base := mockServer(t, mock.Options{Seed: 1, OutputTokens: 8, Faults: []mock.Fault{c.fault}})
				res := openRun(t, base+path, 2, Options{IdleTimeout: 300 * time.Millisecond})
				if res.Endings[c.want] != 2 || len(res.Endings) != 1 {
					t.Fatalf("endings %v: want 2 %s", res.Endings, c.want)
				}
				if got := res.Tokens.Total().BytesIn; got != 2*c.tokens {
					t.Errorf("output tokens %d, want %d", got, 2*c.tokens)
				}
				if v, ok := res.Value(load.Threshold{Metric: "llm_req_failed", Aggregation: "rate"}); !ok || v != 1 {
					t.Errorf("llm_req_failed %v %v, want 1", v, ok)
				}
				if res.Good.Total().Total != 0 {
					t.Error("a request that did not end well counted as good")
				}
			})
		}
	}
}

func TestThresholdsAndGoodput(t *testing.T) {
	t.Parallel()
	_, base := mockServer(t, mock.Options{Seed: 2, TimeToFirstToken: 30 * time.Millisecond, OutputTokens: 4})
	parse := func(s string) load.Threshold {
		th, err := load.ParseThresholdFlagIn(Metrics, s)
		if err != nil {
			t.Fatal(err)
		}
		return th
	}
	res := openRun(t, base+paths[APIOpenAI], 5, Options{
		// No first token can come within 1ms of a 30ms wait: none is good.
		Goodput: Objectives{TTFT: time.Millisecond},
		Thresholds: []load.Threshold{
			parse("llm_time_to_first_token:p(50)>=30"),
			parse("llm_output_tokens:count==20"),
			parse("llm_goodput:count<1"),
			parse("llm_time_to_first_token:max<1"),
		}})
	j := res.Judge()
	if j.Result != load.Failed || len(j.Reasons) != 1 || !strings.Contains(j.Reasons[0], "max<1") {
		t.Fatalf("judgement %s %v: want failed on max<1 alone", j.Result, j.Reasons)
	}
	for i, tr := range j.Thresholds {
		if tr.Passed != (i < 3) {
			t.Errorf("threshold %s passed=%v (value %v)", tr, tr.Passed, tr.Value)
		}
	}
	// The summary and the JSON show the same figures.
	var sum bytes.Buffer
	if err := res.WriteSummary(&sum, j); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(sum.String(), "FAIL  llm_time_to_first_token max<1") || !strings.Contains(sum.String(), "result: failed") {
		t.Errorf("summary:\n%s", sum.String())
	}
	data, err := json.Marshal(res)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Schema  string `json:"schema"`
		Result  string `json:"result"`
		Figures struct {
			OutputTokens int64   `json:"output_tokens"`
			Good         int64   `json:"good"`
			TTFTp50      float64 `json:"ttft_p50_ms"`
		} `json:"figures"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	p50, _ := res.Value(load.Threshold{Metric: "llm_time_to_first_token", Aggregation: "p", Percentile: 50})
	// The HTML page too.
	var page bytes.Buffer
	if err := res.Page(j).WriteHTML(&page); err != nil {
		t.Fatal(err)
	}
	p50text := FormatValue(load.Threshold{Metric: "llm_time_to_first_token"}, p50)
	for _, want := range []string{"Time to first token", "Goodput", p50text, "llm_time_to_first_token max&lt;1"} {
		if !strings.Contains(page.String(), want) {
			t.Errorf("the HTML page lacks %q", want)
		}
	}
	if !strings.Contains(sum.String(), p50text) {
		t.Errorf("the summary lacks TTFT p50 %s:\n%s", p50text, sum.String())
	}
	if doc.Schema != ResultSchema || doc.Result != load.Failed || doc.Figures.OutputTokens != 20 || doc.Figures.Good != 0 || doc.Figures.TTFTp50 != p50 {
		t.Errorf("JSON %+v, want %s, failed, 20 tokens, 0 good, TTFT p50 %v", doc, ResultSchema, p50)
	}
}

func TestClosedModel(t *testing.T) {
	t.Parallel()
	sim, err := mock.New(mock.Options{Seed: 4, TimeToFirstToken: 10 * time.Millisecond, OutputTokens: 3})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(sim)
	var conns atomic.Int64
	srv.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	res, err := Run(context.Background(), Options{URL: srv.URL + paths[APIOpenAI], Prompts: Synthetic(2, 3, Lengths{Mean: 10}, Lengths{Mean: 50}),
		Concurrency: 2, Duration: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if res.Load != load.Closed || res.Dispatched == 0 || uint64(res.Endings[EndDone]) != res.Dispatched || sim.Count() != res.Dispatched {
		t.Fatalf("closed run: %d dispatched, endings %v, mock saw %d", res.Dispatched, res.Endings, sim.Count())
	}
	if got := res.Tokens.Total().BytesIn; got != int64(res.Dispatched)*3 {
		t.Errorf("output tokens %d, want %d", got, res.Dispatched*3)
	}
	// Two users keep two connections: a stream read to its end gives its
	// connection back for the next request.
	if n := conns.Load(); n != 2 {
		t.Errorf("%d connections for %d requests of 2 users, want 2", n, res.Dispatched)
	}
}

// samples are requests with known timestamps, for tests of recording and
// merging that need no server.
func samples(n int, start time.Time) []Sample {
	out := make([]Sample, n)
	for i := range out {
		due := start.Add(time.Duration(i) * 150 * time.Millisecond)
		s := Sample{Due: due, Sent: due.Add(time.Millisecond), Status: 200, Ending: EndDone, Class: outcome.ClassOK,
			OutputTokens: 5 + i%4, InputTokens: 20, Events: 5 + i%4, Expected: 6}
		s.FirstToken = due.Add(time.Duration(20+i) * time.Millisecond)
		s.LastToken = s.FirstToken.Add(time.Duration(s.OutputTokens-1) * 10 * time.Millisecond)
		s.End = s.LastToken.Add(time.Millisecond)
		if i%5 == 4 {
			s.Ending, s.Class = EndTruncated, outcome.ClassReset
		}
		out[i] = s
	}
	return out
}

func TestMergeOfSegmentsEqualsOneRun(t *testing.T) {
	t.Parallel()
	start := time.Unix(1_700_000_000, 0)
	o := Options{URL: "http://127.0.0.1:1/v1/chat/completions", API: APIOpenAI, Concurrency: 1, Duration: 10 * time.Second,
		Goodput: Objectives{TTFT: 30 * time.Millisecond}}
	whole := newResult(o)
	o.Segment = load.Segment{Index: 0, Count: 2}
	a := newResult(o)
	o.Segment.Index = 1
	b := newResult(o)
	for _, r := range []*Result{whole, a, b} {
		r.Start, r.End = start, start.Add(10*time.Second)
	}
	for i, s := range samples(40, start) {
		whole.record(&s, o.Goodput)
		if i%2 == 0 {
			a.record(&s, o.Goodput)
		} else {
			b.record(&s, o.Goodput)
		}
	}
	// Through JSON, as relia load llm merge reads segment files.
	var back []*Result
	for _, r := range []*Result{a, b} {
		data, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		var rr Result
		if err := json.Unmarshal(data, &rr); err != nil {
			t.Fatal(err)
		}
		back = append(back, &rr)
	}
	merged, err := Merge(back...)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Merge(back[0], back[0]); err == nil || !strings.Contains(err.Error(), "twice") {
		t.Errorf("merging a segment with itself: %v", err)
	}
	for name, pair := range map[string][2]*outcome.Recorder{
		"requests": {whole.Requests, merged.Requests}, "ttft": {whole.TTFT, merged.TTFT}, "tpot": {whole.TPOT, merged.TPOT},
		"tokens": {whole.Tokens, merged.Tokens}, "tps": {whole.TokensPerSecond, merged.TokensPerSecond}, "good": {whole.Good, merged.Good},
	} {
		w, _ := json.Marshal(pair[0])
		m, _ := json.Marshal(pair[1])
		if !bytes.Equal(w, m) {
			t.Errorf("%s: merged recorder differs from the one run's", name)
		}
	}
	if merged.Endings[EndDone] != 32 || merged.Endings[EndTruncated] != 8 || merged.Expected != whole.Expected || merged.Delivered != whole.Delivered {
		t.Errorf("merged endings %v expected %d delivered %d", merged.Endings, merged.Expected, merged.Delivered)
	}
	for _, m := range []string{"llm_goodput", "llm_output_tokens", "llm_requests"} {
		th := load.Threshold{Metric: m, Aggregation: "rate"}
		w, _ := whole.Value(th)
		g, _ := merged.Value(th)
		if w != g {
			t.Errorf("%s rate: merged %v, one run %v", m, g, w)
		}
	}
	// TTFT objective 30ms: the first 11 requests have TTFT 20..30ms, of
	// which 9 ended well (4 and 9 were truncated).
	if n := merged.Good.Total().Total; n != 9 {
		t.Errorf("good %d, want 9", n)
	}
}

func TestParseObjectives(t *testing.T) {
	t.Parallel()
	o, err := ParseObjectives("ttft:500ms, tpot:50ms")
	if err != nil || o.TTFT != 500*time.Millisecond || o.TPOT != 50*time.Millisecond || o.String() != "ttft:500ms,tpot:50ms" {
		t.Fatalf("%+v %v", o, err)
	}
	for _, bad := range []string{"ttft", "ttft:fast", "ttft:-1s", "latency:1s", "ttft:1s,ttft:2s"} {
		if _, err := ParseObjectives(bad); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

func TestParseDataset(t *testing.T) {
	t.Parallel()
	ps, err := ParseDataset("d.jsonl", strings.NewReader(`{"messages":[{"role":"user","content":"hi"}],"max_tokens":4,"expected_output_tokens":3}

{"prompt":"x","model":"m","params":{"temperature":0}}`))
	if err != nil || len(ps) != 2 || ps[0].MaxTokens != 4 || ps[1].Model != "m" {
		t.Fatalf("%+v %v", ps, err)
	}
	body, err := ps[1].body(APIOpenAI, "default", 9)
	if err != nil || !strings.Contains(string(body), `"temperature":0`) || !strings.Contains(string(body), `"model":"m"`) {
		t.Errorf("body %s %v", body, err)
	}
	for bad, where := range map[string]string{
		`{"prompt":"x","bogus":1}`:                                  "d.jsonl:1",
		"{\"prompt\":\"x\"}\n{}":                                    "d.jsonl:2",
		`{"prompt":"x","messages":[{"role":"user","content":"y"}]}`: "give one",
		`{"prompt":"x","max_tokens":-1}`:                            "negative",
		``:                                                          "no prompts",
	} {
		if _, err := ParseDataset("d.jsonl", strings.NewReader(bad)); err == nil || !strings.Contains(err.Error(), where) {
			t.Errorf("%q: error %v, want one naming %q", bad, err, where)
		}
	}
}

func FuzzParseDataset(f *testing.F) {
	f.Add(`{"prompt":"x","max_tokens":3}`)
	f.Add(`{"messages":[{"role":"user","content":"hi"}],"params":{"top_p":1}}`)
	f.Fuzz(func(t *testing.T, s string) {
		ps, err := ParseDataset("f", strings.NewReader(s))
		if err != nil {
			return
		}
		for _, p := range ps {
			for _, api := range []API{APIOpenAI, APIAnthropic, APIGemini} {
				if b, err := p.body(api, "m", 1); err == nil && !json.Valid(b) {
					t.Fatalf("invalid body %s", b)
				}
			}
		}
	})
}

func FuzzParseObjectives(f *testing.F) {
	f.Add("ttft:500ms,tpot:50ms")
	f.Fuzz(func(t *testing.T, s string) {
		o, err := ParseObjectives(s)
		if err != nil {
			return
		}
		if o2, err := ParseObjectives(o.String()); o.String() != "every request that ended well" && (err != nil || o2 != o) {
			t.Fatalf("%q -> %+v -> %q -> %+v %v", s, o, o.String(), o2, err)
		}
	})
}

// sseServer sends n events a gap apart after a first wait, then ends the
// stream cleanly; with ?error=1 an error event follows them.
func sseServer(t *testing.T, n int, first, gap time.Duration) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet {
			http.Error(w, "GET only", http.StatusMethodNotAllowed)
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(http.StatusOK)
		fl := w.(http.Flusher)
		fl.Flush()
		time.Sleep(first)
		for i := range n {
			if i > 0 {
				time.Sleep(gap)
			}
			fmt.Fprintf(w, ": a comment\nid: %d\ndata: event %d\n\n", i, i)
			fl.Flush()
		}
		if r.URL.Query().Get("error") != "" {
			fmt.Fprint(w, "event: error\ndata: {\"message\":\"boom\"}\n\n")
		}
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

func TestPlainSSE(t *testing.T) {
	t.Parallel()
	const n, first, gap = 5, 30 * time.Millisecond, 5 * time.Millisecond
	base := sseServer(t, n, first, gap)
	res := openRun(t, base+"/events", 4, Options{})
	if res.API != APISSE || res.Endings[EndDone] != 4 {
		t.Fatalf("api %s, endings %v: want sse, 4 done", res.API, res.Endings)
	}
	if got := res.Tokens.Total().BytesIn; got != 4*n {
		t.Errorf("events %d, want %d", got, 4*n)
	}
	if min := res.TTFT.Total().Latency.Min(); min < first {
		t.Errorf("time to first event %s below the server's wait %s", min, first)
	}
	if res.Requests.Total().BytesOut != 0 {
		t.Error("a GET subscription sent a body")
	}
	res = openRun(t, base+"/events?error=1", 2, Options{})
	if res.Endings[EndErrorEvent] != 2 {
		t.Errorf("endings %v: want 2 error_event", res.Endings)
	}
}

// TestTimestampsInOrder checks one request's timestamps against each
// other and against the mock's pacing: whatever the machine's delays, the
// first token cannot come before the mock's wait, nor the last before the
// gaps after it.
func TestTimestampsInOrder(t *testing.T) {
	t.Parallel()
	const ttft, perSecond, tokens = 25 * time.Millisecond, 200, 4
	_, base := mockServer(t, mock.Options{Seed: 5, TimeToFirstToken: ttft, TokensPerSecond: perSecond, OutputTokens: tokens})
	o := Options{URL: base + paths[APIOpenAI], Prompts: Synthetic(1, 1, Lengths{Mean: 8}, Lengths{Mean: 50}), Concurrency: 1, Duration: time.Second}
	if err := o.defaults(); err != nil {
		t.Fatal(err)
	}
	r := &run{o: o, clk: clock.Real(), client: &http.Client{}, res: newResult(o)}
	body, _ := o.Prompts[0].body(APIOpenAI, "m", 50)
	var gaps []time.Duration
	s := Sample{Due: time.Now().Add(-time.Millisecond)}
	r.stream(context.Background(), &s, body, func(d time.Duration) { gaps = append(gaps, d) })
	order := []time.Time{s.Due, s.Sent, s.Head, s.FirstToken, s.LastToken, s.End}
	for i := 1; i < len(order); i++ {
		if order[i].Before(order[i-1]) {
			t.Fatalf("timestamp %d before %d: %v", i, i-1, order)
		}
	}
	gap := time.Second / perSecond
	if s.Ending != EndDone || s.OutputTokens != tokens || s.Events != tokens || len(gaps) != tokens-1 {
		t.Fatalf("sample %+v, %d gaps", s, len(gaps))
	}
	if d := s.FirstToken.Sub(s.Sent); d < ttft {
		t.Errorf("first token %s after the send, before the mock's %s", d, ttft)
	}
	if d := s.LastToken.Sub(s.Sent); d < ttft+(tokens-1)*gap {
		t.Errorf("last token %s after the send, before the mock's pacing allows", d)
	}
	var sum time.Duration
	for _, g := range gaps {
		sum += g
	}
	if sum != s.LastToken.Sub(s.FirstToken) {
		t.Errorf("the gaps sum to %s, not last - first token %s", sum, s.LastToken.Sub(s.FirstToken))
	}
	if tpot, _ := s.TPOT(); tpot != s.LastToken.Sub(s.FirstToken)/(tokens-1) {
		t.Errorf("TPOT %s", tpot)
	}
}

// FuzzStream reads any bytes as a stream of every format: no panic, and
// never more tokens than events.
func FuzzStream(f *testing.F) {
	f.Add([]byte("data: {\"choices\":[{\"delta\":{\"content\":\"hi\"}}]}\n\ndata: [DONE]\n\n"))
	f.Add([]byte("event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"delta\":{\"text\":\"x\"}}\n\nevent: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"))
	f.Add([]byte("data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"a\"}]},\"finishReason\":\"STOP\"}],\"usageMetadata\":{\"candidatesTokenCount\":1}}\n\n"))
	f.Add([]byte("data: {\"error\":{\"message\":\"x\"}}\n\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, api := range []API{APISSE, APIOpenAI, APIAnthropic, APIGemini} {
			r := &streamReader{sse: wire.NewSSEReader(bytes.NewReader(b), 1<<12), dec: newDecoder(api)}
			events, tokens := 0, 0
			for range 10_000 {
				ev, end, err := r.next()
				if err != nil {
					if errors.Is(err, errStreamEnd) && end != EndDone && end != EndTruncated {
						t.Fatalf("%s: end %q", api, end)
					}
					break
				}
				events++
				tokens += ev.tokens
				if ev.done || ev.failed {
					break
				}
			}
			if tokens > events {
				t.Fatalf("%s: %d tokens from %d events", api, tokens, events)
			}
		}
	})
}

// TestLateGeneratorIsInconclusive: a run whose requests left late is not
// judged, by load's rule, even with a failing threshold.
func TestLateGeneratorIsInconclusive(t *testing.T) {
	t.Parallel()
	start := time.Unix(1_700_000_000, 0)
	sched, _ := load.ConstantSchedule(10, 2*time.Second)
	th, err := load.ParseThresholdFlagIn(Metrics, "llm_requests:count>1000")
	if err != nil {
		t.Fatal(err)
	}
	o := Options{URL: "http://127.0.0.1:1/v1/chat/completions", API: APIOpenAI, Schedule: sched, Thresholds: []load.Threshold{th},
		LateAfter: 10 * time.Millisecond, MinOnTime: 0.9}
	res := newResult(o)
	res.Start, res.End = start, start.Add(2*time.Second)
	for i, s := range samples(20, start) {
		if i%2 == 0 {
			s.Sent = s.Due.Add(50 * time.Millisecond) // half of them late
		}
		res.ScheduleLag.Record(outcome.Outcome{Start: s.Due, Latency: s.Sent.Sub(s.Due)})
		res.record(&s, o.Goodput)
	}
	j := res.Judge()
	if j.Result != load.Inconclusive || j.Health.Late != 10 || !strings.Contains(strings.Join(j.Reasons, "\n"), "not judged: threshold llm_requests count>1000") {
		t.Errorf("judgement %s, %d late, reasons %q", j.Result, j.Health.Late, j.Reasons)
	}
}

// TestObserveSeesWhatTheResultRecords: the Observe hook is told of every
// request, the dropped ones too, and a recorder fed from its samples'
// Outcome and TTFTOutcome holds what the Result's own recorders hold.
func TestObserveSeesWhatTheResultRecords(t *testing.T) {
	t.Parallel()
	_, base := mockServer(t, mock.Options{Seed: 1, OutputTokens: 4, TimeToFirstToken: 5 * time.Millisecond,
		Faults: []mock.Fault{{Kind: mock.FaultStatus, Status: 503, Rate: 0.5}}})
	requests, _ := outcome.NewRecorder(outcome.Options{})
	ttft, _ := outcome.NewRecorder(outcome.Options{})
	var mu sync.Mutex
	endings := map[Ending]int{}
	res := openRun(t, base+paths[APIOpenAI], 20, Options{MaxInFlight: 1, Observe: func(s *Sample) {
		requests.Record(s.Outcome())
		if o, ok := s.TTFTOutcome(); ok {
			ttft.Record(o)
		}
		mu.Lock()
		endings[s.Ending]++
		mu.Unlock()
	}})
	for e, n := range res.Endings {
		if int64(endings[e]) != n {
			t.Errorf("Observe saw %d %s, the result %d", endings[e], e, n)
		}
	}
	if len(endings) < 2 {
		t.Errorf("endings %v: want failed requests beside good ones", endings)
	}
	if got, want := requests.Total(), res.Requests.Total(); got.Total != want.Total || got.ByClass != want.ByClass || got.Latency.Count() != want.Latency.Count() {
		t.Errorf("observed requests %+v, the result's %+v", got.ByClass, want.ByClass)
	}
	if got, want := ttft.Total().Latency.Quantile(0.5), res.TTFT.Total().Latency.Quantile(0.5); got != want || ttft.Total().Total != res.TTFT.Total().Total {
		t.Errorf("observed TTFT p50 %v of %d, the result's %v of %d", got, ttft.Total().Total, want, res.TTFT.Total().Total)
	}
}

// TestSampleNamesItsPromptAndAQuotaRefusal: each sample names the prompt
// it sent, so a caller can tell whose request it was, and says when the
// answer was a quota refusal of relia's AI gateway (429 with
// X-Relia-Quota), which a plain 429 is not.
func TestSampleNamesItsPromptAndAQuotaRefusal(t *testing.T) {
	t.Parallel()
	_, base := mockServer(t, mock.Options{Seed: 1, OutputTokens: 4, TimeToFirstToken: time.Millisecond})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req struct{ User string }
		_ = json.NewDecoder(r.Body).Decode(&req)
		switch req.User {
		case "quota":
			w.Header().Set(QuotaHeader, "tokens_per_minute")
			w.WriteHeader(http.StatusTooManyRequests)
		case "limited":
			w.WriteHeader(http.StatusTooManyRequests)
		default:
			http.Redirect(w, r, base+paths[APIOpenAI], http.StatusTemporaryRedirect)
		}
	}))
	t.Cleanup(srv.Close)
	users := []string{"served", "quota", "limited"}
	prompts := Synthetic(1, len(users), Lengths{Mean: 20}, Lengths{Mean: 4})
	for i, u := range users {
		b, _ := json.Marshal(u)
		prompts[i].Params = map[string]json.RawMessage{"user": b}
	}
	var mu sync.Mutex
	seen := map[string][]bool{}
	openRun(t, srv.URL+paths[APIOpenAI], 9, Options{Prompts: prompts, Observe: func(s *Sample) {
		mu.Lock()
		defer mu.Unlock()
		u := users[s.Prompt]
		seen[u] = append(seen[u], s.QuotaRefused)
		if want := u == "served"; (s.Ending == EndDone) != want {
			t.Errorf("%s's request ended %s (status %d)", u, s.Ending, s.Status)
		}
	}})
	for _, u := range users {
		if len(seen[u]) != 3 {
			t.Errorf("%s sent %d requests, want 3 of 9 in turn", u, len(seen[u]))
		}
		for _, q := range seen[u] {
			if q != (u == "quota") {
				t.Errorf("%s's request: QuotaRefused %v", u, q)
			}
		}
	}
}
