package load

import (
	"fmt"
	"strings"
	"time"

	"github.com/relia-dev/relia/outcome"
)

// MetricSummary is one metric's figures over a whole result, in the shape
// of k6's end-of-test summary (the data handleSummary receives), so that
// what reads a k6 summary reads relia's:
// .metrics.http_req_duration.values["p(95)"]. Every value is computed by
// the code that judges thresholds, so a figure here is the figure a
// threshold on it sees.
type MetricSummary struct {
	// Type is "trend", "rate", "counter" or "gauge".
	Type string `json:"type"`
	// Contains is "time" (milliseconds), "data" (bytes) or "default".
	Contains string `json:"contains"`
	// Values are, by type: trend count, avg, min, med, max, p(90), p(95),
	// p(99); rate rate, passes (samples that are true: failed requests
	// for http_req_failed, passed checks for checks), fails; counter
	// count, rate (per second of the run); gauge value (the most in any
	// second, as thresholds read it), min, max.
	Values map[string]float64 `json:"values"`
	// Thresholds are the thresholds on the metric, by expression (with
	// " every 30s" for a windowed one).
	Thresholds map[string]ThresholdStatus `json:"thresholds,omitempty"`
}

// ThresholdStatus is one threshold's result in a MetricSummary: ok as
// k6 writes it, and the value it was judged on.
type ThresholdStatus struct {
	OK    bool    `json:"ok"`
	Value float64 `json:"value"`
	// NoData is true when the metric had no samples (the threshold passes).
	NoData bool `json:"no_data,omitempty"`
}

// trendPercentiles are the percentiles a trend's summary holds.
var trendPercentiles = []float64{90, 95, 99}

// SummaryMetrics returns the result's figures in k6's summary shape, by
// metric name: the run's metrics, the per-request-name submetrics
// ("http_req_duration{name:pay}"), and the judged thresholds attached to
// their metrics. A merged result's figures are those of its merged
// recorders.
func (r *Result) SummaryMetrics(verdict []ThresholdResult) map[string]MetricSummary {
	from, to := r.span()
	length := r.End.Sub(r.Start)
	out := map[string]MetricSummary{}
	all := r.Requests.Total()
	r.summarize(out, "", all, from, to, length)
	for _, name := range r.names() {
		r.summarize(out, name, r.ByName[name].Total(), from, to, length)
	}
	for _, m := range PhaseMetrics {
		if h := r.Phases.histogram(m, from, to); h != nil && h.Count() > 0 {
			out[m] = trendSummary(m, h)
		}
	}
	if _, h := r.iterations(from, to); h != nil {
		out["iterations"] = r.counterSummary(Threshold{Metric: "iterations"}, "default", from, to, length)
		if h.Count() > 0 {
			out["iteration_duration"] = trendSummary("iteration_duration", h)
		}
	}
	r.journeySummaries(out, from, to, length)
	if r.VUsMax > 0 {
		out["vus_max"] = MetricSummary{Type: "gauge", Contains: "default", Values: map[string]float64{"value": float64(r.VUsMax), "min": float64(r.VUsMax), "max": float64(r.VUsMax)}}
	}
	if r.Model == Open {
		if lag := r.Lag.Total().Latency; lag.Count() > 0 {
			out["schedule_lag"] = trendSummary("schedule_lag", lag)
		}
		if v, ok := r.value(Threshold{Metric: "arrivals_on_time", Aggregation: "rate"}, from, to, length); ok {
			scheduled := r.Lag.Total().Latency.Count() + all.ByClass[outcome.ClassDropped]
			onTime := r.Lag.Total().Latency.CountAtOrBelow(r.LateAfter)
			out["arrivals_on_time"] = rateSummary(v, onTime, scheduled-onTime)
		}
		out["dropped_iterations"] = r.counterSummary(Threshold{Metric: "dropped_iterations"}, "default", from, to, length)
	} else if len(r.Active) > 0 {
		lo, hi := r.Active[0].V, r.Active[0].V
		for _, s := range r.Active {
			lo, hi = min(lo, s.V), max(hi, s.V)
		}
		out["vus"] = MetricSummary{Type: "gauge", Contains: "default", Values: map[string]float64{"value": float64(hi), "min": float64(lo), "max": float64(hi)}}
	}
	for _, tr := range verdict {
		ref := ThresholdRef(tr.Threshold)
		m, ok := out[ref]
		if !ok {
			m = MetricSummary{Type: kindName(Metrics[tr.Threshold.Metric]), Contains: "default", Values: map[string]float64{}}
		}
		if m.Thresholds == nil {
			m.Thresholds = map[string]ThresholdStatus{}
		}
		key := tr.Threshold.Expr
		if tr.Threshold.Window > 0 {
			key += " every " + tr.Threshold.Window.String()
		}
		m.Thresholds[key] = ThresholdStatus{OK: tr.Passed, Value: tr.Value, NoData: tr.NoData}
		out[ref] = m
	}
	return out
}

