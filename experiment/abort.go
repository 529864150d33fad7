package experiment

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/relia-dev/relia/clock"
	"github.com/relia-dev/relia/outcome"
	"github.com/relia-dev/relia/slo"
)

// DefaultAbortInterval is how often an AbortMonitor judges its
// conditions: once per default recorder bucket.
const DefaultAbortInterval = time.Second

// AbortOptions configure an AbortMonitor. The zero value is valid.
type AbortOptions struct {
	// Clock times the ticks; nil means the real clock.
	Clock clock.Clock
	// Interval between judgements; 0 means DefaultAbortInterval.
	Interval time.Duration
}

// Breach is an abort condition that ended a run: which one, what it
// measured against what limit, and when.
type Breach struct {
	// Condition is the condition's name; Kind is AbortBurnRate or
	// AbortThreshold.
	Condition string `json:"condition"`
	Kind      string `json:"kind"`
	// Phase is the phase running when the run aborted.
	Phase string `json:"phase"`
	// Value is what the condition measured over its window: the burn
	// rate, or the threshold's aggregate (ms for trends); Limit is what
	// it may not pass.
	Value float64 `json:"value"`
	Limit float64 `json:"limit"`
	// Events is how many outcomes the window held.
	Events int64 `json:"events"`
	// Since is when the condition was first found breached without a
	// break; At is when it had been breached for its For and aborted the
	// run.
	Since time.Time `json:"since"`
	At    time.Time `json:"at"`
	// Reason says it in words, for the terminal and the report.
	Reason string `json:"reason"`
}

// AbortMonitor judges a plan's abort conditions on the live recorder at
// every tick and reports the first breach. Each condition is judged over
// its trailing window, clipped to the start of the run, and only in its
// phases; a condition aborts once it has been breached at every tick for
// its For.
type AbortMonitor struct {
	plan     *Plan
	rec      *outcome.Recorder
	start    time.Time
	clock    clock.Clock
	interval time.Duration
	budgets  []float64 // per condition: the SLO's error budget (burn rates)
	counters []func(outcome.Summary) (int64, int64)
	since    []time.Time // per condition: first tick of the current breach
}

// NewAbortMonitor returns a monitor of p's abort conditions over rec for
// a run that started at start. It fails on invalid options or a plan
// whose conditions name SLOs it does not have.
func NewAbortMonitor(p *Plan, rec *outcome.Recorder, start time.Time, opts AbortOptions) (*AbortMonitor, error) {
	if opts.Interval < 0 {
		return nil, fmt.Errorf("creating abort monitor: interval %v is negative", opts.Interval)
	}
	if opts.Interval == 0 {
		opts.Interval = DefaultAbortInterval
	}
	m := &AbortMonitor{plan: p, rec: rec, start: start, clock: clock.OrReal(opts.Clock), interval: opts.Interval,
		budgets: make([]float64, len(p.Aborts)), counters: make([]func(outcome.Summary) (int64, int64), len(p.Aborts)),
		since: make([]time.Time, len(p.Aborts))}
	for i, a := range p.Aborts {
		if a.Kind != AbortBurnRate {
			continue
		}
		s, ok := p.SLO(a.SLO)
		if !ok || s.SLO == nil {
			return nil, fmt.Errorf("creating abort monitor: condition %s names SLO %s, which the plan lacks", a.Name, a.SLO)
		}
		m.budgets[i] = slo.ErrorBudget(s.Objective)
		m.counters[i] = sloCounter(s.SLO)
	}
	return m, nil
}

// Run judges the conditions every interval until one aborts the run,
// returning its breach, or until ctx ends, returning ctx's error. It is
// the monitor's only goroutine-owning method; the caller runs it in a
// goroutine of its own and cancels ctx at the end of the run.
func (m *AbortMonitor) Run(ctx context.Context) (Breach, error) {
	if len(m.plan.Aborts) == 0 {
		<-ctx.Done()
		return Breach{}, ctx.Err()
	}
	for {
		if err := clock.Sleep(ctx, m.clock, m.interval); err != nil {
			return Breach{}, err
		}
		if b, ok := m.Check(m.clock.Now()); ok {
			return b, nil
		}
	}
}

// Check judges every condition at now and reports the first (in the
// plan's order) that has been breached for its For. Calls must come in
// time order; Run makes them, and tests call Check directly.
func (m *AbortMonitor) Check(now time.Time) (Breach, bool) {
	phase := m.plan.PhaseAt(now.Sub(m.start))
	if phase < 0 {
		return Breach{}, false
	}
	name := m.plan.Phases[phase].Name
	for i, a := range m.plan.Aborts {
		if len(a.Phases) > 0 && !slices.Contains(a.Phases, name) {
			m.since[i] = time.Time{}
			continue
		}
		from := now.Add(-a.Window)
		if from.Before(m.start) {
			from = m.start
		}
		span := now.Sub(from)
		sum := m.rec.Window(from, now)
		value, limit, events, breached := m.judge(i, a, sum, span)
		if !breached {
			m.since[i] = time.Time{}
			continue
		}
		if m.since[i].IsZero() {
			m.since[i] = now
		}
		if now.Sub(m.since[i]) < a.For {
			continue
		}
		b := Breach{Condition: a.Name, Kind: a.Kind, Phase: name, Value: value, Limit: limit, Events: events, Since: m.since[i], At: now}
		switch a.Kind {
		case AbortBurnRate:
			b.Reason = fmt.Sprintf("%s burned its error budget at %.4gx (over %g) over the last %s, %d events", a.SLO, value, limit, fmtDur(span), events)
		default:
			b.Reason = fmt.Sprintf("threshold %s failed over the last %s: %.4g, %d events", a.Threshold, fmtDur(span), value, events)
		}
		if a.For > 0 {
			b.Reason += fmt.Sprintf(", breached since %s", fmtDur(b.Since.Sub(m.start)))
		}
		return b, true
	}
	return Breach{}, false
}

// judge measures condition i over a window summary.
func (m *AbortMonitor) judge(i int, a PlannedAbort, sum outcome.Summary, span time.Duration) (value, limit float64, events int64, breached bool) {
	if a.Kind == AbortBurnRate {
		good, total := m.counters[i](sum)
		if total == 0 || total < a.MinEvents {
			return 0, a.Above, total, false
		}
		rate := float64(total-good) / float64(total) / m.budgets[i]
		return rate, a.Above, total, rate > a.Above
	}
	t := a.Threshold.Parsed
	v, n, ok := thresholdValue(t, sum, span)
	if !ok || n < a.MinEvents {
		return v, t.Value, n, false
	}
	return v, t.Value, n, !t.Holds(v)
}
