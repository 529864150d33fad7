package slo

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/relia-dev/relia/outcome"
)

// Evaluation is an SLO judged over relia's own outcome recorder: what a
// run (or one of its phases) did to it, with no Prometheus involved.
type Evaluation struct {
	// ID is the SLO's id.
	ID string `json:"id"`
	// From and To are the span judged.
	From time.Time `json:"from"`
	To   time.Time `json:"to"`
	// Good and Total count the span's events.
	Good  int64 `json:"good"`
	Total int64 `json:"total"`
	// SLI is Good/Total, 1 when the span has no events.
	SLI float64 `json:"sli"`
	// Met reports whether SLI reaches the objective.
	Met bool `json:"met"`
	// BurnRate is the span's error ratio over the error budget.
	BurnRate float64 `json:"burn_rate"`
	// BudgetSpent is the share of the period's error budget the span
	// spent: its burn rate times its length over the period (a one-hour
	// run burning at 14.4 spends 2% of a 30-day budget).
	BudgetSpent float64 `json:"budget_spent"`
	// Windows are the SLI over each of the SLO's windows ending at To, as
	// its Prometheus rules would record them; windows reach back before
	// From where the recorder holds earlier events.
	Windows []WindowSLI `json:"windows"`
	// Alerts are the SLO's alerts as its rules would have raised them
	// during the span, evaluated at every step.
	Alerts []AlertTimeline `json:"alerts"`
}

// WindowSLI is an SLO's SLI over one window.
type WindowSLI struct {
	Window   time.Duration `json:"window"`
	Good     int64         `json:"good"`
	Total    int64         `json:"total"`
	SLI      float64       `json:"sli"`
	BurnRate float64       `json:"burn_rate"`
}

// AlertTimeline is what one of an SLO's alerts did during a span.
type AlertTimeline struct {
	Name     string    `json:"name"`
	Severity string    `json:"severity"`
	Episodes []Episode `json:"episodes"`
}

// Episode is one spell of an alert's condition holding.
type Episode struct {
	// Pending is when the condition began to hold.
	Pending time.Time `json:"pending"`
	// Fired is when the alert fired (the condition having held for the
	// alert's For); zero if it resolved before.
	Fired time.Time `json:"fired,omitzero"`
	// Resolved is when the condition stopped holding; zero if it still
	// held at the end of the span.
	Resolved time.Time `json:"resolved,omitzero"`
}

