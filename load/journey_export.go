package load

import (
	"fmt"
	"maps"
	"math"
	"slices"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/relia-dev/relia/internal/promrw"
	"github.com/relia-dev/relia/outcome"
)

// The journey metrics' names in what relia load exports (the Prometheus
// names of the scrape and of remote write; OTLP's dotted names are in
// OTLPMetrics). Each reads the recorders the summary reads, so a figure
// in Prometheus is the summary's figure by the same definition:
//
//   - journeys is the count of relia_load_journeys_total{journey, class};
//     journey_success is its class="ok" share;
//   - journey_duration and group_duration are summaries in seconds whose
//     quantiles (0.5, 0.9, 0.95, 0.99: the summary's med, p(90), p(95),
//     p(99)) are of every journey (group) recorded so far, so that the
//     last value read is the summary's. The series without a journey
//     (group) label is of all journeys (groups), as the summary's line
//     without tags is.
const (
	promJourneys        = "relia_load_journeys_total"
	promJourneyDuration = "relia_load_journey_duration_seconds"
	promGroupDuration   = "relia_load_group_duration_seconds"
)

var (
	descJourneys = prometheus.NewDesc(promJourneys,
		"Journeys walked to their end, by journey and outcome class (ok: the journey succeeded; the ok share is journey_success).",
		[]string{"journey", "class"}, nil)
	descJourneyDuration = prometheus.NewDesc(promJourneyDuration,
		"Length of the journeys walked so far (journey_duration: from the scheduled arrival in the open model); without a journey label, of all journeys.",
		[]string{"journey"}, nil)
	descGroupDuration = prometheus.NewDesc(promGroupDuration,
		"Length of the journeys' groups run so far (group_duration); without a group label, of all groups.",
		[]string{"group"}, nil)
	descCookiesDropped = prometheus.NewDesc("relia_load_cookies_dropped_total",
		"Cookies responses set that the users' jars did not keep: past the scenario's cookieJar bounds.", nil, nil)
)

// collect sends the live journey metrics: the recorders read as
// they are at the scrape.
func (j *JourneyRecorders) collect(ch chan<- prometheus.Metric) {
	for _, name := range slices.Sorted(maps.Keys(j.ByJourney)) {
		sum := j.ByJourney[name].Total()
		for cl, n := range sum.ByClass {
			if n > 0 {
				ch <- prometheus.MustNewConstMetric(descJourneys, prometheus.CounterValue, float64(n), name, outcome.Class(cl).String())
			}
		}
		ch <- constSummary(descJourneyDuration, sum.Latency, name)
	}
	ch <- constSummary(descJourneyDuration, j.All.Total().Latency, "")
	for _, g := range slices.Sorted(maps.Keys(j.ByGroup)) {
		ch <- constSummary(descGroupDuration, j.ByGroup[g].Total().Latency, g)
	}
	ch <- constSummary(descGroupDuration, j.Groups.Total().Latency, "")
	ch <- prometheus.MustNewConstMetric(descCookiesDropped, prometheus.CounterValue, float64(atomic.LoadInt64(&j.CookiesDropped)))
}

// exportQuantiles are the quantiles the exporters write of a latency:
// the median and the summary's p(90), p(95) and p(99).
var exportQuantiles = []float64{0.5, 0.9, 0.95, 0.99}

// quantileSeconds returns h's exportQuantiles in seconds, each as
// Threshold.Trend reads it (NaN for an empty histogram, as Prometheus
// writes a summary with no observations).
func quantileSeconds(h *outcome.Histogram) []float64 {
	out := make([]float64, len(exportQuantiles))
	for i, q := range exportQuantiles {
		out[i] = math.NaN()
		if h.Count() > 0 {
			out[i] = h.Quantile(q).Seconds()
		}
	}
	return out
}

// sumSeconds is h's sum in seconds, estimated from its mean as the
// request histograms' is.
func sumSeconds(h *outcome.Histogram) float64 {
	return h.Mean().Seconds() * float64(h.Count())
}

// constSummary turns a recorder histogram into a Prometheus summary.
func constSummary(d *prometheus.Desc, h *outcome.Histogram, labels ...string) prometheus.Metric {
	qs := map[float64]float64{}
	for i, v := range quantileSeconds(h) {
		qs[exportQuantiles[i]] = v
	}
	return prometheus.MustNewConstSummary(d, uint64(h.Count()), sumSeconds(h), qs, labels...)
}

// journeySeries returns the journey metrics as remote write series, a
// sample per second: relia_load_journeys_total{journey, class} counted
// from the start of the run, and the two durations as summaries
// (quantile, _count and _sum) of the journeys and groups that started
// up to each second, so the last sample of each is the summary's figure.
func (r *Result) journeySeries(labels func(string, ...promrw.Label) []promrw.Label, at func(outcome.Bucket) time.Time) []promrw.Series {
	j := r.Journeys
	if j == nil {
		return nil
	}
	var out []promrw.Series
	for _, name := range slices.Sorted(maps.Keys(j.ByJourney)) {
		rec := j.ByJourney[name]
		journey := promrw.Label{Name: "journey", Value: name}
		out = append(out, classCountSeries(rec, func(c outcome.Class) []promrw.Label {
			return labels(promJourneys, journey, promrw.Label{Name: "class", Value: c.String()})
		}, at)...)
		out = append(out, summarySeries(rec, promJourneyDuration, labels, at, journey)...)
	}
	out = append(out, summarySeries(j.All, promJourneyDuration, labels, at)...)
	for _, g := range slices.Sorted(maps.Keys(j.ByGroup)) {
		out = append(out, summarySeries(j.ByGroup[g], promGroupDuration, labels, at, promrw.Label{Name: "group", Value: g})...)
	}
	return append(out, summarySeries(j.Groups, promGroupDuration, labels, at)...)
}

