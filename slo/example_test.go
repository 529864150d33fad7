package slo_test

import (
	"fmt"
	"time"

	"github.com/relia-dev/relia/internal/config"
	"github.com/relia-dev/relia/outcome"
	"github.com/relia-dev/relia/slo"
)

func Example() {
	spec := []byte(`kind: SLO
version: relia/v1
metadata:
  name: availability
spec:
  service: checkout
  objective: 99.9%
  sli:
    availability:
      errorQuery: sum(rate(http_requests_total{job="checkout",code=~"5.."}[{{.window}}]))
      totalQuery: sum(rate(http_requests_total{job="checkout"}[{{.window}}]))
`)
	slos, err := slo.Parse("checkout.yaml", spec)
	if err != nil {
		panic(err)
	}
	s := slos[0]
	fmt.Printf("%s: budget %v over %s\n", s.ID(), s.ErrorBudget(), config.FormatDuration(s.Period()))
	for _, a := range s.Alerts() {
		for _, w := range a.Windows {
			fmt.Printf("%s %s: %vx over %s and %s\n", a.Name, a.Severity, w.BurnRate,
				config.FormatDuration(w.Long), config.FormatDuration(w.Short))
		}
	}
	rules, err := slo.Rules(slos)
	if err != nil {
		panic(err)
	}
	fmt.Println(rules.Groups[0].Rules[0].Record, len(rules.Groups), "groups")
	// Output:
	// checkout-availability: budget 0.001 over 30d
	// CheckoutAvailabilityBudgetBurn page: 14.4x over 1h and 5m
	// CheckoutAvailabilityBudgetBurn page: 6x over 6h and 30m
	// CheckoutAvailabilityBudgetBurn ticket: 3x over 1d and 2h
	// CheckoutAvailabilityBudgetBurn ticket: 1x over 3d and 6h
	// slo:sli_errors:rate5m 3 groups
}

func ExampleBudgetTime() {
	fmt.Println(slo.BudgetTime(0.999, 30*24*time.Hour))
	fmt.Println(slo.BudgetSpent(14.4, time.Hour, 30*24*time.Hour))
	// Output:
	// 43m12s
	// 0.02
}

func ExampleCheckThreshold() {
	buckets := []float64{0.05, 0.1, 0.25, 0.5, 1}
	fmt.Println(slo.CheckThreshold(250*time.Millisecond, buckets))
	fmt.Println(slo.CheckThreshold(200*time.Millisecond, buckets))
	// Output:
	// <nil>
	// 200ms (0.2s) is not a bucket bound of the histogram (the nearest are 0.1 and 0.25): the share of events at or under it cannot be read from the buckets
}

// Evaluate judges an SLO over a run recorded by relia itself: here ten
// minutes at 20 requests a second with a two-minute outage.
func ExampleEvaluate() {
	slos, err := slo.Parse("shop.yaml", []byte(`kind: SLO
version: relia/v1
metadata: {name: availability}
spec:
  service: shop
  objective: 99.9%
  sli:
    availability: {goodClasses: [ok]}
`))
	if err != nil {
		panic(err)
	}
	rec, _ := outcome.NewRecorder(outcome.Options{})
	start := time.Date(2025, 11, 28, 9, 0, 0, 0, time.UTC)
	for at := start; at.Before(start.Add(10 * time.Minute)); at = at.Add(50 * time.Millisecond) {
		status := 200
		if at.Sub(start) >= 4*time.Minute && at.Sub(start) < 6*time.Minute {
			status = 503
		}
		rec.Record(outcome.Outcome{Start: at, Latency: 10 * time.Millisecond, Status: status, Class: outcome.ClassifyResponse(status, nil)})
	}
	ev, err := slo.Evaluate(slos[0], rec, start, start.Add(10*time.Minute))
	if err != nil {
		panic(err)
	}
	fmt.Printf("SLI %.1f%%, burn rate %gx, %.2f%% of the 30-day budget spent\n", ev.SLI*100, ev.BurnRate, ev.BudgetSpent*100)
	for _, a := range ev.Alerts {
		for _, e := range a.Episodes {
			resolved := "still firing at the end"
			if !e.Resolved.IsZero() {
				resolved = "resolved " + e.Resolved.Sub(start).String()
			}
			fmt.Printf("%s fired %s into the run, %s\n", a.Severity, e.Fired.Sub(start), resolved)
		}
	}
	// Output:
	// SLI 80.0%, burn rate 200x, 4.63% of the 30-day budget spent
	// page fired 4m2s into the run, still firing at the end
	// ticket fired 4m1s into the run, still firing at the end
}
