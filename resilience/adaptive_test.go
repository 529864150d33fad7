package resilience

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"testing"
	"time"

	"github.com/relia-dev/relia/clock"
)

func newTestLimiter(t *testing.T, s LimiterSettings) (*Limiter, *clock.Fake) {
	t.Helper()
	fc := clock.NewFake(time.Time{})
	s.Clock = fc
	l, err := NewLimiter(s)
	if err != nil {
		t.Fatalf("NewLimiter: %v", err)
	}
	return l, fc
}

// limiterRound admits n calls at once, lets rtt pass on the clock, and
// ends each with outcome(i). It fails the test when a call is refused,
// and returns the limit after the round.
func limiterRound(t *testing.T, l *Limiter, fc *clock.Fake, n int, rtt time.Duration, outcome func(i int) error) int {
	t.Helper()
	permits := make([]LimiterPermit, n)
	for i := range permits {
		p, err := l.Allow()
		if err != nil {
			t.Fatalf("call %d of %d refused at limit %d: %v", i+1, n, l.Limit(), err)
		}
		permits[i] = p
	}
	fc.Advance(rtt)
	for i, p := range permits {
		p.Done(outcome(i))
	}
	return l.Limit()
}

func succeed(int) error { return nil }

func TestLimiterSettingsInvalid(t *testing.T) {
	t.Parallel()
	testBadSettings(t, "adaptive limiter users: ", func(s LimiterSettings) error {
		s.Name = "users"
		_, err := NewLimiter(s)
		return err
	}, []badSettings[LimiterSettings]{
		{"unknown algorithm", LimiterSettings{Algorithm: 7}, "algorithm LimitAlgorithm(7)"},
		{"negative min", LimiterSettings{MinLimit: -1}, "min limit"},
		{"negative max", LimiterSettings{MaxLimit: -1}, "max limit"},
		{"huge max", LimiterSettings{MaxLimit: 1 << 40}, "max limit"},
		{"negative initial", LimiterSettings{InitialLimit: -1}, "initial limit"},
		{"min above max", LimiterSettings{MinLimit: 50, MaxLimit: 10}, "min limit 50: above the max limit 10"},
		{"min above default max", LimiterSettings{MinLimit: 2000}, "min limit 2000"},
		{"initial below min", LimiterSettings{MinLimit: 10, InitialLimit: 5}, "initial limit 5"},
		{"initial above max", LimiterSettings{MaxLimit: 10, InitialLimit: 50}, "initial limit 50"},
		{"backoff of one", LimiterSettings{BackoffRatio: 1}, "backoff ratio"},
		{"negative backoff", LimiterSettings{BackoffRatio: -0.5}, "backoff ratio"},
		{"NaN backoff", LimiterSettings{BackoffRatio: math.NaN()}, "backoff ratio"},
		{"negative slow call duration", LimiterSettings{SlowCallDuration: -1}, "slow call duration"},
		{"tolerance for AIMD", LimiterSettings{Tolerance: 2}, "tolerance set for algorithm aimd"},
		{"long window for AIMD", LimiterSettings{LongWindow: 100}, "long window set"},
		{"tolerance below one", LimiterSettings{Algorithm: LimitGradient, Tolerance: 0.9}, "tolerance"},
		{"infinite tolerance", LimiterSettings{Algorithm: LimitGradient, Tolerance: math.Inf(1)}, "tolerance"},
		{"smoothing above one", LimiterSettings{Algorithm: LimitGradient, Smoothing: 1.5}, "smoothing"},
		{"negative short window", LimiterSettings{Algorithm: LimitGradient, ShortWindow: -1}, "short window"},
		{"negative long window", LimiterSettings{Algorithm: LimitGradient, LongWindow: -1}, "long window"},
		{"long window below short", LimiterSettings{Algorithm: LimitGradient, ShortWindow: 50, LongWindow: 20}, "long window 20"},
	})
}

func TestLimiterSettingsDefaults(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name                string
		s                   LimiterSettings
		initial, minL, maxL int
	}{
		{"zero", LimiterSettings{}, 20, 1, 1000},
		{"initial moved up to min", LimiterSettings{MinLimit: 40}, 40, 40, 1000},
		{"initial moved down to max", LimiterSettings{MaxLimit: 8}, 8, 1, 8},
	}
	for _, tt := range tests {
		c, err := tt.s.config()
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if c.initial != tt.initial || c.minL != tt.minL || c.maxL != tt.maxL || c.backoff != DefaultLimiterBackoffRatio ||
			c.slow != int64(DefaultLimiterSlowCallDuration) {
			t.Errorf("%s: config %+v", tt.name, c)
		}
	}
	c, err := LimiterSettings{Algorithm: LimitGradient}.config()
	if err != nil {
		t.Fatal(err)
	}
	if c.tolerance != DefaultLimiterTolerance || c.smoothing != DefaultLimiterSmoothing || c.shortWindow != DefaultLimiterShortWindow ||
		math.Abs(c.longAlpha-2.0/61) > 1e-12 {
		t.Errorf("gradient defaults: %+v", c)
	}
}

