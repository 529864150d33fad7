package resilience

import (
	"context"
	"fmt"
	"math"
	"sync/atomic"
	"time"

	"github.com/relia-dev/relia/clock"
)

// RateLimiterSettings configures a RateLimiter. Every zero value means the
// default documented on its field, except Rate, which has none; a value out
// of range makes NewRateLimiter fail.
type RateLimiterSettings struct {
	// Name identifies the limiter in errors, events and metrics.
	Name string
	// Rate is how many calls per second the limiter lets through in the
	// long run: the bucket refills at this rate. It must be positive and at
	// most 1e9 (one call per nanosecond, the clock's resolution).
	Rate float64
	// Burst is how many calls may pass at once after a quiet spell: the
	// bucket's capacity. Zero means one second's worth, ceil(Rate), and at
	// least 1; negative is an error.
	Burst int
	// MaxWait is the longest a call waits for a token before it is
	// rejected. Zero means calls never wait: a call that finds the bucket
	// empty is rejected at once, with the time until the next token as its
	// RetryAfter. Negative is an error.
	MaxWait time.Duration
	// Clock is the source of time; nil means the real clock.
	Clock clock.Clock
	// Observer receives EventRejected with reason "rate_limited" for every
	// call refused, by any method; nil means none.
	Observer Observer
}

// RateLimiter is a token bucket: it lets Rate calls per second through in
// the long run and up to Burst at once after a quiet spell, and refuses
// the rest with a *RejectedError matching ErrRateLimited whose RetryAfter
// is the time until a token is due, or, with MaxWait set, delays them
// until one is.
//
// It keeps the bucket as a single number, the time at which it would be
// full again (the generic cell rate algorithm, which decides exactly as a
// token bucket does), so a call costs one clock read and one
// compare-and-swap: no lock, no allocation. The refill interval is kept
// as a whole number of nanoseconds, rounded down so that the limiter is
// never stricter than Rate: up to a million calls per second it is exact
// to within 0.1%, above that to within a nanosecond per call.
//
// A RateLimiter is a Policy for a Pipeline; Allow, Take and Acquire serve
// callers that do not wrap their call in a function. It is safe for
// concurrent use. For one bucket per API key or client use
// KeyedRateLimiter.
type RateLimiter struct {
	name     string
	bucket   tokenBucket
	maxWait  time.Duration
	clock    clock.Clock
	observer Observer
	epoch    time.Time
	// tat is the bucket's theoretical arrival time, in nanoseconds since
	// epoch: the bucket is full at tat and holds (now-tat)/interval tokens
	// fewer than full before it. A tat in the past means a full bucket.
	tat atomic.Int64
}

var _ Policy = (*RateLimiter)(nil)

// NewRateLimiter returns a RateLimiter with a full bucket, or an error
// naming the first setting out of range.
func NewRateLimiter(s RateLimiterSettings) (*RateLimiter, error) {
	tb, err := newTokenBucket(s.Rate, s.Burst)
	if err == nil && s.MaxWait < 0 {
		err = fmt.Errorf("max wait %s: must not be negative", s.MaxWait)
	}
	if err != nil {
		if s.Name != "" {
			return nil, fmt.Errorf("rate limiter %s: %w", s.Name, err)
		}
		return nil, fmt.Errorf("rate limiter: %w", err)
	}
	c := clock.OrReal(s.Clock)
	return &RateLimiter{
		name:     s.Name,
		bucket:   tb,
		maxWait:  s.MaxWait,
		clock:    c,
		observer: s.Observer,
		epoch:    c.Now(),
	}, nil
}

// Name returns the limiter's name.
func (r *RateLimiter) Name() string { return r.name }

// Burst returns the bucket's capacity.
func (r *RateLimiter) Burst() int { return int(r.bucket.burst) }

// Tokens returns how many tokens the bucket holds now, for metrics and
// tests. It is fractional between refills.
func (r *RateLimiter) Tokens() float64 {
	return r.bucket.tokens(r.tat.Load(), r.now())
}

// Allow takes one token and reports whether there was one. It never waits.
func (r *RateLimiter) Allow() bool {
	ok, _ := r.Take(1)
	return ok
}

// Take takes n tokens at once, for calls that cost more than one (a batch,
// a large request), and reports whether the bucket held them. When it did
// not, it takes none and retryAfter is how long until it will; a call
// costing more than Burst can never pass and gets false with a zero
// retryAfter. It never waits; n <= 0 takes nothing and returns true.
func (r *RateLimiter) Take(n int) (ok bool, retryAfter time.Duration) {
	if n <= 0 {
		return true, 0
	}
	wait, ok := r.take(r.now(), int64(n), 0)
	if !ok {
		r.rejected()
		return false, time.Duration(wait)
	}
	return true, 0
}

