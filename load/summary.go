package load

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/relia-dev/relia/outcome"
)

// Row is one line of the summary table: a request name, or "all".
type Row struct {
	Name     string
	Requests int64 // sent (dropped arrivals excluded)
	// Failed counts the requests that failed as k6's http_req_failed
	// counts them: a transport error or a status the request does not
	// expect. A response that failed a check is not a failed request; the
	// checks count it.
	Failed int64
	// Checks and ChecksPassed count the checks run on the responses.
	Checks, ChecksPassed          int64
	RPS                           float64
	P50, P90, P95, P99, P999, Max time.Duration
}

// FailedRate is the share of sent requests that failed: http_req_failed.
func (r Row) FailedRate() float64 {
	if r.Requests == 0 {
		return 0
	}
	return float64(r.Failed) / float64(r.Requests)
}

// ChecksText is the share of checks that passed, or "-" without checks.
func (r Row) ChecksText() string {
	if r.Checks == 0 {
		return "-"
	}
	return pct(float64(r.ChecksPassed) / float64(r.Checks))
}

func row(name string, sum, checks outcome.Summary, secs float64) Row {
	h := sum.Latency
	r := Row{Name: name, Requests: sum.Sent(), Failed: sum.RequestsFailed(),
		Checks: checks.Total, ChecksPassed: checks.ByClass[outcome.ClassOK],
		P50: h.Quantile(0.5), P90: h.Quantile(0.9), P95: h.Quantile(0.95), P99: h.Quantile(0.99),
		P999: h.Quantile(0.999), Max: h.Max()}
	if secs > 0 {
		r.RPS = float64(r.Requests) / secs
	}
	return r
}

// Rows returns the summary table: the whole run, then each request name
// in order of their first appearance in the scenario (sorted when merged
// results lost that order).
func (r *Result) Rows() []Row {
	secs := r.End.Sub(r.Start).Seconds()
	rows := []Row{row("all", r.Requests.Total(), r.Checks.Total(), secs)}
	for _, name := range r.names() {
		var checks outcome.Summary
		for k, c := range r.ByCheck {
			if strings.HasPrefix(k, name+": ") {
				sum := c.Total()
				checks.Total += sum.Total
				checks.ByClass[outcome.ClassOK] += sum.ByClass[outcome.ClassOK]
			}
		}
		rows = append(rows, row(name, r.ByName[name].Total(), checks, secs))
	}
	return rows
}

