package resilienceprom_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/relia-dev/relia/clock"
	"github.com/relia-dev/relia/resilience"
	"github.com/relia-dev/relia/resilience/resilienceprom"
)

func TestObserverExportsEvents(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	obs, err := resilienceprom.New(reg)
	if err != nil {
		t.Fatal(err)
	}
	events := []resilience.Event{
		{Kind: resilience.EventSuccess, Policy: "breaker", Name: "payments"},
		{Kind: resilience.EventSuccess, Policy: "breaker", Name: "payments"},
		{Kind: resilience.EventFailure, Policy: "breaker", Name: "payments"},
		{Kind: resilience.EventStateChange, Policy: "breaker", Name: "payments", From: resilience.StateClosed, To: resilience.StateOpen},
		{Kind: resilience.EventRejected, Policy: "breaker", Name: "payments", Reason: "breaker_open"},
		{Kind: resilience.EventRejected, Policy: "retry", Name: "payments", Reason: "retry_budget_exhausted"},
		{Kind: resilience.EventRetry, Policy: "retry", Name: "payments", Attempt: 2},
		{Kind: resilience.EventAcquired, Policy: "bulkhead", Name: "payments", InFlight: 3, Queued: 1},
		{Kind: resilience.EventLimitChange, Policy: "adaptive", Name: "payments", Limit: 42},
	}
	for _, e := range events {
		obs.Observe(e)
	}
	want := `
# HELP relia_breaker_state Circuit breaker state: 0 closed, 1 open, 2 half-open.
# TYPE relia_breaker_state gauge
relia_breaker_state{name="payments"} 1
# HELP relia_breaker_transitions_total Circuit breaker state changes.
# TYPE relia_breaker_transitions_total counter
relia_breaker_transitions_total{from="closed",name="payments",to="open"} 1
# HELP relia_concurrency_limit Current limit of an adaptive concurrency limiter.
# TYPE relia_concurrency_limit gauge
relia_concurrency_limit{name="payments"} 42
# HELP relia_policy_calls_total Calls through a resilience policy, by outcome (success or failure).
# TYPE relia_policy_calls_total counter
relia_policy_calls_total{name="payments",outcome="failure",policy="breaker"} 1
relia_policy_calls_total{name="payments",outcome="success",policy="breaker"} 2
# HELP relia_policy_in_flight Calls holding a bulkhead or concurrency-limit slot.
# TYPE relia_policy_in_flight gauge
relia_policy_in_flight{name="payments",policy="bulkhead"} 3
# HELP relia_policy_queued Calls waiting for a bulkhead slot.
# TYPE relia_policy_queued gauge
relia_policy_queued{name="payments",policy="bulkhead"} 1
# HELP relia_rejections_total Calls a resilience policy refused, by reason (breaker_open, bulkhead_full, rate_limited, retry_budget_exhausted, ...).
# TYPE relia_rejections_total counter
relia_rejections_total{name="payments",policy="breaker",reason="breaker_open"} 1
relia_rejections_total{name="payments",policy="retry",reason="retry_budget_exhausted"} 1
# HELP relia_retry_attempts_total Retries scheduled by a retry policy (first attempts are not counted).
# TYPE relia_retry_attempts_total counter
relia_retry_attempts_total{name="payments"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want)); err != nil {
		t.Fatal(err)
	}
}

// The limiting policies' own events become occupancy gauges, the adaptive
// limit and rejections by reason.
func TestObserverExportsLimitEvents(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	obs, err := resilienceprom.New(reg)
	if err != nil {
		t.Fatal(err)
	}
	fc := clock.NewFake(time.Time{})
	ctx := context.Background()

	bulkhead, err := resilience.NewBulkhead(resilience.BulkheadSettings{Name: "db", MaxConcurrent: 1, Observer: obs})
	if err != nil {
		t.Fatal(err)
	}
	held, _ := bulkhead.Acquire(ctx)
	defer held.Release()
	_, _ = bulkhead.Acquire(ctx)

	limiter, err := resilience.NewRateLimiter(resilience.RateLimiterSettings{Name: "search", Rate: 1, Clock: fc, Observer: obs})
	if err != nil {
		t.Fatal(err)
	}
	limiter.Allow()
	limiter.Allow()

	keyed, err := resilience.NewKeyedRateLimiter(resilience.KeyedRateLimiterSettings{Name: "api", Rate: 1, Clock: fc, Observer: obs})
	if err != nil {
		t.Fatal(err)
	}
	keyed.AllowKey("alice")
	keyed.AllowKey("alice")
	keyed.AllowKey("alice")

	adaptive, err := resilience.NewLimiter(resilience.LimiterSettings{Name: "payments", InitialLimit: 2, Clock: fc, Observer: obs})
	if err != nil {
		t.Fatal(err)
	}
	a, _ := adaptive.Allow()
	b, _ := adaptive.Allow()
	_, _ = adaptive.Allow()
	a.Done(context.DeadlineExceeded)
	b.Done(context.DeadlineExceeded)

	want := `
# HELP relia_concurrency_limit Current limit of an adaptive concurrency limiter.
# TYPE relia_concurrency_limit gauge
relia_concurrency_limit{name="payments"} 1
# HELP relia_policy_in_flight Calls holding a bulkhead or concurrency-limit slot.
# TYPE relia_policy_in_flight gauge
relia_policy_in_flight{name="db",policy="bulkhead"} 1
relia_policy_in_flight{name="payments",policy="adaptive"} 0
# HELP relia_policy_queued Calls waiting for a bulkhead slot.
# TYPE relia_policy_queued gauge
relia_policy_queued{name="db",policy="bulkhead"} 0
relia_policy_queued{name="payments",policy="adaptive"} 0
# HELP relia_rejections_total Calls a resilience policy refused, by reason (breaker_open, bulkhead_full, rate_limited, retry_budget_exhausted, ...).
# TYPE relia_rejections_total counter
relia_rejections_total{name="api",policy="ratelimit",reason="rate_limited"} 2
relia_rejections_total{name="db",policy="bulkhead",reason="bulkhead_full"} 1
relia_rejections_total{name="payments",policy="adaptive",reason="concurrency_limited"} 1
relia_rejections_total{name="search",policy="ratelimit",reason="rate_limited"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want),
		"relia_concurrency_limit", "relia_policy_in_flight", "relia_policy_queued", "relia_rejections_total"); err != nil {
		t.Fatal(err)
	}
}

