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
	if len(charts) != 3 {
		t.Fatalf("%d charts, want 3", len(charts))
	}
	lat, thr, errs := charts[0], charts[1], charts[2]
	for _, c := range []struct {
		chart       report.Chart
		title, unit string
		names       []string
	}{
		{lat, "Latency", "ms", []string{"p50", "p90", "p99", "max"}},
		{thr, "Throughput", "req/s", []string{"good", "bad"}},
		{errs, "Errors by class", "req/s", []string{"status", "timeout", "dropped"}},
	} {
		if c.chart.Title != c.title || c.chart.Unit != c.unit || !slices.Equal(seriesNames(c.chart), c.names) {
			t.Errorf("chart %q (%s) with %q, want %q (%s) with %q", c.chart.Title, c.chart.Unit, seriesNames(c.chart), c.title, c.unit, c.names)
		}
		for _, s := range c.chart.Series {
			if s.Step != time.Second {
				t.Errorf("%s/%s: step %v, want the bucket width", c.title, s.Name, s.Step)
			}
		}
	}

	// Every latency point is the bucket's own quantile, in ms.
	for _, sec := range []int{0, 45, 119} {
		from := t0.Add(time.Duration(sec) * time.Second)
		w := rec.Window(from, from.Add(time.Second))
		for i, q := range []float64{0.5, 0.9, 0.99, 1} {
			got, ok := valueAt(lat.Series[i], from)
			want := float64(w.Latency.Quantile(q)) / 1e6
			if !ok || got != want {
				t.Errorf("second %d %s = %v (present %v), want %v", sec, lat.Series[i].Name, got, ok, want)
			}
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
	}{{thr.Series[0], 43}, {thr.Series[1], 7}, {errs.Series[0], 5}, {errs.Series[1], 2}, {errs.Series[2], 0}} {
		if v, _ := valueAt(c.s, at); v != c.want {
			t.Errorf("%s at 0:50 = %v, want %v", c.s.Name, v, c.want)
		}
	}
	// The dropped arrival at 1:40 is bad, an error, and has no latency.
	at = t0.Add(100 * time.Second)
	if v, _ := valueAt(errs.Series[2], at); v != 1 {
		t.Errorf("dropped at 1:40 = %v, want 1", v)
	}
	if v, _ := valueAt(thr.Series[1], at); v != 1 {
		t.Errorf("bad at 1:40 = %v, want 1", v)
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
		{"mid-bucket bounds", t0.Add(10500 * time.Millisecond), t0.Add(12500 * time.Millisecond), t0.Add(11 * time.Second), t0.Add(12 * time.Second), 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			good := report.RecorderCharts(rec, tt.from, tt.to)[1].Series[0]
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
		if len(charts) != 3 {
			t.Fatalf("%d charts, want 3", len(charts))
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
		good, refused := charts[1].Series[0], charts[2].Series[0]
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
		"Requests":     "5750",       // 115 seconds with outcomes, 50 each
		"Availability": "96.33%",     // 210 failed during the fault, 1 dropped
		"Throughput":   "47.9 req/s", // 5750 over 120 s
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
