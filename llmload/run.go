package llmload

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/relia-dev/relia/ai"
	"github.com/relia-dev/relia/ai/wire"
	"github.com/relia-dev/relia/clock"
	"github.com/relia-dev/relia/load"
	"github.com/relia-dev/relia/outcome"
)

// Defaults of Options.
const (
	DefaultIdleTimeout = 30 * time.Second
	DefaultMaxInFlight = 10_000
	DefaultMaxTokens   = 128
	// DefaultInputTokens is the mean length of synthetic prompts.
	DefaultInputTokens = 128
	// DefaultGracefulStop is how long streams still open when the
	// schedule ends may take to finish.
	DefaultGracefulStop = 30 * time.Second
)

// Options configure an LLM load test: streaming requests to URL, open
// model (Schedule) or closed model (Concurrency for Duration).
type Options struct {
	// URL is where requests go, e.g.
	// http://127.0.0.1:9700/v1/chat/completions.
	URL string
	// API is the stream's format; empty means DetectAPI of the URL's path.
	API API
	// Model is the model every request names unless its prompt names
	// another.
	Model string
	// Prompts are the requests, used in turn (request n takes prompt n
	// modulo their count, so segments of one test send what one process
	// would).
	Prompts []Prompt
	// MaxTokens caps each answer when the prompt sets no cap; default
	// DefaultMaxTokens.
	MaxTokens int
	// Method is the requests' method: default POST with the prompt as a
	// chat request body, or GET without a body for APISSE (a stream a
	// client subscribes to). With APISSE and POST the body is OpenAI's
	// chat request.
	Method string
	// Header is added to every request (authentication: Authorization,
	// x-api-key, anthropic-version, x-goog-api-key).
	Header http.Header
	// Schedule, when set, runs the open model: request n is due at
	// Start+Schedule.Arrival(n) whatever the server does, and every
	// figure is measured from that due time.
	Schedule *load.Schedule
	// Concurrency and Duration, when Schedule is nil, run the closed
	// model: Concurrency users, each sending its next request when the
	// last one ended.
	Concurrency int
	Duration    time.Duration
	// Segment is the share of the test this process runs (--segment).
	Segment load.Segment
	// MaxInFlight caps the open model's requests in flight; arrivals
	// over it are dropped and counted. Default 10,000.
	MaxInFlight int
	// IdleTimeout ends a stream that sends nothing for this long (before
	// its answer, its first event, or between two events) as stalled.
	// Default 30s.
	IdleTimeout time.Duration
	// GracefulStop is how long streams still open when the schedule ends
	// may take; default 30s. Streams cut then end as failed (canceled).
	GracefulStop time.Duration
	// Goodput is what a request must meet to count as good.
	Goodput Objectives
	// Thresholds judge the run (see Metrics).
	Thresholds []load.Threshold
	// LateAfter and MinOnTime judge the generator itself, as relia load
	// does (load.Health); zero means load's defaults, a negative
	// MinOnTime turns the check off.
	LateAfter time.Duration
	MinOnTime float64
	// Transport sends the requests; nil means relia's own HTTP/1.1 client
	// (ai.UpstreamTransport), which frames every answer with
	// internal/h1.
	Transport http.RoundTripper
	// Progress, when set, is called once a second from a goroutine of the
	// run's own.
	Progress func(Progress)
	// Clock is the time source; nil means the real clock.
	Clock clock.Clock
	// Observe, when set, is told of every request once the Result holds
	// it (a dropped arrival too, as a sample of Ending EndDropped), from
	// the request's goroutine: an experiment feeds its own recorders with
	// the same figures (Sample.Outcome, Sample.TTFTOutcome).
	Observe func(*Sample)
}

// drainFor is how long a stream that ended well may take to end its body.
const drainFor = 100 * time.Millisecond

// Progress is a snapshot of a run for a progress line.
type Progress struct {
	Elapsed, Duration      time.Duration
	Done, InFlight, Tokens int64
	Good                   int64
}