func TestNewRejectsNilRegistryAndDoubleRegistration(t *testing.T) {
	t.Parallel()
	if _, err := resilienceprom.New(nil); err == nil {
		t.Fatal("New(nil) succeeded")
	}
	reg := prometheus.NewRegistry()
	if _, err := resilienceprom.New(reg); err != nil {
		t.Fatal(err)
	}
	if _, err := resilienceprom.New(reg); err == nil {
		t.Fatal("second New on the same registry succeeded")
	}
}

func BenchmarkObserve(b *testing.B) {
	obs, err := resilienceprom.New(prometheus.NewRegistry())
	if err != nil {
		b.Fatal(err)
	}
	e := resilience.Event{Kind: resilience.EventSuccess, Policy: "breaker", Name: "payments"}
	b.ReportAllocs()
	for b.Loop() {
		obs.Observe(e)
	}
}

// BenchmarkBreakerObserved is a breaker's success path with the metrics
// observer, on the real clock, as the gateway keeps one per target.
func BenchmarkBreakerObserved(b *testing.B) {
	obs, err := resilienceprom.New(prometheus.NewRegistry())
	if err != nil {
		b.Fatal(err)
	}
	br, err := resilience.NewBreaker(resilience.BreakerSettings{Name: "payments", Observer: obs})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		p, err := br.Allow()
		if err != nil {
			b.Fatal(err)
		}
		p.Done(nil)
	}
}
