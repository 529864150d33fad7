package slo

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/relia-dev/relia/internal/config"
	"github.com/relia-dev/relia/internal/config/configtest"
)

// spec builds a relia SLO document from a spec body indented by two
// spaces, with the given metadata name.
func spec(name, body string) string {
	return "kind: SLO\nversion: relia/v1\nmetadata:\n  name: " + name + "\nspec:\n  service: api\n" + body
}

const events = `  sli:
    availability:
      errorQuery: sum(rate(errors_total[{{.window}}]))
      totalQuery: sum(rate(requests_total[{{.window}}]))
`

func TestReadFilesValid(t *testing.T) {
	t.Parallel()
	slos, err := ReadFiles(filepath.Join("testdata", "availability.yaml"), filepath.Join("testdata", "latency-classic.yaml"),
		filepath.Join("testdata", "openslo.yaml"), filepath.Join("testdata", "sloth.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, s := range slos {
		ids = append(ids, s.ID())
	}
	want := "checkout-availability catalog-latency web-web-availability myservice-requests-availability myservice-requests-latency"
	if strings.Join(ids, " ") != want {
		t.Errorf("ids %v, want %s", ids, want)
	}
	s := slos[0]
	if s.Period() != 30*config.Day || s.ErrorBudget() != 0.001 || s.Spec.Objective != 0.999 {
		t.Errorf("checkout: period %v budget %v objective %v", s.Period(), s.ErrorBudget(), s.Spec.Objective)
	}
	if got := slos[2]; got.Period() != 28*config.Day || got.Spec.Objective != 0.995 || got.Metadata.Labels["team"] != "web,frontend" {
		t.Errorf("OpenSLO import: period %v objective %v labels %v", got.Period(), got.Spec.Objective, got.Metadata.Labels)
	}
	alerts := slos[2].Alerts()
	if len(alerts) != 2 || alerts[0].For != 5*time.Minute || alerts[0].Windows[0] != (BurnWindow{time.Hour, 5 * time.Minute, 14.4}) ||
		alerts[1].Windows[0] != (BurnWindow{config.Day, 2 * time.Hour, 3}) {
		t.Errorf("OpenSLO alert policies became %+v", alerts)
	}
	if got := slos[3]; got.Spec.Objective != 0.999 || got.Metadata.Labels["category"] != "availability" || got.Metadata.Labels["owner"] != "myteam" {
		t.Errorf("Sloth import: objective %v labels %v", got.Spec.Objective, got.Metadata.Labels)
	}
	if a := slos[4].Alerts(); len(a) != 1 || a[0].Severity != Ticket {
		t.Errorf("Sloth's disabled page alert: alerts %+v", a)
	}
}

// TestValidateErrors pins every validation message with its position in
// a golden file.
func TestValidateErrors(t *testing.T) {
	t.Parallel()
	cases := []struct{ name, src string }{
		{"objective above one", spec("a", "  objective: 1.5\n"+events)},
		{"objective of 100%", spec("a", "  objective: 100%\n"+events)},
		{"objective of zero", spec("a", "  objective: 0\n"+events)},
		{"unknown SLI kind", spec("a", "  objective: 99%\n  sli:\n    freshness: {maxAge: 1h}\n")},
		{"misspelt SLI kind", spec("a", "  objective: 99%\n  sli:\n    availabilty: {goodClasses: [ok]}\n")},
		{"two SLI kinds", spec("a", "  objective: 99%\n  sli:\n    availability: {goodClasses: [ok]}\n    latency: {threshold: 1s}\n")},
		{"no SLI kind", spec("a", "  objective: 99%\n  sli: {}\n")},
		{"missing placeholder", spec("a", "  objective: 99%\n  sli:\n    availability:\n      errorQuery: sum(rate(errors_total[5m]))\n      totalQuery: sum(rate(requests_total[{{ .window }}]))\n")},
		{"query without its pair", spec("a", "  objective: 99%\n  sli:\n    availability:\n      errorQuery: sum(rate(errors_total[{{.window}}]))\n")},
		{"no queries and no classes", spec("a", "  objective: 99%\n  sli:\n    availability: {goodClasses: []}\n")},
		{"unknown outcome class", spec("a", "  objective: 99%\n  sli:\n    availability: {goodClasses: [ok, fine]}\n")},
		{"window longer than the period", spec("a", "  objective: 99%\n  period: 7d\n"+events+"  alerting:\n    ticket:\n      windows:\n        - {long: 14d, burnRate: 1}\n")},
		{"default windows longer than the period", spec("a", "  objective: 99%\n  period: 1d\n"+events)},
		{"short window not shorter", spec("a", "  objective: 99%\n"+events+"  alerting:\n    page:\n      windows:\n        - {long: 1h, short: 2h, burnRate: 14.4}\n")},
		{"burn rate and budget", spec("a", "  objective: 99%\n"+events+"  alerting:\n    page:\n      windows:\n        - {long: 1h, burnRate: 14.4, budget: 2%}\n")},
		{"neither burn rate nor budget", spec("a", "  objective: 99%\n"+events+"  alerting:\n    page:\n      windows:\n        - {long: 1h}\n")},
		{"burn rate below one", spec("a", "  objective: 99%\n"+events+"  alerting:\n    ticket:\n      windows:\n        - {long: 3d, budget: 5%}\n")},
		{"burn rate that cannot fire", spec("a", "  objective: 90%\n"+events)},
		{"threshold between buckets", spec("a", "  objective: 99%\n  sli:\n    latency:\n      metric: http_server_request_duration_seconds\n      threshold: 150ms\n      buckets: [0.05, 0.1, 0.2, 0.5]\n")},
		{"unknown histogram kind", spec("a", "  objective: 99%\n  sli:\n    latency: {metric: h, threshold: 1s, histogram: hdr}\n")},
		{"buckets of a native histogram", spec("a", "  objective: 99%\n  sli:\n    latency: {metric: h, threshold: 1s, histogram: native, buckets: [1]}\n")},
		{"metric with suffix", spec("a", "  objective: 99%\n  sli:\n    latency: {metric: h_bucket, threshold: 1s}\n")},
		{"negative period", spec("a", "  objective: 99%\n  period: -1d\n"+events)},
		{"bad names", "kind: SLO\nversion: relia/v1\nmetadata:\n  name: 'has space'\n  labels: {sloth_id: x, 0bad: y}\nspec:\n  service: api\n  objective: 99%\n" + events +
			"  alerting:\n    name: Bad-Name\n    minEvents: -1\n"},
		{"duplicate ids", spec("a", "  objective: 99%\n"+events) + "---\n" + spec("a", "  objective: 99.9%\n"+events)},
		{"unknown format", "apiVersion: pyrra.dev/v1alpha1\nkind: ServiceLevelObjective\n"},
		{"OpenSLO draft", "apiVersion: openslo/v1alpha\nkind: SLO\n"},
		{"error and good queries", spec("a", "  objective: 99%\n  sli:\n    availability:\n      errorQuery: sum(rate(e[{{.window}}]))\n      goodQuery: sum(rate(g[{{.window}}]))\n      totalQuery: sum(rate(t[{{.window}}]))\n")},
		{"total without failed or good", spec("a", "  objective: 99%\n  sli:\n    availability:\n      totalQuery: sum(rate(t[{{.window}}]))\n")},
		{"query reading no series", spec("a", "  objective: 99%\n  sli:\n    availability:\n      errorQuery: sum(rate(e[{{.window}}]))\n      totalQuery: sum(count_over_time(vector(1)[{{.window}}:]))\n")},
		{"Sloth SLI plugin", "version: prometheus/v1\nservice: s\nslos:\n  - name: x\n    objective: 99.9\n    sli:\n      plugin: {id: getting_started_availability, options: {job: svc}}\n"},
		{"Sloth SLO plugins", "version: prometheus/v1\nservice: s\nslo_plugins:\n  chain: [{id: sloth.dev/contrib/alert_for/v1}, {id: sloth.dev/contrib/denominator_corrected/v1}]\nslos:\n  - name: x\n    objective: 99.9\n    plugins:\n      overridePrevious: true\n      chain: [{id: sloth.dev/core/sli_rules/v1}]\n    sli:\n      events: {error_query: 'a[{{.window}}]', total_query: 'b[{{.window}}]'}\n"},
		{"Sloth Kubernetes plugin and raw", "apiVersion: sloth.slok.dev/v1\nkind: PrometheusServiceLevel\nmetadata: {name: m}\nspec:\n  service: s\n  slos:\n    - name: x\n      objective: 99.9\n      sli:\n        plugin: {id: p}\n    - name: y\n      objective: 99.9\n      sli:\n        raw: {errorRatioQuery: 'r[{{.window}}]'}\n"},
		{"Sloth Kubernetes snake case", "apiVersion: sloth.slok.dev/v1\nkind: PrometheusServiceLevel\nmetadata: {name: m}\nspec:\n  service: s\n  slos:\n    - name: x\n      objective: 99.9\n      sli:\n        events: {error_query: 'a[{{.window}}]', totalQuery: 'b[5m]'}\n"},
		{"Sloth Kubernetes without metadata", "apiVersion: sloth.slok.dev/v1\nkind: PrometheusServiceLevel\n"},
		{"Sloth alert windows", "apiVersion: sloth.slok.dev/v1\nkind: AlertWindows\nspec: {sloPeriod: 30d}\n"},
		{"no SLOs", "kind: Scenario\nversion: relia/v1\n"},
		{"Sloth raw SLI", "version: prometheus/v1\nservice: s\nslos:\n  - name: x\n    objective: 99.9\n    sli:\n      raw:\n        error_ratio_query: x\n  - name: y\n    objective: 99.9\n    sli:\n      raw: {errorRatioQuery: x}\n"},
		{"Sloth objective above 100", "version: prometheus/v1\nservice: s\nslos:\n  - name: x\n    objective: 999\n    sli:\n      events: {error_query: 'a[{{.window}}]', total_query: 'b[{{.window}}]'}\n"},
		{"Sloth query without placeholder", "version: prometheus/v1\nservice: s\nslos:\n  - name: x\n    objective: 99.9\n    sli:\n      events: {error_query: 'a[5m]', total_query: 'b[{{.window}}]'}\n"},
		{"OpenSLO time slices", "apiVersion: openslo/v1\nkind: SLO\nmetadata: {name: x}\nspec:\n  service: s\n  budgetingMethod: Timeslices\n  indicatorRef: missing\n  objectives: [{target: 0.99}]\n"},
		{"OpenSLO threshold metric", "apiVersion: openslo/v1\nkind: SLO\nmetadata: {name: x}\nspec:\n  service: s\n  indicator:\n    metadata: {name: i}\n    spec:\n      thresholdMetric: {metricSource: {type: Prometheus, spec: {query: q}}}\n  objectives: [{target: 0.99}]\n"},
		{"OpenSLO Datadog source", "apiVersion: openslo/v1\nkind: SLO\nmetadata: {name: x}\nspec:\n  service: s\n  indicator:\n    metadata: {name: i}\n    spec:\n      ratioMetric:\n        counter: true\n        good: {metricSource: {type: Datadog, spec: {query: q}}}\n        total: {metricSource: {type: Datadog, spec: {query: q}}}\n  objectives: [{target: 0.99}]\n"},
		{"OpenSLO unknown field", "apiVersion: openslo/v1\nkind: SLO\nmetadata: {name: x}\nspec:\n  service: s\n  objectivs: []\n"},
		{"OpenSLO unknown severity", "apiVersion: openslo/v1\nkind: SLO\nmetadata: {name: x}\nspec:\n  service: s\n  indicator:\n    metadata: {name: i}\n    spec:\n      ratioMetric:\n        bad: {metricSource: {spec: {query: 'e[{{.window}}]'}}}\n        total: {metricSource: {spec: {query: 't[{{.window}}]'}}}\n  objectives: [{target: 0.99}]\n  alertPolicies:\n    - kind: AlertPolicy\n      metadata: {name: p}\n      spec:\n        conditions:\n          - kind: AlertCondition\n            metadata: {name: c}\n            spec: {severity: sev1, condition: {kind: burnrate, threshold: 2, lookbackWindow: 1h}}\n"},
	}
	var out strings.Builder
	for _, tc := range cases {
		_, err := Parse("slo.yaml", []byte(tc.src))
		fmt.Fprintf(&out, "== %s\n", tc.name)
		if err == nil {
			t.Errorf("%s: no error", tc.name)
			continue
		}
		for _, line := range strings.Split(err.Error(), "\n") {
			if !strings.HasPrefix(line, "slo.yaml:") {
				t.Errorf("%s: error line %q does not name the file and position", tc.name, line)
			}
		}
		fmt.Fprintf(&out, "%v\n", err)
	}
	configtest.Golden(t, filepath.Join("testdata", "errors.golden"), []byte(out.String()))
}

func TestReadFilesErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	a := filepath.Join(dir, "a.yaml")
	b := filepath.Join(dir, "b.yaml")
	src := spec("same", "  objective: 99%\n"+events)
	for _, p := range []string{a, b} {
		if err := os.WriteFile(p, []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	_, err := ReadFiles(a, b)
	if err == nil || !strings.Contains(err.Error(), b+":4:9: metadata.name: SLO id api-same is used twice (first in "+a+":1)") {
		t.Errorf("duplicate ids across files: %v", err)
	}
	if _, err := ReadFiles(filepath.Join(dir, "missing.yaml")); err == nil {
		t.Error("a missing file read without error")
	}
	// An SLO built in Go has no file to point into.
	s := &SLO{Metadata: Metadata{Name: "x"}, Spec: Spec{Service: "s", Objective: 2}}
	if err := s.Validate(); err == nil || !strings.Contains(err.Error(), "SLO s-x: spec.objective: 200% is not in (0, 1)") {
		t.Errorf("Validate of a Go SLO: %v", err)
	}
}

func TestCheckThreshold(t *testing.T) {
	t.Parallel()
	buckets := []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5}
	for _, tc := range []struct {
		threshold time.Duration
		buckets   []float64
		err       string
	}{
		{100 * time.Millisecond, buckets, ""},
		{time.Second, buckets, ""},
		{5 * time.Millisecond, buckets, ""},
		{200 * time.Millisecond, buckets, "nearest are 0.1 and 0.25"},
		{3 * time.Second, buckets, "nearest are 2.5 and none"},
		{time.Millisecond, buckets, "nearest are none and 0.005"},
		{time.Second, []float64{1, 0.5}, "ascending"},
	} {
		err := CheckThreshold(tc.threshold, tc.buckets)
		if tc.err == "" && err != nil || tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("CheckThreshold(%v, %v) = %v, want %q", tc.threshold, tc.buckets, err, tc.err)
		}
	}
}

