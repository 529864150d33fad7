package resilience

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// Breaker is a circuit breaker: it stops calls to a dependency that is
// failing or hanging, so callers fail fast and the dependency gets room to
// recover, then lets a few probe calls through to find out whether it has.
//
// Closed, it counts outcomes and trips open on ConsecutiveFailures failures
// in a row, or when failures or slow calls reach their ratio of a sliding
// window (the last N calls, or the last D of time). Open, it rejects every
// call with a *RejectedError matching ErrBreakerOpen until the open
// duration has passed. Half-open, it admits at most MaxProbes concurrent
// probes: SuccessThreshold successes close it; any failure (or, with
// SlowCallRatio set, a probe that runs or hangs past SlowCallDuration)
// opens it again, for longer when OpenDurationMultiplier is above 1.
//
// Which errors count is IsFailure's decision; by default every error but
// context.Canceled and rejections by other relia policies (ErrRejected).
//
// A Breaker is a Policy for a Pipeline; proxies, which cannot wrap the call
// in a function, use the two-step form Allow and BreakerPermit.Done. It is
// safe for concurrent use. The closed-state success path takes no lock and
// does not read the clock unless something needs a time: a time-based
// window reads it once, when the call ends; slow-call detection and an
// Observer that reads the call's Duration (not a DurationObserver that
// declines it) read it when the call starts and ends.
// Open, each refused call reads it once to find the time left.
type Breaker struct {
	cfg breakerConfig
	// cur is the state the breaker is in. Each state change installs a new
	// breakerGen, so an outcome reported through a permit of an older
	// generation lands in a retired generation and cannot disturb the
	// counts that decide the current state.
	cur atomic.Pointer[breakerGen]
	// mu serialises state changes; calls never take it on their success
	// path.
	mu sync.Mutex
	// trips counts trips since the breaker last closed, for the growing
	// open duration. Guarded by mu.
	trips int
	// epoch anchors time-based window buckets and the start offsets that
	// permits carry.
	epoch time.Time

	// Totals across generations. Failures, slow calls, rejections and
	// ignored outcomes are counted here directly; successes and admitted
	// calls, which are on the hot path, are counted per generation and
	// folded in when the generation retires.
	totAdmitted, totCompleted                     atomic.Uint64
	totFailures, totSlow, totRejected, totIgnored atomic.Uint64
	totStaleCompleted, totTrips                   atomic.Uint64
}

// Compile-time check that a Breaker fits in a Pipeline.
var _ Policy = (*Breaker)(nil)

// NewBreaker returns a closed breaker configured by s, or an error naming
// the first setting out of range.
func NewBreaker(s BreakerSettings) (*Breaker, error) {
	cfg, err := s.config()
	if err != nil {
		if s.Name != "" {
			return nil, fmt.Errorf("breaker %s: %w", s.Name, err)
		}
		return nil, fmt.Errorf("breaker: %w", err)
	}
	b := &Breaker{cfg: cfg}
	b.epoch = cfg.clock.Now()
	b.cur.Store(b.newGen(StateClosed, false, time.Time{}))
	return b, nil
}

// Name returns the breaker's name.
func (b *Breaker) Name() string { return b.cfg.name }

// BreakerPermit is the admission of one call by Allow. Report the call's
// outcome with Done exactly once. It is a small value: keep it on the
// stack; the zero BreakerPermit's Done does nothing.
type BreakerPermit struct {
	g *breakerGen
	// start is when the call started, as an offset from the breaker's
	// epoch: an int64 keeps the permit at three words, which the success
	// path copies around.
	start time.Duration
	seq   uint64 // position among in-flight calls, when tracked
}

// Allow asks the breaker to admit one call. When it admits, the caller
// makes the call and reports its outcome with the permit's Done; when it
// refuses, the error is a *RejectedError matching ErrBreakerOpen (with the
// time left open as RetryAfter) or ErrHalfOpenFull.
func (b *Breaker) Allow() (BreakerPermit, error) {
	for {
		g := b.cur.Load()
		switch g.state {
		case StateClosed:
			return b.admit(g), nil
		case StateHalfOpen:
			for {
				n := g.probes.Load()
				if n >= b.cfg.maxProbes {
					return BreakerPermit{}, b.reject(g, "half_open_full", ErrHalfOpenFull, 0)
				}
				if g.probes.CompareAndSwap(n, n+1) {
					return b.admit(g), nil
				}
			}
		default: // open
			if g.forced {
				return BreakerPermit{}, b.reject(g, "breaker_open", ErrBreakerOpen, 0)
			}
			now := b.cfg.clock.Now()
			if left := g.openUntil.Sub(now); left > 0 {
				return BreakerPermit{}, b.reject(g, "breaker_open", ErrBreakerOpen, left)
			}
			b.halfOpen(g)
		}
	}
}

