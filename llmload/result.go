package llmload

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/relia-dev/relia/load"
	"github.com/relia-dev/relia/outcome"
)

// Metrics are the figures an LLM load test's thresholds may name, in
// k6's syntax ("llm_time_to_first_token: p(95)<500"). Trends of time are
// in milliseconds; llm_output_tokens_per_second is in tokens per second.
var Metrics = map[string]load.MetricKind{
	// Time to first token: from the request's due time (the open model's
	// schedule; the closed model's send) to the first event that carries
	// output.
	"llm_time_to_first_token": load.Trend,
	// Inter-token latency: every gap between two successive events that
	// carry output, over all requests.
	"llm_inter_token_latency": load.Trend,
	// Time per output token after the first, per request: (last token -
	// first token) / (output tokens - 1).
	"llm_time_per_output_token": load.Trend,
	// The request's whole latency: from its due time to the stream's end.
	"llm_request_duration": load.Trend,
	// Output tokens per second of each request: its output tokens over
	// the time from its send to its stream's end.
	"llm_output_tokens_per_second": load.Trend,
	// Output and input tokens of the run: count, or token throughput
	// (rate, per second of the run).
	"llm_output_tokens": load.Counter,
	"llm_input_tokens":  load.Counter,
	// Requests that ended (any ending but dropped): count, or request
	// throughput.
	"llm_requests": load.Counter,
	// Good requests: ended well and met every goodput objective; rate is
	// goodput.
	"llm_goodput": load.Counter,
	// Share of the requests sent that did not end well (error event,
	// truncated, stalled, failing status, no answer).
	"llm_req_failed": load.Rate,
	// How late requests were sent against their schedule, and arrivals
	// dropped at the in-flight cap.
	"schedule_lag":       load.Trend,
	"dropped_iterations": load.Counter,
}

// tokenUnit is how token figures are held in outcome histograms, whose
// values are durations with a microsecond resolution: one token (or one
// token per second) is one millisecond, so a histogram keeps three
// significant digits of them and merges exactly like every other.
const tokenUnit = time.Millisecond

// tokenMax bounds the token figures the histograms hold (a million).
const tokenMax = 1_000_000 * tokenUnit

// Result is what an LLM load test measured. Its recorders are
// outcome.Recorders (one-second buckets, HDR histograms), so the results
// of segments merge exactly (Merge).
type Result struct {
	URL   string
	API   API
	Model string
	// Load is the load model: open or closed.
	Load        load.Model
	Rate        float64
	Concurrency int
	Segment     load.Segment
	// Start and End are when the load started and the last stream ended;
	// Duration is the planned length.
	Start, End time.Time
	Duration   time.Duration
	// Planned is how many requests were due (open model); Dispatched and
	// Dropped how many were sent and dropped at the in-flight cap.
	Planned, Dispatched, Dropped uint64
	Goodput                      Objectives
	Thresholds                   []load.Threshold
	LateAfter                    time.Duration
	MinOnTime                    float64
	// Requests holds one outcome per request: latency from its due time
	// to its stream's end, its class from its ending, bytes in and out.
	Requests *outcome.Recorder
	// TTFT, TPOT: one outcome per request that had a first token (two
	// tokens), latency the figure. ITL: one outcome per gap between two
	// events carrying output.
	TTFT, ITL, TPOT *outcome.Recorder
	// TokensPerSecond holds each request's output tokens per second, and
	// Tokens its output length, both in tokenUnit; Tokens's BytesIn and
	// BytesOut are the output and input tokens themselves, summed exactly
	// per bucket.
	TokensPerSecond, Tokens *outcome.Recorder
	// Good holds the good requests (goodput), latency their latency.
	Good *outcome.Recorder
	// ScheduleLag holds how late each request was sent.
	ScheduleLag *outcome.Recorder
	// Endings counts requests by how they ended.
	Endings map[Ending]int64
	// Expected sums the expected output tokens of the requests that
	// ended well, to set beside the output tokens they got (Delivered).
	Expected, Delivered int64
	Generator           load.GeneratorStats
	// Stopped says why the load ended before its schedule did.
	Stopped string

	mu           sync.Mutex
	outputTokens atomic.Int64
	good         atomic.Int64
}

func newRecorder(max time.Duration) *outcome.Recorder {
	r, _ := outcome.NewRecorder(outcome.Options{MaxLatency: max}) // valid options
	return r
}

