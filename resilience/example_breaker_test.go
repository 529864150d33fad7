package resilience_test

import (
	"errors"
	"fmt"
	"time"

	"github.com/relia-dev/relia/clock"
	"github.com/relia-dev/relia/resilience"
)

// A proxy cannot wrap its upstream call in a function, so it uses the
// two-step form: Allow before forwarding, Done with the outcome after. The
// fake clock stands in for time passing.
func ExampleBreaker_Allow() {
	fc := clock.NewFake(time.Time{})
	breaker, err := resilience.NewBreaker(resilience.BreakerSettings{
		Name:                "payments",
		Clock:               fc,
		ConsecutiveFailures: 2,
		OpenDuration:        10 * time.Second,
		OnStateChange: func(name string, from, to resilience.State) {
			fmt.Printf("%s: %s -> %s\n", name, from, to)
		},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	errUpstream := errors.New("upstream returned 503")

	forward := func(upstreamErr error) {
		permit, err := breaker.Allow()
		if err != nil {
			// Answer at once: 503 with the reason and a Retry-After.
			var rej *resilience.RejectedError
			errors.As(err, &rej)
			fmt.Printf("rejected: %s, retry after %s\n", rej.Reason, rej.RetryAfter)
			return
		}
		permit.Done(upstreamErr) // after the upstream answered
	}

	forward(nil)
	forward(errUpstream)
	forward(errUpstream)
	forward(nil)

	fc.Advance(10 * time.Second)
	forward(nil) // the probe succeeds
	fmt.Println(breaker.State())
	// Output:
	// payments: closed -> open
	// rejected: breaker_open, retry after 10s
	// payments: open -> half-open
	// payments: half-open -> closed
	// closed
}
