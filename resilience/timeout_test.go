package resilience

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/relia-dev/relia/clock"
)

func TestTimeoutSettingsInvalid(t *testing.T) {
	t.Parallel()
	for _, d := range []time.Duration{0, -time.Second} {
		if _, err := NewTimeout(TimeoutSettings{Timeout: d}); err == nil {
			t.Errorf("NewTimeout(%v) gave no error", d)
		}
	}
}

type eventLog struct {
	mu     sync.Mutex
	events []Event
}

func (l *eventLog) Observe(e Event) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.events = append(l.events, e)
}

func (l *eventLog) kinds() []EventKind {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []EventKind
	for _, e := range l.events {
		out = append(out, e.Kind)
	}
	return out
}

// TestTimeoutBlockedCall: a call blocked on ctx.Done() returns ErrTimeout
// when the test moves the fake clock to the deadline, and not before.
func TestTimeoutBlockedCall(t *testing.T) {
	t.Parallel()
	fc := clock.NewFake(time.Time{})
	log := &eventLog{}
	to, err := NewTimeout(TimeoutSettings{Name: "db", Timeout: 2 * time.Second, Clock: fc, Observer: log})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := NewPipeline[int](to).Get(context.Background(), func(ctx context.Context) (int, error) {
			if dl, ok := ctx.Deadline(); !ok || !dl.Equal(fc.Now().Add(2*time.Second)) {
				return 0, errors.New("wrong deadline")
			}
			<-ctx.Done()
			return 0, ctx.Err()
		})
		done <- err
	}()
	fc.BlockUntil(1)
	fc.Advance(2*time.Second - time.Nanosecond)
	select {
	case err := <-done:
		t.Fatalf("returned before the deadline: %v", err)
	default:
	}
	fc.Advance(time.Nanosecond)
	err = <-done
	if !errors.Is(err, ErrTimeout) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("error %v, want ErrTimeout and context.DeadlineExceeded", err)
	}
	var te *TimeoutError
	if !errors.As(err, &te) || te.Name != "db" || te.Limit != 2*time.Second || !te.Timeout() {
		t.Errorf("error %#v, want *TimeoutError for db, 2s", err)
	}
	if got, want := err.Error(), "timeout db: deadline of 2s exceeded"; got != want {
		t.Errorf("message %q, want %q", got, want)
	}
	if got := log.kinds(); len(got) != 2 || got[0] != EventTimeout || got[1] != EventFailure {
		t.Errorf("events %v, want timeout, failure", got)
	}
}

// TestTimeoutLateReturn: a function that ignores its context and returns
// after the deadline still gets the timeout error; one that returns in
// time keeps its result.
func TestTimeoutLateReturn(t *testing.T) {
	t.Parallel()
	boom := errors.New("boom")
	tests := []struct {
		name    string
		takes   time.Duration
		err     error
		wantErr error
	}{
		{"in time, success", time.Second - 1, nil, nil},
		{"in time, failure", time.Second - 1, boom, boom},
		{"late, success", time.Second, nil, ErrTimeout},
		{"late, failure", 2 * time.Second, boom, ErrTimeout},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			fc := clock.NewFake(time.Time{})
			to, err := NewTimeout(TimeoutSettings{Timeout: time.Second, Clock: fc})
			if err != nil {
				t.Fatal(err)
			}
			v, err := NewPipeline[int](to).Get(context.Background(), func(context.Context) (int, error) {
				fc.Advance(tt.takes)
				return 7, tt.err
			})
			if v != 7 {
				t.Errorf("result %d, want 7", v)
			}
			if tt.wantErr == nil && err != nil || !errors.Is(err, tt.wantErr) {
				t.Errorf("error %v, want %v", err, tt.wantErr)
			}
		})
	}
}

