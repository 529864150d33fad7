package resilience

import (
	"context"
	"errors"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/relia-dev/relia/clock"
)

func TestHedgeSettingsInvalid(t *testing.T) {
	t.Parallel()
	testBadSettings(t, `hedge "h"`, func(s HedgeSettings) error {
		s.Name = "h"
		_, err := NewHedge(s)
		return err
	}, []badSettings[HedgeSettings]{
		{"no delay", HedgeSettings{}, "delay"},
		{"negative delay", HedgeSettings{Delay: -time.Second}, "delay"},
		{"percentile above 1", HedgeSettings{Delay: time.Second, Percentile: 1.5}, "percentile"},
		{"negative percentile", HedgeSettings{Delay: time.Second, Percentile: -0.5}, "percentile"},
		{"NaN percentile", HedgeSettings{Delay: time.Second, Percentile: nanFloat()}, "percentile"},
		{"negative min delay", HedgeSettings{Delay: time.Second, Percentile: 0.9, MinDelay: -1}, "MinDelay"},
		{"min delay without percentile", HedgeSettings{Delay: time.Second, MinDelay: time.Millisecond}, "MinDelay"},
		{"negative max hedges", HedgeSettings{Delay: time.Second, MaxHedges: -1}, "MaxHedges"},
	})
	h, err := NewHedge(HedgeSettings{Delay: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if h.maxHedges != DefaultMaxHedges || h.Delay() != time.Second {
		t.Errorf("defaults not applied: %d hedges, delay %s", h.maxHedges, h.Delay())
	}
}

func nanFloat() float64 { z := 0.0; return z / z }

// hedgeRig drives one hedged call on a fake clock. Each attempt returns
// "aN" (N its number) with the error the test finishes it with, or with
// its context's error once that ends.
type hedgeRig struct {
	t       *testing.T
	fc      *clock.Fake
	delay   time.Duration
	log     *eventLog
	p       *Pipeline[string]
	n       atomic.Int32
	started chan context.Context // attempt contexts, in order of start
	finish  [4]chan error
	discard chan string
	// discards counts the results handed to the discard hook.
	discards atomic.Int32
	done     chan struct{}
	got      string
	err      error
}

func newHedgeRig(t *testing.T, s HedgeSettings) *hedgeRig {
	t.Helper()
	r := &hedgeRig{
		t:       t,
		fc:      clock.NewFake(time.Time{}),
		delay:   s.Delay,
		log:     &eventLog{},
		started: make(chan context.Context, 4),
		discard: make(chan string, 4),
		done:    make(chan struct{}),
	}
	for i := range r.finish {
		r.finish[i] = make(chan error, 1)
	}
	s.Clock, s.Observer = r.fc, r.log
	h, err := NewHedge(s)
	if err != nil {
		t.Fatal(err)
	}
	r.p = NewPipeline[string](h).WithDiscard(func(v string) {
		r.discards.Add(1)
		r.discard <- v
	})
	return r
}

// start begins the call under ctx.
func (r *hedgeRig) start(ctx context.Context) {
	go func() {
		defer close(r.done)
		r.got, r.err = r.p.Get(ctx, func(ctx context.Context) (string, error) {
			n := r.n.Add(1)
			r.started <- ctx
			select {
			case err := <-r.finish[n-1]:
				return "a" + strconv.Itoa(int(n)), err
			case <-ctx.Done():
				return "a" + strconv.Itoa(int(n)), ctx.Err()
			}
		})
	}()
}

// attempt waits for the next attempt to start and returns its context.
func (r *hedgeRig) attempt() context.Context { return <-r.started }

// hedge lets the delay pass once the policy waits on it.
func (r *hedgeRig) hedge() {
	r.fc.BlockUntil(1)
	r.fc.Advance(r.delay)
}

// result waits for the call to return.
func (r *hedgeRig) result() (string, error) {
	<-r.done
	return r.got, r.err
}

// discarded waits for n discarded results and returns them sorted.
func (r *hedgeRig) discarded(n int) []string {
	var out []string
	for range n {
		out = append(out, <-r.discard)
	}
	slices.Sort(out)
	return out
}

// events returns the events as "kind" or "hedge N" strings.
func (r *hedgeRig) events() []string {
	var out []string
	for _, e := range r.log.drain() {
		s := e.Kind.String()
		if e.Kind == EventHedge {
			s += " " + strconv.Itoa(e.Attempt)
		}
		out = append(out, s)
	}
	return out
}

func TestHedge(t *testing.T) {
	t.Parallel()
	boom1, boom2, boom3 := errors.New("boom 1"), errors.New("boom 2"), errors.New("boom 3")
	tests := []struct {
		name      string
		maxHedges int
		// script plays the call; it returns contexts whose end it expects.
		script        func(r *hedgeRig) (cancelled []context.Context)
		want          string
		wantErr       error
		wantDiscarded []string
		wantEvents    []string
	}{
		{
			name: "no hedge when the first attempt finishes before the delay",
			script: func(r *hedgeRig) []context.Context {
				r.attempt()
				r.finish[0] <- nil
				return nil
			},
			want:       "a1",
			wantEvents: []string{"success"},
		},
		{
			name: "hedging cancels the loser",
			script: func(r *hedgeRig) []context.Context {
				first := r.attempt()
				r.hedge()
				r.attempt()
				r.finish[1] <- nil
				return []context.Context{first}
			},
			want:          "a2",
			wantDiscarded: []string{"a1"},
			wantEvents:    []string{"hedge 2", "success"},
		},
		{
			name: "first attempt wins after the hedge is sent",
			script: func(r *hedgeRig) []context.Context {
				r.attempt()
				r.hedge()
				second := r.attempt()
				r.finish[0] <- nil
				return []context.Context{second}
			},
			want:          "a1",
			wantDiscarded: []string{"a2"},
			wantEvents:    []string{"hedge 2", "success"},
		},
		{
			name: "success after a failure",
			script: func(r *hedgeRig) []context.Context {
				first := r.attempt()
				r.hedge()
				r.attempt()
				r.finish[0] <- boom1
				r.finish[1] <- nil
				return []context.Context{first}
			},
			want:          "a2",
			wantDiscarded: []string{"a1"},
			wantEvents:    []string{"hedge 2", "success"},
		},
		{
			name: "a failure before the delay sends no hedge",
			script: func(r *hedgeRig) []context.Context {
				r.attempt()
				r.finish[0] <- boom1
				return nil
			},
			want:       "a1",
			wantErr:    boom1,
			wantEvents: []string{"failure"},
		},
		{
			// Attempts 2 and 3 fail first; once one of their results is
			// discarded both have been seen, and attempt 1 fails last.
			name:      "all fail: the last failure is the call's",
			maxHedges: 2,
			script: func(r *hedgeRig) []context.Context {
				r.attempt()
				r.hedge()
				r.attempt()
				r.hedge()
				r.attempt()
				r.finish[1] <- boom2
				r.finish[2] <- boom3
				waitFor(r.t, func() bool { return r.discards.Load() == 1 })
				r.finish[0] <- boom1
				return nil
			},
			want:          "a1",
			wantErr:       boom1,
			wantDiscarded: []string{"a2", "a3"},
			wantEvents:    []string{"hedge 2", "hedge 3", "failure"},
		},
		{
			name:      "max hedges bounds the attempts",
			maxHedges: 1,
			script: func(r *hedgeRig) []context.Context {
				first := r.attempt()
				r.hedge()
				r.attempt()
				if w := r.fc.Waiters(); w != 0 {
					r.t.Errorf("%d timers pending after the last hedge, want none", w)
				}
				r.finish[1] <- nil
				return []context.Context{first}
			},
			want:          "a2",
			wantDiscarded: []string{"a1"},
			wantEvents:    []string{"hedge 2", "success"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := newHedgeRig(t, HedgeSettings{Delay: 50 * time.Millisecond, MaxHedges: tt.maxHedges})
			r.start(context.Background())
			cancelled := tt.script(r)
			got, err := r.result()
			if got != tt.want {
				t.Errorf("result %q, want %q", got, tt.want)
			}
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil) != (err == nil) {
				t.Errorf("error %v, want %v", err, tt.wantErr)
			}
			if d := r.discarded(len(tt.wantDiscarded)); !slices.Equal(d, tt.wantDiscarded) {
				t.Errorf("discarded %v, want %v", d, tt.wantDiscarded)
			}
			for i, ctx := range cancelled {
				if !errors.Is(ctx.Err(), context.Canceled) {
					t.Errorf("loser %d: context error %v, want context.Canceled", i, ctx.Err())
				}
			}
			if ev := r.events(); !slices.Equal(ev, tt.wantEvents) {
				t.Errorf("events %v, want %v", ev, tt.wantEvents)
			}
			if w := r.fc.Waiters(); w != 0 {
				t.Errorf("%d timers left pending", w)
			}
		})
	}
}

func TestHedgeCallerCancelEndsAllAttempts(t *testing.T) {
	t.Parallel()
	r := newHedgeRig(t, HedgeSettings{Name: "users", Delay: time.Second})
	ctx, cancel := context.WithCancel(context.Background())
	r.start(ctx)
	first := r.attempt()
	r.hedge()
	second := r.attempt()
	cancel()
	got, err := r.result()
	if !errors.Is(err, context.Canceled) || got != "" {
		t.Errorf("Get = %q, %v; want no result and an error matching context.Canceled", got, err)
	}
	if d := r.discarded(2); !slices.Equal(d, []string{"a1", "a2"}) {
		t.Errorf("discarded %v, want both attempts", d)
	}
	if first.Err() == nil || second.Err() == nil {
		t.Error("an attempt's context outlived the caller's")
	}
	if ev := r.events(); !slices.Equal(ev, []string{"hedge 2", "failure"}) {
		t.Errorf("events %v", ev)
	}
}

func TestHedgeWithoutRetryMakesOneAttempt(t *testing.T) {
	t.Parallel()
	r := newHedgeRig(t, HedgeSettings{Delay: time.Millisecond})
	r.start(WithoutRetry(context.Background()))
	r.attempt()
	// The unhedged path arms no timer, so none is pending while the only
	// attempt runs.
	if w := r.fc.Waiters(); w != 0 {
		t.Errorf("%d timers pending for a call marked WithoutRetry", w)
	}
	r.finish[0] <- nil
	if got, err := r.result(); got != "a1" || err != nil {
		t.Errorf("Get = %q, %v; want a1", got, err)
	}
}

func TestHedgeBudget(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		budget      RetryBudgetSettings
		wantHedge   bool
		wantRetries int64
	}{
		// Half a retry per request, no floor: one request earns no hedge.
		{"refused", RetryBudgetSettings{Ratio: 0.5, NoFloor: true}, false, 0},
		{"allowed", RetryBudgetSettings{Ratio: 0.5}, true, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			fc := clock.NewFake(time.Time{})
			tt.budget.Clock = fc
			budget, err := NewRetryBudget(tt.budget)
			if err != nil {
				t.Fatal(err)
			}
			events := make(chan Event, 8)
			h, err := NewHedge(HedgeSettings{Delay: time.Second, Budget: budget, Clock: fc,
				Observer: ObserverFunc(func(e Event) { events <- e })})
			if err != nil {
				t.Fatal(err)
			}
			var attempts atomic.Int32
			release := make(chan struct{})
			done := make(chan error)
			go func() {
				_, err := NewPipeline[int](h).Get(context.Background(), func(ctx context.Context) (int, error) {
					if attempts.Add(1) == 1 {
						<-release
						return 1, nil
					}
					<-ctx.Done()
					return 2, ctx.Err()
				})
				done <- err
			}()
			fc.BlockUntil(1)
			fc.Advance(time.Second)
			// The delay's outcome is reported before the first attempt is let
			// go, so it cannot race the result.
			e := <-events
			close(release)
			if err := <-done; err != nil {
				t.Fatalf("call failed: %v", err)
			}
			if tt.wantHedge {
				if e.Kind != EventHedge || e.Attempt != 2 {
					t.Errorf("event %+v, want a hedge", e)
				}
			} else if e.Kind != EventRejected || e.Reason != "retry_budget_exhausted" || e.Policy != "hedge" {
				t.Errorf("event %+v, want a retry_budget_exhausted rejection", e)
			}
			waitFor(t, func() bool { return tt.wantHedge == (attempts.Load() == 2) })
			if requests, retries := budget.Counts(); requests != 1 || retries != tt.wantRetries {
				t.Errorf("budget counted %d requests, %d retries; want 1, %d", requests, retries, tt.wantRetries)
			}
		})
	}
}

