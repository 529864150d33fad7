package resilience

import (
	"errors"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/relia-dev/relia/clock"
)

var errAttempt = errors.New("attempt failed")

func TestRetryCallFollowsThePolicy(t *testing.T) {
	clk := clock.NewFake(time.Unix(0, 0))
	obs := &recorder{}
	r, err := NewRetry(RetrySettings{Name: "r", MaxAttempts: 3, Base: 10 * time.Millisecond, Cap: 40 * time.Millisecond, Clock: clk, Observer: obs, Rand: rand.NewPCG(1, 2)})
	if err != nil {
		t.Fatal(err)
	}
	c := r.Start()
	for attempt := 2; attempt <= 3; attempt++ {
		wait, err := c.Again(errAttempt, time.Time{})
		if err != nil || wait < 0 || wait > 40*time.Millisecond {
			t.Fatalf("before attempt %d: wait %v err %v", attempt, wait, err)
		}
	}
	if _, err := c.Again(errAttempt, time.Time{}); !errors.Is(err, ErrRetriesExhausted) || !errors.Is(err, errAttempt) {
		t.Errorf("after 3 attempts: %v, want retries exhausted and the attempt's error", err)
	}
	if got := obs.count(EventRetry); got != 2 {
		t.Errorf("%d retry events, want 2", got)
	}
	if c.Attempts() != 4 {
		t.Errorf("attempts %d", c.Attempts())
	}
}

func TestRetryCallStopsAtTheDeadlineAndTheBudget(t *testing.T) {
	clk := clock.NewFake(time.Unix(0, 0))
	r, _ := NewRetry(RetrySettings{MaxAttempts: 5, Base: time.Second, Cap: time.Second, Jitter: JitterNone, Clock: clk})
	c := r.Start()
	var re *RetriesExhaustedError
	if _, err := c.Again(errAttempt, clk.Now().Add(500*time.Millisecond)); !errors.As(err, &re) || !re.OutOfTime {
		t.Errorf("a wait past the deadline: %v, want out of time", err)
	}

	budget, _ := NewRetryBudget(RetryBudgetSettings{Ratio: 0.1, MinPerSecond: 0.001, Clock: clk})
	r, _ = NewRetry(RetrySettings{MaxAttempts: 5, Base: time.Millisecond, Budget: budget, Clock: clk})
	c = r.Start()
	if _, err := c.Again(errAttempt, time.Time{}); !errors.Is(err, ErrRetryBudgetExhausted) {
		t.Errorf("one call's deposit against a 10%% budget: %v, want the budget exhausted", err)
	}

	r, _ = NewRetry(RetrySettings{MaxAttempts: 5, RetryIf: func(error) bool { return false }, Clock: clk})
	c = r.Start()
	if _, err := c.Again(errAttempt, time.Time{}); err != errAttempt {
		t.Errorf("an error RetryIf refuses: %v, want it back as it is", err)
	}
}

func TestHedgeCallFollowsThePolicy(t *testing.T) {
	clk := clock.NewFake(time.Unix(0, 0))
	obs := &recorder{}
	h, err := NewHedge(HedgeSettings{Name: "h", Delay: 50 * time.Millisecond, MaxHedges: 2, Clock: clk, Observer: obs})
	if err != nil {
		t.Fatal(err)
	}
	c := h.Start(true)
	if c.Delay() != 50*time.Millisecond {
		t.Errorf("delay %v", c.Delay())
	}
	for i := range 2 {
		if !c.More() || !c.Another() {
			t.Fatalf("hedge %d refused", i+1)
		}
	}
	if c.More() || c.Another() {
		t.Error("a third hedge past MaxHedges 2")
	}
	c.Done(nil)
	if got := obs.count(EventHedge); got != 2 {
		t.Errorf("%d hedge events, want 2", got)
	}

	budget, _ := NewRetryBudget(RetryBudgetSettings{Ratio: 0.1, MinPerSecond: 0.001, Clock: clk})
	h, _ = NewHedge(HedgeSettings{Delay: time.Millisecond, MaxHedges: 3, Budget: budget, Clock: clk})
	c = h.Start(true)
	if c.Another() || c.More() {
		t.Error("a hedge the budget cannot pay for was allowed, or more promised")
	}
}

// recorder counts the events it observes by kind.
type recorder struct{ kinds []EventKind }

func (r *recorder) Observe(e Event) { r.kinds = append(r.kinds, e.Kind) }

func (r *recorder) count(k EventKind) int {
	n := 0
	for _, got := range r.kinds {
		if got == k {
			n++
		}
	}
	return n
}