// TestTimeoutParentDeadlineFirst: when the caller's deadline comes first,
// the caller's error is returned, not the Timeout's.
func TestTimeoutParentDeadlineFirst(t *testing.T) {
	t.Parallel()
	t.Run("real context", func(t *testing.T) {
		t.Parallel()
		to, err := NewTimeout(TimeoutSettings{Timeout: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
		defer cancel()
		_, err = NewPipeline[int](to).Get(ctx, func(ctx context.Context) (int, error) {
			<-ctx.Done()
			return 0, ctx.Err()
		})
		if err != context.DeadlineExceeded || errors.Is(err, ErrTimeout) {
			t.Errorf("error %v, want the caller's context.DeadlineExceeded", err)
		}
		// A function that ignores the expired context and succeeds late
		// still gets the caller's error.
		_, err = NewPipeline[int](to).Get(ctx, func(context.Context) (int, error) { return 1, nil })
		if err != context.DeadlineExceeded {
			t.Errorf("late success: error %v, want context.DeadlineExceeded", err)
		}
	})
	t.Run("outer timeout", func(t *testing.T) {
		t.Parallel()
		fc := clock.NewFake(time.Time{})
		outer, err := NewTimeout(TimeoutSettings{Name: "outer", Timeout: time.Second, Clock: fc})
		if err != nil {
			t.Fatal(err)
		}
		inner, err := NewTimeout(TimeoutSettings{Name: "inner", Timeout: 5 * time.Second, Clock: fc})
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() {
			_, err := NewPipeline[int](outer, inner).Get(context.Background(), func(ctx context.Context) (int, error) {
				<-ctx.Done()
				return 0, ctx.Err()
			})
			done <- err
		}()
		fc.BlockUntil(1)
		fc.Advance(time.Second)
		err = <-done
		var te *TimeoutError
		if !errors.As(err, &te) || te.Name != "outer" {
			t.Errorf("error %v, want the outer timeout's", err)
		}
	})
}

// TestTimeoutPerAttemptAndOverall: inside a Retry a Timeout bounds each
// attempt; outermost it bounds the whole call.
func TestTimeoutPerAttemptAndOverall(t *testing.T) {
	t.Parallel()
	blockingFn := func(started chan<- struct{}) func(context.Context) (int, error) {
		return func(ctx context.Context) (int, error) {
			d := ctx.Done()
			started <- struct{}{}
			<-d
			return 0, ctx.Err()
		}
	}
	t.Run("per attempt", func(t *testing.T) {
		t.Parallel()
		fc := clock.NewFake(time.Time{})
		retry, err := NewRetry(RetrySettings{MaxAttempts: 3, Base: time.Second, Multiplier: 1, Jitter: JitterNone, Clock: fc})
		if err != nil {
			t.Fatal(err)
		}
		attempt, err := NewTimeout(TimeoutSettings{Timeout: 2 * time.Second, Clock: fc})
		if err != nil {
			t.Fatal(err)
		}
		started := make(chan struct{})
		done := make(chan error, 1)
		go func() {
			_, err := NewPipeline[int](retry, attempt).Get(context.Background(), blockingFn(started))
			done <- err
		}()
		for i := range 3 {
			<-started
			fc.Advance(2 * time.Second) // the attempt times out
			if i < 2 {
				fc.BlockUntil(1) // the backoff
				fc.Advance(time.Second)
			}
		}
		err = <-done
		var ex *RetriesExhaustedError
		if !errors.As(err, &ex) || ex.Attempts != 3 || !errors.Is(err, ErrTimeout) {
			t.Errorf("error %v, want retries exhausted after 3 timed-out attempts", err)
		}
	})
	t.Run("overall", func(t *testing.T) {
		t.Parallel()
		fc := clock.NewFake(time.Time{})
		overall, err := NewTimeout(TimeoutSettings{Name: "overall", Timeout: 5 * time.Second, Clock: fc})
		if err != nil {
			t.Fatal(err)
		}
		retry, err := NewRetry(RetrySettings{MaxAttempts: 10, Base: time.Second, Multiplier: 1, Jitter: JitterNone, Clock: fc})
		if err != nil {
			t.Fatal(err)
		}
		attempt, err := NewTimeout(TimeoutSettings{Name: "attempt", Timeout: 2 * time.Second, Clock: fc})
		if err != nil {
			t.Fatal(err)
		}
		started := make(chan struct{})
		done := make(chan error, 1)
		attempts := 0
		fn := blockingFn(started)
		go func() {
			_, err := NewPipeline[int](overall, retry, attempt).Get(context.Background(), func(ctx context.Context) (int, error) {
				attempts++
				return fn(ctx)
			})
			done <- err
		}()
		<-started                   // attempt 1 at 0s: its timer and the overall one
		fc.Advance(time.Second * 2) // attempt 1 times out at 2s
		fc.BlockUntil(2)            // the overall timer and the backoff
		fc.Advance(time.Second)     // attempt 2 at 3s, bounded by the overall 5s
		<-started
		fc.Advance(2 * time.Second)
		err = <-done
		var te *TimeoutError
		if !errors.As(err, &te) || te.Name != "overall" {
			t.Errorf("error %v, want the overall timeout", err)
		}
		if attempts != 2 {
			t.Errorf("attempts = %d, want 2", attempts)
		}
	})
}

// newTestCtx returns a timeout context on fc with the given parent,
// ending one second from now.
func newTestCtx(parent context.Context, fc *clock.Fake) *timeoutCtx {
	return &timeoutCtx{parent: parent, deadline: fc.Now().Add(time.Second), clock: fc}
}

// TestTimeoutCtxConcurrentDone: many goroutines call Done and Err at once;
// all get the same channel, which closes at the deadline.
func TestTimeoutCtxConcurrentDone(t *testing.T) {
	t.Parallel()
	fc := clock.NewFake(time.Time{})
	c := newTestCtx(context.Background(), fc)
	const n = 64
	chans := make([]<-chan struct{}, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			chans[i] = c.Done()
			if err := c.Err(); err != nil {
				t.Errorf("Err before the deadline: %v", err)
			}
		}()
	}
	wg.Wait()
	for i := range chans {
		if chans[i] != chans[0] {
			t.Fatal("Done returned different channels")
		}
	}
	if fc.Waiters() != 1 {
		t.Fatalf("%d timers, want exactly 1", fc.Waiters())
	}
	var ended sync.WaitGroup
	for range n {
		ended.Add(1)
		go func() {
			defer ended.Done()
			<-c.Done()
			if c.Err() != context.DeadlineExceeded {
				t.Errorf("Err after Done = %v", c.Err())
			}
		}()
	}
	fc.Advance(time.Second)
	ended.Wait()
	if !c.timedOut() {
		t.Error("timedOut false after the deadline")
	}
}

// TestTimeoutCtxParentCancel: cancelling the parent ends the context with
// the parent's error, whether or not Done was called, and releases the
// timer.
func TestTimeoutCtxParentCancel(t *testing.T) {
	t.Parallel()
	for _, useDone := range []bool{true, false} {
		fc := clock.NewFake(time.Time{})
		parent, cancel := context.WithCancel(context.WithValue(context.Background(), testKey{}, "v"))
		c := newTestCtx(parent, fc)
		if c.Value(testKey{}) != "v" {
			t.Error("Value not delegated to the parent")
		}
		var d <-chan struct{}
		if useDone {
			d = c.Done()
		}
		cancel()
		if useDone {
			<-d
			if fc.Waiters() != 0 {
				t.Error("timer not stopped when the parent ended")
			}
		}
		if c.Err() != context.Canceled {
			t.Errorf("Err = %v, want context.Canceled", c.Err())
		}
		if c.timedOut() {
			t.Error("a parent's cancel counted as a timeout")
		}
		select {
		case <-c.Done():
		default:
			t.Error("Done open after Err returned an error")
		}
	}
}

// TestTimeoutCtxRaces drives Done, Err, the deadline and the parent's
// cancel all at once; run under -race.
func TestTimeoutCtxRaces(t *testing.T) {
	t.Parallel()
	for range 50 {
		fc := clock.NewFake(time.Time{})
		parent, cancel := context.WithCancel(context.Background())
		c := newTestCtx(parent, fc)
		var wg sync.WaitGroup
		for range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-c.Done()
				if c.Err() == nil {
					t.Error("Err nil after Done closed")
				}
			}()
		}
		wg.Add(2)
		go func() { defer wg.Done(); fc.Advance(time.Second) }()
		go func() { defer wg.Done(); cancel() }()
		wg.Wait()
	}
}

