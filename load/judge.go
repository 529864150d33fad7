package load

import (
	"fmt"
	"slices"
	"strings"

	"github.com/relia-dev/relia/outcome"
)

// The results of a judgement, from the best to the one that overrides
// the others: a run is judged only when its generator kept its schedule.
const (
	// Passed: every threshold held and something succeeded.
	Passed = "passed"
	// Interrupted: the run was stopped (Ctrl-C, SIGTERM) before the end of
	// its profile, and nothing failed in what it sent.
	Interrupted = "interrupted"
	// Failed: a threshold failed, or every request failed while no
	// threshold on http_req_failed said what to make of that.
	Failed = "failed"
	// Inconclusive: the generator could not keep its own schedule, so the
	// service's figures are reported but not judged.
	Inconclusive = "inconclusive"
)

// Judgement is what a run's figures say: the one result every output
// (summary, results file, HTML report, exit code) reports, with why.
type Judgement struct {
	// Result is Passed, Interrupted, Failed or Inconclusive.
	Result string
	// Thresholds are the test's thresholds as judged on the result; when
	// the result is Inconclusive they are reported but do not fail it.
	Thresholds []ThresholdResult
	// Generator is the generator's judgement of itself.
	Generator Health
	// Reasons say why the result is not Passed, one sentence each.
	Reasons []string
}

// Health judges the generator of the result (see Health).
func (r *Result) Health() Health {
	all := r.Requests.Total()
	h := judgeHealth(r.Model, r.Lag.Total(), all.ByClass[outcome.ClassDropped], r.LateAfter, r.MinOnTime, r.Generator)
	if !h.Conclusive {
		h.Reason += "; " + LoadAdvice
	}
	return h
}

// Judge judges the result: the generator first, then the thresholds,
// then the rule that a run in which every request failed fails unless a
// threshold on http_req_failed says what that means to its user.
func (r *Result) Judge() Judgement {
	j := Judgement{Result: Passed, Thresholds: r.Evaluate(), Generator: r.Health()}
	var failed []string
	for _, tr := range j.Thresholds {
		if !tr.Passed {
			failed = append(failed, fmt.Sprintf("threshold %s failed: %s", tr, FormatValue(tr.Threshold, tr.Value)))
		}
	}
	all := r.Requests.Total()
	judgedFailures := !slices.ContainsFunc(r.Thresholds, func(th Threshold) bool { return th.Metric == "http_req_failed" })
	switch {
	case !j.Generator.Conclusive:
		j.Result = Inconclusive
		j.Reasons = append(j.Reasons, j.Generator.Reason)
		for _, f := range failed {
			j.Reasons = append(j.Reasons, "not judged: "+f)
		}
	case len(failed) > 0:
		j.Result = Failed
		j.Reasons = failed
	case judgedFailures && all.Sent() > 0 && all.RequestsFailed() == all.Sent():
		j.Result = Failed
		j.Reasons = append(j.Reasons, fmt.Sprintf("every request failed (%d of %d: %s); a threshold on http_req_failed decides instead when that is what the test expects",
			all.RequestsFailed(), all.Sent(), classCounts(all, outcome.Class.RequestFailed)))
	case r.Stopped == "interrupted":
		j.Result = Interrupted
		j.Reasons = append(j.Reasons, "interrupted before the end of the profile")
	}
	return j
}

// classCounts lists the counts of the classes keep accepts: "refused 12,
// timeout 3".
func classCounts(sum outcome.Summary, keep func(outcome.Class) bool) string {
	var parts []string
	for c, n := range sum.ByClass {
		if n > 0 && keep(outcome.Class(c)) {
			parts = append(parts, fmt.Sprintf("%s %d", outcome.Class(c), n))
		}
	}
	return strings.Join(parts, ", ")
}