func (b *Breaker) admit(g *breakerGen) BreakerPermit {
	g.admitted.Add(1)
	p := BreakerPermit{g: g}
	if b.cfg.needStart {
		now := b.cfg.clock.Now()
		p.start = now.Sub(b.epoch)
		if g.inflight != nil {
			p.seq = g.inflight.add(b, g, now)
		}
	}
	return p
}

func (b *Breaker) reject(g *breakerGen, reason string, sentinel error, retryAfter time.Duration) error {
	g.rejected.Add(1)
	b.totRejected.Add(1)
	if b.cfg.observer != nil {
		b.cfg.observer.Observe(Event{Kind: EventRejected, Policy: "breaker", Name: b.cfg.name, Reason: reason})
	}
	return &RejectedError{Policy: "breaker", Name: b.cfg.name, Reason: reason, RetryAfter: retryAfter, Sentinel: sentinel}
}

// Done reports the outcome of the call the permit admitted: err is the
// call's error, nil for a success. Which errors count as failures is
// BreakerSettings.IsFailure's decision. Call Done once per permit; an
// outcome reported after the breaker changed state counts only in the
// totals, not towards the new state's decisions.
func (p BreakerPermit) Done(err error) {
	g := p.g
	if g == nil {
		return
	}
	b := g.b
	var outcome uint32 = outcomeSuccess
	if err != nil {
		if b.cfg.isFailure(err) {
			outcome = outcomeFailure
		} else {
			outcome = outcomeIgnored
		}
	}
	var now time.Time
	var d time.Duration
	if b.cfg.needEnd {
		now = b.cfg.clock.Now()
		if b.cfg.needStart {
			d = now.Sub(b.epoch) - p.start
			if b.cfg.slowDuration > 0 && d > b.cfg.slowDuration && outcome != outcomeIgnored {
				outcome |= outcomeSlow
			}
		}
	}
	if g.inflight != nil {
		g.inflight.done(p.seq)
	}
	if b.cfg.observer != nil && outcome != outcomeIgnored {
		kind := EventSuccess
		if outcome&outcomeFailBit != 0 {
			kind = EventFailure
		}
		b.cfg.observer.Observe(Event{Kind: kind, Policy: "breaker", Name: b.cfg.name, Duration: d})
	}
	if outcome == outcomeIgnored {
		b.totIgnored.Add(1)
		g.ignored.Add(1)
		if g.state == StateHalfOpen {
			g.probes.Add(-1)
		}
		return
	}
	if outcome&outcomeFailBit != 0 {
		b.totFailures.Add(1)
	}
	if outcome&outcomeSlow != 0 {
		b.totSlow.Add(1)
	}
	if b.cur.Load() != g {
		// A permit from an earlier state: count it in the totals only.
		b.totStaleCompleted.Add(1)
		return
	}
	if g.state == StateHalfOpen {
		b.probeDone(g, outcome)
		return
	}
	b.record(g, outcome, now)
}

// Outcome codes as stored in a count-based window's slots.
const (
	outcomeSuccess uint32 = 1 // bit 0: a call is recorded
	outcomeFailBit uint32 = 2
	outcomeFailure        = outcomeSuccess | outcomeFailBit
	outcomeSlow    uint32 = 4
	outcomeIgnored uint32 = 8
)

// record counts a closed-state outcome and trips the breaker when a
// threshold is crossed.
func (b *Breaker) record(g *breakerGen, outcome uint32, now time.Time) {
	i := g.completed.Add(1) - 1
	if g.ring != nil {
		g.ring.put(i, outcome)
	} else if g.tw != nil {
		g.tw.put(b.bucketIndex(now), outcome)
	}
	if outcome&outcomeFailBit != 0 {
		g.lastFailure.Store(i + 1)
		if n := g.consecutive.Add(1); b.cfg.consecutive > 0 && n >= b.cfg.consecutive {
			b.trip(g)
			return
		}
	} else if g.consecutive.Load() != 0 {
		g.consecutive.Store(0)
	}
	if b.cfg.ratios && b.ratioTripped(g, now) {
		b.trip(g)
	}
}

