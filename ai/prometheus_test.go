package ai

import (
	"fmt"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/relia-dev/relia/ai/mock"
	"github.com/relia-dev/relia/internal/promtest"
	"github.com/relia-dev/relia/slo"
)

// TestPrometheusScrapesGenAIMetrics runs Debian's prometheus against the
// AI gateway's metrics: after known calls, PromQL over the scraped
// series finds the GenAI semantic conventions' metrics with their
// counts and token sums.
func TestPrometheusScrapesGenAIMetrics(t *testing.T) {
	_, a := startMock(t, mock.Options{OutputTokens: 7})
	g := startService(t, sdkConfig, nil, Options{}, a, a)
	const n = 5
	for range n {
		if code, _ := chatAs(t, g.url, "sk-acme", "gpt-4o-mini"); code != 200 {
			t.Fatal(code)
		}
		resp := postJSON(t, g.url+"/v1/chat/completions", `{"model":"claude-3-5-haiku-latest","stream":true,"messages":[{"role":"user","content":"hi"}]}`, "Authorization", "Bearer sk-acme")
		streamText(t, resp.Body)
	}
	chatAs(t, g.url, "sk-narrow", "gpt-4o-mini") // refused: outcome rejected
	metrics := httptest.NewServer(promhttp.HandlerFor(g.reg, promhttp.HandlerOpts{}))
	t.Cleanup(metrics.Close)

	target := metrics.Listener.Addr().String()
	prom := promtest.Start(t, fmt.Sprintf("global: {scrape_interval: 1s}\nscrape_configs:\n  - job_name: ai\n    static_configs: [{targets: [%q]}]\n", target))

	queries := map[string]float64{
		`sum(gen_ai_client_operation_duration_seconds_count{gen_ai_request_model="gpt-4o-mini",outcome="ok",tenant="acme"})`:                                                                            n,
		`sum(gen_ai_client_operation_duration_seconds_count{outcome="rejected",tenant="narrow"})`:                                                                                                       1,
		`sum(gen_ai_client_token_usage_sum{gen_ai_token_type="output",gen_ai_provider_name="anthropic"})`:                                                                                               7 * n,
		`sum(gen_ai_server_time_to_first_token_seconds_count{gen_ai_request_model="claude-3-5-haiku-latest"})`:                                                                                          n,
		`sum(gen_ai_server_time_per_output_token_seconds_count{gen_ai_request_model="claude-3-5-haiku-latest"})`:                                                                                        n,
		`count(relia_ai_cost_usd_total{tenant="acme"} > 0)`:                                                                                                                                             2,
		`sum(gen_ai_server_time_to_first_token_seconds_bucket{le="0.5",gen_ai_request_model="gpt-4o-mini"}) / sum(gen_ai_server_time_to_first_token_seconds_count{gen_ai_request_model="gpt-4o-mini"})`: 1,
	}
	deadline := time.Now().Add(30 * time.Second)
	for q, want := range queries {
		for {
			got, ok := promtest.Query(prom, q)
			if ok && got == want {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s = %v (found %v), want %v", q, got, ok, want)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
}

// TestTTFTSLO: an SLO on time to first token is written over the
// gateway's histogram, with a threshold that is one of its buckets.
func TestTTFTSLO(t *testing.T) {
	t.Parallel()
	slos, err := slo.ReadFiles(filepath.Join("..", "examples", "ai-slo.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range slos {
		l := s.Spec.SLI.Latency
		if l == nil {
			continue
		}
		var buckets []float64
		switch l.Metric {
		case "gen_ai_server_time_to_first_token_seconds":
			buckets = ttftBuckets
		case "gen_ai_server_time_per_output_token_seconds":
			buckets = tpotBuckets
		default:
			t.Fatalf("%s: metric %s", s.ID(), l.Metric)
		}
		if err := slo.CheckThreshold(l.Threshold, buckets); err != nil {
			t.Errorf("%s: %v", s.ID(), err)
		}
	}
	if _, err := slo.Rules(slos); err != nil {
		t.Fatal(err)
	}
}
