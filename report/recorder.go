package report

import (
	"time"

	"github.com/relia-dev/relia/outcome"
)

// latencyQuantiles are the percentiles of the latency chart, with the
// colours that keep them apart in both themes.
var latencyQuantiles = []struct {
	name  string
	q     float64
	color string
}{
	{"p50", 0.50, "blue"},
	{"p90", 0.90, "green"},
	{"p99", 0.99, "orange"},
	{"max", 1, "purple"},
}

// classColors keeps each failure class in one colour on every report.
var classColors = map[outcome.Class]string{
	outcome.ClassStatus:   "red",
	outcome.ClassTimeout:  "orange",
	outcome.ClassRefused:  "purple",
	outcome.ClassReset:    "brown",
	outcome.ClassDNS:      "pink",
	outcome.ClassTLS:      "blue",
	outcome.ClassCheck:    "green",
	outcome.ClassDropped:  "grey",
	outcome.ClassCanceled: "grey",
	outcome.ClassOther:    "grey",
}

// RecorderCharts builds the standard time charts of a recorder's buckets
// that start in [from, to) (a zero from or to leaves that side open, as in
// Recorder.Window), one point per bucket at the bucket's start:
//
//   - "Latency": p50, p90, p99 and max in ms. A bucket with no latency
//     (nothing finished, or only dropped requests) is a gap in the lines.
//   - "Throughput": requests per second that were good and bad, by the
//     recorder's default rule (Summary.Good with a nil predicate).
//   - "Errors by class": failed requests per second for each failure class
//     that occurs, so a timeout storm reads apart from refused connections.
//
// A bucket without outcomes between the first and the last one is a zero
// on the rate charts, because no requests is a rate of zero, not missing
// data. Rates are averaged when a long run is thinned for drawing; latency
// and error lines keep each pixel column's highest value so that spikes
// stay visible. An empty recorder gives the same three charts without
// series.
//
// The buckets are read one at a time, so a long run costs the points, not
// the histograms.
func RecorderCharts(rec *outcome.Recorder, from, to time.Time) []Chart {
	width := rec.Options().BucketWidth
	perSec := 1 / width.Seconds()

	latency := make([]Series, len(latencyQuantiles))
	for i, lq := range latencyQuantiles {
		latency[i] = Series{Name: lq.name, Step: width, Reduce: ReduceMax, Color: lq.color}
	}
	good := Series{Name: "good", Step: width, Reduce: ReduceMean, Color: "green"}
	bad := Series{Name: "bad", Step: width, Reduce: ReduceMean, Color: "red"}
	var errs [outcome.NumClasses]Series
	var seen [outcome.NumClasses]bool

	var next time.Time // the start of the bucket expected next
	for b := range rec.Buckets() {
		if (!from.IsZero() && b.From.Before(from)) || (!to.IsZero() && !b.From.Before(to)) {
			continue
		}
		// Buckets without outcomes are absent from the recorder; on the
		// rate charts they are zero.
		for !next.IsZero() && next.Before(b.From) {
			good.Points = append(good.Points, Point{T: next, V: 0})
			bad.Points = append(bad.Points, Point{T: next, V: 0})
			for c := range errs {
				if outcome.Class(c).Failed() {
					errs[c].Points = append(errs[c].Points, Point{T: next, V: 0})
				}
			}
			next = next.Add(width)
		}
		next = b.From.Add(width)

		if b.Latency.Count() > 0 {
			for i, lq := range latencyQuantiles {
				ms := float64(b.Latency.Quantile(lq.q)) / float64(time.Millisecond)
				latency[i].Points = append(latency[i].Points, Point{T: b.From, V: ms})
			}
		}
		g, total := b.Good(nil)
		good.Points = append(good.Points, Point{T: b.From, V: float64(g) * perSec})
		bad.Points = append(bad.Points, Point{T: b.From, V: float64(total-g) * perSec})
		for c := range errs {
			if !outcome.Class(c).Failed() {
				continue
			}
			n := b.ByClass[c]
			seen[c] = seen[c] || n > 0
			errs[c].Points = append(errs[c].Points, Point{T: b.From, V: float64(n) * perSec})
		}
	}

	var errSeries []Series
	for c := range errs {
		if !seen[c] {
			continue
		}
		s := errs[c]
		s.Name = outcome.Class(c).String()
		s.Step = width
		s.Reduce = ReduceMax
		s.Color = classColors[outcome.Class(c)]
		errSeries = append(errSeries, s)
	}
	var rates []Series
	if len(good.Points) > 0 {
		rates = []Series{good, bad}
	}
	if len(latency[0].Points) == 0 {
		latency = nil
	}
	return []Chart{
		{Title: "Latency", Unit: "ms", Series: latency},
		{Title: "Throughput", Unit: "req/s", Series: rates},
		{Title: "Errors by class", Unit: "req/s", Series: errSeries},
	}
}