func TestHedgePercentileDelay(t *testing.T) {
	t.Parallel()
	const ms = time.Millisecond
	// upTo returns n latencies 1ms, 2ms, ... in an order that is not sorted.
	upTo := func(n int) []time.Duration {
		out := make([]time.Duration, n)
		for i := range out {
			out[i] = time.Duration((i*37)%n+1) * ms
		}
		return out
	}
	tests := []struct {
		name       string
		percentile float64
		minDelay   time.Duration
		latencies  []time.Duration
		failures   int // calls that fail, at 1ms each, after the latencies
		want       time.Duration
	}{
		{"fixed delay until warm", 0.95, 0, upTo(99), 0, time.Hour},
		{"p95 of 100", 0.95, 0, upTo(100), 0, 95 * ms},
		{"p50 of 100", 0.5, 0, upTo(100), 0, 50 * ms},
		{"p100 is the slowest", 1, 0, upTo(100), 0, 100 * ms},
		{"floor", 0.95, 200 * ms, upTo(100), 0, 200 * ms},
		{"failures are not samples", 0.95, 0, upTo(100), 48, 95 * ms},
		{
			// 352 samples, the last measured: the window holds the last
			// 256, four of the first hundred and 252 of 7ms. (Calls after a
			// measurement of 7ms that take 7ms would hedge.)
			name:       "old samples age out",
			percentile: 0.95,
			latencies:  append(upTo(100), slices.Repeat([]time.Duration{7 * ms}, hedgeSamples-4)...),
			want:       7 * ms,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			fc := clock.NewFake(time.Time{})
			log := &eventLog{}
			h, err := NewHedge(HedgeSettings{Delay: time.Hour, Percentile: tt.percentile, MinDelay: tt.minDelay, Clock: fc, Observer: log})
			if err != nil {
				t.Fatal(err)
			}
			p := NewPipeline[int](h)
			call := func(took time.Duration, fail bool) {
				_, _ = p.Get(context.Background(), func(context.Context) (int, error) {
					fc.Advance(took)
					if fail {
						return 0, errors.New("boom")
					}
					return 0, nil
				})
			}
			for _, d := range tt.latencies {
				call(d, false)
			}
			for range tt.failures {
				call(ms, true)
			}
			if got := h.Delay(); got != tt.want {
				t.Errorf("Delay() = %s, want %s", got, tt.want)
			}
			// The next slow call is hedged after exactly that delay.
			log.drain()
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			go func() {
				defer close(done)
				_, _ = p.Get(ctx, func(ctx context.Context) (int, error) {
					<-ctx.Done()
					return 0, ctx.Err()
				})
			}()
			fc.BlockUntil(1)
			start := fc.Now()
			fc.Advance(tt.want)
			waitFor(t, func() bool { return len(log.kinds()) > 0 })
			if e := log.drain()[0]; e.Kind != EventHedge || e.Delay != tt.want || fc.Since(start) != tt.want {
				t.Errorf("event %+v at +%s, want a hedge after %s", e, fc.Since(start), tt.want)
			}
			cancel()
			<-done
		})
	}
}

