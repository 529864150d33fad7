// Package loadreport renders a load run's results as a report.Page: the
// page `relia load --html` writes and `relia report results.json`
// re-renders from a results file, single or merged.
//
//	res, err := load.ReadResult("results.json")
//	if err != nil { ... }
//	page := loadreport.Page(res, res.Judge())
//	page.Generated = time.Now()
//	err = page.WriteHTML(f)
//
// The page holds the thresholds with their limits and observed values in
// their units, latency over time (percentiles apart from the maximum,
// with a log-scale switch and the latency thresholds as lines), the
// latency distribution by percentile, throughput and errors by class per
// second, requests by name, outcome class and status code, checks with
// their pass rates, a stress test's steps as phases, and the load
// generator's own health (schedule lag, late and dropped arrivals).
package loadreport
