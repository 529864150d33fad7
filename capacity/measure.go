package capacity

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/relia-dev/relia/clock"
	"github.com/relia-dev/relia/experiment"
	"github.com/relia-dev/relia/load"
	"github.com/relia-dev/relia/outcome"
	"github.com/relia-dev/relia/slo"
)

// Defaults of a measurement.
const (
	DefaultStepDuration = 10 * time.Second
	// LittleTolerance is how far X·R may be from the concurrency before a
	// step is reported as inconsistent with Little's law.
	LittleTolerance = 0.10
)

// DefaultConcurrency is the concurrency of each step when none is given:
// doubling, so that the curve is sampled evenly on a log scale.
var DefaultConcurrency = []int{1, 2, 4, 8, 16, 32, 64}

// Step is one concurrency level as measured.
type Step struct {
	// Concurrency is the requests kept in flight (virtual users with no
	// think time); for an open-model step it is X·R.
	Concurrency float64   `json:"concurrency"`
	From        time.Time `json:"from"`
	To          time.Time `json:"to"`
	// Requests are the requests answered in the window (failed ones
	// included), Errors those that failed.
	Requests int64 `json:"requests"`
	Errors   int64 `json:"errors"`
	// Throughput is Requests per second, Goodput the successful ones.
	Throughput float64 `json:"throughput_rps"`
	Goodput    float64 `json:"goodput_rps"`
	// Mean and the percentiles are the latency of the answered requests.
	Mean time.Duration `json:"mean_ns"`
	P50  time.Duration `json:"p50_ns"`
	P95  time.Duration `json:"p95_ns"`
	P99  time.Duration `json:"p99_ns"`
	// Little is X·R, the concurrency Little's law gives from the
	// throughput and the mean latency, and LittleError (Little − N)/N;
	// LittleChecked is false where N itself came from X·R or R is unknown.
	Little        float64 `json:"little"`
	LittleError   float64 `json:"little_error"`
	LittleChecked bool    `json:"little_checked"`
	// SLOs are each SLO over the step's window, in order; Met is true when
	// every one met its objective.
	SLOs []StepSLO `json:"slos"`
	Met  bool      `json:"met"`
	// CPUPerRequest is the measured process's CPU time per request in
	// seconds, Memory its resident memory at the end of the step; 0 when
	// no process was measured.
	CPUPerRequest float64 `json:"cpu_per_request_s,omitempty"`
	Memory        int64   `json:"memory_bytes,omitempty"`
}

// StepSLO is one SLO judged over one step.
type StepSLO struct {
	ID  string  `json:"id"`
	SLI float64 `json:"sli"`
	Met bool    `json:"met"`
}

// MeasurementSchema is the value of a measurement file's "schema" field.
const MeasurementSchema = "relia/capacity/v1"

// Measurement is a stepped load's steps with the knee and the fit.
type Measurement struct {
	Schema string `json:"schema"`
	// Target is what was measured (a URL, a file).
	Target string `json:"target"`
	// Instances is how many replicas served the target.
	Instances int    `json:"instances"`
	Steps     []Step `json:"steps"`
	// Knee is the index in Steps of the step with the highest throughput
	// that met every SLO; -1 when none did.
	Knee int `json:"knee"`
	// KneePerInstance is the knee's throughput per instance: the capacity
	// to plan with.
	KneePerInstance float64 `json:"knee_per_instance_rps"`
	// Fit is the USL fitted to the steps; nil with FitError set when the
	// steps do not allow one.
	Fit      *Fit   `json:"fit,omitempty"`
	FitError string `json:"fit_error,omitempty"`
	// LittleInconsistent lists the concurrency of the steps whose X·R is
	// off by more than LittleTolerance.
	LittleInconsistent []float64 `json:"little_inconsistent,omitempty"`
	// Recorder holds every request of the measurement, for the report.
	Recorder *outcome.Recorder `json:"recorder,omitempty"`
}

// ProcessSampler reads a process's CPU time and resident memory, so that
// a measurement can report CPU per request and memory per replica.
type ProcessSampler interface {
	Sample() (cpu time.Duration, rss int64, err error)
}

