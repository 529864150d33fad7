package resilience

import (
	"context"
	"errors"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/relia-dev/relia/clock"
)

// jumpClock is a fake clock on which every sleep takes exactly its
// duration at once: NewTimer moves the time forward by d and returns a
// fired timer. Retry loops then run synchronously in simulated time.
type jumpClock struct{ *clock.Fake }

func (c jumpClock) NewTimer(d time.Duration) clock.Timer {
	c.Advance(d)
	ch := make(chan time.Time, 1)
	ch <- c.Now()
	return firedTimer{ch}
}

func TestRetrySettingsInvalid(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		s    RetrySettings
	}{
		{"negative attempts", RetrySettings{MaxAttempts: -1}},
		{"negative max duration", RetrySettings{MaxDuration: -time.Second}},
		{"negative base", RetrySettings{Base: -time.Second}},
		{"negative cap", RetrySettings{Cap: -time.Second}},
		{"cap below base", RetrySettings{Base: time.Second, Cap: time.Millisecond}},
		{"multiplier below 1", RetrySettings{Multiplier: 0.5}},
		{"negative multiplier", RetrySettings{Multiplier: -2}},
		{"negative max retry-after", RetrySettings{MaxRetryAfter: -1}},
		{"unknown jitter", RetrySettings{Jitter: Jitter(42)}},
	}
	for _, tt := range tests {
		if _, err := NewRetry(tt.s); err == nil {
			t.Errorf("%s: NewRetry gave no error", tt.name)
		}
	}
	// Zero values are the defaults, and a large Base lifts the default cap.
	r, err := NewRetry(RetrySettings{Base: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	if r.maxAttempts != DefaultMaxAttempts || r.backoff.Cap != time.Minute || r.backoff.Multiplier != DefaultMultiplier || r.maxRetryAfter != DefaultMaxRetryAfter {
		t.Errorf("defaults not applied: %+v", r)
	}
}

// attemptLog records a retry's attempts and events.
type attemptLog struct {
	mu     sync.Mutex
	times  []time.Time
	events []Event
}

func (l *attemptLog) Observe(e Event) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.events = append(l.events, e)
}

func (l *attemptLog) retryDelays() []time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []time.Duration
	for _, e := range l.events {
		if e.Kind == EventRetry {
			out = append(out, e.Delay)
		}
	}
	return out
}

