package slo

import "time"

// windowFunc returns the failed and all events in the window of length w
// that ends with step i, and whether the window holds any data. It hides
// where events come from: relia's recorder (exact counts) or a replay of
// Prometheus's rules (average rates times the window).
type windowFunc func(i int, w time.Duration) (errors, events float64, ok bool)

// AlertState is the state of an alert at one evaluation.
type AlertState int

// Alert states, as Prometheus names them.
const (
	Inactive AlertState = iota
	Pending
	Firing
)

// String names the state as Prometheus's alerts API does.
func (s AlertState) String() string {
	switch s {
	case Pending:
		return "pending"
	case Firing:
		return "firing"
	}
	return "inactive"
}

// conditionHolds reports whether any of a's window pairs fires at step i,
// and the error ratio of that pair's long window (the alert's value).
func conditionHolds(a Alert, budget float64, win windowFunc, i int) (bool, float64) {
	for _, w := range a.Windows {
		// The same float64 arithmetic as the rule's (burn rate * budget).
		thr := w.BurnRate * budget
		errL, evL, okL := win(i, w.Long)
		errS, evS, okS := win(i, w.Short)
		if !okL || !okS || evL <= 0 || evS <= 0 {
			continue
		}
		if errL/evL > thr && errS/evS > thr && (a.MinEvents == 0 || evL >= float64(a.MinEvents)) {
			return true, errL / evL
		}
	}
	return false, 0
}

// replayAlert evaluates a at every step 0..n-1 the way Prometheus does:
// the condition makes the alert pending, and firing once it has held for
// a.For; it resolves as soon as the condition stops holding.
func replayAlert(a Alert, budget float64, win windowFunc, n int, step time.Duration) (states []AlertState, values []float64) {
	states = make([]AlertState, n)
	values = make([]float64, n)
	activeAt := -1
	for i := range n {
		holds, v := conditionHolds(a, budget, win, i)
		if !holds {
			activeAt = -1
			continue
		}
		if activeAt < 0 {
			activeAt = i
		}
		values[i] = v
		states[i] = Pending
		if time.Duration(i-activeAt)*step >= a.For {
			states[i] = Firing
		}
	}
	return states, values
}
