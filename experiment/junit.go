package experiment

import (
	"fmt"

	"github.com/relia-dev/relia/internal/junit"
)

// JUnit is the verdict of a run of p as a JUnit test suite, for CI
// systems: the load generator's self-check (an error when the run is
// inconclusive), the abort that ended the run (an error), each SLO over
// the run and each threshold of the run and its phases, failed when the
// verdict failed it and skipped when an inconclusive run did not judge it.
// The SLIs, budgets and values are written as the terminal summary
// writes them.
func JUnit(p *Plan, v *Verdict) junit.Suite {
	class := "relia.run." + p.Name
	s := junit.Suite{Name: p.Name, Time: v.Run.To.Sub(v.Run.From).Seconds(), Timestamp: v.Run.From.UTC().Format("2006-01-02T15:04:05")}
	judge := func(c junit.Case, ok bool, observed string) junit.Case {
		switch {
		case ok:
		case v.Inconclusive:
			c.Skipped = &junit.Problem{Message: "not judged: the run is inconclusive; " + observed}
		default:
			c.Failure = &junit.Problem{Message: c.Name + " failed: " + observed, Type: "verdict"}
		}
		c.SystemOut = observed
		return c
	}
	if g := v.Generator; g != nil {
		c := junit.Case{Name: "generator kept its schedule", Classname: class, SystemOut: g.text()}
		if v.Inconclusive {
			c.Error = &junit.Problem{Message: "inconclusive: " + g.Reason, Type: "inconclusive"}
		}
		s.Cases = append(s.Cases, c)
	}
	if a := v.Abort; a != nil {
		s.Cases = append(s.Cases, junit.Case{Name: "not aborted", Classname: class,
			Error: &junit.Problem{Message: fmt.Sprintf("aborted in %s by %s: %s", a.Phase, a.Condition, a.Reason), Type: "aborted"}})
	}
	for _, e := range v.Run.SLOs {
		observed := fmt.Sprintf("SLI %s, objective %s, budget spent %s", pct(e.SLI), pctObjective(p, e.ID), pct(e.BudgetSpent))
		s.Cases = append(s.Cases, judge(junit.Case{Name: "slo " + e.ID, Classname: class}, e.Met, observed))
	}
	for _, pv := range append([]PhaseVerdict{v.Run}, v.Phases...) {
		for _, t := range pv.Thresholds {
			s.Cases = append(s.Cases, judge(junit.Case{Name: t.Threshold + " in " + pv.Name, Classname: class}, t.Passed, t.Observed))
		}
	}
	return s
}
