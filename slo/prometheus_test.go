package slo

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/relia-dev/relia/internal/promtest"
	"github.com/relia-dev/relia/outcome"
)

// shop is a small instrumented service the integration test drives: each
// request to /work answers with the status and reports the latency the
// test asks for, to Prometheus metrics (scraped at /metrics) and to a
// relia outcome recorder, so that both paths see the same traffic.
type shop struct {
	srv      *httptest.Server
	rec      *outcome.Recorder
	mu       sync.Mutex
	total    int
	failed   int
	fastOnes int // at or under 200ms
}

func newShop(t *testing.T) *shop {
	t.Helper()
	rec, err := outcome.NewRecorder(outcome.Options{})
	if err != nil {
		t.Fatal(err)
	}
	s := &shop{rec: rec}
	reg := prometheus.NewRegistry()
	reqs := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "http_requests_total", Help: "Requests by status code."}, []string{"code"})
	dur := prometheus.NewHistogram(prometheus.HistogramOpts{Name: "http_server_request_duration_seconds", Help: "Request latency.",
		Buckets: []float64{0.05, 0.1, 0.2, 0.5, 1}})
	reg.MustRegister(reqs, dur)
	// Both codes exist from the first scrape, at zero, so that rate()
	// extrapolates the two counters alike.
	reqs.WithLabelValues("200")
	reqs.WithLabelValues("500")
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("/work", func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		code, _ := strconv.Atoi(r.URL.Query().Get("code"))
		ms, _ := strconv.Atoi(r.URL.Query().Get("ms"))
		latency := time.Duration(ms) * time.Millisecond
		reqs.WithLabelValues(strconv.Itoa(code)).Inc()
		dur.Observe(latency.Seconds())
		rec.Record(outcome.Outcome{Start: start, Latency: latency, Status: code, Class: outcome.ClassifyResponse(code, nil)})
		s.mu.Lock()
		s.total++
		if code >= 500 {
			s.failed++
		}
		if latency <= 200*time.Millisecond {
			s.fastOnes++
		}
		s.mu.Unlock()
		w.WriteHeader(code)
	})
	s.srv = httptest.NewServer(mux)
	t.Cleanup(s.srv.Close)
	return s
}

// drive sends n requests, failing those with i%failEvery == failEvery/2
// and making those with i%slowEvery == slowEvery/2 slow (300ms), in
// batches of 50 every 100ms so that Prometheus scrapes them as a stream.
func (s *shop) drive(ctx context.Context, t *testing.T, n, failEvery, slowEvery int) {
	t.Helper()
	for i := 0; i < n; i++ {
		code, ms := 200, 20
		if failEvery > 0 && i%failEvery == failEvery/2 {
			code = 500
		}
		if slowEvery > 0 && i%slowEvery == slowEvery/2 {
			ms = 300
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("%s/work?code=%d&ms=%d", s.srv.URL, code, ms), nil)
		resp, err := s.srv.Client().Do(req)
		if err != nil {
			t.Fatalf("driving the shop: %v", err)
		}
		resp.Body.Close()
		if i%50 == 49 {
			select {
			case <-ctx.Done():
				t.Fatal("driving the shop: out of time")
			case <-time.After(100 * time.Millisecond): // real time: Prometheus scrapes on its own clock
			}
		}
	}
}

func (s *shop) counts() (total, failed, fast int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.total, s.failed, s.fastOnes
}

// startPrometheus runs Debian's prometheus on a free loopback port with
// its own storage, scraping target every second and evaluating rules
// every second; it stops when the test ends.
func startPrometheus(t *testing.T, target, rules string) string {
	t.Helper()
	return promtest.Start(t, fmt.Sprintf(`global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files: [%q]
scrape_configs:
  - job_name: shop
    static_configs:
      - targets: [%q]
`, rules, target))
}

