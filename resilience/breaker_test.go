package resilience

import (
	"context"
	"errors"
	"fmt"
	"math"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/relia-dev/relia/clock"
)

var errBreakerTest = errors.New("dependency failed")

// newTestBreaker builds a breaker on a fake clock, failing the test on a
// settings error.
func newTestBreaker(t *testing.T, s BreakerSettings) (*Breaker, *clock.Fake) {
	t.Helper()
	fc := clock.NewFake(time.Time{})
	s.Clock = fc
	b, err := NewBreaker(s)
	if err != nil {
		t.Fatalf("NewBreaker: %v", err)
	}
	return b, fc
}

// outcomes reports each error through a fresh permit, failing the test if
// the breaker refuses one.
func outcomes(t *testing.T, b *Breaker, errs ...error) {
	t.Helper()
	for i, err := range errs {
		p, aerr := b.Allow()
		if aerr != nil {
			t.Fatalf("call %d: Allow: %v", i, aerr)
		}
		p.Done(err)
	}
}

func repeat(err error, n int) []error {
	out := make([]error, n)
	for i := range out {
		out[i] = err
	}
	return out
}

func wantState(t *testing.T, b *Breaker, want State) {
	t.Helper()
	if got := b.State(); got != want {
		t.Fatalf("state = %s, want %s (counts %+v)", got, want, b.Counts())
	}
}

func TestBreakerSettingsInvalid(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		s    BreakerSettings
		want string
	}{
		{"negative consecutive", BreakerSettings{ConsecutiveFailures: -1}, "consecutive failures"},
		{"ratio above one", BreakerSettings{FailureRatio: 1.5}, "failure ratio"},
		{"negative ratio", BreakerSettings{FailureRatio: -0.1}, "failure ratio"},
		{"NaN ratio", BreakerSettings{SlowCallRatio: math.NaN()}, "slow call ratio"},
		{"negative slow duration", BreakerSettings{SlowCallDuration: -time.Second}, "slow call duration"},
		{"negative window", BreakerSettings{WindowSize: -1}, "window size"},
		{"huge window", BreakerSettings{WindowSize: 1 << 30}, "window size"},
		{"negative window duration", BreakerSettings{WindowDuration: -time.Second}, "window duration"},
		{"both windows", BreakerSettings{WindowSize: 10, WindowDuration: time.Second}, "both set"},
		{"buckets without duration", BreakerSettings{WindowBuckets: 5}, "without window duration"},
		{"too many buckets", BreakerSettings{WindowDuration: time.Second, WindowBuckets: 5000}, "window buckets"},
		{"uneven buckets", BreakerSettings{WindowDuration: time.Second, WindowBuckets: 7}, "divide evenly"},
		{"negative min calls", BreakerSettings{MinCalls: -1}, "min calls"},
		{"min calls above window", BreakerSettings{WindowSize: 10, MinCalls: 11}, "min calls"},
		{"negative open duration", BreakerSettings{OpenDuration: -time.Second}, "open duration"},
		{"multiplier below one", BreakerSettings{OpenDurationMultiplier: 0.5}, "multiplier"},
		{"infinite multiplier", BreakerSettings{OpenDurationMultiplier: math.Inf(1)}, "multiplier"},
		{"max open below open", BreakerSettings{OpenDuration: time.Minute, MaxOpenDuration: time.Second}, "max open duration"},
		{"negative max open", BreakerSettings{MaxOpenDuration: -1}, "max open duration"},
		{"negative success threshold", BreakerSettings{SuccessThreshold: -1}, "success threshold"},
		{"negative max probes", BreakerSettings{MaxProbes: -1}, "max probes"},
		{"probes below threshold", BreakerSettings{SuccessThreshold: 3, MaxProbes: 2}, "max probes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.s.Name = "users"
			b, err := NewBreaker(tt.s)
			if err == nil {
				t.Fatalf("NewBreaker(%+v) = %v, nil; want an error", tt.s, b)
			}
			if !strings.Contains(err.Error(), tt.want) || !strings.HasPrefix(err.Error(), "breaker users: ") {
				t.Errorf("error %q: want it to start with %q and mention %q", err, "breaker users: ", tt.want)
			}
		})
	}
}

func TestBreakerSettingsDefaults(t *testing.T) {
	t.Parallel()
	c, err := BreakerSettings{}.config()
	if err != nil {
		t.Fatal(err)
	}
	if c.consecutive != DefaultBreakerConsecutiveFailures || c.windowSize != DefaultBreakerWindowSize ||
		c.openDuration != DefaultBreakerOpenDuration || c.maxProbes != 1 || c.successThreshold != 1 ||
		c.minCalls != DefaultBreakerMinCalls || c.needStart || c.needEnd || c.trackInFlight {
		t.Errorf("defaults = %+v", c)
	}
	c, err = BreakerSettings{FailureRatio: 0.5, SuccessThreshold: 3, WindowSize: 4}.config()
	if err != nil {
		t.Fatal(err)
	}
	if c.consecutive != 0 || c.maxProbes != 3 || c.minCalls != 4 {
		t.Errorf("with a ratio: consecutive %d, max probes %d, min calls %d; want 0, 3, 4", c.consecutive, c.maxProbes, c.minCalls)
	}
	c, err = BreakerSettings{SlowCallRatio: 0.5, WindowDuration: time.Minute}.config()
	if err != nil {
		t.Fatal(err)
	}
	if c.slowDuration != DefaultBreakerSlowCallDuration || c.buckets != DefaultBreakerWindowBuckets ||
		c.bucketWidth != int64(6*time.Second) || !c.trackInFlight || !c.needStart {
		t.Errorf("slow ratio defaults = %+v", c)
	}
}

