package report_test

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/relia-dev/relia/outcome"
	"github.com/relia-dev/relia/report"
)

// TestHistogramPercentiles: the curve of 1 ms, 2 ms ... 1000 ms agrees
// with the histogram's own quantiles at every point, rises, and ends on
// the maximum at 99.9% (1 - 1/n).
func TestHistogramPercentiles(t *testing.T) {
	t.Parallel()
	var h outcome.Histogram
	for i := 1; i <= 1000; i++ {
		h.Record(time.Duration(i) * time.Millisecond)
	}
	s := report.HistogramPercentiles("latency", &h)
	if len(s.Points) < 100 || len(s.Points) > 260 {
		t.Fatalf("%d points, want about one per four pixel columns", len(s.Points))
	}
	for i, p := range s.Points[:len(s.Points)-1] {
		if want := float64(h.Quantile(p.P)) / 1e6; p.V != want {
			t.Errorf("point %d at p=%v: %v ms, want the histogram's %v", i, p.P, p.V, want)
		}
		if next := s.Points[i+1]; next.P <= p.P || next.V < p.V {
			t.Errorf("point %d (%v) then %v: not ascending", i, p, next)
		}
	}
	last := s.Points[len(s.Points)-1]
	if math.Abs(last.P-0.999) > 1e-12 || last.V != float64(h.Max())/1e6 {
		t.Errorf("last point %+v, want the max %v at 0.999", last, h.Max())
	}
	if s := report.HistogramPercentiles("none", new(outcome.Histogram)); len(s.Points) != 0 {
		t.Errorf("an empty histogram gave %d points", len(s.Points))
	}
}

// TestPercentileChartAxis: the x axis runs in decades to the one past
// the deepest point, labelled as percentages, and the tooltip data says
// it is a percentile axis.
func TestPercentileChartAxis(t *testing.T) {
	t.Parallel()
	var h outcome.Histogram
	for i := 1; i <= 1000; i++ {
		h.Record(time.Duration(i) * time.Millisecond)
	}
	p := &report.Page{Sections: []report.Section{{Distributions: []report.PercentileChart{
		report.LatencyDistribution("Latency distribution", report.HistogramPercentiles("latency", &h)),
	}}}}
	out := render(t, p)
	for _, want := range []string{">0%<", ">50%<", ">90%<", ">99%<", ">99.9%<", ">99.99%<", `&#34;k&#34;:&#34;p&#34;`, "log scale", "x: percentile on a log axis"} {
		if !strings.Contains(out, want) {
			t.Errorf("distribution lacks %q", want)
		}
	}
	if strings.Contains(out, ">99.999%<") || strings.Contains(out, "Time axes") {
		t.Error("the axis runs past 99.99%, or the page claims a time axis")
	}
}

func TestBudgetCharts(t *testing.T) {
	t.Parallel()
	spans := []report.SLOSpan{
		{From: t0, To: t0.Add(10 * time.Second), Good: 1000, Total: 1000},
		{From: t0.Add(10 * time.Second), To: t0.Add(20 * time.Second), Good: 900, Total: 1000},
		{From: t0.Add(20 * time.Second), To: t0.Add(30 * time.Second)},
		{From: t0.Add(30 * time.Second), To: t0.Add(40 * time.Second), Good: 999, Total: 1000},
	}
	charts := report.BudgetCharts([]report.SLOSeries{{ID: "availability", Objective: 0.99, Period: 400 * time.Second, Spans: spans,
		Alerts: []report.Window{{Label: "page", From: t0.Add(12 * time.Second), To: t0.Add(25 * time.Second)}}}})
	if len(charts) != 2 {
		t.Fatalf("%d charts, want 2", len(charts))
	}
	burn, spent := charts[0].Series[0], charts[1].Series[0]
	// Burn: 0, then 10% errors over a 1% budget, no events, 0.1 x.
	for i, want := range []float64{0, 10, math.NaN(), 0.1} {
		if got := burn.Points[i].V; !(got == want || math.IsNaN(want) && math.IsNaN(got)) && math.Abs(got-want) > 1e-9 {
			t.Errorf("burn rate of span %d = %v, want %v", i, got, want)
		}
	}
	if !burn.Steps || len(charts[0].Windows) != 1 || len(charts[0].Lines) != 1 || charts[0].Lines[0].V != 1 {
		t.Errorf("burn chart: steps %v, windows %v, lines %v", burn.Steps, charts[0].Windows, charts[0].Lines)
	}
	// Spent so far at the end: 101 bad of 3000 over 1% is a burn of
	// 3.3667 for 40 s of a 400 s period: 33.667%.
	last := spent.Points[len(spent.Points)-1]
	if !last.T.Equal(t0.Add(40*time.Second)) || math.Abs(last.V-100*(101.0/3000/0.01)*40/400) > 1e-6 {
		t.Errorf("budget spent at the end %+v, want 33.667%% at 0:40", last)
	}
	if spent.Points[0].V != 0 || !spent.Points[0].T.Equal(t0) || len(spent.Points) != 5 {
		t.Errorf("budget spent %v, want to start at 0 at the start and have a point per span end", spent.Points)
	}
	if report.BudgetCharts(nil) != nil {
		t.Error("no SLOs gave charts")
	}
}

func TestHealthSection(t *testing.T) {
	t.Parallel()
	lag, err := outcome.NewRecorder(outcome.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 100 {
		lag.Record(outcome.Outcome{Start: t0.Add(time.Duration(i) * 10 * time.Millisecond), Latency: time.Millisecond})
	}
	s := report.HealthSection(report.Health{Inconclusive: true, Reason: "18% of requests were sent over 10ms late",
		Stats: []report.Stat{{Label: "Sent late", Value: "18.00%", Status: report.StatusWarn}}, Lag: lag, LateAfter: 10 * time.Millisecond},
		t0, t0.Add(time.Second))
	if !strings.HasPrefix(s.Text, "Inconclusive: 18% of requests") {
		t.Errorf("text %q, want the reason first", s.Text)
	}
	if len(s.Stats) != 1 || s.Stats[0].Label != "Sent late" {
		t.Errorf("stats %+v, want the caller's figures as they are", s.Stats)
	}
	if len(s.Charts) != 1 || len(s.Charts[0].Series) != 2 || s.Charts[0].Lines[0].V != 10 {
		t.Errorf("charts %+v, want the lag over time with the 10 ms limit", s.Charts)
	}
	closed := report.HealthSection(report.Health{Stats: []report.Stat{{Label: "VUs", Value: "10"}}}, t0, t0.Add(time.Second))
	if len(closed.Charts) != 0 || closed.Stats[len(closed.Stats)-1].Label != "VUs" || strings.HasPrefix(closed.Text, "Inconclusive") {
		t.Errorf("closed model: %+v", closed)
	}
}

func TestStatusCodeTable(t *testing.T) {
	t.Parallel()
	tb := report.StatusCodeTable(map[int]int64{503: 5, 200: 90, 404: 3, 429: 2})
	want := [][]string{{"200 OK", "90", "90.00%"}, {"404 Not Found", "3", "3.00%"}, {"429 Too Many Requests", "2", "2.00%"}, {"503 Service Unavailable", "5", "5.00%"}}
	for i, r := range want {
		if strings.Join(tb.Rows[i], "|") != strings.Join(r, "|") {
			t.Errorf("row %d %q, want %q", i, tb.Rows[i], r)
		}
	}
	if strings.Join(tb.RowStatus, ",") != ",warn,fail,fail" {
		t.Errorf("row statuses %q", tb.RowStatus)
	}
}