func newResult(o Options) *Result {
	r := &Result{URL: o.URL, API: o.API, Model: o.Model, Segment: o.Segment, Goodput: o.Goodput, Thresholds: o.Thresholds,
		LateAfter: o.LateAfter, MinOnTime: o.MinOnTime, Endings: map[Ending]int64{}}
	if r.Segment.Count == 0 {
		r.Segment = load.Whole
	}
	if o.Schedule != nil {
		r.Load, r.Duration, r.Planned = load.Open, o.Schedule.Duration(), r.Segment.Share(o.Schedule.Total())
		if d := o.Schedule.Duration(); d > 0 {
			r.Rate = float64(o.Schedule.Total()) / d.Seconds()
		}
	} else {
		r.Load, r.Duration, r.Concurrency = load.Closed, o.Duration, o.Concurrency
	}
	r.initRecorders()
	return r
}

func (r *Result) initRecorders() {
	r.Requests, r.TTFT, r.ITL, r.TPOT = newRecorder(0), newRecorder(0), newRecorder(0), newRecorder(0)
	r.TokensPerSecond, r.Tokens = newRecorder(tokenMax), newRecorder(tokenMax)
	r.Good, r.ScheduleLag = newRecorder(0), newRecorder(0)
}

func (r *Result) addEnding(e Ending) {
	r.mu.Lock()
	r.Endings[e]++
	r.mu.Unlock()
}

// Good reports whether a request met every objective.
func (o Objectives) Good(s *Sample) bool {
	if s.Ending != EndDone {
		return false
	}
	if ttft, ok := s.TTFT(); o.TTFT > 0 && (!ok || ttft > o.TTFT) {
		return false
	}
	if tpot, ok := s.TPOT(); o.TPOT > 0 && ok && tpot > o.TPOT {
		return false
	}
	if o.ITL > 0 && s.MaxGap > o.ITL {
		return false
	}
	return o.E2E <= 0 || s.End.Sub(s.Due) <= o.E2E
}

// Outcome is the request as Result.Requests records it: latency from its
// due time to its stream's end, class from its ending; a dropped arrival
// has no latency.
func (s *Sample) Outcome() outcome.Outcome {
	if s.Ending == EndDropped {
		return outcome.Outcome{Start: s.Due, Class: outcome.ClassDropped}
	}
	return outcome.Outcome{Start: s.Due, Latency: s.End.Sub(s.Due), ServiceTime: max(s.End.Sub(s.Sent), 1), Status: s.Status,
		Class: s.Class, BytesIn: s.BytesIn, BytesOut: s.BytesOut}
}

// TTFTOutcome is the request's time to first token as Result.TTFT
// records it, false when no token came.
func (s *Sample) TTFTOutcome() (outcome.Outcome, bool) {
	ttft, ok := s.TTFT()
	if !ok {
		return outcome.Outcome{}, false
	}
	return outcome.Outcome{Start: s.Due, Latency: ttft, ServiceTime: max(s.FirstToken.Sub(s.Sent), 1)}, true
}

// record adds one request's sample.
func (r *Result) record(s *Sample, obj Objectives) {
	service := max(s.End.Sub(s.Sent), 1)
	r.Requests.Record(s.Outcome())
	if o, ok := s.TTFTOutcome(); ok {
		r.TTFT.Record(o)
	}
	if tpot, ok := s.TPOT(); ok {
		r.TPOT.Record(outcome.Outcome{Start: s.Due, Latency: tpot})
	}
	if s.OutputTokens > 0 || s.InputTokens > 0 {
		r.Tokens.Record(outcome.Outcome{Start: s.Due, Latency: time.Duration(s.OutputTokens) * tokenUnit,
			BytesIn: int64(s.OutputTokens), BytesOut: int64(s.InputTokens)})
	}
	if s.OutputTokens > 0 {
		tps := float64(s.OutputTokens) / service.Seconds()
		r.TokensPerSecond.Record(outcome.Outcome{Start: s.Due, Latency: time.Duration(tps * float64(tokenUnit))})
	}
	r.outputTokens.Add(int64(s.OutputTokens))
	good := obj.Good(s)
	if good {
		r.Good.Record(outcome.Outcome{Start: s.Due, Latency: s.End.Sub(s.Due)})
		r.good.Add(1)
	}
	r.mu.Lock()
	r.Endings[s.Ending]++
	if s.Ending == EndDone && s.Expected > 0 {
		r.Expected += int64(s.Expected)
		r.Delivered += int64(s.OutputTokens)
	}
	r.mu.Unlock()
}