func TestBreakerConsecutiveFailures(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		outcomes []error
		want     State
	}{
		{"below threshold", repeat(errBreakerTest, 2), StateClosed},
		{"success breaks the run", []error{errBreakerTest, errBreakerTest, nil, errBreakerTest, errBreakerTest}, StateClosed},
		{"at threshold", repeat(errBreakerTest, 3), StateOpen},
		{"ignored errors do not count", []error{errBreakerTest, context.Canceled, errBreakerTest, &RejectedError{Policy: "bulkhead", Sentinel: ErrBulkheadFull}}, StateClosed},
		{"ignored errors do not break the run", []error{errBreakerTest, context.Canceled, errBreakerTest, errBreakerTest}, StateOpen},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, _ := newTestBreaker(t, BreakerSettings{ConsecutiveFailures: 3})
			outcomes(t, b, tt.outcomes...)
			wantState(t, b, tt.want)
		})
	}
}

func TestBreakerFailureRatio(t *testing.T) {
	t.Parallel()
	f := errBreakerTest
	tests := []struct {
		name     string
		s        BreakerSettings
		outcomes []error
		want     State
	}{
		{"below min calls", BreakerSettings{FailureRatio: 0.5, WindowSize: 10, MinCalls: 5}, []error{f, f, f, f}, StateClosed},
		{"min calls reached", BreakerSettings{FailureRatio: 0.5, WindowSize: 10, MinCalls: 5}, []error{f, f, f, f, f}, StateOpen},
		{"success reaching min calls trips", BreakerSettings{FailureRatio: 0.5, WindowSize: 10, MinCalls: 5}, []error{f, f, f, f, nil}, StateOpen},
		{"ratio below", BreakerSettings{FailureRatio: 0.5, WindowSize: 10, MinCalls: 4}, []error{nil, nil, f, nil, nil, f, nil}, StateClosed},
		{"ratio equal", BreakerSettings{FailureRatio: 0.5, WindowSize: 4, MinCalls: 4}, []error{nil, f, nil, f}, StateOpen},
		{"ignored do not count", BreakerSettings{FailureRatio: 0.5, WindowSize: 4, MinCalls: 4}, []error{nil, f, context.Canceled, nil, context.Canceled, nil}, StateClosed},
		{"window slides past old failures", BreakerSettings{FailureRatio: 0.5, WindowSize: 4, MinCalls: 4},
			[]error{f, nil, nil, nil, nil, f, nil, nil}, StateClosed},
		{"window slides onto new failures", BreakerSettings{FailureRatio: 0.75, WindowSize: 4, MinCalls: 4},
			[]error{nil, nil, nil, nil, f, f, f}, StateOpen},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, _ := newTestBreaker(t, tt.s)
			for i, err := range tt.outcomes {
				if b.State() != StateClosed {
					t.Fatalf("opened early, before outcome %d", i)
				}
				outcomes(t, b, err)
			}
			wantState(t, b, tt.want)
		})
	}
}

func TestBreakerCountWindowSlides(t *testing.T) {
	t.Parallel()
	b, _ := newTestBreaker(t, BreakerSettings{WindowSize: 4, ConsecutiveFailures: 100})
	steps := []struct {
		err                 error
		requests, failures  uint64
		consSucc, consFails uint64
	}{
		{errBreakerTest, 1, 1, 0, 1},
		{nil, 2, 1, 1, 0},
		{errBreakerTest, 3, 2, 0, 1},
		{errBreakerTest, 4, 3, 0, 2},
		{nil, 4, 2, 1, 0}, // the first failure slides out
		{nil, 4, 2, 2, 0}, // a success replaces a success
		{nil, 4, 1, 3, 0},
		{nil, 4, 0, 4, 0},
	}
	for i, s := range steps {
		outcomes(t, b, s.err)
		c := b.Counts()
		if c.Requests != s.requests || c.Failures != s.failures || c.Successes != s.requests-s.failures ||
			c.ConsecutiveSuccesses != s.consSucc || c.ConsecutiveFailures != s.consFails {
			t.Fatalf("after step %d: counts %+v; want requests %d failures %d consecutive %d/%d",
				i, c, s.requests, s.failures, s.consSucc, s.consFails)
		}
	}
}