func TestLimiterRejectsAtLimit(t *testing.T) {
	t.Parallel()
	var log eventLog
	l, _ := newTestLimiter(t, LimiterSettings{Name: "users", InitialLimit: 2, MinLimit: 2, MaxLimit: 2, Observer: &log})
	a, _ := l.Allow()
	b, _ := l.Allow()
	_, err := l.Allow()
	wantRejected(t, err, RejectedError{Policy: "adaptive", Name: "users", Reason: "concurrency_limited", Sentinel: ErrConcurrencyLimited})
	a.Done(nil)
	c, err := l.Allow()
	if err != nil {
		t.Fatalf("Allow after a Done: %v", err)
	}
	b.Done(nil)
	c.Done(nil)
	LimiterPermit{}.Done(nil) // the zero permit reports nothing
	if l.InFlight() != 0 {
		t.Errorf("in flight %d, want 0", l.InFlight())
	}
	want := []Event{
		{Kind: EventAcquired, Policy: "adaptive", Name: "users", InFlight: 1},
		{Kind: EventAcquired, Policy: "adaptive", Name: "users", InFlight: 2},
		{Kind: EventRejected, Policy: "adaptive", Name: "users", Reason: "concurrency_limited", InFlight: 2, Limit: 2},
		{Kind: EventReleased, Policy: "adaptive", Name: "users", InFlight: 1},
		{Kind: EventAcquired, Policy: "adaptive", Name: "users", InFlight: 2},
		{Kind: EventReleased, Policy: "adaptive", Name: "users", InFlight: 1},
		{Kind: EventReleased, Policy: "adaptive", Name: "users"},
	}
	wantEvents(t, log.drain(), want)
}

// Under steady latency with the limit in use, AIMD grows the limit by one
// per limit's worth of calls that used it, and never refuses a call below
// the limit.
func TestLimiterAIMDGrowsUnderSteadyLatency(t *testing.T) {
	t.Parallel()
	var log eventLog
	l, fc := newTestLimiter(t, LimiterSettings{Name: "users", MaxLimit: 30, Observer: &log})
	limit := l.Limit()
	for round := range 200 {
		next := limiterRound(t, l, fc, limit, 10*time.Millisecond, succeed)
		if next < limit || next > limit+1 {
			t.Fatalf("round %d: limit %d -> %d, want it to grow by at most one", round, limit, next)
		}
		limit = next
	}
	if limit != 30 {
		t.Errorf("limit %d after 200 rounds at the limit, want the max 30", limit)
	}
	var changes []int
	for _, e := range log.drain() {
		if e.Kind == EventLimitChange {
			changes = append(changes, e.Limit)
		}
	}
	if len(changes) != 10 || changes[0] != 21 || changes[9] != 30 {
		t.Errorf("limit changes %v, want 21 up to 30", changes)
	}
}

// A service whose load stays under half the limit keeps its limit: those
// successes say nothing about how much more it could take.
func TestLimiterAppLimitedKeepsLimit(t *testing.T) {
	t.Parallel()
	for _, alg := range []LimitAlgorithm{LimitAIMD, LimitGradient} {
		l, fc := newTestLimiter(t, LimiterSettings{Algorithm: alg})
		for range 500 {
			limiterRound(t, l, fc, 9, 10*time.Millisecond, succeed)
		}
		if l.Limit() != DefaultLimiterInitialLimit {
			t.Errorf("%s: limit %d after light load, want the initial %d", alg, l.Limit(), DefaultLimiterInitialLimit)
		}
	}
}

