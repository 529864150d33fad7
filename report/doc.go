// Package report renders relia's results as one self-contained HTML file:
// sections of text, headline figures, time charts and pass/fail tables,
// in a page an SRE can attach to a postmortem or open on a machine with
// no network. `relia load --html`, `relia run` and `relia demo` build a
// Page from their results and write it.
//
//	rec := ... // the run's *outcome.Recorder
//	charts := report.RecorderCharts(rec, start, end) // latency, throughput, errors
//	for i := range charts {
//		charts[i].Windows = []report.Window{{Label: "payments +400ms", From: faultFrom, To: faultTo}}
//	}
//	page := report.Page{
//		Title: "Black Friday", Generated: time.Now(), Start: start,
//		Sections: []report.Section{
//			{Title: "Verdict", Stats: []report.Stat{{Label: "Grade", Value: "B", Status: report.StatusPass}}},
//			{Title: "Traffic", Charts: charts},
//			{Title: "SLOs", Tables: []report.Table{{
//				Columns:   []string{"SLO", "objective", "measured"},
//				Rows:      [][]string{{"availability", "99.9%", "99.95%"}},
//				RowStatus: []string{report.StatusPass},
//			}}},
//		},
//	}
//	err := page.WriteHTML(f)
//
// RecorderStats and RecorderTables give the headline figures (requests,
// throughput, availability, latency percentiles) and the breakdowns by
// outcome class and status class of a recorder, for pages that show a
// recorder on its own, as `relia report` does.
//
// # What the page holds
//
// Everything is inline: the CSS, the charts (SVG drawn here, in Go) and
// a few lines of JavaScript for hover tooltips. No font, script, style or
// image is fetched, so the file renders the same offline, years later.
// The page follows the reader's light or dark preference and prints
// cleanly. User data (titles, series names, cells) goes through
// html/template, so a request named "<script>" shows as text.
//
// # Charts
//
// All time charts on a page share one time axis, labelled in elapsed
// mm:ss (h:mm:ss for runs of an hour or more) from Page.Start, so a fault
// window shaded on every chart lines up across them. The y axis is
// linear, starts at zero and ends at a round value; ticks carry the unit,
// switching between ms and s for latencies and adding k or M to large
// rates. A series has a gap wherever it has no data (a NaN value, or a
// spacing wider than 1.5 steps) rather than a line through zero.
//
// A long series is thinned to one point per pixel column of the plot
// (872) before drawing, keeping each column's highest value by default so
// a one-second latency spike in an hour-long run stays visible; rates
// average instead (Series.Reduce). A one-hour run at one-second buckets
// renders its three standard charts in about 150 KB.
//
// Output is deterministic: the same Page gives the same bytes, so reports
// can be golden-tested and diffed.
//
// The reporttest package opens a rendered report in headless Chromium for
// tests: console errors, failed requests, screenshots and evaluation.
package report
