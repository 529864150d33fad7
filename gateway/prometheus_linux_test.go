package gateway

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/relia-dev/relia/internal/promtest"
)

// TestPrometheusScrapesGateway runs Debian's prometheus on its own
// loopback port against the admin API's /metrics: after a known number of
// requests, a PromQL query over the scraped series returns that count.
func TestPrometheusScrapesGateway(t *testing.T) {
	b := newBackend(t, "b")
	g, gw := startGateway(t, fmt.Sprintf(`
  upstreams: [{name: b, targets: [{address: %s}]}]
  routes: [{name: counted, upstream: b}]
`, b.addr()), Options{})
	const n = 37
	for range n {
		if status, _, _ := get(t, "GET", gw+"/", nil); status != 200 {
			t.Fatal(status)
		}
	}
	prom := promtest.Start(t, fmt.Sprintf("global: {scrape_interval: 1s}\nscrape_configs:\n  - job_name: gateway\n    static_configs: [{targets: [%q]}]\n", g.AdminAddr()))
	q := `sum(http_server_request_duration_seconds_count{http_route="counted",http_response_status_code="200"})`
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for {
		if v, ok := promtest.Query(prom, q); ok && v == n {
			return
		} else if ctx.Err() != nil {
			t.Fatalf("query %s: got %v (ok %v), want %d", q, v, ok, n)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