// Acquire takes one token, waiting on the clock up to MaxWait for it to
// come due. It refuses with a *RejectedError matching ErrRateLimited, with
// the time until a token as RetryAfter, when the token is due later than
// MaxWait, or later than ctx's deadline. When ctx ends while it waits, it
// returns ctx's error and puts the token back.
func (r *RateLimiter) Acquire(ctx context.Context) error {
	now := r.now()
	limit := int64(r.maxWait)
	if limit > 0 {
		if dl, ok := ctx.Deadline(); ok {
			// Waiting past the deadline would only end in the caller's
			// timeout; refusing now gives the caller its retry hint.
			limit = min(limit, max(int64(dl.Sub(r.epoch))-now, 0))
		}
	}
	wait, ok := r.take(now, 1, limit)
	if !ok {
		r.rejected()
		return &RejectedError{Policy: "ratelimit", Name: r.name, Reason: "rate_limited", RetryAfter: time.Duration(wait), Sentinel: ErrRateLimited}
	}
	if wait == 0 {
		return nil
	}
	if err := clock.Sleep(ctx, r.clock, time.Duration(wait)); err != nil {
		// Nobody will use the token: give it back. Taking the interval off
		// tat is exact even when others took tokens since, as the bucket
		// only holds counts, not whose tokens they are.
		r.tat.Add(-r.bucket.interval)
		return err
	}
	return nil
}

// Run implements Policy: it calls next once Acquire granted a token.
func (r *RateLimiter) Run(ctx context.Context, next Next) error {
	if err := r.Acquire(ctx); err != nil {
		return err
	}
	return next.Call(ctx)
}

func (r *RateLimiter) now() int64 { return int64(r.clock.Since(r.epoch)) }

// take takes n tokens at now, accepting a wait of up to maxWait
// nanoseconds for them. It returns the wait when it took them, and the
// time until it could have taken them without waiting when it did not
// (zero when n exceeds the burst and it never could).
func (r *RateLimiter) take(now, n, maxWait int64) (wait int64, ok bool) {
	if n > r.bucket.burst {
		return 0, false
	}
	for {
		tat := r.tat.Load()
		newTat, wait, ok := r.bucket.take(tat, now, n, maxWait)
		if !ok || r.tat.CompareAndSwap(tat, newTat) {
			return wait, ok
		}
	}
}

func (r *RateLimiter) rejected() {
	if r.observer != nil {
		r.observer.Observe(Event{Kind: EventRejected, Policy: "ratelimit", Name: r.name, Reason: "rate_limited"})
	}
}

// tokenBucket is the arithmetic of the generic cell rate algorithm, shared
// by RateLimiter and KeyedRateLimiter. A bucket's whole state is its
// theoretical arrival time tat: the time at which it is full again. Taking
// n tokens moves tat n intervals later, starting from now if tat has
// passed (a full bucket does not fill further); the take is allowed when
// the new tat lies at most span (Burst intervals) ahead of now, which is
// exactly when a token bucket holding (span - (tat-now))/interval tokens
// has n of them.
type tokenBucket struct {
	interval int64 // nanoseconds per token: 1/Rate
	burst    int64 // capacity in tokens
	span     int64 // burst*interval: the furthest tat may run ahead of now
}

// maxBucketSpan bounds Burst/Rate so that times near the bucket's state
// never overflow an int64 of nanoseconds, leaving a century of headroom.
const maxBucketSpan = math.MaxInt64 / 4

// newTokenBucket validates a rate and burst and applies the burst's
// default, max(1, ceil(rate)).
func newTokenBucket(rate float64, burst int) (tokenBucket, error) {
	switch {
	case math.IsNaN(rate) || rate <= 0 || rate > 1e9:
		return tokenBucket{}, fmt.Errorf("rate %v: must be positive and at most 1e9 per second", rate)
	case burst < 0:
		return tokenBucket{}, fmt.Errorf("burst %d: must not be negative", burst)
	}
	interval := int64(1e9 / rate) // at least 1, as rate <= 1e9
	if burst == 0 {
		burst = int(math.Max(1, math.Ceil(rate)))
	}
	if int64(burst) > maxBucketSpan/interval {
		return tokenBucket{}, fmt.Errorf("burst %d: takes longer than %s to refill at rate %v", burst, time.Duration(maxBucketSpan), rate)
	}
	return tokenBucket{interval: interval, burst: int64(burst), span: int64(burst) * interval}, nil
}

// take computes a take of n (at most burst) tokens at now from a bucket
// whose state is tat, accepting a wait of up to maxWait. When allowed it
// returns the bucket's new state and the wait before the tokens are due
// (zero when they are there now); when refused, tat unchanged and how long
// until the take would be allowed without waiting.
func (b tokenBucket) take(tat, now, n, maxWait int64) (newTat, wait int64, ok bool) {
	newTat = max(tat, now) + n*b.interval
	wait = newTat - now - b.span
	if wait > maxWait {
		return tat, wait, false
	}
	return newTat, max(wait, 0), true
}

// tokens returns how many tokens a bucket in state tat holds at now.
func (b tokenBucket) tokens(tat, now int64) float64 {
	return float64(b.span-(max(tat, now)-now)) / float64(b.interval)
}

// idleFull is how long after its last take a bucket is full again whatever
// it held: the time to refill it from empty.
func (b tokenBucket) idleFull() time.Duration { return time.Duration(b.span) }
