package load

import (
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/instrumentation"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/resource"

	"github.com/relia-dev/relia/internal/semconv"
	"github.com/relia-dev/relia/outcome"
)

// OTLPMetrics returns the run's totals as OpenTelemetry metrics, for an
// OTLP exporter, each point covering the run from its start to its end:
//
//   - relia.load.requests{name, class}: requests by request name and
//     outcome class (a cumulative sum; their sum is the run's http_reqs);
//   - relia.load.request.duration{name}: the latency of the sent requests
//     (http_req_duration) as a histogram in seconds, with relia's default
//     latency bucket bounds;
//   - in a journey test, relia.load.journeys{journey, class} and the
//     summaries relia.load.journey.duration{journey} and
//     relia.load.group.duration{group} in seconds, with the quantiles
//     the summary prints (a point without the attribute is of all
//     journeys or groups).
//
// The resource is service.name "relia" with relia.scenario, the
// scenario's labels and relia.segment for one segment of a split run.
func (r *Result) OTLPMetrics() *metricdata.ResourceMetrics {
	attrs := []attribute.KeyValue{attribute.String("service.name", "relia"), attribute.String("relia.scenario", r.Scenario)}
	for k, v := range r.Labels {
		attrs = append(attrs, attribute.String("relia.label."+k, v))
	}
	if len(r.Segments) != 1 || r.Segments[0] != Whole {
		for _, s := range r.Segments {
			attrs = append(attrs, attribute.String("relia.segment", s.String()))
		}
	}
	start, end := r.Start, r.End
	if !end.After(start) {
		end = start.Add(time.Nanosecond)
	}
	requests := metricdata.Sum[int64]{Temporality: metricdata.CumulativeTemporality, IsMonotonic: true}
	duration := metricdata.Histogram[float64]{Temporality: metricdata.CumulativeTemporality}
	bounds := semconv.DurationBuckets()
	for _, name := range r.names() {
		sum := r.ByName[name].Total()
		requests.DataPoints = appendClassPoints(requests.DataPoints, sum.ByClass, start, end, attribute.String("name", name))
		h := sum.Latency
		if h.Count() == 0 {
			continue
		}
		counts := make([]uint64, len(bounds)+1)
		var below int64
		for i, b := range bounds {
			at := h.CountAtOrBelow(time.Duration(b * float64(time.Second)))
			counts[i] = uint64(at - below)
			below = at
		}
		counts[len(bounds)] = uint64(h.Count() - below)
		duration.DataPoints = append(duration.DataPoints, metricdata.HistogramDataPoint[float64]{
			Attributes: attribute.NewSet(attribute.String("name", name)), StartTime: start, Time: end,
			Count: uint64(h.Count()), Bounds: bounds, BucketCounts: counts,
			Sum: h.Mean().Seconds() * float64(h.Count()),
			Min: metricdata.NewExtrema(h.Min().Seconds()), Max: metricdata.NewExtrema(h.Max().Seconds())})
	}
	metrics := []metricdata.Metrics{
		{Name: "relia.load.requests", Description: "Requests by request name and outcome class.", Unit: "{request}", Data: requests},
		{Name: "relia.load.request.duration", Description: "Latency of the sent requests (http_req_duration).", Unit: "s", Data: duration},
	}
	if r.Journeys != nil {
		metrics = append(metrics, r.Journeys.otlp(start, end)...)
	}
	return &metricdata.ResourceMetrics{
		Resource: resource.NewSchemaless(attrs...),
		ScopeMetrics: []metricdata.ScopeMetrics{{
			Scope:   instrumentation.Scope{Name: "github.com/relia-dev/relia/load"},
			Metrics: metrics,
		}},
	}
}

// appendClassPoints appends a point per outcome class counted in
// byClass, with attr and the class.
func appendClassPoints(points []metricdata.DataPoint[int64], byClass [outcome.NumClasses]int64, start, end time.Time, attr attribute.KeyValue) []metricdata.DataPoint[int64] {
	for c := range outcome.NumClasses {
		if n := byClass[c]; n > 0 {
			points = append(points, metricdata.DataPoint[int64]{
				Attributes: attribute.NewSet(attr, attribute.String("class", c.String())),
				StartTime:  start, Time: end, Value: n})
		}
	}
	return points
}