// TestHedgeConcurrentCalls runs many hedged calls at once on the real
// clock, with a delay short enough that most calls hedge, and checks that
// every call gets its own result and every other result is discarded.
func TestHedgeConcurrentCalls(t *testing.T) {
	t.Parallel()
	h, err := NewHedge(HedgeSettings{Delay: 20 * time.Microsecond, MaxHedges: 2})
	if err != nil {
		t.Fatal(err)
	}
	var produced, discarded atomic.Int64
	p := NewPipeline[int](h).WithDiscard(func(int) { discarded.Add(1) })
	const workers, calls = 16, 40
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range calls {
				id := w*calls + i
				var attempts atomic.Int32
				got, err := p.Get(context.Background(), func(ctx context.Context) (int, error) {
					defer produced.Add(1)
					n := attempts.Add(1)
					for range int(n) * 50 {
						runtime.Gosched()
					}
					if n == 2 && id%3 == 0 {
						return id, errors.New("boom")
					}
					return id, nil
				})
				if err != nil || got != id {
					t.Errorf("call %d: Get = %d, %v", id, got, err)
				}
			}
		})
	}
	wg.Wait()
	// Losers discard their results from their own goroutines, after Get
	// has returned.
	waitFor(t, func() bool { return produced.Load() == discarded.Load()+workers*calls })
}

