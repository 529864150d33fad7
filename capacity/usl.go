package capacity

import (
	"errors"
	"fmt"
	"math"
	"slices"

	"github.com/relia-dev/relia/internal/stats"
)

// Confidence is the confidence level of the intervals on fitted
// parameters.
const Confidence = 0.95

// Thresholds past which a fit is reported as explaining the data poorly.
const (
	// PoorR2 is the least share of the throughput's variance the model
	// must explain.
	PoorR2 = 0.9
	// PoorLOOError is the largest mean error, relative to the measured
	// throughput, of the predictions for points left out of the fit.
	PoorLOOError = 0.10
)

// Point is one measured step: the concurrency N (requests in the
// service at once) and the throughput X it gave, in requests per
// second.
type Point struct {
	N float64 `json:"n"`
	X float64 `json:"x"`
}

// USL is the Universal Scalability Law: the throughput of N concurrent
// requests is X(N) = λN / (1 + σ(N−1) + κN(N−1)). λ is the throughput of
// one request alone, σ the share of the work that is serialised
// (contention: queueing for a lock, a core, a connection pool) and κ the
// cost of keeping shared state coherent between every pair of requests
// (crosstalk), which makes throughput fall past a peak.
type USL struct {
	Lambda float64 `json:"lambda"`
	Sigma  float64 `json:"sigma"`
	Kappa  float64 `json:"kappa"`
}

// Throughput is X(n).
func (m USL) Throughput(n float64) float64 {
	if n <= 0 {
		return 0
	}
	return m.Lambda * n / m.denominator(n)
}

func (m USL) denominator(n float64) float64 {
	return 1 + m.Sigma*(n-1) + m.Kappa*n*(n-1)
}

// Latency is the response time at concurrency n by Little's law, n /
// X(n), in seconds.
func (m USL) Latency(n float64) float64 {
	if n <= 0 || m.Lambda <= 0 {
		return 0
	}
	return m.denominator(max(n, 1)) / m.Lambda
}

// Peak is the concurrency of the highest throughput, sqrt((1−σ)/κ), and
// that throughput. Without coherency cost (κ = 0) throughput never
// falls: n is +Inf and x the ceiling λ/σ (+Inf too when σ is 0, linear
// scaling).
func (m USL) Peak() (n, x float64) {
	if m.Kappa <= 0 {
		if m.Sigma <= 0 {
			return math.Inf(1), math.Inf(1)
		}
		return math.Inf(1), m.Lambda / m.Sigma
	}
	n = math.Sqrt(max(1-m.Sigma, 0) / m.Kappa)
	n = max(n, 1)
	return n, m.Throughput(n)
}

// Interval is an estimate with its confidence interval.
type Interval struct {
	Value float64 `json:"value"`
	Low   float64 `json:"low"`
	High  float64 `json:"high"`
}

// Prediction is one point left out of the fit and predicted by the fit
// of the others.
type Prediction struct {
	Point
	// Predicted is the left-out fit's X(N).
	Predicted float64 `json:"predicted"`
	// Error is (Predicted − X) / X.
	Error float64 `json:"error"`
}

// Fit is the USL fitted to measured points, with what it is worth.
type Fit struct {
	Model USL `json:"model"`
	// Lambda, Sigma and Kappa are the parameters with their intervals at
	// Confidence; without enough points for an interval (four), Low and
	// High equal Value.
	Lambda Interval `json:"lambda_ci"`
	Sigma  Interval `json:"sigma_ci"`
	Kappa  Interval `json:"kappa_ci"`
	// Points are the measured points, by concurrency.
	Points []Point `json:"points"`
	// R2 is the share of the throughput's variance the model explains.
	R2 float64 `json:"r2"`
	// LeaveOneOut predicts each point from a fit of the others (five
	// points or more), and LOOError is the mean of their absolute
	// relative errors.
	LeaveOneOut []Prediction `json:"leave_one_out"`
	LOOError    float64      `json:"loo_error"`
	// Poor is true when the fit explains the data poorly; Verdict says
	// why, or how well it does, in words.
	Poor    bool   `json:"poor"`
	Verdict string `json:"verdict"`
}