// Merge returns the result of the segments rs of one test run side by
// side, as one process would have measured it: recorders merged bucket by
// bucket, counts added, the span from the first start to the last end.
func Merge(rs ...*Result) (*Result, error) {
	if len(rs) == 0 {
		return nil, errors.New("merging LLM load results: none given")
	}
	out := &Result{}
	*out = Result{URL: rs[0].URL, API: rs[0].API, Model: rs[0].Model, Load: rs[0].Load, Rate: rs[0].Rate,
		Duration: rs[0].Duration, Goodput: rs[0].Goodput, Thresholds: rs[0].Thresholds, LateAfter: rs[0].LateAfter,
		MinOnTime: rs[0].MinOnTime, Endings: map[Ending]int64{}, Segment: load.Whole, Start: rs[0].Start, End: rs[0].End,
		Generator: load.GeneratorStats{HasCPU: true, HasStall: true}}
	out.initRecorders()
	seen := map[int]bool{}
	for i, r := range rs {
		if r.URL != out.URL || r.Load != out.Load || r.Duration != out.Duration {
			return nil, fmt.Errorf("merging LLM load results: result %d is of another test (%s %s %s, want %s %s %s)",
				i+1, r.URL, r.Load, r.Duration, out.URL, out.Load, out.Duration)
		}
		switch {
		case r.Segment.Count != rs[0].Segment.Count:
			return nil, fmt.Errorf("merging LLM load results: segments %s and %s split the test differently", r.Segment, rs[0].Segment)
		case seen[r.Segment.Index]:
			return nil, fmt.Errorf("merging LLM load results: segment %s appears twice", r.Segment)
		}
		seen[r.Segment.Index] = true
		for _, p := range [][2]*outcome.Recorder{{out.Requests, r.Requests}, {out.TTFT, r.TTFT}, {out.ITL, r.ITL},
			{out.TPOT, r.TPOT}, {out.TokensPerSecond, r.TokensPerSecond}, {out.Tokens, r.Tokens},
			{out.Good, r.Good}, {out.ScheduleLag, r.ScheduleLag}} {
			if err := p[0].Merge(p[1]); err != nil {
				return nil, fmt.Errorf("merging LLM load results: result %d: %w", i+1, err)
			}
		}
		if r.Start.Before(out.Start) {
			out.Start = r.Start
		}
		if r.End.After(out.End) {
			out.End = r.End
		}
		out.Planned += r.Planned
		out.Dispatched += r.Dispatched
		out.Dropped += r.Dropped
		out.Concurrency += r.Concurrency
		out.Expected += r.Expected
		out.Delivered += r.Delivered
		for e, n := range r.Endings {
			out.Endings[e] += n
		}
		out.Generator.Merge(r.Generator)
		if r.Stopped != "" {
			out.Stopped = r.Stopped
		}
	}
	return out, nil
}

// span is the time the run's rates divide by.
func (r *Result) span() time.Duration { return r.End.Sub(r.Start) }

// Value computes a threshold's metric over the run; false when it has no
// data. Every output (summary, JSON, HTML) reads its figures through it.
func (r *Result) Value(th load.Threshold) (float64, bool) {
	counter := func(n int64) (float64, bool) {
		if th.Aggregation == "rate" {
			if r.span() <= 0 {
				return 0, false
			}
			return float64(n) / r.span().Seconds(), true
		}
		return float64(n), true
	}
	trend := func(rec *outcome.Recorder, unit time.Duration) (float64, bool) {
		h := rec.Total().Latency
		if h.Count() == 0 {
			return 0, false
		}
		return float64(th.Trend(h)) / float64(unit), true
	}
	switch th.Metric {
	case "llm_time_to_first_token":
		return trend(r.TTFT, time.Millisecond)
	case "llm_inter_token_latency":
		return trend(r.ITL, time.Millisecond)
	case "llm_time_per_output_token":
		return trend(r.TPOT, time.Millisecond)
	case "llm_request_duration":
		return trend(r.Requests, time.Millisecond)
	case "llm_output_tokens_per_second":
		return trend(r.TokensPerSecond, tokenUnit)
	case "schedule_lag":
		return trend(r.ScheduleLag, time.Millisecond)
	case "llm_output_tokens":
		return counter(r.Tokens.Total().BytesIn)
	case "llm_input_tokens":
		return counter(r.Tokens.Total().BytesOut)
	case "llm_requests":
		return counter(r.Requests.Total().Sent())
	case "llm_goodput":
		return counter(r.Good.Total().Total)
	case "dropped_iterations":
		return counter(r.Requests.Total().ByClass[outcome.ClassDropped])
	case "llm_req_failed":
		sum := r.Requests.Total()
		if sum.Sent() == 0 {
			return 0, false
		}
		return float64(sum.Sent()-sum.ByClass[outcome.ClassOK]) / float64(sum.Sent()), true
	}
	return 0, false
}

