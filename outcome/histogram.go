package outcome

import (
	"math"
	"math/bits"
	"time"
)

// The cell layout is HDR Histogram's with a lowest discernible value of
// 1µs and 3 significant digits: values are whole microseconds; below
// 2048µs every microsecond has its own cell, and each power of two above
// is split into 1024 equal cells, so a cell is never wider than 1/1024 of
// its lowest value. The layout does not depend on the recorder's maximum,
// so histograms of any range merge cell by cell.
const (
	subBits   = 10 // 1024 cells per power of two: 3 significant digits
	chunkBits = 8  // cells are stored in chunks of 256, allocated on first use
	chunkLen  = 1 << chunkBits
	unitNanos = int64(time.Microsecond)
)

// micros converts a latency to the histogram's unit, truncating; negative
// latencies (a clock step) count as zero.
func micros(d time.Duration) uint64 {
	if d <= 0 {
		return 0
	}
	return uint64(d) / uint64(unitNanos)
}

// cellOf returns the index of the cell holding v microseconds.
func cellOf(v uint64) int {
	shift := bits.Len64(v|(2<<subBits-1)) - (subBits + 1)
	return shift<<subBits + int(v>>uint(shift))
}

// cellShift is log2 of the width of cell i.
func cellShift(i int) int { return max(i>>subBits-1, 0) }

// cellLow returns the lowest value, in microseconds, that cell i holds.
func cellLow(i int) uint64 {
	shift := cellShift(i)
	return uint64(i-shift<<subBits) << uint(shift)
}

// cellHigh returns the highest value, in microseconds, that cell i holds.
func cellHigh(i int) uint64 { return cellLow(i) + 1<<uint(cellShift(i)) - 1 }

func fromMicros(v uint64) time.Duration {
	if v > uint64(math.MaxInt64/unitNanos) {
		return time.Duration(math.MaxInt64)
	}
	return time.Duration(int64(v) * unitNanos)
}

// Histogram is a latency distribution: HDR-style log-linear cells from 1µs
// with 3 significant digits, so any quantile is within 0.1% of the exact
// value (or within 1µs below 1ms). Summaries hand out Histograms as
// snapshots; the zero value is an empty histogram ready to use. A
// Histogram is not safe for concurrent use; the Recorder is.
//
// Results are whole microseconds: Quantile and Max report the highest
// value of a cell, Min its lowest, so a reported percentile never
// understates the latency it stands for by more than the sub-microsecond
// remainder.
type Histogram struct {
	chunks []*[chunkLen]int64
	count  int64
}

// Record adds one latency. Values are kept as whole microseconds;
// negative values count as zero.
func (h *Histogram) Record(d time.Duration) { h.add(cellOf(micros(d)), 1) }

func (h *Histogram) add(cell int, n int64) {
	if n == 0 {
		return
	}
	k := cell >> chunkBits
	if k >= len(h.chunks) {
		h.chunks = append(h.chunks, make([]*[chunkLen]int64, k+1-len(h.chunks))...)
	}
	c := h.chunks[k]
	if c == nil {
		c = new([chunkLen]int64)
		h.chunks[k] = c
	}
	c[cell&(chunkLen-1)] += n
	h.count += n
}

// cells calls f for every non-empty cell in ascending order until f
// returns false.
func (h *Histogram) cells(f func(cell int, n int64) bool) {
	if h == nil {
		return
	}
	for k, c := range h.chunks {
		if c == nil {
			continue
		}
		for j, n := range c {
			if n != 0 && !f(k<<chunkBits+j, n) {
				return
			}
		}
	}
}

// Count returns the number of recorded values.
func (h *Histogram) Count() int64 {
	if h == nil {
		return 0
	}
	return h.count
}

// Merge adds o's counts to h, exactly (cell by cell).
func (h *Histogram) Merge(o *Histogram) {
	// Merging h into itself doubles it: cells are read before they are
	// added to, and no chunk is allocated on the way.
	o.cells(func(cell int, n int64) bool { h.add(cell, n); return true })
}

// Quantile returns the value at or below which a share q of the recorded
// values lie (nearest rank: the ceil(q*Count)-th smallest value), as the
// highest value of its cell. q is clamped to [0,1]; Quantile(0) is Min and
// Quantile(1) is Max. An empty histogram returns 0.
func (h *Histogram) Quantile(q float64) time.Duration {
	n := h.Count()
	if n == 0 {
		return 0
	}
	rank := quantileRank(q, n)
	var seen int64
	at := 0
	h.cells(func(cell int, c int64) bool {
		seen += c
		at = cell
		return seen < rank
	})
	return fromMicros(cellHigh(at))
}

// quantileRank is the 1-based nearest rank of quantile q among n values.
// The small tolerance keeps q*n that is an integer in exact arithmetic
// (0.95*100) from rounding up to the next rank.
func quantileRank(q float64, n int64) int64 {
	if !(q > 0) { // also NaN
		return 1
	}
	if q >= 1 {
		return n
	}
	x := q * float64(n)
	rank := int64(math.Ceil(x - x*1e-12))
	return min(max(rank, 1), n)
}

// Min returns the lowest value of the lowest non-empty cell, or 0.
func (h *Histogram) Min() time.Duration {
	low := uint64(0)
	h.cells(func(cell int, _ int64) bool { low = cellLow(cell); return false })
	return fromMicros(low)
}

// Max returns the highest value of the highest non-empty cell, or 0.
func (h *Histogram) Max() time.Duration {
	if h.Count() == 0 {
		return 0
	}
	for k := len(h.chunks) - 1; k >= 0; k-- {
		c := h.chunks[k]
		if c == nil {
			continue
		}
		for j := chunkLen - 1; j >= 0; j-- {
			if c[j] != 0 {
				return fromMicros(cellHigh(k<<chunkBits + j))
			}
		}
	}
	return 0
}

// Mean returns the mean of the recorded values, each taken at the middle
// of its cell (so within 0.05% of the exact mean above 1ms), or 0.
func (h *Histogram) Mean() time.Duration {
	n := h.Count()
	if n == 0 {
		return 0
	}
	var sum float64
	h.cells(func(cell int, c int64) bool {
		mid := float64(cellLow(cell)) + float64(cellHigh(cell)-cellLow(cell))/2
		sum += mid * float64(c)
		return true
	})
	return time.Duration(sum / float64(n) * float64(unitNanos))
}

// CountAtOrBelow returns how many recorded values are at or below d, for
// "share of requests faster than a threshold" SLIs
// (CountAtOrBelow(t)/Count()).
//
// The cell that holds d counts whole: every value at or below d is
// counted, and so are values above d that share its cell (at most 1/1024
// of d above it, or in the same microsecond below 2ms). The result is
// exact when d is the highest value of a cell, which includes every whole
// microsecond below 2048µs. Negative d counts nothing.
func (h *Histogram) CountAtOrBelow(d time.Duration) int64 {
	if d < 0 || h.Count() == 0 {
		return 0
	}
	limit := cellOf(micros(d))
	var n int64
	h.cells(func(cell int, c int64) bool {
		if cell > limit {
			return false
		}
		n += c
		return true
	})
	return n
}
