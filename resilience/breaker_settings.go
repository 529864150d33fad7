package resilience

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/relia-dev/relia/clock"
)

// Breaker defaults, used where a BreakerSettings field is left zero.
const (
	// DefaultBreakerConsecutiveFailures trips a breaker that has no ratio
	// configured after this many failures in a row.
	DefaultBreakerConsecutiveFailures = 5
	// DefaultBreakerWindowSize is the count-based window's length in calls.
	DefaultBreakerWindowSize = 100
	// DefaultBreakerWindowBuckets is how many buckets a time-based window
	// is cut into.
	DefaultBreakerWindowBuckets = 10
	// DefaultBreakerMinCalls is how many calls a window must hold before
	// a ratio can trip the breaker.
	DefaultBreakerMinCalls = 10
	// DefaultBreakerSlowCallDuration is the slow-call threshold used when
	// SlowCallRatio is set and SlowCallDuration is not.
	DefaultBreakerSlowCallDuration = 10 * time.Second
	// DefaultBreakerOpenDuration is how long a tripped breaker stays open.
	DefaultBreakerOpenDuration = 30 * time.Second
	// DefaultBreakerMaxOpenGrowth caps a growing open duration at this
	// multiple of OpenDuration when MaxOpenDuration is left zero.
	DefaultBreakerMaxOpenGrowth = 10
)

// Limits on window sizes, so that a typo in a config cannot make every
// state change allocate megabytes.
const (
	maxBreakerWindowSize    = 1 << 20
	maxBreakerWindowBuckets = 1000
)

// BreakerSettings configures a Breaker. Every zero value means the default
// documented on its field; a value out of range makes NewBreaker fail.
type BreakerSettings struct {
	// Name identifies the breaker in errors, events and metrics (the
	// upstream or dependency it guards).
	Name string
	// Clock is the source of time; nil means the real clock.
	Clock clock.Clock
	// Observer receives success, failure, rejection and state-change
	// events; nil means none. The breaker reads the clock to give success
	// and failure events their Duration unless the Observer is a
	// DurationObserver that does not read it.
	Observer Observer
	// OnStateChange, when set, is called after every state change, on the
	// goroutine that caused it: a caller's, or the clock's timer goroutine
	// when hung calls trip the breaker. It must not block. Changes that
	// race each other may be reported in either order.
	OnStateChange func(name string, from, to State)

	// IsFailure decides whether a non-nil error counts as a failure of
	// the dependency. A nil error is always a success. Errors for which it
	// returns false are ignored: they count neither way. The default
	// counts every error except context.Canceled (the caller gave up, the
	// dependency did not fail) and rejections by other relia policies
	// (errors.Is(err, ErrRejected)): a full local bulkhead or an exhausted
	// rate limit says nothing about the dependency's health.
	IsFailure func(error) bool

	// ConsecutiveFailures trips the breaker after this many failures in a
	// row while closed. Zero means DefaultBreakerConsecutiveFailures when
	// neither FailureRatio nor SlowCallRatio is set, and off when one is.
	ConsecutiveFailures int
	// FailureRatio trips the breaker when failures make up at least this
	// share of the calls in the window, once MinCalls calls are in it. Zero
	// means off; otherwise it must lie in (0, 1].
	FailureRatio float64
	// SlowCallRatio trips the breaker when slow calls make up at least
	// this share of the calls in the window, once MinCalls calls are in it.
	// Calls still in flight past SlowCallDuration count as slow calls in
	// the window, so a hung dependency trips the breaker before its calls
	// return. Zero means off; otherwise it must lie in (0, 1].
	SlowCallRatio float64
	// SlowCallDuration is how long a call may take before it counts as
	// slow. Zero means DefaultBreakerSlowCallDuration when SlowCallRatio
	// is set; when SlowCallRatio is zero, a non-zero SlowCallDuration only
	// counts slow calls (see Counts) without tripping.
	SlowCallDuration time.Duration
	// MinCalls is how many calls the window must hold before a ratio is
	// judged. Zero means DefaultBreakerMinCalls (capped at WindowSize for
	// a count-based window).
	MinCalls int

	// WindowSize makes the window count-based: the last WindowSize calls.
	// Zero means DefaultBreakerWindowSize unless WindowDuration is set;
	// setting both is an error.
	WindowSize int
	// WindowDuration makes the window time-based: the calls that ended in
	// the last WindowDuration, kept in WindowBuckets buckets, so the window
	// slides one bucket at a time.
	WindowDuration time.Duration
	// WindowBuckets is how many buckets a time-based window has; the
	// window slides by WindowDuration/WindowBuckets at a time, so
	// WindowDuration must divide evenly into them. Zero means
	// DefaultBreakerWindowBuckets; at most 1000.
	WindowBuckets int

	// OpenDuration is how long the breaker stays open before it lets
	// probes through. Zero means DefaultBreakerOpenDuration.
	OpenDuration time.Duration
	// OpenDurationMultiplier grows the open duration on each trip that
	// follows a failed half-open test: the n-th consecutive trip stays
	// open OpenDuration * OpenDurationMultiplier^(n-1), up to
	// MaxOpenDuration. The growth resets when the breaker closes. Zero
	// means 1 (no growth); below 1 is an error.
	OpenDurationMultiplier float64
	// MaxOpenDuration caps a growing open duration. Zero means
	// DefaultBreakerMaxOpenGrowth times OpenDuration; below OpenDuration is
	// an error.
	MaxOpenDuration time.Duration

	// SuccessThreshold is how many successful probes close a half-open
	// breaker. Zero means 1.
	SuccessThreshold int
	// MaxProbes is how many probe calls a half-open breaker lets run at
	// once; the rest are rejected with ErrHalfOpenFull. Zero means
	// SuccessThreshold; less than SuccessThreshold is an error.
	MaxProbes int
}