func TestRetryStops(t *testing.T) {
	t.Parallel()
	boom := errors.New("boom")
	tests := []struct {
		name         string
		s            RetrySettings
		failures     int           // attempts that fail before one succeeds
		attemptTakes time.Duration // simulated time each attempt takes
		wantAttempts int
		wantErr      []error // errors.Is targets; nil means success
		wantOutOfTim bool
		wantDelays   []time.Duration
	}{
		{
			name:         "max attempts",
			s:            RetrySettings{MaxAttempts: 4, Base: 100 * time.Millisecond, Jitter: JitterNone},
			failures:     100,
			wantAttempts: 4,
			wantErr:      []error{ErrRetriesExhausted, boom},
			wantDelays:   []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond},
		},
		{
			name:         "one attempt means no retries",
			s:            RetrySettings{MaxAttempts: 1},
			failures:     100,
			wantAttempts: 1,
			wantErr:      []error{ErrRetriesExhausted, boom},
		},
		{
			name:         "success on third attempt",
			s:            RetrySettings{MaxAttempts: 5, Base: 10 * time.Millisecond, Multiplier: 3, Jitter: JitterNone},
			failures:     2,
			wantAttempts: 3,
			wantDelays:   []time.Duration{10 * time.Millisecond, 30 * time.Millisecond},
		},
		{
			// Attempts start at 0, 0.1, 0.3, 0.7 s; the next wait of 0.8 s
			// would end at 1.5 s, past the 1 s bound.
			name:         "max duration",
			s:            RetrySettings{MaxAttempts: 10, MaxDuration: time.Second, Base: 100 * time.Millisecond, Jitter: JitterNone},
			failures:     100,
			wantAttempts: 4,
			wantErr:      []error{ErrRetriesExhausted, boom},
			wantOutOfTim: true,
			wantDelays:   []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond},
		},
		{
			// Each attempt takes 300 ms: attempts at 0, 0.4, 0.8 s; the third
			// ends at 1.1 s and no wait fits before the 1 s bound.
			name:         "max duration counts attempt time",
			s:            RetrySettings{MaxAttempts: 10, MaxDuration: time.Second, Base: 100 * time.Millisecond, Multiplier: 1, Jitter: JitterNone},
			failures:     100,
			attemptTakes: 300 * time.Millisecond,
			wantAttempts: 3,
			wantErr:      []error{ErrRetriesExhausted, boom},
			wantOutOfTim: true,
			wantDelays:   []time.Duration{100 * time.Millisecond, 100 * time.Millisecond},
		},
		{
			name:         "cap bounds delays",
			s:            RetrySettings{MaxAttempts: 5, Base: 100 * time.Millisecond, Cap: 250 * time.Millisecond, Jitter: JitterNone},
			failures:     100,
			wantAttempts: 5,
			wantErr:      []error{ErrRetriesExhausted, boom},
			wantDelays:   []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 250 * time.Millisecond, 250 * time.Millisecond},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			fc := clock.NewFake(time.Time{})
			log := &attemptLog{}
			tt.s.Clock, tt.s.Observer = jumpClock{fc}, log
			r, err := NewRetry(tt.s)
			if err != nil {
				t.Fatal(err)
			}
			attempts := 0
			v, err := NewPipeline[int](r).Get(context.Background(), func(context.Context) (int, error) {
				attempts++
				fc.Advance(tt.attemptTakes)
				if attempts <= tt.failures {
					return attempts, boom
				}
				return attempts, nil
			})
			if attempts != tt.wantAttempts {
				t.Errorf("attempts = %d, want %d", attempts, tt.wantAttempts)
			}
			if v != attempts {
				t.Errorf("result %d, want the last attempt's %d", v, attempts)
			}
			for _, target := range tt.wantErr {
				if !errors.Is(err, target) {
					t.Errorf("error %v does not match %v", err, target)
				}
			}
			if tt.wantErr == nil && err != nil {
				t.Errorf("error %v, want success", err)
			}
			var ex *RetriesExhaustedError
			if errors.As(err, &ex) {
				if ex.Attempts != tt.wantAttempts || ex.OutOfTime != tt.wantOutOfTim {
					t.Errorf("RetriesExhaustedError %+v, want %d attempts, out of time %v", ex, tt.wantAttempts, tt.wantOutOfTim)
				}
				if want := "after " + strconv.Itoa(tt.wantAttempts) + " attempts"; !strings.Contains(err.Error(), want) {
					t.Errorf("message %q does not say %q", err, want)
				}
			}
			if got := log.retryDelays(); !equalDurations(got, tt.wantDelays) {
				t.Errorf("delays %v, want %v", got, tt.wantDelays)
			}
		})
	}
}

