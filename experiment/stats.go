package experiment

import (
	"math"

	"github.com/relia-dev/relia/internal/stats"
)

// Confidence is the confidence level of every interval in a verdict.
const Confidence = 0.95

// welch returns the difference of the means of b and a (mean(b) -
// mean(a)) and Welch's t interval for it at the given confidence: the
// two samples may have different variances and sizes, and the degrees of
// freedom come from the Welch-Satterthwaite equation. ok is false when
// either sample has fewer than two values. When both samples have no
// spread the interval is the difference itself.
func welch(a, b []float64, confidence float64) (diff, low, high float64, ok bool) {
	if len(a) < 2 || len(b) < 2 {
		return 0, 0, 0, false
	}
	ma, va := meanVar(a)
	mb, vb := meanVar(b)
	diff = mb - ma
	qa, qb := va/float64(len(a)), vb/float64(len(b))
	se := math.Sqrt(qa + qb)
	if se == 0 {
		return diff, diff, diff, true
	}
	df := (qa + qb) * (qa + qb) / (qa*qa/float64(len(a)-1) + qb*qb/float64(len(b)-1))
	t := studentTQuantile(1-(1-confidence)/2, df)
	return diff, diff - t*se, diff + t*se, true
}

// meanVar returns the mean and the unbiased sample variance of xs
// (len(xs) >= 2), by Welford's method.
func meanVar(xs []float64) (mean, variance float64) {
	var m2 float64
	for i, x := range xs {
		d := x - mean
		mean += d / float64(i+1)
		m2 += d * (x - mean)
	}
	return mean, m2 / float64(len(xs)-1)
}

// studentTQuantile returns the p-quantile of Student's t distribution
// with df degrees of freedom.
func studentTQuantile(p, df float64) float64 { return stats.StudentTQuantile(p, df) }
