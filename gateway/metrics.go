package gateway

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/relia-dev/relia/internal/children"
	"github.com/relia-dev/relia/internal/semconv"
	"github.com/relia-dev/relia/resilience/resilienceprom"
)

// metrics are the gateway's own series; the policies' (breaker state,
// retries, rejections by reason) come from resilienceprom through the
// shared observer, so a rejection has one counter whoever made it.
type metrics struct {
	obs        *resilienceprom.Observer
	server     *prometheus.HistogramVec
	client     *prometheus.HistogramVec
	ejections  *prometheus.CounterVec
	rateLimit  *prometheus.CounterVec
	reloads    *prometheus.CounterVec
	cache      *prometheus.CounterVec
	grpc       *prometheus.CounterVec
	serverKids children.Map[serverKey, prometheus.Observer]
	clientKids children.Map[clientKey, prometheus.Observer]
	rateKids   sync.Map // rateKey -> prometheus.Counter
	cacheKids  sync.Map // cacheLabels -> prometheus.Counter
}

type cacheLabels struct{ route, result string }

type serverKey struct {
	route, method string
	status        int
	errType       string
}

type clientKey struct {
	addr, method string
	status       int
	errType      string
}

type rateKey struct{ route, decision string }

// Rate-limit decisions, the decision label of
// relia_gateway_ratelimit_decisions_total.
const (
	decisionAllowed = "allowed"
	decisionLimited = "limited"
	// decisionUnavailable: a shared limit refused because its store was
	// unreachable and it fails closed.
	decisionUnavailable = "unavailable"
)

// Metrics configures the gateway's Prometheus metrics.
type Metrics struct {
	// LatencyBuckets are the upper bounds, in seconds, of the request
	// duration histograms (http_server_request_duration_seconds and
	// http_client_request_duration_seconds), ascending. A latency SLO
	// read from a classic histogram needs its threshold among them. The
	// default holds OpenTelemetry's advisory boundaries plus 0.2, 0.3
	// and 2: 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.2, 0.25, 0.3, 0.5,
	// 0.75, 1, 2, 2.5, 5, 7.5, 10.
	LatencyBuckets []float64 `yaml:"latencyBuckets"`
}

// latencyBuckets returns the configured bounds or relia's defaults.
func (m Metrics) latencyBuckets() []float64 {
	if len(m.LatencyBuckets) == 0 {
		return semconv.DurationBuckets()
	}
	return m.LatencyBuckets
}

func (m Metrics) withDefaults() Metrics {
	m.LatencyBuckets = slices.Clone(m.latencyBuckets())
	return m
}

func (m Metrics) check(p *problems, at string) {
	for i, b := range m.LatencyBuckets {
		switch {
		case math.IsNaN(b) || math.IsInf(b, 0) || b <= 0:
			p.add(fmt.Sprintf("%s.latencyBuckets[%d]", at, i), "%v is not a positive number of seconds", b)
		case i > 0 && b <= m.LatencyBuckets[i-1]:
			p.add(fmt.Sprintf("%s.latencyBuckets[%d]", at, i), "%v does not follow %v: bounds must ascend", b, m.LatencyBuckets[i-1])
		}
	}
}

func newMetrics(reg prometheus.Registerer, st func() *state, buckets []float64) (*metrics, error) {
	obs, err := resilienceprom.New(reg)
	if err != nil {
		return nil, err
	}
	m := &metrics{
		obs: obs,
		server: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    semconv.HTTPServerRequestDuration,
			Help:    "Duration of inbound HTTP requests, from the request's arrival to its response (OpenTelemetry http.server.request.duration); error_type is set when an answer whose status was sent failed after it (an AI stream that failed mid-stream: failed_mid_stream).",
			Buckets: buckets,
		}, []string{"http_route", "http_request_method", "http_response_status_code", "error_type"}),
		client: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    semconv.HTTPClientRequestDuration,
			Help:    "Duration of each attempt sent upstream (OpenTelemetry http.client.request.duration); error_type is set when no response came.",
			Buckets: buckets,
		}, []string{"server_address", "http_request_method", "http_response_status_code", "error_type"}),
		ejections: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "relia_gateway_ejections_total",
			Help: "Targets ejected by passive outlier detection.",
		}, []string{"upstream", "target"}),
		rateLimit: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "relia_gateway_ratelimit_decisions_total",
			Help: "Rate-limit decisions, by route and decision (allowed, limited, unavailable: refused because a shared limit's Redis was unreachable).",
		}, []string{"route", "decision"}),
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "relia_gateway_config_reloads_total",
			Help: "Config reloads, by result (success, failure).",
		}, []string{"result"}),
		cache: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "relia_gateway_cache_lookups_total",
			Help: "Response cache lookups, by route and result (hit, miss, stale).",
		}, []string{"route", "result"}),
		grpc: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "relia_gateway_grpc_calls_total",
			Help: "gRPC calls proxied, by route and the status code the client got (OK, UNAVAILABLE, ...).",
		}, []string{"http_route", "rpc_grpc_status_code"}),
	}
	for _, c := range []prometheus.Collector{m.server, m.client, m.ejections, m.rateLimit, m.reloads, m.cache, m.grpc, &healthCollector{state: st}} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	m.reloads.WithLabelValues("success")
	m.reloads.WithLabelValues("failure")
	return m, nil
}

