// Package analyze reads the call store's rollups over a time range and
// says what the traffic did and will do: traffic, error rates and
// latency percentiles per route, API, tenant and model; top consumers;
// tokens and cost; week-over-week changes; anomalies against each
// route's seasonal baseline; and a Holt-Winters forecast with daily and
// weekly seasons that states when a route is expected to exceed a
// capacity. `relia analyze` prints it, writes it as JSON, or renders it
// as an HTML report through package report.
//
//	a, err := analyze.Run(ctx, store, analyze.Options{From: from, To: to, Capacity: 500})
//	a.WriteText(os.Stdout, 500)
//	a.Page(500).WriteHTML(f)
//
// HoltWinters and Anomalies work on any regular Series, so the capacity
// planner forecasts with them too:
//
//	f, err := analyze.HoltWinters(analyze.Series{Start: t0, Step: time.Hour, Values: callsPerHour}, analyze.ForecastOptions{Horizon: 168})
//	when, ok, _, _ := f.Exceeds(capacityPerHour)
package analyze
