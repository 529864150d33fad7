package outcome

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
	"unsafe"
)

func TestCellLayout(t *testing.T) {
	t.Parallel()
	last := cellOf(micros(24 * time.Hour))
	for i := 0; i <= last; i++ {
		low, high := cellLow(i), cellHigh(i)
		if cellOf(low) != i || cellOf(high) != i {
			t.Fatalf("cell %d holds [%d, %d] but those map to cells %d and %d", i, low, high, cellOf(low), cellOf(high))
		}
		if i > 0 && cellHigh(i-1)+1 != low {
			t.Fatalf("cell %d starts at %d, not right after cell %d's %d", i, low, i-1, cellHigh(i-1))
		}
		// 3 significant digits: a cell is at most 1/1024 of its values wide.
		if width := high - low + 1; width > 1 && width > low/1024 {
			t.Fatalf("cell %d is %dus wide at %dus: more than 1/1024", i, width, low)
		}
	}
	for _, v := range []uint64{0, 1, 2047, 2048, 4095, 4096, 1 << 40, math.MaxUint64} {
		if i := cellOf(v); cellLow(i) > v || v > cellHigh(i) {
			t.Errorf("cellOf(%d) = %d holding [%d, %d]", v, i, cellLow(i), cellHigh(i))
		}
	}
}

// samples returns n latencies of several shapes, all at or above 1ms so
// that 3 significant digits bound the error (below 1ms it is 1µs).
func samples(n int, seed uint64) []time.Duration {
	rng := rand.New(rand.NewPCG(seed, seed+1))
	out := make([]time.Duration, n)
	for i := range out {
		switch i % 3 {
		case 0: // log-normal around 20ms
			out[i] = time.Duration(20e6 * math.Exp(0.7*rng.NormFloat64()))
		case 1: // uniform 1ms..2s
			out[i] = time.Millisecond + time.Duration(rng.Int64N(int64(2*time.Second)))
		default: // a slow mode around 800ms
			out[i] = time.Duration(800e6 * math.Exp(0.1*rng.NormFloat64()))
		}
		out[i] = max(out[i], time.Millisecond)
	}
	return out
}

func histogramOf(values []time.Duration) *Histogram {
	var h Histogram
	for _, v := range values {
		h.Record(v)
	}
	return &h
}

func TestQuantileAccuracy(t *testing.T) {
	t.Parallel()
	values := samples(30_000, 7)
	h := histogramOf(values)
	sorted := slices.Clone(values)
	slices.Sort(sorted)
	for _, q := range []float64{0, 0.001, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 0.999, 0.9999, 1} {
		want := sorted[quantileRank(q, int64(len(sorted)))-1]
		got := h.Quantile(q)
		if rel := math.Abs(float64(got-want)) / float64(want); rel > 0.001 {
			t.Errorf("Quantile(%v) = %v, exact %v: off by %.4f%%", q, got, want, 100*rel)
		}
	}
	if got, want := h.Count(), int64(len(values)); got != want {
		t.Errorf("Count() = %d, want %d", got, want)
	}
	if h.Min() != h.Quantile(0) || h.Max() != h.Quantile(1) {
		t.Errorf("Min %v and Max %v differ from Quantile(0) %v and Quantile(1) %v", h.Min(), h.Max(), h.Quantile(0), h.Quantile(1))
	}
	var sum float64
	for _, v := range values {
		sum += float64(v)
	}
	if mean := sum / float64(len(values)); math.Abs(float64(h.Mean())-mean)/mean > 0.001 {
		t.Errorf("Mean() = %v, exact %v", h.Mean(), time.Duration(mean))
	}
}

func TestQuantileRank(t *testing.T) {
	t.Parallel()
	tests := []struct {
		q    float64
		n    int64
		want int64
	}{
		{0, 100, 1},
		{math.NaN(), 100, 1},
		{-1, 100, 1},
		{0.01, 100, 1},
		{0.5, 100, 50},
		{0.95, 100, 95},
		{0.07, 100, 7}, // 0.07*100 is 7.000000000000001 in floating point
		{0.57, 100, 57},
		{0.951, 100, 96},
		{0.999, 1000, 999},
		{1, 100, 100},
		{2, 100, 100},
		{0.5, 1, 1},
	}
	for _, tt := range tests {
		if got := quantileRank(tt.q, tt.n); got != tt.want {
			t.Errorf("quantileRank(%v, %d) = %d, want %d", tt.q, tt.n, got, tt.want)
		}
	}
}

