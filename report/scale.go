package report

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// niceScale returns a linear axis from lo to hi in steps of step that
// holds [min, max], includes zero, and has round tick values (1, 2, 2.5 or
// 5 times a power of ten) with about four to six intervals. An empty or
// flat range gets the axis [0, 1].
func niceScale(min, max float64) (lo, hi, step float64) {
	min, max = math.Min(min, 0), math.Max(max, 0)
	if !(max > min) || math.IsNaN(min) || math.IsNaN(max) {
		return 0, 1, 0.25
	}
	raw := (max - min) / 5
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []float64{1, 2, 2.5, 5, 10} {
		if step = m * mag; step >= raw*(1-1e-9) {
			break
		}
	}
	lo = math.Floor(min/step+1e-9) * step
	hi = math.Ceil(max/step-1e-9) * step
	return lo, hi, step
}

// axisUnit picks how an axis whose largest magnitude is maxAbs prints its
// values: divide by div and append suffix. Latencies switch between ms and
// s; other units get k and M prefixes so that "12k req/s" stays short.
func axisUnit(unit string, maxAbs float64) (div float64, suffix string) {
	switch unit {
	case "ms":
		if maxAbs >= 1000 {
			return 1000, " s"
		}
		return 1, " ms"
	case "s":
		if maxAbs > 0 && maxAbs < 1 {
			return 0.001, " ms"
		}
		return 1, " s"
	case "%":
		return 1, "%"
	}
	sep := ""
	if unit != "" {
		sep = " "
	}
	switch {
	case maxAbs >= 1e9:
		return 1e9, "G" + sep + unit
	case maxAbs >= 1e6:
		return 1e6, "M" + sep + unit
	case maxAbs >= 1e3:
		return 1e3, "k" + sep + unit
	}
	return 1, sep + unit
}

// decimals is the number of decimals that prints every multiple of step
// exactly (up to 6).
func decimals(step float64) int {
	for d := 0; d < 6; d++ {
		v := step * math.Pow(10, float64(d))
		if math.Abs(v-math.Round(v)) < 1e-6*math.Max(1, v) {
			return d
		}
	}
	return 6
}

// tickLabels prints the values lo, lo+step, ..., hi in the unit's scale.
func tickLabels(lo, hi, step float64, unit string) (values []float64, labels []string) {
	div, suffix := axisUnit(unit, math.Max(math.Abs(lo), math.Abs(hi)))
	if unit != "ms" && unit != "s" {
		// A k or M prefix only where every tick is a whole number of
		// them: 250, 500 ... 1250 reads better than 0.25k ... 1.25k.
		div, suffix = axisUnit(unit, step)
	}
	d := decimals(step / div)
	n := int(math.Round((hi - lo) / step))
	for i := 0; i <= n; i++ {
		v := lo + float64(i)*step
		if math.Abs(v) < step*1e-9 {
			v = 0
		}
		values = append(values, v)
		if v == 0 {
			labels = append(labels, "0") // "0k req/s" and "0.0 s" read worse
			continue
		}
		labels = append(labels, strconv.FormatFloat(v/div, 'f', d, 64)+suffix)
	}
	return values, labels
}

// timeSteps are the candidate intervals of the time axis, in seconds:
// values a reader counts in (5 s, 15 s, 1 min, 5 min, 1 h).
var timeSteps = []float64{0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5,
	1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400}

// timeTicks returns the elapsed seconds of the ticks of an axis spanning
// span seconds (at most about eight) and their labels.
func timeTicks(span float64) (secs []float64, labels []string) {
	step := timeSteps[len(timeSteps)-1]
	for _, s := range timeSteps {
		if span/s <= 8 {
			step = s
			break
		}
	}
	for i := 0; ; i++ {
		v := float64(i) * step
		if v > span*(1+1e-9) {
			break
		}
		secs = append(secs, v)
		labels = append(labels, elapsed(v, step, span))
	}
	return secs, labels
}

// elapsed prints sec as mm:ss, h:mm:ss when the axis spans an hour or
// more, with as many fractional digits as the tick step needs.
func elapsed(sec, step, span float64) string {
	d := 0
	if step < 1 {
		d = decimals(step)
	}
	whole := math.Floor(sec + 1e-9)
	frac := ""
	if d > 0 {
		f := strconv.FormatFloat(sec-whole, 'f', d, 64) // "0.25"
		frac = f[strings.IndexByte(f, '.'):]
	}
	s := int64(whole)
	if span >= 3600 {
		return fmt.Sprintf("%d:%02d:%02d%s", s/3600, s/60%60, s%60, frac)
	}
	return fmt.Sprintf("%02d:%02d%s", s/60, s%60, frac)
}

// coord prints an SVG coordinate with one decimal: a tenth of a pixel is
// below what a screen shows and keeps the file small and deterministic.
func coord(v float64) string {
	return strconv.FormatFloat(math.Round(v*10)/10, 'f', -1, 64)
}

// formatValue prints one value in its unit the way the tooltips do: three
// significant digits, ms or s for latencies, k and M for large rates.
func formatValue(v float64, unit string) string {
	div, suffix := axisUnit(unit, math.Abs(v))
	return strconv.FormatFloat(v/div, 'g', 3, 64) + suffix
}
