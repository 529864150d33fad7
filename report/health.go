package report

import (
	"math"
	"time"

	"github.com/relia-dev/relia/outcome"
)

// Health is the load generator's account of itself during a run: whether
// it sent what its schedule asked for, when it asked, so that a reader
// can tell the service's limits from the generator's. The figures are the
// caller's (the load package judges the generator; the report only draws
// its judgement), so the page says what the terminal and the JSON say.
type Health struct {
	// Inconclusive says the generator could not keep its schedule, so
	// the service was not judged; Reason says why in words.
	Inconclusive bool
	Reason       string
	// Text is a further paragraph under the section's opening one.
	Text string
	// Stats are the generator's figures (late share, schedule lag, CPU,
	// CPU pressure, dropped requests, VUs ...), shown as they are.
	Stats []Stat
	// Lag holds, as latency, how late each open-model request was sent
	// against its schedule; nil for the closed model, which has no
	// schedule to keep. LateAfter is the lateness beyond which a request
	// counts as late, drawn as a line on the lag chart.
	Lag       *outcome.Recorder
	LateAfter time.Duration
}

// HealthSection is the "Load generator" section of a report: the
// generator's verdict on itself, its figures, and the schedule lag over
// [from, to) as a chart.
func HealthSection(h Health, from, to time.Time) Section {
	s := Section{Title: "Load generator",
		Text: "relia judges itself before it judges the service: a request sent late, or dropped, is the generator's limit, not the service's."}
	if h.Inconclusive {
		s.Text = "Inconclusive: " + h.Reason + "\n\n" + s.Text
	}
	if h.Text != "" {
		s.Text += "\n\n" + h.Text
	}
	s.Stats = h.Stats
	if h.Lag != nil {
		s.Charts = append(s.Charts, LagChart(h.Lag, from, to, h.LateAfter))
	}
	return s
}

// LagChart is the schedule lag over time: p99 and max of each bucket of
// the lag recorder overlapping [from, to), with the lateness limit as a
// line.
func LagChart(lag *outcome.Recorder, from, to time.Time, lateAfter time.Duration) Chart {
	width := lag.Options().BucketWidth
	p99 := Series{Name: "lag p99", Color: "teal", Step: width, Steps: true}
	mx := Series{Name: "lag max", Color: "purple", Step: width, Steps: true}
	for b := range lag.Buckets() {
		if (!from.IsZero() && !b.From.Add(width).After(from)) || (!to.IsZero() && !b.From.Before(to)) || b.Latency.Count() == 0 {
			continue
		}
		t := b.From
		if !from.IsZero() && t.Before(from) {
			t = from
		}
		p99.Points = append(p99.Points, Point{T: t, V: float64(b.Latency.Quantile(0.99)) / float64(time.Millisecond)})
		mx.Points = append(mx.Points, Point{T: t, V: float64(b.Latency.Max()) / float64(time.Millisecond)})
	}
	c := Chart{Title: "Schedule lag", Unit: "ms", ScaleToggle: true,
		Note: "How late each request left against its schedule: the generator's own delay, included in the latency figures."}
	if len(p99.Points) > 0 {
		c.Series = []Series{p99, mx}
	}
	if lateAfter > 0 && !math.IsInf(float64(lateAfter), 0) {
		c.Lines = []Line{{Label: "late after " + lateAfter.String(), V: float64(lateAfter) / float64(time.Millisecond), Color: "red"}}
	}
	return c
}
