package load

import (
	"context"
	"fmt"
	"math"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

// lostJourney is a second journey for journeyScenario whose one request
// is answered 401 (no login), so that it always fails.
const lostJourney = `    - name: lost
      steps:
        - request: {name: lost, path: /nowhere, checks: [{status: [200]}]}
`

// exported is what one exporter says of one journey metric's series:
// the duration's count and quantiles in seconds, and for a journey the
// count of relia_load_journeys_total and of its class ok.
type exported struct {
	count, journeys, ok float64
	q                   map[float64]float64
}

// TestJourneyMetricsAreExportedAsTheSummaryReadsThem runs two journeys,
// one that succeeds and one that fails, and reads the journey metrics
// from the three live exports (the scrape's collector after the run,
// the remote write series' last samples, the OTLP points): each count,
// success share and percentile is the summary's, for every journey, for
// all of them and for the group.
func TestJourneyMetricsAreExportedAsTheSummaryReadsThem(t *testing.T) {
	t.Parallel()
	shop := newJourneyShop(t)
	test := journeyScenario(t, shop.srv.URL, "{rate: 20, duration: 1s}", lostJourney)
	reg := prometheus.NewRegistry()
	res, err := test.Run(context.Background(), RunOptions{Registerer: reg, KeepMetrics: true})
	if err != nil {
		t.Fatal(err)
	}
	sum := res.SummaryMetrics(nil)
	lost := res.Journeys.ByJourney["lost"].Total()
	if lost.Total == 0 || lost.ByClass[0] != 0 || res.Journeys.ByJourney["checkout"].Total().ByClass[0] == 0 {
		t.Fatalf("want failed lost journeys and ok checkouts: lost %v, checkout %v", lost.ByClass, res.Journeys.ByJourney["checkout"].Total().ByClass)
	}

	// The summary's figures, by the key each exporter's series has: the
	// journey's (group's) name, "" for all of them.
	type key struct{ metric, name string }
	want := map[key]exported{}
	trend := func(m MetricSummary) map[float64]float64 {
		return map[float64]float64{0.5: m.Values["med"] / 1000, 0.9: m.Values["p(90)"] / 1000, 0.95: m.Values["p(95)"] / 1000, 0.99: m.Values["p(99)"] / 1000}
	}
	for _, name := range []string{"", "checkout", "lost"} {
		suffix := ""
		if name != "" {
			suffix = "{journey:" + name + "}"
		}
		s := sum[MetricJourneySuccess+suffix]
		n := sum[MetricJourneys+suffix].Values["count"]
		want[key{promJourneyDuration, name}] = exported{count: n, journeys: n, ok: s.Values["passes"], q: trend(sum[MetricJourneyDuration+suffix])}
		if s.Values["passes"]+s.Values["fails"] != sum[MetricJourneys+suffix].Values["count"] {
			t.Fatalf("summary: %s %v, %s %v", MetricJourneys+suffix, sum[MetricJourneys+suffix].Values, MetricJourneySuccess+suffix, s.Values)
		}
	}
	want[key{promGroupDuration, "::cart"}] = exported{count: sum[MetricGroupDuration+"{group:::cart}"].Values["count"], q: trend(sum[MetricGroupDuration+"{group:::cart}"])}
	want[key{promGroupDuration, ""}] = exported{count: sum[MetricGroupDuration].Values["count"], q: trend(sum[MetricGroupDuration])}

	check := func(exporter string, got map[key]exported) {
		t.Helper()
		for k, w := range want {
			g, ok := got[k]
			if !ok {
				t.Errorf("%s: no %s for %q", exporter, k.metric, k.name)
				continue
			}
			if g.count != w.count || g.journeys != w.journeys || g.ok != w.ok {
				t.Errorf("%s: %s{%q} counts %v (journeys %v, %v ok), the summary %v (%v, %v ok)", exporter, k.metric, k.name, g.count, g.journeys, g.ok, w.count, w.journeys, w.ok)
			}
			for q, v := range w.q {
				if math.Abs(g.q[q]-v) > 1e-9 {
					t.Errorf("%s: %s{%q} quantile %v = %v s, the summary's %v s", exporter, k.metric, k.name, q, g.q[q], v)
				}
			}
		}
		if len(got) != len(want) {
			t.Errorf("%s: %d series, want %d: %v", exporter, len(got), len(want), got)
		}
	}

	// The scrape, after the run: the collector is still registered.
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	scraped := map[key]exported{}
	label := func(m *dto.Metric, name string) string {
		for _, l := range m.GetLabel() {
			if l.GetName() == name {
				return l.GetValue()
			}
		}
		return ""
	}
	for _, f := range families {
		for _, m := range f.GetMetric() {
			switch f.GetName() {
			case promJourneyDuration, promGroupDuration:
				k := key{f.GetName(), label(m, "journey") + label(m, "group")}
				e := scraped[k]
				e.count, e.q = float64(m.GetSummary().GetSampleCount()), map[float64]float64{}
				for _, q := range m.GetSummary().GetQuantile() {
					e.q[q.GetQuantile()] = q.GetValue()
				}
				scraped[k] = e
			case promJourneys:
				for _, k := range []key{{promJourneyDuration, label(m, "journey")}, {promJourneyDuration, ""}} {
					e := scraped[k]
					if label(m, "class") == "ok" {
						e.ok += m.GetCounter().GetValue()
					}
					e.journeys += m.GetCounter().GetValue()
					scraped[k] = e
				}
			}
		}
	}
	check("scrape", scraped)

	// Remote write: each series' last sample.
	written := map[key]exported{}
	for _, s := range res.RemoteWriteSeries() {
		l := map[string]string{}
		for _, x := range s.Labels {
			l[x.Name] = x.Value
		}
		last := s.Samples[len(s.Samples)-1].Value
		metric := l["__name__"]
		switch metric {
		case promJourneyDuration, promGroupDuration:
			k := key{metric, l["journey"] + l["group"]}
			e := written[k]
			if e.q == nil {
				e.q = map[float64]float64{}
			}
			var q float64
			fmt.Sscan(l["quantile"], &q)
			e.q[q] = last
			written[k] = e
		case promJourneyDuration + "_count", promGroupDuration + "_count":
			k := key{metric[:len(metric)-len("_count")], l["journey"] + l["group"]}
			e := written[k]
			e.count = last
			written[k] = e
		case promJourneys:
			for _, k := range []key{{promJourneyDuration, l["journey"]}, {promJourneyDuration, ""}} {
				e := written[k]
				if l["class"] == "ok" {
					e.ok += last
				}
				e.journeys += last
				written[k] = e
			}
		}
	}
	check("remote write", written)

	// OTLP: the run's points.
	sent := map[key]exported{}
	for _, m := range res.OTLPMetrics().ScopeMetrics[0].Metrics {
		attr := func(set attribute.Set, name string) string {
			v, _ := set.Value(attribute.Key(name))
			return v.AsString()
		}
		switch m.Name {
		case "relia.load.journey.duration", "relia.load.group.duration":
			metric := map[string]string{"relia.load.journey.duration": promJourneyDuration, "relia.load.group.duration": promGroupDuration}[m.Name]
			for _, p := range m.Data.(metricdata.Summary).DataPoints {
				k := key{metric, attr(p.Attributes, "journey") + attr(p.Attributes, "group")}
				e := sent[k]
				e.count, e.q = float64(p.Count), map[float64]float64{}
				for _, q := range p.QuantileValues {
					e.q[q.Quantile] = q.Value
				}
				sent[k] = e
			}
		case "relia.load.journeys":
			for _, p := range m.Data.(metricdata.Sum[int64]).DataPoints {
				for _, k := range []key{{promJourneyDuration, attr(p.Attributes, "journey")}, {promJourneyDuration, ""}} {
					e := sent[k]
					if attr(p.Attributes, "class") == "ok" {
						e.ok += float64(p.Value)
					}
					e.journeys += float64(p.Value)
					sent[k] = e
				}
			}
		}
	}
	check("otlp", sent)
}
