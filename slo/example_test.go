package slo_test

import (
	"fmt"
	"time"

	"github.com/relia-dev/relia/internal/config"
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
