package report_test

import (
	"math"
	"time"

	"github.com/relia-dev/relia/outcome"
	"github.com/relia-dev/relia/report"
)

// t0 is the start of every sample run.
var t0 = time.Date(2025, 11, 28, 9, 0, 0, 0, time.UTC)

// sampleRecorder is two minutes of traffic at 50 requests a second with a
// fault from 0:40 to 1:10 (slow and failing payments), a 5-second outage
// of the load generator at 1:30 (no outcomes at all) and a few dropped
// arrivals, all deterministic.
func sampleRecorder() *outcome.Recorder {
	rec, err := outcome.NewRecorder(outcome.Options{})
	if err != nil {
		panic(err)
	}
	for s := range 120 {
		if s >= 90 && s < 95 {
			continue
		}
		faulty := s >= 40 && s < 70
		for i := range 50 {
			o := outcome.Outcome{
				Start:   t0.Add(time.Duration(s)*time.Second + time.Duration(i)*20*time.Millisecond),
				Latency: time.Duration(12+(i*7+s*3)%30) * time.Millisecond,
				Status:  200,
			}
			switch {
			case faulty && i%10 == 0:
				o.Status, o.Latency = 503, 5*time.Millisecond
			case faulty && i%25 == 1:
				o.Status, o.Latency = 0, 1500*time.Millisecond
				o.Class = outcome.ClassTimeout
			case faulty && i%5 == 2:
				o.Latency += 400 * time.Millisecond
			case s == 100 && i == 7:
				o.Class, o.Status, o.Latency = outcome.ClassDropped, 0, 0
			}
			if o.Class == outcome.ClassOK {
				o.Class = outcome.ClassifyResponse(o.Status, nil)
			}
			rec.Record(o)
		}
	}
	return rec
}

// samplePage is the page the golden and browser tests render: recorder
// charts with a fault window, a hand-made chart with a gap and a lone
// point, stats, tables with pass and fail rows, and user data that must
// come out escaped.
func samplePage() *report.Page {
	rec := sampleRecorder()
	fault := report.Window{Label: "payments: +400ms, 10% 503", From: t0.Add(40 * time.Second), To: t0.Add(70 * time.Second)}
	kill := report.Window{Label: "replica killed", From: t0.Add(60 * time.Second), To: t0.Add(80 * time.Second)}
	charts := report.RecorderCharts(rec, time.Time{}, time.Time{})
	for i := range charts {
		charts[i].Windows = []report.Window{fault, kill}
	}
	charts[0].Lines = []report.Line{{Label: "p(99)<500", V: 500, Color: "red"}}
	budget := report.BudgetCharts([]report.SLOSeries{{
		ID: "availability", Objective: 0.99, Period: 10 * time.Minute,
		Spans: []report.SLOSpan{
			{From: t0, To: t0.Add(40 * time.Second), Good: 2000, Total: 2000},
			{From: t0.Add(40 * time.Second), To: t0.Add(70 * time.Second), Good: 1290, Total: 1500},
			{From: t0.Add(70 * time.Second), To: t0.Add(120 * time.Second), Good: 2249, Total: 2250},
		},
		Alerts: []report.Window{{Label: "availability: page firing", From: t0.Add(45 * time.Second), To: t0.Add(75 * time.Second), Color: "red"}},
	}})
	whole := rec.Total()
	early := rec.Window(t0, t0.Add(40*time.Second))
	fault40 := rec.Window(t0.Add(40*time.Second), t0.Add(70*time.Second))

	var queue []report.Point
	for s := range 100 {
		v := 3 + math.Floor(4*math.Sin(float64(s)/7))
		if s >= 55 && s < 65 {
			v = math.NaN() // the gauge was not scraped
		}
		if s%2 == 1 {
			continue
		}
		queue = append(queue, report.Point{T: t0.Add(time.Duration(s) * time.Second), V: math.Max(v, 0)})
	}
	queue = append(queue, report.Point{T: t0.Add(110 * time.Second), V: 9}) // alone after a gap

	return &report.Page{
		Title:     "Black Friday <experiment>",
		Subtitle:  "relia demo · seed 42 · target http://127.0.0.1:8080",
		Generated: t0.Add(2*time.Minute + 3*time.Second),
		Start:     t0,
		End:       t0.Add(2 * time.Minute),
		Phases: []report.Window{
			{Label: "baseline", From: t0, To: t0.Add(40 * time.Second)},
			{Label: "fault", From: t0.Add(40 * time.Second), To: t0.Add(70 * time.Second)},
			{Label: "recovery", From: t0.Add(70 * time.Second), To: t0.Add(2 * time.Minute)},
		},
		Sections: []report.Section{
			{
				Title: "Verdict",
				Text:  "The run failed: the availability SLO was breached while payments were slow.\n\nBudget burned 3.2x faster than allowed during the fault.",
				Stats: []report.Stat{
					{Label: "Grade", Value: "C", Note: "scorecard", Status: report.StatusWarn},
					{Label: "Availability", Value: "97.90%", Note: "target 99.9%", Status: report.StatusFail},
					{Label: "p95 latency", Value: "41 ms", Note: "target < 200 ms", Status: report.StatusPass},
					{Label: "Requests", Value: "5,750"},
				},
				Tables: []report.Table{{
					Title:     "SLOs",
					Columns:   []string{"SLO", "objective", "measured", "budget spent", "result"},
					Rows:      [][]string{{"availability", "99.9%", "97.90%", "2100%", "FAIL"}, {"latency p95", "< 200 ms", "41 ms", "0%", "PASS"}, {"errors", "< 1%", "2.10%", "210%", "FAIL"}},
					RowStatus: []string{report.StatusFail, report.StatusPass, report.StatusFail},
				}},
			},
			{
				Title:  "Traffic",
				Charts: charts,
				Distributions: []report.PercentileChart{report.LatencyDistribution("Latency distribution",
					report.HistogramPercentiles("whole run", whole.Latency),
					report.HistogramPercentiles("before the fault", early.Latency),
					report.HistogramPercentiles("during the fault", fault40.Latency))},
			},
			{
				Title:  "Error budget",
				Charts: budget,
			},
			{
				Title: "Queue <script>alert(1)</script>",
				Text:  "A gauge sampled every 2 s, not scraped from 0:55 to 1:05.",
				Charts: []report.Chart{{
					Title:   "Queue depth <b>",
					Unit:    "",
					Series:  []report.Series{{Name: "<script>alert(1)</script>", Points: queue, Step: 2 * time.Second}},
					Windows: []report.Window{{Label: "<img src=x onerror=alert(1)>", From: t0.Add(100 * time.Second)}},
				}},
				Tables: []report.Table{{
					Title:   "Per request",
					Columns: []string{"name", "requests", "p95", "errors"},
					Rows:    [][]string{{"GET /catalog", "3000", "38 ms", "0"}, {"POST /pay <script>alert(1)</script>", "1500"}},
				}},
			},
		},
	}
}