// MeasureOptions configure Measure.
type MeasureOptions struct {
	// Concurrency is each step's number of requests kept in flight;
	// default DefaultConcurrency.
	Concurrency []int
	// StepDuration is each step's length; default 10s. The first
	// Warmup of each step is not judged; default a fifth of the step, at
	// least one second.
	StepDuration time.Duration
	Warmup       time.Duration
	// SLOs judge each step.
	SLOs []*slo.SLO
	// StopAfter ends the measurement after this many steps in a row have
	// missed an SLO (default 2, so the curve is seen past the knee);
	// negative never stops early.
	StopAfter int
	// Instances is how many replicas serve the target; default 1.
	Instances int
	// Process, when set, is sampled before and after each step.
	Process ProcessSampler
	// Clock is the time source; nil means the real one.
	Clock clock.Clock
	// Progress, when set, is told of each step as it ends.
	Progress func(Step)
	// Ramp, when set, measures with one closed-model run instead of a
	// run per step: its virtual users rise linearly over Ramp from the
	// lowest Concurrency to one past the highest, so that each count in
	// between is reached for an equal share of the ramp (the load
	// generator starts a virtual user once the ramp has reached it).
	// When each count is held for RampHold or more, each is a step,
	// judged after its first second; a faster ramp is judged in slices
	// of StepDuration, each step at the slice's mean concurrency. A
	// ramp runs to its end: StopAfter does not apply.
	Ramp time.Duration
}

// RampHold is how long a ramp must hold each count of virtual users for
// Measure to judge each count as a step (the first second left out).
const RampHold = 3 * time.Second

