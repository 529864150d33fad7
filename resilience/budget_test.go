package resilience

import (
	"context"
	"errors"
	"math"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/relia-dev/relia/clock"
)

func TestRetryBudgetSettingsInvalid(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		s    RetryBudgetSettings
	}{
		{"ratio above 1", RetryBudgetSettings{Ratio: 1.5}},
		{"negative ratio", RetryBudgetSettings{Ratio: -0.1}},
		{"NaN ratio", RetryBudgetSettings{Ratio: math.NaN()}},
		{"ratio with NoRatio", RetryBudgetSettings{Ratio: 0.5, NoRatio: true}},
		{"negative floor", RetryBudgetSettings{MinPerSecond: -1}},
		{"floor with NoFloor", RetryBudgetSettings{MinPerSecond: 1, NoFloor: true}},
		{"negative window", RetryBudgetSettings{Window: -time.Second}},
		{"tiny window", RetryBudgetSettings{Window: 5}},
	}
	for _, tt := range tests {
		if _, err := NewRetryBudget(tt.s); err == nil {
			t.Errorf("%s: NewRetryBudget(%+v) gave no error", tt.name, tt.s)
		}
	}
}

func TestRetryBudgetDefaults(t *testing.T) {
	t.Parallel()
	// Defaults: floor 3/s over 10s = 30 retries with no requests at all.
	b, err := NewRetryBudget(RetryBudgetSettings{Clock: clock.NewFake(time.Time{})})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for b.Withdraw() {
		n++
	}
	if n != 30 {
		t.Errorf("default floor allowed %d retries, want 30", n)
	}
	// Ratio 0.2: 100 requests add 20.
	for range 100 {
		b.Deposit()
	}
	for b.Withdraw() {
		n++
	}
	if n != 50 {
		t.Errorf("after 100 requests %d retries allowed, want 50", n)
	}
	if req, ret := b.Counts(); req != 100 || ret != 50 {
		t.Errorf("Counts() = %d, %d; want 100, 50", req, ret)
	}
}

func TestRetryBudgetWindowSlides(t *testing.T) {
	t.Parallel()
	fc := clock.NewFake(time.Time{})
	b, err := NewRetryBudget(RetryBudgetSettings{Ratio: 0.5, NoFloor: true, Window: 10 * time.Second, Clock: fc})
	if err != nil {
		t.Fatal(err)
	}
	for range 10 {
		b.Deposit()
	}
	for range 5 {
		if !b.Withdraw() {
			t.Fatal("withdraw within ratio refused")
		}
	}
	if b.Withdraw() {
		t.Fatal("withdraw beyond ratio allowed")
	}
	fc.Advance(9 * time.Second) // still inside the window
	if b.Withdraw() {
		t.Fatal("withdraw allowed before the window slid")
	}
	fc.Advance(time.Second) // the first bucket leaves the window
	if b.Withdraw() {
		t.Fatal("withdraw allowed with no requests in the window and no floor")
	}
	if req, ret := b.Counts(); req != 0 || ret != 0 {
		t.Errorf("Counts() after the window = %d, %d; want 0, 0", req, ret)
	}
}

// failingCall simulates a dependency that always fails: n calls through a
// Retry, counting attempts.
func failingCalls(t *testing.T, r *Retry, n int) (attempts int) {
	t.Helper()
	p := NewPipeline[int](r)
	for range n {
		_, err := p.Get(context.Background(), func(context.Context) (int, error) {
			attempts++
			return 0, errors.New("boom")
		})
		if err == nil {
			t.Fatal("failing call succeeded")
		}
	}
	return attempts
}

