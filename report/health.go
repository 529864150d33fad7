package report

import (
	"math"
	"strconv"
	"time"

	"github.com/relia-dev/relia/outcome"
)

// Health is the load generator's account of itself during a run: whether
// it sent what its schedule asked for, when it asked, so that a reader
// can tell the service's limits from the generator's. HealthSection draws
// it; fields left zero are not shown.
type Health struct {
	// Planned counts the arrivals the schedule asked for (open model);
	// Dropped those never sent (in-flight cap, no free worker).
	Planned, Dropped int64
	// Lag holds, as latency, how late each open-model request was sent
	// against its schedule; nil for the closed model, which has no
	// schedule to keep.
	Lag *outcome.Recorder
	// LateAfter is the lateness beyond which an arrival was not on time.
	LateAfter time.Duration
	// Inconclusive says the generator could not keep its schedule, so
	// the service was not judged; Reason says why in words.
	Inconclusive bool
	Reason       string
	// Extra are further figures shown as they are (CPU pressure, ...).
	Extra []Stat
}

// HealthSection is the "Load generator" section of a report: how many
// arrivals were on time, dropped, and how late the late ones were (by
// the definitions of the arrivals_on_time threshold: sent within
// LateAfter of schedule over all scheduled, dropped ones included), with
// the schedule lag over [from, to) as a chart.
func HealthSection(h Health, from, to time.Time) Section {
	s := Section{Title: "Load generator",
		Text: "The generator judges itself first: an arrival sent late, or dropped, is the generator's limit, not the service's."}
	switch {
	case h.Inconclusive:
		s.Stats = append(s.Stats, Stat{Label: "Generator", Value: "inconclusive", Note: h.Reason, Status: StatusWarn})
	case h.Reason != "":
		s.Stats = append(s.Stats, Stat{Label: "Generator", Value: "kept up", Note: h.Reason, Status: StatusPass})
	}
	if h.Planned > 0 {
		s.Stats = append(s.Stats, Stat{Label: "Planned arrivals", Value: strconv.FormatInt(h.Planned, 10)})
	}
	if h.Lag != nil {
		lag := overlapping(h.Lag, from, to).Latency
		scheduled := lag.Count() + h.Dropped
		if scheduled > 0 {
			onTime := lag.CountAtOrBelow(h.LateAfter)
			s.Stats = append(s.Stats, Stat{Label: "On time", Value: percent(onTime, scheduled),
				Note: strconv.FormatInt(lag.Count()-onTime, 10) + " late (> " + h.LateAfter.String() + ")"})
		}
		if lag.Count() > 0 {
			ms := func(d time.Duration) string { return formatValue(float64(d)/float64(time.Millisecond), "ms") }
			s.Stats = append(s.Stats,
				Stat{Label: "Schedule lag p99", Value: ms(lag.Quantile(0.99))},
				Stat{Label: "Schedule lag max", Value: ms(lag.Max())})
		}
		s.Charts = append(s.Charts, LagChart(h.Lag, from, to, h.LateAfter))
	}
	s.Stats = append(s.Stats, Stat{Label: "Dropped", Value: strconv.FormatInt(h.Dropped, 10), Note: "never sent"})
	s.Stats = append(s.Stats, h.Extra...)
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
