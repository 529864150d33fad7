package experiment

import (
	"errors"
	"fmt"
	"time"

	"github.com/relia-dev/relia/internal/config"
	"github.com/relia-dev/relia/load"
	"github.com/relia-dev/relia/outcome"
	"github.com/relia-dev/relia/slo"
)

// Exit codes of a run.
const (
	ExitPass    = 0 // the verdict passed
	ExitFail    = 1 // an SLO or a threshold failed
	ExitBadArgs = 2 // bad input: nothing was run
	ExitAborted = 3 // an abort condition ended the run
	ExitRuntime = 4 // the run could not be carried out
	// ExitInconclusive: the load generator could not keep its own
	// schedule, so the SLOs and thresholds were reported, not judged.
	ExitInconclusive = 5
)

// Why a fault ended, as the journal records it.
const (
	EndStopped          = "stopped"               // ended on schedule
	EndExpired          = "expired"               // its lease ran out before the runner ended it
	EndRolledBackAbort  = "rolled_back_on_abort"  // an abort condition ended the run
	EndRolledBackSignal = "rolled_back_on_signal" // Ctrl-C or SIGTERM ended the run
	EndRolledBackError  = "rolled_back_on_error"  // the run failed
	EndNotStarted       = "not_started"           // the fault could not be started, or the run ended first
)

// Timeline is what happened during a run, as the runner saw it: when the
// run and each phase and fault actually started and ended, and the
// breach that aborted it, if any.
type Timeline struct {
	Start  time.Time     `json:"start"`
	End    time.Time     `json:"end"`
	Phases []PhaseRecord `json:"phases"`
	Faults []FaultRecord `json:"faults"`
	Abort  *Breach       `json:"abort,omitempty"`
}

// PhaseRecord is when a phase ran; a phase the run did not reach is
// absent.
type PhaseRecord struct {
	Name  string    `json:"name"`
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
}

// FaultRecord is when a fault was active and why it ended.
type FaultRecord struct {
	Name   string `json:"name"`
	Phase  string `json:"phase"`
	Kind   string `json:"kind"`
	Target string `json:"target"`
	// Replica is the replica a process fault hit; -1 for other kinds.
	Replica int `json:"replica"`
	// Start and End bound the fault; both zero when it never started.
	Start time.Time `json:"start,omitzero"`
	End   time.Time `json:"end,omitzero"`
	// EndReason is one of the End* constants.
	EndReason string `json:"end_reason"`
	// Error is what went wrong starting, renewing or ending the fault.
	Error string `json:"error,omitempty"`
}

// PlannedTimeline is the timeline of a run of p that starts at start and
// goes exactly to plan: every phase and fault at its offsets, every
// fault stopped on schedule. The runner starts from it; tests judge it.
func PlannedTimeline(p *Plan, start time.Time) Timeline {
	tl := Timeline{Start: start, End: start.Add(p.Total)}
	for _, ph := range p.Phases {
		tl.Phases = append(tl.Phases, PhaseRecord{Name: ph.Name, Start: start.Add(ph.Start), End: start.Add(ph.End)})
	}
	for _, f := range p.Faults {
		tl.Faults = append(tl.Faults, FaultRecord{Name: f.Name, Phase: f.Phase, Kind: f.Kind, Target: f.Target, Replica: f.Replica,
			Start: start.Add(f.Start), End: start.Add(f.End), EndReason: EndStopped})
	}
	return tl
}

