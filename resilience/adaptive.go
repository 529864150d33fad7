package resilience

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/relia-dev/relia/clock"
)

// LimitAlgorithm is how an adaptive Limiter moves its limit.
type LimitAlgorithm uint8

const (
	// LimitAIMD is additive increase, multiplicative decrease, as TCP
	// congestion control: the limit grows by one for every limit's worth
	// of calls that succeed while the limit is in use, and shrinks by
	// BackoffRatio when a call is dropped (timed out, shed downstream, or
	// slower than SlowCallDuration). It needs no latency baseline, so it
	// suits dependencies whose latency varies a lot between calls.
	LimitAIMD LimitAlgorithm = iota
	// LimitGradient compares short-term latency with its long-term
	// average, as Netflix's Gradient2 does, and shrinks the limit when
	// latency grows beyond Tolerance, before anything times out. It suits
	// dependencies with steady latency that queue when overloaded.
	LimitGradient
)

// String returns the algorithm's name.
func (a LimitAlgorithm) String() string {
	switch a {
	case LimitAIMD:
		return "aimd"
	case LimitGradient:
		return "gradient"
	}
	return fmt.Sprintf("LimitAlgorithm(%d)", uint8(a))
}

// Adaptive Limiter defaults, used where a LimiterSettings field is left
// zero.
const (
	DefaultLimiterInitialLimit     = 20
	DefaultLimiterMinLimit         = 1
	DefaultLimiterMaxLimit         = 1000
	DefaultLimiterBackoffRatio     = 0.9
	DefaultLimiterSlowCallDuration = 5 * time.Second
	DefaultLimiterTolerance        = 1.5
	DefaultLimiterSmoothing        = 0.2
	DefaultLimiterShortWindow      = 10
	DefaultLimiterLongWindow       = 600
)

// gradientQueueSize is the headroom LimitGradient adds at each update, as
// Gradient2's default: room for a few calls to queue, so the limit can
// probe upwards while latency holds.
const gradientQueueSize = 4

// gradientWarmup is how many short windows the long-term RTT is a plain
// mean of before it becomes an exponential average, so its first value is
// not one window's noise.
const gradientWarmup = 10

// LimiterSettings configures an adaptive Limiter. Every zero value means
// the default documented on its field; a value out of range makes
// NewLimiter fail, as does a setting of the algorithm not chosen.
type LimiterSettings struct {
	// Name identifies the limiter in errors, events and metrics.
	Name string
	// Algorithm is how the limit moves; the zero value is LimitAIMD.
	Algorithm LimitAlgorithm

	// InitialLimit is the limit the limiter starts with. Zero means
	// DefaultLimiterInitialLimit, moved into [MinLimit, MaxLimit]; an
	// explicit value outside that range is an error.
	InitialLimit int
	// MinLimit is the floor: however calls go, at least this many may run
	// at once, so the limiter always has calls to learn from. Zero means
	// DefaultLimiterMinLimit; negative, or above MaxLimit, is an error.
	MinLimit int
	// MaxLimit is the ceiling the limit never grows past. Zero means
	// DefaultLimiterMaxLimit; negative is an error.
	MaxLimit int

	// BackoffRatio is what a drop multiplies the limit by. Zero means
	// DefaultLimiterBackoffRatio; otherwise it must lie in (0, 1).
	BackoffRatio float64
	// SlowCallDuration is how long a call may take before it counts as
	// dropped, however it ended. Zero means DefaultLimiterSlowCallDuration;
	// negative is an error.
	SlowCallDuration time.Duration
	// IsDrop decides whether a call that failed with a non-nil error was
	// dropped: a sign of overload that shrinks the limit. Other errors are
	// ignored: they neither shrink nor grow it, as their latency says
	// nothing about the dependency's capacity (a fast 404, a cancelled
	// call). Nil means: timeouts (context.DeadlineExceeded, which
	// ErrTimeout matches) and load shedding by a rate limit, bulkhead or
	// concurrency limit further down (ErrRateLimited, ErrBulkheadFull,
	// ErrConcurrencyLimited).
	IsDrop func(error) bool

	// Tolerance is, for LimitGradient, how much slower than its long-term
	// average the short-term latency may be before the limit shrinks: 1.5
	// tolerates 50%. Zero means DefaultLimiterTolerance; below 1 is an
	// error.
	Tolerance float64
	// Smoothing is, for LimitGradient, how far each update moves the
	// limit towards its new estimate, in (0, 1]. Zero means
	// DefaultLimiterSmoothing.
	Smoothing float64
	// ShortWindow is, for LimitGradient, how many calls make one
	// short-term latency measurement (their mean RTT); the limit is updated
	// once per window. Zero means DefaultLimiterShortWindow; negative is
	// an error.
	ShortWindow int
	// LongWindow is, for LimitGradient, about how many calls the long-term
	// latency average spans. Zero means DefaultLimiterLongWindow; below
	// ShortWindow is an error.
	LongWindow int

	// Clock is the source of time for RTTs; nil means the real clock.
	Clock clock.Clock
	// Observer receives EventAcquired and EventReleased with InFlight,
	// EventLimitChange with the new Limit, and EventRejected with reason
	// "concurrency_limited"; nil means none.
	Observer Observer
}