func equalDurations(a, b []time.Duration) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestRetryWhatIsRetried(t *testing.T) {
	t.Parallel()
	boom := errors.New("boom")
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	tests := []struct {
		name         string
		ctx          context.Context
		err          error
		retryIf      func(error) bool
		wantAttempts int
	}{
		{"plain failure", context.Background(), boom, nil, 3},
		{"breaker open", context.Background(), &RejectedError{Policy: "breaker", Reason: "breaker_open", Sentinel: ErrBreakerOpen}, nil, 1},
		{"half-open full", context.Background(), &RejectedError{Policy: "breaker", Reason: "half_open_full", Sentinel: ErrHalfOpenFull}, nil, 1},
		{"budget exhausted", context.Background(), &RejectedError{Policy: "retry", Reason: "retry_budget_exhausted", Sentinel: ErrRetryBudgetExhausted}, nil, 1},
		{"bulkhead full", context.Background(), &RejectedError{Policy: "bulkhead", Reason: "bulkhead_full", Sentinel: ErrBulkheadFull}, nil, 3},
		{"inner timeout", context.Background(), &TimeoutError{Limit: time.Second}, nil, 3},
		{"caller cancelled", cancelled, context.Canceled, nil, 1},
		{"caller cancelled, RetryIf says yes", cancelled, boom, func(error) bool { return true }, 1},
		{"RetryIf says no", context.Background(), boom, func(error) bool { return false }, 1},
		{"RetryIf retries breaker", context.Background(), &RejectedError{Policy: "breaker", Sentinel: ErrBreakerOpen}, func(error) bool { return true }, 3},
		{"WithoutRetry", WithoutRetry(context.Background()), boom, nil, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r, err := NewRetry(RetrySettings{MaxAttempts: 3, RetryIf: tt.retryIf, Clock: jumpClock{clock.NewFake(time.Time{})}})
			if err != nil {
				t.Fatal(err)
			}
			attempts := 0
			_, err = NewPipeline[int](r).Get(tt.ctx, func(context.Context) (int, error) {
				attempts++
				return 0, tt.err
			})
			if attempts != tt.wantAttempts {
				t.Errorf("attempts = %d, want %d", attempts, tt.wantAttempts)
			}
			if !errors.Is(err, tt.err) {
				t.Errorf("error %v does not match the attempt's %v", err, tt.err)
			}
		})
	}
}

func TestRetryAllowed(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	if !RetryAllowed(ctx) {
		t.Error("plain context not retryable")
	}
	type key struct{}
	child := context.WithValue(WithoutRetry(ctx), key{}, 1)
	if RetryAllowed(child) {
		t.Error("child of WithoutRetry retryable")
	}
}

// TestRetryCancelDuringBackoff cancels the caller's context while the retry
// sleeps on a fake clock that never moves: the call must return at once.
func TestRetryCancelDuringBackoff(t *testing.T) {
	t.Parallel()
	fc := clock.NewFake(time.Time{})
	r, err := NewRetry(RetrySettings{MaxAttempts: 3, Base: time.Hour, Jitter: JitterNone, Clock: fc})
	if err != nil {
		t.Fatal(err)
	}
	boom := errors.New("boom")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	attempts := 0
	go func() {
		_, err := NewPipeline[int](r).Get(ctx, func(context.Context) (int, error) {
			attempts++
			return 0, boom
		})
		done <- err
	}()
	fc.BlockUntil(1) // the backoff timer is waiting
	cancel()
	err = <-done
	if !errors.Is(err, context.Canceled) || !errors.Is(err, boom) {
		t.Errorf("error %v, want it to match context.Canceled and the attempt's error", err)
	}
	if attempts != 1 {
		t.Errorf("attempts = %d, want 1", attempts)
	}
}

// hintError is a failure carrying a server's retry hint.
type hintError struct{ after time.Duration }

func (e hintError) Error() string                    { return "unavailable" }
func (e hintError) RetryHint() (time.Duration, bool) { return e.after, true }

// TestRetryHonoursRetryAfter: the retry waits exactly the hint on the fake
// clock, longer than its own backoff.
func TestRetryHonoursRetryAfter(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		err  error
	}{
		{"server hint", hintError{5 * time.Second}},
		{"rate limiter rejection", &RejectedError{Policy: "ratelimit", Reason: "rate_limited", RetryAfter: 5 * time.Second, Sentinel: ErrRateLimited}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			fc := clock.NewFake(time.Time{})
			r, err := NewRetry(RetrySettings{MaxAttempts: 2, Base: time.Millisecond, Jitter: JitterNone, Clock: fc})
			if err != nil {
				t.Fatal(err)
			}
			start := fc.Now()
			var second time.Time
			done := make(chan error, 1)
			go func() {
				attempts := 0
				_, err := NewPipeline[int](r).Get(context.Background(), func(context.Context) (int, error) {
					attempts++
					if attempts == 1 {
						return 0, tt.err
					}
					second = fc.Now()
					return 1, nil
				})
				done <- err
			}()
			fc.BlockUntil(1)
			if dl, ok := fc.NextDeadline(); !ok || dl.Sub(start) != 5*time.Second {
				t.Fatalf("backoff ends at %v, want start+5s", dl.Sub(start))
			}
			fc.Advance(5*time.Second - time.Nanosecond)
			if fc.Waiters() != 1 {
				t.Fatal("retry did not wait the whole hint")
			}
			fc.Advance(time.Nanosecond)
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			if got := second.Sub(start); got != 5*time.Second {
				t.Errorf("second attempt at +%v, want +5s", got)
			}
		})
	}
}