// TestHedgeDoesNotLeakGoroutines is not parallel: it counts the process's
// goroutines.
func TestHedgeDoesNotLeakGoroutines(t *testing.T) {
	before := runtime.NumGoroutine()
	fc := clock.NewFake(time.Time{})
	h, err := NewHedge(HedgeSettings{Delay: time.Second, MaxHedges: 3, Clock: fc})
	if err != nil {
		t.Fatal(err)
	}
	var discarded atomic.Int32
	p := NewPipeline[int](h).WithDiscard(func(int) { discarded.Add(1) })
	const calls = 20
	for range calls {
		var attempts atomic.Int32
		done := make(chan struct{})
		go func() {
			defer close(done)
			if got, err := p.Get(context.Background(), func(ctx context.Context) (int, error) {
				if n := attempts.Add(1); n < 4 {
					<-ctx.Done() // the losers wait to be cancelled
					return int(n), ctx.Err()
				}
				return 4, nil
			}); got != 4 || err != nil {
				t.Errorf("Get = %d, %v; want the last hedge's 4", got, err)
			}
		}()
		for range 3 {
			fc.BlockUntil(1)
			fc.Advance(time.Second)
		}
		<-done
	}
	waitFor(t, func() bool { return discarded.Load() == 3*calls && runtime.NumGoroutine() <= before })
}

