package resilience

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/relia-dev/relia/clock"
)

// DefaultMaxHedges is how many hedged attempts a Hedge sends per call when
// HedgeSettings.MaxHedges is left zero.
const DefaultMaxHedges = 1

// Percentile mode keeps the latencies of the last hedgeSamples successful
// calls. The delay is taken from them once hedgeWarmup have been seen, and
// refreshed every hedgeRefresh calls after that: sorting 256 durations
// costs a few microseconds, which spread over 16 calls is well below the
// cost of the call itself.
const (
	hedgeSamples = 256
	hedgeWarmup  = 100
	hedgeRefresh = 16
)

// HedgeSettings configures a Hedge. Zero values mean the documented
// defaults; invalid values make NewHedge return an error.
type HedgeSettings struct {
	// Name names the policy instance in events and errors.
	Name string
	// Delay is how long an attempt may run without an answer before the
	// next one is sent. It must be positive: as with a Timeout, there is no
	// delay that suits every upstream. With Percentile set, Delay is the
	// delay used until the policy has seen enough calls to measure one.
	Delay time.Duration
	// Percentile, when set, hedges after this percentile (0.95 is p95) of
	// the latency of recent successful calls through the policy, measured
	// from the start of the call, instead of after the fixed Delay. It
	// must lie in (0, 1]. The last 256 successes are kept; until 100 have
	// been seen, Delay is used. Because a call is measured from its start,
	// a hedge that wins never records a latency shorter than the delay
	// that sent it, so the estimate does not drift downward as hedges win.
	Percentile float64
	// MinDelay is a floor under a delay taken from Percentile, so that a
	// run of very fast calls cannot make every call hedge at once. Zero
	// means no floor; negative, or set without Percentile, is an error.
	MinDelay time.Duration
	// MaxHedges is how many extra attempts a call may send besides the
	// first. Zero means DefaultMaxHedges (1); negative is an error.
	MaxHedges int
	// Budget, when set, is the retry budget shared with the Retry and
	// Hedge policies of the same upstream: each call deposits, as Retry's
	// do, and each hedge withdraws before it is sent. A refused hedge is
	// not sent, and the call sends no more hedges but still waits for the
	// attempts it has.
	Budget *RetryBudget
	// Clock is the source of time for delays and latencies; nil means
	// real.
	Clock clock.Clock
	// Observer receives EventHedge per hedge sent (Attempt is its number,
	// 2 for the first hedge, and Delay the delay used), EventRejected
	// "retry_budget_exhausted" when the budget refuses a hedge, and
	// EventSuccess or EventFailure per call.
	Observer Observer
}

// Hedge sends the same call again when it is slow, and takes whichever
// attempt succeeds first: the tail-latency remedy of "The Tail at Scale".
// Use it only for idempotent calls; calls marked WithoutRetry get one
// attempt.
//
// Each attempt runs the rest of the pipeline in a fork of its own, on its
// own goroutine, under a context of its own derived from the caller's.
// The first attempt starts at once; while no attempt has succeeded and at
// least one is still running, another is sent each time the delay passes,
// up to MaxHedges. A hedge is not a retry: a failure does not send one
// sooner, and when every attempt sent so far has failed, the call ends
// with the failure of the last attempt to finish (as Retry returns its
// last attempt's error) and that attempt's result. Put a Retry outside the
// Hedge to retry failures.
//
// The first success wins: its result becomes the call's and its context
// stays alive until the caller is done with the result (Pipeline.Get ends
// it on return; the http.RoundTripper adapter ends it when the response
// body is closed). The other attempts' contexts are cancelled at once.
// Run returns as soon as there is a winner, without waiting for the
// losers: each loser's goroutine hands its result to the pipeline's
// discard hook once its function has returned, and then exits. The
// discard hook must therefore be safe to call concurrently with the
// caller's use of the winning result.
//
// When the caller's context ends first, Run returns at once with an error
// matching the context's; the attempts, whose contexts derive from it,
// discard their results as they return.
//
// A Hedge is safe for concurrent use.
type Hedge struct {
	name      string
	delay     time.Duration
	maxHedges int
	budget    *RetryBudget
	clock     clock.Clock
	observer  Observer
	// latencies is set in percentile mode only.
	latencies *latencyWindow
}

var _ Policy = (*Hedge)(nil)

// NewHedge returns a Hedge, or an error naming the invalid setting.
func NewHedge(s HedgeSettings) (*Hedge, error) {
	if err := s.fill(); err != nil {
		return nil, fmt.Errorf("hedge %q: %w", s.Name, err)
	}
	h := &Hedge{
		name:      s.Name,
		delay:     s.Delay,
		maxHedges: s.MaxHedges,
		budget:    s.Budget,
		clock:     clock.OrReal(s.Clock),
		observer:  s.Observer,
	}
	if s.Percentile > 0 {
		h.latencies = newLatencyWindow(s.Percentile, s.MinDelay)
	}
	return h, nil
}

