package resilience

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/relia-dev/relia/clock"
)

// Defaults of RetryBudgetSettings.
const (
	DefaultBudgetRatio        = 0.2
	DefaultBudgetMinPerSecond = 3.0
	DefaultBudgetWindow       = 10 * time.Second
)

// budgetBuckets is how many time buckets a budget's window is cut into. The
// window slides one bucket at a time: a tenth of the window is fine enough
// that the limit tracks the request rate, and small enough that summing the
// buckets on every retry is cheaper than keeping running totals in step.
const budgetBuckets = 10

// RetryBudgetSettings configures a RetryBudget. Zero values mean the
// documented defaults.
type RetryBudgetSettings struct {
	// Ratio is the share of requests that retries may add: 0.2 lets retries
	// add at most 20% to the load on the upstream. Zero means the default,
	// 0.2; values outside [0,1] are an error. For a budget of the floor
	// alone set NoRatio.
	Ratio float64
	// NoRatio makes the budget allow only the MinPerSecond floor, however
	// many requests are sent. Ratio must then be zero.
	NoRatio bool
	// MinPerSecond is a floor: this many retries per second are allowed
	// whatever the request rate, so a service with little traffic can
	// still retry. Zero means the default, 3; negative is an error. For no
	// floor at all set NoFloor.
	MinPerSecond float64
	// NoFloor removes the floor: retries are bounded by Ratio alone.
	// MinPerSecond must then be zero.
	NoFloor bool
	// Window is the sliding window over which requests and retries are
	// counted. Zero means the default, 10s; negative, or shorter than 10ns
	// (the window is cut into ten buckets), is an error.
	Window time.Duration
	// Clock is the source of time; nil means the real clock.
	Clock clock.Clock
}

// RetryBudget bounds retries (and hedges) to a share of the requests sent to
// one upstream, as Envoy's retry budgets and Finagle's RetryBudget do. Share
// one budget between every Retry and Hedge policy that calls the same
// upstream: a fixed MaxAttempts alone lets an outage multiply the load by
// MaxAttempts exactly when the upstream can least take it, while a budget
// lets retries add at most Ratio of the traffic.
//
// Over the sliding Window, a retry is allowed iff
//
//	retries + 1 <= Ratio*requests + MinPerSecond*Window.Seconds()
//
// Every first attempt is a request (Deposit); every retry or hedge asks
// (Withdraw) and is counted only when allowed. Counts are kept in ten time
// buckets of the clock, so the window slides a tenth at a time.
//
// A RetryBudget is safe for concurrent use. A deposit, made on every
// request, takes no lock: it adds to the current bucket's atomic count,
// and only the first deposit or withdrawal in a new bucket (or one whose
// time lies behind the newest bucket's) takes the lock to move the
// window on.
type RetryBudget struct {
	ratio float64
	// floor is MinPerSecond*Window.Seconds(): the retries allowed in any
	// window whatever the request count.
	floor float64
	width time.Duration
	clock clock.Clock
	// origin anchors bucket numbers; now.Sub(origin)/width is the current
	// bucket's number.
	origin time.Time

	// last is the newest bucket number seen; time never goes back past
	// it. Written under mu once that bucket is ready, read by deposits
	// without it: a deposit in bucket last needs no lock.
	last    atomic.Int64
	mu      sync.Mutex
	buckets [budgetBuckets]budgetBucket
}

// budgetBucket is one bucket's counts. Its epoch changes, and its counts
// are cleared, under the budget's mu; requests also grows without it.
type budgetBucket struct {
	epoch    atomic.Int64 // the bucket number these counts belong to
	requests atomic.Int64
	retries  int64 // under mu
}

// NewRetryBudget returns a budget, or an error naming the invalid setting.
func NewRetryBudget(s RetryBudgetSettings) (*RetryBudget, error) {
	if err := s.fill(); err != nil {
		return nil, fmt.Errorf("retry budget: %w", err)
	}
	c := clock.OrReal(s.Clock)
	b := &RetryBudget{
		ratio:  s.Ratio,
		floor:  s.MinPerSecond * s.Window.Seconds(),
		width:  s.Window / budgetBuckets,
		clock:  c,
		origin: c.Now(),
	}
	return b, nil
}

