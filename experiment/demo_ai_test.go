package experiment_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/relia-dev/relia/experiment"
	"github.com/relia-dev/relia/report/reporttest"
)

// shortAIDemo and shortAIRate are the AI demo's short mode for tests:
// phases of 5 to 7 seconds in a run of 37, long enough that the streams
// that stall before alpha's breaker opens (their share is the stall's
// detection time over the run's length, whatever the rate) stay within
// the availability SLO's budget as in the one-minute demo, at 4
// questions a second (12 in the spike), far from saturating a two-core
// machine with two runs under -race.
const (
	shortAIDemo = 40 * time.Second
	shortAIRate = 4
)

// TestDemoAI runs the AI demo's short mode twice at once with one seed:
// with resilience, which must pass, and from the files relia demo ai
// --export writes with resilience off, where the same faults must fail
// the verdict. The plans must make the same decisions, and the first
// run's report is opened in headless Chromium.
func TestDemoAI(t *testing.T) {
	t.Parallel()
	seed := uint64(2026)
	resilient := experiment.DemoOptions{Duration: shortAIDemo, Seed: &seed, Rate: shortAIRate}
	fragile := experiment.DemoOptions{Duration: shortAIDemo, Seed: &seed, Rate: shortAIRate, NoResilience: true}
	exported := t.TempDir()
	if err := experiment.ExportDemoAI(exported, fragile); err != nil {
		t.Fatal(err)
	}
	runs := make([]demoRun, 2)
	var err error
	if runs[0].plan, err = experiment.DemoAIPlan(resilient); err != nil {
		t.Fatal(err)
	}
	if runs[1].plan, err = experiment.ReadFile(filepath.Join(exported, experiment.DemoAIExperimentFile), experiment.Options{}); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	for i := range runs {
		r := &runs[i]
		r.out = t.TempDir()
		go func() {
			defer func() { done <- struct{}{} }()
			r.res, r.err = experiment.Run(context.Background(), r.plan, experiment.RunOptions{OutDir: r.out})
		}()
	}
	for range runs {
		<-done
	}
	for i, r := range runs {
		if r.err != nil {
			t.Fatalf("run %d: %v", i, r.err)
		}
	}
	first, noResilience := runs[0].res, runs[1].res

	t.Run("resilient passes", func(t *testing.T) {
		if first.ExitCode != experiment.ExitPass || !first.Verdict.Passed {
			t.Fatalf("exit %d, failures %q", first.ExitCode, first.Verdict.Failures)
		}
		j := first.Journal
		want := []string{"baseline", "spike", "provider-slow", "provider-rate-limited", "provider-stalls", "quota-exhausted"}
		if got := phaseNames(j.Phases); !slices.Equal(got, want) || j.Experiment != "ai-assistant" {
			t.Errorf("%s: phases %v, want %v", j.Experiment, got, want)
		}
		if len(j.Faults) != 3 {
			t.Fatalf("faults %+v", j.Faults)
		}
		for _, f := range j.Faults {
			if f.Start.IsZero() || !f.End.After(f.Start) || f.EndReason != experiment.EndStopped || f.Error != "" || f.Kind != experiment.FaultProvider {
				t.Errorf("fault %+v: want a provider fault started and stopped on schedule", f)
			}
		}
		v := first.Verdict
		if len(v.Run.SLOs) != 3 || v.Run.SLOs[1].Total == 0 || v.Run.SLOs[2].Total == 0 {
			t.Errorf("run SLOs %+v: want availability, TTFT and goodput, each with events", v.Run.SLOs)
		}
		if v.Generator == nil || !v.Generator.Conclusive {
			t.Errorf("generator %+v: want its self-check passed", v.Generator)
		}
		// alpha's first token is a second late in provider-slow: the
		// hedge on beta (200 ms, then beta's 80 ms) brings it within the
		// 500 ms objective (without it, none of the phase's is). The
		// verdict judges the run; here, most of the phase is enough, so
		// that a crowded machine's late stream or two cannot fail it.
		if slow := v.Phases[2]; slow.Name != "provider-slow" || slow.SLOs[1].SLI < 0.5 {
			t.Errorf("phase %s: TTFT %+v, want most first tokens in time through the hedge", slow.Name, slow.SLOs[1])
		}
		t.Logf("TTFT within 500ms: %.2f%% of the run, %.2f%% of provider-slow", 100*v.Run.SLOs[1].SLI, 100*v.Phases[2].SLOs[1].SLI)
	})
	t.Run("quota refusals shown per tenant", func(t *testing.T) {
		for i, r := range runs {
			v := r.res.Verdict
			if names := tenantNames(v.Tenants); !slices.Equal(names, []string{"acme", "globex", "initech"}) {
				t.Fatalf("run %d: tenants %v, want acme, globex, initech", i, names)
			}
			for _, c := range v.Tenants {
				if c.Calls == 0 || c.Served+c.RefusedByQuota+c.Failed != c.Calls {
					t.Errorf("run %d, %s: %+v: want calls that each are served, refused or failed", i, c.Tenant, c)
				}
				// Only initech has a quota, and the last phase spends it
				// (its nine or so calls there ask for more than 600 tokens),
				// with or without resilience. The quota counts in calendar
				// minutes, so a phase that crosses one may see none.
				switch {
				case c.Tenant != "initech" && c.RefusedByQuota != 0:
					t.Errorf("run %d, %s has no quota but was refused by one %d times", i, c.Tenant, c.RefusedByQuota)
				case c.Tenant == "initech" && c.RefusedByQuota == 0 && withinOneMinute(r.res.Journal, "quota-exhausted"):
					t.Errorf("run %d: initech spent its quota within one minute and was never refused: %+v", i, c)
				}
			}
			// Figures agree: the journal's JSON, the terminal and the HTML
			// report show the verdict's numbers.
			var j struct {
				Verdict struct {
					Tenants []experiment.TenantCalls `json:"tenants"`
				} `json:"verdict"`
			}
			data, err := os.ReadFile(filepath.Join(r.out, experiment.JournalFile))
			if err == nil {
				err = json.Unmarshal(data, &j)
			}
			if err != nil || !slices.Equal(j.Verdict.Tenants, v.Tenants) {
				t.Errorf("run %d: journal's tenants %+v (%v), want %+v", i, j.Verdict.Tenants, err, v.Tenants)
			}
			html, err := os.ReadFile(filepath.Join(r.out, experiment.ReportFile))
			if err != nil {
				t.Fatal(err)
			}
			text := strings.Join(strings.Fields(experiment.Summary(r.plan, v, r.res.Scorecard)), " ")
			for _, c := range v.Tenants {
				if row := fmt.Sprintf("<td>%s</td><td>%d</td><td>%d</td><td>%d</td><td>%d</td>", c.Tenant, c.Calls, c.Served, c.RefusedByQuota, c.Failed); !strings.Contains(string(html), row) {
					t.Errorf("run %d: report lacks the row %s", i, row)
				}
				if row := fmt.Sprintf("%s %d %d %d %d", c.Tenant, c.Calls, c.Served, c.RefusedByQuota, c.Failed); !strings.Contains(text, row) {
					t.Errorf("run %d: summary lacks the row %q:\n%s", i, row, text)
				}
			}
			t.Logf("run %d: %+v", i, v.Tenants)
		}
	})
	t.Run("same seed, same decisions", func(t *testing.T) {
		a, b := first.Journal.Plan, noResilience.Journal.Plan
		if !slices.Equal(a.Decisions, b.Decisions) || !slices.ContainsFunc(a.Decisions, func(d experiment.Decision) bool {
			return strings.HasPrefix(d.What, "provider alpha: seed")
		}) {
			t.Errorf("decisions differ or lack the providers' seeds:\n%v\n%v", a.Decisions, b.Decisions)
		}
		for i := range first.Journal.Faults {
			fa, fb := first.Journal.Faults[i], noResilience.Journal.Faults[i]
			if fa.Name != fb.Name || fa.Target != fb.Target || fa.Kind != fb.Kind {
				t.Errorf("fault %d: %+v and %+v", i, fa, fb)
			}
		}
	})
	t.Run("without resilience the same faults fail", func(t *testing.T) {
		v := noResilience.Verdict
		if noResilience.ExitCode != experiment.ExitFail || v.Passed {
			t.Fatalf("exit %d: want the verdict to fail; failures %q", noResilience.ExitCode, v.Failures)
		}
		failures := strings.Join(v.Failures, "\n")
		for _, id := range []string{"SLO assistant-availability", "SLO assistant-ttft", "SLO assistant-goodput"} {
			if !strings.Contains(failures, id) {
				t.Errorf("failures %q lack %s", v.Failures, id)
			}
		}
		for _, ph := range v.Phases[3:5] {
			if ph.SLOsMet() || ph.Stats.ErrorRate < 0.3 {
				t.Errorf("phase %s %+v: want the provider's fault reaching the users", ph.Name, ph.Stats)
			}
		}
		// Every stream of provider-slow gets its first token a second
		// late, and they are more than the 5% of the run's streams that
		// the TTFT objective allows to be slow.
		if slow := v.Phases[2]; slow.SLOs[1].Met || slow.SLOs[1].SLI > 0.5 {
			t.Errorf("phase %s: TTFT %+v, want alpha's slow first tokens reaching the users", slow.Name, slow.SLOs[1])
		}
		t.Logf("TTFT within 500ms: %.2f%% of the run, %.2f%% of provider-slow", 100*v.Run.SLOs[1].SLI, 100*v.Phases[2].SLOs[1].SLI)
		if !noResilience.Journal.Plan.Target.Services[0].AI.DisableResilience {
			t.Error("the exported no-resilience experiment has resilience on")
		}
	})
	t.Run("report in chromium", func(t *testing.T) {
		reporttest.RequireChromium(t)
		res := reporttest.OpenInChromiumWith(t, filepath.Join(runs[0].out, experiment.ReportFile), reporttest.Options{Timeout: 20 * time.Second})
		reporttest.SaveArtifact(t, "demo-ai-report.png", res.ScreenshotPNG)
		if len(res.ConsoleErrors)+len(res.FailedRequests) > 0 {
			t.Errorf("console errors %q, failed requests %q", res.ConsoleErrors, res.FailedRequests)
		}
		var drawn struct {
			Titles  []string
			Windows int
		}
		res.Eval(t, `({
  titles: Array.from(document.querySelectorAll("figure.chart")).filter(f => f.querySelector("svg.plot g.series path")).map(f => (f.querySelector("figcaption, h3, .title") || f).textContent),
  windows: document.querySelectorAll("figure.chart g.windows rect").length,
})`, &drawn)
		all := strings.Join(drawn.Titles, "|")
		if !strings.Contains(all, "Time to first token") || !strings.Contains(all, "Goodput") || drawn.Windows < 2 {
			t.Errorf("page %+v: want the time to first token and goodput charts drawn with the two fault windows", drawn)
		}
	})
}

func tenantNames(cs []experiment.TenantCalls) []string {
	var names []string
	for _, c := range cs {
		names = append(names, c.Tenant)
	}
	return names
}

// withinOneMinute says whether phase ran within one calendar minute, the
// window of a tokens-per-minute quota.
func withinOneMinute(j *experiment.Journal, phase string) bool {
	for _, ph := range j.Phases {
		if ph.Name == phase {
			return ph.Start.Truncate(time.Minute).Equal(ph.End.Truncate(time.Minute))
		}
	}
	return false
}