// TestTimeoutCtxAfterReturn: the context handed to the function stays valid
// after the policy returned, until its deadline, so a result read later
// (an HTTP body) is still bounded by the same timeout.
func TestTimeoutCtxAfterReturn(t *testing.T) {
	t.Parallel()
	fc := clock.NewFake(time.Time{})
	to, err := NewTimeout(TimeoutSettings{Timeout: time.Second, Clock: fc})
	if err != nil {
		t.Fatal(err)
	}
	var kept context.Context
	if _, err := NewPipeline[int](to).Get(context.Background(), func(ctx context.Context) (int, error) {
		kept = ctx
		return 1, nil
	}); err != nil {
		t.Fatal(err)
	}
	if kept.Err() != nil {
		t.Fatalf("context ended on return: %v", kept.Err())
	}
	child, cancel := context.WithCancel(kept) // standard derivation works
	defer cancel()
	fc.Advance(time.Second)
	<-kept.Done()
	<-child.Done()
	if kept.Err() != context.DeadlineExceeded || child.Err() != context.DeadlineExceeded || context.Cause(kept) != context.DeadlineExceeded {
		t.Errorf("after the deadline: Err = %v, child %v", kept.Err(), child.Err())
	}
	// Done asked for only after the deadline is closed at once.
	late := newTestCtx(context.Background(), fc)
	fc.Advance(time.Second)
	select {
	case <-late.Done():
	default:
		t.Error("Done open after the deadline")
	}
	if fc.Waiters() != 0 {
		t.Errorf("%d timers left", fc.Waiters())
	}
}

