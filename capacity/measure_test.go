package capacity

import (
	"context"
	"fmt"
	"math"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/relia-dev/relia/experiment"
	"github.com/relia-dev/relia/load"
	"github.com/relia-dev/relia/outcome"
	"github.com/relia-dev/relia/slo"
)

// workerPool is poolHandler on a loopback port of its own.
func workerPool(t *testing.T, d time.Duration) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(poolHandler(d))
	t.Cleanup(srv.Close)
	return srv
}

func getScenario(url string) *load.Scenario {
	return &load.Scenario{Metadata: load.Metadata{Name: "measure"}, Spec: load.ScenarioSpec{Requests: []load.RequestSpec{{Path: url}}}}
}

func TestMeasureFindsTheKneeOfAWorkerPool(t *testing.T) {
	t.Parallel()
	srv := workerPool(t, 100*time.Millisecond)
	// 95% within 300 ms: one or two requests in flight take 100 or 200
	// ms; four queue for 400 ms. The margins are wide because a busy
	// machine delays every request.
	s := latencySLO(t, "300ms", "95%")
	var seen []float64
	m, err := Measure(context.Background(), getScenario(srv.URL+"/"), srv.URL, MeasureOptions{
		Concurrency: []int{1, 2, 4}, StepDuration: 4 * time.Second, SLOs: []*slo.SLO{s},
		Progress: func(s Step) { seen = append(seen, s.Concurrency) },
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Steps) != 3 || fmt.Sprint(seen) != "[1 2 4]" {
		t.Fatalf("steps %+v, progress %v", m.Steps, seen)
	}
	if m.Steps[2].Met || m.Steps[2].P50 < 300*time.Millisecond {
		t.Errorf("4 in flight: met %v, p50 %s; want the SLO missed, queued for about 400 ms", m.Steps[2].Met, m.Steps[2].P50)
	}
	k := m.KneeStep()
	if k == nil || k.Concurrency > 2 || m.KneePerInstance <= 0 || m.KneePerInstance != k.Throughput {
		t.Fatalf("knee %+v (%v per instance)", k, m.KneePerInstance)
	}
	for _, st := range m.Steps {
		// a closed model with no think time keeps exactly N in flight
		if !st.LittleChecked || math.Abs(st.LittleError) > LittleTolerance {
			t.Errorf("concurrency %v: X·R = %.2f", st.Concurrency, st.Little)
		}
		if len(st.SLOs) != 1 || st.SLOs[0].ID != "api-latency" {
			t.Errorf("step SLOs %+v", st.SLOs)
		}
	}
	if m.Fit == nil || m.Recorder.Total().Latency.Count() == 0 {
		t.Errorf("fit %v (%s), recorder empty", m.Fit, m.FitError)
	}
	if v := m.Verdict(); !strings.Contains(v, "The knee is") || !strings.Contains(v, "per instance") {
		t.Errorf("verdict %q", v)
	}
}

func TestMeasureStopsAfterMissedSteps(t *testing.T) {
	t.Parallel()
	srv := workerPool(t, 20*time.Millisecond)
	s := latencySLO(t, "5ms", "99%") // nothing meets it
	m, err := Measure(context.Background(), getScenario(srv.URL+"/"), srv.URL, MeasureOptions{
		Concurrency: []int{1, 2, 4, 8}, StepDuration: 2 * time.Second, SLOs: []*slo.SLO{s}, StopAfter: 1,
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Steps) != 1 || m.KneeStep() != nil || !strings.Contains(m.Verdict(), "No step met every SLO") {
		t.Errorf("%d steps, knee %v: %s", len(m.Steps), m.KneeStep(), m.Verdict())
	}
}

func TestMeasureRejectsBadOptions(t *testing.T) {
	t.Parallel()
	sc := getScenario("http://127.0.0.1:1/")
	for _, o := range []MeasureOptions{
		{StepDuration: 1500 * time.Millisecond},
		{StepDuration: 2 * time.Second, Warmup: 2 * time.Second},
		{Concurrency: []int{0}},
	} {
		if _, err := Measure(context.Background(), sc, "x", o); err == nil {
			t.Errorf("%+v: want an error", o)
		}
	}
}

// stepped writes the outcomes of a closed-model stepped run whose
// service follows m: 4 s per step, X(N) requests a second, each taking
// N/X(N).
func stepped(t *testing.T, m USL, ns []int) *load.Result {
	t.Helper()
	rec, err := outcome.NewRecorder(outcome.Options{})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Date(2025, 11, 28, 9, 0, 0, 0, time.UTC)
	r := &load.Result{Model: load.Closed, Start: start, Requests: rec}
	at := start
	for _, n := range ns {
		x := m.Throughput(float64(n))
		lat := time.Duration(m.Latency(float64(n)) * float64(time.Second))
		for range 4 {
			r.Active = append(r.Active, load.Sample{T: at, V: n})
			for i := range int(math.Round(x)) {
				rec.Record(outcome.Outcome{Start: at.Add(time.Duration(i) * time.Second / time.Duration(math.Round(x))), Latency: lat, Status: 200})
			}
			at = at.Add(time.Second)
		}
	}
	r.End = at
	return r
}

func TestFromResultReadsSteppedRuns(t *testing.T) {
	t.Parallel()
	truth := USL{Lambda: 400, Sigma: 0.04, Kappa: 0.0015}
	r := stepped(t, truth, []int{1, 2, 4, 8, 16, 32, 64})
	s := latencySLO(t, "5ms", "99%")
	m, err := FromResult(r, "results.json", []*slo.SLO{s}, 2)
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Steps) != 7 {
		t.Fatalf("%d steps: %+v", len(m.Steps), m.Steps)
	}
	for i, st := range m.Steps {
		if want := truth.Throughput(st.Concurrency); math.Abs(st.Throughput-math.Round(want)) > 0.01 {
			t.Errorf("step %d: throughput %v, want %v", i, st.Throughput, math.Round(want))
		}
		if math.Abs(st.LittleError) > 0.01 {
			t.Errorf("step %d: X·R %v for N %v", i, st.Little, st.Concurrency)
		}
		// latency N/X(N) passes 5 ms between 16 (4.9 ms) and 32 (9.3 ms)
		if want := truth.Latency(st.Concurrency) <= 0.005; st.Met != want {
			t.Errorf("step %d (N %v, R %s): met %v", i, st.Concurrency, st.Mean, st.Met)
		}
	}
	if k := m.KneeStep(); k == nil || k.Concurrency != 16 || m.KneePerInstance != k.Throughput/2 {
		t.Errorf("knee %+v, per instance %v", k, m.KneePerInstance)
	}
	// two instances served it: the model is per instance
	if m.Fit == nil || !within(m.Fit.Model.Sigma, truth.Sigma, 0.05) || !within(m.Fit.Model.Kappa, truth.Kappa, 0.05) || !within(m.Fit.Model.Lambda, truth.Lambda/2, 0.05) {
		t.Errorf("fit %+v, want σ and κ of %+v and half its λ", m.Fit, truth)
	}
	if _, err := FromResult(&load.Result{Model: load.Open, Requests: r.Requests}, "x", nil, 1); err != ErrNoSteps {
		t.Errorf("an open-model run without steps: %v", err)
	}
}

func TestProcessSamplerReadsThisProcess(t *testing.T) {
	t.Parallel()
	s, err := NewProcessSampler(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	cpu0, rss, err := s.Sample()
	if err != nil || rss <= 0 {
		t.Fatalf("rss %d: %v", rss, err)
	}
	// burn a little CPU: the count must not go backwards, and moves
	x := 0
	for i := range 50_000_000 {
		x ^= i
	}
	cpu1, _, _ := s.Sample()
	if cpu1 < cpu0 || x == 1 {
		t.Errorf("cpu %s then %s", cpu0, cpu1)
	}
}

func TestFromJournalReadsClosedModelPhases(t *testing.T) {
	t.Parallel()
	start := time.Date(2025, 11, 28, 9, 0, 0, 0, time.UTC)
	truth := USL{Lambda: 100, Sigma: 0.1, Kappa: 0.01}
	j := &experiment.Journal{Experiment: "steps", Plan: &experiment.Plan{}, Verdict: &experiment.Verdict{}}
	for i, n := range []int{1, 2, 4, 8, 16} {
		name := fmt.Sprintf("n%d", n)
		j.Plan.Phases = append(j.Plan.Phases, experiment.PlannedPhase{Name: name, Load: experiment.Load{VUs: n}})
		from := start.Add(time.Duration(i) * 10 * time.Second)
		x := truth.Throughput(float64(n))
		met := n <= 4
		j.Verdict.Phases = append(j.Verdict.Phases, experiment.PhaseVerdict{Name: name, From: from, To: from.Add(10 * time.Second),
			Stats: experiment.Stats{Requests: int64(math.Round(10 * x))},
			SLOs:  []slo.Evaluation{{ID: "api-latency", SLI: 0.99, Met: met}}})
	}
	// an open-model phase is not a step
	j.Plan.Phases = append(j.Plan.Phases, experiment.PlannedPhase{Name: "open", Load: experiment.Load{Rate: 50}})
	j.Verdict.Phases = append(j.Verdict.Phases, experiment.PhaseVerdict{Name: "open", From: start, To: start.Add(time.Second)})
	m, err := FromJournal(j, "journal.json", 1)
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Steps) != 5 || m.KneeStep() == nil || m.KneeStep().Concurrency != 4 || m.Steps[0].LittleChecked {
		t.Fatalf("steps %+v knee %v", m.Steps, m.KneeStep())
	}
	if m.Fit == nil || !within(m.Fit.Model.Sigma, truth.Sigma, 0.05) || !within(m.Fit.Model.Kappa, truth.Kappa, 0.05) {
		t.Errorf("fit %+v", m.Fit)
	}
	if _, err := FromJournal(&experiment.Journal{Experiment: "x"}, "j", 1); err == nil {
		t.Error("a journal without a verdict: want an error")
	}
}
