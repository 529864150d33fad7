package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/relia-dev/relia/slo"
)

func sloSpec(name string) string { return filepath.Join("..", "..", "slo", "testdata", name) }

// TestSLOValidateAsGenerate: validate refuses exactly the specs generate
// refuses, with the same reason.
func TestSLOValidateAsGenerate(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	head := "kind: SLO\nversion: relia/v1\nmetadata: {name: a}\nspec:\n  service: s\n  objective: 99%\n  sli:\n"
	for name, tc := range map[string]struct{ sli, err string }{
		"latency-without-metric": {"    latency: {threshold: 200ms}\n", ":8:14: spec.sli.latency.metric: missing: Prometheus rules need the histogram's name"},
		"latency-off-bucket":     {"    latency: {metric: http_server_request_duration_seconds, threshold: 150ms}\n", "(the nearest are 0.1 and 0.2)"},
		"classes-only":           {"    availability: {goodClasses: [ok]}\n", "so no Prometheus rules: it is judged in relia runs only"},
		"latency-ok":             {"    latency: {metric: http_server_request_duration_seconds, threshold: 200ms}\n", ""},
	} {
		path := filepath.Join(dir, name+".yaml")
		if err := os.WriteFile(path, []byte(head+tc.sli), 0o644); err != nil {
			t.Fatal(err)
		}
		vCode, _, vErr := runCLI(t, "slo", "validate", path)
		gCode, _, gErr := runCLI(t, "slo", "generate", path, "--out", filepath.Join(dir, name+".rules.yaml"))
		want := exitPass
		if tc.err != "" {
			want = exitBadInput
		}
		if vCode != want || gCode != want {
			t.Errorf("%s: validate exit %d, generate exit %d, want %d\n%s%s", name, vCode, gCode, want, vErr, gErr)
		}
		if tc.err != "" && (!strings.Contains(vErr, tc.err) || vErr != gErr) {
			t.Errorf("%s: validate says %q, generate %q, want %q", name, vErr, gErr, tc.err)
		}
	}
}

