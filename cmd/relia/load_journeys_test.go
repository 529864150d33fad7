package main

import (
	"math"
	"path/filepath"
	"testing"

	"github.com/relia-dev/relia/load"
)

// loadJourneys runs relia load with args on a scenario of two journeys
// against a loadServer (browse walks the group list, two requests; lost
// fails on /login's 503; 30 users in a second) and returns its results
// file and summary figures. A starved generator's inconclusive run still
// exports, which is what its callers check.
func loadJourneys(t *testing.T, args ...string) (*load.Result, map[string]load.MetricSummary) {
	t.Helper()
	srv := loadServer(t)
	dir := t.TempDir()
	file := writeFile(t, dir, "journeys.yaml", `kind: Scenario
version: relia/v1
metadata: {name: journey-metrics}
spec:
  baseURL: `+srv.URL+`
  journeys:
    - name: browse
      weight: 2
      steps:
        - group: list
          steps:
            - request: {name: list, path: /x}
            - request: {name: item, path: /y}
    - name: lost
      steps:
        - request: {name: login, path: /login}
  load: {rate: 30, duration: 1s, lateAfter: 1s}
`)
	out := filepath.Join(dir, "r.json")
	code, stdout, stderr := runCLI(t, append([]string{"load", file, "--out", out}, args...)...)
	if code != exitPass && code != exitInconclusive {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	res, err := load.ReadResult(out)
	if err != nil {
		t.Fatal(err)
	}
	if lost := res.Journeys.ByJourney["lost"].Total(); lost.Total == 0 || lost.ByClass[0] != 0 {
		t.Fatalf("the lost journeys should all fail: %v", lost.ByClass)
	}
	return res, res.SummaryMetrics(nil)
}

// TestLoadJourneyMetricsOverOTLP: --otlp sends the journey metrics
// through the OpenTelemetry SDK's exporter as the collector receives
// them: journeys by journey and class, and the two durations as
// summaries whose count and quantiles are the run's summary's.
func TestLoadJourneyMetricsOverOTLP(t *testing.T) {
	t.Parallel()
	collector, exports := otlpCollector(t)
	_, sum := loadJourneys(t, "--otlp", collector)
	got := exports()
	if len(got) != 1 || len(got[0].ResourceMetrics) != 1 {
		t.Fatalf("collector got %d exports", len(got))
	}
	var journeys, ok float64
	seen := map[string]bool{}
	for _, m := range got[0].ResourceMetrics[0].ScopeMetrics[0].Metrics {
		switch m.Name {
		case "relia.load.journeys":
			for _, p := range m.GetSum().DataPoints {
				journeys += float64(p.GetAsInt())
				for _, a := range p.Attributes {
					if a.Key == "class" && a.Value.GetStringValue() == "ok" {
						ok += float64(p.GetAsInt())
					}
				}
			}
		case "relia.load.journey.duration", "relia.load.group.duration":
			for _, p := range m.GetSummary().DataPoints {
				key := map[string]string{"relia.load.journey.duration": "journey_duration", "relia.load.group.duration": "group_duration"}[m.Name]
				for _, a := range p.Attributes {
					key += "{" + a.Key + ":" + a.Value.GetStringValue() + "}"
				}
				want := sum[key]
				seen[key] = true
				if float64(p.Count) != want.Values["count"] || len(p.QuantileValues) != 4 {
					t.Errorf("%s: count %d, %d quantiles; the summary's count %v", key, p.Count, len(p.QuantileValues), want.Values["count"])
					continue
				}
				for i, agg := range []string{"med", "p(90)", "p(95)", "p(99)"} {
					if v := p.QuantileValues[i].Value; math.Abs(v-want.Values[agg]/1000) > 1e-9 {
						t.Errorf("%s quantile %v: %v s, the summary's %s %v ms", key, p.QuantileValues[i].Quantile, v, agg, want.Values[agg])
					}
				}
			}
		}
	}
	if journeys != sum["journeys"].Values["count"] || journeys != 30 || ok != sum["journey_success"].Values["passes"] || ok == 0 || ok == journeys {
		t.Errorf("collector: %v journeys, %v ok; the summary %v and %v", journeys, ok, sum["journeys"].Values["count"], sum["journey_success"].Values["passes"])
	}
	for _, k := range []string{"journey_duration", "journey_duration{journey:browse}", "journey_duration{journey:lost}", "group_duration", "group_duration{group:::list}"} {
		if !seen[k] {
			t.Errorf("no %s summary in the export", k)
		}
	}
}