func TestCountAtOrBelow(t *testing.T) {
	t.Parallel()
	values := samples(20_000, 11)
	h := histogramOf(values)
	exact := func(d time.Duration) int64 {
		var n int64
		for _, v := range values {
			if micros(v) <= micros(d) {
				n++
			}
		}
		return n
	}
	rng := rand.New(rand.NewPCG(3, 4))
	for range 200 {
		d := time.Duration(rng.Int64N(int64(2 * time.Second)))
		// On a cell's highest value the count is exact.
		top := fromMicros(cellHigh(cellOf(micros(d))))
		if got, want := h.CountAtOrBelow(top), exact(top); got != want {
			t.Fatalf("CountAtOrBelow(%v) = %d, want exactly %d", top, got, want)
		}
		// Elsewhere it counts every value at or below d, and nothing above
		// d's cell.
		if got, low := h.CountAtOrBelow(d), exact(d); got < low || got > exact(top) {
			t.Fatalf("CountAtOrBelow(%v) = %d, want between %d and %d", d, got, low, exact(top))
		}
	}
	for _, tt := range []struct {
		d    time.Duration
		want int64
	}{
		{-time.Second, 0},
		{0, 0},
		{time.Hour, int64(len(values))},
	} {
		if got := h.CountAtOrBelow(tt.d); got != tt.want {
			t.Errorf("CountAtOrBelow(%v) = %d, want %d", tt.d, got, tt.want)
		}
	}
}

func TestHistogramSmallValues(t *testing.T) {
	t.Parallel()
	var h Histogram
	for _, d := range []time.Duration{-5, 0, 999, 1000, 1999, 2047 * time.Microsecond} {
		h.Record(d)
	}
	tests := []struct {
		name string
		got  time.Duration
		want time.Duration
	}{
		{"min", h.Min(), 0},
		{"median", h.Quantile(0.5), 0}, // -5ns, 0 and 999ns truncate to 0µs
		{"p67", h.Quantile(0.67), time.Microsecond},
		{"max", h.Max(), 2047 * time.Microsecond},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%s = %v, want %v", tt.name, tt.got, tt.want)
		}
	}
	if got := h.CountAtOrBelow(time.Microsecond); got != 5 {
		t.Errorf("CountAtOrBelow(1µs) = %d, want 5", got)
	}
}

func TestHistogramEmpty(t *testing.T) {
	t.Parallel()
	for name, h := range map[string]*Histogram{"nil": nil, "zero": {}} {
		if h.Count() != 0 || h.Quantile(0.5) != 0 || h.Min() != 0 || h.Max() != 0 || h.Mean() != 0 || h.CountAtOrBelow(time.Hour) != 0 {
			t.Errorf("%s histogram: want zeros, got count %d p50 %v min %v max %v mean %v", name,
				h.Count(), h.Quantile(0.5), h.Min(), h.Max(), h.Mean())
		}
	}
	var h Histogram
	h.Merge(nil)
	h.Merge(&Histogram{})
	if h.Count() != 0 {
		t.Errorf("merging empty histograms gave count %d", h.Count())
	}
}

func TestHistogramMerge(t *testing.T) {
	t.Parallel()
	values := samples(9_000, 5)
	var whole Histogram
	parts := make([]Histogram, 4)
	for i, v := range values {
		whole.Record(v)
		parts[i%len(parts)].Record(v)
	}
	var merged Histogram
	for i := range parts {
		merged.Merge(&parts[i])
	}
	if !sameCells(&merged, &whole) {
		t.Fatal("merge of the parts differs from the whole")
	}
	merged.Merge(&merged)
	if merged.Count() != 2*whole.Count() || merged.Quantile(0.5) != whole.Quantile(0.5) {
		t.Errorf("merging a histogram into itself: count %d p50 %v, want %d and %v",
			merged.Count(), merged.Quantile(0.5), 2*whole.Count(), whole.Quantile(0.5))
	}
}

func TestDenseCarry(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		adds []uint64
		want uint64
	}{
		{"wraps the low word by one", []uint64{math.MaxUint32, 1}, 1 << 32},
		{"wraps the low word", []uint64{math.MaxUint32, 3, 1}, 1<<32 + 3},
		{"above 32 bits", []uint64{5<<32 + 7, 1}, 5<<32 + 8},
		{"twice", []uint64{math.MaxUint32, math.MaxUint32, 2}, 2 << 32},
		{"small", []uint64{3, 1, 1, 1, 1}, 7},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var d dense
			for _, n := range tt.adds {
				d.add(700, n, 4)
			}
			var got []uint64
			d.each(func(cell int, n uint64) {
				if cell != 700 {
					t.Errorf("cell %d has %d, want only cell 700", cell, n)
				}
				got = append(got, n)
			})
			if len(got) != 1 || got[0] != tt.want {
				t.Errorf("cell 700 = %v, want %d", got, tt.want)
			}
		})
	}
}

func TestStripeSize(t *testing.T) {
	t.Parallel()
	// Stripes of different cores must not share a cache line.
	if size := unsafe.Sizeof(stripe{}); size%64 != 0 {
		t.Errorf("a stripe is %d bytes, not a whole number of 64-byte cache lines", size)
	}
}