func TestRateCounters(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, want, err string }{
		{`sum(http_requests{code="500"})`, `sum(rate(http_requests{code="500"}[{{.window}}]))`, ""},
		{`sum by (code) (http_requests)`, `sum by (code) (rate(http_requests[{{.window}}]))`, ""},
		{`sum(a{x="}"}) / ignoring(le) sum(b) * 2.5e+3`, `sum(rate(a{x="}"}[{{.window}}])) / ignoring(le) sum(rate(b[{{.window}}])) * 2.5e+3`, ""},
		{`{__name__="x"}`, `rate({__name__="x"}[{{.window}}])`, ""},
		{`sum(rate(x[5m]))`, "", "already has a range"},
		{`sum(x{a="b)`, "", "unterminated"},
	} {
		got, err := rateCounters(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("rateCounters(%q) = %q, %v; want error %q", tc.in, got, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("rateCounters(%q) = %q, %v\nwant %q", tc.in, got, err, tc.want)
		}
	}
}

// FuzzParse feeds arbitrary bytes to the SLO loader, in each of its
// formats: it must not panic, every error must be positioned in the file,
// and every SLO it accepts must generate rules and tests, or be refused
// at a place in the file.
func FuzzParse(f *testing.F) {
	for _, name := range []string{"availability", "latency-classic", "latency-native", "openslo", "sloth"} {
		data, err := os.ReadFile(filepath.Join("testdata", name+".yaml"))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	for _, name := range []string{"sloth/k8s-home-wifi.yml", "sloth/getting-started.yml", "sloth/plugin-k8s-getting-started.yml"} {
		data, err := os.ReadFile(filepath.Join("testdata", "corpus", filepath.FromSlash(name)))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte(spec("a", "  objective: 99%\n  period: 1h\n"+events+"  alerting:\n    page: {windows: [{long: 1h, short: 1m, budget: 50%}]}\n    ticket: {disabled: true}\n")))
	f.Fuzz(func(t *testing.T, data []byte) {
		slos, err := Parse("fuzz.yaml", data)
		if err != nil {
			var ce *config.Error
			if !errors.As(err, &ce) && !strings.HasPrefix(err.Error(), "fuzz.yaml") {
				t.Fatalf("error %q is not positioned", err)
			}
			return
		}
		if _, _, err := Generate(slos, "rules.yaml"); err != nil && !strings.HasPrefix(err.Error(), "fuzz.yaml") {
			t.Fatalf("generating the rules and tests of a valid spec: %v", err)
		}
	})
}

func TestJSONSchema(t *testing.T) {
	t.Parallel()
	got, err := JSONSchema()
	if err != nil {
		t.Fatal(err)
	}
	// The published schema is the golden file, so docs/ cannot fall behind.
	configtest.Golden(t, filepath.Join("..", "docs", "schema", "slo.json"), got)
	for _, want := range []string{`"objective"`, `"const": "SLO"`, `"burnRate"`, `99.9%`} {
		if !strings.Contains(string(got), want) {
			t.Errorf("schema lacks %s", want)
		}
	}
}
