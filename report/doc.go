// Package report renders relia's results as one self-contained HTML file:
// sections of text, headline figures, time charts, percentile charts and
// pass/fail tables, in a page an SRE can attach to a postmortem or open
// on a machine with no network. `relia load --html` (through loadreport),
// `relia run`, `relia demo` and `relia report` build a Page from their
// results and write it.
//
//	rec := ... // the run's *outcome.Recorder, from start to end
//	charts := report.RecorderCharts(rec, start, end) // latency, max, throughput, errors by class
//	for i := range charts {
//		charts[i].Windows = []report.Window{{Label: "payments +400ms", From: faultFrom, To: faultTo}}
//	}
//	page := report.Page{
//		Title: "Black Friday", Generated: time.Now(), Start: start, End: end,
//		Phases: []report.Window{{Label: "baseline", From: start, To: spikeAt}, {Label: "spike", From: spikeAt, To: end}},
//		Sections: []report.Section{
//			{Title: "Verdict", Stats: []report.Stat{{Label: "Grade", Value: "B", Status: report.StatusPass}}},
//			{Title: "Traffic", Charts: charts, Distributions: []report.PercentileChart{
//				report.LatencyDistribution("Latency distribution", report.HistogramPercentiles("latency", rec.Total().Latency)),
//			}},
//			{Title: "Error budget", Charts: report.BudgetCharts(slos)}, // []report.SLOSeries
//			{Title: "SLOs", Tables: []report.Table{{
//				Columns:   []string{"SLO", "objective", "measured"},
//				Rows:      [][]string{{"availability", "99.9%", "99.95%"}},
//				RowStatus: []string{report.StatusPass},
//			}}},
//			report.HealthSection(report.Health{Stats: []report.Stat{{Label: "Dropped", Value: "3"}}}, start, end),
//		},
//	}
//	err := page.WriteHTML(f)
//
// RecorderStats, RecorderTables and StatusCodeTable give the headline
// figures (requests, throughput, availability, latency percentiles) and
// the breakdowns by outcome class, status class and status code of a
// recorder, for pages that show a recorder on its own, as `relia report`
// does. BucketCharts draws the same charts as RecorderCharts from
// per-bucket figures that are not a recorder, such as an experiment
// journal's series.
//
// # What the page holds
//
// Everything is inline: the CSS, the charts (SVG drawn here, in Go) and
// a few lines of JavaScript for hover tooltips and the log-scale
// switches. No font, script, style or image is fetched, so the file
// renders the same offline, years later. The page follows the reader's
// light or dark preference and prints cleanly. User data (titles, series
// names, cells) goes through html/template, so a request named
// "<script>" shows as text.
//
// # Charts
//
// All time charts on a page share one time axis, labelled in elapsed
// mm:ss (h:mm:ss for runs of an hour or more) from Page.Start, so a fault
// window shaded on every chart lines up across them; the page's Phases
// are marked above every time chart, and each fault window label gets a
// colour of its own, the same on every chart. The y axis is linear from
// zero to a round value, or logarithmic (Chart.Scale), with a button to
// switch between the two in the browser (Chart.ScaleToggle); ticks carry
// the unit, switching between ms and s for latencies and adding k or M to
// large rates. Reference lines (Chart.Lines) mark thresholds and
// objectives. A series has a gap wherever it has no data (a NaN value, or
// a spacing wider than 1.5 steps) rather than a line through zero; a
// series of per-bucket figures is drawn as steps, one level per bucket
// (Series.Steps).
//
// The standard charts count rates over the part of each bucket the run
// covered, so a run that starts or ends mid-bucket is not drawn with dips
// at its edges, and a rate's mean over the run is its count over the
// run's length: the figure the load summary prints. Latency percentiles
// and the maximum have separate charts, so one slow request does not
// flatten p99 against the floor.
//
// A PercentileChart draws latency by percentile on a log(1/(1-p)) axis,
// as HdrHistogram's and Gatling's percentile plots do, so that the median
// and the 99.99th percentile both have room; HistogramPercentiles reads
// the curve from a histogram by the same quantile definition as every
// other figure.
//
// A long series is thinned to one point per pixel column of the plot
// (872) before drawing, keeping each column's highest value by default so
// a one-second latency spike in an hour-long run stays visible; rates
// average instead (Series.Reduce).
//
// Output is deterministic: the same Page gives the same bytes, so reports
// can be golden-tested and diffed.
//
// The reporttest package opens a rendered report in headless Chromium for
// tests: console errors, failed requests, screenshots and evaluation.
package report
