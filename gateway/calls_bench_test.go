package gateway

import (
	"context"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// BenchmarkProxyCalls is BenchmarkProxy with the call store off and on
// (SQLite, default batches), reporting the process's CPU time per
// request: client, gateway, target and, with the store on, the record
// built on the request path, the writer's queue and the batches written
// to SQLite, flushed before the clock stops. The difference between the
// two is what the store costs a call.
func BenchmarkProxyCalls(b *testing.B) {
	for _, bc := range []struct{ name, extra string }{
		{"off", ""},
		{"on", "  calls: {store: " + filepath.Join(b.TempDir(), "calls.db") + "}\n"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			g, do := proxyBenchGateway(b, bc.extra)
			for range 200 { // warm pools and connections
				do()
			}
			b.ReportAllocs()
			b.ResetTimer()
			cpu := processCPU()
			for i := 0; i < b.N; i++ {
				if do() != 200 {
					b.Fatal("the request failed")
				}
			}
			if g.calls != nil {
				ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
				defer cancel()
				for _, w := range g.calls.writers {
					if err := w.Flush(ctx); err != nil {
						b.Fatal(err)
					}
				}
			}
			cpu = processCPU() - cpu
			b.StopTimer()
			b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/op")
		})
	}
}

// processCPU is the process's user and system CPU time so far.
func processCPU() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