// Measure runs a stepped closed-model load against the scenario's
// requests, one step per concurrency, each a load test of its own with
// that many virtual users and no think time that starts on a whole
// second. Each step's window (after its warm-up) is judged by the SLOs
// with slo.Evaluate over the measurement's recorder; then the knee is
// found and the USL fitted (see Analyze).
func Measure(ctx context.Context, sc *load.Scenario, target string, o MeasureOptions) (*Measurement, error) {
	if len(o.Concurrency) == 0 {
		o.Concurrency = DefaultConcurrency
	}
	if o.StepDuration == 0 {
		o.StepDuration = DefaultStepDuration
	}
	if o.Warmup == 0 {
		o.Warmup = max((o.StepDuration / 5).Truncate(time.Second), time.Second)
	}
	if o.StopAfter == 0 {
		o.StopAfter = 2
	}
	if o.Instances == 0 {
		o.Instances = 1
	}
	switch {
	case o.StepDuration < 2*time.Second || o.StepDuration%time.Second != 0:
		return nil, fmt.Errorf("step duration %s: want whole seconds, at least 2s", o.StepDuration)
	case o.Warmup < 0 || o.Warmup >= o.StepDuration || o.Warmup%time.Second != 0:
		return nil, fmt.Errorf("warm-up %s: want whole seconds, shorter than the step", o.Warmup)
	case o.Instances < 0:
		return nil, fmt.Errorf("instances %d is negative", o.Instances)
	}
	for _, n := range o.Concurrency {
		if n < 1 {
			return nil, fmt.Errorf("concurrency %d: want at least 1", n)
		}
	}
	clk := clock.OrReal(o.Clock)
	rec, err := outcome.NewRecorder(outcome.Options{})
	if err != nil {
		return nil, err
	}
	m := &Measurement{Schema: MeasurementSchema, Target: target, Instances: o.Instances, Recorder: rec}
	if o.Ramp != 0 {
		if err := measureRamp(ctx, sc, m, o, clk); err != nil {
			return nil, err
		}
		m.Analyze()
		return m, nil
	}
	missed := 0
	for i, n := range o.Concurrency {
		step := *sc
		vus := n
		step.Spec.Load = load.LoadSpec{VUs: &vus, Duration: o.StepDuration, GracefulStop: sc.Spec.Load.GracefulStop}
		step.Spec.Thresholds = nil
		t, err := step.Build()
		if err != nil {
			return nil, fmt.Errorf("step %d (concurrency %d): %w", i+1, n, err)
		}
		if i == 0 {
			if err := t.Preflight(ctx); err != nil {
				return nil, err
			}
		}
		start := clk.Now().Truncate(time.Second).Add(time.Second)
		var cpu0 time.Duration
		if o.Process != nil {
			if cpu0, _, err = o.Process.Sample(); err != nil {
				return nil, fmt.Errorf("sampling the process: %w", err)
			}
		}
		res, err := t.Run(ctx, load.RunOptions{Clock: clk, StartAt: start, Live: rec})
		if err != nil {
			return nil, fmt.Errorf("step %d (concurrency %d): %w", i+1, n, err)
		}
		s := judgeStep(rec, float64(n), start.Add(o.Warmup), start.Add(o.StepDuration), o.SLOs)
		if o.Process != nil {
			cpu1, rss, err := o.Process.Sample()
			if err != nil {
				return nil, fmt.Errorf("sampling the process: %w", err)
			}
			if all := res.Requests.Total(); all.Latency.Count() > 0 {
				s.CPUPerRequest = (cpu1 - cpu0).Seconds() / float64(all.Latency.Count())
			}
			s.Memory = rss
		}
		m.Steps = append(m.Steps, s)
		if o.Progress != nil {
			o.Progress(s)
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		missed++
		if s.Met {
			missed = 0
		}
		if o.StopAfter > 0 && missed >= o.StopAfter {
			break
		}
	}
	m.Analyze()
	return m, nil
}

// measureRamp runs o's ramp against sc and judges its steps into m.
func measureRamp(ctx context.Context, sc *load.Scenario, m *Measurement, o MeasureOptions, clk clock.Clock) error {
	lo, hi := slices.Min(o.Concurrency), slices.Max(o.Concurrency)
	switch {
	case lo == hi:
		return fmt.Errorf("concurrency %d: a ramp needs a lowest and a highest concurrency", lo)
	case o.Ramp < o.StepDuration || o.Ramp%time.Second != 0:
		return fmt.Errorf("ramp %s: want whole seconds, at least the step duration %s", o.Ramp, o.StepDuration)
	}
	profile, err := load.NewVUProfile(lo, []load.VUStage{{Duration: o.Ramp, Target: hi + 1}})
	if err != nil {
		return fmt.Errorf("ramp: %w", err)
	}
	run := *sc
	first := lo
	run.Spec.Load = load.LoadSpec{VUs: &first, Stages: []load.Stage{{Duration: o.Ramp, Target: float64(hi + 1)}}, GracefulStop: sc.Spec.Load.GracefulStop}
	run.Spec.Thresholds = nil
	t, err := run.Build()
	if err != nil {
		return fmt.Errorf("ramp: %w", err)
	}
	if err := t.Preflight(ctx); err != nil {
		return err
	}
	start := clk.Now().Truncate(time.Second).Add(time.Second)
	// The windows the ramp is judged in: each count it holds, or slices.
	type window struct{ from, to time.Time }
	var windows []window
	if hold := o.Ramp / time.Duration(hi+1-lo); hold >= RampHold {
		for c := range hi + 1 - lo {
			from := start.Add(time.Duration(c) * hold)
			to := start.Add(time.Duration(c+1) * hold)
			windows = append(windows, window{from.Add(time.Second - 1).Truncate(time.Second).Add(time.Second), to.Truncate(time.Second)})
		}
	} else {
		for from := start.Add(time.Second); !from.Add(o.StepDuration).After(start.Add(o.Ramp)); from = from.Add(o.StepDuration) {
			windows = append(windows, window{from, from.Add(o.StepDuration)})
		}
	}
	var samples *processSamples
	sampled := make(chan struct{})
	if o.Process != nil {
		samples = &processSamples{p: o.Process, at: map[time.Time]processSample{}}
		if err := samples.take(start); err != nil {
			return err
		}
		sctx, cancel := context.WithCancel(ctx)
		defer cancel() // ends the sampling when the run fails
		go samples.every(sctx, clk, start, o.Ramp, sampled)
	} else {
		close(sampled)
	}
	if _, err := t.Run(ctx, load.RunOptions{Clock: clk, StartAt: start, Live: m.Recorder}); err != nil {
		return fmt.Errorf("ramp: %w", err)
	}
	<-sampled // the sample at the ramp's end is due by now
	if ctx.Err() != nil {
		return ctx.Err()
	}
	for _, w := range windows {
		if !w.to.After(w.from) {
			continue
		}
		s := judgeStep(m.Recorder, meanVUs(profile, w.from.Sub(start), w.to.Sub(start)), w.from, w.to, o.SLOs)
		if samples != nil {
			s.CPUPerRequest, s.Memory = samples.between(w.from, w.to, s.Requests)
		}
		m.Steps = append(m.Steps, s)
		if o.Progress != nil {
			o.Progress(s)
		}
	}
	return nil
}

// meanVUs is the mean number of virtual users the profile runs over
// [from, to), as the load generator sets them every 100 ms.
func meanVUs(p *load.VUProfile, from, to time.Duration) float64 {
	const tick = 100 * time.Millisecond
	var sum, n float64
	for t := from; t < to; t += tick {
		sum += float64(p.Active(t))
		n++
	}
	if n == 0 {
		return 0
	}
	return sum / n
}

// processSample is a process's CPU time and resident memory at a time.
type processSample struct {
	cpu time.Duration
	rss int64
}

// processSamples samples a process once a second through a ramp, so
// that each of its windows gets the CPU spent in it.
type processSamples struct {
	p  ProcessSampler
	mu sync.Mutex
	at map[time.Time]processSample
}

func (ps *processSamples) take(at time.Time) error {
	cpu, rss, err := ps.p.Sample()
	if err != nil {
		return fmt.Errorf("sampling the process: %w", err)
	}
	ps.mu.Lock()
	defer ps.mu.Unlock()
	ps.at[at] = processSample{cpu, rss}
	return nil
}

// every samples at each whole second from start to start+d, or until
// ctx ends, and then closes done.
func (ps *processSamples) every(ctx context.Context, clk clock.Clock, start time.Time, d time.Duration, done chan<- struct{}) {
	defer close(done)
	for at := start.Add(time.Second); !at.After(start.Add(d)); at = at.Add(time.Second) {
		if clock.Sleep(ctx, clk, at.Sub(clk.Now())) != nil {
			return
		}
		_ = ps.take(at) // a failed sample leaves its windows without CPU figures
	}
}

// between is the CPU per request and the memory at the end of
// [from, to), 0 where a sample is missing.
func (ps *processSamples) between(from, to time.Time, requests int64) (cpuPerRequest float64, memory int64) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	a, okA := ps.at[from]
	b, okB := ps.at[to]
	if !okA || !okB || requests == 0 {
		return 0, b.rss
	}
	return (b.cpu - a.cpu).Seconds() / float64(requests), b.rss
}

