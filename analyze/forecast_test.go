package analyze

import (
	"errors"
	"math"
	"math/rand/v2"
	"testing"
	"time"
)

var t0 = time.Date(2027, 3, 1, 0, 0, 0, 0, time.UTC) // a Monday

// synthetic is hourly traffic with a known level, trend, daily and
// weekly seasons and Gaussian noise of sd sigma.
func synthetic(hours int, sigma float64, seed uint64) (Series, func(t int) float64) {
	truth := func(t int) float64 {
		ft := float64(t)
		return 200 + 0.2*ft + 60*math.Sin(2*math.Pi*ft/24) + 30*math.Sin(2*math.Pi*ft/168)
	}
	rng := rand.New(rand.NewPCG(seed, 7))
	s := Series{Start: t0, Step: time.Hour}
	for t := range hours {
		s.Values = append(s.Values, truth(t)+sigma*rng.NormFloat64())
	}
	return s, truth
}

// TestHoltWintersRecoversTrendAndSeasons fits six weeks of a series with
// known trend and daily and weekly seasons, and forecasts the seventh: the
// forecast stays within 4% (mean absolute percentage error) of the true,
// noise-free values, and its 95% intervals hold between 85% and 100% of
// the noisy future.
func TestHoltWintersRecoversTrendAndSeasons(t *testing.T) {
	t.Parallel()
	const train, horizon, sigma = 6 * 168, 168, 5.0
	s, truth := synthetic(train, sigma, 1)
	f, err := HoltWinters(s, ForecastOptions{Horizon: horizon})
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Seasons) != 2 || len(f.Points) != horizon {
		t.Fatalf("seasons %v, %d points", f.Seasons, len(f.Points))
	}
	future, _ := synthetic(train+horizon, sigma, 1)
	var ape float64
	covered := 0
	for h, p := range f.Points {
		tt := train + h
		ape += math.Abs(p.Mean-truth(tt)) / truth(tt)
		if v := future.Values[tt]; v >= p.Lower && v <= p.Upper {
			covered++
		}
		if !p.T.Equal(t0.Add(time.Duration(tt) * time.Hour)) {
			t.Fatalf("point %d at %s", h, p.T)
		}
	}
	mape := ape / horizon
	coverage := float64(covered) / horizon
	t.Logf("MAPE %.2f%%, coverage %.1f%%, sigma %.2f (true %.1f), alpha %.2f beta %.2f gamma %v, trend %.3f/h (true 0.2)",
		100*mape, 100*coverage, f.Sigma, sigma, f.Alpha, f.Beta, f.Gamma, f.Trend)
	if mape > 0.04 {
		t.Errorf("MAPE %.2f%%, want at most 4%%", 100*mape)
	}
	if coverage < 0.85 {
		t.Errorf("the 95%% intervals hold %.1f%% of the future, want at least 85%%", 100*coverage)
	}
	if f.Sigma < 0.7*sigma || f.Sigma > 1.5*sigma {
		t.Errorf("one-step sigma %.2f, want about the noise's %.1f", f.Sigma, sigma)
	}
}

func TestForecastStatesWhenCapacityIsExceeded(t *testing.T) {
	t.Parallel()
	s, truth := synthetic(4*168, 2, 2)
	f, err := HoltWinters(s, ForecastOptions{Horizon: 2 * 168})
	if err != nil {
		t.Fatal(err)
	}
	// The true series first passes 420 at some hour in the coming two
	// weeks; the forecast must say so within a day of it.
	var want time.Time
	for tt := 4 * 168; tt < 6*168; tt++ {
		if truth(tt) > 420 {
			want = t0.Add(time.Duration(tt) * time.Hour)
			break
		}
	}
	if want.IsZero() {
		t.Fatal("the test series never passes its capacity")
	}
	exp, ok, possible, pok := f.Exceeds(420)
	if !ok || !pok || possible.After(exp) {
		t.Fatalf("exceeds: expected %s (%v), possibly %s (%v)", exp, ok, possible, pok)
	}
	if d := exp.Sub(want); d < -24*time.Hour || d > 24*time.Hour {
		t.Errorf("expected to pass 420 at %s, truly at %s", exp, want)
	}
	if _, ok, _, _ := f.Exceeds(1e9); ok {
		t.Error("an unreachable capacity is reported as exceeded")
	}
}

// TestAnomaliesFlagAStepChange lifts the level by 40% after five weeks:
// the hours right after the step are flagged; the clean weeks before are
// not (at most one false alarm in them).
func TestAnomaliesFlagAStepChange(t *testing.T) {
	t.Parallel()
	s, _ := synthetic(6*168, 3, 3)
	step := 5*168 + 10
	for i := step; i < len(s.Values); i++ {
		s.Values[i] += 100
	}
	f, err := HoltWinters(s, ForecastOptions{})
	if err != nil {
		t.Fatal(err)
	}
	an := Anomalies(s, f, 0, false)
	before, atStep := 0, false
	for _, a := range an {
		switch {
		case a.T.Before(s.At(step)):
			before++
		case a.T.Equal(s.At(step)):
			atStep = a.Score > DefaultAnomalyScore
		}
	}
	if !atStep {
		t.Errorf("the step at %s was not flagged; anomalies: %+v", s.At(step), an)
	}
	if before > 1 {
		t.Errorf("%d false alarms before the step: %+v", before, an)
	}
}

func TestHoltWintersRefusesShortSeries(t *testing.T) {
	t.Parallel()
	if _, err := HoltWinters(Series{Start: t0, Step: time.Hour, Values: []float64{1, 2}}, ForecastOptions{}); !errors.Is(err, ErrShortSeries) {
		t.Errorf("two points: %v", err)
	}
	// Three days: the daily season only.
	s, _ := synthetic(72, 1, 4)
	f, err := HoltWinters(s, ForecastOptions{})
	if err != nil || len(f.Seasons) != 1 || f.Seasons[0] != 24 {
		t.Errorf("three days: seasons %v, %v", f.Seasons, err)
	}
}

func TestNormalQuantile(t *testing.T) {
	t.Parallel()
	for p, want := range map[float64]float64{0.975: 1.959964, 0.5: 0, 0.01: -2.326348, 0.999: 3.090232} {
		if got := normalQuantile(p); math.Abs(got-want) > 1e-5 {
			t.Errorf("quantile(%v) = %v, want %v", p, got, want)
		}
	}
}