func TestLimiterAIMDBacksOffAndRecovers(t *testing.T) {
	t.Parallel()
	errUpstream := errors.New("upstream returned 404")
	timeout := func(int) error { return fmt.Errorf("calling users: %w", context.DeadlineExceeded) }
	tests := []struct {
		name    string
		rtt     time.Duration
		outcome func(int) error
		backoff bool
	}{
		{"timeouts", 10 * time.Millisecond, timeout, true},
		{"a timeout among successes", 10 * time.Millisecond, func(i int) error {
			if i == 3 {
				return &TimeoutError{Limit: time.Second}
			}
			return nil
		}, true},
		{"shed downstream", 10 * time.Millisecond, func(int) error {
			return &RejectedError{Policy: "bulkhead", Reason: "bulkhead_full", Sentinel: ErrBulkheadFull}
		}, true},
		{"slow calls", DefaultLimiterSlowCallDuration + time.Nanosecond, succeed, true},
		{"other errors are ignored", 10 * time.Millisecond, func(int) error { return errUpstream }, false},
		{"cancelled calls are ignored", 10 * time.Millisecond, func(int) error { return context.Canceled }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			l, fc := newTestLimiter(t, LimiterSettings{InitialLimit: 40, MinLimit: 5})
			limit := l.Limit()
			for round := range 30 {
				// Drops of calls admitted together back off once: one
				// backoff per round trip, not one per call.
				next := limiterRound(t, l, fc, limit, tt.rtt, tt.outcome)
				want := limit
				if tt.backoff {
					want = max(int(math.Floor(float64(limit)*0.9)), 5)
					if want == limit && limit > 5 {
						want--
					}
				}
				if next != want {
					t.Fatalf("round %d: limit %d -> %d, want %d", round, limit, next, want)
				}
				limit = next
			}
			if !tt.backoff {
				return
			}
			if limit != 5 {
				t.Fatalf("limit %d after 30 rounds of drops, want the floor 5", limit)
			}
			for range 100 {
				limit = limiterRound(t, l, fc, limit, 10*time.Millisecond, succeed)
			}
			if limit < 15 {
				t.Errorf("limit %d after 100 good rounds, want it recovered above 15", limit)
			}
		})
	}
}

// gradientRounds runs rounds of calls at the limit with the given RTT and
// returns the limit after each.
func gradientRounds(t *testing.T, l *Limiter, fc *clock.Fake, rounds int, rtt time.Duration, outcome func(int) error) []int {
	t.Helper()
	limits := make([]int, rounds)
	for i := range limits {
		limits[i] = limiterRound(t, l, fc, l.Limit(), rtt, outcome)
	}
	return limits
}

func TestLimiterGradient(t *testing.T) {
	t.Parallel()
	l, fc := newTestLimiter(t, LimiterSettings{Algorithm: LimitGradient, MinLimit: 10, MaxLimit: 200})

	steady := gradientRounds(t, l, fc, 20, 20*time.Millisecond, succeed)
	for i := 1; i < len(steady); i++ {
		if steady[i] < steady[i-1] {
			t.Fatalf("steady latency: limit fell %d -> %d", steady[i-1], steady[i])
		}
	}
	if grown := steady[len(steady)-1]; grown < 40 {
		t.Fatalf("steady latency: limit %d after 20 rounds, want it grown well past 20 (%v)", grown, steady)
	}

	// Latency within Tolerance leaves the limit growing.
	within := gradientRounds(t, l, fc, 3, 28*time.Millisecond, succeed)
	if within[2] <= steady[len(steady)-1] {
		t.Fatalf("latency up 40%%: limit %v, want it still growing from %d", within, steady[len(steady)-1])
	}

	// Latency tripled: the limit shrinks at once, but never under the
	// floor. (As the long-term average catches up with the new latency,
	// the gradient returns to 1 and growth resumes: the tripled latency
	// becomes the baseline, as in Gradient2.)
	slow := gradientRounds(t, l, fc, 30, 60*time.Millisecond, succeed)
	if slow[0] >= within[2] {
		t.Fatalf("latency tripled: limit %d -> %d, want it to shrink", within[2], slow[0])
	}
	low := slices.Min(slow)
	if low < 10 {
		t.Fatalf("limit %d under the floor 10", low)
	}

	// Timeouts back off by BackoffRatio per window, down to the floor.
	drops := gradientRounds(t, l, fc, 40, 20*time.Millisecond, func(int) error { return context.DeadlineExceeded })
	if drops[len(drops)-1] != 10 {
		t.Fatalf("limit %d after 40 rounds of timeouts, want the floor 10 (%v)", drops[len(drops)-1], drops)
	}

	// Back to normal latency: the limit recovers.
	recovered := gradientRounds(t, l, fc, 40, 20*time.Millisecond, succeed)
	if recovered[len(recovered)-1] < 30 {
		t.Errorf("limit %d after 40 good rounds, want it recovered above 30 (%v)", recovered[len(recovered)-1], recovered)
	}
}

