package capacity

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
)

// synthetic returns the points of m at the concurrencies ns, each
// throughput off by a relative noise drawn uniformly from ±noise.
func synthetic(m USL, ns []float64, noise float64, seed uint64) []Point {
	rnd := rand.New(rand.NewPCG(seed, 0))
	pts := make([]Point, len(ns))
	for i, n := range ns {
		pts[i] = Point{N: n, X: m.Throughput(n) * (1 + noise*(2*rnd.Float64()-1))}
	}
	return pts
}

func within(got, want, share float64) bool { return math.Abs(got-want) <= share*math.Abs(want) }

func TestFitUSLRecoversKnownParameters(t *testing.T) {
	t.Parallel()
	ns := []float64{1, 2, 4, 8, 12, 16, 24, 32, 48, 64}
	cases := []struct {
		name  string
		model USL
		noise float64
		seed  uint64
	}{
		{"exact", USL{Lambda: 950, Sigma: 0.05, Kappa: 0.0008}, 0, 1},
		{"1% noise", USL{Lambda: 950, Sigma: 0.05, Kappa: 0.0008}, 0.01, 2},
		{"strong contention, 1% noise", USL{Lambda: 120, Sigma: 0.2, Kappa: 0.002}, 0.01, 3},
		{"strong coherency, 0.5% noise", USL{Lambda: 2000, Sigma: 0.02, Kappa: 0.01}, 0.005, 4},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f, err := FitUSL(synthetic(tc.model, ns, tc.noise, tc.seed))
			if err != nil {
				t.Fatal(err)
			}
			m := f.Model
			// the bar: σ and κ within 5%
			if !within(m.Sigma, tc.model.Sigma, 0.05) || !within(m.Kappa, tc.model.Kappa, 0.05) || !within(m.Lambda, tc.model.Lambda, 0.05) {
				t.Errorf("fitted %+v, want %+v within 5%%", m, tc.model)
			}
			for name, iv := range map[string]Interval{"λ": f.Lambda, "σ": f.Sigma, "κ": f.Kappa} {
				if !(iv.Low <= iv.Value && iv.Value <= iv.High) {
					t.Errorf("%s interval %+v does not hold its estimate", name, iv)
				}
			}
			if f.Poor || f.R2 < 0.99 || len(f.LeaveOneOut) != len(ns) || f.LOOError > 0.03 {
				t.Errorf("fit judged poor=%v R² %.4f, %d leave-one-out predictions off %.3f: %s", f.Poor, f.R2, len(f.LeaveOneOut), f.LOOError, f.Verdict)
			}
		})
	}
}

func TestFitUSLIntervalsCoverTheTruth(t *testing.T) {
	t.Parallel()
	// 95% intervals must hold the true parameter in about 95% of fits of
	// noisy data; fewer would mean they are too narrow to trust.
	ns := []float64{1, 2, 4, 8, 12, 16, 24, 32, 48, 64}
	m := USL{Lambda: 950, Sigma: 0.05, Kappa: 0.0008}
	const fits = 200
	var lambda, sigma, kappa int
	for seed := range uint64(fits) {
		f, err := FitUSL(synthetic(m, ns, 0.01, 100+seed))
		if err != nil {
			t.Fatal(err)
		}
		covers := func(iv Interval, v float64) int {
			if iv.Low <= v && v <= iv.High {
				return 1
			}
			return 0
		}
		lambda += covers(f.Lambda, m.Lambda)
		sigma += covers(f.Sigma, m.Sigma)
		kappa += covers(f.Kappa, m.Kappa)
	}
	for name, n := range map[string]int{"λ": lambda, "σ": sigma, "κ": kappa} {
		if n < fits*88/100 || n == fits {
			t.Errorf("%s: %d of %d intervals hold the truth, want about 95%%", name, n, fits)
		}
	}
}

func TestFitUSLSaysWhenItExplainsThePoorly(t *testing.T) {
	t.Parallel()
	// Throughput that jumps about with concurrency: no scalability law
	// explains it.
	pts := []Point{{1, 100}, {2, 40}, {4, 300}, {8, 90}, {16, 350}, {32, 60}}
	f, err := FitUSL(pts)
	if err != nil {
		t.Fatal(err)
	}
	if !f.Poor || !strings.Contains(f.Verdict, "explains the data poorly") {
		t.Errorf("poor=%v: %s", f.Poor, f.Verdict)
	}
}

func TestFitUSLNeedsThreeConcurrencies(t *testing.T) {
	t.Parallel()
	if _, err := FitUSL([]Point{{1, 10}, {2, 19}, {2, 20}}); err != ErrTooFewPoints {
		t.Errorf("got %v", err)
	}
	if _, err := FitUSL([]Point{{1, 10}, {2, 19}, {0, 20}}); err == nil {
		t.Error("N = 0: want an error")
	}
	f, err := FitUSL([]Point{{1, 100}, {2, 190}, {4, 340}})
	if err != nil {
		t.Fatal(err)
	}
	if f.Lambda.Low != f.Lambda.Value || len(f.LeaveOneOut) != 0 {
		t.Errorf("three points: no interval and no leave-one-out expected, got %+v", f)
	}
	// What is printed says so, rather than showing intervals of no width.
	if p := f.Parameters(); !strings.Contains(p, "no intervals: 3 points") || strings.Contains(p, "[") {
		t.Errorf("three points: %q", p)
	}
	f, err = FitUSL([]Point{{1, 100}, {2, 190}, {4, 340}, {8, 520}})
	if err != nil {
		t.Fatal(err)
	}
	if p := f.Parameters(); !strings.Contains(p, "(95% intervals)") || !strings.Contains(p, fmt.Sprintf("λ %.4g [%.4g, %.4g]", f.Model.Lambda, f.Lambda.Low, f.Lambda.High)) {
		t.Errorf("four points: %q", p)
	}
}

func TestUSLPeak(t *testing.T) {
	t.Parallel()
	m := USL{Lambda: 100, Sigma: 0.1, Kappa: 0.001}
	n, x := m.Peak()
	if math.Abs(n-math.Sqrt(0.9/0.001)) > 1e-9 || math.Abs(x-m.Throughput(n)) > 1e-9 {
		t.Errorf("peak %v %v", n, x)
	}
	if m.Throughput(n) < m.Throughput(n-1) || m.Throughput(n) < m.Throughput(n+1) {
		t.Error("the peak is not a maximum")
	}
	if n, x := (USL{Lambda: 100, Sigma: 0.25}).Peak(); !math.IsInf(n, 1) || x != 400 {
		t.Errorf("κ = 0: peak %v %v, want +Inf and λ/σ = 400", n, x)
	}
	// Little's law: latency at n is n / X(n)
	if got, want := m.Latency(10), 10/m.Throughput(10); math.Abs(got-want) > 1e-12 {
		t.Errorf("latency %v, want %v", got, want)
	}
}
