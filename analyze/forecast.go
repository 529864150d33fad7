package analyze

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"time"
)

// Series is a regular time series: Values[i] is the value of the step
// that starts at Start + i*Step (calls per hour, say).
type Series struct {
	Start  time.Time
	Step   time.Duration
	Values []float64
}

// At returns the start of step i.
func (s Series) At(i int) time.Time { return s.Start.Add(time.Duration(i) * s.Step) }

// ForecastOptions configure HoltWinters.
type ForecastOptions struct {
	// Seasons are the seasonal periods in steps, shortest first: 24 and
	// 168 for daily and weekly seasons of an hourly series (the
	// default for hourly series). A season is used only when the series
	// holds at least two of its periods.
	Seasons []int
	// Horizon is how many steps ahead to forecast; one season's length
	// (or 24) by default.
	Horizon int
	// Level is the prediction intervals' coverage; 0.95 by default.
	Level float64
}

// Forecast is a Holt-Winters forecast of a series.
type Forecast struct {
	// Points are the forecast steps after the series' last, with their
	// prediction interval.
	Points []ForecastPoint `json:"points"`
	// Seasons are the seasonal periods used, in steps.
	Seasons []int `json:"seasons"`
	// Alpha, Beta and Gamma are the smoothing parameters fitted to the
	// series (level, trend, one per season).
	Alpha float64   `json:"alpha"`
	Beta  float64   `json:"beta"`
	Gamma []float64 `json:"gamma"`
	// Sigma is the standard deviation of the one-step errors over the
	// fitted part of the series.
	Sigma float64 `json:"sigma"`
	// Level is the coverage of the intervals.
	Level float64 `json:"level"`
	// Fitted are the one-step predictions over the series itself (NaN
	// where the model was still being initialised), for anomalies.
	Fitted []float64 `json:"-"`
	// Trend is the fitted trend per step at the series' end.
	Trend float64 `json:"trend_per_step"`
}

// ForecastPoint is one forecast step.
type ForecastPoint struct {
	T     time.Time `json:"time"`
	Mean  float64   `json:"mean"`
	Lower float64   `json:"lower"`
	Upper float64   `json:"upper"`
}

// ErrShortSeries is returned for a series too short to fit.
var ErrShortSeries = errors.New("series too short to forecast")

// HoltWinters fits an additive Holt-Winters model with up to two seasons
// (Taylor's double-seasonal form: daily and weekly for hourly traffic)
// and forecasts o.Horizon steps past the series, with prediction
// intervals from the one-step error and the model's error propagation.
// The smoothing parameters are those of a grid that minimise the one-step
// squared error. The capacity planner calls it with a route's traffic.
func HoltWinters(s Series, o ForecastOptions) (Forecast, error) {
	if s.Step <= 0 {
		return Forecast{}, fmt.Errorf("forecasting: step %s is not positive", s.Step)
	}
	if o.Seasons == nil && s.Step == time.Hour {
		o.Seasons = []int{24, 168}
	}
	if o.Level <= 0 || o.Level >= 1 {
		o.Level = 0.95
	}
	var seasons []int
	for _, m := range o.Seasons {
		if m > 1 && len(s.Values) >= 2*m {
			seasons = append(seasons, m)
		}
	}
	slices.Sort(seasons)
	if o.Horizon <= 0 {
		o.Horizon = 24
		if len(seasons) > 0 {
			o.Horizon = seasons[0]
		}
	}
	if len(s.Values) < 4 || len(s.Values) < 2*longest(seasons) {
		return Forecast{}, fmt.Errorf("%w: %d points", ErrShortSeries, len(s.Values))
	}
	for i, v := range s.Values {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return Forecast{}, fmt.Errorf("forecasting: value %d is %v", i, v)
		}
	}
	best := fit{sse: math.Inf(1)}
	alphas := []float64{0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.8}
	betas := []float64{0, 0.01, 0.05, 0.1}
	gammas := []float64{0.01, 0.05, 0.1, 0.2, 0.4}
	g2 := gammas
	if len(seasons) < 2 {
		g2 = []float64{0}
	}
	g1 := gammas
	if len(seasons) == 0 {
		g1 = []float64{0}
	}
	for _, a := range alphas {
		for _, b := range betas {
			for _, c1 := range g1 {
				for _, c2 := range g2 {
					f := run(s.Values, seasons, a, b, []float64{c1, c2}[:len(seasons)], false)
					if f.sse < best.sse {
						best = f
					}
				}
			}
		}
	}
	best = run(s.Values, seasons, best.alpha, best.beta, best.gamma, true)
	fc := Forecast{Seasons: seasons, Alpha: best.alpha, Beta: best.beta, Gamma: best.gamma, Level: o.Level, Fitted: best.fitted, Trend: best.trend}
	if best.n > 0 {
		fc.Sigma = math.Sqrt(best.sse / float64(best.n))
	}
	z := normalQuantile(0.5 + o.Level/2)
	var cum float64 // the sum of c_j² for the forecast variance
	for h := 1; h <= o.Horizon; h++ {
		mean := best.level + float64(h)*best.trend
		for k, m := range seasons {
			// The latest seasonal index for the step h ahead.
			mean += best.season[k][(best.n0+h-1)%m]
		}
		if h > 1 {
			j := h - 1
			c := best.alpha * (1 + float64(j)*best.beta)
			for k, m := range seasons {
				if j%m == 0 {
					c += best.gamma[k]
				}
			}
			cum += c * c
		}
		half := z * fc.Sigma * math.Sqrt(1+cum)
		fc.Points = append(fc.Points, ForecastPoint{T: s.At(len(s.Values) - 1 + h), Mean: mean, Lower: mean - half, Upper: mean + half})
	}
	return fc, nil
}

