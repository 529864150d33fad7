package report_test

import (
	"math"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/relia-dev/relia/outcome"
	"github.com/relia-dev/relia/report"
)

func seriesNames(c report.Chart) []string {
	var out []string
	for _, s := range c.Series {
		out = append(out, s.Name)
	}
	return out
}

// valueAt returns the value of s at t, and whether s has a point there.
func valueAt(s report.Series, t time.Time) (float64, bool) {
	for _, p := range s.Points {
		if p.T.Equal(t) {
			return p.V, true
		}
	}
	return 0, false
}

func TestRecorderCharts(t *testing.T) {
	t.Parallel()
	rec := sampleRecorder()
	charts := report.RecorderCharts(rec, time.Time{}, time.Time{})
	if len(charts) != 4 {
		t.Fatalf("%d charts, want 4", len(charts))
	}
	lat, slowest, thr, errs := charts[0], charts[1], charts[2], charts[3]
	for _, c := range []struct {
		chart       report.Chart
		title, unit string
		names       []string
		toggle      bool
	}{
		{lat, "Latency", "ms", []string{"p50", "p90", "p99"}, true},
		{slowest, "Latency max", "ms", []string{"max"}, true},
		{thr, "Throughput", "req/s", []string{"not failed", "failed", "dropped"}, false},
		{errs, "Errors by class", "req/s", []string{"status", "timeout", "dropped"}, false},
	} {
		if c.chart.Title != c.title || c.chart.Unit != c.unit || !slices.Equal(seriesNames(c.chart), c.names) || c.chart.ScaleToggle != c.toggle {
			t.Errorf("chart %q (%s, toggle %v) with %q, want %q (%s, toggle %v) with %q", c.chart.Title, c.chart.Unit, c.chart.ScaleToggle,
				seriesNames(c.chart), c.title, c.unit, c.toggle, c.names)
		}
		for _, s := range c.chart.Series {
			if s.Step != time.Second || !s.Steps {
				t.Errorf("%s/%s: step %v (steps %v), want levels as wide as the bucket", c.title, s.Name, s.Step, s.Steps)
			}
		}
	}
	// Each failure class has a colour of its own.
	colors := map[string]string{}
	for _, s := range errs.Series {
		if other, dup := colors[s.Color]; dup {
			t.Errorf("classes %s and %s share the colour %s", other, s.Name, s.Color)
		}
		colors[s.Color] = s.Name
	}

	// Every latency point is the bucket's own quantile, in ms.
	for _, sec := range []int{0, 45, 119} {
		from := t0.Add(time.Duration(sec) * time.Second)
		w := rec.Window(from, from.Add(time.Second))
		for i, q := range []float64{0.5, 0.9, 0.99} {
			got, ok := valueAt(lat.Series[i], from)
			want := float64(w.Latency.Quantile(q)) / 1e6
			if !ok || got != want {
				t.Errorf("second %d %s = %v (present %v), want %v", sec, lat.Series[i].Name, got, ok, want)
			}
		}
		if got, _ := valueAt(slowest.Series[0], from); got != float64(w.Latency.Max())/1e6 {
			t.Errorf("second %d max = %v, want %v", sec, got, float64(w.Latency.Max())/1e6)
		}
	}

	// Seconds 90-94 have no outcomes: a gap in latency, zeros in rates.
	for sec := 90; sec < 95; sec++ {
		at := t0.Add(time.Duration(sec) * time.Second)
		if _, ok := valueAt(lat.Series[0], at); ok {
			t.Errorf("latency has a point at second %d, which had no outcomes", sec)
		}
		for _, s := range append(slices.Clone(thr.Series), errs.Series...) {
			if v, ok := valueAt(s, at); !ok || v != 0 {
				t.Errorf("%s at second %d = %v (present %v), want 0", s.Name, sec, v, ok)
			}
		}
	}
	for _, s := range append(slices.Clone(thr.Series), errs.Series...) {
		if len(s.Points) != 120 {
			t.Errorf("%s: %d points, want one per second of the run (120)", s.Name, len(s.Points))
		}
	}

	// During the fault: 5 503s and 2 timeouts a second of 50.
	at := t0.Add(50 * time.Second)
	for _, c := range []struct {
		s    report.Series
		want float64
	}{{thr.Series[0], 43}, {thr.Series[1], 7}, {thr.Series[2], 0}, {errs.Series[0], 5}, {errs.Series[1], 2}, {errs.Series[2], 0}} {
		if v, _ := valueAt(c.s, at); v != c.want {
			t.Errorf("%s at 0:50 = %v, want %v", c.s.Name, v, c.want)
		}
	}
	// The dropped arrival at 1:40 was never sent: dropped, not failed,
	// and an error by class; it has no latency.
	at = t0.Add(100 * time.Second)
	for _, c := range []struct {
		s    report.Series
		want float64
	}{{thr.Series[0], 49}, {thr.Series[1], 0}, {thr.Series[2], 1}, {errs.Series[2], 1}} {
		if v, _ := valueAt(c.s, at); v != c.want {
			t.Errorf("%s at 1:40 = %v, want %v", c.s.Name, v, c.want)
		}
	}
}