// Verdict is the judgement of a run: every figure the scorecard and the
// reports use, computed from the recorder, the plan and the timeline
// only.
type Verdict struct {
	// Passed is true when every SLO met its objective over the run, every
	// threshold held, no abort condition ended the run and the load
	// generator kept its schedule.
	Passed  bool `json:"passed"`
	Aborted bool `json:"aborted"`
	// Inconclusive is true when the load generator could not keep its
	// schedule (Generator says how late it was and why): the SLOs and
	// thresholds are reported, but not judged.
	Inconclusive bool `json:"inconclusive"`
	// ExitCode is ExitPass, ExitFail, ExitAborted, ExitInconclusive, or
	// ExitRuntime when the run broke (Error says how).
	ExitCode int `json:"exit_code"`
	// Error says how the run broke when relia could not carry it out as
	// planned (a fault that did not start, a phase's setup that failed).
	// Such a run ends with ExitRuntime, unless it is inconclusive anyway:
	// a starved generator and a control call that timed out are the same
	// starved host.
	Error string `json:"error,omitempty"`
	// Failures say why the verdict did not pass, one line each; those an
	// inconclusive run did not judge start with "not judged: ".
	Failures []string `json:"failures,omitempty"`
	// Generator is the load generator's judgement of itself; nil when the
	// run's loads did not report it.
	Generator *GeneratorVerdict `json:"generator,omitempty"`
	// Run covers the whole run.
	Run PhaseVerdict `json:"run"`
	// Phases cover each phase the run reached.
	Phases []PhaseVerdict `json:"phases"`
	// Faults cover each fault that started; NotStarted names the faults
	// that never did (the run ended first, or they failed to start).
	Faults     []FaultVerdict `json:"faults"`
	NotStarted []string       `json:"not_started,omitempty"`
	// Baseline is the phase the others were compared with.
	Baseline string `json:"baseline,omitempty"`
	// Abort is the breach that ended the run.
	Abort *Breach `json:"abort,omitempty"`
	// Tenants are the calls of each tenant (user) the run's llm loads
	// named, over the run; none without such loads.
	Tenants []TenantCalls `json:"tenants,omitempty"`
}

// PhaseVerdict is the judgement of a span: the whole run or one phase.
type PhaseVerdict struct {
	Name  string    `json:"name"`
	From  time.Time `json:"from"`
	To    time.Time `json:"to"`
	Stats Stats     `json:"stats"`
	// SLOs are slo.Evaluate over the span, in the plan's order.
	SLOs []slo.Evaluation `json:"slos"`
	// Thresholds are the span's own thresholds (the run's for Run).
	Thresholds []ThresholdResult `json:"thresholds,omitempty"`
	// Comparison is the span against the baseline phase; nil for the
	// baseline itself and the run.
	Comparison *Comparison `json:"comparison,omitempty"`
}

// SLOsMet reports whether every SLO met its objective over the span.
func (v PhaseVerdict) SLOsMet() bool {
	for _, e := range v.SLOs {
		if !e.Met {
			return false
		}
	}
	return true
}

// Stats are the traffic figures of a span.
type Stats struct {
	// Requests counts every outcome, dropped arrivals included; Errors
	// the sent ones that failed as k6's http_req_failed counts them (a
	// transport error or an unexpected status; a response that failed a
	// check is not one); Dropped the arrivals never sent.
	Requests int64 `json:"requests"`
	Errors   int64 `json:"errors"`
	Dropped  int64 `json:"dropped"`
	// ErrorRate is Errors over the sent requests: http_req_failed.
	ErrorRate float64 `json:"error_rate"`
	// Throughput is requests per second over the span.
	Throughput float64 `json:"throughput"`
	// Classes counts outcomes by class name, zero counts left out.
	Classes map[string]int64 `json:"classes"`
	// Latency percentiles of the sent requests.
	P50  time.Duration `json:"p50_ns"`
	P90  time.Duration `json:"p90_ns"`
	P95  time.Duration `json:"p95_ns"`
	P99  time.Duration `json:"p99_ns"`
	P999 time.Duration `json:"p999_ns"`
	Max  time.Duration `json:"max_ns"`
}

// ThresholdResult is one threshold judged over a span.
type ThresholdResult struct {
	Threshold string `json:"threshold"`
	// Value is the aggregate, in k6's units (ms for trends); Observed
	// writes it with its unit ("51.52ms", "0.42%").
	Value    float64 `json:"value"`
	Observed string  `json:"observed"`
	// Passed is false when the value fails the threshold or when the
	// span held nothing to judge (Measured false).
	Passed   bool `json:"passed"`
	Measured bool `json:"measured"`
}

