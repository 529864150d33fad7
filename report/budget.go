package report

import (
	"math"
	"time"

	"github.com/relia-dev/relia/slo"
)

// SLOSeries is one SLO's events over a run, span by span, for
// BudgetCharts: per recorder bucket for a live run, or per phase for a
// run re-read from its journal.
type SLOSeries struct {
	// ID names the SLO in legends.
	ID string
	// Objective is the SLO's target ratio (0.999).
	Objective float64
	// Period is the SLO's period, whose error budget the run spends.
	Period time.Duration
	// Spans are consecutive spans of the run in time order, each with
	// its good and total events.
	Spans []SLOSpan
	// Alerts are the spells in which one of the SLO's burn-rate alerts
	// fired; they are shaded on the burn-rate chart.
	Alerts []Window
}

// SLOSpan is the good and total events of an SLO over [From, To).
type SLOSpan struct {
	From, To    time.Time
	Good, Total int64
}

// BudgetCharts draws the SLOs' error budget over a run, in the
// definitions of the slo package, so that the charts end on the figures
// the verdict prints:
//
//   - "Error budget burn rate": each span's burn rate (its error ratio
//     over the SLO's error budget, slo.BurnRate) as a level across the
//     span, with a line at 1x, the rate that spends exactly the budget
//     in the period. A span without events is a gap.
//   - "Error budget spent": the share of the period's budget spent from
//     the start of the run to the end of each span (slo.BudgetSpent of the
//     burn rate so far over the time so far), in %. The last point is the
//     run's "budget spent".
//
// No SLOs give no charts.
func BudgetCharts(slos []SLOSeries) []Chart {
	if len(slos) == 0 {
		return nil
	}
	burn := Chart{Title: "Error budget burn rate", Unit: "x", ScaleToggle: true,
		Lines: []Line{{Label: "1x: spends the budget in the period", V: 1}}}
	spent := Chart{Title: "Error budget spent", Unit: "%"}
	for i, s := range slos {
		color := palette[[]int{0, 4, 8, 1, 6, 5}[i%6]]
		b := Series{Name: s.ID, Steps: true, Color: color}
		sp := Series{Name: s.ID, Color: color}
		var bad, total int64
		var longest time.Duration
		for j, span := range s.Spans {
			if j == 0 {
				sp.Points = append(sp.Points, Point{T: span.From, V: 0})
			}
			longest = max(longest, span.To.Sub(span.From))
			v := math.NaN()
			if span.Total > 0 {
				v = slo.BurnRate(float64(span.Total-span.Good)/float64(span.Total), s.Objective)
			}
			b.Points = append(b.Points, Point{T: span.From, V: v})
			bad += span.Total - span.Good
			total += span.Total
			soFar := 0.0
			if total > 0 {
				soFar = slo.BurnRate(float64(bad)/float64(total), s.Objective)
			}
			sp.Points = append(sp.Points, Point{T: span.To, V: 100 * slo.BudgetSpent(soFar, span.To.Sub(s.Spans[0].From), s.Period)})
		}
		b.Step = longest
		if n := len(s.Spans); n > 0 {
			sp.Step = s.Spans[n-1].To.Sub(s.Spans[0].From) // spent so far has no gaps
		}
		burn.Series = append(burn.Series, b)
		spent.Series = append(spent.Series, sp)
		burn.Windows = append(burn.Windows, s.Alerts...)
	}
	return []Chart{burn, spent}
}
