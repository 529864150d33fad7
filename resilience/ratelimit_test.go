package resilience

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/relia-dev/relia/clock"
)

func newTestRateLimiter(t *testing.T, s RateLimiterSettings) (*RateLimiter, *clock.Fake) {
	t.Helper()
	fc := clock.NewFake(time.Time{})
	s.Clock = fc
	r, err := NewRateLimiter(s)
	if err != nil {
		t.Fatalf("NewRateLimiter: %v", err)
	}
	return r, fc
}

func TestRateLimiterSettingsInvalid(t *testing.T) {
	t.Parallel()
	testBadSettings(t, "rate limiter search: ", func(s RateLimiterSettings) error {
		s.Name = "search"
		_, err := NewRateLimiter(s)
		return err
	}, []badSettings[RateLimiterSettings]{
		{"no rate", RateLimiterSettings{}, "rate 0"},
		{"negative rate", RateLimiterSettings{Rate: -1}, "rate -1"},
		{"NaN rate", RateLimiterSettings{Rate: math.NaN()}, "rate NaN"},
		{"infinite rate", RateLimiterSettings{Rate: math.Inf(1)}, "rate +Inf"},
		{"rate above 1e9", RateLimiterSettings{Rate: 2e9}, "rate 2e+09"},
		{"negative burst", RateLimiterSettings{Rate: 1, Burst: -1}, "burst -1"},
		{"burst too long to refill", RateLimiterSettings{Rate: 1e-9, Burst: 1 << 20}, "burst 1048576"},
		{"negative max wait", RateLimiterSettings{Rate: 1, MaxWait: -time.Second}, "max wait"},
	})
}

func TestRateLimiterDefaultBurst(t *testing.T) {
	t.Parallel()
	tests := []struct {
		rate float64
		want int
	}{{0.1, 1}, {1, 1}, {2.5, 3}, {100, 100}}
	for _, tt := range tests {
		r, _ := newTestRateLimiter(t, RateLimiterSettings{Rate: tt.rate})
		if r.Burst() != tt.want {
			t.Errorf("rate %v: burst %d, want %d", tt.rate, r.Burst(), tt.want)
		}
		if r.Tokens() != float64(tt.want) {
			t.Errorf("rate %v: a new limiter holds %v tokens, want a full bucket of %d", tt.rate, r.Tokens(), tt.want)
		}
	}
}

func TestRateLimiterBurstThenRefill(t *testing.T) {
	t.Parallel()
	r, fc := newTestRateLimiter(t, RateLimiterSettings{Rate: 10, Burst: 5})
	steps := []struct {
		advance   time.Duration
		allowed   int           // Allow calls that must succeed
		retry     time.Duration // then the refusal's retryAfter
		tokensEnd float64
	}{
		{0, 5, 100 * time.Millisecond, 0},
		{99 * time.Millisecond, 0, time.Millisecond, 0.99},
		{time.Millisecond, 1, 100 * time.Millisecond, 0},
		{250 * time.Millisecond, 2, 50 * time.Millisecond, 0.5},
		{time.Hour, 5, 100 * time.Millisecond, 0}, // the bucket holds no more than Burst
	}
	for i, st := range steps {
		fc.Advance(st.advance)
		for j := range st.allowed {
			if !r.Allow() {
				t.Fatalf("step %d: call %d refused, want %d allowed", i, j+1, st.allowed)
			}
		}
		ok, retry := r.Take(1)
		if ok || retry != st.retry {
			t.Fatalf("step %d: call %d = %v, retry after %s; want refused, retry after %s", i, st.allowed+1, ok, retry, st.retry)
		}
		if got := r.Tokens(); math.Abs(got-st.tokensEnd) > 1e-9 {
			t.Errorf("step %d: %v tokens left, want %v", i, got, st.tokensEnd)
		}
	}
}