// Comparison is a phase against the baseline: the change in p99 latency
// and in error rate, each with a confidence interval.
type Comparison struct {
	Baseline  string `json:"baseline"`
	P99       Change `json:"p99"`
	ErrorRate Change `json:"error_rate"`
}

// Change is the difference of a per-second figure between a phase and
// the baseline. Each second of a span (each recorder bucket with
// traffic) is one sample; Delta is the difference of the two spans' mean
// samples, and [Low, High] Welch's t interval for it at Confidence: the
// interval makes no assumption that the spans have equal variance or
// length. Significant is true when the interval excludes 0.
type Change struct {
	// Unit is "ms" for latency and "ratio" for error rates.
	Unit     string  `json:"unit"`
	Baseline float64 `json:"baseline"`
	Phase    float64 `json:"phase"`
	Delta    float64 `json:"delta"`
	// HasInterval is false when either span has fewer than two samples.
	HasInterval bool    `json:"has_interval"`
	Low         float64 `json:"low"`
	High        float64 `json:"high"`
	Confidence  float64 `json:"confidence"`
	// Samples are the numbers of seconds behind Baseline and Phase.
	BaselineSamples int  `json:"baseline_samples"`
	PhaseSamples    int  `json:"phase_samples"`
	Significant     bool `json:"significant"`
}

// FaultVerdict is what a fault did to the SLOs: which it breached, which
// alerts detected it and how fast, and how soon each SLO recovered.
//
// A fault is blamed for an SLO's bad second (a recorder bucket whose SLI
// is below the objective) when the first bad event of that second was
// due within the fault's window widened by its propagation allowance:
// [start - Allowance, end]. The allowance is measured: the p99 latency of
// the requests due in the second before the fault started, the longest
// the requests it could catch in flight had been under way. After the
// end nothing new starts under the fault, so bad events that begin later
// are not its own (the recovery measures the aftermath), and back-to-back
// faults are told apart by when their trouble began, finer than buckets.
// The SLO is breached when the fault is blamed for a bad second and the
// SLI over the fault's seconds (less the bad seconds blamed on others) is
// below the objective.
type FaultVerdict struct {
	Name  string    `json:"name"`
	Phase string    `json:"phase"`
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
	// Allowance is the propagation allowance before the start.
	Allowance time.Duration `json:"allowance_ns"`
	// Breached lists the SLOs the fault made miss their objective.
	Breached []string `json:"breached"`
	// Detections are, per SLO and alert, whether and when the alert
	// fired for the fault.
	Detections []Detection `json:"detections"`
	// Recoveries are, per SLO, the time from the fault's end until its
	// SLI was back within the objective.
	Recoveries []RecoveryTime `json:"recoveries"`
}