func TestBreakerTimeWindowSlides(t *testing.T) {
	t.Parallel()
	b, fc := newTestBreaker(t, BreakerSettings{
		FailureRatio: 0.5, MinCalls: 4, WindowDuration: 10 * time.Second, WindowBuckets: 10,
	})
	// Three failures early in the window, then time passes.
	outcomes(t, b, errBreakerTest, errBreakerTest, errBreakerTest)
	fc.Advance(5 * time.Second)
	if c := b.Counts(); c.Requests != 3 || c.Failures != 3 {
		t.Fatalf("counts %+v; want 3 requests, 3 failures", c)
	}
	// 75% failures with 4 calls: the success that reaches MinCalls trips.
	outcomes(t, b, nil)
	wantState(t, b, StateOpen)

	b.Reset()
	outcomes(t, b, errBreakerTest, errBreakerTest, errBreakerTest)
	fc.Advance(10 * time.Second) // the failures' bucket has slid out
	if c := b.Counts(); c.Requests != 0 {
		t.Fatalf("after the window slid: counts %+v; want none", c)
	}
	outcomes(t, b, nil, nil, errBreakerTest, nil)
	wantState(t, b, StateClosed)
	fc.Advance(9 * time.Second) // still inside the window
	outcomes(t, b, errBreakerTest)
	if c := b.Counts(); c.Requests != 5 || c.Failures != 2 {
		t.Fatalf("counts %+v; want 5 requests, 2 failures", c)
	}
	wantState(t, b, StateClosed)
	outcomes(t, b, errBreakerTest) // 3 of 6
	wantState(t, b, StateOpen)
}

func TestBreakerSlowCallRatio(t *testing.T) {
	t.Parallel()
	b, fc := newTestBreaker(t, BreakerSettings{
		SlowCallRatio: 0.5, SlowCallDuration: time.Second, WindowSize: 4, MinCalls: 4,
	})
	call := func(d time.Duration, err error) {
		t.Helper()
		p, aerr := b.Allow()
		if aerr != nil {
			t.Fatalf("Allow: %v", aerr)
		}
		fc.Advance(d)
		p.Done(err)
	}
	call(2*time.Second, nil)       // slow success
	call(time.Second, nil)         // exactly the limit: not slow
	call(10*time.Millisecond, nil) // fast
	if c := b.Counts(); c.Slow != 1 || c.Requests != 3 {
		t.Fatalf("counts %+v; want 1 slow of 3", c)
	}
	wantState(t, b, StateClosed)
	call(3*time.Second, errBreakerTest) // slow failure: 2 of 4 slow
	wantState(t, b, StateOpen)
	if got := b.Counts().Total.Slow; got != 2 {
		t.Errorf("total slow = %d, want 2", got)
	}
}

// A dependency that stops answering must trip the breaker while its calls
// still hang, not only once they time out.
func TestBreakerHungCallsTrip(t *testing.T) {
	t.Parallel()
	opened := make(chan struct{})
	fc := clock.NewFake(time.Time{})
	b, err := NewBreaker(BreakerSettings{
		Clock: fc, SlowCallRatio: 0.5, SlowCallDuration: time.Second, WindowSize: 10, MinCalls: 4,
		OnStateChange: func(_ string, from, to State) {
			if to == StateOpen {
				close(opened)
			}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	p := NewPipeline[int](b)
	outcomes(t, b, nil, nil) // two fast calls in the window

	release := make(chan struct{})
	started := make(chan struct{}, 3)
	var wg sync.WaitGroup
	for range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, _ = p.Get(context.Background(), func(context.Context) (int, error) {
				started <- struct{}{}
				<-release
				return 1, nil
			})
		}()
	}
	for range 3 {
		<-started
	}
	fc.Advance(500 * time.Millisecond)
	if c := b.Counts(); c.InFlight != 3 || c.SlowInFlight != 0 {
		t.Fatalf("before the threshold: counts %+v; want 3 in flight, none slow", c)
	}
	wantState(t, b, StateClosed)
	fc.Advance(501 * time.Millisecond) // past the slow-call duration
	select {
	case <-opened:
	case <-time.After(10 * time.Second):
		t.Fatalf("breaker did not open while calls hung; counts %+v", b.Counts())
	}
	if c := b.Counts(); c.State != StateOpen {
		t.Fatalf("counts %+v; want open", c)
	}
	close(release)
	wg.Wait()
	// The hung calls ended after the trip: they count in the totals only.
	if c := b.Counts(); c.Total.Requests != 5 || c.Total.Slow != 3 || c.Total.Successes != 5 || c.Requests != 0 {
		t.Errorf("after release: counts %+v; want 5 requests, 3 slow, 5 successes in total and an empty open window", c)
	}
}

// Hung calls count as calls in the window too, so they do not trip the
// breaker before MinCalls is reached, and calls that end stop counting as
// hung.
func TestBreakerHungCallsCountOnce(t *testing.T) {
	t.Parallel()
	b, fc := newTestBreaker(t, BreakerSettings{
		SlowCallRatio: 0.5, SlowCallDuration: time.Second, WindowSize: 10, MinCalls: 3,
	})
	p1, _ := b.Allow()
	p2, _ := b.Allow()
	fc.Advance(2 * time.Second)
	waitFor(t, func() bool { return b.Counts().SlowInFlight == 2 })
	wantState(t, b, StateClosed) // two calls: below MinCalls
	p1.Done(nil)
	c := b.Counts()
	if c.SlowInFlight != 1 || c.Slow != 1 || c.Requests != 1 {
		t.Fatalf("counts %+v; want 1 hung, 1 slow ended", c)
	}
	outcomes(t, b, nil) // 3 calls, 2 slow
	wantState(t, b, StateOpen)
	p2.Done(nil)
}

// waitFor waits for cond, which a clock callback running on its own
// goroutine makes true. It yields rather than sleeps, and gives up after a
// generous bound so that a broken callback fails the test instead of
// hanging it.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached")
		}
		runtime.Gosched()
	}
}