func TestRetryHintTooLong(t *testing.T) {
	t.Parallel()
	// The fake clock starts at the real time so that a real context's
	// deadline, ten minutes ahead, is comparable with it.
	start := time.Now()
	deadlineCtx, cancel := context.WithDeadline(context.Background(), start.Add(10*time.Minute))
	t.Cleanup(cancel) // not defer: the parallel subtests run after this function returns
	tests := []struct {
		name      string
		s         RetrySettings
		ctx       context.Context
		hint      time.Duration
		exhausted bool
	}{
		{"above MaxRetryAfter default", RetrySettings{}, context.Background(), 2 * time.Minute, false},
		{"above MaxRetryAfter set", RetrySettings{MaxRetryAfter: 10 * time.Second}, context.Background(), 11 * time.Second, false},
		{"beyond MaxDuration", RetrySettings{MaxDuration: 10 * time.Second}, context.Background(), 20 * time.Second, true},
		{"beyond ctx deadline", RetrySettings{MaxRetryAfter: time.Hour}, deadlineCtx, 20 * time.Minute, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.s.Clock = clock.NewFake(start)
			r, err := NewRetry(tt.s)
			if err != nil {
				t.Fatal(err)
			}
			attempts := 0
			hint := hintError{tt.hint}
			_, err = NewPipeline[int](r).Get(tt.ctx, func(context.Context) (int, error) {
				attempts++
				return 0, hint
			})
			if attempts != 1 {
				t.Errorf("attempts = %d, want 1", attempts)
			}
			if !errors.Is(err, hint) || errors.Is(err, ErrRetriesExhausted) != tt.exhausted {
				t.Errorf("error %v: want the hint's error, exhausted %v", err, tt.exhausted)
			}
		})
	}
}

func TestRetryBudgetRefusal(t *testing.T) {
	t.Parallel()
	fc := clock.NewFake(time.Time{})
	b, err := NewRetryBudget(RetryBudgetSettings{NoFloor: true, Ratio: 0.5, Clock: fc})
	if err != nil {
		t.Fatal(err)
	}
	log := &attemptLog{}
	r, err := NewRetry(RetrySettings{MaxAttempts: 3, Budget: b, Clock: jumpClock{fc}, Observer: log})
	if err != nil {
		t.Fatal(err)
	}
	hint := hintError{time.Second}
	attempts := 0
	_, err = NewPipeline[int](r).Get(context.Background(), func(context.Context) (int, error) {
		attempts++
		return 0, hint
	})
	// One request allows half a retry: none.
	if attempts != 1 {
		t.Errorf("attempts = %d, want 1", attempts)
	}
	if !errors.Is(err, ErrRetryBudgetExhausted) || !errors.Is(err, hint) || !errors.Is(err, ErrRejected) {
		t.Errorf("error %v should match ErrRetryBudgetExhausted, ErrRejected and the attempt's error", err)
	}
	if msg := err.Error(); !strings.Contains(msg, "retry budget exhausted") || !strings.Contains(msg, "unavailable") {
		t.Errorf("message %q should name the budget and the attempt's error", msg)
	}
	if d, ok := RetryHintOf(err); !ok || d != time.Second {
		t.Errorf("RetryHintOf = %v, %v; want the attempt's hint", d, ok)
	}
	var rejected int
	for _, e := range log.events {
		if e.Kind == EventRejected && e.Reason == "retry_budget_exhausted" && e.Policy == "retry" {
			rejected++
		}
	}
	if rejected != 1 {
		t.Errorf("%d rejection events, want 1", rejected)
	}
}

