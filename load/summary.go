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
	Name                          string
	Requests                      int64 // sent (dropped arrivals excluded)
	Failed                        int64 // transport, status and check failures
	RPS                           float64
	P50, P90, P95, P99, P999, Max time.Duration
}

// ErrorRate is the share of sent requests that failed.
func (r Row) ErrorRate() float64 {
	if r.Requests == 0 {
		return 0
	}
	return float64(r.Failed) / float64(r.Requests)
}

func row(name string, sum outcome.Summary, h *outcome.Histogram, secs float64) Row {
	sent := sum.Total - sum.ByClass[outcome.ClassDropped]
	r := Row{Name: name, Requests: sent, Failed: sent - sum.ByClass[outcome.ClassOK],
		P50: h.Quantile(0.5), P90: h.Quantile(0.9), P95: h.Quantile(0.95), P99: h.Quantile(0.99),
		P999: h.Quantile(0.999), Max: h.Max()}
	if secs > 0 {
		r.RPS = float64(sent) / secs
	}
	return r
}

// Rows returns the summary table: the whole run, then each request name
// in order of their first appearance in the scenario (sorted when merged
// results lost that order).
func (r *Result) Rows() []Row {
	secs := r.End.Sub(r.Start).Seconds()
	all := r.Requests.Total()
	rows := []Row{row("all", all, all.Latency, secs)}
	for _, name := range r.names() {
		sum := r.ByName[name].Total()
		rows = append(rows, row(name, sum, sum.Latency, secs))
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

// WriteSummary writes the end-of-run summary: the latency table overall
// and per request name, service time and scheduling lag in the open
// model, errors by class and status, checks, the stress knee, and the
// thresholds with pass/fail.
func (r *Result) WriteSummary(w io.Writer, verdict []ThresholdResult) error {
	var b strings.Builder
	segs := make([]string, len(r.Segments))
	for i, s := range r.Segments {
		segs[i] = s.String()
	}
	fmt.Fprintf(&b, "scenario %s: %s model", r.Scenario, r.Model)
	if r.Preset != "" {
		fmt.Fprintf(&b, ", %s preset", r.Preset)
	}
	fmt.Fprintf(&b, ", ran %s of %s", r.End.Sub(r.Start).Round(time.Millisecond), r.Duration)
	if len(segs) > 1 || r.Segments[0] != Whole {
		fmt.Fprintf(&b, ", segments %s", strings.Join(segs, " "))
	}
	b.WriteString("\n")
	if r.Stopped != "" {
		fmt.Fprintf(&b, "stopped early: %s\n", r.Stopped)
	}
	if r.Setup != nil {
		fmt.Fprintf(&b, "setup %s: status %d in %s %s\n", r.Setup.Name, r.Setup.Status, r.Setup.Latency.Round(time.Microsecond), r.Setup.Error)
	}
	b.WriteString("\n")

	tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', tabwriter.AlignRight)
	latency := "latency"
	if r.Model == Open {
		latency = "latency from schedule"
	}
	fmt.Fprintf(tw, "%s\treqs\treq/s\terrors\tp50\tp90\tp95\tp99\tp99.9\tmax\t\n", latency)
	for i, row := range r.Rows() {
		name := row.Name
		if i > 0 {
			name = "  " + name
		}
		fmt.Fprintf(tw, "%s\t%d\t%.1f\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", name, row.Requests, row.RPS, pct(row.ErrorRate()),
			ms(row.P50), ms(row.P90), ms(row.P95), ms(row.P99), ms(row.P999), ms(row.Max))
	}
	all := r.Requests.Total()
	if r.Model == Open {
		s := all.ServiceTime
		fmt.Fprintf(tw, "service time\t\t\t\t%s\t%s\t%s\t%s\t%s\t%s\t\n", ms(s.Quantile(0.5)), ms(s.Quantile(0.9)),
			ms(s.Quantile(0.95)), ms(s.Quantile(0.99)), ms(s.Quantile(0.999)), ms(s.Max()))
		l := r.Lag.Total().Latency
		fmt.Fprintf(tw, "schedule lag\t\t\t\t%s\t%s\t%s\t%s\t%s\t%s\t\n", ms(l.Quantile(0.5)), ms(l.Quantile(0.9)),
			ms(l.Quantile(0.95)), ms(l.Quantile(0.99)), ms(l.Quantile(0.999)), ms(l.Max()))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if r.Model == Open {
		fmt.Fprintf(&b, "\nLatency runs from each request's scheduled send time, so a stall delays every\n"+
			"request due during it and shows in the percentiles (no coordinated omission);\n"+
			"service time runs from the actual send. A closed model (VUs) would hide a\n"+
			"stall: its VUs wait and send less, so few slow requests are recorded.\n")
		fmt.Fprintf(&b, "arrivals: %d planned, %d sent, %d dropped (in-flight cap), %d late (> %s)\n",
			r.Planned, all.Total-all.ByClass[outcome.ClassDropped], all.ByClass[outcome.ClassDropped],
			r.Lag.Total().Latency.Count()-r.Lag.Total().Latency.CountAtOrBelow(r.LateAfter), r.LateAfter)
	} else {
		fmt.Fprintf(&b, "\nVUs: up to %d, %d iterations\n", r.MaxActive, r.Iterations)
	}
	fmt.Fprintf(&b, "data: %s received, %s sent\n", bytesText(all.BytesIn), bytesText(all.BytesOut))

	var classes []string
	for c, n := range all.ByClass {
		if n > 0 && outcome.Class(c) != outcome.ClassOK && outcome.Class(c) != outcome.ClassDropped {
			classes = append(classes, fmt.Sprintf("%s %d", outcome.Class(c), n))
		}
	}
	if len(classes) > 0 {
		fmt.Fprintf(&b, "errors: %s\n", strings.Join(classes, ", "))
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
		b.WriteString("checks:\n")
		for _, k := range slices.Sorted(maps.Keys(r.ByCheck)) {
			sum := r.ByCheck[k].Total()
			rate := 0.0
			if sum.Total > 0 {
				rate = float64(sum.ByClass[outcome.ClassOK]) / float64(sum.Total)
			}
			fmt.Fprintf(&b, "  %s  %s of %d passed\n", k, pct(rate), sum.Total)
		}
	}
	if steps := r.StressSteps(); steps != nil {
		b.WriteString("stress steps:\n")
		for _, st := range steps {
			mark := "ok"
			if !st.Passed {
				mark = "FAILED " + strings.Join(st.Failed, ", ")
			}
			fmt.Fprintf(&b, "  step %2d  target %-8g achieved %8.1f req/s  p99 %s  errors %s  %s\n",
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
	if len(verdict) > 0 {
		b.WriteString("thresholds:\n")
		for _, v := range verdict {
			mark := "pass"
			if !v.Passed {
				mark = "FAIL"
			}
			val := formatValue(v.Threshold, v.Value)
			if v.NoData {
				val = "no data"
			}
			if v.Threshold.Window > 0 && v.Windows > 0 {
				val += fmt.Sprintf(" (%d of %d windows failed)", v.FailedWindows, v.Windows)
			}
			fmt.Fprintf(&b, "  %s  %s  %s\n", mark, v, val)
		}
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