func TestBreakerOpenHalfOpenClosed(t *testing.T) {
	t.Parallel()
	var changes []string
	b, fc := newTestBreaker(t, BreakerSettings{
		Name: "users", ConsecutiveFailures: 2, OpenDuration: 10 * time.Second, SuccessThreshold: 2,
		OnStateChange: func(name string, from, to State) {
			changes = append(changes, fmt.Sprintf("%s:%s->%s", name, from, to))
		},
	})
	outcomes(t, b, errBreakerTest, errBreakerTest)
	wantState(t, b, StateOpen)

	fc.Advance(4 * time.Second)
	_, err := b.Allow()
	var rej *RejectedError
	if !errors.As(err, &rej) || !errors.Is(err, ErrBreakerOpen) || !errors.Is(err, ErrRejected) {
		t.Fatalf("Allow while open: %v; want a breaker_open rejection", err)
	}
	if rej.Policy != "breaker" || rej.Name != "users" || rej.Reason != "breaker_open" || rej.RetryAfter != 6*time.Second {
		t.Errorf("rejection = %+v; want breaker users breaker_open retry after 6s", rej)
	}

	fc.Advance(6 * time.Second)
	wantState(t, b, StateHalfOpen)
	outcomes(t, b, nil)
	wantState(t, b, StateHalfOpen)
	outcomes(t, b, nil)
	wantState(t, b, StateClosed)

	want := []string{"users:closed->open", "users:open->half-open", "users:half-open->closed"}
	if fmt.Sprint(changes) != fmt.Sprint(want) {
		t.Errorf("state changes %v, want %v", changes, want)
	}
}

func TestBreakerProbeFailureReopens(t *testing.T) {
	t.Parallel()
	b, fc := newTestBreaker(t, BreakerSettings{ConsecutiveFailures: 1, OpenDuration: time.Second, SuccessThreshold: 3})
	outcomes(t, b, errBreakerTest)
	fc.Advance(time.Second)
	outcomes(t, b, nil, nil)
	wantState(t, b, StateHalfOpen)
	outcomes(t, b, errBreakerTest)
	wantState(t, b, StateOpen)
	// The half-open successes do not carry over to the next test.
	fc.Advance(time.Minute)
	outcomes(t, b, nil, nil)
	wantState(t, b, StateHalfOpen)
}

func TestBreakerHalfOpenFull(t *testing.T) {
	t.Parallel()
	b, fc := newTestBreaker(t, BreakerSettings{ConsecutiveFailures: 1, OpenDuration: time.Second, MaxProbes: 2})
	outcomes(t, b, errBreakerTest)
	fc.Advance(time.Second)
	p1, _ := b.Allow()
	p2, _ := b.Allow()
	_, err := b.Allow()
	var rej *RejectedError
	if !errors.As(err, &rej) || !errors.Is(err, ErrHalfOpenFull) || rej.Reason != "half_open_full" {
		t.Fatalf("third probe: %v; want half_open_full", err)
	}
	// An ignored outcome gives the slot back without deciding anything.
	p1.Done(context.Canceled)
	p3, err := b.Allow()
	if err != nil {
		t.Fatalf("probe after a slot freed: %v", err)
	}
	p2.Done(nil)
	wantState(t, b, StateClosed)
	p3.Done(errBreakerTest) // stale: from the half-open generation
	wantState(t, b, StateClosed)
}

// Many goroutines released at once into a half-open breaker: exactly
// MaxProbes get through.
func TestBreakerHalfOpenExactProbes(t *testing.T) {
	t.Parallel()
	const maxProbes, callers = 5, 64
	for round := range 20 {
		b, fc := newTestBreaker(t, BreakerSettings{ConsecutiveFailures: 1, OpenDuration: time.Second, MaxProbes: maxProbes})
		outcomes(t, b, errBreakerTest)
		fc.Advance(time.Second)

		var (
			wg       sync.WaitGroup
			mu       sync.Mutex
			admitted []BreakerPermit
			full     int
		)
		start := make(chan struct{})
		for range callers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				p, err := b.Allow()
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err == nil:
					admitted = append(admitted, p)
				case errors.Is(err, ErrHalfOpenFull):
					full++
				default:
					t.Errorf("Allow: %v", err)
				}
			}()
		}
		close(start)
		wg.Wait()
		if len(admitted) != maxProbes || full != callers-maxProbes {
			t.Fatalf("round %d: %d admitted, %d rejected; want exactly %d admitted", round, len(admitted), full, maxProbes)
		}
		if c := b.Counts(); c.InFlight != maxProbes || c.Rejections != callers-maxProbes {
			t.Fatalf("round %d: counts %+v", round, c)
		}
		for _, p := range admitted {
			p.Done(nil)
		}
		wantState(t, b, StateClosed)
	}
}

