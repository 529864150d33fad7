package resilience_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/relia-dev/relia/clock"
	"github.com/relia-dev/relia/resilience"
)

// A bulkhead caps the calls in flight to one dependency, so that a hung
// dependency cannot take every goroutine. Here one slot is held, so the
// next call is refused at once.
func ExampleBulkhead() {
	bulkhead, err := resilience.NewBulkhead(resilience.BulkheadSettings{Name: "inventory", MaxConcurrent: 1})
	if err != nil {
		fmt.Println(err)
		return
	}
	inventory := resilience.NewPipeline[int](bulkhead)

	held, _ := bulkhead.Acquire(context.Background()) // a call still in flight
	_, err = inventory.Get(context.Background(), func(context.Context) (int, error) { return 7, nil })
	var rej *resilience.RejectedError
	if errors.As(err, &rej) {
		fmt.Println(rej.Policy, rej.Name, rej.Reason)
	}

	held.Release()
	n, err := inventory.Get(context.Background(), func(context.Context) (int, error) { return 7, nil })
	fmt.Println(n, err)
	// Output:
	// bulkhead inventory bulkhead_full
	// 7 <nil>
}

// A rate limiter lets Rate calls a second through, Burst at once, and says
// when the next token is due. The fake clock stands in for time passing.
func ExampleRateLimiter() {
	fc := clock.NewFake(time.Time{})
	limiter, err := resilience.NewRateLimiter(resilience.RateLimiterSettings{Name: "search", Rate: 2, Burst: 2, Clock: fc})
	if err != nil {
		fmt.Println(err)
		return
	}
	for range 3 {
		ok, retryAfter := limiter.Take(1)
		fmt.Println(ok, retryAfter)
	}
	fc.Advance(500 * time.Millisecond)
	fmt.Println(limiter.Allow())
	// Output:
	// true 0s
	// true 0s
	// false 500ms
	// true
}

// A keyed rate limiter gives every client its own bucket. In a pipeline
// the key travels in the context.
func ExampleKeyedRateLimiter() {
	perClient, err := resilience.NewKeyedRateLimiter(resilience.KeyedRateLimiterSettings{
		Name:  "api",
		Rate:  1,
		Burst: 1,
		Clock: clock.NewFake(time.Time{}),
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	api := resilience.NewPipeline[string](perClient)
	handle := func(context.Context) (string, error) { return "ok", nil }

	for _, client := range []string{"alice", "alice", "bob"} {
		ctx := resilience.WithRateLimitKey(context.Background(), client)
		res, err := api.Get(ctx, handle)
		if hint, limited := resilience.RetryHintOf(err); limited {
			fmt.Printf("%s: 429, Retry-After %s\n", client, hint)
			continue
		}
		fmt.Printf("%s: %s\n", client, res)
	}
	// Output:
	// alice: ok
	// alice: 429, Retry-After 1s
	// bob: ok
}

// A proxy admits each request through the adaptive limiter's two-step
// form and reports how it went; timeouts shrink the limit, and successes
// at the limit grow it back.
func ExampleLimiter_Allow() {
	fc := clock.NewFake(time.Time{})
	limiter, err := resilience.NewLimiter(resilience.LimiterSettings{
		Name:         "payments",
		InitialLimit: 10,
		MinLimit:     2,
		Clock:        fc,
		Observer: resilience.ObserverFunc(func(e resilience.Event) {
			if e.Kind == resilience.EventLimitChange {
				fmt.Println("limit", e.Limit)
			}
		}),
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	// forward sends n requests at once upstream; each takes 20ms and ends
	// with upstreamErr.
	forward := func(n int, upstreamErr error) {
		permits := make([]resilience.LimiterPermit, 0, n)
		for range n {
			p, err := limiter.Allow()
			if err != nil {
				fmt.Println("503:", err)
				continue
			}
			permits = append(permits, p)
		}
		fc.Advance(20 * time.Millisecond)
		for _, p := range permits {
			p.Done(upstreamErr)
		}
	}

	forward(10, context.DeadlineExceeded) // the upstream times out: back off once
	forward(10, nil)                      // one over the new limit is refused
	forward(9, nil)
	forward(9, nil)
	// Output:
	// limit 9
	// 503: adaptive payments: concurrency limit reached (concurrency_limited)
	// limit 10
}