// fill validates s and puts the defaults into its zero fields.
func (s *HedgeSettings) fill() error {
	if s.Delay <= 0 {
		return fmt.Errorf("delay %s not positive", s.Delay)
	}
	if s.Percentile < 0 || s.Percentile > 1 || math.IsNaN(s.Percentile) {
		return fmt.Errorf("percentile %v not in (0,1]", s.Percentile)
	}
	switch {
	case s.MinDelay < 0:
		return fmt.Errorf("negative MinDelay %s", s.MinDelay)
	case s.MinDelay > 0 && s.Percentile == 0:
		return errors.New("MinDelay set without Percentile")
	}
	switch {
	case s.MaxHedges < 0:
		return fmt.Errorf("negative MaxHedges %d", s.MaxHedges)
	case s.MaxHedges == 0:
		s.MaxHedges = DefaultMaxHedges
	}
	return nil
}

// Delay returns the delay the next call will wait before its first hedge:
// the fixed Delay, or in percentile mode the measured one once enough
// calls have been seen.
func (h *Hedge) Delay() time.Duration {
	if h.latencies != nil {
		if d, ok := h.latencies.delay(); ok {
			return d
		}
	}
	return h.delay
}

// Run runs next, hedging it as the settings allow.
func (h *Hedge) Run(ctx context.Context, next Next) error {
	if h.budget != nil {
		h.budget.Deposit()
	}
	start := h.clock.Now()
	if !RetryAllowed(ctx) {
		err := next.Call(ctx)
		h.finished(err, start)
		return err
	}
	c := &hedgeCall{results: make(chan hedgeResult, h.maxHedges+1)}
	c.cancels = c.inline[:0]
	delay := h.Delay()
	// The timer is armed before the first attempt starts, so an attempt
	// that finds no timer pending on the clock knows it runs unhedged.
	timer := h.clock.NewTimer(delay)
	defer timer.Stop()
	c.launch(ctx, next, 1)
	tick := timer.C()
	call := HedgeCall{h: h, start: start, sent: 1, delay: delay}
	running := 1
	var failed hedgeResult // the latest failure, kept to be the call's if all fail
	for {
		select {
		case r := <-c.results:
			running--
			if r.err == nil {
				c.end(r.attempt)
				next.Adopt(r.fork)
				if failed.attempt != 0 {
					failed.fork.Release()
				}
				h.finished(nil, start)
				return nil
			}
			if failed.attempt != 0 {
				failed.fork.Release()
			}
			failed = r
			if running == 0 {
				c.end(r.attempt)
				next.Adopt(r.fork)
				h.finished(r.err, start)
				return r.err
			}
		case <-tick:
			if !call.Another() {
				tick = nil
				continue
			}
			running++
			c.launch(ctx, next, call.sent)
			if call.More() {
				timer.Reset(delay)
			} else {
				tick = nil
			}
		case <-ctx.Done():
			c.end(0)
			err := ctx.Err()
			if failed.attempt != 0 {
				failed.fork.Release()
				err = errors.Join(err, failed.err)
			}
			err = fmt.Errorf("%s: waiting for %d attempts: %w", h.label(), running, err)
			h.finished(err, start)
			return err
		}
	}
}

// HedgeCall is one call to a Hedge whose attempts its caller launches
// itself: the two-step form for a proxy that runs each attempt against a
// target it picks (the gateway). The caller sends the first attempt, waits
// Delay, asks Another before each hedge, takes the first success, and
// reports the call's end with Done. The decisions are Run's own.
type HedgeCall struct {
	h     *Hedge
	start time.Time
	sent  int
	delay time.Duration
}

// Start begins a call. deposit says whether the call deposits into the
// budget: false when another policy of the same call (a Retry) already
// did, so that a call counts once.
func (h *Hedge) Start(deposit bool) HedgeCall {
	if deposit && h.budget != nil {
		h.budget.Deposit()
	}
	return HedgeCall{h: h, start: h.clock.Now(), sent: 1, delay: h.Delay()}
}

// Delay returns how long to wait for an answer before the next hedge.
func (c *HedgeCall) Delay() time.Duration { return c.delay }

// Another reports whether a hedge may be sent now: the call has sent
// fewer than MaxHedges, and the budget, if any, allows it (a refusal is
// reported to the Observer, and the call sends no more). A hedge it allows
// is reported as EventHedge.
func (c *HedgeCall) Another() bool {
	h := c.h
	if c.sent > h.maxHedges {
		return false
	}
	if h.budget != nil && !h.budget.Withdraw() {
		if h.observer != nil {
			h.observer.Observe(Event{Kind: EventRejected, Policy: "hedge", Name: h.name, Reason: "retry_budget_exhausted"})
		}
		c.sent = h.maxHedges + 1
		return false
	}
	c.sent++
	if h.observer != nil {
		h.observer.Observe(Event{Kind: EventHedge, Policy: "hedge", Name: h.name, Attempt: c.sent, Delay: c.delay})
	}
	return true
}