func TestBreakerOpenDurationGrowth(t *testing.T) {
	t.Parallel()
	b, fc := newTestBreaker(t, BreakerSettings{
		ConsecutiveFailures: 1, OpenDuration: time.Second, OpenDurationMultiplier: 2, MaxOpenDuration: 5 * time.Second,
	})
	openFor := func() time.Duration {
		t.Helper()
		_, err := b.Allow()
		d, ok := RetryHintOf(err)
		if !ok || !errors.Is(err, ErrBreakerOpen) {
			t.Fatalf("Allow: %v; want breaker_open with a retry hint", err)
		}
		return d
	}
	outcomes(t, b, errBreakerTest)
	for i, want := range []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 5 * time.Second, 5 * time.Second} {
		if got := openFor(); got != want {
			t.Fatalf("trip %d: open for %s, want %s", i+1, got, want)
		}
		fc.Advance(want - time.Nanosecond)
		wantState(t, b, StateOpen)
		fc.Advance(time.Nanosecond)
		wantState(t, b, StateHalfOpen)
		outcomes(t, b, errBreakerTest) // the probe fails: the next trip is longer
	}
	// Closing resets the growth.
	fc.Advance(5 * time.Second)
	outcomes(t, b, nil)
	wantState(t, b, StateClosed)
	outcomes(t, b, errBreakerTest)
	if got := openFor(); got != time.Second {
		t.Fatalf("after closing: open for %s, want 1s", got)
	}
}

// Permits handed out before a state change must not disturb the counts of
// the state that follows.
func TestBreakerStalePermits(t *testing.T) {
	t.Parallel()
	b, fc := newTestBreaker(t, BreakerSettings{ConsecutiveFailures: 2, OpenDuration: time.Second, SuccessThreshold: 2, MaxProbes: 2})
	stale := make([]BreakerPermit, 4)
	for i := range stale {
		stale[i], _ = b.Allow()
	}
	outcomes(t, b, errBreakerTest, errBreakerTest)
	wantState(t, b, StateOpen)
	fc.Advance(time.Second)
	probe, _ := b.Allow()
	// Stale failures while half-open do not reopen the breaker, and a stale
	// success does not count as a probe success.
	stale[0].Done(errBreakerTest)
	stale[1].Done(nil)
	wantState(t, b, StateHalfOpen)
	if c := b.Counts(); c.Successes != 0 || c.InFlight != 1 {
		t.Fatalf("half-open counts %+v; want no successes, one probe in flight", c)
	}
	probe.Done(nil)
	outcomes(t, b, nil)
	wantState(t, b, StateClosed)
	// Stale failures in the new closed state do not trip it or enter its
	// window.
	stale[2].Done(errBreakerTest)
	stale[3].Done(errBreakerTest)
	wantState(t, b, StateClosed)
	c := b.Counts()
	if c.Requests != 0 || c.Failures != 0 || c.ConsecutiveFailures != 0 || c.InFlight != 0 {
		t.Fatalf("closed counts %+v; want an empty window", c)
	}
	// But the totals hold them.
	if c.Total.Requests != 8 || c.Total.Failures != 5 || c.Total.Successes != 3 {
		t.Fatalf("totals %+v; want 8 requests, 5 failures, 3 successes", c.Total)
	}
	// The zero permit is inert.
	BreakerPermit{}.Done(errBreakerTest)
}

func TestBreakerCountsAcrossTransitions(t *testing.T) {
	t.Parallel()
	b, fc := newTestBreaker(t, BreakerSettings{ConsecutiveFailures: 2, OpenDuration: time.Second})
	outcomes(t, b, nil, nil, context.Canceled, errBreakerTest)
	c := b.Counts()
	want := BreakerCounts{
		State: StateClosed, Requests: 3, Successes: 2, Failures: 1, ConsecutiveFailures: 1,
		Total: BreakerTotals{Requests: 4, Successes: 2, Failures: 1, Ignored: 1},
	}
	if c != want {
		t.Fatalf("closed: counts %+v\nwant %+v", c, want)
	}
	outcomes(t, b, errBreakerTest)
	_, _ = b.Allow()
	_, _ = b.Allow()
	c = b.Counts()
	want = BreakerCounts{
		State: StateOpen, Rejections: 2,
		Total: BreakerTotals{Requests: 5, Successes: 2, Failures: 2, Ignored: 1, Rejections: 2, Trips: 1},
	}
	if c != want {
		t.Fatalf("open: counts %+v\nwant %+v", c, want)
	}
	fc.Advance(time.Second)
	outcomes(t, b, nil)
	c = b.Counts()
	want = BreakerCounts{
		State: StateClosed,
		Total: BreakerTotals{Requests: 6, Successes: 3, Failures: 2, Ignored: 1, Rejections: 2, Trips: 1},
	}
	if c != want {
		t.Fatalf("closed again: counts %+v\nwant %+v", c, want)
	}
}

