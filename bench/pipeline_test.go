package bench

import (
	"context"
	"testing"
	"time"

	"github.com/failsafe-go/failsafe-go"
	"github.com/failsafe-go/failsafe-go/bulkhead"
	"github.com/failsafe-go/failsafe-go/circuitbreaker"
	"github.com/failsafe-go/failsafe-go/fallback"
	"github.com/failsafe-go/failsafe-go/retrypolicy"
	"github.com/failsafe-go/failsafe-go/timeout"

	"github.com/relia-dev/relia/resilience"
)

// BenchmarkPipeline5 measures the success path through five policies,
// outer to inner: fallback, retry, circuit breaker, bulkhead, timeout, with
// the same settings on both sides so that neither does less work: 3
// attempts, a breaker that opens after 5 consecutive failures, 1024
// concurrent slots, a 1s timeout.
//
//	cd bench && taskset -c 1 go test -run=^$ -bench=Pipeline5 -benchmem -benchtime=300ms -count=1 .
func BenchmarkPipeline5(b *testing.B) {
	fn := func(context.Context) (int, error) { return 1, nil }
	b.Run("relia", func(b *testing.B) {
		p := newReliaPipeline5(b)
		ctx := context.Background()
		serialParallel(b, func() (int, error) { return p.Get(ctx, fn) })
	})
	b.Run("failsafe-go", func(b *testing.B) {
		exec := failsafe.With[int](
			fallback.NewWithResult(-1),
			retrypolicy.NewBuilder[int]().WithMaxAttempts(3).WithDelay(time.Millisecond).Build(),
			circuitbreaker.NewBuilder[int]().WithFailureThreshold(5).WithDelay(time.Second).Build(),
			bulkhead.New[int](1024),
			timeout.New[int](time.Second),
		)
		get := func() (int, error) { return fn(context.Background()) }
		serialParallel(b, func() (int, error) { return exec.Get(get) })
	})
}

func newReliaPipeline5(b *testing.B) *resilience.Pipeline[int] {
	fb, err := resilience.NewFallback(resilience.FallbackSettings[int]{Value: -1})
	if err != nil {
		b.Fatal(err)
	}
	retry, err := resilience.NewRetry(resilience.RetrySettings{MaxAttempts: 3, Base: time.Millisecond})
	if err != nil {
		b.Fatal(err)
	}
	br, err := resilience.NewBreaker(resilience.BreakerSettings{ConsecutiveFailures: 5, OpenDuration: time.Second})
	if err != nil {
		b.Fatal(err)
	}
	bh, err := resilience.NewBulkhead(resilience.BulkheadSettings{MaxConcurrent: 1024})
	if err != nil {
		b.Fatal(err)
	}
	to, err := resilience.NewTimeout(resilience.TimeoutSettings{Timeout: time.Second})
	if err != nil {
		b.Fatal(err)
	}
	return resilience.NewPipeline[int](fb, retry, br, bh, to)
}

// serialParallel runs call on one goroutine, then on GOMAXPROCS
// goroutines, failing the benchmark if the success path ever fails.
func serialParallel(b *testing.B, call func() (int, error)) {
	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if v, err := call(); err != nil || v != 1 {
				b.Fatalf("call = %d, %v; want 1, nil", v, err)
			}
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if v, err := call(); err != nil || v != 1 {
					b.Errorf("call = %d, %v; want 1, nil", v, err)
					return
				}
			}
		})
	})
}