// grpcCall counts a proxied gRPC call by route and status code.
func (m *metrics) grpcCall(route, code string) { m.grpc.WithLabelValues(route, code).Inc() }

func (m *metrics) observeServer(route, method string, status int, errType string, d time.Duration) {
	o := m.serverKids.Get(serverKey{route, method, status, errType}, func() prometheus.Observer {
		return m.server.WithLabelValues(route, method, strconv.Itoa(status), errType)
	})
	o.Observe(d.Seconds())
}

func (m *metrics) observeClient(addr, method string, status int, errType string, d time.Duration) {
	o := m.clientKids.Get(clientKey{addr, method, status, errType}, func() prometheus.Observer {
		s := ""
		if status > 0 {
			s = strconv.Itoa(status)
		}
		return m.client.WithLabelValues(addr, method, s, errType)
	})
	o.Observe(d.Seconds())
}

func (m *metrics) rateDecision(route, decision string) {
	k := rateKey{route, decision}
	c, ok := m.rateKids.Load(k)
	if !ok {
		c, _ = m.rateKids.LoadOrStore(k, m.rateLimit.WithLabelValues(route, decision))
	}
	c.(prometheus.Counter).Inc()
}

func (m *metrics) cacheLookup(route, result string) {
	k := cacheLabels{route, result}
	c, ok := m.cacheKids.Load(k)
	if !ok {
		c, _ = m.cacheKids.LoadOrStore(k, m.cache.WithLabelValues(route, result))
	}
	c.(prometheus.Counter).Inc()
}

// healthCollector reports each target's health at scrape time, read from
// the live config generation rather than kept in gauges that a reload
// would leave stale.
type healthCollector struct {
	state func() *state
}

var (
	descHealthy = prometheus.NewDesc("relia_gateway_target_healthy",
		"Whether a target receives traffic: 1 when its active check passes, it is not ejected and its breaker is not open.",
		[]string{"upstream", "target"}, nil)
	descEjected = prometheus.NewDesc("relia_gateway_target_ejected",
		"Whether passive outlier detection has ejected a target.", []string{"upstream", "target"}, nil)
	descInflight = prometheus.NewDesc("relia_gateway_target_in_flight",
		"Requests in flight to a target.", []string{"upstream", "target"}, nil)
	descConns = prometheus.NewDesc("relia_gateway_target_connections",
		"Connections open to a target, in use or kept idle (at most the upstream's maxConnections).", []string{"upstream", "target"}, nil)
	descWaiting = prometheus.NewDesc("relia_gateway_target_connection_waiting",
		"Requests waiting for a connection to a target because maxConnections are busy.", []string{"upstream", "target"}, nil)
	descRateDegraded = prometheus.NewDesc("relia_gateway_ratelimit_store_degraded",
		"Whether a route's shared rate limit found its Redis unreachable on its last call, and answers by its onUnreachable policy.",
		[]string{"route"}, nil)
)

func (c *healthCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descHealthy
	ch <- descEjected
	ch <- descInflight
	ch <- descConns
	ch <- descWaiting
	ch <- descRateDegraded
}

func (c *healthCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.state()
	if st == nil {
		return
	}
	for _, p := range st.poolList {
		now := p.clock.Now()
		for _, t := range p.targets {
			ch <- prometheus.MustNewConstMetric(descHealthy, prometheus.GaugeValue, b2f(t.available(p.clock.Now)), p.name, t.addr)
			u := t.ejectedUntil.Load()
			ch <- prometheus.MustNewConstMetric(descEjected, prometheus.GaugeValue, b2f(u != 0 && now.UnixNano() < u), p.name, t.addr)
			ch <- prometheus.MustNewConstMetric(descInflight, prometheus.GaugeValue, float64(t.inflight.Load()), p.name, t.addr)
			ch <- prometheus.MustNewConstMetric(descConns, prometheus.GaugeValue, float64(t.up.Conns()), p.name, t.addr)
			ch <- prometheus.MustNewConstMetric(descWaiting, prometheus.GaugeValue, float64(t.up.Waiting()), p.name, t.addr)
		}
	}
	for _, r := range st.routes {
		if r.shared != nil {
			ch <- prometheus.MustNewConstMetric(descRateDegraded, prometheus.GaugeValue, b2f(r.shared.lim.Degraded()), r.name)
		}
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