// limiterConfig is LimiterSettings with defaults applied and checked.
type limiterConfig struct {
	name                string
	algorithm           LimitAlgorithm
	initial, minL, maxL int
	backoff             float64
	slow                int64
	isDrop              func(error) bool
	tolerance           float64
	smoothing           float64
	shortWindow         int
	// longAlpha is the long-term average's weight for a new short window,
	// 2/(N+1) for an average over N windows.
	longAlpha float64
	clock     clock.Clock
	observer  Observer
}

func (s LimiterSettings) config() (limiterConfig, error) {
	c := limiterConfig{
		name:      s.Name,
		algorithm: s.Algorithm,
		isDrop:    s.IsDrop,
		clock:     clock.OrReal(s.Clock),
		observer:  s.Observer,
	}
	if c.isDrop == nil {
		c.isDrop = defaultIsDrop
	}
	if s.Algorithm > LimitGradient {
		return c, fmt.Errorf("algorithm %s: unknown", s.Algorithm)
	}

	switch {
	case s.MinLimit < 0:
		return c, fmt.Errorf("min limit %d: must not be negative", s.MinLimit)
	case s.MaxLimit < 0:
		return c, fmt.Errorf("max limit %d: must not be negative", s.MaxLimit)
	case s.InitialLimit < 0:
		return c, fmt.Errorf("initial limit %d: must not be negative", s.InitialLimit)
	case s.MaxLimit > math.MaxInt32:
		return c, fmt.Errorf("max limit %d: at most %d", s.MaxLimit, math.MaxInt32)
	}
	c.minL, c.maxL = cmp.Or(s.MinLimit, DefaultLimiterMinLimit), cmp.Or(s.MaxLimit, DefaultLimiterMaxLimit)
	if c.minL > c.maxL {
		return c, fmt.Errorf("min limit %d: above the max limit %d", c.minL, c.maxL)
	}
	c.initial = s.InitialLimit
	if c.initial == 0 {
		c.initial = min(max(DefaultLimiterInitialLimit, c.minL), c.maxL)
	} else if c.initial < c.minL || c.initial > c.maxL {
		return c, fmt.Errorf("initial limit %d: outside [min limit, max limit] = [%d, %d]", c.initial, c.minL, c.maxL)
	}

	switch {
	case math.IsNaN(s.BackoffRatio) || s.BackoffRatio < 0 || s.BackoffRatio >= 1:
		return c, fmt.Errorf("backoff ratio %v: must lie in (0, 1)", s.BackoffRatio)
	case s.SlowCallDuration < 0:
		return c, fmt.Errorf("slow call duration %s: must not be negative", s.SlowCallDuration)
	}
	c.backoff = cmp.Or(s.BackoffRatio, DefaultLimiterBackoffRatio)
	c.slow = int64(cmp.Or(s.SlowCallDuration, DefaultLimiterSlowCallDuration))

	if s.Algorithm != LimitGradient {
		for _, f := range []struct {
			name string
			set  bool
		}{{"tolerance", s.Tolerance != 0}, {"smoothing", s.Smoothing != 0}, {"short window", s.ShortWindow != 0}, {"long window", s.LongWindow != 0}} {
			if f.set {
				return c, fmt.Errorf("%s set for algorithm %s, which does not use it", f.name, s.Algorithm)
			}
		}
		return c, nil
	}
	switch {
	case math.IsNaN(s.Tolerance) || math.IsInf(s.Tolerance, 0) || (s.Tolerance != 0 && s.Tolerance < 1):
		return c, fmt.Errorf("tolerance %v: must be 0 (default) or a finite number of at least 1", s.Tolerance)
	case math.IsNaN(s.Smoothing) || s.Smoothing < 0 || s.Smoothing > 1:
		return c, fmt.Errorf("smoothing %v: must lie in (0, 1]", s.Smoothing)
	case s.ShortWindow < 0:
		return c, fmt.Errorf("short window %d: must not be negative", s.ShortWindow)
	case s.LongWindow < 0:
		return c, fmt.Errorf("long window %d: must not be negative", s.LongWindow)
	}
	c.tolerance = cmp.Or(s.Tolerance, DefaultLimiterTolerance)
	c.smoothing = cmp.Or(s.Smoothing, DefaultLimiterSmoothing)
	c.shortWindow = cmp.Or(s.ShortWindow, DefaultLimiterShortWindow)
	long := cmp.Or(s.LongWindow, DefaultLimiterLongWindow)
	if long < c.shortWindow {
		return c, fmt.Errorf("long window %d: shorter than the short window %d", long, c.shortWindow)
	}
	c.longAlpha = 2 / (float64(long)/float64(c.shortWindow) + 1)
	return c, nil
}

