package resilience

import (
	"math/rand/v2"
	"testing"
	"time"
)

func TestBackoffNone(t *testing.T) {
	t.Parallel()
	s := BackoffSettings{Base: 100 * time.Millisecond, Cap: time.Second, Multiplier: 2, Jitter: JitterNone}
	tests := []struct {
		attempt int
		want    time.Duration
	}{
		{0, 100 * time.Millisecond}, // below 1 counts as the first retry
		{1, 100 * time.Millisecond},
		{2, 200 * time.Millisecond},
		{3, 400 * time.Millisecond},
		{4, 800 * time.Millisecond},
		{5, time.Second},
		{64, time.Second},
		{1 << 30, time.Second}, // saturates, no overflow
	}
	for _, tt := range tests {
		if got := Backoff(s, tt.attempt, 0, nil); got != tt.want {
			t.Errorf("attempt %d: got %v, want %v", tt.attempt, got, tt.want)
		}
	}
	s.Multiplier = 1.5
	if got := Backoff(s, 3, 0, nil); got != 225*time.Millisecond {
		t.Errorf("multiplier 1.5, attempt 3: got %v, want 225ms", got)
	}
}

// TestBackoffJitterBounds draws many delays per mode and attempt from a
// seeded source and checks each against the article's bounds.
func TestBackoffJitterBounds(t *testing.T) {
	t.Parallel()
	base, maxDelay := 10*time.Millisecond, 500*time.Millisecond
	tests := []struct {
		jitter Jitter
		// bounds gives [lo, hi] for a retry, given the exponential delay
		// min(cap, base*2^(n-1)) and the previous delay.
		bounds func(exp, prev time.Duration) (time.Duration, time.Duration)
	}{
		{JitterFull, func(exp, _ time.Duration) (time.Duration, time.Duration) { return 0, exp }},
		{JitterEqual, func(exp, _ time.Duration) (time.Duration, time.Duration) { return exp / 2, exp }},
		{JitterDecorrelated, func(_, prev time.Duration) (time.Duration, time.Duration) {
			return base, min(maxDelay, 3*max(prev, base))
		}},
		{JitterNone, func(exp, _ time.Duration) (time.Duration, time.Duration) { return exp, exp }},
	}
	for _, tt := range tests {
		t.Run(tt.jitter.String(), func(t *testing.T) {
			t.Parallel()
			s := BackoffSettings{Base: base, Cap: maxDelay, Multiplier: 2, Jitter: tt.jitter}
			src := rand.NewPCG(1, 2)
			distinct := map[time.Duration]bool{}
			for run := 0; run < 2000; run++ {
				var prev time.Duration
				for n := 1; n <= 10; n++ {
					exp := min(maxDelay, base<<(n-1))
					lo, hi := tt.bounds(exp, prev)
					d := Backoff(s, n, prev, src)
					if d < lo || d > hi {
						t.Fatalf("retry %d (prev %v): %v not in [%v, %v]", n, prev, d, lo, hi)
					}
					distinct[d] = true
					prev = d
				}
			}
			if tt.jitter != JitterNone && len(distinct) < 1000 {
				t.Errorf("only %d distinct delays: the jitter is not random", len(distinct))
			}
		})
	}
}

func TestBackoffSeededIsReproducible(t *testing.T) {
	t.Parallel()
	s := BackoffSettings{Base: time.Millisecond, Cap: time.Second, Multiplier: 2, Jitter: JitterDecorrelated}
	draw := func() []time.Duration {
		src := rand.NewPCG(42, 7)
		var out []time.Duration
		var prev time.Duration
		for n := 1; n <= 20; n++ {
			prev = Backoff(s, n, prev, src)
			out = append(out, prev)
		}
		return out
	}
	a, b := draw(), draw()
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("draw %d differs: %v vs %v", i, a[i], b[i])
		}
	}
}

// TestBackoffFullJitterMean checks that full jitter is uniform enough: the
// mean of many draws is near half the bound.
func TestBackoffFullJitterMean(t *testing.T) {
	t.Parallel()
	s := BackoffSettings{Base: time.Second, Cap: time.Second, Multiplier: 2, Jitter: JitterFull}
	src := rand.NewPCG(3, 4)
	const n = 20000
	var sum time.Duration
	for range n {
		sum += Backoff(s, 1, 0, src)
	}
	mean := sum / n
	if mean < 480*time.Millisecond || mean > 520*time.Millisecond {
		t.Errorf("mean of full jitter over [0, 1s] = %v, want about 500ms", mean)
	}
}

func TestBackoffSettingsValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		s    BackoffSettings
		ok   bool
	}{
		{"valid", BackoffSettings{Base: 1, Cap: 1, Multiplier: 1}, true},
		{"zero base", BackoffSettings{Base: 0, Cap: 1, Multiplier: 1}, false},
		{"cap below base", BackoffSettings{Base: 2, Cap: 1, Multiplier: 1}, false},
		{"multiplier below 1", BackoffSettings{Base: 1, Cap: 1, Multiplier: 0.5}, false},
		{"unknown jitter", BackoffSettings{Base: 1, Cap: 1, Multiplier: 1, Jitter: 9}, false},
	}
	for _, tt := range tests {
		if err := tt.s.Validate(); (err == nil) != tt.ok {
			t.Errorf("%s: Validate() = %v, want ok %v", tt.name, err, tt.ok)
		}
	}
}