func longest(seasons []int) int {
	if len(seasons) == 0 {
		return 0
	}
	return seasons[len(seasons)-1]
}

// fit is one run of the model over a series.
type fit struct {
	alpha, beta  float64
	gamma        []float64
	sse          float64
	n            int // errors summed
	level, trend float64
	season       [][]float64 // per season, indexed by step modulo its period
	n0           int         // the series' length, for the seasonal index
	fitted       []float64
}

// run filters y through the model with the given parameters, in the
// error-correction form:
//
//	ŷ = l + b + Σ s_k[t mod m_k];  e = y - ŷ
//	l += b + αe;  b += αβe;  s_k[t mod m_k] += γ_k e
//
// Level, trend and seasons start from the first two periods of the
// longest season (or the first points without seasons); errors are
// summed from the end of that first period on.
func run(y []float64, seasons []int, alpha, beta float64, gamma []float64, keep bool) fit {
	f := fit{alpha: alpha, beta: beta, gamma: gamma, n0: len(y)}
	m := max(longest(seasons), 2)
	first, second := mean(y[:m]), mean(y[m:min(2*m, len(y))])
	f.level, f.trend = first, (second-first)/float64(m)
	// Seasonal starts: the shortest season from the first long period's
	// deviations from its mean; each longer one from what the shorter
	// ones leave.
	resid := make([]float64, 2*m)
	for i := range resid {
		resid[i] = y[i] - (first + f.trend*(float64(i)-float64(m-1)/2))
	}
	f.season = make([][]float64, len(seasons))
	for k, p := range seasons {
		s := make([]float64, p)
		cnt := make([]float64, p)
		for i, r := range resid {
			s[i%p] += r
			cnt[i%p]++
		}
		avg := 0.0
		for i := range s {
			s[i] /= cnt[i]
			avg += s[i]
		}
		avg /= float64(p)
		for i := range s {
			s[i] -= avg
		}
		for i := range resid {
			resid[i] -= s[i%p]
		}
		f.season[k] = s
	}
	// The level then stands at the start of the series.
	f.level = first - f.trend*float64(m-1)/2
	if keep {
		f.fitted = make([]float64, len(y))
	}
	for t, v := range y {
		pred := f.level + f.trend
		for k, p := range seasons {
			pred += f.season[k][t%p]
		}
		e := v - pred
		if keep {
			f.fitted[t] = pred
			if t < m {
				f.fitted[t] = math.NaN()
			}
		}
		if t >= m {
			f.sse += e * e
			f.n++
		}
		f.level += f.trend + alpha*e
		f.trend += alpha * beta * e
		for k, p := range seasons {
			f.season[k][t%p] += gamma[k] * e
		}
	}
	return f
}

func mean(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := 0.0
	for _, x := range v {
		s += x
	}
	return s / float64(len(v))
}

