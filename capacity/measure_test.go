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

// TestMeasureRampsLive measures a worker pool with one ramped run: a ramp
// that holds each count for 3s is judged at each count, as steps are; a
// faster one in slices, each at its mean concurrency.
func TestMeasureRampsLive(t *testing.T) {
	t.Parallel()
	t.Run("held", func(t *testing.T) {
		t.Parallel()
		// 100 ms a request, as in TestMeasureFindsTheKneeOfAWorkerPool, so
		// that the generator's own time is small beside the service's.
		srv := workerPool(t, 100*time.Millisecond)
		var seen []float64
		m, err := Measure(context.Background(), getScenario(srv.URL+"/"), srv.URL, MeasureOptions{
			Concurrency: []int{1, 3}, Ramp: 9 * time.Second, StepDuration: 3 * time.Second,
			SLOs:     []*slo.SLO{latencySLO(t, "500ms", "95%")},
			Progress: func(s Step) { seen = append(seen, s.Concurrency) },
			Process:  &countingProcess{},
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(m.Steps) != 3 || fmt.Sprint(seen) != "[1 2 3]" {
			t.Fatalf("steps at %v, want one per count the ramp held, [1 2 3]", seen)
		}
		for i, st := range m.Steps {
			// each count is judged for the 2s after its first second
			if d := st.To.Sub(st.From); d != 2*time.Second || i > 0 && st.From != m.Steps[i-1].To.Add(time.Second) {
				t.Errorf("concurrency %v judged over %s to %s", st.Concurrency, st.From.Format(time.TimeOnly), st.To.Format(time.TimeOnly))
			}
			if st.Requests == 0 || len(st.SLOs) != 1 || !st.LittleChecked || math.Abs(st.LittleError) > LittleTolerance {
				t.Errorf("concurrency %v: %d requests, SLOs %+v, X·R %.2f", st.Concurrency, st.Requests, st.SLOs, st.Little)
			}
			// The process is sampled each second: 2 samples, 200 ms of
			// CPU, over each count's window.
			if want := 0.2 / float64(st.Requests); math.Abs(st.CPUPerRequest-want) > 1e-12 || st.Memory != 64<<20 {
				t.Errorf("concurrency %v: CPU per request %v, memory %d; want %v and 64 MiB", st.Concurrency, st.CPUPerRequest, st.Memory, want)
			}
		}
		if m.KneeStep() == nil || m.Recorder.Total().Latency.Count() == 0 {
			t.Errorf("no knee, or no requests recorded: %s", m.Verdict())
		}
	})
	t.Run("slices", func(t *testing.T) {
		t.Parallel()
		srv := workerPool(t, 20*time.Millisecond)
		m, err := Measure(context.Background(), getScenario(srv.URL+"/"), srv.URL, MeasureOptions{
			Concurrency: []int{1, 8}, Ramp: 5 * time.Second, StepDuration: 2 * time.Second,
		})
		if err != nil {
			t.Fatal(err)
		}
		// VUs floor(1 + 8t/5s), from 1 to one past the highest,
		// set every 100 ms: slices [1s, 3s) and [3s, 5s) hold 3.65 and
		// 6.8 on average.
		if len(m.Steps) != 2 || m.Steps[0].Concurrency != 3.65 || m.Steps[1].Concurrency != 6.8 {
			t.Fatalf("steps %+v: want two slices at mean concurrency 3.65 and 6.8", m.Steps)
		}
		for _, st := range m.Steps {
			if st.To.Sub(st.From) != 2*time.Second || st.Requests == 0 || !st.LittleChecked {
				t.Errorf("slice %+v", st)
			}
		}
	})
	for _, o := range []MeasureOptions{
		{Concurrency: []int{4}, Ramp: 10 * time.Second},
		{Concurrency: []int{1, 4}, Ramp: 5 * time.Second, StepDuration: 10 * time.Second},
		{Concurrency: []int{1, 4}, Ramp: 10500 * time.Millisecond},
	} {
		if _, err := Measure(context.Background(), getScenario("http://127.0.0.1:1/"), "x", o); err == nil {
			t.Errorf("%+v: want an error", o)
		}
	}
}

// countingProcess is a process that has used 100 ms more CPU at each
// sample, with 64 MiB resident.
type countingProcess struct{ n int }

func (p *countingProcess) Sample() (time.Duration, int64, error) {
	p.n++
	return time.Duration(p.n) * 100 * time.Millisecond, 64 << 20, nil
}