// TestRetryBudgetCapsRetries drives a 100%-failing dependency over 60 s of
// simulated time, one 1 s bucket per step, and checks that in every window
// of 10 consecutive buckets the retries stay within
// Ratio*requests + MinPerSecond*Window, and that without the budget they
// amplify the load MaxAttempts times.
func TestRetryBudgetCapsRetries(t *testing.T) {
	t.Parallel()
	const (
		steps       = 60
		callsPerSec = 50
		ratio       = 0.2
		minPerSec   = 1.0
		window      = 10 * time.Second
		maxAttempts = 4
	)
	for _, withBudget := range []bool{true, false} {
		fc := clock.NewFake(time.Time{})
		var budget *RetryBudget
		if withBudget {
			var err error
			budget, err = NewRetryBudget(RetryBudgetSettings{Ratio: ratio, MinPerSecond: minPerSec, Window: window, Clock: fc})
			if err != nil {
				t.Fatal(err)
			}
		}
		rejected := 0
		r, err := NewRetry(RetrySettings{
			MaxAttempts: maxAttempts, Base: time.Nanosecond, Cap: time.Nanosecond, Jitter: JitterNone,
			Budget: budget, Clock: zeroSleepClock{fc},
			Observer: ObserverFunc(func(e Event) {
				if e.Kind == EventRejected && e.Reason == "retry_budget_exhausted" {
					rejected++
				}
			}),
		})
		if err != nil {
			t.Fatal(err)
		}
		retries := make([]int, steps)
		for s := range steps {
			retries[s] = failingCalls(t, r, callsPerSec) - callsPerSec
			fc.Advance(time.Second)
		}
		total := 0
		for _, n := range retries {
			total += n
		}
		if !withBudget {
			if want := steps * callsPerSec * (maxAttempts - 1); total != want {
				t.Errorf("without budget: %d retries, want %d", total, want)
			}
			continue
		}
		bound := ratio*float64(callsPerSec*10) + minPerSec*window.Seconds() // 110
		for s := range steps {
			sum := 0
			for i := max(0, s-9); i <= s; i++ {
				sum += retries[i]
			}
			requests := callsPerSec * (min(s, 9) + 1)
			if b := ratio*float64(requests) + minPerSec*window.Seconds(); float64(sum) > b {
				t.Errorf("window ending at second %d: %d retries, bound %v", s, sum, b)
			}
		}
		// Once the window is full, the budget is spent exactly to the bound
		// in each window: retries are refused, not merely reduced.
		sum := 0
		for i := steps - 10; i < steps; i++ {
			sum += retries[i]
		}
		if float64(sum) != bound {
			t.Errorf("last full window: %d retries, want exactly %v", sum, bound)
		}
		if rejected == 0 {
			t.Error("no retry_budget_exhausted events")
		}
	}
}

// zeroSleepClock is a fake clock whose timers have fired already, so that
// backoff sleeps in budget tests take no simulated time and need no
// Advance per retry.
type zeroSleepClock struct{ *clock.Fake }

func (c zeroSleepClock) NewTimer(time.Duration) clock.Timer {
	ch := make(chan time.Time, 1)
	ch <- c.Now()
	return firedTimer{ch}
}

type firedTimer struct{ ch chan time.Time }

func (t firedTimer) C() <-chan time.Time        { return t.ch }
func (t firedTimer) Stop() bool                 { return false }
func (t firedTimer) Reset(d time.Duration) bool { return false }

// TestRetryBudgetConcurrent withdraws from many goroutines at once: the
// budget never grants more than its bound. Run under -race.
func TestRetryBudgetConcurrent(t *testing.T) {
	t.Parallel()
	fc := clock.NewFake(time.Time{})
	b, err := NewRetryBudget(RetryBudgetSettings{Ratio: 0.1, MinPerSecond: 1, Clock: fc})
	if err != nil {
		t.Fatal(err)
	}
	const workers, each = 8, 500
	var granted atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range each {
				b.Deposit()
				if b.Withdraw() {
					granted.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	// 4000 requests: at most 400 + 10 retries, and Withdraw may never run
	// ahead of the deposits made so far, so fewer is possible but not more.
	if g := granted.Load(); g > 410 || g < 10 {
		t.Errorf("granted %d retries, want between 10 and 410", g)
	}
	if req, ret := b.Counts(); req != workers*each || ret != granted.Load() {
		t.Errorf("Counts() = %d, %d; want %d, %d", req, ret, workers*each, granted.Load())
	}
}

// Deposits made while other goroutines move the window on are all
// counted: the bucket a lock-free deposit adds to is never cleared while
// it is still in the window.
func TestRetryBudgetDepositsWhileWindowSlides(t *testing.T) {
	t.Parallel()
	fc := clock.NewFake(time.Time{})
	b, err := NewRetryBudget(RetryBudgetSettings{Window: 10 * time.Second, Clock: fc})
	if err != nil {
		t.Fatal(err)
	}
	const workers, each = 4, 2000
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				if w == 0 && i%100 == 0 {
					fc.Advance(200 * time.Millisecond) // 4 s in all: inside the window
				}
				if i%2 == 0 {
					b.Deposit()
				} else {
					b.DepositAt(fc.Now())
				}
			}
		})
	}
	wg.Wait()
	if req, _ := b.Counts(); req != workers*each {
		t.Errorf("Counts() requests = %d, want %d", req, workers*each)
	}
}