// Objectives are the per-request objectives of goodput; a zero field is
// not checked. A request is good when its stream ended well (EndDone)
// and it met every objective set.
type Objectives struct {
	// TTFT bounds the time to first token.
	TTFT time.Duration `json:"ttft_ns,omitempty"`
	// TPOT bounds the time per output token.
	TPOT time.Duration `json:"tpot_ns,omitempty"`
	// ITL bounds the longest gap between two of the request's tokens.
	ITL time.Duration `json:"itl_ns,omitempty"`
	// E2E bounds the request's whole latency.
	E2E time.Duration `json:"e2e_ns,omitempty"`
}

// Run sends the test's requests and returns what it measured. Cancelling
// ctx stops the load early; the Result then says so in Stopped.
func Run(ctx context.Context, o Options) (*Result, error) {
	if err := o.defaults(); err != nil {
		return nil, err
	}
	bodies := make([][]byte, len(o.Prompts))
	for i := range o.Prompts {
		b, err := o.Prompts[i].body(o.API, o.Model, o.MaxTokens)
		if err != nil {
			return nil, fmt.Errorf("llm load: prompt %d: %w", i+1, err)
		}
		bodies[i] = b
	}
	r := &run{o: o, clk: clock.OrReal(o.Clock), bodies: bodies, res: newResult(o)}
	if r.o.Transport == nil {
		conns := o.MaxInFlight
		if o.Schedule == nil {
			conns = o.Concurrency
		}
		// A stream's events are small: 4 KiB to start with (it grows for
		// a larger head) keeps thousands of open streams light.
		r.o.Transport = &ai.UpstreamTransport{MaxConns: conns + 1, ReadBuffer: 4 << 10}
	}
	r.client = &http.Client{Transport: r.o.Transport}
	return r.run(ctx), nil
}

func (o *Options) defaults() error {
	u, err := url.Parse(o.URL)
	switch {
	case o.URL == "":
		return errors.New("llm load: no URL given")
	case err != nil || (u.Scheme != "http" && u.Scheme != "https" && u.Scheme != "ws" && u.Scheme != "wss") || u.Host == "":
		return fmt.Errorf("llm load: URL %q: want http://, https://, ws:// or wss:// and a host", o.URL)
	case len(o.Prompts) == 0:
		return errors.New("llm load: no prompts")
	case o.Schedule == nil && (o.Concurrency <= 0 || o.Duration <= 0):
		return errors.New("llm load: give a schedule (open model) or a concurrency and a duration (closed model)")
	case o.MaxInFlight < 0, o.IdleTimeout < 0, o.GracefulStop < 0, o.LateAfter < 0, o.MaxTokens < 0:
		return errors.New("llm load: max in flight, idle timeout, graceful stop, late after and max tokens may not be negative")
	case o.Goodput.TTFT < 0, o.Goodput.TPOT < 0, o.Goodput.ITL < 0, o.Goodput.E2E < 0:
		return errors.New("llm load: goodput objectives may not be negative")
	}
	if o.Segment.Count == 0 {
		o.Segment = load.Whole
	}
	if err := o.Segment.Validate(); err != nil {
		return fmt.Errorf("llm load: %w", err)
	}
	if o.API == "" {
		o.API = DetectAPI(u.Path)
		if u.Scheme == "ws" || u.Scheme == "wss" {
			o.API = APIWebSocket
		}
	}
	if (o.API == APIWebSocket) != (u.Scheme == "ws" || u.Scheme == "wss") {
		return fmt.Errorf("llm load: URL %q: WebSocket streams, and only they, take ws:// or wss://", o.URL)
	}
	if _, err := ParseAPI(string(o.API)); err != nil {
		return fmt.Errorf("llm load: %w", err)
	}
	switch o.Method {
	case "":
		o.Method = http.MethodPost
		if o.API == APISSE {
			o.Method = http.MethodGet
		}
	case http.MethodGet, http.MethodPost, http.MethodPut:
	default:
		return fmt.Errorf("llm load: method %q: want GET, POST or PUT", o.Method)
	}
	if o.MaxInFlight == 0 {
		o.MaxInFlight = DefaultMaxInFlight
	}
	if o.IdleTimeout == 0 {
		o.IdleTimeout = DefaultIdleTimeout
	}
	if o.GracefulStop == 0 {
		o.GracefulStop = DefaultGracefulStop
	}
	if o.MaxTokens == 0 {
		o.MaxTokens = DefaultMaxTokens
	}
	if o.LateAfter == 0 {
		o.LateAfter = load.DefaultLateAfter
	}
	if o.MinOnTime == 0 {
		o.MinOnTime = load.DefaultMinOnTime
	}
	for _, th := range o.Thresholds {
		if _, ok := Metrics[th.Metric]; !ok {
			return fmt.Errorf("llm load: threshold on %s: not an LLM load metric", th.Metric)
		}
		if th.Window > 0 || th.AbortOnFail || len(th.Tags) > 0 {
			return fmt.Errorf("llm load: threshold %s %s: tags, windows and abortOnFail are not supported; the run is judged as a whole", load.ThresholdRef(th), th.Expr)
		}
	}
	return nil
}