// Detected reports whether every SLO the fault breached had one of its
// alerts fire for it.
func (f FaultVerdict) Detected() bool {
	for _, id := range f.Breached {
		found := false
		for _, d := range f.Detections {
			if d.SLO == id && d.Detected {
				found = true
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// Detection is whether one alert of one SLO fired for a fault. An alert
// detects a fault when it fires after the fault starts and no later than
// one recorder bucket after it ends (alerts are evaluated at the end of
// each bucket), or was already firing when the fault started.
type Detection struct {
	SLO      string `json:"slo"`
	Alert    string `json:"alert"`
	Severity string `json:"severity"`
	Detected bool   `json:"detected"`
	// Fired is when the alert fired; Time is Fired minus the fault's
	// start (0 when AlreadyFiring).
	Fired         time.Time     `json:"fired,omitzero"`
	Time          time.Duration `json:"time_ns"`
	AlreadyFiring bool          `json:"already_firing"`
}

// RecoveryTime is how soon an SLO recovered after a fault ended: the time
// from the fault's end to the start of the first window of
// Plan.Recovery.Window, beginning on a bucket boundary at or after the
// end, that holds events and whose SLI meets the objective. A fault
// whose SLO was never hurt recovers in the time to the next bucket
// boundary (0 when the fault ends on one). Recovered is false when no
// such window ends before the run does; Observed is false when not even
// one window fitted between the fault's end and the run's (an interrupted
// run, or a fault that lasts to the end), so that whether it recovered is
// not known.
type RecoveryTime struct {
	SLO       string        `json:"slo"`
	Recovered bool          `json:"recovered"`
	Observed  bool          `json:"observed"`
	Time      time.Duration `json:"time_ns"`
}

// JudgeOptions are what a run knows beyond its recorder and timeline.
type JudgeOptions struct {
	// Generator is the load generator's judgement of itself; when it is
	// not conclusive, neither is the verdict.
	Generator *GeneratorVerdict
	// Onsets are when each SLO's first bad event of each bucket happened,
	// to blame faults more finely than buckets allow; nil judges by
	// buckets alone.
	Onsets *Onsets
}

// Judge computes the verdict of a run of p from the outcomes rec holds
// and the run's timeline. It is pure: the same inputs give the same
// verdict.
func Judge(p *Plan, rec *outcome.Recorder, tl Timeline) (*Verdict, error) {
	return JudgeWith(p, rec, tl, JudgeOptions{})
}

// JudgeWith is Judge with what the runner measured beyond the recorder.
func JudgeWith(p *Plan, rec *outcome.Recorder, tl Timeline, o JudgeOptions) (*Verdict, error) {
	if !tl.End.After(tl.Start) {
		return nil, fmt.Errorf("judging the run: it ends (%v) before it starts (%v)", tl.End, tl.Start)
	}
	for _, s := range p.SLOs {
		if s.SLO == nil {
			return nil, errors.New("judging the run: the plan's SLO " + s.ID + " has no spec (a plan decoded from a journal cannot be judged)")
		}
	}
	width := rec.Options().BucketWidth
	secs := collect(p, rec, tl.Start, tl.End)
	v := &Verdict{Baseline: p.Baseline, Abort: tl.Abort, Aborted: tl.Abort != nil, Generator: o.Generator}
	var err error
	if v.Run, err = judgeSpan(p, rec, "run", tl.Start, tl.End, p.Thresholds); err != nil {
		return nil, err
	}
	var base []second
	for _, pr := range tl.Phases {
		if pr.Name == p.Baseline {
			base = secondsIn(secs, pr.Start, pr.End, width)
		}
	}
	for _, pr := range tl.Phases {
		if !pr.End.After(pr.Start) {
			continue
		}
		planned, _ := p.Phase(pr.Name)
		pv, err := judgeSpan(p, rec, pr.Name, pr.Start, pr.End, planned.Thresholds)
		if err != nil {
			return nil, err
		}
		if p.Baseline != "" && pr.Name != p.Baseline && base != nil {
			pv.Comparison = compare(p.Baseline, base, secondsIn(secs, pr.Start, pr.End, width))
		}
		v.Phases = append(v.Phases, pv)
	}
	for _, f := range tl.Faults {
		if f.Start.IsZero() {
			v.NotStarted = append(v.NotStarted, f.Name)
			continue
		}
		if !f.End.After(f.Start) {
			continue
		}
		v.Faults = append(v.Faults, judgeFault(p, v.Run, secs, f, tl.End, width, o.Onsets))
	}

	for _, e := range v.Run.SLOs {
		if !e.Met {
			v.Failures = append(v.Failures, fmt.Sprintf("SLO %s: SLI %s over the run, objective %s", e.ID, pct(e.SLI), pctObjective(p, e.ID)))
		}
	}
	for _, pv := range append([]PhaseVerdict{v.Run}, v.Phases...) {
		for _, t := range pv.Thresholds {
			if !t.Passed {
				v.Failures = append(v.Failures, fmt.Sprintf("threshold %s failed over %s: %s", t.Threshold, pv.Name, t.Observed))
			}
		}
	}
	if g := o.Generator; g != nil && !g.Conclusive {
		v.Inconclusive = true
		for i, f := range v.Failures {
			v.Failures[i] = "not judged: " + f
		}
		v.Failures = append([]string{"inconclusive: " + g.Reason}, v.Failures...)
	}
	if v.Aborted {
		v.Failures = append(v.Failures, "aborted: "+tl.Abort.Condition+": "+tl.Abort.Reason)
	}
	v.Passed = len(v.Failures) == 0
	switch {
	case v.Aborted:
		v.ExitCode = ExitAborted
	case v.Inconclusive:
		v.ExitCode = ExitInconclusive
	case !v.Passed:
		v.ExitCode = ExitFail
	}
	return v, nil
}

func pctObjective(p *Plan, id string) string {
	s, _ := p.SLO(id)
	return config.Ratio(s.Objective).String()
}

// judgeSpan computes stats, SLO evaluations and thresholds over [from, to).
func judgeSpan(p *Plan, rec *outcome.Recorder, name string, from, to time.Time, thresholds []PlannedThreshold) (PhaseVerdict, error) {
	sum := rec.Window(alignDown(from, rec.Options().BucketWidth), to)
	pv := PhaseVerdict{Name: name, From: from, To: to, Stats: statsOf(sum, to.Sub(from)), SLOs: []slo.Evaluation{}}
	for _, s := range p.SLOs {
		ev, err := slo.Evaluate(s.SLO, s.recorder(rec), from, to)
		if err != nil {
			return pv, fmt.Errorf("judging %s: %w", name, err)
		}
		pv.SLOs = append(pv.SLOs, ev)
	}
	for _, t := range thresholds {
		value, _, ok := thresholdValue(t.Parsed, sum, to.Sub(from))
		tr := ThresholdResult{Threshold: t.String(), Value: value, Measured: ok, Passed: ok && t.Parsed.Holds(value), Observed: "nothing to measure"}
		if ok {
			tr.Observed = load.FormatValue(t.Parsed, value)
		}
		pv.Thresholds = append(pv.Thresholds, tr)
	}
	return pv, nil
}

func statsOf(sum outcome.Summary, span time.Duration) Stats {
	st := Stats{Requests: sum.Total, Errors: sum.RequestsFailed(), Dropped: sum.ByClass[outcome.ClassDropped], Classes: map[string]int64{}}
	st.ErrorRate, _ = sum.FailedRate()
	if span > 0 {
		st.Throughput = float64(sum.Total) / span.Seconds()
	}
	for c, n := range sum.ByClass {
		if n != 0 {
			st.Classes[outcome.Class(c).String()] = n
		}
	}
	if h := sum.Latency; h.Count() > 0 {
		st.P50, st.P90, st.P95 = h.Quantile(0.5), h.Quantile(0.9), h.Quantile(0.95)
		st.P99, st.P999, st.Max = h.Quantile(0.99), h.Quantile(0.999), h.Max()
	}
	return st
}

// secondsIn returns the seconds whose start lies in [from, to), from
// moved back to its bucket's start as slo.Evaluate does.
func secondsIn(secs []second, from, to time.Time, width time.Duration) []second {
	lo := alignDown(from, width)
	var out []second
	for _, s := range secs {
		if !s.start.Before(lo) && s.start.Before(to) {
			out = append(out, s)
		}
	}
	return out
}

// compare builds a phase's Comparison with the baseline from their
// per-second samples.
func compare(baseline string, base, phase []second) *Comparison {
	p99 := func(secs []second) []float64 {
		var xs []float64
		for _, s := range secs {
			if s.summary.Latency.Count() > 0 {
				xs = append(xs, s.p99)
			}
		}
		return xs
	}
	errRate := func(secs []second) []float64 {
		var xs []float64
		for _, s := range secs {
			if s.summary.Sent() > 0 {
				xs = append(xs, s.errorRate)
			}
		}
		return xs
	}
	return &Comparison{Baseline: baseline, P99: change("ms", p99(base), p99(phase)), ErrorRate: change("ratio", errRate(base), errRate(phase))}
}

func change(unit string, base, phase []float64) Change {
	c := Change{Unit: unit, Confidence: Confidence, BaselineSamples: len(base), PhaseSamples: len(phase)}
	if len(base) > 0 {
		c.Baseline = mean(base)
	}
	if len(phase) > 0 {
		c.Phase = mean(phase)
	}
	c.Delta = c.Phase - c.Baseline
	if d, lo, hi, ok := welch(base, phase, Confidence); ok {
		c.Delta, c.Low, c.High, c.HasInterval = d, lo, hi, true
		c.Significant = lo > 0 || hi < 0
	}
	return c
}

func mean(xs []float64) float64 {
	var s float64
	for _, x := range xs {
		s += x
	}
	return s / float64(len(xs))
}

// judgeFault finds which SLOs a fault breached, which alerts detected it
// and how soon each SLO recovered.
func judgeFault(p *Plan, run PhaseVerdict, secs []second, f FaultRecord, runEnd time.Time, width time.Duration, on *Onsets) FaultVerdict {
	fv := FaultVerdict{Name: f.Name, Phase: f.Phase, Start: f.Start, End: f.End, Breached: []string{}, Detections: []Detection{}, Recoveries: []RecoveryTime{}}
	before := alignDown(f.Start, width).Add(-width)
	for _, sec := range secs {
		if sec.start.Equal(before) && sec.summary.Latency.Count() > 0 {
			fv.Allowance = sec.summary.Latency.Quantile(0.99)
		}
	}
	from, to := f.Start.Add(-fv.Allowance), f.End
	in := secondsIn(secs, from, to, width)
	deadline := f.End.Add(width)
	for i, s := range p.SLOs {
		var good, total int64
		blamed := false
		for _, sec := range in {
			if sec.sloTotal[i] > 0 && float64(sec.sloGood[i])/float64(sec.sloTotal[i]) < s.Objective {
				onset, ok := on.First(i, sec.start)
				if !ok {
					// Without the runner's onsets the trouble is taken to
					// begin in the middle of its bucket.
					onset = sec.start.Add(width / 2)
				}
				if onset.Before(from) || onset.After(to) {
					continue // someone else's trouble
				}
				blamed = true
			}
			good, total = good+sec.sloGood[i], total+sec.sloTotal[i]
		}
		if blamed && total > 0 && float64(good)/float64(total) < s.Objective {
			fv.Breached = append(fv.Breached, s.ID)
		}
		for _, a := range run.SLOs[i].Alerts {
			d := Detection{SLO: s.ID, Alert: a.Name, Severity: a.Severity}
			for _, ep := range a.Episodes {
				if ep.Fired.IsZero() {
					continue
				}
				if ep.Fired.Before(f.Start) && (ep.Resolved.IsZero() || ep.Resolved.After(f.Start)) {
					d.Detected, d.AlreadyFiring, d.Fired = true, true, ep.Fired
					break
				}
				if !ep.Fired.Before(f.Start) && !ep.Fired.After(deadline) {
					d.Detected, d.Fired, d.Time = true, ep.Fired, ep.Fired.Sub(f.Start)
					break
				}
			}
			fv.Detections = append(fv.Detections, d)
		}
		fv.Recoveries = append(fv.Recoveries, recovery(s, i, secs, f.End, runEnd, width, p.Recovery.Window))
	}
	return fv
}

// recovery finds the first window of length window, starting on a bucket
// boundary at or after end and ending by runEnd, whose SLI meets the
// objective.
func recovery(s PlannedSLO, i int, secs []second, end, runEnd time.Time, width, window time.Duration) RecoveryTime {
	r := RecoveryTime{SLO: s.ID}
	for w0 := alignUp(end, width); !w0.Add(window).After(runEnd); w0 = w0.Add(width) {
		r.Observed = true
		var good, total int64
		for _, sec := range secs {
			if !sec.start.Before(w0) && sec.start.Before(w0.Add(window)) {
				good, total = good+sec.sloGood[i], total+sec.sloTotal[i]
			}
		}
		if total > 0 && float64(good)/float64(total) >= s.Objective {
			r.Recovered, r.Time = true, w0.Sub(end)
			return r
		}
	}
	return r
}

// pct writes a ratio as a percentage with three decimals, so that an
// SLI just under its objective never prints as the objective.
func pct(r float64) string { return fmt.Sprintf("%.3f%%", r*100) }
