package slo

import (
	"os"
	"path/filepath"
	"testing"
)

// openSLOReadme is the Prometheus ratioMetric of OpenSLO's README: good
// and total counters whose label sets differ.
const openSLOReadme = `apiVersion: openslo/v1
kind: SLO
metadata: {name: foo-slo}
spec:
  service: foo
  indicator:
    metadata: {name: foo-error}
    spec:
      ratioMetric:
        counter: true
        good:
          metricSource:
            type: Prometheus
            metricSourceRef: prometheus-datasource
            spec:
              query: sum(localhost_server_requests{code=~"2xx|3xx",host="*",instance="127.0.0.1:9090"})
        total:
          metricSource:
            type: Prometheus
            metricSourceRef: prometheus-datasource
            spec:
              query: localhost_server_requests{code="total",host="*",instance="127.0.0.1:9090"}
  objectives:
    - displayName: Foo Total Errors
      target: 0.98
`

// availabilitySpec is a relia SLO over http_requests_total of job api,
// with the given failed-or-good query field and query.
func availabilitySpec(field, query string) string {
	return spec("a", "  objective: 99%\n  sli:\n    availability:\n      "+field+": '"+query+"'\n      totalQuery: 'sum(rate(http_requests_total{job=\"api\"}[{{.window}}]))'\n")
}

// TestSourceRules runs the rules that read the SLI's own metrics
// (which the generated tests feed around) in promtool against synthetic
// counters: the error ratio is right whatever the queries' label sets,
// and missing data is a missing SLI, never a good one.
func TestSourceRules(t *testing.T) {
	t.Parallel()
	tool := promtool(t)
	const (
		total    = `localhost_server_requests{code="total",host="*",instance="127.0.0.1:9090"}`
		good     = `localhost_server_requests{code="2xx",host="*",instance="127.0.0.1:9090"}`
		ok200    = `http_requests_total{job="api",code="200"}`
		failed   = `http_requests_total{job="api",code="500"}`
		perMin90 = "0+90x40"
		perMin   = "0+100x40"
	)
	for _, tc := range []struct {
		name, spec string
		series     map[string]string
		// want is the 5m and 30m error ratios at 40m; a negative one
		// means no sample.
		want float64
	}{
		{"OpenSLO README: 100 total and 90 good a minute is 10% errors", openSLOReadme, map[string]string{total: perMin, good: perMin90}, 0.1},
		{"OpenSLO README without good series: no SLI", openSLOReadme, map[string]string{total: perMin}, -1},
		{"errors narrowing the total's series, none failing: 0%", availabilitySpec("errorQuery", `sum(rate(http_requests_total{job="api",code=~"5.."}[{{.window}}]))`),
			map[string]string{ok200: perMin}, 0},
		{"errors narrowing the total's series, 10 of 100 failing: 10%", availabilitySpec("errorQuery", `sum(rate(http_requests_total{job="api",code=~"5.."}[{{.window}}]))`),
			map[string]string{ok200: perMin90, failed: "0+10x40"}, 0.1},
		{"errors of another metric that is missing: no SLI", availabilitySpec("errorQuery", `sum(rate(http_errors_total{job="api"}[{{.window}}]))`),
			map[string]string{ok200: perMin}, -1},
		{"good narrowing the total's series, none good: 100%", availabilitySpec("goodQuery", `sum(rate(http_requests_total{job="api",code=~"2.."}[{{.window}}]))`),
			map[string]string{failed: perMin}, 1},
		{"good narrowing the total's series, 90 of 100 good: 10%", availabilitySpec("goodQuery", `sum by (code) (rate(http_requests_total{job="api",code=~"2.."}[{{.window}}]))`),
			map[string]string{ok200: perMin90, failed: "0+10x40"}, 0.1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			slos, err := Parse("spec.yaml", []byte(tc.spec))
			if err != nil {
				t.Fatal(err)
			}
			s := slos[0]
			rules, err := Rules(slos)
			if err != nil {
				t.Fatal(err)
			}
			test := RuleTest{Name: tc.name, Interval: "1m"}
			for series, values := range tc.series {
				test.InputSeries = append(test.InputSeries, InputSeries{Series: series, Values: values})
			}
			for _, w := range []string{"5m", "30m"} {
				labels := (&testGen{slo: s}).promLabels(map[string]string{"sloth_window": w})
				et := PromQLExprTest{Expr: ratioMetric + w + s.selector(), EvalTime: "40m", ExpSamples: []ExpSample{}}
				if tc.want >= 0 {
					et.Expr = "abs(" + et.Expr + " - " + formatFloat(tc.want) + ") < bool 1e-9"
					et.ExpSamples = []ExpSample{{Labels: labels, Value: 1}}
				}
				test.ExprTests = append(test.ExprTests, et)
			}
			f := RuleTestFile{RuleFiles: []string{"rules.yaml"}, EvaluationInterval: "1m", Tests: []RuleTest{test},
				GroupEvalOrder: []string{"relia-slo-sli-recordings-" + s.ID(), "relia-slo-meta-recordings-" + s.ID(), "relia-slo-alerts-" + s.ID()}}
			dir := t.TempDir()
			rb, err := rules.Marshal("")
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, "rules.yaml"), rb, 0o644); err != nil {
				t.Fatal(err)
			}
			b, err := f.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, "source.test.yaml"), b, 0o644); err != nil {
				t.Fatal(err)
			}
			if out, err := runTool(t, dir, tool, "test", "rules", "source.test.yaml"); err != nil {
				t.Fatalf("promtool test rules: %v\n%s\nrules:\n%s", err, out, rb)
			}
		})
	}
}
