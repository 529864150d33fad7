package resilienceprom

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/relia-dev/relia/internal/children"
	"github.com/relia-dev/relia/resilience"
)

// Observer turns resilience policy events into Prometheus metrics. Give the
// same Observer to every policy (it is safe for concurrent use); the
// policy kind and instance name become the `policy` and `name` labels.
type Observer struct {
	calls       *prometheus.CounterVec
	rejections  *prometheus.CounterVec
	breaker     *prometheus.GaugeVec
	transitions *prometheus.CounterVec
	retries     *prometheus.CounterVec
	hedges      *prometheus.CounterVec
	timeouts    *prometheus.CounterVec
	fallbacks   *prometheus.CounterVec
	inFlight    *prometheus.GaugeVec
	queued      *prometheus.GaugeVec
	limit       *prometheus.GaugeVec

	// children caches resolved label sets, so the hot path compares keys
	// (or does one map load) instead of hashing label values on every
	// event.
	children children.Map[childKey, prometheus.Counter]
}

type childKey struct {
	kind         resilience.EventKind
	policy, name string
	reason       string
}

// New creates an Observer and registers its metrics with reg. A nil reg is
// an error: relia never registers with the global registry behind the
// caller's back.
func New(reg prometheus.Registerer) (*Observer, error) {
	if reg == nil {
		return nil, fmt.Errorf("resilienceprom: nil registerer")
	}
	o := &Observer{
		calls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "relia_policy_calls_total",
			Help: "Calls through a resilience policy, by outcome (success or failure).",
		}, []string{"policy", "name", "outcome"}),
		rejections: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "relia_rejections_total",
			Help: "Calls a resilience policy refused, by reason (breaker_open, bulkhead_full, rate_limited, retry_budget_exhausted, ...).",
		}, []string{"policy", "name", "reason"}),
		breaker: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "relia_breaker_state",
			Help: "Circuit breaker state: 0 closed, 1 open, 2 half-open.",
		}, []string{"name"}),
		transitions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "relia_breaker_transitions_total",
			Help: "Circuit breaker state changes.",
		}, []string{"name", "from", "to"}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "relia_retry_attempts_total",
			Help: "Retries scheduled by a retry policy (first attempts are not counted).",
		}, []string{"name"}),
		hedges: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "relia_hedge_attempts_total",
			Help: "Hedged attempts sent.",
		}, []string{"name"}),
		timeouts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "relia_timeouts_total",
			Help: "Calls ended by a timeout policy.",
		}, []string{"name"}),
		fallbacks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "relia_fallbacks_total",
			Help: "Failures replaced by a fallback.",
		}, []string{"name"}),
		inFlight: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "relia_policy_in_flight",
			Help: "Calls holding a bulkhead or concurrency-limit slot.",
		}, []string{"policy", "name"}),
		queued: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "relia_policy_queued",
			Help: "Calls waiting for a bulkhead slot.",
		}, []string{"policy", "name"}),
		limit: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "relia_concurrency_limit",
			Help: "Current limit of an adaptive concurrency limiter.",
		}, []string{"name"}),
	}
	for _, c := range []prometheus.Collector{o.calls, o.rejections, o.breaker, o.transitions, o.retries, o.hedges, o.timeouts, o.fallbacks, o.inFlight, o.queued, o.limit} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("resilienceprom: registering metrics: %w", err)
		}
	}
	return o, nil
}

// Observe records one event.
func (o *Observer) Observe(e resilience.Event) {
	switch e.Kind {
	case resilience.EventSuccess, resilience.EventFailure, resilience.EventRejected,
		resilience.EventRetry, resilience.EventHedge, resilience.EventTimeout, resilience.EventFallback:
		o.counter(e).Inc()
	case resilience.EventStateChange:
		o.breaker.WithLabelValues(e.Name).Set(float64(e.To))
		o.transitions.WithLabelValues(e.Name, e.From.String(), e.To.String()).Inc()
	case resilience.EventAcquired, resilience.EventReleased:
		o.inFlight.WithLabelValues(e.Policy, e.Name).Set(float64(e.InFlight))
		o.queued.WithLabelValues(e.Policy, e.Name).Set(float64(e.Queued))
	case resilience.EventLimitChange:
		o.limit.WithLabelValues(e.Name).Set(float64(e.Limit))
	}
}

// counter returns the counter an event increments, resolving its labels
// once per distinct (kind, policy, name, reason).
func (o *Observer) counter(e resilience.Event) prometheus.Counter {
	key := childKey{kind: e.Kind, policy: e.Policy, name: e.Name, reason: e.Reason}
	return o.children.Get(key, func() prometheus.Counter { return o.newCounter(e) })
}

// newCounter resolves the labels of an event's counter.
func (o *Observer) newCounter(e resilience.Event) prometheus.Counter {
	var c prometheus.Counter
	switch e.Kind {
	case resilience.EventSuccess:
		c = o.calls.WithLabelValues(e.Policy, e.Name, "success")
	case resilience.EventFailure:
		c = o.calls.WithLabelValues(e.Policy, e.Name, "failure")
	case resilience.EventRejected:
		c = o.rejections.WithLabelValues(e.Policy, e.Name, e.Reason)
	case resilience.EventRetry:
		c = o.retries.WithLabelValues(e.Name)
	case resilience.EventHedge:
		c = o.hedges.WithLabelValues(e.Name)
	case resilience.EventTimeout:
		c = o.timeouts.WithLabelValues(e.Name)
	case resilience.EventFallback:
		c = o.fallbacks.WithLabelValues(e.Name)
	}
	return c
}

// ObservesDurations reports false: the metrics count events and never
// read their Duration, so policies need not read the clock to measure it.
func (o *Observer) ObservesDurations() bool { return false }

var _ resilience.DurationObserver = (*Observer)(nil)
