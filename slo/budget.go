package slo

import (
	"math"
	"time"
)

// ErrorBudget is the share of events an objective lets fail, 1 -
// objective, rounded to 12 significant digits so that the budget of 0.999
// is 0.001 rather than 1-0.999 = 0.0010000000000000009.
func ErrorBudget(objective float64) float64 { return round12(1 - objective) }

// BudgetTime is the error budget as time: how long the service may be
// fully down over period and still meet objective. 99.9% over 30 days is
// 43.2 minutes.
func BudgetTime(objective float64, period time.Duration) time.Duration {
	return time.Duration(math.Round(ErrorBudget(objective) * float64(period)))
}

// BurnRate is how fast an error ratio spends the budget: 1 spends it
// exactly over the period, 14.4 in 1/14.4 of it.
func BurnRate(errorRatio, objective float64) float64 {
	return errorRatio / ErrorBudget(objective)
}

// BudgetSpent is the share of the period's budget that burning at
// burnRate for d spends: burning at 14.4 for 1 hour of 30 days spends
// 2%.
func BudgetSpent(burnRate float64, d, period time.Duration) float64 {
	return round12(burnRate * float64(d) / float64(period))
}

// BurnRateFor is the burn rate that spends the share budget of the
// period's budget in d: 2% in 1 hour of 30 days is 14.4.
func BurnRateFor(budget float64, d, period time.Duration) float64 {
	return round12(budget * float64(period) / float64(d))
}

// TimeToExhaustion is how long the remaining share of the budget lasts
// at burnRate; ok is false when it lasts for ever (burnRate <= 0).
func TimeToExhaustion(remaining, burnRate float64, period time.Duration) (d time.Duration, ok bool) {
	if burnRate <= 0 {
		return 0, false
	}
	return time.Duration(math.Round(math.Max(remaining, 0) * float64(period) / burnRate)), true
}

// DetectionTime is how long a window pair that fires at w's burn rate
// takes to fire once the service starts burning at burnRate from a clean
// history: the long window's error ratio reaches the threshold after
// Long*w.BurnRate/burnRate (the short window, shorter, is there first).
// ok is false when burnRate does not exceed the threshold: the pair never
// fires.
func DetectionTime(w BurnWindow, burnRate float64) (d time.Duration, ok bool) {
	if burnRate <= w.BurnRate {
		return 0, false
	}
	return time.Duration(math.Ceil(float64(w.Long) * w.BurnRate / burnRate)), true
}