// TestHedgeWinnerContextOutlivesRun checks the hand-over that lets an HTTP
// body be read after the call: the winner's context ends only when the
// caller calls the cancel function get returns, also when a Retry outside
// the Hedge supersedes an earlier winner.
func TestHedgeWinnerContextOutlivesRun(t *testing.T) {
	t.Parallel()
	fc := clock.NewFake(time.Time{})
	h, err := NewHedge(HedgeSettings{Delay: time.Hour, Clock: fc})
	if err != nil {
		t.Fatal(err)
	}
	retry, err := NewRetry(RetrySettings{MaxAttempts: 2, Clock: jumpClock{clock.NewFake(time.Time{})}})
	if err != nil {
		t.Fatal(err)
	}
	var discarded []int
	p := NewPipeline[int](retry, h).WithDiscard(func(v int) { discarded = append(discarded, v) })
	var ctxs []context.Context
	got, cancel, err := p.get(context.Background(), func(ctx context.Context) (int, error) {
		ctxs = append(ctxs, ctx)
		if len(ctxs) == 1 {
			return 1, errors.New("boom")
		}
		return 2, nil
	})
	if got != 2 || err != nil || cancel == nil {
		t.Fatalf("get = %d, %v, cancel %v; want 2 and a cancel function", got, err, cancel != nil)
	}
	if ctxs[0].Err() == nil {
		t.Error("the superseded attempt's context is still live")
	}
	if !slices.Equal(discarded, []int{1}) {
		t.Errorf("discarded %v, want the superseded [1]", discarded)
	}
	if ctxs[1].Err() != nil {
		t.Fatal("the winner's context ended before the caller was done")
	}
	cancel()
	if ctxs[1].Err() == nil {
		t.Error("the winner's context outlived the caller's cancel")
	}
}

// BenchmarkHedgeNoHedge is the common case: the first attempt answers
// before the delay, so no hedge is sent.
func BenchmarkHedgeNoHedge(b *testing.B) {
	h, err := NewHedge(HedgeSettings{Delay: time.Second})
	if err != nil {
		b.Fatal(err)
	}
	p := NewPipeline[int](h)
	fn := func(context.Context) (int, error) { return 1, nil }
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := p.Get(ctx, fn); err != nil {
			b.Fatal(err)
		}
	}
}