// constantRecorder is a run at rate requests a second from start for d,
// one request every 1/rate, all 200 in 10 ms.
func constantRecorder(t *testing.T, start time.Time, rate int, d time.Duration) *outcome.Recorder {
	t.Helper()
	rec, err := outcome.NewRecorder(outcome.Options{})
	if err != nil {
		t.Fatal(err)
	}
	n := int(d.Seconds() * float64(rate))
	for i := range n {
		rec.Record(outcome.Outcome{Start: start.Add(time.Duration(i) * time.Second / time.Duration(rate)), Latency: 10 * time.Millisecond, Status: 200})
	}
	return rec
}

// TestPartialBucketsAreNotDips: a constant 500 req/s run that starts
// 300 ms into a bucket and ends 300 ms into another draws 500 req/s from
// its first bucket to its last, and its headline throughput agrees.
// At a21340e the first bucket was left out, the last one was drawn at
// 150 req/s, and the headline said 383 req/s (the first bucket's 350
// requests lost).
func TestPartialBucketsAreNotDips(t *testing.T) {
	t.Parallel()
	from := t0.Add(300 * time.Millisecond)
	to := from.Add(3 * time.Second)
	rec := constantRecorder(t, from, 500, 3*time.Second)
	thr := report.RecorderCharts(rec, from, to)[2]
	ok := thr.Series[0]
	if len(ok.Points) != 4 {
		t.Fatalf("%d points, want the 4 buckets the run touched", len(ok.Points))
	}
	var area float64
	for i, p := range ok.Points {
		if math.Abs(p.V-500) > 1e-9 {
			t.Errorf("bucket %d at %v: %v req/s, want 500", i, p.T, p.V)
		}
		end := to
		if i+1 < len(ok.Points) {
			end = ok.Points[i+1].T
		}
		area += p.V * end.Sub(p.T).Seconds()
	}
	if !ok.Points[0].T.Equal(from) {
		t.Errorf("the first level starts at %v, want the run's start %v", ok.Points[0].T, from)
	}
	// The area under the rate is the request count.
	if math.Abs(area-1500) > 1e-6 {
		t.Errorf("area under the throughput %v, want the 1500 requests", area)
	}
	for _, s := range report.RecorderStats(rec, from, to) {
		if s.Label == "Throughput" && s.Value != "500 req/s" {
			t.Errorf("headline throughput %q, want 500 req/s", s.Value)
		}
	}
}

func TestRecorderChartsWindow(t *testing.T) {
	t.Parallel()
	rec := sampleRecorder()
	tests := []struct {
		name        string
		from, to    time.Time
		first, last time.Time
		n           int
	}{
		{"whole run", time.Time{}, time.Time{}, t0, t0.Add(119 * time.Second), 120},
		{"ten seconds", t0.Add(10 * time.Second), t0.Add(20 * time.Second), t0.Add(10 * time.Second), t0.Add(19 * time.Second), 10},
		{"open start", time.Time{}, t0.Add(5 * time.Second), t0, t0.Add(4 * time.Second), 5},
		{"open end", t0.Add(115 * time.Second), time.Time{}, t0.Add(115 * time.Second), t0.Add(119 * time.Second), 5},
		// The buckets the bounds cut are drawn from where the bounds cut them.
		{"mid-bucket bounds", t0.Add(10500 * time.Millisecond), t0.Add(12500 * time.Millisecond), t0.Add(10500 * time.Millisecond), t0.Add(12 * time.Second), 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			good := report.RecorderCharts(rec, tt.from, tt.to)[2].Series[0]
			if len(good.Points) != tt.n || !good.Points[0].T.Equal(tt.first) || !good.Points[tt.n-1].T.Equal(tt.last) {
				t.Errorf("%d points from %v to %v, want %d from %v to %v", len(good.Points), good.Points[0].T, good.Points[len(good.Points)-1].T, tt.n, tt.first, tt.last)
			}
		})
	}
}