// Over a long run the limiter lets exactly Rate calls a second through,
// also for rates whose interval is not a whole number of nanoseconds.
func TestRateLimiterExactRate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		rate  float64
		burst int
		span  time.Duration
		want  int
	}{
		// Calls are tried every millisecond from 0 to span inclusive: the
		// full bucket, then one call per interval. A bucket of one whose
		// interval is not a whole number of milliseconds would lose the
		// remainder at each poll (it cannot hold more than one token), so
		// such rates get a burst that absorbs it.
		{10, 1, 10 * time.Second, 1 + 100},
		{3, 3, 10 * time.Second, 3 + 30},
		{0.5, 1, 10 * time.Second, 1 + 5},
		{1000, 1, time.Second, 1 + 1000},
		{7, 7, 10 * time.Second, 7 + 70},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.rate), func(t *testing.T) {
			t.Parallel()
			r, fc := newTestRateLimiter(t, RateLimiterSettings{Rate: tt.rate, Burst: tt.burst})
			got := 0
			for step := time.Duration(0); step <= tt.span; step += time.Millisecond {
				for r.Allow() {
					got++
				}
				fc.Advance(time.Millisecond)
			}
			if got != tt.want {
				t.Errorf("%d calls allowed in %s, want %d", got, tt.span, tt.want)
			}
		})
	}
}

func TestRateLimiterTake(t *testing.T) {
	t.Parallel()
	r, _ := newTestRateLimiter(t, RateLimiterSettings{Rate: 10, Burst: 5})
	tests := []struct {
		n     int
		ok    bool
		retry time.Duration
	}{
		{0, true, 0},
		{-1, true, 0},
		{3, true, 0},
		{3, false, 100 * time.Millisecond}, // 2 left, one more due in an interval
		{6, false, 0},                      // more than the bucket holds: never
		{2, true, 0},
		{1, false, 100 * time.Millisecond},
	}
	for i, tt := range tests {
		ok, retry := r.Take(tt.n)
		if ok != tt.ok || retry != tt.retry {
			t.Errorf("step %d: Take(%d) = %v, %s; want %v, %s", i, tt.n, ok, retry, tt.ok, tt.retry)
		}
	}
}

func TestRateLimiterRejectsInPipeline(t *testing.T) {
	t.Parallel()
	var log eventLog
	r, fc := newTestRateLimiter(t, RateLimiterSettings{Name: "search", Rate: 4, Burst: 1, Observer: &log})
	p := NewPipeline[int](r)
	calls := 0
	fn := func(context.Context) (int, error) { calls++; return 1, nil }
	if _, err := p.Get(context.Background(), fn); err != nil {
		t.Fatal(err)
	}
	fc.Advance(100 * time.Millisecond)
	_, err := p.Get(context.Background(), fn)
	wantRejected(t, err, RejectedError{Policy: "ratelimit", Name: "search", Reason: "rate_limited", RetryAfter: 150 * time.Millisecond, Sentinel: ErrRateLimited})
	if hint, ok := RetryHintOf(err); !ok || hint != 150*time.Millisecond {
		t.Errorf("RetryHintOf = %s, %v; want 150ms, true", hint, ok)
	}
	if calls != 1 {
		t.Errorf("the function ran %d times, want 1", calls)
	}
	r.Allow()
	want := []Event{
		{Kind: EventRejected, Policy: "ratelimit", Name: "search", Reason: "rate_limited"},
		{Kind: EventRejected, Policy: "ratelimit", Name: "search", Reason: "rate_limited"},
	}
	wantEvents(t, log.drain(), want)
}

// acquireRateAsync starts Acquire on its own goroutine and returns where
// its error arrives.
func acquireRateAsync(ctx context.Context, r *RateLimiter) <-chan error {
	out := make(chan error, 1)
	go func() { out <- r.Acquire(ctx) }()
	return out
}

func TestRateLimiterWaits(t *testing.T) {
	t.Parallel()
	r, fc := newTestRateLimiter(t, RateLimiterSettings{Name: "search", Rate: 10, Burst: 1, MaxWait: 150 * time.Millisecond})
	if err := r.Acquire(context.Background()); err != nil {
		t.Fatalf("first call: %v", err)
	}
	second := acquireRateAsync(context.Background(), r)
	fc.BlockUntil(1)
	// The second call holds the next token, due at 100ms; the third's
	// would be due at 200ms, beyond MaxWait, so it is refused at once.
	err := r.Acquire(context.Background())
	wantRejected(t, err, RejectedError{Policy: "ratelimit", Name: "search", Reason: "rate_limited", RetryAfter: 200 * time.Millisecond, Sentinel: ErrRateLimited})
	fc.Advance(100*time.Millisecond - time.Nanosecond)
	select {
	case err := <-second:
		t.Fatalf("second call returned before its token was due: %v", err)
	default:
	}
	fc.Advance(time.Nanosecond)
	if err := <-second; err != nil {
		t.Fatalf("second call: %v", err)
	}
	if ok, retry := r.Take(1); ok || retry != 100*time.Millisecond {
		t.Errorf("Take after the wait = %v, %s; want refused for 100ms", ok, retry)
	}
}