func TestRetryEvents(t *testing.T) {
	t.Parallel()
	log := &attemptLog{}
	r, err := NewRetry(RetrySettings{Name: "up", MaxAttempts: 3, Base: time.Second, Jitter: JitterNone, Clock: jumpClock{clock.NewFake(time.Time{})}, Observer: log})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	if _, err := NewPipeline[int](r).Get(context.Background(), func(context.Context) (int, error) {
		n++
		if n < 3 {
			return 0, errors.New("boom")
		}
		return 0, nil
	}); err != nil {
		t.Fatal(err)
	}
	want := []Event{
		{Kind: EventRetry, Policy: "retry", Name: "up", Attempt: 2, Delay: time.Second},
		{Kind: EventRetry, Policy: "retry", Name: "up", Attempt: 3, Delay: 2 * time.Second},
		{Kind: EventSuccess, Policy: "retry", Name: "up", Duration: 3 * time.Second},
	}
	if len(log.events) != len(want) {
		t.Fatalf("events %+v, want %+v", log.events, want)
	}
	for i := range want {
		if log.events[i] != want[i] {
			t.Errorf("event %d: %+v, want %+v", i, log.events[i], want[i])
		}
	}
}

// TestRetrySeededJitterReproducible: the same seed gives the same delays.
func TestRetrySeededJitterReproducible(t *testing.T) {
	t.Parallel()
	run := func() []time.Duration {
		log := &attemptLog{}
		r, err := NewRetry(RetrySettings{MaxAttempts: 6, Jitter: JitterDecorrelated, Rand: rand.NewPCG(9, 9), Clock: jumpClock{clock.NewFake(time.Time{})}, Observer: log})
		if err != nil {
			t.Fatal(err)
		}
		_, _ = NewPipeline[int](r).Get(context.Background(), func(context.Context) (int, error) { return 0, errors.New("boom") })
		return log.retryDelays()
	}
	a, b := run(), run()
	if len(a) != 5 || !equalDurations(a, b) {
		t.Errorf("delays %v and %v, want 5 equal", a, b)
	}
}

func TestRetrySuccessDoesNotAllocate(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates on its own")
	}

	b, err := NewRetryBudget(RetryBudgetSettings{})
	if err != nil {
		t.Fatal(err)
	}
	r, err := NewRetry(RetrySettings{Budget: b})
	if err != nil {
		t.Fatal(err)
	}
	p := NewPipeline[int](r)
	fn := func(context.Context) (int, error) { return 1, nil }
	ctx := context.Background()
	if n := testing.AllocsPerRun(1000, func() { _, _ = p.Get(ctx, fn) }); n != 0 {
		t.Errorf("success path allocates %v times per call, want 0", n)
	}
}

func BenchmarkRetrySuccess(b *testing.B) {
	r, err := NewRetry(RetrySettings{})
	if err != nil {
		b.Fatal(err)
	}
	p := NewPipeline[int](r)
	fn := func(context.Context) (int, error) { return 1, nil }
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		_, _ = p.Get(ctx, fn)
	}
}

// TestRetryJudgesClassifiedResults: a failing result (an HTTP 503) reaches
// the Retry as the classifier's error, is retried, and the caller gets the
// last result.
func TestRetryJudgesClassifiedResults(t *testing.T) {
	t.Parallel()
	r, err := NewRetry(RetrySettings{MaxAttempts: 4, Clock: jumpClock{clock.NewFake(time.Time{})}})
	if err != nil {
		t.Fatal(err)
	}
	errUnavailable := errors.New("status 503")
	var discarded []int
	p := NewPipeline[int](r).WithClassifier(func(status int, err error) error {
		if status == 503 {
			return errUnavailable
		}
		return err
	}).WithDiscard(func(status int) { discarded = append(discarded, status) })
	statuses := []int{503, 503, 200}
	n := 0
	v, err := p.Get(context.Background(), func(context.Context) (int, error) {
		n++
		return statuses[n-1], nil
	})
	if err != nil || v != 200 || n != 3 {
		t.Errorf("got %d, %v after %d attempts; want 200, nil after 3", v, err, n)
	}
	if len(discarded) != 2 {
		t.Errorf("discarded %v, want the two 503s", discarded)
	}
}
