package harness

import "testing"

func TestMedianIntervalTakesTheSignTestsRanks(t *testing.T) {
	for _, c := range []struct {
		n, lo, hi int // the interval's ranks, counted from 1
	}{
		{6, 1, 6}, // the least count with an interval: min and max
		{10, 2, 9},
		{30, 10, 21},
		{100, 40, 61},
	} {
		// The values in reverse, so that the interval must come from a
		// sorted copy: value i+1 is rank i+1.
		v := make([]float64, c.n)
		for i := range v {
			v[i] = float64(c.n - i)
		}
		lo, hi, ok := MedianInterval(v)
		if !ok || lo != float64(c.lo) || hi != float64(c.hi) {
			t.Errorf("n=%d: got [%v, %v] (ok %v), want ranks [%d, %d]", c.n, lo, hi, ok, c.lo, c.hi)
		}
		if v[0] != float64(c.n) {
			t.Errorf("n=%d: the values were reordered", c.n)
		}
	}
	if _, _, ok := MedianInterval(make([]float64, 5)); ok {
		t.Error("five values gave an interval; a 95% one needs at least six")
	}
}
