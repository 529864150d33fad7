package load

import (
	"slices"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/relia-dev/relia/internal/semconv"
	"github.com/relia-dev/relia/outcome"
)

// durationBuckets are the bucket bounds, in seconds, of the live latency
// histograms: relia's defaults for every latency histogram it exports.
var durationBuckets = semconv.DurationBuckets()

var (
	descDuration = prometheus.NewDesc(semconv.HTTPClientRequestDuration,
		"Duration of the load generator's HTTP requests: from the scheduled send time in the open model, from the send in the closed model.",
		[]string{"name", "http_request_method"}, nil)
	descService = prometheus.NewDesc(semconv.LoadServiceDuration,
		"Service time of the load generator's HTTP requests: from the actual send to the end of the response.",
		[]string{"name", "http_request_method"}, nil)
	descRequests = prometheus.NewDesc("relia_load_requests_total",
		"Requests by outcome class (ok, status, timeout, refused, reset, dns, tls, check, dropped, ...).",
		[]string{"name", "class"}, nil)
	descStatus = prometheus.NewDesc("relia_load_responses_total",
		"Responses by HTTP status code.", []string{"http_response_status_code"}, nil)
	descActive = prometheus.NewDesc("relia_load_active",
		"Active virtual users (closed model) or requests in flight (open model).", nil, nil)
	descChecks = prometheus.NewDesc("relia_load_checks_total",
		"Checks run, by check and result.", []string{"check", "result"}, nil)
	descBytesIn = prometheus.NewDesc("relia_load_received_bytes_total",
		"Bytes received.", nil, nil)
	descBytesOut = prometheus.NewDesc("relia_load_sent_bytes_total",
		"Bytes sent.", nil, nil)
	descLag = prometheus.NewDesc("relia_load_schedule_lag_seconds",
		"How late open-model requests were sent against their schedule.", nil, nil)
)

// collector serves a run's live metrics. It reads the run's recorders on
// each scrape, so the request path pays nothing for it.
type collector struct {
	r *runner
}

var _ prometheus.Collector = (*collector)(nil)

func newCollector(r *runner) *collector { return &collector{r: r} }

// Describe sends the descriptors of every metric.
func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descDuration, descService, descRequests, descStatus, descActive, descChecks, descBytesIn, descBytesOut, descLag, descJourneys, descJourneyDuration, descGroupDuration, descCookiesDropped} {
		ch <- d
	}
}

// Collect reads the recorders.
func (c *collector) Collect(ch chan<- prometheus.Metric) {
	res := c.r.res
	methods := map[string]string{}
	for _, s := range c.r.t.Steps {
		if _, ok := methods[s.Name]; !ok {
			methods[s.Name] = s.Method
		}
	}
	var in, out int64
	for _, name := range c.r.t.names {
		sum := res.ByName[name].Total()
		in += sum.BytesIn
		out += sum.BytesOut
		ch <- histogram(descDuration, sum.Latency, name, methods[name])
		ch <- histogram(descService, sum.ServiceTime, name, methods[name])
		for cl, n := range sum.ByClass {
			if n > 0 {
				ch <- prometheus.MustNewConstMetric(descRequests, prometheus.CounterValue, float64(n), name, outcome.Class(cl).String())
			}
		}
	}
	if d := c.r.dropped.Load(); d > 0 {
		ch <- prometheus.MustNewConstMetric(descRequests, prometheus.CounterValue, float64(d), "", outcome.ClassDropped.String())
	}
	codes := res.Requests.StatusCodes()
	keys := make([]int, 0, len(codes))
	for k := range codes {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, code := range keys {
		ch <- prometheus.MustNewConstMetric(descStatus, prometheus.CounterValue, float64(codes[code]), strconv.Itoa(code))
	}
	ch <- prometheus.MustNewConstMetric(descActive, prometheus.GaugeValue, float64(c.r.active.Load()))
	for k, rec := range res.ByCheck {
		sum := rec.Total()
		ch <- prometheus.MustNewConstMetric(descChecks, prometheus.CounterValue, float64(sum.ByClass[outcome.ClassOK]), k, "pass")
		ch <- prometheus.MustNewConstMetric(descChecks, prometheus.CounterValue, float64(sum.ByClass[outcome.ClassCheck]), k, "fail")
	}
	ch <- prometheus.MustNewConstMetric(descBytesIn, prometheus.CounterValue, float64(in))
	ch <- prometheus.MustNewConstMetric(descBytesOut, prometheus.CounterValue, float64(out))
	if c.r.t.Model == Open {
		ch <- histogram(descLag, res.Lag.Total().Latency)
	}
	if res.Journeys != nil {
		res.Journeys.collect(ch)
	}
}

// histogram turns a recorder histogram into a Prometheus one with
// durationBuckets; the sum is estimated from the mean.
func histogram(d *prometheus.Desc, h *outcome.Histogram, labels ...string) prometheus.Metric {
	buckets := make(map[float64]uint64, len(durationBuckets))
	for _, b := range durationBuckets {
		buckets[b] = uint64(h.CountAtOrBelow(time.Duration(b * float64(time.Second))))
	}
	n := h.Count()
	sum := h.Mean().Seconds() * float64(n)
	return prometheus.MustNewConstHistogram(d, uint64(n), sum, buckets, labels...)
}
