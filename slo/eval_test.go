package slo

import (
	"strings"
	"testing"
	"time"

	"github.com/relia-dev/relia/outcome"
)

// burstRecorder records 10 requests a second for an hour, all good,
// then 10 minutes in which half fail, then 30 minutes all good again;
// t0 is the start of the burst.
func burstRecorder(t *testing.T) (rec *outcome.Recorder, start, t0, end time.Time) {
	t.Helper()
	rec, err := outcome.NewRecorder(outcome.Options{})
	if err != nil {
		t.Fatal(err)
	}
	start = time.Date(2025, 11, 28, 9, 0, 0, 0, time.UTC)
	t0 = start.Add(time.Hour)
	end = t0.Add(40 * time.Minute)
	for at := start; at.Before(end); at = at.Add(100 * time.Millisecond) {
		o := outcome.Outcome{Start: at, Latency: 20 * time.Millisecond, Status: 200}
		burst := !at.Before(t0) && at.Before(t0.Add(10*time.Minute))
		if burst && at.Sub(start)%(200*time.Millisecond) == 0 {
			o.Status, o.Latency = 503, 300*time.Millisecond
		}
		o.Class = outcome.ClassifyResponse(o.Status, nil)
		rec.Record(o)
	}
	return rec, start, t0, end
}

func availabilitySLO(t *testing.T) *SLO {
	t.Helper()
	slos, err := Parse("a.yaml", []byte(spec("checkout", "  objective: 99.9%\n  sli:\n    availability: {goodClasses: [ok]}\n")))
	if err != nil {
		t.Fatal(err)
	}
	return slos[0]
}

// TestEvaluateBurst checks the evaluator against times worked by hand
// for the burst: 5 of 10 requests a second failing against a budget of
// 0.1%.
func TestEvaluateBurst(t *testing.T) {
	t.Parallel()
	rec, start, t0, end := burstRecorder(t)
	ev, err := Evaluate(availabilitySLO(t), rec, start, end)
	if err != nil {
		t.Fatal(err)
	}
	// 6000 s at 10/s, of which 600 s at 5 failures a second.
	if ev.Total != 60000 || ev.Good != 57000 || ev.SLI != 0.95 || ev.Met {
		t.Errorf("total %d good %d SLI %v met %v; want 60000, 57000, 0.95, false", ev.Total, ev.Good, ev.SLI, ev.Met)
	}
	// An error ratio of 5% burns a 0.1% budget at 50x; 100 minutes of it
	// spend 50 * 6000s / 30d of the budget.
	if ev.BurnRate != 50 || ev.BudgetSpent != BudgetSpent(50, 100*time.Minute, DefaultPeriod) || ev.BudgetSpent < 0.1157 || ev.BudgetSpent > 0.1158 {
		t.Errorf("burn rate %v, budget spent %v; want 50 and 0.11574", ev.BurnRate, ev.BudgetSpent)
	}
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	want := map[string][]Episode{
		// Page: with an hour of history the 6h/30m pair at 6x (0.6%)
		// fires first, its long window holding all 36000+10k events:
		// 5k/(36000+10k) > 0.6% once k >= 44 s (the 1h/5m pair at 14.4x
		// would take 104 s). It resolves when the 30-minute window holds
		// 21 burst seconds or fewer (105/18000 <= 0.6%): 2379 s in.
		Page: {{Pending: at(44 * time.Second), Fired: at(44 * time.Second), Resolved: at(2379 * time.Second)}},
		// Ticket: the 3d/6h pair at 1x (0.1%) reaches back to the first
		// event too: 5k/(36000+10k) > 0.1% once k >= 8 s, and the burst
		// keeps the whole history above it to the end.
		Ticket: {{Pending: at(8 * time.Second), Fired: at(8 * time.Second)}},
	}
	for _, a := range ev.Alerts {
		if got := a.Episodes; !sameEpisodes(got, want[a.Severity]) {
			t.Errorf("%s episodes %+v, want %+v", a.Severity, got, want[a.Severity])
		}
	}
	// At the end, the 5-minute window holds no failures and the hour the
	// whole 10-minute burst: 3000 failures among 36000 events.
	for _, w := range ev.Windows {
		switch w.Window {
		case 5 * time.Minute:
			if w.Total != 3000 || w.Good != 3000 || w.SLI != 1 {
				t.Errorf("5m window %+v, want 3000 good of 3000", w)
			}
		case time.Hour:
			if w.Total != 36000 || w.Good != 33000 {
				t.Errorf("1h window %+v, want 33000 good of 36000", w)
			}
		case DefaultPeriod:
			if w.Total != 60000 || w.Good != 57000 || w.BurnRate != 50 {
				t.Errorf("30d window %+v, want 57000 good of 60000 at 50x", w)
			}
		}
	}
}

