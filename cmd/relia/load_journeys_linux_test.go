package main

import (
	"fmt"
	"math"
	"net"
	"testing"
	"time"

	"github.com/relia-dev/relia/internal/promtest"
)

// TestLoadJourneyMetricsInARealPrometheus runs two journeys (one walks a
// group of two requests, the other fails on a 503) while a real
// Prometheus scrapes --metrics-addr every 100ms, with --metrics-hold so
// that it reads the final figures, and receives the run by --remote-write.
// In both, the journeys, their ok share and the percentiles of
// journey_duration and group_duration are the run's summary's.
func TestLoadJourneyMetricsInARealPrometheus(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	metricsAddr := ln.Addr().String()
	ln.Close()
	prom := promtest.Start(t, fmt.Sprintf("global: {scrape_interval: 100ms, scrape_timeout: 100ms}\nscrape_configs:\n  - job_name: relia\n    static_configs: [{targets: [%q]}]\n", metricsAddr),
		"--web.enable-remote-write-receiver")
	_, sum := loadJourneys(t, "--metrics-addr", metricsAddr, "--metrics-hold", "10s", "--remote-write", prom+"/api/v1/write")
	// The scrape's series carry job="relia"; the pushed ones the scenario.
	for _, sel := range []string{`job="relia"`, `scenario="journey-metrics"`} {
		// The last sample of each series: the scrape's series went stale
		// when relia ended.
		q := func(expr string) string { return fmt.Sprintf(expr, "last_over_time", sel) }
		var got float64
		deadline := time.Now().Add(10 * time.Second)
		for {
			v, ok := promQuery(t, prom, q(`sum(%s(relia_load_journeys_total{%s}[1m]))`))
			if got = v; ok && v == sum["journeys"].Values["count"] || time.Now().After(deadline) {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		if want := sum["journeys"].Values["count"]; got != want || want != 30 {
			t.Errorf("%s: Prometheus counts %v journeys, the summary %v (want 30)", sel, got, want)
		}
		checks := []struct {
			expr string
			want float64
		}{
			{`sum(%s(relia_load_journeys_total{%s,journey="browse",class="ok"}[1m]))`, sum["journey_success{journey:browse}"].Values["passes"]},
			{`sum(%s(relia_load_journeys_total{%s,class="ok"}[1m])) / sum(%[1]s(relia_load_journeys_total{%[2]s}[1m]))`, sum["journey_success"].Values["rate"]},
			{`%s(relia_load_journey_duration_seconds{%s,journey="",quantile="0.95"}[1m])`, sum["journey_duration"].Values["p(95)"] / 1000},
			{`%s(relia_load_journey_duration_seconds{%s,journey="browse",quantile="0.5"}[1m])`, sum["journey_duration{journey:browse}"].Values["med"] / 1000},
			{`%s(relia_load_journey_duration_seconds_count{%s,journey="lost"}[1m])`, sum["journeys{journey:lost}"].Values["count"]},
			{`%s(relia_load_group_duration_seconds{%s,group="::list",quantile="0.99"}[1m])`, sum["group_duration{group:::list}"].Values["p(99)"] / 1000},
			{`%s(relia_load_group_duration_seconds_count{%s,group=""}[1m])`, sum["group_duration"].Values["count"]},
		}
		for _, c := range checks {
			if v, ok := promQuery(t, prom, q(c.expr)); !ok || math.Abs(v-c.want) > 1e-9 || c.want == 0 {
				t.Errorf("%s = %v (%v), the summary's %v", q(c.expr), v, ok, c.want)
			}
		}
	}
}
