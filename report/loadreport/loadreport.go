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
// generator's own health. j is res.Judge(): the result, its reasons, the
// thresholds and the generator's judgement of itself, which the page
// shows as the terminal and the results file do. The page's Generated
// time is left zero for the caller to set.
//
// Every figure is the load package's: requests are those sent, req/s is
// requests over the run's length (End - Start), failed requests are k6's
// http_req_failed over sent, checks are counted apart, and latency percentiles are the histograms' nearest rank, so the
// page, the terminal summary and the thresholds agree.
func Page(res *load.Result, j load.Judgement) *report.Page {
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

	requests := report.Section{Title: "Requests",
		Text:   "failed: the requests k6's http_req_failed counts (a transport error or a status the request does not expect); checks: the share of checks that passed, counted apart.",
		Tables: []report.Table{nameTable(res)}}
	requests.Tables = append(requests.Tables, report.RecorderTables(res.Requests, time.Time{}, time.Time{})[0], report.StatusCodeTable(res.Requests.StatusCodes()))

	page.Sections = []report.Section{verdictSection(res, j), latency, traffic, requests}
	if res.Journeys != nil {
		page.Sections = append(page.Sections, journeySection(res))
	}
	if len(res.ByCheck) > 0 {
		page.Sections = append(page.Sections, checkSection(res))
	}
	if steps := res.StressSteps(); steps != nil {
		page.Sections = append(page.Sections, stepSection(res, steps))
	}
	page.Sections = append(page.Sections, healthSection(res, j.Generator))
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

// verdictSection is the run's result with its reasons, the headline
// figures and the thresholds. When the generator could not keep its
// schedule the result is inconclusive and a failed threshold is shown
// as not judged, as in the terminal.
func verdictSection(res *load.Result, j load.Judgement) report.Section {
	all := res.Rows()[0]
	status := map[string]string{load.Passed: report.StatusPass, load.Failed: report.StatusFail,
		load.Inconclusive: report.StatusWarn, load.Interrupted: report.StatusWarn}[j.Result]
	held := len(j.Thresholds) - failedCount(j.Thresholds)
	stats := []report.Stat{
		{Label: "Result", Value: strings.ToUpper(j.Result), Status: status,
			Note: fmt.Sprintf("%d of %d thresholds held", held, len(j.Thresholds))},
		{Label: "Requests", Value: strconv.FormatInt(all.Requests, 10), Note: fmt.Sprintf("%.1f req/s", all.RPS)},
		{Label: "Failed requests", Value: fmt.Sprintf("%.2f%%", all.FailedRate()*100), Note: fmt.Sprintf("%d failed (http_req_failed)", all.Failed)},
	}
	if all.Checks > 0 {
		stats = append(stats, report.Stat{Label: "Checks passed", Value: all.ChecksText(), Note: fmt.Sprintf("%d of %d", all.ChecksPassed, all.Checks)})
	}
	stats = append(stats,
		report.Stat{Label: "p50 latency", Value: msText(all.P50)},
		report.Stat{Label: "p99 latency", Value: msText(all.P99)},
		report.Stat{Label: "max latency", Value: msText(all.Max)})
	t := report.Table{Title: "Thresholds", Columns: []string{"threshold", "limit", "observed", "result"}}
	for _, v := range j.Thresholds {
		val := load.FormatValue(v.Threshold, v.Value)
		if v.NoData {
			val = "no data"
		}
		if v.Threshold.Window > 0 && v.Windows > 0 {
			val += fmt.Sprintf(" (%d of %d windows failed)", v.FailedWindows, v.Windows)
		}
		limit := string(v.Threshold.Op) + " " + load.FormatLimit(v.Threshold)
		result, st := "pass", report.StatusPass
		switch {
		case !v.Passed && j.Result == load.Inconclusive:
			result, st = "FAIL (not judged)", report.StatusWarn
		case !v.Passed:
			result, st = "FAIL", report.StatusFail
		}
		t.Rows = append(t.Rows, []string{v.String(), limit, val, result})
		t.RowStatus = append(t.RowStatus, st)
	}
	text := "Every threshold held."
	if len(j.Reasons) > 0 {
		text = strings.Join(j.Reasons, "\n\n")
	}
	if res.Stopped != "" {
		text += "\n\nStopped early: " + res.Stopped
	}
	s := report.Section{Title: "Verdict", Text: text, Stats: stats}
	if len(j.Thresholds) > 0 {
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
	t := report.Table{Title: "By request", Columns: []string{"name", "requests", "req/s", "failed", "checks", "p50", "p90", "p95", "p99", "p99.9", "max"}}
	for _, r := range res.Rows() {
		t.Rows = append(t.Rows, []string{r.Name, strconv.FormatInt(r.Requests, 10), fmt.Sprintf("%.1f", r.RPS),
			fmt.Sprintf("%.2f%%", r.FailedRate()*100), r.ChecksText(), msText(r.P50), msText(r.P90), msText(r.P95), msText(r.P99), msText(r.P999), msText(r.Max)})
		st := ""
		if r.Failed > 0 {
			st = report.StatusWarn
		}
		t.RowStatus = append(t.RowStatus, st)
	}
	return t
}

// journeySection is a journey test's journeys and groups: count, rate,
// success and lengths, as the terminal summary and the thresholds
// compute them, and the distribution of each journey's length.
func journeySection(res *load.Result) report.Section {
	text := "A journey is one user's walk through its steps; it succeeds when every request was answered as expected and every check passed. Its length runs from its first send"
	if res.Model == load.Open {
		text = "A journey is one user's walk through its steps; it succeeds when every request was answered as expected and every check passed. Open model: its length runs from the user's scheduled arrival, so a slow service cannot hide in the time users wait to arrive"
	}
	t := report.Table{Title: "By journey and group", Columns: []string{"journey or group", "count", "per s", "success", "p50", "p95", "p99", "max"}}
	add := func(name string, r load.JourneyRow) {
		t.Rows = append(t.Rows, []string{name, strconv.FormatInt(r.Count, 10), fmt.Sprintf("%.1f", r.Rate),
			fmt.Sprintf("%.2f%%", r.SuccessRate()*100), msText(r.P50), msText(r.P95), msText(r.P99), msText(r.Max)})
		st := ""
		if r.Succeeded < r.Count {
			st = report.StatusWarn
		}
		t.RowStatus = append(t.RowStatus, st)
	}
	var curves []report.PercentileSeries
	for _, r := range res.JourneyRows() {
		add(r.Name, r)
		if rec := res.Journeys.ByJourney[r.Name]; rec != nil {
			curves = append(curves, report.HistogramPercentiles(r.Name, rec.Total().Latency))
		}
	}
	for _, r := range res.GroupRows() {
		add("group "+r.Name, r)
	}
	sec := report.Section{Title: "Journeys", Text: text + "; groups are timed from their first send to the end of their last step.", Tables: []report.Table{t}}
	if len(curves) > 0 && len(curves) <= maxNamedCurves {
		sec.Distributions = []report.PercentileChart{report.LatencyDistribution("Journey length distribution", curves...)}
	}
	return sec
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

// healthSection is the generator's account of itself: its judgement of
// itself (the load package's figures) and, for the open model, the
// schedule lag over time.
func healthSection(res *load.Result, h load.Health) report.Section {
	var extra []report.Stat
	if res.Model == load.Closed {
		extra = []report.Stat{
			{Label: "VUs", Value: strconv.Itoa(res.MaxActive), Note: "most at once"},
			{Label: "Iterations", Value: strconv.FormatUint(res.Iterations, 10)},
		}
	}
	var lag *outcome.Recorder
	if res.Model == load.Open {
		lag = res.Lag
	}
	return HealthSection(h, lag, res.Start, res.End, extra...)
}

// HealthSection is the report section of a load generator's judgement of
// itself, h (a load run's, or an experiment's over all its phases), with
// lag, the schedule lag recorder (nil: no chart), drawn over [from, to),
// and extra figures after the generator's own.
func HealthSection(h load.Health, lag *outcome.Recorder, from, to time.Time, extra ...report.Stat) report.Section {
	rh := report.Health{Inconclusive: !h.Conclusive, Reason: h.Reason, Text: h.Text(), Lag: lag, LateAfter: h.LateAfter}
	for _, f := range h.Figures() {
		st := report.StatusPass
		if f.Warn {
			st = report.StatusWarn
		}
		rh.Stats = append(rh.Stats, report.Stat{Label: f.Label, Value: f.Value, Note: f.Note, Status: st})
	}
	rh.Stats = append(rh.Stats, extra...)
	return report.HealthSection(rh, from, to)
}
