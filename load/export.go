package load

import (
	"fmt"
	"io"
	"strings"

	"github.com/relia-dev/relia/internal/junit"
)

// JUnit is the judgement j of the result as a JUnit test suite, for CI
// systems: the generator's self-check first (an error when the run is
// inconclusive), then one case per threshold, failed with its value when
// it failed, skipped when an inconclusive run did not judge it. The
// values are the terminal's and the results file's (ValueText).
func (r *Result) JUnit(j Judgement) junit.Suite {
	class := "relia.load." + r.Scenario
	s := junit.Suite{Name: r.Scenario, Time: r.End.Sub(r.Start).Seconds(), Timestamp: r.Start.UTC().Format("2006-01-02T15:04:05")}
	gen := junit.Case{Name: "generator kept its schedule", Classname: class, SystemOut: j.Generator.Text()}
	if !j.Generator.Conclusive {
		gen.Error = &junit.Problem{Message: "inconclusive: " + j.Generator.Reason, Type: "inconclusive", Text: j.Generator.Text()}
	}
	s.Cases = append(s.Cases, gen)
	for _, v := range j.Thresholds {
		c := junit.Case{Name: v.String(), Classname: class, SystemOut: v.String() + ": " + v.ValueText()}
		switch {
		case v.Passed:
		case j.Result == Inconclusive:
			c.Skipped = &junit.Problem{Message: "not judged: the run is inconclusive; the value was " + v.ValueText()}
		default:
			c.Failure = &junit.Problem{Message: fmt.Sprintf("%s failed: %s", v, v.ValueText()), Type: "threshold",
				Text: fmt.Sprintf("threshold %s; observed %s", v, v.ValueText())}
		}
		s.Cases = append(s.Cases, c)
	}
	if len(j.Thresholds) == 0 && j.Result == Failed {
		// Judged failed without thresholds: every request failed.
		s.Cases = append(s.Cases, junit.Case{Name: "requests", Classname: class,
			Failure: &junit.Problem{Message: strings.Join(j.Reasons, "; "), Type: "requests"}})
	}
	return s
}

// WriteJUnit writes the judgement j of the result as a JUnit XML report.
func (r *Result) WriteJUnit(w io.Writer, j Judgement) error {
	return junit.Write(w, junit.Suites{Name: "relia load", Suites: []junit.Suite{r.JUnit(j)}})
}

// SummaryExport is the document --summary-export writes: the metrics in
// the shape of k6's end-of-test summary data (the "metrics" k6 passes to
// handleSummary), the run's length, and relia's result. The metrics are
// SummaryMetrics, the "metrics" of the results file, so every figure is
// the one the terminal, the results file and the thresholds show.
type SummaryExport struct {
	Metrics map[string]MetricSummary `json:"metrics"`
	// DurationMS is the length of the run in milliseconds.
	DurationMS float64 `json:"duration_ms"`
	// Result is passed, failed, inconclusive or interrupted; Reasons say
	// why when it is not passed.
	Result  string   `json:"result"`
	Reasons []string `json:"reasons"`
}

// Export returns the summary export of the result judged as j.
func (r *Result) Export(j Judgement) SummaryExport {
	reasons := j.Reasons
	if reasons == nil {
		reasons = []string{}
	}
	return SummaryExport{Metrics: r.SummaryMetrics(j.Thresholds), Result: j.Result, Reasons: reasons,
		DurationMS: float64(r.End.Sub(r.Start).Microseconds()) / 1000}
}

// WriteSummaryExport writes the summary export of the result judged as j
// as JSON, comparisons unescaped as in the results file.
func (r *Result) WriteSummaryExport(w io.Writer, j Judgement) error {
	data, err := marshalPlain(r.Export(j))
	if err != nil {
		return fmt.Errorf("writing summary export: %w", err)
	}
	if _, err := w.Write(append(data, '\n')); err != nil {
		return fmt.Errorf("writing summary export: %w", err)
	}
	return nil
}
