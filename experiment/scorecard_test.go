package experiment

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestDocListsEveryRule: docs/experiment.md holds the rules table as the
// code generates it, so the documented rules are the applied ones.
func TestDocListsEveryRule(t *testing.T) {
	t.Parallel()
	doc, err := os.ReadFile(filepath.Join("..", "docs", "experiment.md"))
	if err != nil {
		t.Fatal(err)
	}
	const begin, end = "<!-- scorecard rules: generated from experiment.Rules -->\n", "<!-- end of scorecard rules -->"
	_, rest, ok := strings.Cut(string(doc), begin)
	table, _, ok2 := strings.Cut(rest, end)
	if !ok || !ok2 {
		t.Fatalf("docs/experiment.md lacks the markers %q and %q", begin, end)
	}
	if table != RulesMarkdown() {
		t.Errorf("docs/experiment.md's rules table is not the code's; replace it with:\n%s", RulesMarkdown())
	}
	for _, r := range Rules {
		if !strings.Contains(table, "`"+r.ID+"`") || r.check == nil {
			t.Errorf("rule %s is not documented or has no check", r.ID)
		}
	}
}

// TestScoreTakesTheLowestCap: each failing rule caps the grade; the
// lowest cap wins.
func TestScoreTakesTheLowestCap(t *testing.T) {
	t.Parallel()
	p := &Plan{Recovery: Recovery{Window: DefaultRecoveryWindow, Bound: 10e9}}
	healthy := func() *Verdict {
		return &Verdict{Run: PhaseVerdict{Name: "run", Stats: Stats{Requests: 10}}}
	}
	cases := []struct {
		name   string
		mutate func(v *Verdict)
		want   Grade
	}{
		{"nothing wrong", func(*Verdict) {}, GradeA},
		{"slow recovery", func(v *Verdict) {
			v.Faults = []FaultVerdict{{Name: "f", Recoveries: []RecoveryTime{{SLO: "s", Recovered: true, Time: 20e9}}}}
		}, GradeC},
		{"undetected breach", func(v *Verdict) {
			v.Faults = []FaultVerdict{{Name: "f", Breached: []string{"s"}, Detections: []Detection{{SLO: "s", Severity: "page"}}}}
		}, GradeC},
		{"not recovered and undetected", func(v *Verdict) {
			v.Faults = []FaultVerdict{{Name: "f", Breached: []string{"s"}, Recoveries: []RecoveryTime{{SLO: "s"}}}}
		}, GradeD},
		{"failed threshold", func(v *Verdict) {
			v.Phases = []PhaseVerdict{{Name: "spike", Thresholds: []ThresholdResult{{Threshold: "http_reqs:count>1"}}}}
		}, GradeD},
		{"no traffic", func(v *Verdict) { v.Run.Stats.Requests = 0 }, GradeF},
	}
	for _, tc := range cases {
		v := healthy()
		tc.mutate(v)
		if sc := Score(p, v); sc.Grade != tc.want || len(sc.Results) != len(Rules) {
			t.Errorf("%s: grade %s, want %s (%+v)", tc.name, sc.Grade, tc.want, sc.Results)
		}
	}
}
