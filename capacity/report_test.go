package capacity

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/relia-dev/relia/capacity/autoscale"
	"github.com/relia-dev/relia/report/reporttest"
	"github.com/relia-dev/relia/slo"
)

// TestReportDatesARecordedCurve: a simulated curve that stands for a
// day (or a forecast) is drawn from that day, not from a nominal start.
func TestReportDatesARecordedCurve(t *testing.T) {
	t.Parallel()
	a, err := Assess(Scenario{Traffic: TrafficFromCounts(time.Minute, []float64{60, 120}), Replica: flat, Scaling: Scaling{HPA: fixed(2)}})
	if err != nil {
		t.Fatal(err)
	}
	day := time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC)
	var b strings.Builder
	if err := (ReportInput{Assessment: a, TrafficStart: day}).Page().WriteHTML(&b); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "2026-11-27 00:00:00 UTC") {
		t.Error("the page does not say the curve starts on 2026-11-27")
	}
}

func TestReportInChromium(t *testing.T) {
	t.Parallel()
	truth := USL{Lambda: 400, Sigma: 0.04, Kappa: 0.0015}
	m, err := FromResult(stepped(t, truth, []int{1, 2, 4, 8, 16, 32, 64}), "results.json", []*slo.SLO{latencySLO(t, "5ms", "99%")}, 1)
	if err != nil {
		t.Fatal(err)
	}
	p, err := NewPlan(PlanInput{Capacity: m.KneePerInstance, CapacitySource: "measured knee", Peak: 20000, PeakSource: "given", Base: 2000, Spare: 1})
	if err != nil {
		t.Fatal(err)
	}
	sp := Spike{Base: 2000, Peak: 20000, Factor: 10, Rise: 30 * time.Second}
	b, why := p.Behavior(sp)
	a, err := Assess(Scenario{
		Traffic: Traffic{{0, 2000}, {60 * time.Second, 2000}, {90 * time.Second, 20000}, {300 * time.Second, 20000}},
		Replica: Replica{Model: m.Fit.Model, StartupDelay: 45 * time.Second},
		Scaling: Scaling{HPA: &autoscale.HPA{Min: int32(p.MinReplicas), Max: int32(p.MaxReplicas), Target: p.PerReplica, Behavior: &b}},
		SLOs:    []*slo.SLO{latencySLO(t, "50ms", "95%")},
	})
	if err != nil {
		t.Fatal(err)
	}
	page := ReportInput{Title: "Black Friday capacity", Measurement: m, Plan: p, Behavior: why, Assessment: a}.Page()
	path := filepath.Join(t.TempDir(), "capacity.html")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := page.WriteHTML(f); err != nil {
		t.Fatal(err)
	}
	f.Close()
	res := reporttest.OpenInChromium(t, path)
	reporttest.SaveArtifact(t, "capacity.png", res.ScreenshotPNG)
	if len(res.ConsoleErrors)+len(res.FailedRequests) > 0 || len(res.Requests) != 1 {
		t.Errorf("console errors %v, failed requests %v, requests %v", res.ConsoleErrors, res.FailedRequests, res.Requests)
	}
	var charts int
	res.Eval(t, `document.querySelectorAll("svg").length`, &charts)
	if charts < 6 { // 2 of the measurement, 4 of the simulation
		t.Errorf("%d charts drawn", charts)
	}
	// The USL curve by concurrency: the seven steps as dots, the knee as
	// one, the model as a line.
	var dots []int
	res.Eval(t, `Array.from(document.querySelectorAll("figure")).filter(f => f.textContent.includes("Throughput per instance by concurrency")).flatMap(f => Array.from(f.querySelectorAll("path.dots")).map(p => +p.getAttribute("data-points")))`, &dots)
	if !slices.Equal(dots, []int{7, 1}) {
		t.Errorf("dots of the USL chart (measured, knee): %v, want [7 1]", dots)
	}
	var text string
	res.Eval(t, `document.body.innerText`, &text)
	for _, want := range []string{"Scalability", "(knee)", "USL fit X(N)", "per replica:", "Simulation", "breaches api-latency", "Autoscaler decisions"} {
		if !strings.Contains(text, want) {
			t.Errorf("the page lacks %q", want)
		}
	}
}