// FormatValue writes a metric's value in its unit.
func FormatValue(th load.Threshold, v float64) string {
	if th.Metric == "llm_output_tokens_per_second" {
		return fmt.Sprintf("%.2f tok/s", v)
	}
	return load.FormatValueIn(Metrics, th, v)
}

// Evaluate judges every threshold over the whole run.
func (r *Result) Evaluate() []load.ThresholdResult {
	return load.EvaluateThresholds(r.Thresholds, r.Value)
}

// Health is the generator's judgement of itself, by relia load's rule
// (load.Health): an open-model run that sent too many requests late is
// inconclusive.
func (r *Result) Health() load.Health {
	return load.JudgeHealth(r.Load, r.ScheduleLag.Total(), r.Endings[EndDropped], r.LateAfter, r.MinOnTime, r.Generator)
}

// Judgement is a run's result, with why.
type Judgement struct {
	Result     string
	Health     load.Health
	Thresholds []load.ThresholdResult
	Reasons    []string
}

// Judge judges the run: the generator first (a run it could not keep on
// schedule is inconclusive), then the thresholds.
func (r *Result) Judge() Judgement {
	j := Judgement{Result: load.Passed, Health: r.Health(), Thresholds: r.Evaluate()}
	var failed []string
	for _, tr := range j.Thresholds {
		if !tr.Passed {
			failed = append(failed, fmt.Sprintf("threshold %s failed: %s", tr, FormatValue(tr.Threshold, tr.Value)))
		}
	}
	if !j.Health.Conclusive {
		j.Result = load.Inconclusive
		j.Reasons = append(j.Reasons, j.Health.Reason+": "+load.LoadAdvice)
		for _, f := range failed {
			j.Reasons = append(j.Reasons, "not judged: "+f)
		}
		return j
	}
	if len(failed) > 0 {
		j.Result, j.Reasons = load.Failed, failed
	}
	return j
}

// Figure is one headline figure of a run, as every output shows it.
type Figure struct {
	Name  string
	Value string
}

// trendRow is one line of the summary's table.
type trendRow struct {
	name   string
	metric string
}

var trendRows = []trendRow{
	{"time to first token", "llm_time_to_first_token"},
	{"inter-token latency", "llm_inter_token_latency"},
	{"time per output token", "llm_time_per_output_token"},
	{"request latency", "llm_request_duration"},
	{"output tokens/s per request", "llm_output_tokens_per_second"},
	{"schedule lag", "schedule_lag"},
}

// trendValue is one aggregate of a trend metric, formatted.
func (r *Result) trendValue(metric, agg string, p float64) string {
	th := load.Threshold{Metric: metric, Aggregation: agg, Percentile: p}
	v, ok := r.Value(th)
	if !ok {
		return "-"
	}
	return FormatValue(th, v)
}

// Throughput returns the run's request throughput, output token
// throughput and goodput, per second (false when the run has no span).
func (r *Result) Throughput() (requests, tokens, goodput float64, ok bool) {
	rate := func(m string) float64 {
		v, _ := r.Value(load.Threshold{Metric: m, Aggregation: "rate"})
		return v
	}
	if r.span() <= 0 {
		return 0, 0, 0, false
	}
	return rate("llm_requests"), rate("llm_output_tokens"), rate("llm_goodput"), true
}

