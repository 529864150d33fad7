package report

import (
	"slices"
	"testing"
)

func TestNiceScale(t *testing.T) {
	t.Parallel()
	tests := []struct {
		min, max         float64
		lo, hi, wantStep float64
	}{
		{0, 0, 0, 1, 0.25},      // no data: a unit axis
		{3, 3, 0, 3, 1},         // flat positive: from zero
		{0, 100, 0, 100, 20},    // exact
		{0, 97, 0, 100, 20},     // rounded up
		{0, 1234, 0, 1250, 250}, // 2.5 steps
		{0, 1500.001, 0, 2000, 500},
		{5, 9, 0, 10, 2}, // always from zero
		{-3, 7, -4, 8, 2},
		{-5, -1, -5, 0, 1},
		{0, 0.003, 0, 0.003, 0.001},
	}
	for _, tt := range tests {
		lo, hi, step := niceScale(tt.min, tt.max)
		if !near(lo, tt.lo) || !near(hi, tt.hi) || !near(step, tt.wantStep) {
			t.Errorf("niceScale(%v, %v) = %v, %v, %v; want %v, %v, %v", tt.min, tt.max, lo, hi, step, tt.lo, tt.hi, tt.wantStep)
		}
		if n := (hi - lo) / step; n < 3 || n > 8 {
			t.Errorf("niceScale(%v, %v): %v intervals", tt.min, tt.max, n)
		}
	}
}

func near(a, b float64) bool {
	d := a - b
	return d < 1e-9 && d > -1e-9
}

func TestTickLabels(t *testing.T) {
	t.Parallel()
	tests := []struct {
		lo, hi, step float64
		unit         string
		want         []string
	}{
		{0, 100, 20, "ms", []string{"0", "20 ms", "40 ms", "60 ms", "80 ms", "100 ms"}},
		{0, 2000, 500, "ms", []string{"0", "0.5 s", "1.0 s", "1.5 s", "2.0 s"}},
		{0, 0.5, 0.1, "s", []string{"0", "100 ms", "200 ms", "300 ms", "400 ms", "500 ms"}},
		{0, 5000, 1000, "req/s", []string{"0", "1k req/s", "2k req/s", "3k req/s", "4k req/s", "5k req/s"}},
		{0, 1250, 250, "req/s", []string{"0", "250 req/s", "500 req/s", "750 req/s", "1000 req/s", "1250 req/s"}},
		{0, 10, 2.5, "%", []string{"0", "2.5%", "5.0%", "7.5%", "10.0%"}},
		{-4, 8, 4, "", []string{"-4", "0", "4", "8"}},
		{0, 3e6, 1e6, "B", []string{"0", "1M B", "2M B", "3M B"}},
	}
	for _, tt := range tests {
		_, got := tickLabels(tt.lo, tt.hi, tt.step, tt.unit)
		if !slices.Equal(got, tt.want) {
			t.Errorf("tickLabels(%v, %v, %v, %q) = %q, want %q", tt.lo, tt.hi, tt.step, tt.unit, got, tt.want)
		}
	}
}

func TestTimeTicks(t *testing.T) {
	t.Parallel()
	tests := []struct {
		span  float64
		first []string
		n     int
	}{
		{120, []string{"00:00", "00:15", "00:30"}, 9},
		{100, []string{"00:00", "00:15", "00:30"}, 7},
		{600, []string{"00:00", "01:30"}, 0}, // 120 s steps would be 6; 90 is not a step
		{3600, []string{"0:00:00", "0:10:00", "0:20:00"}, 7},
		{5400, []string{"0:00:00", "0:15:00"}, 7},
		{2, []string{"00:00.0", "00:00.5", "00:01.0"}, 5},
		{0.05, []string{"00:00.00", "00:00.01"}, 6},
	}
	for _, tt := range tests {
		secs, labels := timeTicks(tt.span)
		if len(secs) != len(labels) {
			t.Fatalf("timeTicks(%v): %d ticks, %d labels", tt.span, len(secs), len(labels))
		}
		if tt.n == 0 {
			// Only check that the steps are a reader's steps.
			if len(labels) > 9 || len(labels) < 3 {
				t.Errorf("timeTicks(%v): %d ticks", tt.span, len(labels))
			}
			continue
		}
		if len(labels) != tt.n || !slices.Equal(labels[:len(tt.first)], tt.first) {
			t.Errorf("timeTicks(%v) = %q, want %d ticks starting %q", tt.span, labels, tt.n, tt.first)
		}
	}
}

func TestElapsed(t *testing.T) {
	t.Parallel()
	tests := []struct {
		sec, step, span float64
		want            string
	}{
		{0, 15, 120, "00:00"},
		{75, 15, 120, "01:15"},
		{3599, 60, 3599, "59:59"},
		{3600, 600, 3600, "1:00:00"},
		{5430, 900, 7200, "1:30:30"},
		{1.5, 0.5, 4, "00:01.5"},
		{61.25, 0.05, 62, "01:01.25"},
	}
	for _, tt := range tests {
		if got := elapsed(tt.sec, tt.step, tt.span); got != tt.want {
			t.Errorf("elapsed(%v, %v, %v) = %q, want %q", tt.sec, tt.step, tt.span, got, tt.want)
		}
	}
}

func TestAxisUnit(t *testing.T) {
	t.Parallel()
	tests := []struct {
		unit   string
		max    float64
		div    float64
		suffix string
	}{
		{"ms", 999, 1, " ms"},
		{"ms", 1000, 1000, " s"},
		{"s", 0.2, 0.001, " ms"},
		{"s", 0, 1, " s"},
		{"req/s", 12000, 1000, "k req/s"},
		{"req/s", 2e6, 1e6, "M req/s"},
		{"", 5e9, 1e9, "G"},
		{"%", 50000, 1, "%"},
	}
	for _, tt := range tests {
		div, suffix := axisUnit(tt.unit, tt.max)
		if div != tt.div || suffix != tt.suffix {
			t.Errorf("axisUnit(%q, %v) = %v, %q; want %v, %q", tt.unit, tt.max, div, suffix, tt.div, tt.suffix)
		}
	}
}
