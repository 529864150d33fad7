package experiment

import (
	"fmt"
	"strings"
)

// Grade is a scorecard grade, A (best) to F.
type Grade string

// Grades, best first.
const (
	GradeA Grade = "A"
	GradeB Grade = "B"
	GradeC Grade = "C"
	GradeD Grade = "D"
	GradeF Grade = "F"
	// GradeNone is the grade of an inconclusive run: the load generator
	// could not keep its schedule, so the service was not graded.
	GradeNone Grade = "-"
)

// worse reports whether g is a lower grade than h.
func (g Grade) worse(h Grade) bool { return g > h }

// Rule is one scorecard rule: a check on the verdict's figures and the
// grade a run cannot rise above when the check fails. Rules is the one
// table both the code and docs/experiment.md follow.
type Rule struct {
	// ID names the rule in the scorecard and the docs.
	ID string
	// Cap is the best grade a run that fails the rule can get.
	Cap Grade
	// Rule says what must hold, as the docs print it.
	Rule string
	// check judges the verdict and says why it failed.
	check func(p *Plan, v *Verdict) (ok bool, why string)
}

// Rules are the scorecard's rules, from the most to the least severe. A
// run's grade is the lowest Cap among the rules it fails, A when it
// fails none, and "-" (GradeNone) when the run is inconclusive. Every
// rule reads the verdict's figures only.
var Rules = []Rule{
	{ID: "traffic", Cap: GradeF, Rule: "The run sent requests: a run without traffic proves nothing.", check: checkTraffic},
	{ID: "no-abort", Cap: GradeF, Rule: "No abort condition ended the run.", check: checkNoAbort},
	{ID: "baseline-steady", Cap: GradeD, Rule: "Every SLO met its objective in the baseline phase, so the steady state held before any fault.", check: checkBaseline},
	{ID: "run-slos", Cap: GradeD, Rule: "Every SLO met its objective over the whole run.", check: checkRunSLOs},
	{ID: "thresholds", Cap: GradeD, Rule: "Every threshold held, over the run and in its phase.", check: checkThresholds},
	{ID: "recovered", Cap: GradeD, Rule: "After every fault, every SLO's SLI came back within its objective over the recovery window before the run ended (a run cut short by an abort or a signal is not held to the recoveries it did not see).", check: checkRecovered},
	{ID: "detected", Cap: GradeC, Rule: "Every fault that breached an SLO (it was blamed for the SLO's bad seconds) was detected by one of that SLO's burn-rate alerts (page or ticket) by one bucket after the fault ended.", check: checkDetected},
	{ID: "recovery-bound", Cap: GradeC, Rule: "Every recovery took no longer than the recovery bound (spec.recovery.bound, default 30s).", check: checkRecoveryBound},
	{ID: "phase-slos", Cap: GradeB, Rule: "Every SLO met its objective in every phase, faults included.", check: checkPhaseSLOs},
}

// Scorecard is the grade of a run and the result of every rule.
type Scorecard struct {
	Grade   Grade        `json:"grade"`
	Results []RuleResult `json:"results"`
}

// RuleResult is one rule applied to a run.
type RuleResult struct {
	ID     string `json:"id"`
	Cap    Grade  `json:"cap"`
	Passed bool   `json:"passed"`
	// Detail says why the rule failed.
	Detail string `json:"detail,omitempty"`
}

// Score grades a run's verdict by Rules. An inconclusive run gets
// GradeNone: its rules are applied and reported, but the figures they
// read carry the load generator's lateness, so they grade nothing.
func Score(p *Plan, v *Verdict) Scorecard {
	sc := Scorecard{Grade: GradeA, Results: []RuleResult{}}
	for _, r := range Rules {
		ok, why := r.check(p, v)
		sc.Results = append(sc.Results, RuleResult{ID: r.ID, Cap: r.Cap, Passed: ok, Detail: why})
		if !ok && r.Cap.worse(sc.Grade) {
			sc.Grade = r.Cap
		}
	}
	if v.Inconclusive {
		sc.Grade = GradeNone
	}
	return sc
}