// More reports whether the call may still send a hedge later.
func (c *HedgeCall) More() bool { return c.sent <= c.h.maxHedges }

// Done ends the call with its outcome: the latency of a success feeds the
// percentile delay, and the Observer hears of it.
func (c *HedgeCall) Done(err error) { c.h.finished(err, c.start) }

// label names the policy in errors: "hedge", or "hedge NAME".
func (h *Hedge) label() string {
	if h.name == "" {
		return "hedge"
	}
	return "hedge " + h.name
}

// finished reports the end of a call and, in percentile mode, records the
// latency of a success.
func (h *Hedge) finished(err error, start time.Time) {
	if h.latencies == nil && h.observer == nil {
		return
	}
	took := h.clock.Since(start)
	if err == nil && h.latencies != nil {
		h.latencies.record(took)
	}
	if h.observer != nil {
		kind := EventSuccess
		if err != nil {
			kind = EventFailure
		}
		h.observer.Observe(Event{Kind: kind, Policy: "hedge", Name: h.name, Duration: took})
	}
}

// hedgeCall is one call's attempts. Results reach Run through the buffered
// results channel, which has room for every attempt, so an attempt never
// blocks handing its result over. Once the call is over, attempts that
// finish later release their own results instead.
type hedgeCall struct {
	results chan hedgeResult
	// cancels[i] ends attempt i+1's context. Only Run's goroutine uses it.
	cancels []context.CancelFunc
	inline  [2]context.CancelFunc

	mu   sync.Mutex
	over bool // Run has returned or is returning; guarded by mu
}

// hedgeResult is an attempt's outcome; attempt 0 means none.
type hedgeResult struct {
	fork    Next
	err     error
	attempt int
}

// launch starts attempt number n in a fork of next.
func (c *hedgeCall) launch(ctx context.Context, next Next, n int) {
	fork := next.Fork()
	actx, cancel := context.WithCancel(ctx)
	fork.setCancel(cancel)
	c.cancels = append(c.cancels, cancel)
	go c.attempt(actx, fork, n)
}

// attempt runs one attempt and hands its result to Run, or, when the call
// is already over, to the discard hook: so a loser's result is released
// only after its function has returned, and by its own goroutine.
func (c *hedgeCall) attempt(ctx context.Context, fork Next, n int) {
	err := fork.Call(ctx)
	c.mu.Lock()
	if !c.over {
		c.results <- hedgeResult{fork: fork, err: err, attempt: n}
		c.mu.Unlock()
		return
	}
	c.mu.Unlock()
	fork.Release()
}

// end closes the call: it cancels the context of every attempt but keep
// (0 keeps none) and releases results that arrived but were not taken.
// Attempts still running release their own when they return.
func (c *hedgeCall) end(keep int) {
	c.mu.Lock()
	c.over = true
	c.mu.Unlock()
	for i, cancel := range c.cancels {
		if i+1 != keep {
			cancel()
		}
	}
	for {
		select {
		case r := <-c.results:
			r.fork.Release()
		default:
			return
		}
	}
}

// latencyWindow keeps the latest call latencies and the percentile of
// them that percentile-mode hedging waits for.
type latencyWindow struct {
	percentile float64
	floor      time.Duration
	// current is the delay measured from the samples, or -1 until enough
	// have been seen. Calls read it without taking mu.
	current atomic.Int64

	mu      sync.Mutex
	n       uint64 // samples recorded in all
	samples [hedgeSamples]time.Duration
	sorted  [hedgeSamples]time.Duration
}

func newLatencyWindow(percentile float64, floor time.Duration) *latencyWindow {
	w := &latencyWindow{percentile: percentile, floor: floor}
	w.current.Store(-1)
	return w
}

// delay returns the measured delay, and false until there is one.
func (w *latencyWindow) delay() (time.Duration, bool) {
	d := w.current.Load()
	return time.Duration(d), d >= 0
}

// record adds one latency and, when due, measures the delay afresh.
func (w *latencyWindow) record(d time.Duration) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.samples[w.n%hedgeSamples] = d
	w.n++
	if w.n < hedgeWarmup || (w.n != hedgeWarmup && w.n%hedgeRefresh != 0) {
		return
	}
	k := int(min(w.n, hedgeSamples))
	s := w.sorted[:k]
	copy(s, w.samples[:k])
	slices.Sort(s)
	// Nearest rank: the smallest sample with at least the percentile of
	// the samples at or below it.
	i := int(math.Ceil(w.percentile*float64(k))) - 1
	i = max(0, min(i, k-1))
	w.current.Store(int64(max(s[i], w.floor)))
}