// fill validates s and puts the defaults into its zero fields.
func (s *RetryBudgetSettings) fill() error {
	switch {
	case s.Ratio < 0 || s.Ratio > 1 || s.Ratio != s.Ratio:
		return fmt.Errorf("ratio %v not in [0,1]", s.Ratio)
	case s.NoRatio && s.Ratio != 0:
		return errors.New("ratio set together with NoRatio")
	case s.NoRatio:
	case s.Ratio == 0:
		s.Ratio = DefaultBudgetRatio
	}
	switch {
	case s.MinPerSecond < 0 || s.MinPerSecond != s.MinPerSecond:
		return fmt.Errorf("negative MinPerSecond %v", s.MinPerSecond)
	case s.NoFloor && s.MinPerSecond != 0:
		return errors.New("MinPerSecond set together with NoFloor")
	case s.NoFloor:
	case s.MinPerSecond == 0:
		s.MinPerSecond = DefaultBudgetMinPerSecond
	}
	switch {
	case s.Window < 0:
		return fmt.Errorf("negative window %s", s.Window)
	case s.Window == 0:
		s.Window = DefaultBudgetWindow
	case s.Window < budgetBuckets:
		return fmt.Errorf("window %s shorter than %dns", s.Window, budgetBuckets)
	}
	return nil
}

// bucket returns the number of the bucket that holds time now.
func (b *RetryBudget) bucket(now time.Time) int64 {
	return int64(now.Sub(b.origin) / b.width)
}

// current returns the bucket for bucket number n, cleared if it held an
// older bucket's counts, and its number: n, or the newest bucket's when
// n lies behind it. b.mu must be held.
func (b *RetryBudget) current(n int64) (*budgetBucket, int64) {
	if last := b.last.Load(); n < last {
		n = last // a clock stepped back counts into the newest bucket
	}
	bk := &b.buckets[n%budgetBuckets]
	if bk.epoch.Load() != n {
		// A deposit that read last before this bucket's turn came round
		// again may add to it now: its request then counts from this
		// bucket, as if it had come a window later, or is cleared with
		// the bucket it was meant for, which has left the window anyway.
		bk.requests.Store(0)
		bk.retries = 0
		bk.epoch.Store(n)
	}
	b.last.Store(n) // only once the bucket is ready for deposits
	return bk, n
}

// sums returns the requests and retries in the window ending with bucket n.
// b.mu must be held.
func (b *RetryBudget) sums(n int64) (requests, retries int64) {
	for i := range b.buckets {
		bk := &b.buckets[i]
		if e := bk.epoch.Load(); e > n-budgetBuckets && e <= n {
			requests += bk.requests.Load()
			retries += bk.retries
		}
	}
	return requests, retries
}

// Deposit counts one request: a first attempt.
func (b *RetryBudget) Deposit() { b.DepositAt(b.clock.Now()) }

// DepositAt is Deposit for a caller that has read the budget's clock
// already: it counts one request made at now, sparing a clock read.
func (b *RetryBudget) DepositAt(now time.Time) {
	n := b.bucket(now)
	if n == b.last.Load() {
		b.buckets[n%budgetBuckets].requests.Add(1)
		return
	}
	b.mu.Lock()
	bk, _ := b.current(n)
	bk.requests.Add(1)
	b.mu.Unlock()
}

// Withdraw asks for one retry or hedge. It reports whether the budget
// allows it; a refused retry is not counted.
func (b *RetryBudget) Withdraw() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	bk, n := b.current(b.bucket(b.clock.Now()))
	requests, retries := b.sums(n)
	if float64(retries+1) > b.ratio*float64(requests)+b.floor {
		return false
	}
	bk.retries++
	return true
}

// Counts returns the requests and retries counted in the current window,
// for metrics and tests.
func (b *RetryBudget) Counts() (requests, retries int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	_, n := b.current(b.bucket(b.clock.Now()))
	return b.sums(n)
}