// run is one test's state.
type run struct {
	o      Options
	clk    clock.Clock
	client *http.Client
	bodies [][]byte
	res    *Result

	seq      atomic.Uint64 // the closed model's requests
	inFlight atomic.Int64
	peak     atomic.Int64
	done     atomic.Int64
}

func (r *run) run(ctx context.Context) *Result {
	meter := load.NewGeneratorMeter()
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	// Streams get a context of their own, cut GracefulStop after the
	// schedule ends or at once when ctx ends.
	streamCtx, cutStreams := context.WithCancel(context.WithoutCancel(ctx))
	defer cutStreams()
	stopCut := context.AfterFunc(ctx, cutStreams)
	defer stopCut()
	start := r.clk.Now()
	// On the wall clock alone, as the result's JSON keeps it: spans and
	// rates then come out the same here as from the file (load.Test.Run).
	r.res.Start = start.Round(0)
	sampleCtx, stopSampler := context.WithCancel(context.Background())
	var bg sync.WaitGroup
	bg.Add(1)
	go func() { defer bg.Done(); r.sample(sampleCtx, meter) }() // ends with sampleCtx
	var graceTimer clock.Timer
	if r.o.Schedule != nil {
		e := &load.OpenExecutor{Schedule: r.o.Schedule, Segment: r.o.Segment, MaxInFlight: r.o.MaxInFlight, Clock: r.clk,
			Do: func(_ context.Context, a load.Arrival) { r.send(streamCtx, a.N, a.Due) },
			Drop: func(a load.Arrival) {
				s := Sample{Due: a.Due, Ending: EndDropped, Class: outcome.ClassDropped, Prompt: int(a.N % uint64(len(r.bodies)))}
				r.res.Requests.Record(s.Outcome())
				r.res.addEnding(EndDropped)
				if r.o.Observe != nil {
					r.o.Observe(&s)
				}
			}}
		// The schedule's end starts the graceful stop's count.
		graceTimer = r.clk.AfterFunc(r.o.Schedule.Duration()+r.o.GracefulStop, cutStreams)
		st := e.Run(runCtx, start)
		r.res.Dispatched, r.res.Dropped = st.Dispatched, st.Dropped
	} else {
		prof, err := load.ConstantVUs(r.o.Concurrency, r.o.Duration)
		if err != nil { // checked by defaults
			panic(err)
		}
		graceTimer = r.clk.AfterFunc(r.o.Duration+r.o.GracefulStop, cutStreams)
		e := &load.ClosedExecutor{Profile: prof, Segment: r.o.Segment, Clock: r.clk, GracefulStop: r.o.GracefulStop,
			Iterate: func(_ context.Context, _ int) {
				n := r.seq.Add(1) - 1
				n = n*uint64(r.o.Segment.Count) + uint64(r.o.Segment.Index)
				r.send(streamCtx, n, r.clk.Now())
			}}
		st := e.Run(runCtx, start)
		r.res.Dispatched = st.Iterations
	}
	graceTimer.Stop()
	r.res.End = r.clk.Now().Round(0)
	if ctx.Err() != nil {
		r.res.Stopped = "interrupted"
	}
	stopSampler()
	bg.Wait()
	g := meter.Stats()
	g.PeakInFlight, g.MaxInFlight = int(r.peak.Load()), r.o.MaxInFlight
	g.Samples = r.res.Generator.Samples
	r.res.Generator = g
	return r.res
}

