package shop

import (
	"slices"
	"testing"
	"time"
)

func TestLatencyDraws(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		median time.Duration
	}{
		{"fast", 2 * time.Millisecond},
		{"slow", 10 * time.Millisecond},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			const n = 20000
			l, again := newLatency(1, tc.name, tc.median), newLatency(1, tc.name, tc.median)
			draws := make([]time.Duration, n)
			for i := range draws {
				draws[i] = l.next()
				if d := again.next(); d != draws[i] {
					t.Fatalf("draw %d: %s, then %s with the same seed", i, draws[i], d)
				}
			}
			slices.Sort(draws)
			med, p999 := draws[n/2], draws[n*999/1000]
			if med < tc.median*9/10 || med > tc.median*11/10 {
				t.Errorf("median %s, want about %s", med, tc.median)
			}
			// The tail: 1% take 8 times longer, so p99.9 is far out, but
			// nothing passes the cap.
			if p999 < 5*tc.median {
				t.Errorf("p99.9 %s, want a tail beyond %s", p999, 5*tc.median)
			}
			if max := draws[n-1]; max > maxFactor*tc.median {
				t.Errorf("max %s above the cap %s", max, maxFactor*tc.median)
			}
			if draws[0] <= 0 {
				t.Errorf("min %s", draws[0])
			}
		})
	}
	if newLatency(1, "a", time.Millisecond).next() == newLatency(1, "b", time.Millisecond).next() {
		t.Error("two streams drew alike")
	}
}