func TestRecorderChartsEdgeCases(t *testing.T) {
	t.Parallel()
	t.Run("empty recorder", func(t *testing.T) {
		t.Parallel()
		var rec outcome.Recorder
		charts := report.RecorderCharts(&rec, time.Time{}, time.Time{})
		if len(charts) != 4 {
			t.Fatalf("%d charts, want 4", len(charts))
		}
		for _, c := range charts {
			if len(c.Series) != 0 {
				t.Errorf("%s has series %q for an empty recorder", c.Title, seriesNames(c))
			}
		}
	})
	t.Run("rates scale with the bucket width", func(t *testing.T) {
		t.Parallel()
		rec, err := outcome.NewRecorder(outcome.Options{BucketWidth: 100 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		for i := range 3 {
			rec.Record(outcome.Outcome{Start: t0.Add(time.Duration(i) * time.Millisecond), Latency: time.Millisecond, Status: 200})
		}
		rec.Record(outcome.Outcome{Start: t0.Add(300 * time.Millisecond), Latency: time.Millisecond, Class: outcome.ClassRefused})
		charts := report.RecorderCharts(rec, time.Time{}, time.Time{})
		good, refused := charts[2].Series[0], charts[3].Series[0]
		if good.Points[0].V != 30 || len(good.Points) != 4 || good.Points[1].V != 0 {
			t.Errorf("good = %v, want 30 req/s then zeros", good.Points)
		}
		if refused.Name != "refused" || refused.Points[3].V != 10 {
			t.Errorf("%s = %v, want refused at 10 req/s in the last bucket", refused.Name, refused.Points)
		}
		if got := charts[0].Series[0].Points[0].V; math.Abs(got-1) > 0.01 {
			t.Errorf("p50 = %v ms, want 1", got)
		}
	})
	t.Run("only dropped in a bucket", func(t *testing.T) {
		t.Parallel()
		var rec outcome.Recorder
		rec.Record(outcome.Outcome{Start: t0, Latency: 5 * time.Millisecond, Status: 200})
		rec.Record(outcome.Outcome{Start: t0.Add(time.Second), Class: outcome.ClassDropped})
		lat := report.RecorderCharts(&rec, time.Time{}, time.Time{})[0]
		if n := len(lat.Series[0].Points); n != 1 {
			t.Errorf("latency has %d points, want 1: a bucket of dropped arrivals has no latency", n)
		}
	})
}

func TestRecorderStatsAndTables(t *testing.T) {
	t.Parallel()
	rec := sampleRecorder()
	stats := report.RecorderStats(rec, time.Time{}, time.Time{})
	got := map[string]string{}
	for _, s := range stats {
		got[s.Label] = s.Value
		if s.Status != "" {
			t.Errorf("stat %s has status %q; the verdict gives statuses, not the summary", s.Label, s.Status)
		}
	}
	w := rec.Total()
	for label, want := range map[string]string{
		"Requests":     "5749",       // 115 seconds with outcomes, 50 each, one dropped unsent
		"Availability": "96.33%",     // 210 failed during the fault, 1 dropped
		"Throughput":   "47.9 req/s", // 5749 over 120 s
		"p50 latency":  strconv.FormatFloat(float64(w.Latency.Quantile(0.5))/1e6, 'g', 3, 64) + " ms",
		"max latency":  "1.5 s",
	} {
		if got[label] != want {
			t.Errorf("%s = %q, want %q", label, got[label], want)
		}
	}

	tables := report.RecorderTables(rec, time.Time{}, time.Time{})
	if len(tables) != 2 {
		t.Fatalf("%d tables, want 2", len(tables))
	}
	classes, statuses := tables[0], tables[1]
	wantClasses := [][]string{{"ok", "5539", "96.33%"}, {"status", "150", "2.61%"}, {"timeout", "60", "1.04%"}, {"dropped", "1", "0.02%"}}
	if !slices.EqualFunc(classes.Rows, wantClasses, slices.Equal) || !slices.Equal(classes.RowStatus, []string{"", "fail", "fail", "fail"}) {
		t.Errorf("classes = %q %q, want %q with the failures marked", classes.Rows, classes.RowStatus, wantClasses)
	}
	wantStatuses := [][]string{{"no response", "61", "1.06%"}, {"2xx", "5539", "96.33%"}, {"5xx", "150", "2.61%"}}
	if !slices.EqualFunc(statuses.Rows, wantStatuses, slices.Equal) {
		t.Errorf("statuses = %q, want %q", statuses.Rows, wantStatuses)
	}

	var empty outcome.Recorder
	if s := report.RecorderStats(&empty, time.Time{}, time.Time{}); len(s) != 1 || s[0].Value != "0" {
		t.Errorf("stats of an empty recorder = %v", s)
	}
}