// cmpOr returns v, or def when v is zero.
func cmpOr[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}

// defaultIsDrop is the documented default of LimiterSettings.IsDrop.
func defaultIsDrop(err error) bool {
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, ErrRateLimited) ||
		errors.Is(err, ErrBulkheadFull) || errors.Is(err, ErrConcurrencyLimited)
}

// Limiter is an adaptive concurrency limit, after Netflix's
// concurrency-limits: like a Bulkhead it bounds how many calls run at
// once, but it finds the bound itself from each call's round-trip time
// (RTT, measured on the clock) and whether the call was dropped, so it
// tracks the dependency's capacity as that changes instead of a number
// guessed once. A call that finds the limit reached is rejected at once
// with a *RejectedError matching ErrConcurrencyLimited; nothing queues.
//
// The limit starts at InitialLimit and stays within [MinLimit, MaxLimit].
// It only grows while it is in use (at least half of it in flight), so a
// lightly loaded service keeps its limit where it is.
//
// LimitAIMD adds one to the limit for every limit's worth of successful
// calls, and multiplies it by BackoffRatio on a drop. Only a call admitted
// since the last backoff can cause another, so a burst of timeouts that
// all started under the old limit backs off once, not once per call: one
// backoff per round trip, as TCP does.
//
// LimitGradient measures the mean RTT of every ShortWindow calls (short)
// and keeps an exponential average of those over about LongWindow calls
// (long). At the end of each window, when the limit is in use:
//
//	gradient = clamp(Tolerance × long / short, 0.5, 1)
//	estimate = limit × gradient + 4
//	limit    = limit × (1 − Smoothing) + estimate × Smoothing
//
// Steady latency gives a gradient of 1, and the limit grows by
// 4×Smoothing a window; latency beyond Tolerance shrinks it, by at most
// half towards the estimate at once. When long is more than twice short,
// as after a spell of overload, long is cut by 5% a window so the limit
// does not stay low long after latency recovered. A window with a drop
// in it multiplies the limit by BackoffRatio instead, and its dropped
// calls' RTTs stay out of the mean: a timeout's RTT is the timeout, not
// the dependency's latency.
//
// A Limiter is a Policy for a Pipeline; proxies use the two-step form
// Allow and LimiterPermit.Done. It is safe for concurrent use. Admission
// is a compare-and-swap and a clock read; completion a clock read and a
// short lock to update the limit.
type Limiter struct {
	cfg   limiterConfig
	epoch time.Time

	inflight atomic.Int64
	limit    atomic.Int64
	// backoffs counts AIMD backoffs. Permits carry its value when they
	// were admitted, so a drop of a call admitted before the last backoff
	// does not back off again.
	backoffs atomic.Uint32

	mu sync.Mutex
	// estimate is the limit before it is cut to a whole number of calls.
	// The fields below are guarded by mu.
	estimate float64
	// successes counts AIMD successes towards the next increase.
	successes int
	// win is LimitGradient's current short window.
	win gradientWindow
	// longRTT is LimitGradient's long-term average RTT, in nanoseconds,
	// over longN windows so far (counted up to gradientWarmup).
	longRTT float64
	longN   int
}