// The safe defaults never refuse a service below the initial limit whose
// latency is steady, with either algorithm.
func TestLimiterDefaultsDoNotRejectNormalLoad(t *testing.T) {
	t.Parallel()
	for _, alg := range []LimitAlgorithm{LimitAIMD, LimitGradient} {
		l, fc := newTestLimiter(t, LimiterSettings{Algorithm: alg})
		for round := range 300 {
			// Between 10 and 19 calls at once, latency 45-55ms.
			n := 10 + round%10
			rtt := time.Duration(45+round%11) * time.Millisecond
			limiterRound(t, l, fc, n, rtt, succeed)
		}
		if l.Limit() < DefaultLimiterInitialLimit {
			t.Errorf("%s: limit fell to %d under normal load", alg, l.Limit())
		}
	}
}

// Many goroutines through one limiter never run more calls at once than
// its limit allows. Run under -race.
func TestLimiterConcurrentNeverExceedsLimit(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		s    LimiterSettings
		max  int64
	}{
		{"fixed limit", LimiterSettings{InitialLimit: 4, MinLimit: 4, MaxLimit: 4}, 4},
		{"moving limit", LimiterSettings{InitialLimit: 4, MinLimit: 2, MaxLimit: 8}, 8},
		{"moving gradient", LimiterSettings{Algorithm: LimitGradient, InitialLimit: 4, MinLimit: 2, MaxLimit: 8, ShortWindow: 4, LongWindow: 40}, 8},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			l, err := NewLimiter(tt.s)
			if err != nil {
				t.Fatal(err)
			}
			timeouts := func(n int64) error {
				if n%7 == 0 {
					return context.DeadlineExceeded
				}
				return nil
			}
			if peak, _ := hammer(t, NewPipeline[int](l), 16, 300, ErrConcurrencyLimited, timeouts); peak > tt.max {
				t.Errorf("peak concurrency %d, want at most %d", peak, tt.max)
			}
			if l.InFlight() != 0 || l.Limit() < tt.s.MinLimit || l.Limit() > tt.s.MaxLimit {
				t.Errorf("in flight %d, limit %d at the end; want 0 and a limit in [%d, %d]", l.InFlight(), l.Limit(), tt.s.MinLimit, tt.s.MaxLimit)
			}
		})
	}
}

func TestLimiterPanicFreesPlace(t *testing.T) {
	t.Parallel()
	l, _ := newTestLimiter(t, LimiterSettings{InitialLimit: 1, MinLimit: 1})
	p := NewPipeline[int](l)
	getPanicking(t, p)
	if l.InFlight() != 0 || l.Limit() != 1 {
		t.Fatalf("in flight %d, limit %d after a panic; want 0, 1", l.InFlight(), l.Limit())
	}
}

func TestLimiterSuccessPathDoesNotAllocate(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates on its own")
	}
	for _, alg := range []LimitAlgorithm{LimitAIMD, LimitGradient} {
		l, err := NewLimiter(LimiterSettings{Algorithm: alg})
		if err != nil {
			t.Fatal(err)
		}
		if a := testing.AllocsPerRun(1000, func() {
			p, err := l.Allow()
			if err != nil {
				t.Fatal(err)
			}
			p.Done(nil)
		}); a != 0 {
			t.Errorf("%s: Allow+Done: %v allocs per call, want 0", alg, a)
		}
		pl := NewPipeline[int](l)
		ctx := context.Background()
		fn := func(context.Context) (int, error) { return 1, nil }
		if a := testing.AllocsPerRun(1000, func() { _, _ = pl.Get(ctx, fn) }); a != 0 {
			t.Errorf("%s: Run in a pipeline: %v allocs per call, want 0", alg, a)
		}
	}
}

// BenchmarkLimiter measures the success path, Allow then Done, on the
// real clock.
//
//	go test -run='^$' -bench=Limiter -benchmem ./resilience/
func BenchmarkLimiter(b *testing.B) {
	for _, alg := range []LimitAlgorithm{LimitAIMD, LimitGradient} {
		b.Run(alg.String(), func(b *testing.B) {
			l, err := NewLimiter(LimiterSettings{Algorithm: alg, InitialLimit: 1000, MaxLimit: 1000})
			if err != nil {
				b.Fatal(err)
			}
			benchLimits(b, func() error {
				p, err := l.Allow()
				p.Done(nil)
				return err
			})
		})
	}
}
