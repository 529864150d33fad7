package loadreport

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/relia-dev/relia/load"
	"github.com/relia-dev/relia/outcome"
	"github.com/relia-dev/relia/report"
)

// maxNamedCurves bounds the per-request curves of the distribution by
// request: past it the chart would be a tangle.
const maxNamedCurves = 8

// Page is the HTML report of a load run: the verdict and thresholds,
// latency over time and by percentile, throughput and errors, the
// requests, checks and status codes, the stress steps, and the load
// generator's own health. verdict is res.Evaluate(). The page's
// Generated time is left zero for the caller to set.
//
// Every figure is the load package's: requests are those sent, req/s is
// requests over the run's length (End - Start), error rate is failed over
// sent, and latency percentiles are the histograms' nearest rank, so the
// page, the terminal summary and the thresholds agree.
func Page(res *load.Result, verdict []load.ThresholdResult) *report.Page {
	from, to := res.Start, res.End
	page := &report.Page{
		Title:    "relia load: " + res.Scenario,
		Subtitle: subtitle(res),
		Start:    from, End: to,
		Phases: stepPhases(res),
	}
	charts := report.RecorderCharts(res.Requests, from, to)
	byTitle := map[string]report.Chart{}
	for _, c := range charts {
		byTitle[c.Title] = c
	}
	lat := byTitle["Latency"]
	lat.Lines = durationLines(res.Thresholds)
	latText := "Latency runs from each request's send."
	if res.Model == load.Open {
		latText = "Open model: latency runs from each request's scheduled send time, so a stall delays every request " +
			"due during it and shows in the percentiles (no coordinated omission); service time runs from the actual " +
			"send. A closed model would hide a stall: its VUs wait and send less, so few slow requests are recorded."
	}
	latency := report.Section{Title: "Latency", Text: latText, Charts: []report.Chart{lat, byTitle["Latency max"]}}
	if res.Model == load.Open {
		latency.Charts = append(latency.Charts, serviceChart(res))
	}
	all := res.Requests.Total()
	curves := []report.PercentileSeries{report.HistogramPercentiles("latency", all.Latency)}
	if res.Model == load.Open {
		svc := report.HistogramPercentiles("service time", all.ServiceTime)
		svc.Color = "teal"
		curves = append(curves, svc)
	}
	dist := report.LatencyDistribution("Latency distribution", curves...)
	dist.Lines = durationLines(res.Thresholds)
	latency.Distributions = []report.PercentileChart{dist}
	if names := slices.Sorted(maps.Keys(res.ByName)); len(names) > 1 && len(names) <= maxNamedCurves {
		var named []report.PercentileSeries
		for _, n := range names {
			named = append(named, report.HistogramPercentiles(n, res.ByName[n].Total().Latency))
		}
		latency.Distributions = append(latency.Distributions, report.LatencyDistribution("Latency distribution by request", named...))
	}

	thr := byTitle["Throughput"]
	thr.Note = report.RecorderNote
	traffic := report.Section{Title: "Throughput and errors", Charts: []report.Chart{thr, byTitle["Errors by class"], activeChart(res)}}

	requests := report.Section{Title: "Requests", Tables: []report.Table{nameTable(res)}}
	requests.Tables = append(requests.Tables, report.RecorderTables(res.Requests, time.Time{}, time.Time{})[0], report.StatusCodeTable(res.Requests.StatusCodes()))

	page.Sections = []report.Section{verdictSection(res, verdict), latency, traffic, requests}
	if len(res.ByCheck) > 0 {
		page.Sections = append(page.Sections, checkSection(res))
	}
	if steps := res.StressSteps(); steps != nil {
		page.Sections = append(page.Sections, stepSection(res, steps))
	}
	page.Sections = append(page.Sections, healthSection(res))
	return page
}

func subtitle(res *load.Result) string {
	parts := []string{string(res.Model) + " model"}
	if res.Preset != "" {
		parts = append(parts, res.Preset+" preset")
	}
	parts = append(parts, fmt.Sprintf("ran %s of %s", res.End.Sub(res.Start).Round(time.Millisecond), res.Duration))
	if len(res.Segments) > 1 || res.Segments[0] != load.Whole {
		segs := make([]string, len(res.Segments))
		for i, s := range res.Segments {
			segs[i] = s.String()
		}
		parts = append(parts, "segments "+strings.Join(segs, " "))
	}
	parts = append(parts, fmt.Sprintf("seed %d", res.Seed))
	return strings.Join(parts, " · ")
}

