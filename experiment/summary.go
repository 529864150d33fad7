package experiment

import (
	"fmt"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/relia-dev/relia/internal/config"
	"github.com/relia-dev/relia/outcome"
)

// Summary writes the terminal summary of a run: the outcome, the SLOs
// over the run, a line per phase with its change from the baseline, what
// each fault did, the thresholds and the scorecard. It is plain text,
// the same for the same inputs.
func Summary(p *Plan, v *Verdict, sc Scorecard) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %s, grade %s (exit %d)\n", p.Name, outcomeText(v), sc.Grade, v.ExitCode)
	faults := fmt.Sprintf("%d faults", len(v.Faults))
	if len(v.NotStarted) > 0 {
		faults += fmt.Sprintf(" (%d more not started)", len(v.NotStarted))
	}
	fmt.Fprintf(&b, "seed %d, ran %s of %s, %d phases, %s\n", p.Seed, fmtObserved(v.Run.To.Sub(v.Run.From)), fmtDur(p.Total), len(v.Phases), faults)
	if v.Inconclusive {
		fmt.Fprintf(&b, "inconclusive: %s\nthe SLOs and thresholds below are reported, not judged.\n", v.Generator.Reason)
	}
	if v.Error != "" {
		fmt.Fprintf(&b, "the run broke: %s\n", v.Error)
	}
	if v.Generator != nil {
		fmt.Fprintf(&b, "generator: %s\n", v.Generator.text())
	}

	b.WriteString("\nSLOs over the run:\n")
	tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  slo\tobjective\tSLI\tbudget spent\tresult")
	for _, e := range v.Run.SLOs {
		s, _ := p.SLO(e.ID)
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\n", e.ID, config.Ratio(s.Objective), pct(e.SLI), pct(e.BudgetSpent), judged(e.Met, v))
	}
	tw.Flush()

	b.WriteString("\nphases:\n")
	tw = tabwriter.NewWriter(&b, 0, 4, 2, ' ', tabwriter.AlignRight)
	header := "  phase\tat\trequests\treq/s\tfailed\tp50\tp95\tp99\t"
	for _, s := range p.SLOs {
		header += s.ID + "\t"
	}
	fmt.Fprintln(tw, header+"vs baseline\t")
	for _, pv := range append(v.Phases, v.Run) {
		at := fmtDur(pv.From.Sub(v.Run.From))
		if pv.Name == "run" {
			at = ""
		}
		st := pv.Stats
		row := fmt.Sprintf("  %s\t%s\t%d\t%.1f\t%s\t%s\t%s\t%s\t", pv.Name, at, st.Requests, st.Throughput, pct(st.ErrorRate), latency(st.P50), latency(st.P95), latency(st.P99))
		for _, e := range pv.SLOs {
			mark := ""
			if !e.Met {
				mark = " MISS"
			}
			row += pct(e.SLI) + mark + "\t"
		}
		fmt.Fprintln(tw, row+comparisonText(pv, v.Baseline)+"\t")
	}
	tw.Flush()

	if len(v.Tenants) > 0 {
		b.WriteString("\ntenants (their llm calls; a quota refusal counts as answered, not failed):\n")
		tw = tabwriter.NewWriter(&b, 0, 4, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "  "+strings.Join(tenantColumns, "\t")+"\t")
		for _, c := range v.Tenants {
			fmt.Fprintln(tw, "  "+strings.Join(tenantRow(c), "\t")+"\t")
		}
		tw.Flush()
	}

	if len(v.Faults)+len(v.NotStarted) > 0 {
		b.WriteString("\nfaults:\n")
		for _, f := range v.Faults {
			fmt.Fprintf(&b, "  %s (%s, %s-%s): %s\n", f.Name, f.Phase, fmtObserved(f.Start.Sub(v.Run.From)), fmtObserved(f.End.Sub(v.Run.From)), faultText(f))
		}
		for _, name := range v.NotStarted {
			fmt.Fprintf(&b, "  %s: not started\n", name)
		}
	}

	var th []string
	for _, pv := range append([]PhaseVerdict{v.Run}, v.Phases...) {
		for _, t := range pv.Thresholds {
			th = append(th, fmt.Sprintf("  %s %s in %s: %s", judged(t.Passed, v), t.Threshold, pv.Name, t.Observed))
		}
	}
	if len(th) > 0 {
		b.WriteString("\nthresholds:\n" + strings.Join(th, "\n") + "\n")
	}
	if v.Abort != nil {
		fmt.Fprintf(&b, "\naborted at %s by %s: %s\n", fmtObserved(v.Abort.At.Sub(v.Run.From)), v.Abort.Condition, v.Abort.Reason)
	}

	if sc.Grade == GradeNone {
		b.WriteString("\nscorecard: - (not graded: the run is inconclusive)\n")
	} else {
		fmt.Fprintf(&b, "\nscorecard: %s\n", sc.Grade)
	}
	for _, r := range sc.Results {
		line := fmt.Sprintf("  %s %s", passFail(r.Passed), r.ID)
		if !r.Passed {
			line += fmt.Sprintf(" (at most %s): %s", r.Cap, r.Detail)
		}
		b.WriteString(line + "\n")
	}
	return b.String()
}

