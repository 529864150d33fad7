// Package resilienceprom exports resilience policy events as Prometheus
// metrics: breaker state and transitions, calls by outcome, retries, hedges,
// timeouts, fallbacks, rejections by reason (retry budget exhaustion shows
// as reason="retry_budget_exhausted"), bulkhead and limiter occupancy, and
// the adaptive concurrency limit.
//
// The registry is passed in, never global:
//
//	reg := prometheus.NewRegistry()
//	obs, err := resilienceprom.New(reg)
//	if err != nil { ... }
//	breaker, err := resilience.NewBreaker(resilience.BreakerSettings{Name: "payments", Observer: obs})
package resilienceprom