// gradientWindow accumulates one short window of LimitGradient.
type gradientWindow struct {
	calls, timed int   // calls seen; those whose RTT counts
	sum          int64 // sum of the counted RTTs
	peak         int32 // most calls in flight seen
	drop         bool
}

var _ Policy = (*Limiter)(nil)

// NewLimiter returns a Limiter at its initial limit, or an error naming
// the first setting out of range.
func NewLimiter(s LimiterSettings) (*Limiter, error) {
	cfg, err := s.config()
	if err != nil {
		if s.Name != "" {
			return nil, fmt.Errorf("adaptive limiter %s: %w", s.Name, err)
		}
		return nil, fmt.Errorf("adaptive limiter: %w", err)
	}
	l := &Limiter{cfg: cfg, epoch: cfg.clock.Now(), estimate: float64(cfg.initial)}
	l.limit.Store(int64(cfg.initial))
	return l, nil
}

// Name returns the limiter's name.
func (l *Limiter) Name() string { return l.cfg.name }

// Limit returns the current concurrency limit.
func (l *Limiter) Limit() int { return int(l.limit.Load()) }

// InFlight returns how many calls the limiter admitted that have not
// reported Done.
func (l *Limiter) InFlight() int { return int(l.inflight.Load()) }

// LimiterPermit is the admission of one call by Allow. Report the call's
// outcome with Done exactly once. It is a small value: keep it on the
// stack; the zero LimiterPermit's Done does nothing.
type LimiterPermit struct {
	l *Limiter
	// start is when the call was admitted, in nanoseconds since the
	// limiter's epoch.
	start int64
	// inflight is how many calls were in flight with this one admitted.
	inflight int32
	// backoffs is the limiter's backoff count when the call was admitted.
	backoffs uint32
}

// Allow admits one call if fewer than the limit are in flight. The caller
// makes the call and reports its outcome with the permit's Done; when the
// limit is reached, Allow refuses with a *RejectedError matching
// ErrConcurrencyLimited, reason "concurrency_limited".
func (l *Limiter) Allow() (LimiterPermit, error) {
	n := l.inflight.Load()
	for {
		if n >= l.limit.Load() {
			return LimiterPermit{}, l.reject(n)
		}
		if l.inflight.CompareAndSwap(n, n+1) {
			break
		}
		n = l.inflight.Load()
	}
	n++
	p := LimiterPermit{l: l, start: int64(l.cfg.clock.Since(l.epoch)), inflight: int32(n), backoffs: l.backoffs.Load()}
	if l.cfg.observer != nil {
		l.cfg.observer.Observe(Event{Kind: EventAcquired, Policy: "adaptive", Name: l.cfg.name, InFlight: int(n)})
	}
	return p, nil
}

func (l *Limiter) reject(inflight int64) error {
	if l.cfg.observer != nil {
		l.cfg.observer.Observe(Event{Kind: EventRejected, Policy: "adaptive", Name: l.cfg.name,
			Reason: "concurrency_limited", InFlight: int(inflight), Limit: int(l.limit.Load())})
	}
	return &RejectedError{Policy: "adaptive", Name: l.cfg.name, Reason: "concurrency_limited", Sentinel: ErrConcurrencyLimited}
}