// TestTimeoutParentCancelled: the caller cancelling during the call gives
// the caller's error, not a timeout.
func TestTimeoutParentCancelled(t *testing.T) {
	t.Parallel()
	fc := clock.NewFake(time.Time{})
	log := &eventLog{}
	to, err := NewTimeout(TimeoutSettings{Timeout: time.Second, Clock: fc, Observer: log})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	started := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		_, err := NewPipeline[int](to).Get(ctx, func(ctx context.Context) (int, error) {
			d := ctx.Done()
			close(started)
			<-d
			return 0, ctx.Err()
		})
		done <- err
	}()
	<-started
	cancel()
	err = <-done
	if err != context.Canceled {
		t.Errorf("error %v, want context.Canceled", err)
	}
	for _, k := range log.kinds() {
		if k == EventTimeout {
			t.Error("a cancel reported as a timeout")
		}
	}
}

// TestTimeoutRealClock runs the context on the real clock: a call blocked
// on Done ends with ErrTimeout. Nothing about how long it took is checked.
func TestTimeoutRealClock(t *testing.T) {
	t.Parallel()
	to, err := NewTimeout(TimeoutSettings{Timeout: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	_, err = NewPipeline[int](to).Get(context.Background(), func(ctx context.Context) (int, error) {
		<-ctx.Done()
		return 0, ctx.Err()
	})
	if !errors.Is(err, ErrTimeout) {
		t.Errorf("error %v, want ErrTimeout", err)
	}
}

func TestTimeoutSuccessNotAllocateBeyondItsContext(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates on its own")
	}

	to, err := NewTimeout(TimeoutSettings{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	retry, err := NewRetry(RetrySettings{})
	if err != nil {
		t.Fatal(err)
	}
	fn := func(context.Context) (int, error) { return 1, nil }
	ctx := context.Background()
	// One context per Timeout, nothing else.
	tests := []struct {
		p    *Pipeline[int]
		want float64
	}{
		{NewPipeline[int](to), 1},
		{NewPipeline[int](retry, to), 1},
		{NewPipeline[int](to, retry, to), 2},
	}
	for _, tt := range tests {
		if n := testing.AllocsPerRun(1000, func() { _, _ = tt.p.Get(ctx, fn) }); n > tt.want {
			t.Errorf("%d policies: success path allocates %v times per call, want at most %v", len(tt.p.Policies()), n, tt.want)
		}
	}
}

func BenchmarkTimeoutSuccess(b *testing.B) {
	to, err := NewTimeout(TimeoutSettings{Timeout: time.Second})
	if err != nil {
		b.Fatal(err)
	}
	p := NewPipeline[int](to)
	fn := func(context.Context) (int, error) { return 1, nil }
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		_, _ = p.Get(ctx, fn)
	}
}

type testKey struct{}