// probeDone handles the outcome of a half-open probe.
func (b *Breaker) probeDone(g *breakerGen, outcome uint32) {
	g.completed.Add(1)
	if outcome&outcomeFailBit != 0 || (outcome&outcomeSlow != 0 && b.cfg.slowRatio > 0) {
		b.trip(g)
		return
	}
	n := g.probeSuccesses.Add(1)
	g.probes.Add(-1)
	if n >= b.cfg.successThreshold {
		b.transition(g, StateClosed, false, false)
	}
}

// ratioTripped reports whether the window's failure or slow-call ratio has
// reached its threshold, counting calls hung past the slow-call duration.
func (b *Breaker) ratioTripped(g *breakerGen, now time.Time) bool {
	calls, failures, slow := g.windowCounts(b, now)
	if g.inflight != nil {
		hung := g.inflight.slowCount.Load()
		calls += hung
		slow += hung
	}
	if calls < b.cfg.minCalls || calls == 0 {
		return false
	}
	fc := float64(calls)
	return (b.cfg.failureRatio > 0 && float64(failures) >= b.cfg.failureRatio*fc) ||
		(b.cfg.slowRatio > 0 && float64(slow) >= b.cfg.slowRatio*fc)
}

func (b *Breaker) bucketIndex(now time.Time) int64 {
	return int64(now.Sub(b.epoch)) / b.cfg.bucketWidth
}

// Run implements Policy: it calls next when the breaker admits the call and
// counts the outcome.
func (b *Breaker) Run(ctx context.Context, next Next) error {
	p, err := b.Allow()
	if err != nil {
		return err
	}
	finished := false
	defer func() {
		// A panicking call still gives its permit back, so a half-open
		// breaker cannot lose its probe slots to panics; it counts as a
		// failure.
		if !finished {
			p.Done(errCallPanicked)
		}
	}()
	err = next.Call(ctx)
	finished = true
	p.Done(err)
	return err
}

var errCallPanicked = errors.New("call panicked")

// trip opens the breaker from generation g, if g is still current.
func (b *Breaker) trip(g *breakerGen) { b.transition(g, StateOpen, false, true) }

// halfOpen moves an open breaker whose open time has passed to half-open.
func (b *Breaker) halfOpen(g *breakerGen) { b.transition(g, StateHalfOpen, false, false) }

// transition replaces generation from (when it is still current; nil means
// whatever is current) with a new one in state to. A trip counts towards
// the growing open duration; closing resets it.
func (b *Breaker) transition(from *breakerGen, to State, forced, trip bool) {
	b.mu.Lock()
	cur := b.cur.Load()
	if from != nil && (cur != from || cur.forced) {
		b.mu.Unlock()
		return
	}
	var openUntil time.Time
	switch to {
	case StateOpen:
		if trip {
			b.trips++
			b.totTrips.Add(1)
		}
		if !forced {
			n := b.trips
			if n < 1 {
				n = 1
			}
			openUntil = b.cfg.clock.Now().Add(b.cfg.openDurationFor(n))
		}
	case StateClosed:
		b.trips = 0
	}
	next := b.newGen(to, forced, openUntil)
	cur.retire(b)
	b.cur.Store(next)
	b.mu.Unlock()
	b.notify(cur.state, to)
}

func (b *Breaker) notify(from, to State) {
	if from == to {
		return
	}
	if b.cfg.observer != nil {
		b.cfg.observer.Observe(Event{Kind: EventStateChange, Policy: "breaker", Name: b.cfg.name, From: from, To: to})
	}
	if b.cfg.onStateChange != nil {
		b.cfg.onStateChange(b.cfg.name, from, to)
	}
}

// State returns the breaker's state. An open breaker whose open duration
// has passed moves to half-open here, as it would on the next call.
func (b *Breaker) State() State {
	g := b.cur.Load()
	if g.state == StateOpen && !g.forced && !b.cfg.clock.Now().Before(g.openUntil) {
		b.halfOpen(g)
		return b.cur.Load().state
	}
	return g.state
}

// Reset closes the breaker, clears its window, ends a forced state and
// resets the growing open duration. Totals are kept.
func (b *Breaker) Reset() { b.transition(nil, StateClosed, false, false) }