func (r *Result) names() []string {
	names := make([]string, 0, len(r.ByName))
	for n := range r.ByName {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// ResultText is the judgement's result as the summary prints it:
// "PASSED", "FAILED", "INCONCLUSIVE (exit 5)" ...
func (j Judgement) ResultText() string { return strings.ToUpper(j.Result) }

// WriteSummary writes the end-of-run summary: the latency table overall
// and per request name (with the failed requests and the checks apart),
// service time and scheduling lag in the open model, the generator's
// health, failed requests by class and statuses, checks, the stress
// knee, the thresholds with pass/fail, and the result with its reasons.
func (r *Result) WriteSummary(w io.Writer, j Judgement) error {
	var b strings.Builder
	segs := make([]string, len(r.Segments))
	for i, s := range r.Segments {
		segs[i] = s.String()
	}
	fmt.Fprintf(&b, "scenario %s: %s model", r.Scenario, r.Model)
	if r.Preset != "" {
		fmt.Fprintf(&b, ", %s preset", r.Preset)
	}
	fmt.Fprintf(&b, ", ran %s of %s", outcome.FormatDuration(r.End.Sub(r.Start)), outcome.FormatDuration(r.Duration))
	if len(segs) > 1 || r.Segments[0] != Whole {
		fmt.Fprintf(&b, ", segments %s", strings.Join(segs, " "))
	}
	b.WriteString("\n")
	if r.Stopped != "" {
		fmt.Fprintf(&b, "stopped early: %s\n", r.Stopped)
	}
	if r.Setup != nil {
		fmt.Fprintf(&b, "setup %s: status %d in %s %s\n", r.Setup.Name, r.Setup.Status, outcome.FormatDuration(r.Setup.Latency), r.Setup.Error)
	}
	b.WriteString("\n")

	tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', tabwriter.AlignRight)
	latency := "latency"
	if r.Model == Open {
		latency = "latency from schedule"
	}
	fmt.Fprintf(tw, "%s\treqs\treq/s\tfailed\tchecks\tp50\tp90\tp95\tp99\tp99.9\tmax\t\n", latency)
	for i, row := range r.Rows() {
		name := row.Name
		if i > 0 {
			name = "  " + name
		}
		fmt.Fprintf(tw, "%s\t%d\t%.1f\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", name, row.Requests, row.RPS, pct(row.FailedRate()),
			row.ChecksText(), ms(row.P50), ms(row.P90), ms(row.P95), ms(row.P99), ms(row.P999), ms(row.Max))
	}
	all := r.Requests.Total()
	if r.Model == Open {
		s := all.ServiceTime
		fmt.Fprintf(tw, "service time\t\t\t\t\t%s\t%s\t%s\t%s\t%s\t%s\t\n", ms(s.Quantile(0.5)), ms(s.Quantile(0.9)),
			ms(s.Quantile(0.95)), ms(s.Quantile(0.99)), ms(s.Quantile(0.999)), ms(s.Max()))
		l := r.Lag.Total().Latency
		fmt.Fprintf(tw, "schedule lag\t\t\t\t\t%s\t%s\t%s\t%s\t%s\t%s\t\n", ms(l.Quantile(0.5)), ms(l.Quantile(0.9)),
			ms(l.Quantile(0.95)), ms(l.Quantile(0.99)), ms(l.Quantile(0.999)), ms(l.Max()))
	}
	from, to := r.span()
	for _, m := range PhaseMetrics {
		if h := r.Phases.histogram(m, from, to); h != nil && h.Count() > 0 {
			fmt.Fprintf(tw, "  %s\t\t\t\t\t%s\t%s\t%s\t%s\t%s\t%s\t\n", strings.TrimPrefix(m, "http_req_"), ms(h.Quantile(0.5)), ms(h.Quantile(0.9)),
				ms(h.Quantile(0.95)), ms(h.Quantile(0.99)), ms(h.Quantile(0.999)), ms(h.Max()))
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if err := r.writeJourneys(&b); err != nil {
		return err
	}
	if r.Model == Open {
		fmt.Fprintf(&b, "\nLatency runs from each request's scheduled send time, so a stall delays every\n"+
			"request due during it and shows in the percentiles (no coordinated omission);\n"+
			"service time runs from the actual send. A closed model (VUs) would hide a\n"+
			"stall: its VUs wait and send less, so few slow requests are recorded.\n")
		h := j.Generator
		if r.Journeys != nil {
			fmt.Fprintf(&b, "A user's first request and its journey run from the user's scheduled arrival.\n"+
				"arrivals (users): %d planned, %d started, %d dropped (in-flight cap), %d late (> %s)\n",
				r.Planned, r.Dispatched, r.Dropped, h.Late, outcome.FormatDuration(r.LateAfter))
		} else {
			fmt.Fprintf(&b, "arrivals: %d planned, %d sent, %d dropped (in-flight cap), %d late (> %s)\n",
				r.Planned, all.Sent(), all.ByClass[outcome.ClassDropped], h.Late, outcome.FormatDuration(r.LateAfter))
		}
	} else {
		fmt.Fprintf(&b, "\nVUs: up to %d, %d iterations\n", r.MaxActive, r.Iterations)
	}
	fmt.Fprintf(&b, "generator: %s\n", j.Generator.Text())
	if t := r.Traces; t.Sampled > 0 {
		fmt.Fprintf(&b, "traces: %d requests sent a traceparent, %d of them failed", t.Sampled, t.Failed)
		for i, f := range t.FailedSamples {
			if i == 3 {
				break
			}
			fmt.Fprintf(&b, "; %s %s", f.Name, f.TraceID)
		}
		b.WriteString("\n")
	}
	fmt.Fprintf(&b, "data: %s received, %s sent\n", bytesText(all.BytesIn), bytesText(all.BytesOut))

	if failed := classCounts(all, outcome.Class.RequestFailed); failed != "" {
		rate, _ := all.FailedRate()
		fmt.Fprintf(&b, "failed requests (http_req_failed %s): %s\n", pct(rate), failed)
	}
	codes := r.Requests.StatusCodes()
	var statuses []string
	for _, c := range slices.Sorted(maps.Keys(codes)) {
		statuses = append(statuses, fmt.Sprintf("%d: %d", c, codes[c]))
	}
	if len(statuses) > 0 {
		fmt.Fprintf(&b, "statuses: %s\n", strings.Join(statuses, ", "))
	}
	if len(r.ByCheck) > 0 {
		sum := r.Checks.Total()
		fmt.Fprintf(&b, "checks: %s of %d passed, %d failed\n", Row{Checks: sum.Total, ChecksPassed: sum.ByClass[outcome.ClassOK]}.ChecksText(),
			sum.Total, sum.Total-sum.ByClass[outcome.ClassOK])
		for _, k := range slices.Sorted(maps.Keys(r.ByCheck)) {
			sum := r.ByCheck[k].Total()
			fmt.Fprintf(&b, "  %s  %s of %d passed\n", k, Row{Checks: sum.Total, ChecksPassed: sum.ByClass[outcome.ClassOK]}.ChecksText(), sum.Total)
		}
	}
	if steps := r.StressSteps(); steps != nil {
		b.WriteString("stress steps:\n")
		for _, st := range steps {
			mark := "ok"
			if !st.Passed {
				mark = "FAILED " + strings.Join(st.Failed, ", ")
			}
			fmt.Fprintf(&b, "  step %2d  target %-8g achieved %8.1f req/s  p99 %s  failed %s  %s\n",
				st.Step, st.Target, st.RPS, ms(st.P99), pct(st.ErrorRate), mark)
		}
		switch k := r.Knee(); {
		case k.Found && k.LastGood != nil:
			fmt.Fprintf(&b, "knee: between step %d (target %g, %.1f req/s, held) and step %d (target %g, failed)\n",
				k.LastGood.Step, k.LastGood.Target, k.LastGood.RPS, k.Step.Step, k.Step.Target)
		case k.Found:
			fmt.Fprintf(&b, "knee: below step 1 (target %g already failed)\n", k.Step.Target)
		default:
			b.WriteString("knee: not reached; every step held\n")
		}
	}
	if len(j.Thresholds) > 0 {
		b.WriteString("thresholds:\n")
		for _, v := range j.Thresholds {
			mark := "pass"
			if !v.Passed {
				mark = "FAIL"
				if j.Result == Inconclusive {
					mark = "FAIL (not judged)"
				}
			}
			fmt.Fprintf(&b, "  %s  %s  %s\n", mark, v, v.ValueText())
		}
	}
	fmt.Fprintf(&b, "\nresult: %s\n", j.ResultText())
	for _, reason := range j.Reasons {
		fmt.Fprintf(&b, "  %s\n", reason)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func ms(d time.Duration) string {
	switch {
	case d >= 10*time.Second:
		return fmt.Sprintf("%.1fs", d.Seconds())
	case d >= time.Millisecond:
		return fmt.Sprintf("%.2fms", float64(d)/float64(time.Millisecond))
	}
	return fmt.Sprintf("%dµs", d/time.Microsecond)
}

func pct(f float64) string { return fmt.Sprintf("%.2f%%", f*100) }

func bytesText(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}
