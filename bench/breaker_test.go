package bench

import (
	"context"
	"testing"
	"time"

	"github.com/failsafe-go/failsafe-go"
	"github.com/failsafe-go/failsafe-go/circuitbreaker"
	"github.com/relia-dev/relia/resilience"
	"github.com/sony/gobreaker/v2"
)

// BenchmarkBreaker measures the success path of a circuit breaker alone:
// relia's Breaker as the only policy of a Pipeline (relia-run) and through
// its two-step form (relia-allow-done), gobreaker's Execute, and
// failsafe-go's executor with only a circuit breaker. Each breaker opens
// after 5 consecutive failures, stays open 30s and closes after one
// successful probe; relia keeps its default count-based window of the last
// 100 calls, gobreaker its per-generation counts and failsafe-go its count
// window of 5.
//
//	cd bench && taskset -c 1 go test -run=^$ -bench=Breaker -benchmem -benchtime=300ms -count=1 .
func BenchmarkBreaker(b *testing.B) {
	ctx := context.Background()
	fn := func(context.Context) (int, error) { return 1, nil }

	b.Run("relia-run", func(b *testing.B) {
		br := newReliaBreaker(b)
		p := resilience.NewPipeline[int](br)
		serialParallel(b, func() (int, error) { return p.Get(ctx, fn) })
	})
	b.Run("relia-allow-done", func(b *testing.B) {
		br := newReliaBreaker(b)
		serialParallel(b, func() (int, error) {
			permit, err := br.Allow()
			if err != nil {
				return 0, err
			}
			v, err := fn(ctx)
			permit.Done(err)
			return v, err
		})
	})
	b.Run("gobreaker", func(b *testing.B) {
		cb := gobreaker.NewCircuitBreaker[int](gobreaker.Settings{
			Name:        "bench",
			MaxRequests: 1,
			Timeout:     30 * time.Second,
			ReadyToTrip: func(c gobreaker.Counts) bool { return c.ConsecutiveFailures >= 5 },
		})
		call := func() (int, error) { return fn(ctx) }
		serialParallel(b, func() (int, error) { return cb.Execute(call) })
	})
	b.Run("failsafe-go", func(b *testing.B) {
		cb := circuitbreaker.NewBuilder[int]().
			WithFailureThreshold(5).
			WithDelay(30 * time.Second).
			WithSuccessThreshold(1).
			Build()
		exec := failsafe.With[int](cb)
		call := func() (int, error) { return fn(ctx) }
		serialParallel(b, func() (int, error) { return exec.Get(call) })
	})
}

func newReliaBreaker(b *testing.B) *resilience.Breaker {
	br, err := resilience.NewBreaker(resilience.BreakerSettings{
		Name:                "bench",
		ConsecutiveFailures: 5,
		WindowSize:          100,
		OpenDuration:        30 * time.Second,
		SuccessThreshold:    1,
	})
	if err != nil {
		b.Fatal(err)
	}
	return br
}
