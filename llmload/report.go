package llmload

import (
	"fmt"
	"time"

	"github.com/relia-dev/relia/load"
	"github.com/relia-dev/relia/outcome"
	"github.com/relia-dev/relia/report"
)

// Page is the run's HTML report: the headline figures and thresholds as
// the summary prints them, time to first token, goodput and token
// throughput over time, the requests' charts and the generator's health.
func (r *Result) Page(j Judgement) *report.Page {
	p := &report.Page{Title: "relia load llm", Subtitle: fmt.Sprintf("%s (%s, %s)", r.URL, r.API, r.Load), Start: r.Start, End: r.End}
	req, toks, good, _ := r.Throughput()
	status := report.StatusPass
	switch j.Result {
	case load.Failed:
		status = report.StatusFail
	case load.Inconclusive:
		status = report.StatusWarn
	}
	sum := r.Requests.Total()
	tok := r.Tokens.Total()
	figure := func(label, metric string, p float64, note string) report.Stat {
		agg := "p"
		if p == 0 {
			agg = "avg"
		}
		return report.Stat{Label: label, Value: r.trendValue(metric, agg, p), Note: note}
	}
	summary := report.Section{Title: "Summary",
		Text: "Every figure is measured as docs/load.md defines it, from the timestamps it names; the terminal summary and the JSON show the same numbers.",
		Stats: []report.Stat{
			{Label: "Result", Value: j.Result, Status: status},
			{Label: "Requests", Value: fmt.Sprint(sum.Sent()), Note: fmt.Sprintf("%d ended well", r.Endings[EndDone])},
			{Label: "Request throughput", Value: fmt.Sprintf("%.2f/s", req)},
			{Label: "Output tokens", Value: fmt.Sprint(tok.BytesIn), Note: fmt.Sprintf("%d input", tok.BytesOut)},
			{Label: "Token throughput", Value: fmt.Sprintf("%.1f tok/s", toks)},
			{Label: "Goodput", Value: fmt.Sprintf("%.2f/s", good), Note: r.Goodput.String()},
			figure("TTFT p50", "llm_time_to_first_token", 50, ""),
			figure("TTFT p99", "llm_time_to_first_token", 99, ""),
			figure("ITL p50", "llm_inter_token_latency", 50, ""),
			figure("TPOT p50", "llm_time_per_output_token", 50, ""),
		}}
	trends := report.Table{Title: "Figures", Columns: []string{"", "avg", "p50", "p90", "p99", "max"}}
	for _, row := range trendRows {
		trends.Rows = append(trends.Rows, []string{row.name, r.trendValue(row.metric, "avg", 0), r.trendValue(row.metric, "p", 50),
			r.trendValue(row.metric, "p", 90), r.trendValue(row.metric, "p", 99), r.trendValue(row.metric, "max", 0)})
	}
	endings := report.Table{Title: "How the streams ended", Columns: []string{"ending", "requests"}}
	for _, e := range Endings {
		if n := r.Endings[e]; n > 0 {
			st := report.StatusFail
			if e == EndDone {
				st = report.StatusPass
			}
			endings.Rows = append(endings.Rows, []string{string(e), fmt.Sprint(n)})
			endings.RowStatus = append(endings.RowStatus, st)
		}
	}
	summary.Tables = []report.Table{trends, endings}
	if len(j.Thresholds) > 0 {
		t := report.Table{Title: "Thresholds", Columns: []string{"threshold", "observed", "result"}}
		for _, tr := range j.Thresholds {
			val, res, st := FormatValue(tr.Threshold, tr.Value), "pass", report.StatusPass
			if tr.NoData {
				val = "no data"
			}
			if !tr.Passed {
				res, st = "FAIL", report.StatusFail
			}
			t.Rows = append(t.Rows, []string{tr.String(), val, res})
			t.RowStatus = append(t.RowStatus, st)
		}
		summary.Tables = append(summary.Tables, t)
	}
	streams := report.Section{Title: "Streams over time", Charts: r.charts()}
	requests := report.Section{Title: "Requests", Text: "One outcome per request, latency from its due time to the end of its stream; its class from how the stream ended.",
		Charts: report.RecorderCharts(r.Requests, r.Start, r.End)}
	h := j.Health
	var stats []report.Stat
	for _, f := range h.Figures() {
		st := ""
		if f.Warn {
			st = report.StatusWarn
		}
		stats = append(stats, report.Stat{Label: f.Label, Value: f.Value, Note: f.Note, Status: st})
	}
	rh := report.Health{Inconclusive: !h.Conclusive, Reason: h.Reason, Text: h.Text(), Stats: stats, LateAfter: r.LateAfter}
	if r.Load == load.Open {
		rh.Lag = r.ScheduleLag
	}
	p.Sections = []report.Section{summary, streams, requests, report.HealthSection(rh, r.Start, r.End)}
	return p
}