func TestBreakerForceAndReset(t *testing.T) {
	t.Parallel()
	b, fc := newTestBreaker(t, BreakerSettings{ConsecutiveFailures: 1, OpenDuration: time.Second})
	b.ForceOpen()
	fc.Advance(time.Hour)
	wantState(t, b, StateOpen)
	_, err := b.Allow()
	if !errors.Is(err, ErrBreakerOpen) {
		t.Fatalf("forced open: Allow = %v", err)
	}
	if _, ok := RetryHintOf(err); ok {
		t.Errorf("forced open: a retry hint, but the breaker stays open until released")
	}
	b.ForceClosed()
	outcomes(t, b, errBreakerTest, errBreakerTest, errBreakerTest)
	wantState(t, b, StateClosed)
	if c := b.Counts(); c.ConsecutiveFailures != 3 {
		t.Errorf("forced closed still counts: %+v", c)
	}
	b.Reset()
	outcomes(t, b, errBreakerTest)
	wantState(t, b, StateOpen)
	b.Reset()
	wantState(t, b, StateClosed)
	if got := b.Counts().Total.Trips; got != 1 {
		t.Errorf("trips = %d, want 1 (forcing is not a trip)", got)
	}
}

func TestBreakerIsFailure(t *testing.T) {
	t.Parallel()
	errClient := errors.New("404")
	tests := []struct {
		name      string
		isFailure func(error) bool
		err       error
		want      State
	}{
		{"default counts errors", nil, errBreakerTest, StateOpen},
		{"default ignores cancel", nil, fmt.Errorf("calling: %w", context.Canceled), StateClosed},
		{"default counts deadline", nil, context.DeadlineExceeded, StateOpen},
		{"default ignores inner rejections", nil, &RejectedError{Policy: "ratelimit", Sentinel: ErrRateLimited}, StateClosed},
		{"custom ignores", func(err error) bool { return !errors.Is(err, errClient) }, errClient, StateClosed},
		{"custom counts", func(err error) bool { return !errors.Is(err, errClient) }, errBreakerTest, StateOpen},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, _ := newTestBreaker(t, BreakerSettings{ConsecutiveFailures: 1, IsFailure: tt.isFailure})
			outcomes(t, b, tt.err)
			wantState(t, b, tt.want)
		})
	}
}

func TestBreakerObserverEvents(t *testing.T) {
	t.Parallel()
	var events []Event
	b, fc := newTestBreaker(t, BreakerSettings{
		Name: "pay", ConsecutiveFailures: 1, OpenDuration: time.Second,
		Observer: ObserverFunc(func(e Event) { events = append(events, e) }),
	})
	p, _ := b.Allow()
	fc.Advance(20 * time.Millisecond)
	p.Done(nil)
	outcomes(t, b, context.Canceled, errBreakerTest)
	_, _ = b.Allow()
	fc.Advance(time.Second)
	outcomes(t, b, nil)
	want := []Event{
		{Kind: EventSuccess, Policy: "breaker", Name: "pay", Duration: 20 * time.Millisecond},
		{Kind: EventFailure, Policy: "breaker", Name: "pay"},
		{Kind: EventStateChange, Policy: "breaker", Name: "pay", From: StateClosed, To: StateOpen},
		{Kind: EventRejected, Policy: "breaker", Name: "pay", Reason: "breaker_open"},
		{Kind: EventStateChange, Policy: "breaker", Name: "pay", From: StateOpen, To: StateHalfOpen},
		{Kind: EventSuccess, Policy: "breaker", Name: "pay"},
		{Kind: EventStateChange, Policy: "breaker", Name: "pay", From: StateHalfOpen, To: StateClosed},
	}
	if fmt.Sprint(events) != fmt.Sprint(want) {
		t.Errorf("events\n got %+v\nwant %+v", events, want)
	}
}

