package experiment

import (
	"bytes"
	"math"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/relia-dev/relia/internal/config/configtest"
	"github.com/relia-dev/relia/load"
	"github.com/relia-dev/relia/outcome"
	"github.com/relia-dev/relia/slo"
)

// t0 is the start of every synthetic run: on a bucket boundary, as the
// runner starts runs.
var t0 = time.Date(2025, 11, 28, 9, 0, 0, 0, time.UTC)

// judgedPlan is a 60-second run: a 20s baseline, 20s with a gateway
// fault on payments, 20s of recovery; an availability SLO of 99.9% and a
// latency SLO of 99% under 100ms.
func judgedPlan(t *testing.T) *Plan {
	t.Helper()
	src := exp("  target: {url: 'http://127.0.0.1:8080'}\n" +
		"  slos:\n    - id: api-availability\n" +
		"    - inline: {metadata: {name: latency}, spec: {service: api, objective: 99%, sli: {latency: {threshold: 100ms}}}}\n" +
		"  phases:\n" +
		"    - {name: baseline, duration: 20s, load: {rate: 10}}\n" +
		"    - name: degraded\n      duration: 20s\n      load: {rate: 10}\n" +
		"      faults: [{name: pay-errors, gateway: {route: payments, abortStatus: 503, percentage: 50%}}]\n" +
		"      thresholds: {http_req_failed: ['rate<0.6']}\n" +
		"    - {name: recovery, duration: 20s, load: {rate: 10}}\n" +
		"  thresholds: {http_req_duration: ['p(99)<500']}\n")
	p, err := Parse("e.yaml", []byte(src), Options{})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// second describes the traffic of one second of a synthetic run.
type traffic struct {
	n, failures int
	latency     time.Duration
}

// record fills a recorder with one entry of perSecond per second from
// t0, each second's requests spread over it.
func record(t *testing.T, perSecond []traffic) *outcome.Recorder {
	t.Helper()
	rec, err := outcome.NewRecorder(outcome.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for s, tr := range perSecond {
		for i := range tr.n {
			o := outcome.Outcome{Start: t0.Add(time.Duration(s)*time.Second + time.Duration(i)*time.Second/time.Duration(tr.n)), Latency: tr.latency, Status: 200}
			if i < tr.failures {
				o.Status = 503
			}
			o.Class = outcome.ClassifyResponse(o.Status, nil)
			rec.Record(o)
		}
	}
	return rec
}

// run builds per-second traffic: 10 requests a second at 20ms, with the
// seconds in [from, to) given by during.
func run(seconds int, from, to int, during traffic) []traffic {
	out := make([]traffic, seconds)
	for s := range out {
		out[s] = traffic{n: 10, latency: 20 * time.Millisecond}
		if s >= from && s < to {
			out[s] = during
		}
	}
	return out
}

func TestJudgeHealthyRun(t *testing.T) {
	t.Parallel()
	p := judgedPlan(t)
	rec := record(t, run(60, 0, 0, traffic{}))
	v, err := Judge(p, rec, PlannedTimeline(p, t0))
	if err != nil {
		t.Fatal(err)
	}
	if !v.Passed || v.ExitCode != ExitPass || v.Run.Stats.Requests != 600 || v.Run.Stats.Throughput != 10 {
		t.Errorf("passed %v exit %d, %d requests at %v/s; want a pass of 600 at 10/s (failures %v)", v.Passed, v.ExitCode, v.Run.Stats.Requests, v.Run.Stats.Throughput, v.Failures)
	}
	if len(v.Phases) != 3 || v.Phases[1].Comparison == nil || v.Phases[0].Comparison != nil {
		t.Fatalf("phases %d, comparisons %v %v; want 3 phases, the non-baseline ones compared", len(v.Phases), v.Phases[0].Comparison, v.Phases[1].Comparison)
	}
	if c := v.Phases[1].Comparison.P99; c.Significant || c.Delta != 0 {
		t.Errorf("identical phases differ: %+v", c)
	}
	if f := v.Faults[0]; len(f.Breached) != 0 || !f.Detected() || !f.Recoveries[0].Recovered || f.Recoveries[0].Time != 0 {
		t.Errorf("fault that did nothing: %+v", f)
	}
	if sc := Score(p, v); sc.Grade != GradeA {
		t.Errorf("grade %s, want A: %+v", sc.Grade, sc.Results)
	}
}

// TestJudgeFaultRun: half the requests fail during the fault, and for 7
// seconds after it; the verdict fails, the alerts detect the fault in
// one second and the SLI recovers 7 seconds after the fault ends.
func TestJudgeFaultRun(t *testing.T) {
	t.Parallel()
	p := judgedPlan(t)
	rec := record(t, run(60, 20, 47, traffic{n: 10, failures: 5, latency: 20 * time.Millisecond}))
	tl := PlannedTimeline(p, t0)
	v, err := Judge(p, rec, tl)
	if err != nil {
		t.Fatal(err)
	}
	if v.Passed || v.ExitCode != ExitFail || len(v.Failures) != 1 || !strings.Contains(v.Failures[0], "api-availability") {
		t.Errorf("passed %v exit %d failures %q; want a failure of api-availability only", v.Passed, v.ExitCode, v.Failures)
	}
	// 27 seconds of 5 failures among 10: 135 of 600 fail.
	if e := v.Run.SLOs[0]; e.Total != 600 || e.Good != 465 {
		t.Errorf("run availability %d good of %d, want 465 of 600", e.Good, e.Total)
	}
	f := v.Faults[0]
	if len(f.Breached) != 1 || f.Breached[0] != "api-availability" {
		t.Errorf("breached %v, want api-availability", f.Breached)
	}
	// With 200 good events before it, 5 failures of 10 in the first
	// second of the fault make 5/210 = 2.4% of the page alert's windows
	// fail, above 14.4 x 0.1%: it fires at the end of that second.
	var page *Detection
	for i, d := range f.Detections {
		if d.SLO == "api-availability" && d.Severity == slo.Page {
			page = &f.Detections[i]
		}
	}
	if page == nil || !page.Detected || page.Time != time.Second || page.AlreadyFiring {
		t.Errorf("page detection %+v, want detected in 1s", page)
	}
	// The fault ends at 40s; seconds 40-46 still fail, and the first
	// 5-second window clear of failures starts at 47s.
	if r := f.Recoveries[0]; !r.Recovered || r.Time != 7*time.Second {
		t.Errorf("availability recovery %+v, want 7s", r)
	}
	if r := f.Recoveries[1]; !r.Recovered || r.Time != 0 {
		t.Errorf("latency recovery %+v, want 0s: latency was never hurt", r)
	}
	// Error rate: 0 in the baseline, 0.5 every second of the fault.
	if c := v.Phases[1].Comparison.ErrorRate; c.Delta != 0.5 || !c.Significant || c.Low != 0.5 || c.High != 0.5 {
		t.Errorf("error rate change %+v, want exactly +0.5", c)
	}
	sc := Score(p, v)
	if sc.Grade != GradeD {
		t.Errorf("grade %s, want D (the run missed an SLO): %+v", sc.Grade, sc.Results)
	}
	failed := map[string]bool{}
	for _, r := range sc.Results {
		if !r.Passed {
			failed[r.ID] = true
		}
	}
	if !failed["run-slos"] || !failed["phase-slos"] || failed["detected"] || failed["recovered"] || len(failed) != 2 {
		t.Errorf("failed rules %v, want run-slos and phase-slos", failed)
	}
	var b strings.Builder
	b.WriteString(Summary(p, v, sc))
	configtest.Golden(t, filepath.Join("testdata", "summary.golden"), []byte(b.String()))
}

// TestComparisonHandWorked: a baseline whose per-second p99 alternates
// 19 and 21 ms against a fault phase at 219 and 221 ms: +200 ms, with a
// 95% interval of about ±0.66 ms that excludes 0.
func TestComparisonHandWorked(t *testing.T) {
	t.Parallel()
	p := judgedPlan(t)
	per := make([]traffic, 60)
	for s := range per {
		ms := 19 + 2*(s%2)
		if s >= 20 && s < 40 {
			ms += 200
		}
		per[s] = traffic{n: 10, latency: time.Duration(ms) * time.Millisecond}
	}
	v, err := Judge(p, record(t, per), PlannedTimeline(p, t0))
	if err != nil {
		t.Fatal(err)
	}
	c := v.Phases[1].Comparison.P99
	// Means 20 and 220 (histogram cells within 0.1%); standard deviations
	// 1.026 each over 20 seconds: standard error 0.324, 38 degrees of
	// freedom, t = 2.024.
	if math.Abs(c.Delta-200) > 0.5 || !c.Significant || c.Low < 198.8 || c.High > 201.2 || c.High-c.Low < 1.2 || c.High-c.Low > 1.45 {
		t.Errorf("p99 change %+v, want +200ms within [199.3, 200.7] or so", c)
	}
	if c.BaselineSamples != 20 || c.PhaseSamples != 20 || c.Unit != "ms" || c.Confidence != 0.95 {
		t.Errorf("samples %d and %d, unit %s, confidence %v", c.BaselineSamples, c.PhaseSamples, c.Unit, c.Confidence)
	}
}

func TestStudentTQuantile(t *testing.T) {
	t.Parallel()
	// Two-sided 95% critical values from the t table.
	for _, tc := range []struct{ df, want float64 }{{1, 12.7062}, {2, 4.3027}, {5, 2.5706}, {10, 2.2281}, {30, 2.0423}, {1e6, 1.9600}} {
		if got := studentTQuantile(0.975, tc.df); math.Abs(got-tc.want) > 5e-4 {
			t.Errorf("t(0.975, %v) = %.4f, want %.4f", tc.df, got, tc.want)
		}
	}
}

func TestWelch(t *testing.T) {
	t.Parallel()
	// Means 3 and 6, variances 2.5 and 10: standard error sqrt(0.5+2) =
	// 1.5811, Welch-Satterthwaite df 6.25/1.0625 = 5.882, t = 2.459 (between the table's 2.5706 at 5 and 2.4469 at 6).
	diff, lo, hi, ok := welch([]float64{1, 2, 3, 4, 5}, []float64{2, 4, 6, 8, 10}, 0.95)
	if !ok || diff != 3 || math.Abs(lo-(3-2.459*1.5811)) > 0.005 || math.Abs(hi-(3+2.459*1.5811)) > 0.005 {
		t.Errorf("welch = %v [%v, %v] %v; want 3 [-0.888, 6.888]", diff, lo, hi, ok)
	}
	if _, _, _, ok := welch([]float64{1}, []float64{1, 2}, 0.95); ok {
		t.Error("an interval from one sample")
	}
}

// TestCounterAgreesWithEvaluate: the verdict's per-bucket SLO counts are
// slo.Evaluate's.
func TestCounterAgreesWithEvaluate(t *testing.T) {
	t.Parallel()
	p := judgedPlan(t)
	per := run(30, 10, 20, traffic{n: 10, failures: 3, latency: 150 * time.Millisecond})
	rec := record(t, per)
	secs := collect(p, rec, t0, t0.Add(30*time.Second))
	for i, s := range p.SLOs {
		var good, total int64
		for _, sec := range secs {
			good, total = good+sec.sloGood[i], total+sec.sloTotal[i]
		}
		ev, err := slo.Evaluate(s.SLO, rec, t0, t0.Add(30*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		if good != ev.Good || total != ev.Total {
			t.Errorf("%s: counted %d good of %d, Evaluate %d of %d", s.ID, good, total, ev.Good, ev.Total)
		}
	}
}

func TestJudgeAbortedRun(t *testing.T) {
	t.Parallel()
	p := judgedPlan(t)
	rec := record(t, run(30, 20, 30, traffic{n: 10, failures: 10, latency: 20 * time.Millisecond}))
	tl := PlannedTimeline(p, t0)
	tl.End = t0.Add(30 * time.Second)
	tl.Phases = tl.Phases[:2]
	tl.Phases[1].End = tl.End
	tl.Faults[0].End, tl.Faults[0].EndReason = tl.End, EndRolledBackAbort
	tl.Abort = &Breach{Condition: "burn", Kind: AbortBurnRate, Phase: "degraded", Value: 1000, Limit: 100, At: tl.End, Reason: "burning"}
	v, err := Judge(p, rec, tl)
	if err != nil {
		t.Fatal(err)
	}
	if !v.Aborted || v.ExitCode != ExitAborted || len(v.Phases) != 2 {
		t.Errorf("aborted %v exit %d, %d phases; want aborted, exit 3, 2 phases", v.Aborted, v.ExitCode, len(v.Phases))
	}
	sc := Score(p, v)
	if sc.Grade != GradeF {
		t.Errorf("grade %s, want F", sc.Grade)
	}
	if r := v.Faults[0].Recoveries[0]; r.Recovered {
		t.Errorf("recovered %+v after a fault that ran to the end", r)
	}

	// The journal keeps every field through a round trip.
	j := NewJournal(p, rec, tl, v, &sc, v.ExitCode)
	if len(j.Series) != 30 || j.Series[25].Errors != 10 || j.Series[0].P99 < 19.9 || j.Seed != 7 {
		t.Fatalf("series of %d samples, errors %d, p99 %v, seed %d", len(j.Series), j.Series[25].Errors, j.Series[0].P99, j.Seed)
	}
	var first bytes.Buffer
	if err := j.Encode(&first); err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(first.Bytes(), []byte(`\u003c`)) || !bytes.Contains(first.Bytes(), []byte(`p(99)<500`)) {
		t.Errorf("the journal escapes the thresholds' comparisons for HTML")
	}
	back, err := DecodeJournal(bytes.NewReader(first.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	var second bytes.Buffer
	if err := back.Encode(&second); err != nil {
		t.Fatal(err)
	}
	if first.String() != second.String() {
		t.Errorf("journal changed in a round trip:\n%s\n%s", first.String(), second.String())
	}
	if back.Faults[0].EndReason != EndRolledBackAbort || back.Abort.Condition != "burn" || back.Scorecard.Grade != GradeF || back.ExitCode != ExitAborted {
		t.Errorf("decoded journal lost fields: %+v", back)
	}
	for _, bad := range []struct{ name, from, to string }{
		{"schema", `"schema": "relia/journal/v1"`, `"schema": "relia/journal/v9"`},
		{"unknown field", `"exit_code"`, `"exit_kode"`},
	} {
		if _, err := DecodeJournal(strings.NewReader(strings.Replace(first.String(), bad.from, bad.to, 1))); err == nil {
			t.Errorf("%s: a bad journal decoded", bad.name)
		}
	}
}

// backToBackPlan has two faults on one route, back to back in the
// middle phase: harmless from 10s to 15s, then breaking to 20s.
func backToBackPlan(t *testing.T) *Plan {
	t.Helper()
	src := exp("  target: {url: 'http://127.0.0.1:8080'}\n" +
		"  slos:\n    - id: api-availability\n" +
		"  phases:\n" +
		"    - {name: baseline, duration: 10s, load: {rate: 10}}\n" +
		"    - name: trouble\n      duration: 10s\n      load: {rate: 10}\n" +
		"      faults:\n" +
		"        - {name: harmless, duration: 5s, gateway: {route: payments, delay: 1ms}}\n" +
		"        - {name: breaking, start: 5s, gateway: {route: payments, abortStatus: 503}}\n" +
		"    - {name: after, duration: 10s, load: {rate: 10}}\n")
	p, err := Parse("e.yaml", []byte(src), Options{})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestJudgeBlamesTheFaultWhoseWindowHoldsTheFirstBadEvents runs two
// back-to-back faults as the runner records them (each starts and ends a
// millisecond or two after its second begins). When only the second
// causes errors, only the second is blamed, although the first ended a
// millisecond into the second's first bucket; when both do, both are. On
// a21340e the first was blamed for the second's errors.
func TestJudgeBlamesTheFaultWhoseWindowHoldsTheFirstBadEvents(t *testing.T) {
	t.Parallel()
	p := backToBackPlan(t)
	tl := PlannedTimeline(p, t0)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	tl.Faults[0].Start, tl.Faults[0].End = at(10_001), at(15_001)
	tl.Faults[1].Start, tl.Faults[1].End = at(15_002), at(20_001)
	for _, tc := range []struct {
		name        string
		errorsFrom  int // ms: requests due from here to 20s fail
		wantBlamed  []string
		wantSpared  []string
		minFailures int64
	}{
		{"only the second breaks", 15_050, []string{"breaking"}, []string{"harmless"}, 50},
		{"both break", 12_050, []string{"harmless", "breaking"}, nil, 80},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			rec, err := outcome.NewRecorder(outcome.Options{})
			if err != nil {
				t.Fatal(err)
			}
			onsets := NewOnsets(p, time.Second)
			// 10 requests a second, due 50ms into each tenth.
			for ms := 50; ms < 30_000; ms += 100 {
				o := outcome.Outcome{Start: at(ms), Latency: 20 * time.Millisecond, Status: 200}
				if ms >= tc.errorsFrom && ms < 20_000 {
					o.Status = 503
				}
				o.Class = outcome.ClassifyResponse(o.Status, nil)
				rec.Record(o)
				onsets.Observe(o)
			}
			for _, o := range []JudgeOptions{{}, {Onsets: onsets}} {
				v, err := JudgeWith(p, rec, tl, o)
				if err != nil {
					t.Fatal(err)
				}
				if v.Run.Stats.Errors < tc.minFailures || len(v.Faults) != 2 {
					t.Fatalf("%d errors, %d faults", v.Run.Stats.Errors, len(v.Faults))
				}
				breached := map[string]bool{}
				for _, f := range v.Faults {
					breached[f.Name] = len(f.Breached) > 0
					if d := f.Allowance - 20*time.Millisecond; d < 0 || d > 20*time.Microsecond {
						t.Errorf("%s: allowance %s, want the p99 latency of the second before it, 20ms (to the histogram's 0.1%%)", f.Name, f.Allowance)
					}
				}
				for _, name := range tc.wantBlamed {
					if !breached[name] {
						t.Errorf("onsets %v: %s not blamed: %+v", o.Onsets != nil, name, v.Faults)
					}
				}
				for _, name := range tc.wantSpared {
					if breached[name] {
						t.Errorf("onsets %v: %s blamed for errors that began after it ended: %+v", o.Onsets != nil, name, v.Faults)
					}
				}
			}
		})
	}
}

// TestJudgeInterruptedRun: a run interrupted in the middle of its first
// fault, before its second started. The second is reported as not
// started; the first's recovery as not observed, not as NOT RECOVERED,
// and the scorecard does not fail recovered for either; the run's length
// prints rounded.
func TestJudgeInterruptedRun(t *testing.T) {
	t.Parallel()
	p := backToBackPlan(t)
	tl := PlannedTimeline(p, t0)
	tl.End = t0.Add(12873538097 * time.Nanosecond)
	tl.Phases = tl.Phases[:2]
	tl.Phases[1].End = tl.End
	tl.Faults[0].End, tl.Faults[0].EndReason = tl.End, EndRolledBackSignal
	tl.Faults[1].Start, tl.Faults[1].End, tl.Faults[1].EndReason = time.Time{}, time.Time{}, EndNotStarted
	tl.Abort = &Breach{Condition: "interrupted", Kind: "signal", Phase: "trouble", At: tl.End, Reason: "the run was interrupted"}
	v, err := Judge(p, record(t, run(13, 0, 0, traffic{})), tl)
	if err != nil {
		t.Fatal(err)
	}
	if len(v.Faults) != 1 || len(v.NotStarted) != 1 || v.NotStarted[0] != "breaking" {
		t.Fatalf("faults %+v, not started %v", v.Faults, v.NotStarted)
	}
	if r := v.Faults[0].Recoveries[0]; r.Recovered || r.Observed {
		t.Errorf("recovery %+v: the run ended before it could be observed", r)
	}
	sc := Score(p, v)
	for _, r := range sc.Results {
		if r.ID == "recovered" && !r.Passed {
			t.Errorf("recovered failed for an interrupted run: %s", r.Detail)
		}
	}
	text := Summary(p, v, sc)
	for _, want := range []string{"ran 12.9s of 30s", "1 faults (1 more not started)", "  breaking: not started\n", "api-availability not observed (the run ended first)"} {
		if !strings.Contains(text, want) {
			t.Errorf("summary lacks %q:\n%s", want, text)
		}
	}
	if strings.Contains(text, "NOT RECOVERED") {
		t.Errorf("summary:\n%s", text)
	}
}

// TestJudgeInconclusiveRun judges one failing run twice: with a load
// generator that kept its schedule the verdict fails (exit 1); with one
// that sent 30% of its requests late it is inconclusive (exit 5), the
// reason first, the SLO and threshold misses reported but not judged,
// and no grade.
func TestJudgeInconclusiveRun(t *testing.T) {
	t.Parallel()
	p := judgedPlan(t)
	rec := record(t, run(60, 20, 40, traffic{n: 10, failures: 5, latency: 20 * time.Millisecond}))
	tl := PlannedTimeline(p, t0)
	onTime := &GeneratorVerdict{Health: load.Health{Model: load.Open, Sent: 600, Late: 3, LateShare: 0.005, Conclusive: true}}
	v, err := JudgeWith(p, rec, tl, JudgeOptions{Generator: onTime})
	if err != nil {
		t.Fatal(err)
	}
	if v.Inconclusive || v.ExitCode != ExitFail {
		t.Fatalf("on time: inconclusive %v, exit %d: want the verdict to fail", v.Inconclusive, v.ExitCode)
	}
	late := &GeneratorVerdict{Health: load.Health{Model: load.Open, Sent: 600, Late: 180, LateShare: 0.3,
		Reason: "the generator sent 30.00% of requests more than 10ms late (180 of 600): its CPU was saturated; " + GeneratorAdvice}}
	v, err = JudgeWith(p, rec, tl, JudgeOptions{Generator: late})
	if err != nil {
		t.Fatal(err)
	}
	if !v.Inconclusive || v.Passed || v.ExitCode != ExitInconclusive || len(v.Failures) < 2 ||
		v.Failures[0] != "inconclusive: "+late.Reason || !strings.HasPrefix(v.Failures[1], "not judged: SLO api-availability") {
		t.Fatalf("late: inconclusive %v, exit %d, failures %q", v.Inconclusive, v.ExitCode, v.Failures)
	}
	sc := Score(p, v)
	if sc.Grade != GradeNone {
		t.Errorf("grade %s, want none", sc.Grade)
	}
	text := Summary(p, v, sc)
	for _, want := range []string{"e: INCONCLUSIVE, grade - (exit 5)\n", "inconclusive: " + late.Reason + "\n", "miss (not judged)",
		"scorecard: - (not graded: the run is inconclusive)", "generator: 180 of 600 sent more than"} {
		if !strings.Contains(text, want) {
			t.Errorf("summary lacks %q:\n%s", want, text)
		}
	}
}