// breakerConfig is BreakerSettings with defaults applied and checked.
type breakerConfig struct {
	name          string
	clock         clock.Clock
	observer      Observer
	onStateChange func(name string, from, to State)
	isFailure     func(error) bool

	consecutive  int64
	failureRatio float64
	slowRatio    float64
	slowDuration time.Duration // 0: slow calls not measured
	minCalls     int64

	windowSize  int   // count-based window; 0 when time-based
	bucketWidth int64 // time-based window, nanoseconds; 0 when count-based
	buckets     int

	openDuration time.Duration
	openMult     float64
	maxOpen      time.Duration

	successThreshold int32
	maxProbes        int32

	// needStart: read the clock when a call starts (slow calls or an
	// observer that reads durations need the call's duration). needEnd: read it when a call
	// ends (the same, or a time-based window). trackInFlight: keep start
	// times of calls in flight so hung calls count as slow.
	needStart, needEnd, trackInFlight bool
	ratios                            bool
}

func (s BreakerSettings) config() (breakerConfig, error) {
	c := breakerConfig{
		name:     s.Name,
		clock:    clock.OrReal(s.Clock),
		observer: s.Observer,

		onStateChange: s.OnStateChange,
		isFailure:     s.IsFailure,
	}
	if c.isFailure == nil {
		c.isFailure = defaultIsFailure
	}
	if s.ConsecutiveFailures < 0 {
		return c, fmt.Errorf("consecutive failures %d: must not be negative", s.ConsecutiveFailures)
	}
	for _, r := range []struct {
		name string
		v    float64
	}{{"failure ratio", s.FailureRatio}, {"slow call ratio", s.SlowCallRatio}} {
		if math.IsNaN(r.v) || r.v < 0 || r.v > 1 {
			return c, fmt.Errorf("%s %v: must lie in [0, 1]", r.name, r.v)
		}
	}
	c.failureRatio, c.slowRatio = s.FailureRatio, s.SlowCallRatio
	c.ratios = c.failureRatio > 0 || c.slowRatio > 0
	c.consecutive = int64(s.ConsecutiveFailures)
	if c.consecutive == 0 && !c.ratios {
		c.consecutive = DefaultBreakerConsecutiveFailures
	}

	if s.SlowCallDuration < 0 {
		return c, fmt.Errorf("slow call duration %s: must not be negative", s.SlowCallDuration)
	}
	c.slowDuration = s.SlowCallDuration
	if c.slowRatio > 0 && c.slowDuration == 0 {
		c.slowDuration = DefaultBreakerSlowCallDuration
	}

	switch {
	case s.WindowSize < 0:
		return c, fmt.Errorf("window size %d: must not be negative", s.WindowSize)
	case s.WindowSize > maxBreakerWindowSize:
		return c, fmt.Errorf("window size %d: at most %d", s.WindowSize, maxBreakerWindowSize)
	case s.WindowDuration < 0:
		return c, fmt.Errorf("window duration %s: must not be negative", s.WindowDuration)
	case s.WindowBuckets < 0 || s.WindowBuckets > maxBreakerWindowBuckets:
		return c, fmt.Errorf("window buckets %d: must lie in [0, %d]", s.WindowBuckets, maxBreakerWindowBuckets)
	case s.WindowSize > 0 && s.WindowDuration > 0:
		return c, errors.New("window size and window duration both set: choose a count-based or a time-based window")
	case s.WindowBuckets > 0 && s.WindowDuration == 0:
		return c, errors.New("window buckets set without window duration")
	}
	if s.WindowDuration > 0 {
		c.buckets = s.WindowBuckets
		if c.buckets == 0 {
			c.buckets = DefaultBreakerWindowBuckets
		}
		if s.WindowDuration%time.Duration(c.buckets) != 0 {
			return c, fmt.Errorf("window duration %s: must divide evenly into %d buckets", s.WindowDuration, c.buckets)
		}
		c.bucketWidth = int64(s.WindowDuration) / int64(c.buckets)
	} else {
		c.windowSize = s.WindowSize
		if c.windowSize == 0 {
			c.windowSize = DefaultBreakerWindowSize
		}
	}

	switch {
	case s.MinCalls < 0:
		return c, fmt.Errorf("min calls %d: must not be negative", s.MinCalls)
	case c.windowSize > 0 && s.MinCalls > c.windowSize:
		return c, fmt.Errorf("min calls %d: more than the window holds (%d), so no ratio could ever trip", s.MinCalls, c.windowSize)
	}
	c.minCalls = int64(s.MinCalls)
	if c.minCalls == 0 {
		c.minCalls = DefaultBreakerMinCalls
		if c.windowSize > 0 && c.windowSize < DefaultBreakerMinCalls {
			c.minCalls = int64(c.windowSize)
		}
	}

	switch {
	case s.OpenDuration < 0:
		return c, fmt.Errorf("open duration %s: must not be negative", s.OpenDuration)
	case math.IsNaN(s.OpenDurationMultiplier) || math.IsInf(s.OpenDurationMultiplier, 0) ||
		(s.OpenDurationMultiplier != 0 && s.OpenDurationMultiplier < 1):
		return c, fmt.Errorf("open duration multiplier %v: must be 0 (no growth) or a finite number of at least 1", s.OpenDurationMultiplier)
	case s.MaxOpenDuration < 0:
		return c, fmt.Errorf("max open duration %s: must not be negative", s.MaxOpenDuration)
	}
	c.openDuration = s.OpenDuration
	if c.openDuration == 0 {
		c.openDuration = DefaultBreakerOpenDuration
	}
	c.openMult = s.OpenDurationMultiplier
	if c.openMult == 0 {
		c.openMult = 1
	}
	c.maxOpen = s.MaxOpenDuration
	if c.maxOpen == 0 {
		c.maxOpen = math.MaxInt64
		if c.openDuration <= math.MaxInt64/DefaultBreakerMaxOpenGrowth {
			c.maxOpen = DefaultBreakerMaxOpenGrowth * c.openDuration
		}
	}
	if c.maxOpen < c.openDuration {
		return c, fmt.Errorf("max open duration %s: less than the open duration %s", c.maxOpen, c.openDuration)
	}

	switch {
	case s.SuccessThreshold < 0:
		return c, fmt.Errorf("success threshold %d: must not be negative", s.SuccessThreshold)
	case s.MaxProbes < 0:
		return c, fmt.Errorf("max probes %d: must not be negative", s.MaxProbes)
	case s.SuccessThreshold > math.MaxInt32 || s.MaxProbes > math.MaxInt32:
		return c, errors.New("success threshold or max probes too large")
	}
	c.successThreshold = int32(s.SuccessThreshold)
	if c.successThreshold == 0 {
		c.successThreshold = 1
	}
	c.maxProbes = int32(s.MaxProbes)
	if c.maxProbes == 0 {
		c.maxProbes = c.successThreshold
	}
	if c.maxProbes < c.successThreshold {
		return c, fmt.Errorf("max probes %d: less than the success threshold %d, which then needs more probes than may run", c.maxProbes, c.successThreshold)
	}

	c.trackInFlight = c.slowRatio > 0
	c.needStart = c.slowDuration > 0 || c.observer != nil && observesDurations(c.observer)
	c.needEnd = c.needStart || c.bucketWidth > 0
	return c, nil
}

// defaultIsFailure is the documented default of BreakerSettings.IsFailure.
func defaultIsFailure(err error) bool {
	return !errors.Is(err, context.Canceled) && !errors.Is(err, ErrRejected)
}

// openDurationFor returns how long the n-th consecutive trip (n >= 1)
// keeps the breaker open.
func (c *breakerConfig) openDurationFor(n int) time.Duration {
	d := float64(c.openDuration) * math.Pow(c.openMult, float64(n-1))
	if d >= float64(c.maxOpen) {
		return c.maxOpen
	}
	return time.Duration(d)
}