// sample reads the generator's CPU figures and reports progress once a
// second.
func (r *run) sample(ctx context.Context, meter *load.GeneratorMeter) {
	for n := 1; ; n++ {
		at := r.res.Start.Add(time.Duration(n) * time.Second)
		if clock.Sleep(ctx, r.clk, at.Sub(r.clk.Now())) != nil {
			return
		}
		r.res.Generator.Samples = append(r.res.Generator.Samples, meter.Sample(at))
		if r.o.Progress != nil {
			r.o.Progress(Progress{Elapsed: time.Duration(n) * time.Second, Duration: r.res.Duration,
				Done: r.done.Load(), InFlight: r.inFlight.Load(), Tokens: r.res.outputTokens.Load(), Good: r.res.good.Load()})
		}
	}
}

// Sample is what one request measured: its timestamps, tokens and ending.
type Sample struct {
	// Due is when the request was due (the open model's schedule; the
	// closed model's send), Sent when it was sent, Head when the answer's
	// head came, FirstToken and LastToken when the first and the last
	// event carrying output came, End when the stream ended.
	Due, Sent, Head, FirstToken, LastToken, End time.Time
	Status                                      int
	Ending                                      Ending
	// Class is the ending as an outcome class.
	Class outcome.Class
	// OutputTokens is the answer's length: the server's usage figure when
	// it sent one, else the events that carried output (Events).
	OutputTokens, InputTokens, Events int
	// MaxGap is the longest time between two events carrying output.
	MaxGap time.Duration
	// Expected is the prompt's expected output length.
	Expected          int
	BytesIn, BytesOut int64
	Err               error
	// Prompt is the index in Options.Prompts of the prompt sent: with
	// Params naming a user, whose request it was.
	Prompt int
	// QuotaRefused says the answer was relia's AI gateway refusing the
	// caller's tenant for its own quota: a 429 carrying X-Relia-Quota,
	// the gateway doing its job rather than failing.
	QuotaRefused bool
}

// QuotaHeader is the field with which relia's AI gateway marks a 429 as
// a tenant's quota refusal (its value names the quota spent).
const QuotaHeader = "X-Relia-Quota"

// TTFT is the time to first token, from Due; false when none came.
func (s *Sample) TTFT() (time.Duration, bool) {
	if s.FirstToken.IsZero() {
		return 0, false
	}
	return s.FirstToken.Sub(s.Due), true
}

// TPOT is the time per output token after the first: (LastToken -
// FirstToken) / (OutputTokens - 1); false below two tokens.
func (s *Sample) TPOT() (time.Duration, bool) {
	if s.OutputTokens < 2 || s.FirstToken.IsZero() {
		return 0, false
	}
	return s.LastToken.Sub(s.FirstToken) / time.Duration(s.OutputTokens-1), true
}

// output records an event that came at now carrying tokens of output
// (none: nothing); itl is told of the gap since the last one.
func (s *Sample) output(now time.Time, tokens int, itl func(time.Duration)) {
	if tokens <= 0 {
		return
	}
	if s.FirstToken.IsZero() {
		s.FirstToken = now
	} else {
		gap := now.Sub(s.LastToken)
		s.MaxGap = max(s.MaxGap, gap)
		itl(gap)
	}
	s.LastToken = now
	s.Events += tokens
}

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// send sends request n, due at due, reads its stream and records it.
func (r *run) send(ctx context.Context, n uint64, due time.Time) {
	cur := r.inFlight.Add(1)
	for p := r.peak.Load(); cur > p && !r.peak.CompareAndSwap(p, cur); p = r.peak.Load() {
	}
	defer r.inFlight.Add(-1)
	i := int(n % uint64(len(r.bodies)))
	s := Sample{Due: due, Expected: r.o.Prompts[i].ExpectedOutputTokens, Prompt: i}
	if r.o.Method != http.MethodGet {
		s.BytesOut = int64(len(r.bodies[i]))
	}
	r.stream(ctx, &s, r.bodies[i], func(gap time.Duration) {
		r.res.ITL.Record(outcome.Outcome{Start: due, Latency: gap})
	})
	r.res.record(&s, r.o.Goodput)
	r.done.Add(1)
	if r.o.Observe != nil {
		r.o.Observe(&s)
	}
}