// poll calls f every 200ms until it returns true or ctx ends.
func poll(ctx context.Context, f func() bool) bool {
	for {
		if f() {
			return true
		}
		select {
		case <-ctx.Done():
			return false
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// TestPrometheusIntegration runs the generated rules in a real Prometheus
// scraping a service the test drives: relia slo status must report the
// SLIs the test produced within 0.1 percentage points, the in-run
// evaluator must agree with it on the same traffic, and an injected
// error burst must make the page alert pending.
func TestPrometheusIntegration(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	slos, err := Parse("shop.yaml", []byte(`kind: SLO
version: relia/v1
metadata: {name: availability}
spec:
  service: shop
  objective: 99%
  sli:
    availability:
      errorQuery: sum(rate(http_requests_total{job="shop",code=~"5.."}[{{.window}}]))
      totalQuery: sum(rate(http_requests_total{job="shop"}[{{.window}}]))
  alerting:
    page: {for: 10m}
---
kind: SLO
version: relia/v1
metadata: {name: latency}
spec:
  service: shop
  objective: 95%
  sli:
    latency:
      metric: http_server_request_duration_seconds
      selector: job="shop"
      threshold: 200ms
`))
	if err != nil {
		t.Fatal(err)
	}
	rules, err := Rules(slos)
	if err != nil {
		t.Fatal(err)
	}
	data, err := rules.Marshal("integration test")
	if err != nil {
		t.Fatal(err)
	}
	rulesFile := filepath.Join(t.TempDir(), "rules.yaml")
	if err := os.WriteFile(rulesFile, data, 0o644); err != nil {
		t.Fatal(err)
	}
	shop := newShop(t)
	url := startPrometheus(t, shop.srv.Listener.Addr().String(), rulesFile)
	c, err := NewPromClient(url, nil)
	if err != nil {
		t.Fatal(err)
	}
	// Wait for a first scrape, of counters at zero.
	if !poll(ctx, func() bool { s, err := c.Query(ctx, `up{job="shop"} == 1`); return err == nil && len(s) == 1 }) {
		t.Fatal("prometheus never scraped the shop")
	}

	start := time.Now()
	shop.drive(ctx, t, 3000, 200, 25) // 0.5% failing, 4% slow
	end := time.Now().Add(time.Second)
	total, failed, fast := shop.counts()
	want := map[string]float64{
		"shop-availability": 1 - float64(failed)/float64(total),
		"shop-latency":      float64(fast) / float64(total),
	}
	var st []Status
	converged := poll(ctx, func() bool {
		st, err = FetchStatus(ctx, c, "shop-availability", "shop-latency")
		if err != nil || len(st) != 2 {
			return false
		}
		for _, s := range st {
			if s.SLI == nil || math.Abs(*s.SLI-want[s.ID]) > 0.001 {
				return false
			}
		}
		return true
	})
	if !converged {
		t.Fatalf("status never reported the produced SLIs %v within 0.1 points: %+v (last error %v)", want, st, err)
	}
	for _, s := range st {
		t.Logf("%s: produced %.4f%%, prometheus %.4f%%", s.ID, want[s.ID]*100, *s.SLI*100)
		if len(s.Alerts) != 0 {
			t.Errorf("%s: alerts before the burst: %+v", s.ID, s.Alerts)
		}
		if s.BudgetRemaining == nil || *s.BudgetRemaining <= 0 {
			t.Errorf("%s: budget remaining %v, want some left", s.ID, s.BudgetRemaining)
		}
	}
	// validate --prometheus reads the live buckets (0.05, 0.1, 0.2, 0.5,
	// 1): a 200ms threshold sits on one, 150ms does not.
	for _, tc := range []struct {
		threshold string
		err       string
	}{{"200ms", ""}, {"150ms", "threshold: 150ms (0.15s) is not a bucket bound of the histogram (the nearest are 0.1 and 0.2)"}} {
		got, err := Parse("lat.yaml", []byte(spec("lat", "  objective: 95%\n  sli:\n    latency: {metric: http_server_request_duration_seconds, selector: 'job=\"shop\"', threshold: "+tc.threshold+"}\n")))
		if err != nil {
			t.Fatal(err)
		}
		err = got[0].CheckBuckets(ctx, c)
		if tc.err == "" && err != nil || tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("CheckBuckets(%s) = %v, want %q", tc.threshold, err, tc.err)
		}
	}
	// The in-run evaluator over the same traffic agrees.
	for i, s := range slos {
		ev, err := Evaluate(s, shop.rec, start.Add(-time.Second), end)
		if err != nil {
			t.Fatal(err)
		}
		if ev.Total != int64(total) || math.Abs(ev.SLI-*st[i].SLI) > 0.001 {
			t.Errorf("%s: in-run SLI %.4f%% over %d events, prometheus %.4f%% over %d", s.ID(), ev.SLI*100, ev.Total, *st[i].SLI*100, total)
		}
	}

	// An error burst: 2000 failures, far above the page's 14.4% of a 1%
	// budget over both its windows.
	shop.drive(ctx, t, 2000, 1, 0)
	burstEnd := time.Now()
	var page *AlertStatus
	pending := poll(ctx, func() bool {
		st, err := FetchStatus(ctx, c, "shop-availability")
		if err != nil {
			return false
		}
		for _, a := range st[0].Alerts {
			if a.Severity == Page {
				page = &a
			}
		}
		return page != nil
	})
	if !pending || page.State != "pending" || page.Name != "ShopAvailabilityBudgetBurn" {
		t.Fatalf("page alert after the burst: %+v", page)
	}
	t.Logf("page alert %s %s %v after the burst ended", page.Name, page.State, time.Since(burstEnd).Round(time.Millisecond))
}