// Evaluate judges s over the outcomes rec holds in [from, to). Events are
// counted per recorder bucket: for availability SLIs an event is good
// when its class is one of the spec's GoodClasses (ok by default), so
// dropped requests count as bad; for latency SLIs the events are the
// outcomes with a latency (dropped ones have none) and the good ones
// those at or under the threshold.
//
// Alerts are evaluated at the end of every bucket in the span, as
// Prometheus would evaluate the rules Rules generates at that interval,
// with the same window pairs, thresholds, low-traffic guard and for:. A
// window sums the buckets it covers, reaching back before from where
// the recorder holds earlier events, so a phase's alerts see the
// history before it as Prometheus would.
func Evaluate(s *SLO, rec *outcome.Recorder, from, to time.Time) (Evaluation, error) {
	if !to.After(from) {
		return Evaluation{}, fmt.Errorf("evaluating SLO %s: empty span %v to %v", s.ID(), from, to)
	}
	count, err := s.eventCounter()
	if err != nil {
		return Evaluation{}, err
	}
	step := rec.Options().BucketWidth
	// Steps run from the start of the bucket holding from (or of the
	// earliest bucket the longest window can reach) to the end of the
	// bucket before to.
	reach := s.Period()
	for _, a := range s.Alerts() {
		for _, w := range a.Windows {
			reach = max(reach, w.Long)
		}
	}
	origin := alignDown(from, step)
	if earliest, _, ok := rec.Span(); ok && earliest.Before(origin) {
		origin = alignDown(origin.Add(-reach), step)
		if earliest.After(origin) {
			origin = earliest
		}
	}
	n := int((to.Sub(origin) + step - 1) / step)
	bad, total := make([]float64, n), make([]float64, n)
	for b := range rec.Buckets() {
		i := int(b.From.Sub(origin) / step)
		if b.From.Before(origin) || i >= n {
			continue
		}
		g, t := count(b.Summary)
		bad[i], total[i] = float64(t-g), float64(t)
	}
	pb, pt := prefix(bad), prefix(total)
	sum := func(lo, hi int) (float64, float64) { // steps [lo, hi)
		lo = max(lo, 0)
		return pb[hi] - pb[lo], pt[hi] - pt[lo]
	}
	// A window of length w ending with step i covers the w/step steps up
	// to and including i.
	win := func(i int, w time.Duration) (float64, float64, bool) {
		e, v := sum(i+1-int((w+step-1)/step), i+1)
		return e, v, v > 0
	}
	first := int(from.Sub(origin) / step)
	budget := s.ErrorBudget()
	ev := Evaluation{ID: s.ID(), From: from, To: to}
	e, v := sum(first, n)
	ev.Total, ev.Good = int64(v), int64(v-e)
	ev.SLI = 1
	if v > 0 {
		ev.SLI = (v - e) / v
		ev.BurnRate = round12(e / v / budget)
	}
	ev.Met = ev.SLI >= float64(s.Spec.Objective)
	ev.BudgetSpent = BudgetSpent(ev.BurnRate, to.Sub(from), s.Period())
	for _, w := range s.windows() {
		e, v, _ := win(n-1, w)
		ws := WindowSLI{Window: w, Total: int64(v), Good: int64(v - e), SLI: 1}
		if v > 0 {
			ws.SLI = (v - e) / v
			ws.BurnRate = round12(e / v / budget)
		}
		ev.Windows = append(ev.Windows, ws)
	}
	for _, a := range s.Alerts() {
		states, _ := replayAlert(a, budget, win, n, step)
		tl := AlertTimeline{Name: a.Name, Severity: a.Severity, Episodes: []Episode{}}
		at := func(i int) time.Time { return origin.Add(time.Duration(i+1) * step) } // evaluated at the end of step i
		// Each run of evaluations where the condition held is an episode;
		// one that began before the span keeps its true start.
		for i := 0; i < n; {
			if states[i] == Inactive {
				i++
				continue
			}
			j := i
			for j < n && states[j] != Inactive {
				j++
			}
			if j > first { // the run reaches into the span
				ep := Episode{Pending: at(i)}
				if k := slices.Index(states[i:j], Firing); k >= 0 {
					ep.Fired = at(i + k)
				}
				if j < n {
					ep.Resolved = at(j)
				}
				tl.Episodes = append(tl.Episodes, ep)
			}
			i = j
		}
		ev.Alerts = append(ev.Alerts, tl)
	}
	return ev, nil
}

// alignDown returns the start of the recorder bucket of width step that
// holds t: buckets are aligned to the Unix epoch.
func alignDown(t time.Time, step time.Duration) time.Time {
	ns := t.UnixNano()
	r := ns % int64(step)
	if r < 0 {
		r += int64(step)
	}
	return time.Unix(0, ns-r).In(t.Location())
}

// prefix returns the prefix sums of xs: p[i] is the sum of xs[:i].
func prefix(xs []float64) []float64 {
	p := make([]float64, len(xs)+1)
	for i, x := range xs {
		p[i+1] = p[i] + x
	}
	return p
}

// eventCounter returns how the SLO counts good and total events in a
// recorder bucket.
func (s *SLO) eventCounter() (func(outcome.Summary) (good, total int64), error) {
	switch sli := s.Spec.SLI; {
	case sli.Availability != nil:
		names := sli.Availability.GoodClasses
		if len(names) == 0 {
			names = []string{outcome.ClassOK.String()}
		}
		var good [outcome.NumClasses]bool
		for _, name := range names {
			c, err := outcome.ParseClass(name)
			if err != nil {
				return nil, s.errorf("spec.sli.availability.goodClasses", "%v", err)
			}
			good[c] = true
		}
		return func(b outcome.Summary) (int64, int64) {
			return b.Good(func(c outcome.Class) bool { return c < outcome.NumClasses && good[c] })
		}, nil
	case sli.Latency != nil:
		threshold := sli.Latency.Threshold
		return func(b outcome.Summary) (int64, int64) {
			return b.Latency.CountAtOrBelow(threshold), b.Latency.Count()
		}, nil
	}
	return nil, errors.New("evaluating SLO " + s.ID() + ": no SLI")
}
