package fault

import (
	"errors"
	"fmt"
	"time"

	"github.com/relia-dev/relia/outcome"
)

// MaxEmpiricalSamples bounds the samples of an empirical latency toxic.
const MaxEmpiricalSamples = 100000

// EmpiricalSamples returns n latencies in milliseconds at the quantiles
// (i+0.5)/n of h, for a latency toxic with distribution "empirical": drawn
// uniformly, they replay h's distribution to within its cells' resolution
// and 1/n in rank. An empty histogram gives none.
func EmpiricalSamples(h *outcome.Histogram, n int) []float64 {
	if h == nil || h.Count() == 0 || n <= 0 {
		return nil
	}
	out := make([]float64, n)
	for i := range out {
		out[i] = float64(h.Quantile((float64(i)+0.5)/float64(n))) / float64(time.Millisecond)
	}
	return out
}

// LatencySamples returns n samples of the latencies rec recorded, as
// EmpiricalSamples does: a latency toxic with these replays, in front of a
// test service, the latencies measured from a real one (relia fault add
// --latency-from takes rec from a load results file).
func LatencySamples(rec *outcome.Recorder, n int) ([]float64, error) {
	if n < 1 || n > MaxEmpiricalSamples {
		return nil, fmt.Errorf("samples must be within [1, %d], got %d", MaxEmpiricalSamples, n)
	}
	var samples []float64
	if rec != nil {
		samples = EmpiricalSamples(rec.Total().Latency, n)
	}
	if samples == nil {
		return nil, errors.New("no latencies recorded")
	}
	return samples, nil
}
