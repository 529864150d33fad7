package report

import (
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/relia-dev/relia/outcome"
)

// PercentileChart is a latency distribution drawn as HdrHistogram's and
// Gatling's percentile plots are: the value (y) at each percentile (x),
// with x stretched as log10(1/(1-p)) so that 90%, 99%, 99.9% and 99.99%
// sit at equal steps and the tail gets as much room as the median. The x
// axis runs from 0% to the decade past the series' deepest percentile.
type PercentileChart struct {
	// Title heads the chart.
	Title string
	// Unit is the unit of the values, as in Chart.
	Unit string
	// Series are the curves, drawn in order; the legend lists them.
	Series []PercentileSeries
	// Lines are horizontal reference lines, such as a latency objective.
	Lines []Line
	// Scale and ScaleToggle are as in Chart.
	Scale       Scale
	ScaleToggle bool
	// Note is one line under the chart; empty means none.
	Note string
}

// PercentileSeries is one curve of a PercentileChart.
type PercentileSeries struct {
	// Name labels the curve in the legend and the tooltip.
	Name string
	// Points are in ascending order of P.
	Points []PercentilePoint
	// Color is as in Series.
	Color string
}

// PercentilePoint is the value at or below which a share P (0 to 1) of
// the recorded values lie.
type PercentilePoint struct {
	P, V float64
}

// maxDecades bounds the percentile axis at 99.99999%.
const maxDecades = 7

// percentileSamples is how many points HistogramPercentiles takes along
// the axis: about one per four pixel columns.
const percentileSamples = 240

// HistogramPercentiles is the percentile curve of a latency histogram in
// milliseconds, by the histogram's own quantile definition (nearest
// rank), so every point agrees with the percentiles printed elsewhere.
// It samples evenly along the log axis from the minimum (0%) to the
// maximum, which it places at 1-1/n for n values, where HdrHistogram's
// plots put it. An empty histogram gives a series without points.
func HistogramPercentiles(name string, h *outcome.Histogram) PercentileSeries {
	s := PercentileSeries{Name: name}
	n := h.Count()
	if n == 0 {
		return s
	}
	msOf := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	deepest := math.Min(math.Log10(float64(n)), maxDecades)
	for i := range percentileSamples {
		u := deepest * float64(i) / percentileSamples
		p := 1 - math.Pow(10, -u)
		v := msOf(h.Quantile(p))
		// A flat stretch keeps only its ends.
		if k := len(s.Points); k >= 2 && s.Points[k-1].V == v && s.Points[k-2].V == v {
			s.Points[k-1] = PercentilePoint{P: p, V: v}
			continue
		}
		s.Points = append(s.Points, PercentilePoint{P: p, V: v})
	}
	last := 0.0
	if n > 1 {
		last = 1 - 1/float64(n)
	}
	if k := len(s.Points); k > 0 && s.Points[k-1].P >= last {
		s.Points = s.Points[:k-1]
	}
	s.Points = append(s.Points, PercentilePoint{P: last, V: msOf(h.Max())})
	return s
}

// LatencyDistribution is the percentile chart of some latency
// histograms, one curve each, with the log scale a click away: the
// distribution of a whole run, or of each phase side by side.
func LatencyDistribution(title string, series ...PercentileSeries) PercentileChart {
	return PercentileChart{Title: title, Unit: "ms", Series: series, ScaleToggle: true,
		Note: "x: percentile on a log axis (90%, 99%, 99.9% ... equally spaced); y: latency at or below which that share of requests finished. The curve ends at the slowest request."}
}

// decadesOf is how far along the log axis p lies: log10(1/(1-p)).
func decadesOf(p float64) float64 {
	if p >= 1 {
		return math.Inf(1)
	}
	return -math.Log10(1 - p)
}

func (c *PercentileChart) validate() error {
	if c.Scale >= numScale {
		return fmt.Errorf("unknown scale %d", c.Scale)
	}
	for _, s := range c.Series {
		if err := validColor(s.Color); err != nil {
			return fmt.Errorf("series %q: %w", s.Name, err)
		}
		for i, p := range s.Points {
			switch {
			case !(p.P >= 0 && p.P <= 1):
				return fmt.Errorf("series %q: point %d: percentile %v is not between 0 and 1", s.Name, i, p.P)
			case math.IsInf(p.V, 0) || math.IsNaN(p.V):
				return fmt.Errorf("series %q: point %d: value %v", s.Name, i, p.V)
			case i > 0 && p.P < s.Points[i-1].P:
				return fmt.Errorf("series %q: point %d: percentile %v is below the one ahead of it", s.Name, i, p.P)
			}
		}
	}
	return validLines(c.Lines)
}

// buildPercentileChart lays out a percentile chart.
func buildPercentileChart(c *PercentileChart, id string) chartView {
	v := chartView{ID: id, Title: c.Title, Unit: c.Unit, Note: c.Note}
	bottom := v.place(topPad)

	deepest := 0.0
	for _, s := range c.Series {
		for _, p := range s.Points {
			if u := decadesOf(p.P); !math.IsInf(u, 1) {
				deepest = math.Max(deepest, u)
			}
		}
	}
	span := math.Min(math.Max(math.Ceil(deepest+0.25), 1), maxDecades)
	x := func(p float64) float64 {
		return plotLeft + math.Min(decadesOf(p), span)/span*plotWidth
	}
	var all []plotted
	for i, s := range c.Series {
		p := plotted{name: s.Name, gap: plotWidth}
		p.class, p.color = colorOf(s.Color, i)
		var run []xpt
		for _, pt := range s.Points {
			run = append(run, xpt{x: x(pt.P), v: pt.V})
		}
		if len(run) > 0 {
			p.runs = [][]xpt{run}
		}
		all = append(all, p)
	}
	v.layers(all, c.Lines, c.Scale, c.ScaleToggle, c.Unit, topPad, bottom)
	for d := 0; d <= int(span); d++ {
		v.XTicks = append(v.XTicks, newXTick(plotLeft+float64(d)/span*plotWidth, percentileLabel(1-math.Pow(10, -float64(d)))))
		if d == 0 {
			v.XTicks = append(v.XTicks, newXTick(x(0.5), "50%"))
		}
	}
	v.tip("p", "", span, c.Unit, all)
	return v
}

// percentileLabel prints p as a percentage with the digits it needs:
// 0%, 90%, 99.9%.
func percentileLabel(p float64) string {
	pct := p * 100
	for d := 0; d < 8; d++ {
		s := strconv.FormatFloat(pct, 'f', d, 64)
		if back, _ := strconv.ParseFloat(s, 64); math.Abs(back-pct) < 1e-9*math.Max(1, pct) {
			return s + "%"
		}
	}
	return strconv.FormatFloat(pct, 'f', 8, 64) + "%"
}
