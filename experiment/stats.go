package experiment

import (
	"math"
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

// studentTQuantile returns the p-quantile (p in (0.5, 1)) of Student's t
// distribution with df degrees of freedom (df > 0, not necessarily
// whole), by bisection on the distribution function.
func studentTQuantile(p, df float64) float64 {
	lo, hi := 0.0, 1.0
	for studentTCDF(hi, df) < p {
		hi *= 2
	}
	for range 200 {
		mid := (lo + hi) / 2
		if studentTCDF(mid, df) < p {
			lo = mid
		} else {
			hi = mid
		}
		if hi-lo < 1e-12*hi {
			break
		}
	}
	return (lo + hi) / 2
}

// studentTCDF is the distribution function of Student's t at t >= 0:
// 1 - I_x(df/2, 1/2)/2 with x = df/(df+t²).
func studentTCDF(t, df float64) float64 {
	return 1 - 0.5*regIncBeta(df/2, 0.5, df/(df+t*t))
}

// regIncBeta is the regularised incomplete beta function I_x(a, b), by
// its continued fraction (Numerical Recipes, betai and betacf).
func regIncBeta(a, b, x float64) float64 {
	switch {
	case x <= 0:
		return 0
	case x >= 1:
		return 1
	}
	la, _ := math.Lgamma(a + b)
	lb, _ := math.Lgamma(a)
	lc, _ := math.Lgamma(b)
	front := math.Exp(la - lb - lc + a*math.Log(x) + b*math.Log(1-x))
	if x < (a+1)/(a+b+2) {
		return front * betaCF(a, b, x) / a
	}
	return 1 - front*betaCF(b, a, 1-x)/b
}

// betaCF evaluates the continued fraction of the incomplete beta
// function by the modified Lentz method.
func betaCF(a, b, x float64) float64 {
	const tiny = 1e-300
	guard := func(v float64) float64 {
		if math.Abs(v) < tiny {
			return tiny
		}
		return v
	}
	qab, qap, qam := a+b, a+1, a-1
	c, d := 1.0, 1/guard(1-qab*x/qap)
	h := d
	// step folds in one term aa of the fraction and returns its factor.
	step := func(aa float64) float64 {
		d = 1 / guard(1+aa*d)
		c = guard(1 + aa/c)
		return d * c
	}
	for m := 1; m <= 300; m++ {
		fm := float64(m)
		m2 := 2 * fm
		h *= step(fm * (b - fm) * x / ((qam + m2) * (a + m2)))
		del := step(-(a + fm) * (qab + fm) * x / ((a + m2) * (qap + m2)))
		h *= del
		if math.Abs(del-1) < 3e-16 {
			break
		}
	}
	return h
}
