// Package stats holds the few statistical functions relia's estimates
// need, so that every confidence interval is drawn from one
// implementation: Student's t distribution for intervals on fitted
// parameters and means.
//
//	t := stats.StudentTQuantile(0.975, 5) // 2.5706: a 95% two-sided interval with 5 degrees of freedom
package stats

import "math"

// StudentTQuantile returns the p-quantile (p in (0.5, 1)) of Student's t
// distribution with df degrees of freedom (df > 0, not necessarily
// whole), by bisection on the distribution function.
func StudentTQuantile(p, df float64) float64 {
	lo, hi := 0.0, 1.0
	for StudentTCDF(hi, df) < p {
		hi *= 2
	}
	for range 200 {
		mid := (lo + hi) / 2
		if StudentTCDF(mid, df) < p {
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

// StudentTCDF is the distribution function of Student's t at t >= 0:
// 1 - I_x(df/2, 1/2)/2 with x = df/(df+t²).
func StudentTCDF(t, df float64) float64 {
	return 1 - 0.5*regIncBeta(df/2, 0.5, df/(df+t*t))
}

// regIncBeta is the regularised incomplete beta function I_x(a, b), by
// its continued fraction (the standard betai/betacf construction).
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