// classCountSeries returns a counter per outcome class that rec holds,
// counted from its first bucket, a sample per bucket.
func classCountSeries(rec *outcome.Recorder, labels func(outcome.Class) []promrw.Label, at func(outcome.Bucket) time.Time) []promrw.Series {
	var counts [outcome.NumClasses]promrw.Series
	var total [outcome.NumClasses]int64
	for b := range rec.Buckets() {
		for c := range outcome.NumClasses {
			total[c] += b.ByClass[c]
			if total[c] > 0 {
				counts[c].Samples = append(counts[c].Samples, promrw.Sample{Value: float64(total[c]), Time: at(b)})
			}
		}
	}
	var out []promrw.Series
	for c := range outcome.NumClasses {
		if total[c] > 0 {
			counts[c].Labels = labels(c)
			out = append(out, counts[c])
		}
	}
	return out
}

// summarySeries returns rec's latencies as a Prometheus summary over the
// buckets so far, a sample per bucket: metric{quantile}, metric_count and
// metric_sum.
func summarySeries(rec *outcome.Recorder, metric string, labels func(string, ...promrw.Label) []promrw.Label, at func(outcome.Bucket) time.Time, more ...promrw.Label) []promrw.Series {
	series := make([]promrw.Series, len(exportQuantiles)+2)
	for i, q := range exportQuantiles {
		series[i].Labels = labels(metric, append(slices.Clip(more), promrw.Label{Name: "quantile", Value: fmt.Sprint(q)})...)
	}
	series[len(exportQuantiles)].Labels = labels(metric+"_count", more...)
	series[len(exportQuantiles)+1].Labels = labels(metric+"_sum", more...)
	var so outcome.Histogram
	for b := range rec.Buckets() {
		if b.Latency.Count() == 0 {
			continue
		}
		so.Merge(b.Latency)
		t := at(b)
		for i, v := range quantileSeconds(&so) {
			series[i].Samples = append(series[i].Samples, promrw.Sample{Value: v, Time: t})
		}
		series[len(exportQuantiles)].Samples = append(series[len(exportQuantiles)].Samples, promrw.Sample{Value: float64(so.Count()), Time: t})
		series[len(exportQuantiles)+1].Samples = append(series[len(exportQuantiles)+1].Samples, promrw.Sample{Value: sumSeconds(&so), Time: t})
	}
	if so.Count() == 0 {
		return nil
	}
	return series
}

// journeyOTLP returns the journey metrics as OpenTelemetry metrics over
// the run [start, end]: relia.load.journeys{journey, class} and
// relia.load.journey.duration{journey} and relia.load.group.duration{group}
// as summaries (a point without the attribute is of all journeys or
// groups), in seconds.
func (j *JourneyRecorders) otlp(start, end time.Time) []metricdata.Metrics {
	journeys := metricdata.Sum[int64]{Temporality: metricdata.CumulativeTemporality, IsMonotonic: true}
	var jd, gd metricdata.Summary
	point := func(h *outcome.Histogram, attrs ...attribute.KeyValue) metricdata.SummaryDataPoint {
		p := metricdata.SummaryDataPoint{Attributes: attribute.NewSet(attrs...), StartTime: start, Time: end,
			Count: uint64(h.Count()), Sum: sumSeconds(h)}
		if h.Count() > 0 {
			for i, v := range quantileSeconds(h) {
				p.QuantileValues = append(p.QuantileValues, metricdata.QuantileValue{Quantile: exportQuantiles[i], Value: v})
			}
		}
		return p
	}
	for _, name := range slices.Sorted(maps.Keys(j.ByJourney)) {
		sum := j.ByJourney[name].Total()
		journeys.DataPoints = appendClassPoints(journeys.DataPoints, sum.ByClass, start, end, attribute.String("journey", name))
		jd.DataPoints = append(jd.DataPoints, point(sum.Latency, attribute.String("journey", name)))
	}
	jd.DataPoints = append(jd.DataPoints, point(j.All.Total().Latency))
	for _, g := range slices.Sorted(maps.Keys(j.ByGroup)) {
		gd.DataPoints = append(gd.DataPoints, point(j.ByGroup[g].Total().Latency, attribute.String("group", g)))
	}
	gd.DataPoints = append(gd.DataPoints, point(j.Groups.Total().Latency))
	return []metricdata.Metrics{
		{Name: "relia.load.journeys", Description: "Journeys walked to their end, by journey and outcome class (ok: succeeded).", Unit: "{journey}", Data: journeys},
		{Name: "relia.load.journey.duration", Description: "Length of the journeys (journey_duration).", Unit: "s", Data: jd},
		{Name: "relia.load.group.duration", Description: "Length of the journeys' groups (group_duration).", Unit: "s", Data: gd},
	}
}