// charts are time to first token, goodput and token throughput per
// second of the run.
func (r *Result) charts() []report.Chart {
	width := time.Second
	ttft := []report.Series{{Name: "p50", Color: "blue"}, {Name: "p99", Color: "orange"}}
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	for b := range r.TTFT.Buckets() {
		if b.Latency.Count() == 0 {
			continue
		}
		ttft[0].Points = append(ttft[0].Points, report.Point{T: b.From, V: ms(b.Latency.Quantile(0.5))})
		ttft[1].Points = append(ttft[1].Points, report.Point{T: b.From, V: ms(b.Latency.Quantile(0.99))})
	}
	var lines []report.Line
	if r.Goodput.TTFT > 0 {
		lines = append(lines, report.Line{Label: "goodput objective", V: ms(r.Goodput.TTFT), Color: "red"})
	}
	// rates turns per-bucket counts into per-second rates over the part
	// of each bucket the run covered, zero where a bucket has none.
	rates := func(rec *outcome.Recorder, count func(outcome.Bucket) int64, s *report.Series) {
		counts := map[int64]int64{} // by the bucket's start, Unix ns: the recorder's times are UTC, the run's may not be
		for b := range rec.Buckets() {
			counts[b.From.UnixNano()] = count(b)
		}
		for t := r.Start.Truncate(width); t.Before(r.End); t = t.Add(width) {
			from, to := later(t, r.Start), earlier(t.Add(width), r.End)
			if !to.After(from) {
				continue
			}
			s.Points = append(s.Points, report.Point{T: from, V: float64(counts[t.UnixNano()]) / to.Sub(from).Seconds()})
		}
	}
	done := report.Series{Name: "requests ended", Color: "grey", Reduce: report.ReduceMean}
	good := report.Series{Name: "goodput", Color: "green", Reduce: report.ReduceMean}
	tokens := report.Series{Name: "output tokens", Color: "teal", Reduce: report.ReduceMean}
	rates(r.Requests, func(b outcome.Bucket) int64 { return b.Sent() }, &done)
	rates(r.Good, func(b outcome.Bucket) int64 { return b.Total }, &good)
	rates(r.Tokens, func(b outcome.Bucket) int64 { return b.BytesIn }, &tokens)
	steps := func(ss []report.Series) []report.Series {
		for i := range ss {
			ss[i].Step, ss[i].Steps = width, true
		}
		return ss
	}
	note := "By due time: each request counts in the second it was due."
	return []report.Chart{
		{Title: "Time to first token", Unit: "ms", Series: steps(ttft), Lines: lines, ScaleToggle: true, Note: note},
		{Title: "Goodput", Unit: "req/s", Series: steps([]report.Series{done, good}), Note: note + " Goodput: " + r.Goodput.String() + "."},
		{Title: "Output tokens per second", Unit: "tok/s", Series: steps([]report.Series{tokens}), Note: note},
	}
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func earlier(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}
