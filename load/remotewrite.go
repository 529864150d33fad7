package load

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/relia-dev/relia/internal/promrw"
	"github.com/relia-dev/relia/outcome"
)

// RemoteWriteSeries returns the result as Prometheus time series, one
// sample per second of the run, for remote write:
//
//   - relia_load_requests_total{name, class}: requests of each request
//     name by outcome class (ok, status, timeout, ..., dropped), counted
//     from the start of the run; their sum is the run's request count;
//   - relia_load_request_duration_seconds{quantile}, and {name,
//     quantile} per request name: the latency quantiles of each second's
//     requests (http_req_duration: from the schedule in the open model);
//   - relia_load_active: VUs (closed model) or requests in flight;
//   - in a journey test, the journey metrics (journeySeries):
//     relia_load_journeys_total{journey, class},
//     relia_load_journey_duration_seconds{journey, quantile} and
//     relia_load_group_duration_seconds{group, quantile}, with their
//     _count and _sum.
//
// Every series carries scenario, the scenario's labels whose names are
// Prometheus label names, and segment when the result is a segment of a
// split run, so that the segments' series do not overwrite each other.
func (r *Result) RemoteWriteSeries() []promrw.Series {
	base := []promrw.Label{{Name: "scenario", Value: r.Scenario}}
	for _, k := range slices.Sorted(maps.Keys(r.Labels)) {
		if promrw.ValidLabelName(k) && !strings.HasPrefix(k, "__") && !slices.Contains([]string{"scenario", "segment", "name", "class", "quantile", "journey", "group"}, k) {
			base = append(base, promrw.Label{Name: k, Value: r.Labels[k]})
		}
	}
	if len(r.Segments) != 1 || r.Segments[0] != Whole {
		segs := make([]string, len(r.Segments))
		for i, s := range r.Segments {
			segs[i] = s.String()
		}
		base = append(base, promrw.Label{Name: "segment", Value: strings.Join(segs, " ")})
	}
	labels := func(metric string, more ...promrw.Label) []promrw.Label {
		return append(append([]promrw.Label{{Name: "__name__", Value: metric}}, base...), more...)
	}
	at := func(b outcome.Bucket) time.Time {
		if b.To.After(r.End) {
			return r.End
		}
		return b.To
	}
	var out []promrw.Series
	quantiles := func(rec *outcome.Recorder, more ...promrw.Label) {
		series := make([]promrw.Series, len(exportQuantiles))
		for i, q := range exportQuantiles {
			series[i].Labels = labels("relia_load_request_duration_seconds", append(more, promrw.Label{Name: "quantile", Value: fmt.Sprint(q)})...)
		}
		for b := range rec.Buckets() {
			if b.Latency.Count() == 0 {
				continue
			}
			for i, q := range exportQuantiles {
				series[i].Samples = append(series[i].Samples, promrw.Sample{Value: b.Latency.Quantile(q).Seconds(), Time: at(b)})
			}
		}
		if len(series[0].Samples) > 0 {
			out = append(out, series...)
		}
	}
	quantiles(r.Requests)
	for _, name := range r.names() {
		rec := r.ByName[name]
		out = append(out, classCountSeries(rec, func(c outcome.Class) []promrw.Label {
			return labels("relia_load_requests_total", promrw.Label{Name: "name", Value: name}, promrw.Label{Name: "class", Value: c.String()})
		}, at)...)
		quantiles(rec, promrw.Label{Name: "name", Value: name})
	}
	out = append(out, r.journeySeries(labels, at)...)
	if len(r.Active) > 0 {
		s := promrw.Series{Labels: labels("relia_load_active")}
		for _, a := range r.Active {
			s.Samples = append(s.Samples, promrw.Sample{Value: float64(a.V), Time: a.T})
		}
		out = append(out, s)
	}
	return out
}