// Parameters writes the fitted parameters with their intervals, or says
// that three points give none: "λ 47 [34, 60]  σ 1 [0.19, 1.8]  κ 0.018
// [0, 0.12]  (95% intervals)".
func (f *Fit) Parameters() string {
	if len(f.Points) <= 3 {
		return fmt.Sprintf("λ %.4g  σ %.4g  κ %.4g  (no intervals: %d points for three parameters; measure four concurrencies or more)",
			f.Model.Lambda, f.Model.Sigma, f.Model.Kappa, len(f.Points))
	}
	return fmt.Sprintf("λ %.4g [%.4g, %.4g]  σ %.4g [%.4g, %.4g]  κ %.4g [%.4g, %.4g]  (%.0f%% intervals)",
		f.Model.Lambda, f.Lambda.Low, f.Lambda.High, f.Model.Sigma, f.Sigma.Low, f.Sigma.High, f.Model.Kappa, f.Kappa.Low, f.Kappa.High, 100*Confidence)
}

// ErrTooFewPoints is returned by FitUSL for fewer than three points with
// distinct concurrencies: three parameters need three equations.
var ErrTooFewPoints = errors.New("the USL needs at least three points at different concurrencies")

// FitUSL fits the Universal Scalability Law to measured points by least
// squares on relative errors (each point's error as a share of its
// throughput, so a high-throughput step does not outweigh the others),
// with λ > 0, σ ≥ 0 and κ ≥ 0. It starts from the linear fit of N/X,
// a quadratic in N, and refines it by Levenberg–Marquardt. The intervals
// come from the curvature of the squared error at the optimum and
// Student's t with n−3 degrees of freedom.
//
// The fit is then checked: R² over the points, and the points predicted
// when each is left out of the fit. A fit with R² below PoorR2 or a mean
// leave-one-out error above PoorLOOError is marked Poor.
func FitUSL(points []Point) (Fit, error) {
	pts := slices.Clone(points)
	for _, p := range pts {
		if !(p.N >= 1) || !(p.X > 0) || math.IsInf(p.N, 0) || math.IsInf(p.X, 0) {
			return Fit{}, fmt.Errorf("fitting the USL: point (N %v, X %v): want N >= 1 and X > 0", p.N, p.X)
		}
	}
	slices.SortFunc(pts, func(a, b Point) int { return cmpFloat(a.N, b.N) })
	if distinct(pts) < 3 {
		return Fit{}, ErrTooFewPoints
	}
	m, cov, ssr := fitPoints(pts)
	f := Fit{Model: m, Points: pts}
	n := len(pts)
	f.Lambda, f.Sigma, f.Kappa = Interval{m.Lambda, m.Lambda, m.Lambda}, Interval{m.Sigma, m.Sigma, m.Sigma}, Interval{m.Kappa, m.Kappa, m.Kappa}
	if df := n - 3; df > 0 && cov != nil {
		s2 := ssr / float64(df)
		t := stats.StudentTQuantile(1-(1-Confidence)/2, float64(df))
		ci := func(v float64, i int) Interval {
			h := t * math.Sqrt(max(s2*cov[i][i], 0))
			return Interval{Value: v, Low: v - h, High: v + h}
		}
		f.Lambda, f.Sigma, f.Kappa = ci(m.Lambda, 0), ci(m.Sigma, 1), ci(m.Kappa, 2)
		f.Sigma.Low, f.Kappa.Low = max(f.Sigma.Low, 0), max(f.Kappa.Low, 0)
	}
	var mean float64
	for _, p := range pts {
		mean += p.X / float64(n)
	}
	var sse, sst float64
	for _, p := range pts {
		d := p.X - m.Throughput(p.N)
		sse += d * d
		sst += (p.X - mean) * (p.X - mean)
	}
	f.R2 = 1
	if sst > 0 {
		f.R2 = 1 - sse/sst
	}
	if n >= 5 {
		for i, p := range pts {
			rest := slices.Delete(slices.Clone(pts), i, i+1)
			if distinct(rest) < 3 {
				continue
			}
			lm, _, _ := fitPoints(rest)
			pred := lm.Throughput(p.N)
			e := (pred - p.X) / p.X
			f.LeaveOneOut = append(f.LeaveOneOut, Prediction{Point: p, Predicted: pred, Error: e})
			f.LOOError += math.Abs(e)
		}
		if len(f.LeaveOneOut) > 0 {
			f.LOOError /= float64(len(f.LeaveOneOut))
		}
	}
	f.Poor, f.Verdict = judgeFit(f)
	return f, nil
}