// Done reports the outcome of the call the permit admitted and frees its
// place: err is the call's error, nil for a success. A call slower than
// SlowCallDuration counts as dropped however it ended; otherwise an error
// counts as a drop when IsDrop says so, and is ignored when not.
func (p LimiterPermit) Done(err error) {
	l := p.l
	if l == nil {
		return
	}
	rtt := int64(l.cfg.clock.Since(l.epoch)) - p.start
	n := l.inflight.Add(-1)
	if l.cfg.observer != nil {
		l.cfg.observer.Observe(Event{Kind: EventReleased, Policy: "adaptive", Name: l.cfg.name, InFlight: int(n)})
	}
	drop := rtt > l.cfg.slow
	if !drop && err != nil {
		if !l.cfg.isDrop(err) {
			return
		}
		drop = true
	}
	if l.cfg.algorithm == LimitGradient {
		l.mu.Lock()
		l.gradientSample(rtt, drop, p.inflight)
		l.mu.Unlock()
		return
	}
	if !drop && 2*int64(p.inflight) < l.limit.Load() {
		return // the limit is not in use: success says nothing of it
	}
	l.mu.Lock()
	l.aimdSample(drop, p)
	l.mu.Unlock()
}

// aimdSample moves the limit by one call's outcome. l.mu must be held.
func (l *Limiter) aimdSample(drop bool, p LimiterPermit) {
	if drop {
		if p.backoffs != l.backoffs.Load() {
			return // admitted under an older limit, already backed off for
		}
		l.backoffs.Add(1)
		l.successes = 0
		next := math.Floor(l.estimate * l.cfg.backoff)
		if next >= l.estimate {
			next = l.estimate - 1 // a small limit must still shrink
		}
		l.setEstimate(next)
		return
	}
	limit := l.limit.Load()
	if 2*int64(p.inflight) < limit {
		return // the limit grew since Done looked
	}
	if l.successes++; int64(l.successes) >= limit {
		l.successes = 0
		l.setEstimate(l.estimate + 1)
	}
}

// gradientSample adds one call to the short window and, when the window is
// full, updates the long-term RTT and the limit. l.mu must be held.
func (l *Limiter) gradientSample(rtt int64, drop bool, inflight int32) {
	w := &l.win
	w.calls++
	w.peak = max(w.peak, inflight)
	if drop {
		w.drop = true
	} else {
		w.timed++
		w.sum += rtt
	}
	if w.calls < l.cfg.shortWindow {
		return
	}
	var short float64
	if w.timed > 0 {
		short = float64(w.sum) / float64(w.timed)
		if l.longN < gradientWarmup {
			l.longN++
			l.longRTT += (short - l.longRTT) / float64(l.longN)
		} else {
			l.longRTT += l.cfg.longAlpha * (short - l.longRTT)
		}
		if l.longRTT > 2*short {
			l.longRTT *= 0.95
		}
	}
	switch {
	case w.drop:
		l.setEstimate(l.estimate * l.cfg.backoff)
	case 2*float64(w.peak) < l.estimate:
		// The limit is not in use: latency says nothing of it.
	default:
		gradient := 1.0
		if short > 0 {
			gradient = max(0.5, min(1, l.cfg.tolerance*l.longRTT/short))
		}
		estimate := l.estimate*gradient + gradientQueueSize
		l.setEstimate(l.estimate*(1-l.cfg.smoothing) + estimate*l.cfg.smoothing)
	}
	*w = gradientWindow{}
}

// setEstimate moves the estimate, kept within [MinLimit, MaxLimit], and
// publishes its whole part as the limit. l.mu must be held, so limit
// changes reach the Observer in the order they happen.
func (l *Limiter) setEstimate(v float64) {
	l.estimate = min(max(v, float64(l.cfg.minL)), float64(l.cfg.maxL))
	limit := int64(l.estimate)
	if l.limit.Swap(limit) != limit && l.cfg.observer != nil {
		l.cfg.observer.Observe(Event{Kind: EventLimitChange, Policy: "adaptive", Name: l.cfg.name, Limit: int(limit)})
	}
}

// Run implements Policy: it calls next when the limiter admits the call,
// and reports the outcome. A call that panics frees its place and counts
// as neither success nor drop.
func (l *Limiter) Run(ctx context.Context, next Next) error {
	p, err := l.Allow()
	if err != nil {
		return err
	}
	finished := false
	defer func() {
		if !finished {
			p.Done(errCallPanicked)
		}
	}()
	err = next.Call(ctx)
	finished = true
	p.Done(err)
	return err
}
