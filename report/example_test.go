package report_test

import (
	"bytes"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/relia-dev/relia/outcome"
	"github.com/relia-dev/relia/report"
)

func Example() {
	start := time.Date(2025, 11, 28, 9, 0, 0, 0, time.UTC)
	rec, err := outcome.NewRecorder(outcome.Options{})
	if err != nil {
		panic(err)
	}
	for i := range 600 { // 60 seconds at 10 requests a second
		o := outcome.Outcome{Start: start.Add(time.Duration(i) * 100 * time.Millisecond), Latency: 20 * time.Millisecond, Status: 200}
		if i >= 200 && i < 300 && i%4 == 0 { // a fault from 0:20 to 0:30
			o.Status, o.Latency = 503, 300*time.Millisecond
		}
		o.Class = outcome.ClassifyResponse(o.Status, nil)
		rec.Record(o)
	}

	charts := report.RecorderCharts(rec, time.Time{}, time.Time{})
	for i := range charts {
		charts[i].Windows = []report.Window{{Label: "payments 503", From: start.Add(20 * time.Second), To: start.Add(30 * time.Second)}}
	}
	page := report.Page{
		Title: "checkout under load",
		Start: start,
		Sections: []report.Section{
			{Title: "Verdict", Stats: []report.Stat{{Label: "Availability", Value: "99.58%", Status: report.StatusFail}}},
			{Title: "Traffic", Charts: charts},
		},
	}
	path := filepath.Join(os.TempDir(), "relia-example-report.html")
	f, err := os.Create(path)
	if err != nil {
		panic(err)
	}
	defer os.Remove(path)
	if err := page.WriteHTML(f); err != nil {
		panic(err)
	}
	if err := f.Close(); err != nil {
		panic(err)
	}
	for _, c := range charts {
		fmt.Println(c.Title, seriesNames(c))
	}
	// Output:
	// Latency [p50 p90 p99]
	// Latency max [max]
	// Throughput [not failed failed]
	// Errors by class [status]
}

// A gauge that was not scraped for a while: NaN values leave a gap in the
// line instead of a fall to zero.
func ExampleSeries_gaps() {
	start := time.Date(2025, 11, 28, 9, 0, 0, 0, time.UTC)
	var pts []report.Point
	for s := range 10 {
		v := float64(s)
		if s == 4 || s == 5 {
			v = math.NaN()
		}
		pts = append(pts, report.Point{T: start.Add(time.Duration(s) * time.Second), V: v})
	}
	page := report.Page{Sections: []report.Section{{Charts: []report.Chart{{
		Title:  "queue depth",
		Series: []report.Series{{Name: "queue", Points: pts}},
	}}}}}
	var buf bytes.Buffer
	if err := page.WriteHTML(&buf); err != nil {
		panic(err)
	}
	d := buf.String()
	d = d[strings.Index(d, `<g class="series">`):]
	d = d[strings.Index(d, ` d="`)+4:]
	d = d[:strings.IndexByte(d, '"')]
	fmt.Println("line pieces:", strings.Count(d, "M"))
	// Output:
	// line pieces: 2
}

func ExamplePage_WriteHTML() {
	page := report.Page{
		Title: "SLOs",
		Sections: []report.Section{{Tables: []report.Table{{
			Columns:   []string{"SLO", "objective", "measured"},
			Rows:      [][]string{{"availability", "99.9%", "99.95%"}, {"p95 < 200ms", "99%", "97.1%"}},
			RowStatus: []string{report.StatusPass, report.StatusFail},
		}}}},
	}
	var buf bytes.Buffer
	if err := page.WriteHTML(&buf); err != nil {
		panic(err)
	}
	for line := range strings.Lines(buf.String()) {
		if strings.HasPrefix(line, "<tr class=") {
			fmt.Print(line)
		}
	}
	// Output:
	// <tr class="pass"><td>availability</td><td>99.9%</td><td>99.95%</td></tr>
	// <tr class="fail"><td>p95 &lt; 200ms</td><td>99%</td><td>97.1%</td></tr>
}

// The latency distribution of a run: latency by percentile, the tail on
// a log axis.
func ExampleHistogramPercentiles() {
	var h outcome.Histogram
	for i := 1; i <= 1000; i++ {
		h.Record(time.Duration(i) * time.Millisecond)
	}
	s := report.HistogramPercentiles("latency", &h)
	last := s.Points[len(s.Points)-1]
	fmt.Printf("from %.0f ms at p0 to the max %.0f ms at p%.1f\n", s.Points[0].V, last.V, 100*last.P)
	page := report.Page{Sections: []report.Section{{Distributions: []report.PercentileChart{report.LatencyDistribution("Latency distribution", s)}}}}
	var buf bytes.Buffer
	if err := page.WriteHTML(&buf); err != nil {
		panic(err)
	}
	fmt.Println(strings.Contains(buf.String(), ">99.9%<"))
	// Output:
	// from 1 ms at p0 to the max 1000 ms at p99.9
	// true
}

// An SLO's error budget over a run of two phases: the charts end on the
// run's budget spent.
func ExampleBudgetCharts() {
	start := time.Date(2025, 11, 28, 9, 0, 0, 0, time.UTC)
	charts := report.BudgetCharts([]report.SLOSeries{{
		ID: "availability", Objective: 0.999, Period: 30 * 24 * time.Hour,
		Spans: []report.SLOSpan{
			{From: start, To: start.Add(time.Minute), Good: 6000, Total: 6000},
			{From: start.Add(time.Minute), To: start.Add(2 * time.Minute), Good: 5940, Total: 6000},
		},
	}})
	burn, spent := charts[0].Series[0].Points, charts[1].Series[0].Points
	fmt.Printf("burn rate %.0fx then %.0fx; %.4f%% of the budget spent\n", burn[0].V, burn[1].V, spent[len(spent)-1].V)
	// Output:
	// burn rate 0x then 10x; 0.0231% of the budget spent
}