// judgeFit says in words how well the fit explains the data.
func judgeFit(f Fit) (poor bool, verdict string) {
	var why []string
	if f.R2 < PoorR2 {
		why = append(why, fmt.Sprintf("it explains only %.0f%% of the throughput's variance (R² %.3f, want %.2f or more)", 100*max(f.R2, 0), f.R2, PoorR2))
	}
	if f.LOOError > PoorLOOError {
		why = append(why, fmt.Sprintf("points left out of the fit are predicted %.1f%% off on average (want %.0f%% or less)", 100*f.LOOError, 100*PoorLOOError))
	}
	if len(why) > 0 {
		return true, "the fit explains the data poorly: " + joinAnd(why) + "; do not plan from the model, use the measured knee"
	}
	v := fmt.Sprintf("the fit explains the data well: R² %.3f", f.R2)
	if len(f.LeaveOneOut) > 0 {
		v += fmt.Sprintf(", points left out predicted within %.1f%% on average", 100*f.LOOError)
	} else {
		v += fmt.Sprintf(" (leave-one-out needs five points, there are %d)", len(f.Points))
	}
	return false, v
}

// joinAnd joins phrases with commas and a final "and".
func joinAnd(s []string) string {
	switch len(s) {
	case 0:
		return ""
	case 1:
		return s[0]
	}
	out := s[0]
	for _, x := range s[1 : len(s)-1] {
		out += ", " + x
	}
	return out + " and " + s[len(s)-1]
}

// distinct counts the distinct concurrencies of sorted points.
func distinct(pts []Point) int {
	n := 0
	for i, p := range pts {
		if i == 0 || p.N != pts[i-1].N {
			n++
		}
	}
	return n
}