// DepositAt takes the caller's time and reads no clock; a time behind the
// newest bucket counts into the newest, as Deposit's own reads do when
// the clock steps back.
func TestRetryBudgetDepositAt(t *testing.T) {
	t.Parallel()
	cc := &countingClock{Clock: clock.NewFake(time.Time{})}
	fc := cc.Clock.(*clock.Fake)
	start := fc.Now()
	b, err := NewRetryBudget(RetryBudgetSettings{Window: 10 * time.Second, Clock: cc})
	if err != nil {
		t.Fatal(err)
	}
	cc.reads = 0
	for range 10 {
		b.DepositAt(start.Add(500 * time.Millisecond))
	}
	if cc.reads != 0 {
		t.Errorf("DepositAt read the clock %d times", cc.reads)
	}
	fc.Advance(5 * time.Second)
	b.Deposit()                             // bucket 5 is now the newest
	b.DepositAt(start.Add(1 * time.Second)) // behind it: counts in bucket 5
	fc.Advance(6 * time.Second)             // buckets 0 and 1 leave the window; 5 stays
	if req, _ := b.Counts(); req != 2 {
		t.Errorf("Counts() requests = %d, want 2 (the deposits of bucket 5)", req)
	}
	fc.Advance(5 * time.Second)
	if req, _ := b.Counts(); req != 0 {
		t.Errorf("Counts() requests after the window = %d, want 0", req)
	}
}

// StartAt deposits at the caller's time and starts MaxDuration from it.
func TestRetryStartAt(t *testing.T) {
	t.Parallel()
	cc := &countingClock{Clock: clock.NewFake(time.Time{})}
	fc := cc.Clock.(*clock.Fake)
	budget, err := NewRetryBudget(RetryBudgetSettings{Clock: cc})
	if err != nil {
		t.Fatal(err)
	}
	r, err := NewRetry(RetrySettings{MaxAttempts: 5, MaxDuration: time.Second, Base: 100 * time.Millisecond, Cap: 100 * time.Millisecond, Budget: budget, Clock: cc})
	if err != nil {
		t.Fatal(err)
	}
	cc.reads = 0
	c := r.StartAt(fc.Now().Add(-time.Second))
	if cc.reads != 0 {
		t.Errorf("StartAt read the clock %d times", cc.reads)
	}
	if req, _ := budget.Counts(); req != 1 {
		t.Errorf("budget requests = %d, want 1", req)
	}
	// The call began a second ago: any backoff runs past MaxDuration.
	if _, err := c.Again(errors.New("boom"), time.Time{}); !errors.Is(err, ErrRetriesExhausted) {
		t.Errorf("Again = %v, want retries exhausted (out of time)", err)
	}
}

// BenchmarkRetryBudgetDeposit is the budget's work on every request, on
// the real clock: alone, from every processor at once, and at a time the
// caller read already (the deposit's own work, without the clock read).
func BenchmarkRetryBudgetDeposit(b *testing.B) {
	rb, err := NewRetryBudget(RetryBudgetSettings{})
	if err != nil {
		b.Fatal(err)
	}
	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			rb.Deposit()
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				rb.Deposit()
			}
		})
	})
	b.Run("caller's time", func(b *testing.B) {
		now := time.Now() // read for the request anyway, as the gateway does
		b.ReportAllocs()
		for b.Loop() {
			rb.DepositAt(now)
		}
	})
}