// WriteSummary writes the run's summary: requests by ending, token
// counts, the trends' percentiles, throughput and goodput, the
// generator's health and the judgement.
func (r *Result) WriteSummary(w io.Writer, j Judgement) error {
	var b strings.Builder
	model := fmt.Sprintf("%.4g requests/s", r.Rate)
	if r.Load == load.Closed {
		model = fmt.Sprintf("%d concurrent", r.Concurrency)
	}
	fmt.Fprintf(&b, "llm load %s (%s, %s): %s, ran %s of %s\n", r.URL, r.API, model, r.Load, outcome.FormatDuration(r.span()), r.Duration)
	if r.Stopped != "" {
		fmt.Fprintf(&b, "stopped early: %s\n", r.Stopped)
	}
	var ends []string
	for _, e := range Endings {
		if n := r.Endings[e]; n > 0 || e == EndDone {
			ends = append(ends, fmt.Sprintf("%d %s", n, e))
		}
	}
	tok := r.Tokens.Total()
	fmt.Fprintf(&b, "requests: %s\n", strings.Join(ends, ", "))
	fmt.Fprintf(&b, "tokens: %d output, %d input", tok.BytesIn, tok.BytesOut)
	if r.Expected > 0 {
		fmt.Fprintf(&b, "; the requests that ended well expected %d, %d came", r.Expected, r.Delivered)
	}
	b.WriteString("\n\n")
	tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "\tavg\tp50\tp90\tp99\tmax\t\n")
	for _, row := range trendRows {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t\n", row.name, r.trendValue(row.metric, "avg", 0), r.trendValue(row.metric, "p", 50),
			r.trendValue(row.metric, "p", 90), r.trendValue(row.metric, "p", 99), r.trendValue(row.metric, "max", 0))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if req, toks, good, ok := r.Throughput(); ok {
		fmt.Fprintf(&b, "\nthroughput: %.2f requests/s, %.1f output tokens/s; goodput %.2f requests/s (%s)\n", req, toks, good, r.Goodput)
	}
	fmt.Fprintf(&b, "generator: %s\n", j.Health.Text())
	load.WriteThresholds(&b, j.Thresholds, FormatValue)
	fmt.Fprintf(&b, "result: %s\n", j.Result)
	for _, reason := range j.Reasons {
		fmt.Fprintf(&b, "  %s\n", reason)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// String writes the objectives as --goodput takes them.
func (o Objectives) String() string {
	var parts []string
	for _, p := range []struct {
		name string
		d    time.Duration
	}{{"ttft", o.TTFT}, {"tpot", o.TPOT}, {"itl", o.ITL}, {"e2e", o.E2E}} {
		if p.d > 0 {
			parts = append(parts, p.name+":"+p.d.String())
		}
	}
	if len(parts) == 0 {
		return "every request that ended well"
	}
	return strings.Join(parts, ",")
}

// ParseObjectives reads goodput objectives: "ttft:500ms,tpot:50ms" (ttft,
// tpot, itl and e2e, each a duration).
func ParseObjectives(s string) (Objectives, error) {
	var o Objectives
	if strings.TrimSpace(s) == "" {
		return o, nil
	}
	for _, part := range strings.Split(s, ",") {
		name, val, ok := strings.Cut(strings.TrimSpace(part), ":")
		d, err := time.ParseDuration(strings.TrimSpace(val))
		if !ok || err != nil || d <= 0 {
			return o, fmt.Errorf("goodput %q: want name:duration, e.g. ttft:500ms", part)
		}
		var dst *time.Duration
		switch strings.TrimSpace(name) {
		case "ttft":
			dst = &o.TTFT
		case "tpot":
			dst = &o.TPOT
		case "itl":
			dst = &o.ITL
		case "e2e":
			dst = &o.E2E
		default:
			return o, fmt.Errorf("goodput %q: %q is not an objective (ttft, tpot, itl, e2e)", part, name)
		}
		if *dst != 0 {
			return o, fmt.Errorf("goodput %q: %s given twice", s, name)
		}
		*dst = d
	}
	return o, nil
}

// ResultSchema is the "schema" of an LLM load results file.
const ResultSchema = "relia/llm/v1"

type resultJSON struct {
	Schema      string           `json:"schema"`
	URL         string           `json:"url"`
	API         API              `json:"api"`
	Model       string           `json:"model"`
	Load        load.Model       `json:"load"`
	Rate        float64          `json:"rate,omitempty"`
	Concurrency int              `json:"concurrency,omitempty"`
	Segment     string           `json:"segment"`
	Start       time.Time        `json:"start"`
	End         time.Time        `json:"end"`
	DurationNS  int64            `json:"duration_ns"`
	Planned     uint64           `json:"planned"`
	Dispatched  uint64           `json:"dispatched"`
	Dropped     uint64           `json:"dropped"`
	Goodput     Objectives       `json:"goodput"`
	LateAfterNS int64            `json:"late_after_ns"`
	MinOnTime   float64          `json:"min_on_time"`
	Endings     map[Ending]int64 `json:"endings"`
	Expected    int64            `json:"expected_output_tokens"`
	Delivered   int64            `json:"delivered_output_tokens"`
	Stopped     string           `json:"stopped,omitempty"`
	// Figures are the headline figures, as the summary shows them.
	Figures    figuresJSON     `json:"figures"`
	Result     string          `json:"result"`
	Reasons    []string        `json:"reasons"`
	Health     load.Health     `json:"health"`
	Thresholds []thresholdJSON `json:"thresholds"`
	Generator  generatorJSON   `json:"generator"`

	Requests        *outcome.Recorder `json:"requests"`
	TTFT            *outcome.Recorder `json:"time_to_first_token"`
	ITL             *outcome.Recorder `json:"inter_token_latency"`
	TPOT            *outcome.Recorder `json:"time_per_output_token"`
	TokensPerSecond *outcome.Recorder `json:"output_tokens_per_second_milli"`
	Tokens          *outcome.Recorder `json:"tokens_milli"`
	Good            *outcome.Recorder `json:"good"`
	ScheduleLag     *outcome.Recorder `json:"schedule_lag"`
}

type figuresJSON struct {
	Requests         int64   `json:"requests"`
	OutputTokens     int64   `json:"output_tokens"`
	InputTokens      int64   `json:"input_tokens"`
	RequestsPerSec   float64 `json:"requests_per_second"`
	OutputTokensPerS float64 `json:"output_tokens_per_second"`
	GoodputPerSec    float64 `json:"goodput_per_second"`
	Good             int64   `json:"good"`
	TTFTp50MS        float64 `json:"ttft_p50_ms"`
	TTFTp99MS        float64 `json:"ttft_p99_ms"`
	ITLp50MS         float64 `json:"itl_p50_ms"`
	TPOTp50MS        float64 `json:"tpot_p50_ms"`
}

type thresholdJSON struct {
	Threshold string  `json:"threshold"`
	Value     float64 `json:"value"`
	NoData    bool    `json:"no_data,omitempty"`
	Passed    bool    `json:"passed"`
}

type generatorJSON struct {
	CPUNS        int64               `json:"cpu_ns"`
	WallNS       int64               `json:"wall_ns"`
	Cores        int                 `json:"cores"`
	HasCPU       bool                `json:"has_cpu"`
	StallNS      int64               `json:"stall_ns"`
	HasStall     bool                `json:"has_stall"`
	PeakInFlight int                 `json:"peak_in_flight"`
	MaxInFlight  int                 `json:"max_in_flight"`
	Samples      []load.HealthSample `json:"samples"`
}

// figure is one metric's value for the JSON figures, 0 without data.
func (r *Result) figure(metric, agg string, p float64) float64 {
	v, _ := r.Value(load.Threshold{Metric: metric, Aggregation: agg, Percentile: p})
	return v
}

// MarshalJSON writes the result in the relia/llm/v1 schema, with its
// judgement; recorders are in relia/outcome/v1.
func (r *Result) MarshalJSON() ([]byte, error) {
	j := r.Judge()
	g := r.Generator
	doc := resultJSON{Schema: ResultSchema, URL: r.URL, API: r.API, Model: r.Model, Load: r.Load, Rate: r.Rate,
		Concurrency: r.Concurrency, Segment: r.Segment.String(), Start: r.Start, End: r.End, DurationNS: int64(r.Duration),
		Planned: r.Planned, Dispatched: r.Dispatched, Dropped: r.Dropped, Goodput: r.Goodput, LateAfterNS: int64(r.LateAfter),
		MinOnTime: r.MinOnTime, Endings: r.Endings, Expected: r.Expected, Delivered: r.Delivered, Stopped: r.Stopped,
		Result: j.Result, Reasons: j.Reasons, Health: j.Health, Thresholds: []thresholdJSON{},
		Generator: generatorJSON{CPUNS: int64(g.CPU), WallNS: int64(g.Wall), Cores: g.Cores, HasCPU: g.HasCPU, StallNS: int64(g.Stall),
			HasStall: g.HasStall, PeakInFlight: g.PeakInFlight, MaxInFlight: g.MaxInFlight, Samples: g.Samples},
		Requests: r.Requests, TTFT: r.TTFT, ITL: r.ITL, TPOT: r.TPOT, TokensPerSecond: r.TokensPerSecond, Tokens: r.Tokens,
		Good: r.Good, ScheduleLag: r.ScheduleLag}
	req, toks, good, _ := r.Throughput()
	doc.Figures = figuresJSON{Requests: r.Requests.Total().Sent(), OutputTokens: r.Tokens.Total().BytesIn, InputTokens: r.Tokens.Total().BytesOut,
		RequestsPerSec: req, OutputTokensPerS: toks, GoodputPerSec: good, Good: r.Good.Total().Total,
		TTFTp50MS: r.figure("llm_time_to_first_token", "p", 50), TTFTp99MS: r.figure("llm_time_to_first_token", "p", 99),
		ITLp50MS: r.figure("llm_inter_token_latency", "p", 50), TPOTp50MS: r.figure("llm_time_per_output_token", "p", 50)}
	if doc.Reasons == nil {
		doc.Reasons = []string{}
	}
	if doc.Generator.Samples == nil {
		doc.Generator.Samples = []load.HealthSample{}
	}
	for _, tr := range j.Thresholds {
		doc.Thresholds = append(doc.Thresholds, thresholdJSON{Threshold: tr.String(), Value: tr.Value, NoData: tr.NoData, Passed: tr.Passed})
	}
	return json.Marshal(doc)
}

// UnmarshalJSON reads a result written by MarshalJSON; thresholds are
// read back from their text.
func (r *Result) UnmarshalJSON(b []byte) error {
	var doc resultJSON
	if err := json.Unmarshal(b, &doc); err != nil {
		return err
	}
	if doc.Schema != ResultSchema {
		return fmt.Errorf("schema %q: want %s", doc.Schema, ResultSchema)
	}
	seg, err := load.ParseSegment(doc.Segment)
	if err != nil {
		return err
	}
	*r = Result{URL: doc.URL, API: doc.API, Model: doc.Model, Load: doc.Load, Rate: doc.Rate, Concurrency: doc.Concurrency,
		Segment: seg, Start: doc.Start, End: doc.End, Duration: time.Duration(doc.DurationNS), Planned: doc.Planned,
		Dispatched: doc.Dispatched, Dropped: doc.Dropped, Goodput: doc.Goodput, LateAfter: time.Duration(doc.LateAfterNS),
		MinOnTime: doc.MinOnTime, Endings: doc.Endings, Expected: doc.Expected, Delivered: doc.Delivered, Stopped: doc.Stopped,
		Requests: doc.Requests, TTFT: doc.TTFT, ITL: doc.ITL, TPOT: doc.TPOT, TokensPerSecond: doc.TokensPerSecond,
		Tokens: doc.Tokens, Good: doc.Good, ScheduleLag: doc.ScheduleLag,
		Generator: load.GeneratorStats{CPU: time.Duration(doc.Generator.CPUNS), Wall: time.Duration(doc.Generator.WallNS),
			Cores: doc.Generator.Cores, HasCPU: doc.Generator.HasCPU, Stall: time.Duration(doc.Generator.StallNS),
			HasStall: doc.Generator.HasStall, PeakInFlight: doc.Generator.PeakInFlight, MaxInFlight: doc.Generator.MaxInFlight,
			Samples: doc.Generator.Samples}}
	if r.Endings == nil {
		r.Endings = map[Ending]int64{}
	}
	for _, rec := range []**outcome.Recorder{&r.Requests, &r.TTFT, &r.ITL, &r.TPOT, &r.Good, &r.ScheduleLag} {
		if *rec == nil {
			*rec = newRecorder(0)
		}
	}
	for _, rec := range []**outcome.Recorder{&r.TokensPerSecond, &r.Tokens} {
		if *rec == nil {
			*rec = newRecorder(tokenMax)
		}
	}
	for _, t := range doc.Thresholds {
		th, err := load.ParseThresholdFlagIn(Metrics, thresholdFlag(t.Threshold))
		if err != nil {
			return fmt.Errorf("reading threshold %q: %w", t.Threshold, err)
		}
		r.Thresholds = append(r.Thresholds, th)
	}
	return nil
}

// thresholdFlag turns a ThresholdResult's text ("metric expr") into the
// flag form ("metric:expr").
func thresholdFlag(s string) string {
	if i := strings.IndexByte(s, ' '); i >= 0 {
		return s[:i] + ":" + s[i+1:]
	}
	return s
}