// judgeStep measures one step of n requests in flight over [from, to).
func judgeStep(rec *outcome.Recorder, n float64, from, to time.Time, slos []*slo.SLO) Step {
	w := rec.Window(from, to)
	secs := to.Sub(from).Seconds()
	answered := w.Latency.Count()
	s := Step{Concurrency: n, From: from, To: to, Requests: answered, Mean: w.Latency.Mean(),
		P50: w.Latency.Quantile(0.5), P95: w.Latency.Quantile(0.95), P99: w.Latency.Quantile(0.99), Met: true}
	good, _ := w.Good(nil)
	s.Errors = answered - min(good, answered)
	s.Throughput = float64(answered) / secs
	s.Goodput = float64(good) / secs
	s.Little = s.Throughput * s.Mean.Seconds()
	if n > 0 && answered > 0 {
		s.LittleError = (s.Little - n) / n
		s.LittleChecked = true
	}
	for _, sl := range slos {
		ev, err := slo.Evaluate(sl, rec, from, to)
		if err != nil {
			s.SLOs = append(s.SLOs, StepSLO{ID: sl.ID()})
			s.Met = false
			continue
		}
		s.SLOs = append(s.SLOs, StepSLO{ID: ev.ID, SLI: ev.SLI, Met: ev.Met})
		s.Met = s.Met && ev.Met
	}
	return s
}

