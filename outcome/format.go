package outcome

import (
	"math"
	"strconv"
	"time"
)

// FormatDuration writes a measured duration for people: rounded to three
// significant figures in the largest unit below it ("9.87s", "45.6ms",
// "789µs"), and to the second from a minute up ("2m5s"). Exact
// durations from configs keep their own form; this is for what relia
// measured.
func FormatDuration(d time.Duration) string {
	if d < 0 {
		return "-" + FormatDuration(-d)
	}
	if d >= time.Minute {
		return d.Round(time.Second).String()
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
		if u.d == time.Second && v >= 60 {
			return time.Minute.String()
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
