package main

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/yaml"
)

// capacitySLOs are an availability SLO, which measure judges (latency on
// a busy test machine is no one's to promise), and a latency SLO, which
// the simulation judges on the model.
const (
	availabilitySLO = `kind: SLO
version: relia/v1
metadata: {name: availability}
spec:
  service: api
  objective: 99%
  sli: {availability: {goodClasses: [ok]}}
`
	capacitySLO = `kind: SLO
version: relia/v1
metadata: {name: latency}
spec:
  service: api
  objective: 95%
  sli: {latency: {threshold: 50ms}}
`
)

// TestCapacityPipeline runs measure, plan and simulate end to end against
// a loopback service of one worker (20 ms a request): the pipeline, not
// the accuracy (bench/capacity holds that).
func TestCapacityPipeline(t *testing.T) {
	t.Parallel()
	sem := make(chan struct{}, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sem <- struct{}{}
		time.Sleep(20 * time.Millisecond)
		<-sem
		fmt.Fprintln(w, "ok")
	}))
	defer srv.Close()
	dir := t.TempDir()
	sloFile, availFile := filepath.Join(dir, "slo.yaml"), filepath.Join(dir, "availability.yaml")
	if err := os.WriteFile(sloFile, []byte(capacitySLO), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(availFile, []byte(availabilitySLO), 0o644); err != nil {
		t.Fatal(err)
	}
	m := filepath.Join(dir, "m.json")
	code, out, errOut := runCLI(t, "capacity", "measure", srv.URL+"/", "--concurrency", "1,2,3,4", "--step", "2s", "--slo", availFile, "--out", m, "--html", filepath.Join(dir, "m.html"))
	if code != exitPass || !strings.Contains(out, "(knee)") || !strings.Contains(out, "USL: λ") || !strings.Contains(errOut, "concurrency 1") {
		t.Fatalf("measure: code %d\n%s\n%s", code, out, errOut)
	}

	manifests := filepath.Join(dir, "k8s.yaml")
	code, out, errOut = runCLI(t, "capacity", "plan", "--measurement", m, "--peak", "200", "--base", "40", "--spare", "1", "--name", "api", "--out", manifests)
	if code != exitPass || !strings.Contains(out, "autoscaler: minReplicas") || !strings.Contains(out, "measured knee at concurrency") {
		t.Fatalf("plan: code %d\n%s\n%s", code, out, errOut)
	}
	if code, out, _ := runCLI(t, "capacity", "plan", "--measurement", m, "--from-model", "--peak", "200"); code != exitPass || !strings.Contains(out, "USL peak at concurrency") {
		t.Errorf("plan from the model: code %d\n%s", code, out)
	}
	data, err := os.ReadFile(manifests)
	if err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for _, doc := range strings.Split(string(data), "---\n")[1:] {
		var h struct{ Kind string }
		if err := yaml.Unmarshal([]byte(doc), &h); err != nil {
			t.Fatal(err)
		}
		kinds = append(kinds, h.Kind)
	}
	if strings.Join(kinds, ",") != "HorizontalPodAutoscaler,ScaledObject,PodDisruptionBudget" {
		t.Errorf("manifests %v (no CPU measured: no VPA)", kinds)
	}

	traffic := filepath.Join(dir, "spike.csv")
	if err := os.WriteFile(traffic, []byte("t,rate\n0,30\n20s,30\n21s,200\n80s,200\n81s,30\n120s,30\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	html := filepath.Join(dir, "report.html")
	code, out, errOut = runCLI(t, "capacity", "simulate", "--measurement", m, "--traffic", traffic, "--slo", sloFile, "--startup", "20s", "--html", html)
	if code != exitFailed || !strings.Contains(out, "breaches api-latency") || !strings.Contains(out, "keeps it") {
		t.Fatalf("simulate: code %d\n%s\n%s", code, out, errOut)
	}
	if page, err := os.ReadFile(html); err != nil || !strings.Contains(string(page), "Simulation") || !strings.Contains(string(page), "Scalability") {
		t.Errorf("report: %v", err)
	}
}

func TestCapacityPlanSpreadsheetAndBadInput(t *testing.T) {
	t.Parallel()
	code, out, _ := runCLI(t, "capacity", "plan", "--current-replicas", "6", "--current-rps", "900", "--peak", "4000")
	if code != exitPass || !strings.Contains(out, "34.67 → 35 replicas") || !strings.Contains(out, "spreadsheet: 6 × 4000 ÷ 900 × 1.3 = 34.67 → 35 replicas") {
		t.Errorf("spreadsheet plan: code %d\n%s", code, out)
	}
	for _, args := range [][]string{
		{"capacity", "plan", "--peak", "100"},
		{"capacity", "plan", "--capacity", "10"},
		{"capacity", "plan", "--capacity", "10", "--peak", "100", "--utilisation", "150%"},
		{"capacity", "plan", "--capacity", "10", "--peak", "100", "--zones", "1"},
		{"capacity", "simulate", "--capacity", "10"},
		{"capacity", "measure", "http://127.0.0.1:1/", "--step", "500ms"},
		{"capacity", "measure", "http://127.0.0.1:1/", "--ramp", "20s", "--concurrency", "4"},
		{"capacity", "measure", "http://127.0.0.1:1/", "--ramp", "5s", "--step", "10s"},
		{"capacity", "measure", "http://127.0.0.1:1/", "--ramp", "10500ms"},
		{"capacity", "measure", "http://127.0.0.1:1/", "--ramp", "20s", "--warmup", "2s"},
		{"capacity", "measure", "http://127.0.0.1:1/", "--ramp", "20s", "--stop-after", "1"},
		{"capacity", "measure", "nothing.json"},
	} {
		if code, _, errOut := runCLI(t, args...); code != exitBadInput {
			t.Errorf("%v: code %d, want %d: %s", args, code, exitBadInput, errOut)
		}
	}
}