// prometheusRule is Prometheus Operator's PrometheusRule
// (monitoring.coreos.com/v1) with every field its CRD defines, for
// decoding relia's output strictly.
type prometheusRule struct {
	APIVersion string `yaml:"apiVersion"`
	Kind       string `yaml:"kind"`
	Metadata   struct {
		Name        string            `yaml:"name"`
		Namespace   string            `yaml:"namespace"`
		Labels      map[string]string `yaml:"labels"`
		Annotations map[string]string `yaml:"annotations"`
	} `yaml:"metadata"`
	Spec struct {
		Groups []struct {
			Name                    string            `yaml:"name"`
			Interval                string            `yaml:"interval"`
			QueryOffset             string            `yaml:"query_offset"`
			Limit                   *int              `yaml:"limit"`
			PartialResponseStrategy string            `yaml:"partial_response_strategy"`
			Labels                  map[string]string `yaml:"labels"`
			Rules                   []struct {
				Record        string            `yaml:"record"`
				Alert         string            `yaml:"alert"`
				Expr          string            `yaml:"expr"`
				For           string            `yaml:"for"`
				KeepFiringFor string            `yaml:"keep_firing_for"`
				Labels        map[string]string `yaml:"labels"`
				Annotations   map[string]string `yaml:"annotations"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	} `yaml:"spec"`
}

// TestSLOGeneratePrometheusRule: --format prometheusrule writes a
// PrometheusRule that decodes strictly, named after the Sloth resource
// it came from (or the flags), whose groups promtool checks and whose
// tests pass.
func TestSLOGeneratePrometheusRule(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	out, tests := filepath.Join(dir, "rule.yaml"), filepath.Join(dir, "tests")
	src := filepath.Join("..", "..", "slo", "testdata", "corpus", "sloth", "k8s-home-wifi.yml")
	code, _, errOut := runCLI(t, "slo", "generate", "--format", "prometheusrule", src, "--out", out, "--tests", tests)
	if code != exitPass {
		t.Fatalf("generate: exit %d, stderr %s", code, errOut)
	}
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var pr prometheusRule
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&pr); err != nil {
		t.Fatalf("the PrometheusRule does not decode strictly: %v\n%.500s", err, data)
	}
	if pr.APIVersion != "monitoring.coreos.com/v1" || pr.Kind != "PrometheusRule" || pr.Metadata.Name != "sloth-slo-home-wifi" ||
		pr.Metadata.Namespace != "monitoring" || pr.Metadata.Labels["role"] != "alert-rules" || len(pr.Spec.Groups) != 6 {
		t.Errorf("PrometheusRule %s/%s %s %s, labels %v, %d groups", pr.APIVersion, pr.Kind, pr.Metadata.Namespace, pr.Metadata.Name, pr.Metadata.Labels, len(pr.Spec.Groups))
	}
	var raw struct {
		Spec yaml.Node `yaml:"spec"`
	}
	if err := yaml.Unmarshal(data, &raw); err != nil {
		t.Fatal(err)
	}
	spec, err := yaml.Marshal(&raw.Spec)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "spec.yaml"), spec, 0o644); err != nil {
		t.Fatal(err)
	}
	rulesForTests := filepath.Join(tests, "sloth-slo-home-wifi.rules.yaml")
	if !strings.Contains(errOut, "wrote "+rulesForTests) {
		t.Errorf("stderr does not name the rule file the tests read:\n%s", errOut)
	}
	var inRule, forTests slo.RuleFile
	forTestsData, err := os.ReadFile(rulesForTests)
	if err == nil {
		err = errors.Join(yaml.Unmarshal(spec, &inRule), yaml.Unmarshal(forTestsData, &forTests))
	}
	if err != nil || len(inRule.Groups) != 6 || !reflect.DeepEqual(inRule, forTests) {
		t.Errorf("the tests' rule file is not the PrometheusRule's groups (%v)", err)
	}
	if tool, err := exec.LookPath("promtool"); err == nil {
		if out, err := exec.Command(tool, "check", "rules", "--lint=all", "--lint-fatal", filepath.Join(dir, "spec.yaml")).CombinedOutput(); err != nil {
			t.Errorf("promtool check rules on the PrometheusRule's spec: %v\n%s", err, out)
		}
		files, _ := filepath.Glob(filepath.Join(tests, "*.test.yaml"))
		if out, err := exec.Command(tool, append([]string{"test", "rules"}, files...)...).CombinedOutput(); err != nil || len(files) == 0 {
			t.Errorf("promtool test rules on %v: %v\n%s", files, err, out)
		}
	}
	// A relia spec: the name from the services, or from the flags.
	code, stdout, _ := runCLI(t, "slo", "generate", "--format", "prometheusrule", sloSpec("availability.yaml"))
	if code != exitPass || !strings.Contains(stdout, "kind: PrometheusRule\nmetadata:\n  name: checkout-slos\nspec:\n  groups:\n") {
		t.Errorf("default name: exit %d\n%.400s", code, stdout)
	}
	code, stdout, _ = runCLI(t, "slo", "generate", "--format", "prometheusrule", "--name", "checkout", "--namespace", "shop", "--label", "role=alert-rules", sloSpec("availability.yaml"))
	if code != exitPass || !strings.Contains(stdout, "metadata:\n  name: checkout\n  namespace: shop\n  labels:\n    role: alert-rules\n") {
		t.Errorf("flags: exit %d\n%.400s", code, stdout)
	}
	for _, tc := range []struct {
		args []string
		err  string
	}{
		{[]string{"--label", "role=x"}, "add --format prometheusrule"},
		{[]string{"--format", "prometheusrule", "--name", "Checkout_SLOs"}, `PrometheusRule name "Checkout_SLOs"`},
		{[]string{"--format", "prometheusrule", "--label", "role=a b"}, "is not a Kubernetes label"},
		{[]string{"--format", "yaml"}, "--format must be rules or prometheusrule"},
	} {
		code, _, errOut := runCLI(t, append([]string{"slo", "generate", sloSpec("availability.yaml")}, tc.args...)...)
		if code != exitBadInput || !strings.Contains(errOut, tc.err) {
			t.Errorf("%v: exit %d, stderr %q, want %q", tc.args, code, errOut, tc.err)
		}
	}
}

func TestSLOValidate(t *testing.T) {
	t.Parallel()
	code, out, errOut := runCLI(t, "slo", "validate", sloSpec("availability.yaml"), sloSpec("sloth.yaml"))
	if code != exitPass {
		t.Fatalf("validate: exit %d, stderr %s", code, errOut)
	}
	for _, want := range []string{
		"ok  checkout-availability  99.9% over 30d, availability; page 14.4x/1h+5m 6x/6h+30m; ticket 3x/1d+2h 1x/3d+6h\n",
		"ok  myservice-requests-latency  95% over 30d, availability; ticket 3x/1d+2h 1x/3d+6h\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("validate output lacks %q:\n%s", want, out)
		}
	}
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	os.WriteFile(bad, []byte("kind: SLO\nversion: relia/v1\nmetadata: {name: a}\nspec:\n  service: s\n  objective: 100%\n  sli: {availability: {goodClasses: [ok]}}\n"), 0o644)
	code, _, errOut = runCLI(t, "slo", "validate", bad)
	if code != exitBadInput || !strings.Contains(errOut, bad+":6:14: spec.objective: 100% is not in (0, 1)") {
		t.Errorf("validate of a bad spec: exit %d, stderr %q", code, errOut)
	}
	for _, args := range [][]string{{"slo", "validate"}, {"slo", "validate", "missing.yaml"}, {"slo", "validate", "--prometheus", "ftp://x", sloSpec("availability.yaml")}} {
		if code, _, _ := runCLI(t, args...); code != exitBadInput {
			t.Errorf("%v: exit %d, want %d", args, code, exitBadInput)
		}
	}
}

func TestSLOGenerate(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	rules := filepath.Join(dir, "rules", "slo.yaml")
	os.MkdirAll(filepath.Dir(rules), 0o755)
	tests := filepath.Join(dir, "tests")
	code, _, errOut := runCLI(t, "slo", "generate", sloSpec("latency-native.yaml"), "--out", rules, "--tests", tests)
	if code != exitPass {
		t.Fatalf("generate: exit %d, stderr %s", code, errOut)
	}
	data, err := os.ReadFile(rules)
	if err != nil || !strings.HasPrefix(string(data), "# Generated by relia slo generate from latency-native.yaml. DO NOT EDIT.\ngroups:\n") {
		t.Fatalf("rules file: %v\n%.200s", err, data)
	}
	files, _ := filepath.Glob(filepath.Join(tests, "*.test.yaml"))
	if len(files) == 0 || !strings.Contains(errOut, "wrote "+files[0]) {
		t.Fatalf("test files %v, stderr %s", files, errOut)
	}
	test, _ := os.ReadFile(files[0])
	if !strings.Contains(string(test), "rule_files:\n  - ../rules/slo.yaml\n") {
		t.Errorf("test file does not name the rules relative to itself:\n%.300s", test)
	}
	if tool, err := exec.LookPath("promtool"); err == nil {
		cmd := exec.Command(tool, append([]string{"test", "rules"}, files...)...)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("promtool test rules on the CLI's output: %v\n%s", err, out)
		}
	}
	// Rules on stdout.
	code, out, _ := runCLI(t, "slo", "generate", sloSpec("availability.yaml"))
	if code != exitPass || !strings.Contains(out, "record: slo:sli_error:ratio_rate30d") {
		t.Errorf("generate to stdout: exit %d, output %.200q", code, out)
	}
	if code, _, errOut := runCLI(t, "slo", "generate", sloSpec("availability.yaml"), "--tests", tests); code != exitBadInput || !strings.Contains(errOut, "--tests needs --out") {
		t.Errorf("--tests without --out: exit %d, stderr %q", code, errOut)
	}
}

func TestSLODashboardImportSchema(t *testing.T) {
	t.Parallel()
	code, out, errOut := runCLI(t, "slo", "dashboard", sloSpec("availability.yaml"), sloSpec("latency-classic.yaml"))
	if code != exitPass {
		t.Fatalf("dashboard: exit %d, stderr %s", code, errOut)
	}
	var dash struct {
		Title  string `json:"title"`
		Panels []struct {
			Type    string `json:"type"`
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal([]byte(out), &dash); err != nil {
		t.Fatalf("dashboard is not JSON: %v", err)
	}
	if dash.Title != "SLOs: checkout, catalog" || len(dash.Panels) != 2*8 {
		t.Errorf("dashboard %q with %d panels, want 16", dash.Title, len(dash.Panels))
	}
	code, out, errOut = runCLI(t, "slo", "import", sloSpec("openslo.yaml"))
	if code != exitPass || !strings.HasPrefix(out, "kind: SLO\nversion: relia/v1\nmetadata:\n  name: web-availability\n") {
		t.Fatalf("import: exit %d, stderr %s, output:\n%s", code, errOut, out)
	}
	if _, err := slo.Parse("imported.yaml", []byte(out)); err != nil {
		t.Errorf("imported spec does not validate: %v", err)
	}
	code, out, _ = runCLI(t, "slo", "schema")
	if code != exitPass || !json.Valid([]byte(out)) || !strings.Contains(out, `"const": "SLO"`) {
		t.Errorf("schema: exit %d, output %.100q", code, out)
	}
}

// promAPI serves canned answers of Prometheus's HTTP API, as a server
// running relia's rules for one SLO would give them.
func promAPI(t *testing.T, remaining string) *httptest.Server {
	t.Helper()
	labels := `"sloth_id":"checkout-availability","sloth_service":"checkout","sloth_slo":"availability"`
	vector := func(series ...string) string {
		return `{"status":"success","data":{"resultType":"vector","result":[` + strings.Join(series, ",") + `]}}`
	}
	sample := func(name, extra, v string) string {
		return `{"metric":{"__name__":"` + name + `",` + labels + extra + `},"value":[1700000000,"` + v + `"]}`
	}
	answers := map[string]string{
		"slo:objective:ratio":                     vector(sample("slo:objective:ratio", "", "0.999")),
		"slo:error_budget:ratio":                  vector(sample("slo:error_budget:ratio", "", "0.001")),
		"slo:time_period:days":                    vector(sample("slo:time_period:days", "", "30")),
		"slo:period_error_budget_remaining:ratio": vector(sample("slo:period_error_budget_remaining:ratio", "", remaining)),
		`{__name__=~"slo:sli_error:ratio_rate.+"}`: vector(
			sample("slo:sli_error:ratio_rate5m", `,"sloth_window":"5m"`, "0.0144"),
			sample("slo:sli_error:ratio_rate1h", `,"sloth_window":"1h"`, "0.002"),
			sample("slo:sli_error:ratio_rate30d", `,"sloth_window":"30d"`, "0.0005")),
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/api/v1/query":
			a, ok := answers[r.URL.Query().Get("query")]
			if !ok {
				a = `{"status":"error","errorType":"bad_data","error":"unexpected query"}`
			}
			w.Write([]byte(a))
		case "/api/v1/alerts":
			w.Write([]byte(`{"status":"success","data":{"alerts":[{"labels":{"alertname":"CheckoutAvailabilityBudgetBurn",` + labels +
				`,"sloth_severity":"page"},"annotations":{},"state":"pending","activeAt":"2025-11-28T09:00:00Z","value":"1e-02"}]}}`))
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestSLOStatus(t *testing.T) {
	t.Parallel()
	srv := promAPI(t, "0.5")
	code, out, errOut := runCLI(t, "slo", "status", "--prometheus", srv.URL)
	if code != exitPass {
		t.Fatalf("status: exit %d, stderr %s", code, errOut)
	}
	want := "SLO                    OBJECTIVE  PERIOD  SLI      BUDGET LEFT  BURN RATES                      ALERTS\n" +
		"checkout-availability  99.9%      30d     99.950%  50.000%      5m 14.40x, 1h 2.00x, 30d 0.50x  page pending\n"
	if out != want {
		t.Errorf("status table:\n%s\nwant:\n%s", out, want)
	}
	code, out, _ = runCLI(t, "slo", "status", "--prometheus", srv.URL, "-o", "json", sloSpec("availability.yaml"))
	var st []slo.Status
	if code != exitPass || json.Unmarshal([]byte(out), &st) != nil || len(st) != 1 || *st[0].SLI != 0.9995 || st[0].Alerts[0].State != "pending" {
		t.Errorf("status -o json: exit %d, %s", code, out)
	}
	// An SLO that has overspent its budget fails the verdict.
	code, _, errOut = runCLI(t, "slo", "status", "--prometheus", promAPI(t, "-0.25").URL)
	if code != exitFailed || !strings.Contains(errOut, "error budget overspent: checkout-availability") {
		t.Errorf("overspent: exit %d, stderr %q", code, errOut)
	}
	// SLOs named by files must be in Prometheus.
	code, _, errOut = runCLI(t, "slo", "status", "--prometheus", srv.URL, sloSpec("latency-classic.yaml"))
	if code != exitRuntime || !strings.Contains(errOut, "no rules for SLO catalog-latency") {
		t.Errorf("missing SLO: exit %d, stderr %q", code, errOut)
	}
	for _, args := range [][]string{{"slo", "status"}, {"slo", "status", "--prometheus", srv.URL, "-o", "yaml"}} {
		if code, _, _ := runCLI(t, args...); code != exitBadInput {
			t.Errorf("%v: exit %d, want %d", args, code, exitBadInput)
		}
	}
}