// outcomeText is the verdict in one word: PASSED, FAILED, ABORTED or
// INCONCLUSIVE.
func outcomeText(v *Verdict) string {
	switch {
	case v.Aborted:
		return "ABORTED"
	case v.Inconclusive:
		return "INCONCLUSIVE"
	case v.Error != "":
		return "ERROR"
	case !v.Passed:
		return "FAILED"
	}
	return "PASSED"
}

// judged is passFail for what the verdict judges: in an inconclusive run
// a miss is reported as "miss (not judged)", not as a failure.
func judged(ok bool, v *Verdict) string {
	if !ok && v.Inconclusive {
		return "miss (not judged)"
	}
	return passFail(ok)
}

func passFail(ok bool) string {
	if ok {
		return "pass"
	}
	return "FAIL"
}

// fmtObserved writes a measured time rounded for people: "9.87s".
func fmtObserved(d time.Duration) string { return outcome.FormatDuration(d) }

// latency writes a latency in milliseconds with one decimal.
func latency(d time.Duration) string { return fmt.Sprintf("%.1fms", ms(d)) }

func comparisonText(pv PhaseVerdict, baseline string) string {
	c := pv.Comparison
	if c == nil {
		if pv.Name == baseline {
			return "(baseline)"
		}
		return ""
	}
	return "p99 " + changeText(c.P99, 1, "ms") + ", errors " + changeText(c.ErrorRate, 100, "%")
}

// changeText writes a change as "+200.0ms [195.1, 204.9]".
func changeText(c Change, scale float64, unit string) string {
	s := fmt.Sprintf("%+.1f%s", c.Delta*scale, unit)
	if c.HasInterval {
		s += fmt.Sprintf(" [%+.1f, %+.1f]", c.Low*scale, c.High*scale)
	}
	return s
}

func faultText(f FaultVerdict) string {
	var parts []string
	if len(f.Breached) == 0 {
		parts = append(parts, "no SLO breached")
	} else {
		parts = append(parts, "breached "+strings.Join(f.Breached, ", "))
	}
	var det []string
	for _, d := range f.Detections {
		if !slices.Contains(f.Breached, d.SLO) {
			continue // an alert on an SLO the fault did not hurt detected nothing of it
		}
		switch {
		case d.AlreadyFiring:
			det = append(det, fmt.Sprintf("%s %s already firing", d.SLO, d.Severity))
		case d.Detected:
			det = append(det, fmt.Sprintf("%s %s in %s", d.SLO, d.Severity, fmtObserved(d.Time)))
		}
	}
	if len(det) > 0 {
		parts = append(parts, "detected by "+strings.Join(det, ", "))
	} else if len(f.Breached) > 0 {
		parts = append(parts, "NOT DETECTED")
	}
	var rec []string
	for _, r := range f.Recoveries {
		switch {
		case r.Recovered:
			rec = append(rec, fmt.Sprintf("%s in %s", r.SLO, fmtObserved(r.Time)))
		case !r.Observed:
			rec = append(rec, r.SLO+" not observed (the run ended first)")
		default:
			rec = append(rec, r.SLO+" NOT RECOVERED")
		}
	}
	parts = append(parts, "recovered "+strings.Join(rec, ", "))
	return strings.Join(parts, "; ")
}