// Analyze finds the knee, checks Little's law and fits the USL to the
// steps.
func (m *Measurement) Analyze() {
	if m.Instances == 0 {
		m.Instances = 1
	}
	m.Knee, m.KneePerInstance, m.LittleInconsistent = -1, 0, nil
	for i, s := range m.Steps {
		if s.Met && (m.Knee < 0 || s.Throughput > m.Steps[m.Knee].Throughput) {
			m.Knee = i
		}
		if s.LittleChecked && math.Abs(s.LittleError) > LittleTolerance {
			m.LittleInconsistent = append(m.LittleInconsistent, s.Concurrency)
		}
	}
	if m.Knee >= 0 {
		m.KneePerInstance = m.Steps[m.Knee].Throughput / float64(m.Instances)
	}
	pts := make([]Point, 0, len(m.Steps))
	for _, s := range m.Steps {
		if s.Throughput > 0 && s.Concurrency >= 1 {
			pts = append(pts, Point{N: s.Concurrency, X: s.Throughput / float64(m.Instances)})
		}
	}
	m.Fit, m.FitError = nil, ""
	if f, err := FitUSL(pts); err != nil {
		m.FitError = err.Error()
	} else {
		m.Fit = &f
	}
}

// KneeStep returns the knee, or nil.
func (m *Measurement) KneeStep() *Step {
	if m.Knee < 0 || m.Knee >= len(m.Steps) {
		return nil
	}
	return &m.Steps[m.Knee]
}

// Verdict says what the measurement found, in one paragraph.
func (m *Measurement) Verdict() string {
	var out string
	if k := m.KneeStep(); k != nil {
		out = fmt.Sprintf("The knee is %s req/s per instance at concurrency %s (p99 %s): the most throughput that met every SLO.",
			fmtNum(m.KneePerInstance), fmtNum(k.Concurrency), fmtDur(k.P99))
	} else {
		out = "No step met every SLO: there is no knee to plan with."
	}
	if m.Fit != nil {
		n, x := m.Fit.Model.Peak()
		if math.IsInf(n, 1) {
			out += fmt.Sprintf(" The USL (σ %.4g, κ %.4g) has no peak: throughput approaches %s req/s.", m.Fit.Model.Sigma, m.Fit.Model.Kappa, fmtNum(x))
		} else {
			out += fmt.Sprintf(" The USL (σ %.4g, κ %.4g) peaks at %s req/s per instance at concurrency %s.", m.Fit.Model.Sigma, m.Fit.Model.Kappa, fmtNum(x), fmtNum(n))
		}
		out += " " + upperFirst(m.Fit.Verdict) + "."
	} else if m.FitError != "" {
		out += " No USL fit: " + m.FitError + "."
	}
	if len(m.LittleInconsistent) > 0 {
		out += fmt.Sprintf(" Little's law does not hold within %.0f%% at concurrency %v: the requests in flight were not the service's alone (the generator or the network held some).",
			100*LittleTolerance, m.LittleInconsistent)
	}
	return out
}

func upperFirst(s string) string {
	if s == "" {
		return s
	}
	return string(s[0]-'a'+'A') + s[1:]
}

// ErrNoSteps is returned when a results file or journal holds no steps
// the measurement can use.
var ErrNoSteps = errors.New("no steps to measure: want a stepped closed-model run (VUs that hold at each step) or a stress preset")