func sameEpisodes(a, b []Episode) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !a[i].Pending.Equal(b[i].Pending) || !a[i].Fired.Equal(b[i].Fired) || !a[i].Resolved.Equal(b[i].Resolved) {
			return false
		}
	}
	return true
}

// TestEvaluatePhaseSeesHistory: judging only the burst, the windows still
// reach back into the hour before it, so the page fires when it does
// when judging the whole run (a window of the burst alone would fire it
// at once).
func TestEvaluatePhaseSeesHistory(t *testing.T) {
	t.Parallel()
	rec, _, t0, _ := burstRecorder(t)
	ev, err := Evaluate(availabilitySLO(t), rec, t0, t0.Add(10*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if ev.Total != 6000 || ev.SLI != 0.5 {
		t.Errorf("burst phase: total %d SLI %v, want 6000 and 0.5", ev.Total, ev.SLI)
	}
	page := ev.Alerts[0]
	if len(page.Episodes) != 1 || !page.Episodes[0].Fired.Equal(t0.Add(44*time.Second)) || !page.Episodes[0].Resolved.IsZero() {
		t.Errorf("page during the burst: %+v, want fired 44s in and unresolved", page.Episodes)
	}
	// A phase after the burst sees the page's episode that began before it.
	ev, err = Evaluate(availabilitySLO(t), rec, t0.Add(20*time.Minute), t0.Add(40*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if ep := ev.Alerts[0].Episodes; len(ep) != 1 || !ep[0].Pending.Equal(t0.Add(44*time.Second)) || !ep[0].Resolved.Equal(t0.Add(2379*time.Second)) {
		t.Errorf("page after the burst: %+v", ep)
	}
}

func TestEvaluateLatencyAndClasses(t *testing.T) {
	t.Parallel()
	rec, err := outcome.NewRecorder(outcome.Options{})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Date(2025, 11, 28, 9, 0, 0, 0, time.UTC)
	for i := range 1000 {
		o := outcome.Outcome{Start: start.Add(time.Duration(i) * 10 * time.Millisecond), Latency: time.Duration(1+i%400) * time.Millisecond, Status: 200}
		switch {
		case i%100 == 0:
			o.Class, o.Status, o.Latency = outcome.ClassDropped, 0, 0
		case i%100 == 1:
			o.Class, o.Status = outcome.ClassStatus, 429
		}
		rec.Record(o)
	}
	end := start.Add(10 * time.Second)
	lat, err := Parse("l.yaml", []byte(spec("lat", "  objective: 99%\n  sli:\n    latency: {threshold: 200ms}\n")))
	if err != nil {
		t.Fatal(err)
	}
	ev, err := Evaluate(lat[0], rec, start, end)
	if err != nil {
		t.Fatal(err)
	}
	// Dropped requests have no latency: 990 events, of which those with
	// i%400 < 200 are good: 600 of the 1000, less the 6 dropped among
	// them (i = 0, 100, 400, 500, 800, 900).
	if ev.Total != 990 || ev.Good != 594 {
		t.Errorf("latency SLI: %d good of %d, want 594 of 990", ev.Good, ev.Total)
	}
	// Availability with 429s counted good: dropped requests are bad.
	av, err := Parse("a.yaml", []byte(spec("av", "  objective: 99%\n  sli:\n    availability: {goodClasses: [ok, status]}\n")))
	if err != nil {
		t.Fatal(err)
	}
	ev, err = Evaluate(av[0], rec, start, end)
	if err != nil {
		t.Fatal(err)
	}
	if ev.Total != 1000 || ev.Good != 990 {
		t.Errorf("availability SLI: %d good of %d, want 990 of 1000", ev.Good, ev.Total)
	}
	if _, err := Evaluate(av[0], rec, end, start); err == nil || !strings.Contains(err.Error(), "empty span") {
		t.Errorf("reversed span: %v", err)
	}
	// An empty span has an SLI of 1 and meets its objective.
	ev, err = Evaluate(av[0], rec, end.Add(time.Hour), end.Add(2*time.Hour))
	if err != nil || ev.Total != 0 || ev.SLI != 1 || !ev.Met {
		t.Errorf("empty span: %+v, %v", ev, err)
	}
}