// stream sends one request and reads its answer into s; itl is told of
// each gap between two events carrying output.
func (r *run) stream(ctx context.Context, s *Sample, body []byte, itl func(time.Duration)) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var stalled atomic.Bool
	idle := r.clk.AfterFunc(r.o.IdleTimeout, func() { stalled.Store(true); cancel() })
	defer idle.Stop()
	if r.o.API == APIWebSocket {
		r.streamWebSocket(ctx, s, body, idle, &stalled, itl)
		return
	}
	var rd io.Reader
	if r.o.Method != http.MethodGet {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, r.o.Method, r.o.URL, rd)
	if err != nil {
		s.Sent, s.End, s.Ending, s.Class, s.Err = r.clk.Now(), r.clk.Now(), EndFailed, outcome.ClassOther, err
		return
	}
	for k, vs := range r.o.Header {
		req.Header[k] = vs
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "text/event-stream")
	s.Sent = r.clk.Now()
	r.res.ScheduleLag.Record(outcome.Outcome{Start: s.Due, Latency: s.Sent.Sub(s.Due)})
	resp, err := r.client.Do(req)
	if err != nil {
		s.End = r.clk.Now()
		s.Ending, s.Class, s.Err = EndFailed, outcome.Classify(err), err
		if stalled.Load() {
			s.Ending, s.Class = EndStalled, outcome.ClassTimeout
		}
		return
	}
	defer resp.Body.Close()
	s.Head, s.Status = r.clk.Now(), resp.StatusCode
	idle.Reset(r.o.IdleTimeout)
	cr := &countingReader{r: resp.Body}
	defer func() { s.BytesIn = cr.n }()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		_, _ = io.Copy(io.Discard, io.LimitReader(cr, 64<<10))
		s.End, s.Ending, s.Class = r.clk.Now(), EndStatus, outcome.ClassStatus
		s.QuotaRefused = resp.StatusCode == http.StatusTooManyRequests && resp.Header.Get(QuotaHeader) != ""
		return
	}
	sr := &streamReader{sse: wire.NewSSEReader(cr, 0), dec: newDecoder(r.o.API)}
	usageOut, usageIn := -1, -1
	for {
		ev, end, err := sr.next()
		now := r.clk.Now()
		if err != nil {
			s.End = now
			switch {
			case errors.Is(err, errStreamEnd):
				s.Ending = end
			case stalled.Load():
				s.Ending = EndStalled
			case ctx.Err() != nil:
				s.Ending, s.Err = EndFailed, ctx.Err()
			case end == EndFailed, errors.Is(err, wire.ErrEventTooLarge):
				s.Ending, s.Err = EndFailed, err
			default:
				s.Ending, s.Err = EndTruncated, err
			}
			break
		}
		idle.Reset(r.o.IdleTimeout)
		s.output(now, ev.tokens, itl)
		if ev.usageOut >= 0 {
			usageOut = ev.usageOut
		}
		if ev.usageIn >= 0 {
			usageIn = ev.usageIn
		}
		if ev.failed {
			s.End, s.Ending = now, EndErrorEvent
			break
		}
		if ev.done {
			s.End, s.Ending = now, EndDone
			break
		}
	}
	if s.Ending == EndDone {
		// What follows the last event (the chunked body's end) is read, so
		// that the connection is kept for the next request; a server that
		// holds the stream open past its last event is left after a moment.
		idle.Reset(min(r.o.IdleTimeout, drainFor))
		_, _ = io.Copy(io.Discard, io.LimitReader(cr, 64<<10))
	}
	s.OutputTokens = s.Events
	if usageOut >= 0 {
		s.OutputTokens = usageOut
	}
	s.InputTokens = max(usageIn, 0)
	s.Class = endingClass(s.Ending, ctx.Err() != nil && !stalled.Load())
}

// endingClass is an ending's outcome class.
func endingClass(e Ending, canceled bool) outcome.Class {
	switch e {
	case EndDone:
		return outcome.ClassOK
	case EndErrorEvent, EndStatus:
		return outcome.ClassStatus
	case EndTruncated:
		return outcome.ClassReset
	case EndStalled:
		return outcome.ClassTimeout
	case EndDropped:
		return outcome.ClassDropped
	}
	if canceled {
		return outcome.ClassCanceled
	}
	return outcome.ClassProtocol
}
