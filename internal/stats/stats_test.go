package stats

import (
	"math"
	"testing"
)

func TestStudentTQuantile(t *testing.T) {
	t.Parallel()
	// Two-sided 95% and 99% critical values from the t table.
	for _, tc := range []struct{ p, df, want float64 }{
		{0.975, 1, 12.7062}, {0.975, 2, 4.3027}, {0.975, 5, 2.5706}, {0.975, 10, 2.2281}, {0.975, 30, 2.0423}, {0.975, 1e6, 1.9600},
		{0.995, 3, 5.8409}, {0.995, 20, 2.8453},
	} {
		if got := StudentTQuantile(tc.p, tc.df); math.Abs(got-tc.want) > 5e-4 {
			t.Errorf("t(%v, %v) = %.4f, want %.4f", tc.p, tc.df, got, tc.want)
		}
	}
}
