package ai

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/relia-dev/relia/internal/children"
)

// Bucket boundaries the OpenTelemetry GenAI semantic conventions advise
// for each metric.
var (
	tokenBuckets    = []float64{1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864}
	durationBuckets = []float64{0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92}
	ttftBuckets     = []float64{0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0}
	tpotBuckets     = []float64{0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5}
)

// metrics are the AI gateway's Prometheus metrics: the OpenTelemetry
// GenAI semantic conventions' client and server metrics under their
// Prometheus names, and relia's cost counter.
type metrics struct {
	tokens   *prometheus.HistogramVec
	duration *prometheus.HistogramVec
	ttft     *prometheus.HistogramVec
	tpot     *prometheus.HistogramVec
	cost     *prometheus.CounterVec
	// series holds each label set's series once looked up: a call
	// finds its series by its key instead of hashing its labels once
	// per series.
	series children.Map[callKey, *callSeries]
}

// callKey is the labels of a call's series.
type callKey struct{ op, ptype, model, provider, tenant, outcome string }

// callSeries are one label set's series, each made on its first
// observation, so that a series appears only once it has one.
type callSeries struct {
	once                                [6]sync.Once
	duration, ttft, tpot, input, output prometheus.Observer
	cost                                prometheus.Counter
}

// Label names: the semantic conventions' attributes, with relia's tenant,
// provider (the configured name) and outcome.
var (
	callLabels  = []string{"gen_ai_operation_name", "gen_ai_provider_name", "gen_ai_request_model", "relia_provider", "tenant", "outcome"}
	tokenLabels = append(append([]string(nil), callLabels...), "gen_ai_token_type")
)

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	if reg == nil {
		return nil, nil
	}
	m := &metrics{
		tokens: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "gen_ai_client_token_usage", Help: "Tokens used per call, by token type (input, output).", Buckets: tokenBuckets,
		}, tokenLabels),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "gen_ai_client_operation_duration_seconds", Help: "Duration of each call to the AI gateway, failover included.", Buckets: durationBuckets,
		}, callLabels),
		ttft: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "gen_ai_server_time_to_first_token_seconds", Help: "Time from the call's start to its first output token.", Buckets: ttftBuckets,
		}, callLabels),
		tpot: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "gen_ai_server_time_per_output_token_seconds", Help: "Time per output token after the first, of streamed calls.", Buckets: tpotBuckets,
		}, callLabels),
		cost: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "relia_ai_cost_usd_total", Help: "Cost of calls in USD, from the model catalog's prices.",
		}, []string{"gen_ai_request_model", "tenant"}),
	}
	for _, c := range []prometheus.Collector{m.tokens, m.duration, m.ttft, m.tpot, m.cost} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// otherModel is the gen_ai_request_model label of calls naming a model
// no route serves (OpenTelemetry's name for a value outside the known set).
const otherModel = "_OTHER"

func (m *metrics) observe(r *Record) {
	if m == nil {
		return
	}
	model := r.Model
	if r.unrouted {
		// A client may send any model name: one label value for all of
		// them keeps the series bounded by the catalog, not by clients.
		model = otherModel
	}
	k := callKey{r.Operation, semconvProvider(r.ptype), model, r.Provider, r.Tenant, r.Outcome}
	c := m.series.Get(k, func() *callSeries { return &callSeries{} })
	lv := func() []string { return []string{k.op, k.ptype, k.model, k.provider, k.tenant, k.outcome} }
	c.once[0].Do(func() { c.duration = m.duration.WithLabelValues(lv()...) })
	c.duration.Observe(r.Duration.Seconds())
	if r.TTFT > 0 {
		c.once[1].Do(func() { c.ttft = m.ttft.WithLabelValues(lv()...) })
		c.ttft.Observe(r.TTFT.Seconds())
	}
	if r.TPOT > 0 {
		c.once[2].Do(func() { c.tpot = m.tpot.WithLabelValues(lv()...) })
		c.tpot.Observe(r.TPOT.Seconds())
	}
	if r.InputTokens > 0 || r.OutputTokens > 0 {
		c.once[3].Do(func() { c.input = m.tokens.WithLabelValues(append(lv(), "input")...) })
		c.input.Observe(float64(r.InputTokens))
		if r.Operation != "embeddings" {
			c.once[4].Do(func() { c.output = m.tokens.WithLabelValues(append(lv(), "output")...) })
			c.output.Observe(float64(r.OutputTokens))
		}
	}
	if r.Cost > 0 {
		c.once[5].Do(func() { c.cost = m.cost.WithLabelValues(k.model, k.tenant) })
		c.cost.Add(r.Cost)
	}
}