func cmpFloat(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// fitPoints fits the model and returns it with the inverse of JᵀJ at the
// optimum (nil when singular) and the sum of squared relative residuals.
func fitPoints(pts []Point) (USL, *[3][3]float64, float64) {
	theta := linearStart(pts)
	ssr := residualSS(pts, theta)
	mu := 1e-3
	for range 500 {
		jtj, jtr := normalEquations(pts, theta)
		improved := false
		for range 30 {
			var a [3][3]float64
			for i := range 3 {
				a[i] = jtj[i]
				a[i][i] += mu * max(jtj[i][i], 1e-300)
			}
			step, ok := solve3(a, jtr)
			if !ok {
				mu *= 10
				continue
			}
			next := [3]float64{theta[0] + step[0], max(theta[1]+step[1], 0), max(theta[2]+step[2], 0)}
			if next[0] <= 0 {
				next[0] = theta[0] / 2
			}
			if s := residualSS(pts, next); s < ssr {
				done := math.Abs(ssr-s) <= 1e-15*max(ssr, 1e-300) || s < 1e-30
				theta, ssr, improved = next, s, true
				mu = max(mu/10, 1e-12)
				if done {
					return finish(pts, theta, ssr)
				}
				break
			}
			mu *= 10
		}
		if !improved {
			break
		}
	}
	return finish(pts, theta, ssr)
}

func finish(pts []Point, theta [3]float64, ssr float64) (USL, *[3][3]float64, float64) {
	jtj, _ := normalEquations(pts, theta)
	inv, ok := invert3(jtj)
	m := USL{Lambda: theta[0], Sigma: theta[1], Kappa: theta[2]}
	if !ok {
		return m, nil, ssr
	}
	return m, &inv, ssr
}

// linearStart fits N/X = a + b(N−1) + cN(N−1), linear in a, b and c,
// and returns λ = 1/a, σ = b/a, κ = c/a, clipped to the allowed range:
// a good start for the nonlinear fit.
func linearStart(pts []Point) [3]float64 {
	var ata [3][3]float64
	var aty [3]float64
	for _, p := range pts {
		row := [3]float64{1, p.N - 1, p.N * (p.N - 1)}
		y := p.N / p.X
		// weight as the relative errors of X are weighted: δ(N/X) ≈ (N/X)·δX/X
		w := 1 / (y * y)
		for i := range 3 {
			aty[i] += w * row[i] * y
			for j := range 3 {
				ata[i][j] += w * row[i] * row[j]
			}
		}
	}
	c, ok := solve3(ata, aty)
	if !ok || c[0] <= 0 {
		// fall back on the first point's throughput alone
		return [3]float64{pts[0].X / pts[0].N, 0, 0}
	}
	return [3]float64{1 / c[0], max(c[1]/c[0], 0), max(c[2]/c[0], 0)}
}

// residualSS is the sum of squared relative residuals (1 − X(N)/x).
func residualSS(pts []Point, th [3]float64) float64 {
	m := USL{th[0], th[1], th[2]}
	var s float64
	for _, p := range pts {
		r := 1 - m.Throughput(p.N)/p.X
		s += r * r
	}
	return s
}

// normalEquations returns JᵀJ and −Jᵀr for the relative residuals
// r = X(N)/x − 1.
func normalEquations(pts []Point, th [3]float64) (jtj [3][3]float64, jtr [3]float64) {
	m := USL{th[0], th[1], th[2]}
	for _, p := range pts {
		d := m.denominator(p.N)
		f := m.Lambda * p.N / d
		// derivatives of X(N)/x
		j := [3]float64{
			p.N / d / p.X,
			-f * (p.N - 1) / d / p.X,
			-f * p.N * (p.N - 1) / d / p.X,
		}
		r := f/p.X - 1
		for a := range 3 {
			jtr[a] -= j[a] * r
			for b := range 3 {
				jtj[a][b] += j[a] * j[b]
			}
		}
	}
	return jtj, jtr
}

// solve3 solves a·x = b by Gaussian elimination with partial pivoting.
func solve3(a [3][3]float64, b [3]float64) ([3]float64, bool) {
	for col := range 3 {
		piv := col
		for r := col + 1; r < 3; r++ {
			if math.Abs(a[r][col]) > math.Abs(a[piv][col]) {
				piv = r
			}
		}
		if math.Abs(a[piv][col]) < 1e-300 {
			return [3]float64{}, false
		}
		a[col], a[piv] = a[piv], a[col]
		b[col], b[piv] = b[piv], b[col]
		for r := col + 1; r < 3; r++ {
			k := a[r][col] / a[col][col]
			for c := col; c < 3; c++ {
				a[r][c] -= k * a[col][c]
			}
			b[r] -= k * b[col]
		}
	}
	var x [3]float64
	for r := 2; r >= 0; r-- {
		s := b[r]
		for c := r + 1; c < 3; c++ {
			s -= a[r][c] * x[c]
		}
		x[r] = s / a[r][r]
	}
	for _, v := range x {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return x, false
		}
	}
	return x, true
}

// invert3 inverts a by solving for each column of the identity.
func invert3(a [3][3]float64) ([3][3]float64, bool) {
	var inv [3][3]float64
	for c := range 3 {
		var e [3]float64
		e[c] = 1
		col, ok := solve3(a, e)
		if !ok {
			return inv, false
		}
		for r := range 3 {
			inv[r][c] = col[r]
		}
	}
	return inv, true
}