// verdictSection is the thresholds' verdict and the headline figures.
func verdictSection(res *load.Result, verdict []load.ThresholdResult) report.Section {
	all := res.Rows()[0]
	passed := load.AllPassed(verdict)
	status := report.StatusPass
	if !passed {
		status = report.StatusFail
	}
	stats := []report.Stat{
		{Label: "Thresholds", Value: map[bool]string{true: "passed", false: "failed"}[passed], Status: status,
			Note: fmt.Sprintf("%d of %d held", len(verdict)-failedCount(verdict), len(verdict))},
		{Label: "Requests", Value: strconv.FormatInt(all.Requests, 10), Note: fmt.Sprintf("%.1f req/s", all.RPS)},
		{Label: "Error rate", Value: fmt.Sprintf("%.2f%%", all.ErrorRate()*100), Note: fmt.Sprintf("%d failed", all.Failed)},
		{Label: "p50 latency", Value: msText(all.P50)},
		{Label: "p99 latency", Value: msText(all.P99)},
		{Label: "max latency", Value: msText(all.Max)},
	}
	t := report.Table{Title: "Thresholds", Columns: []string{"threshold", "limit", "observed", "result"}}
	for _, v := range verdict {
		val := v.Threshold.FormatValue(v.Value)
		if v.NoData {
			val = "no data"
		}
		if v.Threshold.Window > 0 && v.Windows > 0 {
			val += fmt.Sprintf(" (%d of %d windows failed)", v.FailedWindows, v.Windows)
		}
		limit := string(v.Threshold.Op) + " " + v.Threshold.FormatValue(v.Threshold.Value)
		t.Rows = append(t.Rows, []string{v.String(), limit, val, map[bool]string{true: "pass", false: "FAIL"}[v.Passed]})
		t.RowStatus = append(t.RowStatus, map[bool]string{true: report.StatusPass, false: report.StatusFail}[v.Passed])
	}
	s := report.Section{Title: "Verdict", Text: res.Stopped, Stats: stats}
	if len(verdict) > 0 {
		s.Tables = []report.Table{t}
	}
	return s
}

func failedCount(verdict []load.ThresholdResult) int {
	n := 0
	for _, v := range verdict {
		if !v.Passed {
			n++
		}
	}
	return n
}

// msText prints a latency as the report's tiles do.
func msText(d time.Duration) string {
	ms := float64(d) / float64(time.Millisecond)
	switch {
	case ms >= 1000:
		return strconv.FormatFloat(ms/1000, 'f', 2, 64) + " s"
	case ms >= 1:
		return strconv.FormatFloat(ms, 'f', 2, 64) + " ms"
	}
	return strconv.FormatFloat(ms*1000, 'f', 0, 64) + " µs"
}

// durationLines are the run's latency thresholds on the whole run's
// http_req_duration, as reference lines on the latency charts.
func durationLines(ths []load.Threshold) []report.Line {
	var lines []report.Line
	for _, th := range ths {
		if th.Metric != "http_req_duration" || len(th.Tags) > 0 || th.Aggregation == "avg" || th.Aggregation == "min" {
			continue
		}
		lines = append(lines, report.Line{Label: th.Expr, V: th.Value, Color: "red"})
	}
	return lines
}

// serviceChart is p99 latency from the schedule against p99 service time
// from the send: the gap between them is the time requests waited for
// the generator.
func serviceChart(res *load.Result) report.Chart {
	width := res.Requests.Options().BucketWidth
	lat := report.Series{Name: "latency p99", Step: width, Steps: true, Color: "orange"}
	svc := report.Series{Name: "service time p99", Step: width, Steps: true, Color: "teal"}
	for b := range res.Requests.Buckets() {
		if !b.From.Add(width).After(res.Start) || !b.From.Before(res.End) || b.Latency.Count() == 0 {
			continue
		}
		t := b.From
		if t.Before(res.Start) {
			t = res.Start
		}
		lat.Points = append(lat.Points, report.Point{T: t, V: float64(b.Latency.Quantile(0.99)) / float64(time.Millisecond)})
		svc.Points = append(svc.Points, report.Point{T: t, V: float64(b.ServiceTime.Quantile(0.99)) / float64(time.Millisecond)})
	}
	c := report.Chart{Title: "p99: latency from schedule and service time", Unit: "ms", ScaleToggle: true}
	if len(lat.Points) > 0 {
		c.Series = []report.Series{lat, svc}
	}
	return c
}

// activeChart is the VUs (closed model) or requests in flight (open)
// sampled every second.
func activeChart(res *load.Result) report.Chart {
	var pts []report.Point
	for _, a := range res.Active {
		pts = append(pts, report.Point{T: a.T, V: float64(a.V)})
	}
	c := report.Chart{Title: map[load.Model]string{load.Open: "Requests in flight", load.Closed: "Active VUs"}[res.Model]}
	if len(pts) > 0 {
		c.Series = []report.Series{{Name: "active", Points: pts, Color: "blue"}}
	}
	return c
}

