package experiment

import (
	"context"
	"testing"
	"time"

	"github.com/relia-dev/relia/clock"
)

// abortPlan is judgedPlan with abort conditions.
func abortPlan(t *testing.T, abort string) *Plan {
	t.Helper()
	src := exp("  target: {url: 'http://127.0.0.1:8080'}\n  slos: [{id: api-availability}]\n" +
		"  phases:\n    - {name: baseline, duration: 20s, load: {rate: 10}}\n" +
		"    - {name: degraded, duration: 20s, load: {rate: 10}}\n" +
		"  abort:\n" + abort)
	p, err := Parse("e.yaml", []byte(src), Options{})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestAbortMonitorCheck(t *testing.T) {
	t.Parallel()
	// Every request fails from 25s on.
	rec := record(t, run(40, 25, 40, traffic{n: 10, failures: 10, latency: 20 * time.Millisecond}))
	cases := []struct {
		name      string
		abort     string
		want      string        // condition, "" for none
		at, since time.Duration // when it aborts, and since when it was breached
	}{
		// 10 failures a second against a 0.1% budget burn at 1000x over
		// any window that holds them; the 5s window first holds one
		// failing second (of 5) at the tick at 26s: 200x.
		{"burn rate", "    - {burnRate: {slo: api-availability, above: 100}, window: 5s}\n", "burn-rate-api-availability", 26 * time.Second, 26 * time.Second},
		// Above 300x needs two failing seconds in five: 400x at 27s.
		{"higher burn rate", "    - {burnRate: {slo: api-availability, above: 300}, window: 5s}\n", "burn-rate-api-availability", 27 * time.Second, 27 * time.Second},
		// rate<0.5 fails once three of five seconds fail (28s), and must
		// stay failed for 2s.
		{"threshold for 2s", "    - {name: errors, threshold: 'http_req_failed:rate<0.5', window: 5s, for: 2s}\n", "errors", 30 * time.Second, 28 * time.Second},
		// Limited to the baseline, where nothing fails.
		{"other phase", "    - {burnRate: {slo: api-availability, above: 100}, window: 5s, phases: [baseline]}\n", "", 0, 0},
		// A window must hold 100 events: 10 seconds at 10 a second.
		{"min events", "    - {burnRate: {slo: api-availability, above: 100}, window: 5s, minEvents: 100}\n", "", 0, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			m, err := NewAbortMonitor(abortPlan(t, tc.abort), rec, t0, AbortOptions{})
			if err != nil {
				t.Fatal(err)
			}
			for s := 1; s <= 40; s++ {
				b, ok := m.Check(t0.Add(time.Duration(s) * time.Second))
				if !ok {
					continue
				}
				if b.Condition != tc.want || b.At != t0.Add(tc.at) || b.Since != t0.Add(tc.since) || b.Phase != "degraded" || b.Reason == "" {
					t.Errorf("breach %+v, want %s at %v since %v", b, tc.want, tc.at, tc.since)
				}
				return
			}
			if tc.want != "" {
				t.Errorf("no breach, want %s at %v", tc.want, tc.at)
			}
		})
	}
}

// TestAbortMonitorRun drives the monitor's own loop with a fake clock.
func TestAbortMonitorRun(t *testing.T) {
	t.Parallel()
	rec := record(t, run(40, 25, 40, traffic{n: 10, failures: 10, latency: 20 * time.Millisecond}))
	clk := clock.NewFake(t0)
	m, err := NewAbortMonitor(abortPlan(t, "    - {burnRate: {slo: api-availability, above: 100}, window: 5s}\n"), rec, t0, AbortOptions{Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	type result struct {
		b   Breach
		err error
	}
	done := make(chan result, 1)
	go func() {
		b, err := m.Run(context.Background())
		done <- result{b, err}
	}()
	for range 40 {
		// Tick once the monitor sleeps; it may instead have returned.
		// (A BlockUntil left waiting when it returned ends with the test.)
		sleeping := make(chan struct{})
		go func() { clk.BlockUntil(1); close(sleeping) }()
		select {
		case r := <-done:
			if r.err != nil || r.b.At != t0.Add(26*time.Second) || r.b.Condition != "burn-rate-api-availability" {
				t.Fatalf("Run = %+v, %v; want a breach at 26s", r.b, r.err)
			}
			return
		case <-sleeping:
			clk.Advance(time.Second)
		}
	}
	t.Fatal("no breach after 40 ticks")
}

func TestAbortMonitorRunStopsWithContext(t *testing.T) {
	t.Parallel()
	rec := record(t, run(5, 0, 0, traffic{}))
	m, err := NewAbortMonitor(abortPlan(t, "    - {burnRate: {slo: api-availability, above: 100}, window: 5s}\n"), rec, t0, AbortOptions{Clock: clock.NewFake(t0)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := m.Run(ctx); err != context.Canceled {
		t.Errorf("Run after cancel = %v, want context.Canceled", err)
	}
	if _, err := NewAbortMonitor(&Plan{}, rec, t0, AbortOptions{Interval: -1}); err == nil {
		t.Error("a negative interval was accepted")
	}
}