// normalQuantile is the standard normal's quantile function (Acklam's
// rational approximation, relative error below 1.2e-9).
func normalQuantile(p float64) float64 {
	a := [...]float64{-3.969683028665376e+01, 2.209460984245205e+02, -2.759285104469687e+02, 1.383577518672690e+02, -3.066479806614716e+01, 2.506628277459239e+00}
	b := [...]float64{-5.447609879822406e+01, 1.615858368580409e+02, -1.556989798598866e+02, 6.680131188771972e+01, -1.328068155288572e+01}
	c := [...]float64{-7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e+00, -2.549732539343734e+00, 4.374664141464968e+00, 2.938163982698783e+00}
	d := [...]float64{7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e+00, 3.754408661907416e+00}
	const low = 0.02425
	switch {
	case p <= 0:
		return math.Inf(-1)
	case p >= 1:
		return math.Inf(1)
	case p < low:
		q := math.Sqrt(-2 * math.Log(p))
		return (((((c[0]*q+c[1])*q+c[2])*q+c[3])*q+c[4])*q + c[5]) / ((((d[0]*q+d[1])*q+d[2])*q+d[3])*q + 1)
	case p > 1-low:
		q := math.Sqrt(-2 * math.Log(1-p))
		return -(((((c[0]*q+c[1])*q+c[2])*q+c[3])*q+c[4])*q + c[5]) / ((((d[0]*q+d[1])*q+d[2])*q+d[3])*q + 1)
	}
	q := p - 0.5
	r := q * q
	return (((((a[0]*r+a[1])*r+a[2])*r+a[3])*r+a[4])*r + a[5]) * q / (((((b[0]*r+b[1])*r+b[2])*r+b[3])*r+b[4])*r + 1)
}

// Exceeds returns when the forecast is first expected to pass capacity
// (its mean) and when it first may (the interval's upper bound); ok is
// false for each that never happens within the horizon.
func (f Forecast) Exceeds(capacity float64) (expected time.Time, expectedOK bool, possible time.Time, possibleOK bool) {
	for _, p := range f.Points {
		if !possibleOK && p.Upper > capacity {
			possible, possibleOK = p.T, true
		}
		if !expectedOK && p.Mean > capacity {
			expected, expectedOK = p.T, true
		}
	}
	return
}

// Anomaly is a step whose value lies far from the seasonal baseline.
type Anomaly struct {
	T        time.Time `json:"time"`
	Value    float64   `json:"value"`
	Expected float64   `json:"expected"`
	// Score is the deviation in robust standard deviations of the
	// one-step errors (positive above, negative below).
	Score float64 `json:"score"`
}

// DefaultAnomalyScore is the |score| past which a step is an anomaly.
const DefaultAnomalyScore = 5

// Anomalies returns the steps of s whose value is more than threshold
// robust standard deviations (1.4826 times the median absolute error)
// from the model's one-step prediction: the baseline the series' own
// level, trend and seasons set. A threshold of 0 means
// DefaultAnomalyScore. For counts (calls per step), the deviation is
// never taken smaller than a Poisson count's, the square root of the
// expected count, so a series too regular to have noise does not make
// every rounding an anomaly.
func Anomalies(s Series, f Forecast, threshold float64, counts bool) []Anomaly {
	if threshold <= 0 {
		threshold = DefaultAnomalyScore
	}
	var errs []float64
	for i, p := range f.Fitted {
		if i < len(s.Values) && !math.IsNaN(p) {
			errs = append(errs, s.Values[i]-p)
		}
	}
	if len(errs) == 0 {
		return nil
	}
	med := median(errs)
	dev := make([]float64, len(errs))
	for i, e := range errs {
		dev[i] = math.Abs(e - med)
	}
	sigma := 1.4826 * median(dev)
	if sigma == 0 {
		sigma = f.Sigma
	}
	if sigma == 0 {
		return nil
	}
	var out []Anomaly
	for i, p := range f.Fitted {
		if i >= len(s.Values) || math.IsNaN(p) {
			continue
		}
		sd := sigma
		if counts {
			sd = max(sd, math.Sqrt(max(p, 1)))
		}
		score := (s.Values[i] - p - med) / sd
		if math.Abs(score) > threshold {
			out = append(out, Anomaly{T: s.At(i), Value: s.Values[i], Expected: p, Score: score})
		}
	}
	return out
}

func median(v []float64) float64 {
	w := slices.Clone(v)
	slices.Sort(w)
	n := len(w)
	if n%2 == 1 {
		return w[n/2]
	}
	return (w[n/2-1] + w[n/2]) / 2
}
