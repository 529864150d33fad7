package report

import (
	"math"
	"time"

	"github.com/relia-dev/relia/outcome"
)

// classColors gives every failure class a colour of its own on every
// report, so a timeout storm reads apart from refused connections and
// from failed checks at a glance.
var classColors = [outcome.NumClasses]string{
	outcome.ClassOK:       "green",
	outcome.ClassStatus:   "red",
	outcome.ClassTimeout:  "orange",
	outcome.ClassRefused:  "purple",
	outcome.ClassReset:    "brown",
	outcome.ClassDNS:      "pink",
	outcome.ClassTLS:      "teal",
	outcome.ClassCheck:    "gold",
	outcome.ClassDropped:  "grey",
	outcome.ClassCanceled: "navy",
	outcome.ClassOther:    "olive",
	outcome.ClassProtocol: "maroon",
}

// ClassColor is the palette colour of an outcome class on every report.
func ClassColor(c outcome.Class) string {
	if c < outcome.NumClasses {
		return classColors[c]
	}
	return "grey"
}

// Bucket is one time bucket of a run as the standard charts read it. It
// lets data that is not an outcome.Recorder, such as the per-second
// series of an experiment's journal, be drawn by the same code as a
// recorder (BucketCharts).
type Bucket struct {
	// From is the bucket's start.
	From time.Time
	// ByClass counts the bucket's outcomes by class.
	ByClass [outcome.NumClasses]int64
	// P50, P90, P99 and Max are latency percentiles in milliseconds; NaN
	// where unknown or where the bucket has no latencies. A series whose
	// every value is NaN is left out.
	P50, P90, P99, Max float64
}

// RecorderNote says how the standard charts count, for a page to print
// once.
const RecorderNote = "One point per bucket, drawn as a level across it. Rates divide each bucket's count by the part of the bucket " +
	"the run covered, so the partial first and last buckets are not drawn as dips, and the mean of a rate over the run is its " +
	"count over the run's length."

// RecorderCharts builds the standard time charts of a recorder's buckets
// that overlap [from, to) (a zero from or to leaves that side open), one
// level per bucket: see BucketCharts. The run's bounds matter: a run that
// starts 300 ms into a bucket covered 700 ms of it, and its rates divide
// by that. The buckets are read one at a time, so a long run costs the
// points, not the histograms.
func RecorderCharts(rec *outcome.Recorder, from, to time.Time) []Chart {
	width := rec.Options().BucketWidth
	var buckets []Bucket
	for b := range rec.Buckets() {
		if (!from.IsZero() && !b.From.Add(width).After(from)) || (!to.IsZero() && !b.From.Before(to)) {
			continue
		}
		bk := Bucket{From: b.From, ByClass: b.ByClass, P50: math.NaN(), P90: math.NaN(), P99: math.NaN(), Max: math.NaN()}
		if h := b.Latency; h.Count() > 0 {
			msOf := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
			bk.P50, bk.P90, bk.P99, bk.Max = msOf(h.Quantile(0.5)), msOf(h.Quantile(0.9)), msOf(h.Quantile(0.99)), msOf(h.Max())
		}
		buckets = append(buckets, bk)
	}
	return BucketCharts(buckets, width, from, to)
}