// RulesMarkdown writes Rules as the table docs/experiment.md holds.
func RulesMarkdown() string {
	var b strings.Builder
	b.WriteString("| rule | grade at most, when it fails | what must hold |\n|---|---|---|\n")
	for _, r := range Rules {
		fmt.Fprintf(&b, "| `%s` | %s | %s |\n", r.ID, r.Cap, r.Rule)
	}
	return b.String()
}

func checkTraffic(_ *Plan, v *Verdict) (bool, string) {
	if v.Run.Stats.Requests == 0 {
		return false, "no requests were recorded"
	}
	return true, ""
}

func checkNoAbort(_ *Plan, v *Verdict) (bool, string) {
	if v.Abort != nil {
		return false, fmt.Sprintf("%s aborted the run in %s: %s", v.Abort.Condition, v.Abort.Phase, v.Abort.Reason)
	}
	return true, ""
}

func checkBaseline(_ *Plan, v *Verdict) (bool, string) {
	for _, pv := range v.Phases {
		if pv.Name == v.Baseline {
			return slosMet(pv, "in the baseline")
		}
	}
	return true, ""
}

func checkRunSLOs(_ *Plan, v *Verdict) (bool, string) { return slosMet(v.Run, "over the run") }

func checkPhaseSLOs(_ *Plan, v *Verdict) (bool, string) {
	var why []string
	for _, pv := range v.Phases {
		if ok, w := slosMet(pv, "in "+pv.Name); !ok {
			why = append(why, w)
		}
	}
	return len(why) == 0, strings.Join(why, "; ")
}

// slosMet checks every SLO of a span and lists the ones that missed.
func slosMet(pv PhaseVerdict, where string) (bool, string) {
	var missed []string
	for _, e := range pv.SLOs {
		if !e.Met {
			missed = append(missed, fmt.Sprintf("%s at %s", e.ID, pct(e.SLI)))
		}
	}
	if len(missed) > 0 {
		return false, strings.Join(missed, ", ") + " " + where
	}
	return true, ""
}

func checkThresholds(_ *Plan, v *Verdict) (bool, string) {
	var failed []string
	for _, pv := range append([]PhaseVerdict{v.Run}, v.Phases...) {
		for _, t := range pv.Thresholds {
			if !t.Passed {
				failed = append(failed, t.Threshold+" in "+pv.Name)
			}
		}
	}
	return len(failed) == 0, strings.Join(failed, ", ")
}

// checkRecovered fails for every recovery that did not happen, and for
// every recovery the plan left no time to observe; a run that an abort or
// a signal ended early is not blamed for the recoveries it cut short (the
// no-abort rule grades that), nor for faults that never started.
func checkRecovered(_ *Plan, v *Verdict) (bool, string) {
	var not, unseen []string
	for _, f := range v.Faults {
		for _, r := range f.Recoveries {
			switch {
			case r.Recovered:
			case r.Observed:
				not = append(not, r.SLO+" after "+f.Name)
			case !v.Aborted:
				unseen = append(unseen, r.SLO+" after "+f.Name)
			}
		}
	}
	var why []string
	if len(not) > 0 {
		why = append(why, "not recovered: "+strings.Join(not, ", "))
	}
	if len(unseen) > 0 {
		why = append(why, "not observed, the run ended first: "+strings.Join(unseen, ", "))
	}
	return len(why) == 0, strings.Join(why, "; ")
}

func checkDetected(_ *Plan, v *Verdict) (bool, string) {
	var missed []string
	for _, f := range v.Faults {
		if !f.Detected() {
			missed = append(missed, fmt.Sprintf("%s (breached %s)", f.Name, strings.Join(f.Breached, ", ")))
		}
	}
	if len(missed) > 0 {
		return false, "no alert fired for " + strings.Join(missed, ", ")
	}
	return true, ""
}

func checkRecoveryBound(p *Plan, v *Verdict) (bool, string) {
	var slow []string
	for _, f := range v.Faults {
		for _, r := range f.Recoveries {
			if r.Recovered && r.Time > p.Recovery.Bound {
				slow = append(slow, fmt.Sprintf("%s took %s after %s", r.SLO, fmtDur(r.Time), f.Name))
			}
		}
	}
	if len(slow) > 0 {
		return false, strings.Join(slow, ", ") + " (bound " + fmtDur(p.Recovery.Bound) + ")"
	}
	return true, ""
}
