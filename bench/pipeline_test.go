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
)

// BenchmarkPipeline5 measures the success path through five policies,
// outer to inner: fallback, retry, circuit breaker, bulkhead, timeout, with
// settings relia's side must match so that neither does less work: 3
// attempts, a breaker that opens after 5 failures, 1024 concurrent slots, a
// 1s timeout. Only failsafe-go's side is here so far: relia's joins it as
// BenchmarkPipeline5/relia once resilience has Retry, Bulkhead and Timeout.
//
//	cd bench && taskset -c 1 go test -run=^$ -bench=Pipeline5 -benchmem -benchtime=300ms -count=1 .
func BenchmarkPipeline5(b *testing.B) {
	fn := func(context.Context) (int, error) { return 1, nil }
	b.Run("failsafe-go", func(b *testing.B) {
		exec := failsafe.With[int](
			fallback.NewWithResult(-1),
			retrypolicy.NewBuilder[int]().WithMaxAttempts(3).WithDelay(time.Millisecond).Build(),
			circuitbreaker.NewBuilder[int]().WithFailureThreshold(5).WithDelay(time.Second).Build(),
			bulkhead.New[int](1024),
			timeout.New[int](time.Second),
		)
		get := func() (int, error) { return fn(context.Background()) }
		benchSerialParallel(b, func() (int, error) { return exec.Get(get) })
	})
}

// benchSerialParallel runs call on one goroutine, then on GOMAXPROCS
// goroutines, failing the benchmark if the success path ever fails.
func benchSerialParallel(b *testing.B, call func() (int, error)) {
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