func TestBreakerRunInPipeline(t *testing.T) {
	t.Parallel()
	b, _ := newTestBreaker(t, BreakerSettings{ConsecutiveFailures: 2})
	p := NewPipeline[int](b)
	calls := 0
	fail := func(context.Context) (int, error) { calls++; return 0, errBreakerTest }
	for range 2 {
		if _, err := p.Get(context.Background(), fail); !errors.Is(err, errBreakerTest) {
			t.Fatalf("Get = %v, want the call's error", err)
		}
	}
	_, err := p.Get(context.Background(), fail)
	if !errors.Is(err, ErrBreakerOpen) || calls != 2 {
		t.Fatalf("Get while open = %v after %d calls; want breaker_open after 2", err, calls)
	}

	// A panicking call gives its permit back and counts as a failure.
	b2, fc := newTestBreaker(t, BreakerSettings{ConsecutiveFailures: 1, OpenDuration: time.Second})
	outcomes(t, b2, errBreakerTest)
	fc.Advance(time.Second)
	p2 := NewPipeline[int](b2)
	func() {
		defer func() {
			if recover() == nil {
				t.Fatal("panic did not propagate")
			}
		}()
		_, _ = p2.Get(context.Background(), func(context.Context) (int, error) { panic("boom") })
	}()
	if c := b2.Counts(); c.State != StateOpen || c.Total.Failures != 2 {
		t.Fatalf("after a panicking probe: %+v; want open with 2 failures", c)
	}
}

// FuzzBreakerSettings checks that no combination of settings panics the
// constructor, and that every breaker it accepts trips and recovers.
func FuzzBreakerSettings(f *testing.F) {
	f.Add(0, 0.0, 0.0, int64(0), 0, 0, int64(0), 0, int64(0), 0.0, 0, 0)
	f.Add(3, 0.5, 0.0, int64(0), 10, 20, int64(0), 0, int64(time.Second), 2.0, 2, 3)
	f.Add(0, 0.0, 0.5, int64(time.Second), 4, 0, int64(time.Minute), 6, int64(0), 0.0, 1, 1)
	f.Add(-1, 1.5, -1.0, int64(-1), -1, -1, int64(-1), -1, int64(-1), 0.5, -1, -1)
	f.Fuzz(func(t *testing.T, consecutive int, failRatio, slowRatio float64, slowDur int64,
		minCalls, windowSize int, windowDur int64, buckets int, openDur int64, mult float64, succ, probes int) {
		fc := clock.NewFake(time.Time{})
		b, err := NewBreaker(BreakerSettings{
			Clock: fc, ConsecutiveFailures: consecutive, FailureRatio: failRatio, SlowCallRatio: slowRatio,
			SlowCallDuration: time.Duration(slowDur), MinCalls: minCalls, WindowSize: windowSize,
			WindowDuration: time.Duration(windowDur), WindowBuckets: buckets,
			OpenDuration: time.Duration(openDur), OpenDurationMultiplier: mult,
			SuccessThreshold: succ, MaxProbes: probes,
		})
		if err != nil {
			return
		}
		// Failures alone must trip a valid breaker that judges failures,
		// after ConsecutiveFailures of them or once MinCalls are in the
		// window.
		need := int64(math.MaxInt64)
		if b.cfg.consecutive > 0 {
			need = b.cfg.consecutive
		}
		if b.cfg.failureRatio > 0 {
			need = min(need, b.cfg.minCalls)
		}
		if need > 1<<12 {
			return
		}
		for i := int64(0); i < need; i++ {
			p, err := b.Allow()
			if err != nil {
				t.Fatalf("closed breaker refused: %v", err)
			}
			p.Done(errBreakerTest)
		}
		if b.State() != StateOpen {
			t.Fatalf("failures did not trip the breaker: %+v", b.Counts())
		}
		b.Reset()
		if b.State() != StateClosed {
			t.Fatal("Reset did not close the breaker")
		}
	})
}

// countingClock counts reads of the clock.
type countingClock struct {
	clock.Clock
	mu    sync.Mutex
	reads int
}

func (c *countingClock) Now() time.Time {
	c.mu.Lock()
	c.reads++
	c.mu.Unlock()
	return c.Clock.Now()
}

func (c *countingClock) Since(t time.Time) time.Duration { return c.Now().Sub(t) }

// The success path must not read the clock unless something needs a time.
func TestBreakerSuccessPathClockReads(t *testing.T) {
	tests := []struct {
		name  string
		s     BreakerSettings
		reads int // per call
	}{
		{"consecutive failures, count window", BreakerSettings{ConsecutiveFailures: 5}, 0},
		{"failure ratio, count window", BreakerSettings{FailureRatio: 0.5, WindowSize: 50}, 0},
		{"time window", BreakerSettings{FailureRatio: 0.5, WindowDuration: time.Minute}, 1},
		{"slow calls", BreakerSettings{SlowCallRatio: 0.5, SlowCallDuration: time.Hour}, 2},
		{"observer of durations", BreakerSettings{Observer: ObserverFunc(func(Event) {})}, 2},
		{"observer declining durations", BreakerSettings{Observer: countsOnly{}}, 0},
		{"observer declining durations, slow calls", BreakerSettings{Observer: countsOnly{}, SlowCallRatio: 0.5, SlowCallDuration: time.Hour}, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cc := &countingClock{Clock: clock.NewFake(time.Time{})}
			tt.s.Clock = cc
			b, err := NewBreaker(tt.s)
			if err != nil {
				t.Fatal(err)
			}
			cc.reads = 0
			const n = 100
			outcomes(t, b, repeat(nil, n)...)
			if cc.reads != tt.reads*n {
				t.Errorf("%d clock reads for %d calls, want %d per call", cc.reads, n, tt.reads)
			}
		})
	}
}

