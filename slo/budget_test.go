package slo

import (
	"math"
	"testing"
	"time"

	"github.com/relia-dev/relia/internal/config"
)

// TestBudgetMath checks the budget functions against examples worked by
// hand (and in the SRE Workbook's "Alerting on SLOs").
func TestBudgetMath(t *testing.T) {
	t.Parallel()
	const month = 30 * config.Day
	// 0.1% of 30 days = 0.001 * 43200 min = 43.2 min.
	if got := BudgetTime(0.999, month); got != 43*time.Minute+12*time.Second {
		t.Errorf("BudgetTime(99.9%%, 30d) = %v, want 43m12s", got)
	}
	// 0.05% of 28 days = 0.0005 * 40320 min = 20.16 min.
	if got := BudgetTime(0.9995, 28*config.Day); got != 20*time.Minute+9*time.Second+600*time.Millisecond {
		t.Errorf("BudgetTime(99.95%%, 28d) = %v, want 20m9.6s", got)
	}
	// 1% of 7 days = 100.8 min.
	if got := BudgetTime(0.99, 7*config.Day); got != time.Hour+40*time.Minute+48*time.Second {
		t.Errorf("BudgetTime(99%%, 7d) = %v, want 1h40m48s", got)
	}
	if got := ErrorBudget(0.999); got != 0.001 {
		t.Errorf("ErrorBudget(0.999) = %v, want exactly 0.001", got)
	}
	// Burning at 14.4 for 1 hour spends 14.4/720 = 2% of a 30-day budget.
	for _, tc := range []struct {
		rate   float64
		d      time.Duration
		period time.Duration
		want   float64
	}{
		{14.4, time.Hour, month, 0.02},
		{6, 6 * time.Hour, month, 0.05},
		{3, config.Day, month, 0.10},
		{1, 3 * config.Day, month, 0.10},
		{1, month, month, 1},
		{13.44, time.Hour, 28 * config.Day, 0.02},
	} {
		if got := BudgetSpent(tc.rate, tc.d, tc.period); got != tc.want {
			t.Errorf("BudgetSpent(%v, %v, %v) = %v, want %v", tc.rate, tc.d, tc.period, got, tc.want)
		}
		if got := BurnRateFor(tc.want, tc.d, tc.period); got != tc.rate {
			t.Errorf("BurnRateFor(%v, %v, %v) = %v, want %v", tc.want, tc.d, tc.period, got, tc.rate)
		}
	}
	// An error ratio of 1.44% against a 0.1% budget burns at 14.4.
	if got := BurnRate(0.0144, 0.999); math.Abs(got-14.4) > 1e-9 {
		t.Errorf("BurnRate(1.44%%, 99.9%%) = %v, want 14.4", got)
	}
	// Half the budget left, burning at 2: gone in a quarter of the period.
	if got, ok := TimeToExhaustion(0.5, 2, month); !ok || got != month/4 {
		t.Errorf("TimeToExhaustion(0.5, 2, 30d) = %v, %v; want 7d12h", got, ok)
	}
	if _, ok := TimeToExhaustion(0.5, 0, month); ok {
		t.Error("TimeToExhaustion at burn rate 0 is finite")
	}
	// A 14.4x pair over 1h detects a 100% outage of a 99.9% SLO (burn
	// rate 1000) in 1h*14.4/1000 = 51.84s, a 28.8x burn in 30 minutes,
	// and never a 14.4x burn.
	page := BurnWindow{Long: time.Hour, Short: 5 * time.Minute, BurnRate: 14.4}
	for _, tc := range []struct {
		burn float64
		want time.Duration
		ok   bool
	}{
		{1000, 51840 * time.Millisecond, true},
		{28.8, 30 * time.Minute, true},
		{14.4, 0, false},
	} {
		if got, ok := DetectionTime(page, tc.burn); ok != tc.ok || got != tc.want {
			t.Errorf("DetectionTime(14.4x/1h, %v) = %v, %v; want %v, %v", tc.burn, got, ok, tc.want, tc.ok)
		}
	}
}

// TestWorkbookWindowsScale checks the default alerts: the Workbook's
// numbers over 30 days, the same budget shares over other periods, and
// never a burn rate below 1.
func TestWorkbookWindowsScale(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		period time.Duration
		want   []float64 // page 1h, page 6h, ticket 1d, ticket 3d
	}{
		{30 * config.Day, []float64{14.4, 6, 3, 1}},
		{28 * config.Day, []float64{13.44, 5.6, 2.8, 1}}, // 0.1*672h/72h = 0.93 -> 1
		{7 * config.Day, []float64{3.36, 1.4, 1, 1}},
		{90 * config.Day, []float64{43.2, 18, 9, 3}},
	} {
		s := &SLO{Spec: Spec{Objective: 0.999, Period: tc.period}}
		var got []float64
		for _, a := range s.Alerts() {
			for _, w := range a.Windows {
				got = append(got, w.BurnRate)
			}
		}
		if len(got) != len(tc.want) {
			t.Fatalf("period %v: %d windows, want %d", tc.period, len(got), len(tc.want))
		}
		for i := range got {
			if got[i] != tc.want[i] {
				t.Errorf("period %s: burn rates %v, want %v", config.FormatDuration(tc.period), got, tc.want)
				break
			}
		}
	}
}
