package experiment_test

import (
	"context"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/relia-dev/relia/experiment"
	"github.com/relia-dev/relia/report/reporttest"
)

// shortDemo and shortRate are the demo's short mode for tests: every
// phase a second or two, at a third of the demo's rate (2 users a
// second, some 6 requests), so that the runs stay far from saturating a
// loaded two-core machine under -race.
const (
	shortDemo = 12 * time.Second
	shortRate = 2
)

// demoRun is one run of the demo and where it wrote its files.
type demoRun struct {
	plan *experiment.Plan
	res  *experiment.Result
	err  error
	out  string
}

// TestDemo runs the demo's short mode three times, one after the other,
// with one seed:
// twice with the resilient gateway, which must pass with identical fault
// decisions, and once from the files relia demo --export writes, with
// resilience switched off, where the same faults must fail the verdict.
// The first run's report is opened in headless Chromium.
func TestDemo(t *testing.T) {
	t.Parallel()
	seed := uint64(2026)
	resilient := experiment.DemoOptions{Duration: shortDemo, Seed: &seed, Rate: shortRate}
	fragile := experiment.DemoOptions{Duration: shortDemo, Seed: &seed, Rate: shortRate, NoResilience: true}
	exported := t.TempDir()
	if err := experiment.ExportDemo(exported, fragile); err != nil {
		t.Fatal(err)
	}
	runs := make([]demoRun, 3)
	for i := range runs {
		var err error
		if i < 2 {
			runs[i].plan, err = experiment.DemoPlan(resilient)
		} else {
			runs[i].plan, err = experiment.ReadFile(filepath.Join(exported, experiment.DemoExperimentFile), experiment.Options{})
		}
		if err != nil {
			t.Fatal(err)
		}
		runs[i].out = t.TempDir()
	}
	for i := range runs {
		r := &runs[i]
		if r.res, r.err = experiment.Run(context.Background(), r.plan, experiment.RunOptions{OutDir: r.out}); r.err != nil {
			t.Fatalf("run %d: %v", i, r.err)
		}
	}

	first, second, noResilience := runs[0].res, runs[1].res, runs[2].res
	t.Run("resilient passes", func(t *testing.T) {
		if first.ExitCode != experiment.ExitPass || !first.Verdict.Passed {
			t.Fatalf("exit %d, failures %q", first.ExitCode, first.Verdict.Failures)
		}
	})
	t.Run("journal", func(t *testing.T) {
		j := first.Journal
		if j.Seed != seed || j.Plan.SeedFrom != "option" || j.Experiment != "black-friday" {
			t.Errorf("journal seed %d (%s), experiment %q", j.Seed, j.Plan.SeedFrom, j.Experiment)
		}
		want := []string{"baseline", "spike", "payments-degraded", "replica-lost", "recovery"}
		if got := phaseNames(j.Phases); !slices.Equal(got, want) {
			t.Errorf("phases %v, want %v", got, want)
		}
		if len(j.Faults) != 3 {
			t.Fatalf("faults %+v", j.Faults)
		}
		for _, f := range j.Faults {
			if f.Start.IsZero() || !f.End.After(f.Start) || f.EndReason != experiment.EndStopped || f.Error != "" {
				t.Errorf("fault %+v: want started and stopped on schedule", f)
			}
		}
		v := first.Verdict
		if len(v.Run.SLOs) != 2 || len(v.Phases) != 5 || len(v.Faults) != 3 || v.Run.Stats.Requests < 100 || v.Baseline != "baseline" {
			t.Errorf("verdict: %d SLOs, %d phases, %d faults, %d requests, baseline %q", len(v.Run.SLOs), len(v.Phases), len(v.Faults), v.Run.Stats.Requests, v.Baseline)
		}
		for _, pv := range v.Phases[1:] {
			if pv.Comparison == nil {
				t.Errorf("phase %s has no comparison with the baseline", pv.Name)
			}
		}
		if spike := v.Phases[1].Stats; spike.Throughput < 5*v.Phases[0].Stats.Throughput {
			t.Errorf("spike %.1f req/s against a baseline of %.1f: want the 10x spike", spike.Throughput, v.Phases[0].Stats.Throughput)
		}
		if first.Scorecard.Grade == "" || len(first.Scorecard.Results) != len(experiment.Rules) || len(j.Series) < 10 {
			t.Errorf("scorecard %+v, %d seconds of series", first.Scorecard, len(j.Series))
		}
	})
	t.Run("same seed, same decisions", func(t *testing.T) {
		a, b := first.Journal, second.Journal
		if !slices.Equal(a.Plan.Decisions, b.Plan.Decisions) || len(a.Plan.Decisions) < 5 {
			t.Errorf("decisions differ:\n%v\n%v", a.Plan.Decisions, b.Plan.Decisions)
		}
		for i := range a.Faults {
			fa, fb := a.Faults[i], b.Faults[i]
			if fa.Name != fb.Name || fa.Target != fb.Target || fa.Replica != fb.Replica || fa.EndReason != fb.EndReason {
				t.Errorf("fault %d: %+v and %+v", i, fa, fb)
			}
		}
		if kill := noResilience.Journal.Faults[2]; kill.Replica != a.Faults[2].Replica {
			t.Errorf("the exported experiment killed replica %d, the demo %d, with one seed", kill.Replica, a.Faults[2].Replica)
		}
	})
	t.Run("without resilience the same faults fail", func(t *testing.T) {
		v := noResilience.Verdict
		if noResilience.ExitCode != experiment.ExitFail || v.Passed {
			t.Fatalf("exit %d: want the verdict to fail; failures %q", noResilience.ExitCode, v.Failures)
		}
		if !strings.Contains(strings.Join(v.Failures, "\n"), "SLO shop-availability") {
			t.Errorf("failures %q lack the availability SLO", v.Failures)
		}
		lost := v.Phases[3]
		if lost.SLOsMet() || lost.Stats.ErrorRate < 0.05 {
			t.Errorf("replica-lost phase %+v: want the killed replica's share failing", lost.Stats)
		}
		if !noResilience.Journal.Plan.Target.Services[0].Shop.DisableResilience {
			t.Error("the exported no-resilience experiment has resilience on")
		}
	})
	t.Run("report in chromium", func(t *testing.T) {
		reporttest.RequireChromium(t)
		res := reporttest.OpenInChromiumWith(t, filepath.Join(runs[0].out, experiment.ReportFile), reporttest.Options{Timeout: 20 * time.Second})
		reporttest.SaveArtifact(t, "demo-report.png", res.ScreenshotPNG)
		if len(res.ConsoleErrors)+len(res.FailedRequests) > 0 {
			t.Errorf("console errors %q, failed requests %q", res.ConsoleErrors, res.FailedRequests)
		}
		if len(res.Requests) != 1 {
			t.Errorf("the report made requests %q: it must work offline", res.Requests)
		}
		var drawn struct {
			Charts, Paths, Windows int
			Title                  string
		}
		res.Eval(t, `({
  charts: document.querySelectorAll("figure.chart svg.plot").length,
  paths: document.querySelectorAll("figure.chart g.series path").length,
  windows: document.querySelectorAll("figure.chart g.windows rect").length,
  title: document.title,
})`, &drawn)
		if drawn.Charts < 3 || drawn.Paths < 5 || drawn.Windows < 3 || !strings.Contains(drawn.Title, "black-friday") {
			t.Errorf("page %+v: want the latency, throughput and error charts drawn with the three fault windows", drawn)
		}
	})
}
