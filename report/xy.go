package report

import (
	"fmt"
	"math"
	"strconv"
)

// XYChart draws values (y) against a quantity other than time (x) on
// linear axes: throughput by concurrency, with the measured points as
// dots beside the model fitted to them.
type XYChart struct {
	// Title heads the chart.
	Title string
	// XLabel names the x axis ("concurrency"); the tooltip and the last
	// tick carry it.
	XLabel string
	// Unit is the unit of the y values, as in Chart.
	Unit string
	// Series are drawn in order; the legend lists them.
	Series []XYSeries
	// Lines are horizontal reference lines, as in Chart.
	Lines []Line
	// Note is one line under the chart; empty means none.
	Note string
}

// XYSeries is one curve or set of points of an XYChart.
type XYSeries struct {
	// Name labels the series in the legend and the tooltip.
	Name string
	// Points are in ascending order of X.
	Points []XYPoint
	// Dots draws each point on its own (measurements) instead of joining
	// them into a line (a model).
	Dots bool
	// Color is as in Series.
	Color string
}

// XYPoint is one point of an XYSeries.
type XYPoint struct {
	X, Y float64
}

func (c *XYChart) validate() error {
	for _, s := range c.Series {
		if err := validColor(s.Color); err != nil {
			return fmt.Errorf("series %q: %w", s.Name, err)
		}
		for i, p := range s.Points {
			switch {
			case math.IsInf(p.X, 0) || math.IsNaN(p.X) || math.IsInf(p.Y, 0) || math.IsNaN(p.Y):
				return fmt.Errorf("series %q: point %d: (%v, %v) is not a finite point", s.Name, i, p.X, p.Y)
			case p.X < 0:
				return fmt.Errorf("series %q: point %d: x %v is negative", s.Name, i, p.X)
			case i > 0 && p.X < s.Points[i-1].X:
				return fmt.Errorf("series %q: point %d: x %v is below the one ahead of it", s.Name, i, p.X)
			}
		}
	}
	return validLines(c.Lines)
}

// buildXYChart lays out an XY chart: x from 0 to a round figure past the
// largest x, y as the other charts' linear axis.
func buildXYChart(c *XYChart, id string) chartView {
	v := chartView{ID: id, Title: c.Title, Unit: c.Unit, Note: c.Note}
	bottom := v.place(topPad)
	maxX := 0.0
	for _, s := range c.Series {
		for _, p := range s.Points {
			maxX = math.Max(maxX, p.X)
		}
	}
	_, hiX, stepX := niceScale(0, math.Max(maxX, 1))
	x := func(vx float64) float64 { return plotLeft + vx/hiX*plotWidth }
	var all []plotted
	for i, s := range c.Series {
		p := plotted{name: s.Name, gap: plotWidth}
		if s.Dots {
			p.gap = math.Max(stepX/hiX*plotWidth/2, 3)
		}
		p.class, p.color = colorOf(s.Color, i)
		var run []xpt
		for _, pt := range s.Points {
			if s.Dots {
				p.runs = append(p.runs, []xpt{{x: x(pt.X), v: pt.Y}})
				continue
			}
			run = append(run, xpt{x: x(pt.X), v: pt.Y})
		}
		if len(run) > 0 {
			p.runs = append(p.runs, run)
		}
		all = append(all, p)
	}
	v.layers(all, c.Lines, Linear, false, c.Unit, topPad, bottom)
	for t := 0.0; t <= hiX+stepX/2; t += stepX {
		label := strconv.FormatFloat(t, 'f', decimals(stepX), 64)
		if t+stepX > hiX+stepX/2 && c.XLabel != "" {
			label += " " + c.XLabel
		}
		v.XTicks = append(v.XTicks, newXTick(x(t), label))
	}
	v.tip("n", c.XLabel, hiX, c.Unit, all)
	return v
}