// ForceOpen opens the breaker and holds it open, rejecting every call,
// until Reset or ForceClosed. Use it to take a dependency out of service
// by hand.
func (b *Breaker) ForceOpen() { b.transition(nil, StateOpen, true, false) }

// ForceClosed closes the breaker and holds it closed: outcomes are still
// counted, but nothing trips it until Reset. Use it to rule the breaker
// out while investigating an incident.
func (b *Breaker) ForceClosed() { b.transition(nil, StateClosed, true, false) }

// BreakerCounts is a snapshot of a breaker's counts. The window fields
// describe the current state: the sliding window while closed, the probes
// while half-open, the rejections while open. Total holds counts kept
// across every state since the breaker was built.
type BreakerCounts struct {
	// State is the state the snapshot describes.
	State State
	// Requests is how many calls ended in the window (successes plus
	// failures; ignored outcomes are left out). While half-open it counts
	// the probes that ended.
	Requests uint64
	// Successes and Failures split Requests.
	Successes, Failures uint64
	// Slow is how many calls in the window took longer than
	// SlowCallDuration, whether they succeeded or failed.
	Slow uint64
	// SlowInFlight is how many calls still running have passed
	// SlowCallDuration; the ratio counts them as slow calls.
	SlowInFlight uint64
	// ConsecutiveSuccesses and ConsecutiveFailures are the current runs
	// of outcomes in this state.
	ConsecutiveSuccesses, ConsecutiveFailures uint64
	// Rejections is how many calls the breaker refused in this state.
	Rejections uint64
	// InFlight is how many calls admitted in this state have not ended.
	InFlight int64
	// Total holds counts across all states.
	Total BreakerTotals
}

// BreakerTotals are a breaker's counts since it was built.
type BreakerTotals struct {
	// Requests is how many calls the breaker admitted.
	Requests uint64
	// Successes, Failures and Ignored split the calls that ended by
	// outcome; Ignored are errors IsFailure did not count.
	Successes, Failures, Ignored uint64
	// Slow is how many calls that ended took longer than SlowCallDuration.
	Slow uint64
	// Rejections is how many calls the breaker refused.
	Rejections uint64
	// Trips is how many times the breaker opened by itself.
	Trips uint64
}

// Counts returns a snapshot of the breaker's counts. Counters are read one
// by one without stopping calls, so under load the fields may be a few
// calls apart.
func (b *Breaker) Counts() BreakerCounts {
	b.State() // an expired open state becomes half-open first
	b.mu.Lock()
	g := b.cur.Load()
	c := BreakerCounts{State: g.state}
	var now time.Time
	if g.tw != nil {
		now = b.cfg.clock.Now()
	}
	completed := g.completed.Load()
	switch {
	case g.state == StateClosed:
		calls, failures, slow := g.windowCounts(b, now)
		// Counters read one by one can be a call apart; keep the
		// snapshot self-consistent.
		failures, slow = min(failures, calls), min(slow, calls)
		c.Requests, c.Failures, c.Slow = uint64(calls), uint64(failures), uint64(slow)
		c.Successes = c.Requests - c.Failures
		c.ConsecutiveFailures = uint64(g.consecutive.Load())
		if last := g.lastFailure.Load(); last < completed {
			c.ConsecutiveSuccesses = completed - last
		}
	case g.state == StateHalfOpen:
		c.Successes = uint64(g.probeSuccesses.Load())
		c.Requests = max(completed, c.Successes)
		c.Failures = c.Requests - c.Successes
		c.ConsecutiveSuccesses = c.Successes
	}
	if g.inflight != nil {
		c.SlowInFlight = uint64(g.inflight.slowCount.Load())
	}
	c.Rejections = g.rejected.Load()
	c.InFlight = int64(g.admitted.Load()) - int64(completed) - int64(g.ignored.Load())
	failures := b.totFailures.Load()
	completedAll := b.totCompleted.Load() + completed + b.totStaleCompleted.Load()
	c.Total = BreakerTotals{
		Requests:   b.totAdmitted.Load() + g.admitted.Load(),
		Failures:   failures,
		Ignored:    b.totIgnored.Load(),
		Slow:       b.totSlow.Load(),
		Rejections: b.totRejected.Load(),
		Trips:      b.totTrips.Load(),
	}
	if completedAll > failures {
		c.Total.Successes = completedAll - failures
	}
	b.mu.Unlock()
	return c
}