// nameTable is the summary table: the whole run and each request name.
func nameTable(res *load.Result) report.Table {
	t := report.Table{Title: "By request", Columns: []string{"name", "requests", "req/s", "errors", "p50", "p90", "p95", "p99", "p99.9", "max"}}
	for _, r := range res.Rows() {
		t.Rows = append(t.Rows, []string{r.Name, strconv.FormatInt(r.Requests, 10), fmt.Sprintf("%.1f", r.RPS),
			fmt.Sprintf("%.2f%%", r.ErrorRate()*100), msText(r.P50), msText(r.P90), msText(r.P95), msText(r.P99), msText(r.P999), msText(r.Max)})
		st := ""
		if r.Failed > 0 {
			st = report.StatusWarn
		}
		t.RowStatus = append(t.RowStatus, st)
	}
	return t
}

// checkSection is every check with its pass rate.
func checkSection(res *load.Result) report.Section {
	t := report.Table{Columns: []string{"check", "runs", "passed", "failed", "pass rate"}}
	var passed, total int64
	for _, k := range slices.Sorted(maps.Keys(res.ByCheck)) {
		sum := res.ByCheck[k].Total()
		ok := sum.ByClass[outcome.ClassOK]
		passed += ok
		total += sum.Total
		rate := "n/a"
		if sum.Total > 0 {
			rate = fmt.Sprintf("%.2f%%", 100*float64(ok)/float64(sum.Total))
		}
		t.Rows = append(t.Rows, []string{k, strconv.FormatInt(sum.Total, 10), strconv.FormatInt(ok, 10), strconv.FormatInt(sum.Total-ok, 10), rate})
		t.RowStatus = append(t.RowStatus, map[bool]string{true: report.StatusPass, false: report.StatusFail}[ok == sum.Total])
	}
	s := report.Section{Title: "Checks", Tables: []report.Table{t}}
	if total > 0 {
		st := report.StatusPass
		if passed < total {
			st = report.StatusFail
		}
		s.Stats = []report.Stat{{Label: "Checks passed", Value: fmt.Sprintf("%.2f%%", 100*float64(passed)/float64(total)),
			Note: fmt.Sprintf("%d of %d", passed, total), Status: st}}
	}
	return s
}

// stepPhases are a stress test's steps as the page's phases.
func stepPhases(res *load.Result) []report.Window {
	var out []report.Window
	for _, st := range res.StressSteps() {
		out = append(out, report.Window{Label: fmt.Sprintf("step %d: %g", st.Step, st.Target), From: st.From, To: st.From.Add(res.StepLength)})
	}
	return out
}

// stepSection is the stress test's steps and its knee.
func stepSection(res *load.Result, steps []load.StressStep) report.Section {
	t := report.Table{Columns: []string{"step", "target", "achieved req/s", "p99", "errors", "failed thresholds"}}
	for _, st := range steps {
		t.Rows = append(t.Rows, []string{strconv.Itoa(st.Step), fmt.Sprintf("%g", st.Target), fmt.Sprintf("%.1f", st.RPS),
			msText(st.P99), fmt.Sprintf("%.2f%%", st.ErrorRate*100), strings.Join(st.Failed, ", ")})
		t.RowStatus = append(t.RowStatus, map[bool]string{true: report.StatusPass, false: report.StatusFail}[st.Passed])
	}
	text := "Every step held: the knee was not reached."
	switch k := res.Knee(); {
	case k.Found && k.LastGood != nil:
		text = fmt.Sprintf("Knee between step %d (target %g, %.1f req/s, held) and step %d (target %g, failed).",
			k.LastGood.Step, k.LastGood.Target, k.LastGood.RPS, k.Step.Step, k.Step.Target)
	case k.Found:
		text = fmt.Sprintf("Knee below step 1: target %g already failed.", k.Step.Target)
	}
	return report.Section{Title: "Stress steps", Text: text, Tables: []report.Table{t}}
}

// healthSection is the generator's account of itself.
func healthSection(res *load.Result) report.Section {
	h := report.Health{Dropped: int64(res.Dropped)}
	if res.Model == load.Open {
		h.Planned, h.Lag, h.LateAfter = int64(res.Planned), res.Lag, res.LateAfter
	} else {
		h.Extra = []report.Stat{
			{Label: "VUs", Value: strconv.Itoa(res.MaxActive), Note: "most at once"},
			{Label: "Iterations", Value: strconv.FormatUint(res.Iterations, 10)},
		}
	}
	return report.HealthSection(h, res.Start, res.End)
}