// summarize adds the request metrics of the run (name "") or of one
// request name.
func (r *Result) summarize(out map[string]MetricSummary, name string, sum outcome.Summary, from, to time.Time, length time.Duration) {
	key := func(metric string) string {
		if name == "" {
			return metric
		}
		return metric + "{name:" + name + "}"
	}
	var tags map[string]string
	if name != "" {
		tags = map[string]string{"name": name}
	}
	if sum.Latency.Count() > 0 {
		out[key("http_req_duration")] = trendSummary("http_req_duration", sum.Latency)
		if name == "" {
			out["http_req_service_duration"] = trendSummary("http_req_service_duration", sum.ServiceTime)
		}
	}
	if rate, ok := sum.FailedRate(); ok {
		out[key("http_req_failed")] = rateSummary(rate, sum.RequestsFailed(), sum.Sent()-sum.RequestsFailed())
	}
	out[key("http_reqs")] = r.counterSummary(Threshold{Metric: "http_reqs", Tags: tags}, "default", from, to, length)
	if v, ok := r.value(Threshold{Metric: "checks", Tags: tags, Aggregation: "rate"}, from, to, length); ok {
		var passed, total int64
		for k, c := range r.ByCheck {
			if name == "" || strings.HasPrefix(k, name+": ") {
				s := c.Total()
				passed, total = passed+s.ByClass[outcome.ClassOK], total+s.Total
			}
		}
		out[key("checks")] = rateSummary(v, passed, total-passed)
	}
	if name == "" {
		out["data_received"] = r.counterSummary(Threshold{Metric: "data_received"}, "data", from, to, length)
		out["data_sent"] = r.counterSummary(Threshold{Metric: "data_sent"}, "data", from, to, length)
	}
}

// trendSummary is a trend's figures in milliseconds, each computed as a
// threshold on it would be.
func trendSummary(metric string, h *outcome.Histogram) MetricSummary {
	m := MetricSummary{Type: "trend", Contains: "time", Values: map[string]float64{"count": float64(h.Count())}}
	for _, agg := range []string{"avg", "min", "med", "max"} {
		m.Values[agg] = trendValue(Threshold{Metric: metric, Aggregation: agg}, h)
	}
	for _, p := range trendPercentiles {
		m.Values[fmt.Sprintf("p(%g)", p)] = trendValue(Threshold{Metric: metric, Aggregation: "p", Percentile: p}, h)
	}
	return m
}

func rateSummary(rate float64, passes, fails int64) MetricSummary {
	return MetricSummary{Type: "rate", Contains: "default",
		Values: map[string]float64{"rate": rate, "passes": float64(passes), "fails": float64(fails)}}
}

func (r *Result) counterSummary(th Threshold, contains string, from, to time.Time, length time.Duration) MetricSummary {
	m := MetricSummary{Type: "counter", Contains: contains, Values: map[string]float64{}}
	for _, agg := range []string{"count", "rate"} {
		th.Aggregation = agg
		if v, ok := r.value(th, from, to, length); ok {
			m.Values[agg] = v
		}
	}
	return m
}

func kindName(k MetricKind) string {
	switch k {
	case Trend:
		return "trend"
	case Rate:
		return "rate"
	case Counter:
		return "counter"
	case Gauge:
		return "gauge"
	}
	return "default"
}
