package outcome

import (
	"math"
	"strconv"
	"strings"
	"time"
)

// FormatDuration writes a measured duration for people: rounded to three
// significant figures in the largest unit below it ("9.87s", "45.6ms",
// "789µs"), and to the second from a minute up ("2m5s", "1m", "1h0m5s"
// drops nothing but trailing zero units). Exact durations from configs
// keep their own form; this is for what relia measured.
func FormatDuration(d time.Duration) string {
	switch {
	case d < 0:
		return "-" + FormatDuration(-d)
	case d == 0:
		return "0s"
	case d >= time.Minute-500*time.Millisecond:
		s := d.Round(time.Second).String() // "1m0s", "2m5s", "1h0m0s"
		if t, ok := strings.CutSuffix(s, "m0s"); ok {
			s = t + "m"
		}
		if t, ok := strings.CutSuffix(s, "h0m"); ok {
			s = t + "h"
		}
		return s
	}
	units := []struct {
		name string
		d    time.Duration
	}{{"s", time.Second}, {"ms", time.Millisecond}, {"µs", time.Microsecond}}
	for i, u := range units {
		if d < u.d {
			continue
		}
		v := roundSignificant(float64(d)/float64(u.d), 3)
		if v >= 1000 && i > 0 { // 999.6ms rounds up to the next unit
			return FormatDuration(units[i-1].d)
		}
		return strconv.FormatFloat(v, 'f', -1, 64) + u.name
	}
	return strconv.FormatInt(int64(d), 10) + "ns"
}

// roundSignificant rounds v (>= 1) to n significant figures.
func roundSignificant(v float64, n int) float64 {
	if v == 0 {
		return 0
	}
	scale := math.Pow(10, float64(n)-math.Ceil(math.Log10(math.Abs(v)+1e-12)))
	return math.Round(v*scale) / scale
}