func TestRateLimiterWaitCancelledGivesTokenBack(t *testing.T) {
	t.Parallel()
	r, fc := newTestRateLimiter(t, RateLimiterSettings{Rate: 10, Burst: 1, MaxWait: time.Second})
	if !r.Allow() {
		t.Fatal("first call refused")
	}
	ctx, cancel := context.WithCancel(context.Background())
	waiter := acquireRateAsync(ctx, r)
	fc.BlockUntil(1)
	if got := r.Tokens(); got != -1 {
		t.Errorf("%v tokens with one reserved ahead, want -1", got)
	}
	cancel()
	if err := <-waiter; !errors.Is(err, context.Canceled) || errors.Is(err, ErrRejected) {
		t.Fatalf("cancelled wait: %v, want context.Canceled and no rejection", err)
	}
	if got := r.Tokens(); got != 0 {
		t.Errorf("%v tokens after the cancel, want 0: the reserved token given back", got)
	}
	fc.Advance(100 * time.Millisecond)
	if !r.Allow() {
		t.Error("the token given back did not come due after one interval")
	}
}

// A wait that would end past the caller's deadline is refused at once with
// the retry hint, instead of sleeping into the caller's timeout.
func TestRateLimiterWaitBeyondDeadline(t *testing.T) {
	t.Parallel()
	start := time.Now()
	fc := clock.NewFake(start)
	r, err := NewRateLimiter(RateLimiterSettings{Rate: 1.0 / 120, MaxWait: 10 * time.Minute, Clock: fc})
	if err != nil {
		t.Fatal(err)
	}
	if !r.Allow() {
		t.Fatal("first call refused")
	}
	ctx, cancel := context.WithDeadline(context.Background(), start.Add(time.Minute))
	defer cancel()
	err = r.Acquire(ctx)
	wantRejected(t, err, RejectedError{Policy: "ratelimit", Reason: "rate_limited", RetryAfter: 2 * time.Minute, Sentinel: ErrRateLimited})
	if fc.Waiters() != 0 {
		t.Errorf("%d timers pending, want none: the call must not wait", fc.Waiters())
	}
}

// Goroutines racing for tokens never get more than the bucket held.
// Run under -race.
func TestRateLimiterConcurrentNeverOverGrants(t *testing.T) {
	t.Parallel()
	r, fc := newTestRateLimiter(t, RateLimiterSettings{Rate: 100, Burst: 50})
	var allowed atomic.Int64
	race := func() {
		var wg sync.WaitGroup
		for range 8 {
			wg.Go(func() {
				for range 100 {
					if r.Allow() {
						allowed.Add(1)
					}
				}
			})
		}
		wg.Wait()
	}
	race()
	if got := allowed.Load(); got != 50 {
		t.Fatalf("%d calls allowed from a full bucket of 50", got)
	}
	fc.Advance(300 * time.Millisecond)
	race()
	if got := allowed.Load(); got != 80 {
		t.Fatalf("%d calls allowed after 300ms at 100/s, want 50+30", got)
	}
}

func TestRateLimiterSuccessPathDoesNotAllocate(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates on its own")
	}
	r, err := NewRateLimiter(RateLimiterSettings{Rate: 1e9})
	if err != nil {
		t.Fatal(err)
	}
	if a := testing.AllocsPerRun(1000, func() {
		if !r.Allow() {
			t.Fatal("refused")
		}
	}); a != 0 {
		t.Errorf("Allow: %v allocs per call, want 0", a)
	}
	pl := NewPipeline[int](r)
	ctx := context.Background()
	fn := func(context.Context) (int, error) { return 1, nil }
	if a := testing.AllocsPerRun(1000, func() { _, _ = pl.Get(ctx, fn) }); a != 0 {
		t.Errorf("Run in a pipeline: %v allocs per call, want 0", a)
	}
}

// BenchmarkRateLimiter measures the success path, one token per call from
// a bucket that never runs dry, on the real clock.
//
//	go test -run='^$' -bench=RateLimiter -benchmem ./resilience/
func BenchmarkRateLimiter(b *testing.B) {
	r, err := NewRateLimiter(RateLimiterSettings{Rate: 1e9})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	benchLimits(b, func() error { return r.Acquire(ctx) })
}
