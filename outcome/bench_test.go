package outcome

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"
)

// benchOutcomes returns n outcomes shaped like a load test's: latencies
// log-normal around 20ms, 1% 503s, one in four from the open model with a
// scheduling lag of up to 200µs. They start within one second, as a
// running test's do, but for one in fifty that started in the second
// before (they finish after the current bucket began).
func benchOutcomes(n int) []Outcome {
	rng := rand.New(rand.NewPCG(1, 2))
	base := time.Unix(1_700_000_000, 0)
	out := make([]Outcome, n)
	for i := range out {
		lat := time.Duration(20e6 * math.Exp(0.5*rng.NormFloat64()))
		o := Outcome{
			Start:    base.Add(time.Duration(i) * time.Second / time.Duration(n)),
			Latency:  lat,
			Status:   200,
			BytesIn:  512,
			BytesOut: 128,
			Attempt:  1,
		}
		if rng.IntN(100) == 0 {
			o.Status, o.Class = 503, ClassStatus
		}
		if rng.IntN(4) == 0 {
			o.ServiceTime = lat - time.Duration(rng.IntN(200_000))
		}
		if rng.IntN(50) == 0 {
			o.Start = o.Start.Add(-time.Second)
		}
		out[i] = o
	}
	return out
}

// BenchmarkRecord measures Record in steady state (every bucket already
// touched), serially and from b.RunParallel's goroutines. Run with
// -cpu=1,2: the parallel figure at -cpu=2 is wall time per outcome with
// two cores recording.
func BenchmarkRecord(b *testing.B) {
	outcomes := benchOutcomes(4096)
	warm := func(b *testing.B) *Recorder {
		r, err := NewRecorder(Options{})
		if err != nil {
			b.Fatal(err)
		}
		for _, o := range outcomes {
			r.Record(o)
		}
		b.ReportAllocs()
		b.ResetTimer()
		return r
	}
	b.Run("serial", func(b *testing.B) {
		r := warm(b)
		i := 0
		for b.Loop() {
			r.Record(outcomes[i&4095])
			i++
		}
	})
	b.Run("parallel", func(b *testing.B) {
		r := warm(b)
		b.RunParallel(func(pb *testing.PB) {
			i := rand.IntN(4096)
			for pb.Next() {
				r.Record(outcomes[i&4095])
				i++
			}
		})
	})
}