// countsOnly is an Observer that declines durations.
type countsOnly struct{ events *[]Event }

func (o countsOnly) Observe(e Event) {
	if o.events != nil {
		*o.events = append(*o.events, e)
	}
}

func (countsOnly) ObservesDurations() bool { return false }

// An Observer is given each call's duration unless it declines them, when
// the events are the same with Duration zero.
func TestBreakerObserverDurations(t *testing.T) {
	var timed, untimed []Event
	b1, fc1 := newTestBreaker(t, BreakerSettings{Observer: ObserverFunc(func(e Event) { timed = append(timed, e) })})
	b2, fc2 := newTestBreaker(t, BreakerSettings{Observer: countsOnly{&untimed}})
	for _, err := range []error{nil, errBreakerTest} {
		for _, c := range []struct {
			b  *Breaker
			fc *clock.Fake
		}{{b1, fc1}, {b2, fc2}} {
			p, aerr := c.b.Allow()
			if aerr != nil {
				t.Fatal(aerr)
			}
			c.fc.Advance(3 * time.Millisecond)
			p.Done(err)
		}
	}
	if len(timed) != 2 || len(untimed) != 2 {
		t.Fatalf("events: %d timed, %d untimed; want 2 each", len(timed), len(untimed))
	}
	for i := range timed {
		if timed[i].Duration != 3*time.Millisecond {
			t.Errorf("event %d of the timing observer: Duration %s, want 3ms", i, timed[i].Duration)
		}
		want := timed[i]
		want.Duration = 0
		if untimed[i] != want {
			t.Errorf("event %d of the declining observer: %+v, want %+v", i, untimed[i], want)
		}
	}
}

func TestBreakerAllowDoneDoesNotAllocate(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates on its own")
	}
	b, _ := newTestBreaker(t, BreakerSettings{})
	if a := testing.AllocsPerRun(1000, func() {
		p, err := b.Allow()
		if err != nil {
			t.Fatal(err)
		}
		p.Done(nil)
	}); a != 0 {
		t.Errorf("Allow+Done: %v allocs per call, want 0", a)
	}
	pl := NewPipeline[int](b)
	ctx := context.Background()
	fn := func(context.Context) (int, error) { return 1, nil }
	if a := testing.AllocsPerRun(1000, func() { _, _ = pl.Get(ctx, fn) }); a != 0 {
		t.Errorf("Run in a pipeline: %v allocs per call, want 0", a)
	}
}

// Concurrent outcomes keep the window's counters in agreement with each
// other and with the totals.
func TestBreakerConcurrentCounts(t *testing.T) {
	t.Parallel()
	b, _ := newTestBreaker(t, BreakerSettings{WindowSize: 64, ConsecutiveFailures: 1 << 20})
	const workers, calls = 8, 2000
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range calls {
				var err error
				if (i+w)%4 == 0 {
					err = errBreakerTest
				}
				p, aerr := b.Allow()
				if aerr != nil {
					t.Errorf("Allow: %v", aerr)
					return
				}
				p.Done(err)
			}
		}()
	}
	wg.Wait()
	c := b.Counts()
	if c.Requests != 64 || c.Successes+c.Failures != c.Requests || c.InFlight != 0 {
		t.Errorf("window counts %+v; want 64 calls in the window, none in flight", c)
	}
	if c.Total.Requests != workers*calls || c.Total.Failures != workers*calls/4 || c.Total.Successes != workers*calls*3/4 {
		t.Errorf("totals %+v", c.Total)
	}
	// The window's failure count equals the failures its slots hold.
	var slots int64
	g := b.cur.Load()
	for i := range g.ring.slots {
		slots += int64(g.ring.slots[i].Load() >> 1 & 1)
	}
	if int64(c.Failures) != slots {
		t.Errorf("window failures %d, slots hold %d", c.Failures, slots)
	}
}

// With slow-call tripping on, a probe that hangs past SlowCallDuration
// reopens a half-open breaker without waiting for the probe to end.
func TestBreakerHungProbeReopens(t *testing.T) {
	t.Parallel()
	reopened := make(chan struct{})
	fc := clock.NewFake(time.Time{})
	b, err := NewBreaker(BreakerSettings{
		Clock: fc, ConsecutiveFailures: 1, SlowCallRatio: 1, SlowCallDuration: time.Second, OpenDuration: time.Minute,
		OnStateChange: func(_ string, from, to State) {
			if from == StateHalfOpen && to == StateOpen {
				close(reopened)
			}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	outcomes(t, b, errBreakerTest)
	fc.Advance(time.Minute)
	probe, err := b.Allow()
	if err != nil {
		t.Fatalf("probe: %v", err)
	}
	fc.Advance(2 * time.Second)
	select {
	case <-reopened:
	case <-time.After(10 * time.Second):
		t.Fatalf("hung probe did not reopen the breaker; counts %+v", b.Counts())
	}
	probe.Done(nil) // stale now
	wantState(t, b, StateOpen)
}