// FromResult reads the steps of a saved load result: the stress preset's
// steps (each judged after its first second), or else the spans of two
// seconds or more during which a closed-model run held its virtual users
// at one count. An open-model step's concurrency is X·R (Little's law),
// so Little's law is not a check for it.
func FromResult(r *load.Result, target string, slos []*slo.SLO, instances int) (*Measurement, error) {
	m := &Measurement{Schema: MeasurementSchema, Target: target, Instances: instances, Recorder: r.Requests}
	type span struct {
		n        float64
		from, to time.Time
	}
	var spans []span
	if r.StepLength > 0 {
		for i, tgt := range r.StepTargets {
			from := r.Start.Add(time.Duration(i) * r.StepLength).Truncate(time.Second).Add(time.Second)
			to := r.Start.Add(time.Duration(i+1) * r.StepLength).Truncate(time.Second)
			if !to.After(from) || from.After(r.End) {
				continue
			}
			n := tgt
			if r.Model == load.Open {
				n = 0 // from Little's law below
			}
			spans = append(spans, span{n, from, to})
		}
	} else if r.Model == load.Closed {
		act := slices.Clone(r.Active)
		for i := 0; i < len(act); {
			j := i
			for j+1 < len(act) && act[j+1].V == act[i].V && act[j+1].T.Sub(act[j].T) == time.Second {
				j++
			}
			// drop the first second of a span, when the VUs were still
			// arriving, and keep spans with two whole seconds after it
			if j-i >= 2 && act[i].V > 0 {
				spans = append(spans, span{float64(act[i].V), act[i].T.Add(time.Second), act[j].T.Add(time.Second)})
			}
			i = j + 1
		}
	}
	for _, sp := range spans {
		s := judgeStep(r.Requests, sp.n, sp.from, sp.to, slos)
		if sp.n == 0 {
			s.Concurrency, s.LittleChecked, s.LittleError = s.Little, false, 0
		}
		if s.Requests > 0 {
			m.Steps = append(m.Steps, s)
		}
	}
	if len(m.Steps) == 0 {
		return nil, ErrNoSteps
	}
	m.Analyze()
	return m, nil
}

// FromJournal reads the steps of an experiment's journal: each phase of
// the closed model (VUs without stages) is a step, judged by the SLOs as
// the run's verdict judged them. The journal keeps latency percentiles
// but not the mean, so Little's law is not checked.
func FromJournal(j *experiment.Journal, target string, instances int) (*Measurement, error) {
	if j.Verdict == nil || j.Plan == nil {
		return nil, fmt.Errorf("the journal of %s has no verdict: the run did not send traffic", j.Experiment)
	}
	m := &Measurement{Schema: MeasurementSchema, Target: target, Instances: instances}
	for _, pv := range j.Verdict.Phases {
		i := slices.IndexFunc(j.Plan.Phases, func(p experiment.PlannedPhase) bool { return p.Name == pv.Name })
		if i < 0 {
			continue
		}
		l := j.Plan.Phases[i].Load
		secs := pv.To.Sub(pv.From).Seconds()
		if l.VUs == 0 || len(l.Stages) > 0 || secs <= 0 {
			continue
		}
		answered := pv.Stats.Requests - pv.Stats.Dropped
		s := Step{Concurrency: float64(l.VUs), From: pv.From, To: pv.To, Requests: answered, Errors: pv.Stats.Errors,
			Throughput: float64(answered) / secs, Goodput: float64(answered-pv.Stats.Errors) / secs,
			P50: pv.Stats.P50, P95: pv.Stats.P95, P99: pv.Stats.P99, Met: true}
		for _, ev := range pv.SLOs {
			s.SLOs = append(s.SLOs, StepSLO{ID: ev.ID, SLI: ev.SLI, Met: ev.Met})
			s.Met = s.Met && ev.Met
		}
		m.Steps = append(m.Steps, s)
	}
	if len(m.Steps) == 0 {
		return nil, ErrNoSteps
	}
	m.Analyze()
	return m, nil
}

// ReadMeasurement reads a measurement file, rejecting unknown fields and
// other schemas.
func ReadMeasurement(path string) (*Measurement, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var m Measurement
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	if m.Schema != MeasurementSchema {
		return nil, fmt.Errorf("reading %s: schema %q is not %q", path, m.Schema, MeasurementSchema)
	}
	if m.Knee >= len(m.Steps) || m.Instances < 1 {
		return nil, fmt.Errorf("reading %s: the knee or the instances are out of range", path)
	}
	return &m, nil
}
