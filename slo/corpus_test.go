package slo

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// corpus is what relia must make of each spec in testdata/corpus, real
// examples from Sloth's and OpenSLO's repositories: "" for a spec it
// accepts, whose rules must pass promtool check rules and their own
// generated promtool tests, or the reason it refuses it with.
var corpus = map[string]string{
	"sloth/getting-started.yml":            "", // with the alert_for plugin, whose for: relia applies itself
	"sloth/home-wifi.yml":                  "",
	"sloth/k8s-getting-started.yml":        "",
	"sloth/k8s-home-wifi.yml":              "",
	"sloth/k8s-multifile.yml":              "",
	"sloth/kubernetes-apiserver.yml":       "",
	"sloth/multifile.yml":                  "",
	"sloth/no-alerts.yml":                  "",
	"sloth/openslo-getting-started.yml":    `"openslo/v1alpha" is not a format relia reads (want relia/v1, openslo/v1, prometheus/v1 or sloth.slok.dev/v1); relia reads OpenSLO's released v1`,
	"sloth/plugin-getting-started.yml":     "slos[0].sli.plugin: sloth SLI plugins are Go code relia cannot run; write the SLI as events (error_query and total_query)",
	"sloth/plugin-k8s-getting-started.yml": "spec.slos[0].sli.plugin: sloth SLI plugins are Go code relia cannot run; write the SLI as events (errorQuery and totalQuery)",
	"sloth/raw-home-wifi.yml":              "slos[0].sli.raw: a raw error-ratio SLI cannot be imported: relia sums events over long windows rather than averaging ratios",
	"sloth/windows-custom-30d.yaml":        "kind: AlertWindows sets the alert windows of sloth's command line, not SLOs",
	"openslo/occurences-slo.yaml":          "spec.indicator.spec.thresholdMetric: threshold metrics cannot be imported",
	"openslo/ratio-timeslices.yaml":        `spec.budgetingMethod: "RatioTimeslices" cannot be imported: relia budgets occurrences (events), not time slices`,
}

// slothTwins are the corpus's Sloth Kubernetes resources that have a
// prometheus/v1 twin in it: TestSlothKubernetesForm shows that each
// generates its twin's rules and tests, so TestCorpus runs promtool's
// tests once for the two.
var slothTwins = map[string]string{"sloth/k8s-home-wifi.yml": "sloth/home-wifi.yml", "sloth/k8s-multifile.yml": "sloth/multifile.yml"}

// TestCorpus: every spec of the corpus is accepted with rules promtool
// passes, or refused with its reason; no file of the corpus is left out.
func TestCorpus(t *testing.T) {
	t.Parallel()
	tool := promtool(t)
	files, err := filepath.Glob(filepath.Join("testdata", "corpus", "*", "*.y*ml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != len(corpus) {
		t.Errorf("%d files in testdata/corpus, %d in the table", len(files), len(corpus))
	}
	for _, path := range files {
		name := filepath.ToSlash(strings.TrimPrefix(path, filepath.Join("testdata", "corpus")+string(filepath.Separator)))
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			want, ok := corpus[name]
			if !ok {
				t.Fatalf("%s is not in the corpus table", name)
			}
			slos, err := ReadFiles(path)
			if want != "" {
				if err == nil || !strings.Contains(err.Error(), want) {
					t.Fatalf("got %v, want a refusal containing %q", err, want)
				}
				if !strings.HasPrefix(err.Error(), path+":") {
					t.Errorf("the refusal %q does not name the file and position", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			checkWithPromtool(t, tool, slos, slothTwins[name] == "")
		})
	}
}

// checkWithPromtool generates the rules and tests of slos, as relia slo
// generate --tests does, and runs promtool on them: check rules with
// every lint fatal, then (with runTests) the generated tests.
func checkWithPromtool(t *testing.T, tool string, slos []*SLO, runTests bool) {
	t.Helper()
	rules, tests, err := Generate(slos, "rules.yaml")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	data, err := rules.Marshal("")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "rules.yaml"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := runTool(t, dir, tool, "check", "rules", "--lint=all", "--lint-fatal", "rules.yaml"); err != nil {
		t.Fatalf("promtool check rules: %v\n%s", err, out)
	}
	if len(tests) == 0 {
		t.Fatal("no tests generated")
	}
	if !runTests {
		return
	}
	args := []string{"test", "rules"}
	for _, f := range tests {
		b, err := f.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f.Name), b, 0o644); err != nil {
			t.Fatal(err)
		}
		args = append(args, f.Name)
	}
	if out, err := runTool(t, dir, tool, args...); err != nil {
		t.Fatalf("promtool test rules: %v\n%s", err, out)
	}
}

// TestSlothKubernetesForm: Sloth's PrometheusServiceLevel and its
// prometheus/v1 twin give the same rules, the format's name aside.
func TestSlothKubernetesForm(t *testing.T) {
	t.Parallel()
	generated := func(name string) string {
		slos, err := ReadFiles(filepath.Join("testdata", "corpus", filepath.FromSlash(name)))
		if err != nil {
			t.Fatal(err)
		}
		rules, tests, err := Generate(slos, "rules.yaml")
		if err != nil {
			t.Fatal(err)
		}
		b, err := rules.Marshal("")
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range tests {
			tb, err := f.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			b = append(b, tb...)
		}
		return strings.ReplaceAll(string(b), "sloth_spec: "+FormatSlothK8s, "sloth_spec: "+FormatSloth)
	}
	for k8s, plain := range slothTwins {
		if generated(k8s) != generated(plain) {
			t.Errorf("%s and %s generate different rules or tests", k8s, plain)
		}
	}
}

// TestExampleSpec: the spec docs/slo.md walks through generates rules
// promtool accepts, and tests.
func TestExampleSpec(t *testing.T) {
	t.Parallel()
	slos, err := ReadFiles(filepath.Join("..", "examples", "slo.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(slos) != 2 || slos[1].Spec.SLI.Latency == nil {
		t.Fatalf("examples/slo.yaml holds %d SLOs, want an availability and a latency one", len(slos))
	}
	checkWithPromtool(t, promtool(t), slos, false)
}