// BucketCharts builds the standard time charts of a run from its buckets
// (in time order, each width long), clipped to [from, to) where those are
// not zero:
//
//   - "Latency": p50, p90 and p99 in ms, with a log-scale switch. The
//     maximum has a chart of its own, so one slow request does not
//     flatten the percentiles against the floor.
//   - "Latency max": the slowest request of each bucket.
//   - "Throughput": requests sent per second that succeeded (ok) and
//     failed, and arrivals dropped unsent (when any were), so ok plus
//     failed is the sent rate the load summary prints.
//   - "Errors by class": failed requests per second for each failure
//     class that occurs, each class in its own colour (ClassColor).
//
// Every series is drawn as steps, one level per bucket. A bucket's
// rate is its count over the time the run covered of it: the bucket
// clipped to [from, to). A bucket without outcomes between the first and
// the last is zero on the rate charts (no requests is a rate of zero, not
// missing data) and a gap on the latency charts. A latency series with no
// known value at all is left out, and so is the max chart then. Rates are
// averaged when a long run is thinned for drawing; latencies and errors
// keep each pixel column's highest value so that spikes stay visible.
func BucketCharts(buckets []Bucket, width time.Duration, from, to time.Time) []Chart {
	latency := []Series{
		{Name: "p50", Color: "blue"},
		{Name: "p90", Color: "green"},
		{Name: "p99", Color: "orange"},
	}
	slowest := Series{Name: "max", Color: "purple"}
	ok := Series{Name: "not failed", Reduce: ReduceMean, Color: ClassColor(outcome.ClassOK)}
	bad := Series{Name: "failed", Reduce: ReduceMean, Color: ClassColor(outcome.ClassStatus)}
	dropped := Series{Name: "dropped", Reduce: ReduceMean, Color: ClassColor(outcome.ClassDropped)}
	var errs [outcome.NumClasses]Series
	var seen [outcome.NumClasses]bool

	// covered is the part of the bucket from t the run covered: its
	// start and length.
	covered := func(t time.Time) (time.Time, time.Duration) {
		start, end := t, t.Add(width)
		if !from.IsZero() && start.Before(from) {
			start = from
		}
		if !to.IsZero() && end.After(to) {
			end = to
		}
		return start, end.Sub(start)
	}
	add := func(s *Series, t time.Time, v float64) {
		s.Points = append(s.Points, Point{T: t, V: v})
	}
	var next time.Time // the start of the bucket expected next
	for _, b := range buckets {
		if (!from.IsZero() && !b.From.Add(width).After(from)) || (!to.IsZero() && !b.From.Before(to)) {
			continue
		}
		// Buckets without outcomes are absent; on the rate charts they
		// are zero.
		for !next.IsZero() && next.Before(b.From) {
			t, _ := covered(next)
			add(&ok, t, 0)
			add(&bad, t, 0)
			add(&dropped, t, 0)
			for c := range errs {
				add(&errs[c], t, 0)
			}
			next = next.Add(width)
		}
		next = b.From.Add(width)

		t, length := covered(b.From)
		perSec := 1 / length.Seconds()
		for i, v := range []float64{b.P50, b.P90, b.P99} {
			if !math.IsNaN(v) {
				add(&latency[i], t, v)
			}
		}
		if !math.IsNaN(b.Max) {
			add(&slowest, t, b.Max)
		}
		var failed int64
		for c, n := range b.ByClass {
			cl := outcome.Class(c)
			if cl == outcome.ClassOK || cl == outcome.ClassDropped {
				continue
			}
			if cl.RequestFailed() {
				failed += n
			}
			seen[c] = seen[c] || n > 0
		}
		add(&ok, t, float64(b.ByClass[outcome.ClassOK]+b.ByClass[outcome.ClassCheck])*perSec)
		add(&bad, t, float64(failed)*perSec)
		add(&dropped, t, float64(b.ByClass[outcome.ClassDropped])*perSec)
		seen[outcome.ClassDropped] = seen[outcome.ClassDropped] || b.ByClass[outcome.ClassDropped] > 0
		for c := range errs {
			add(&errs[c], t, float64(b.ByClass[c])*perSec)
		}
	}

	steps := func(ss []Series) []Series {
		for i := range ss {
			ss[i].Step, ss[i].Steps = width, true
		}
		return ss
	}
	var lat []Series
	for _, s := range latency {
		if len(s.Points) > 0 {
			lat = append(lat, s)
		}
	}
	var rates []Series
	if len(ok.Points) > 0 {
		rates = []Series{ok, bad}
		if seen[outcome.ClassDropped] {
			rates = append(rates, dropped)
		}
	}
	var errSeries []Series
	for c := range errs {
		if !seen[c] || outcome.Class(c) == outcome.ClassOK {
			continue
		}
		s := errs[c]
		s.Name = outcome.Class(c).String()
		s.Color = ClassColor(outcome.Class(c))
		errSeries = append(errSeries, s)
	}
	charts := []Chart{{Title: "Latency", Unit: "ms", Series: steps(lat), ScaleToggle: true}}
	if len(slowest.Points) > 0 || len(buckets) == 0 {
		charts = append(charts, Chart{Title: "Latency max", Unit: "ms", Series: steps(nilIfEmpty(slowest)), ScaleToggle: true})
	}
	return append(charts,
		Chart{Title: "Throughput", Unit: "req/s", Series: steps(rates)},
		Chart{Title: "Errors by class", Unit: "req/s", Series: steps(errSeries)},
	)
}

func nilIfEmpty(s Series) []Series {
	if len(s.Points) == 0 {
		return nil
	}
	return []Series{s}
}
