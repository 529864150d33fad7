package shop

import (
	"encoding/json"
	"fmt"
	"strings"
)

// The gateway routes of the shop: everything under /api, each service
// under its own prefix.
const (
	RouteProducts        = "products"
	RouteLogin           = "login"
	RouteUsers           = "users"
	RoutePayments        = "payments"
	RouteRecommendations = "recommendations"
	RoutePopular         = "popular"
)

// yamlString quotes s as a YAML double-quoted scalar: a JSON string is
// one.
func yamlString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// GatewayConfig returns a `kind: Gateway` document that puts the shop
// behind relia's gateway: a listener "public" and the admin API on free
// loopback ports (ask the gateway for Addr("public") and AdminAddr()),
// routes under /api:
//
//	GET  /api/products[/{id}]          catalog replicas
//	POST /api/login, GET /api/users/{id}  users
//	POST /api/payments                 payments
//	GET  /api/recommendations/{userId} recommendations
//	GET  /api/popular                  the popular items
//
// With Options.Resilient the routes carry the edge's policies: timeouts
// per request and per try, retries with backoff and a budget (payments
// too: they carry an Idempotency-Key), a breaker per target, health
// checks and outlier ejection for the catalog, and the popular items as
// the recommendations' fallback. Without it they pass requests through:
// one try, no breaker, a 10 s timeout only so a hang cannot last forever.
func (s *Shop) GatewayConfig() []byte {
	var b strings.Builder
	r := s.opts.Resilient
	mode := "plain pass-through"
	if r {
		mode = "resilient"
	}
	fmt.Fprintf(&b, "# The relia demo shop behind the gateway (%s routes).\n", mode)
	b.WriteString(`kind: Gateway
version: relia/v1
metadata:
  name: shop
spec:
  listeners:
    - name: public
      address: 127.0.0.1:0
  admin:
    address: 127.0.0.1:0
  accessLog:
    disabled: true
  upstreams:
`)
	eps := s.Endpoints()
	upstream := func(name string, extra string) {
		fmt.Fprintf(&b, "    - name: %s\n", name)
		if name == ServiceCatalog && r {
			b.WriteString("      balance: least_request\n")
		}
		b.WriteString("      targets:\n")
		for _, u := range eps[name] {
			fmt.Fprintf(&b, "        - address: %s\n", strings.TrimPrefix(u, "http://"))
		}
		if !r {
			b.WriteString("      breaker: {disabled: true}\n")
			return
		}
		b.WriteString(extra)
	}
	ratioBreaker := "      breaker: {failureRatio: 50%, minCalls: 20, window: 10s, openDuration: 5s}\n"
	// Payments fail when the processor does; the breaker opens only when
	// nearly every try fails, so retries ride out a partial outage.
	paymentsBreaker := "      breaker: {failureRatio: 80%, minCalls: 20, window: 10s, openDuration: 5s}\n"
	upstream(ServiceCatalog, `      health:
        active: {path: /healthz, interval: 1s, timeout: 250ms, healthyThreshold: 1, unhealthyThreshold: 2}
        passive: {consecutive5xx: 5, consecutiveConnectErrors: 2, baseEjection: 5s, maxEjection: 30s}
      breaker: {consecutiveFailures: 5, openDuration: 5s}
`)
	upstream(ServiceUsers, ratioBreaker)
	upstream(ServicePayments, paymentsBreaker)
	upstream(ServiceRecommendations, "      breaker: {failureRatio: 50%, minCalls: 10, window: 10s, openDuration: 5s}\n")

	popular := yamlString(string(s.data.popular))
	b.WriteString("  routes:\n")
	route := func(name, method, match, upstream, rewrite, policies string) {
		fmt.Fprintf(&b, "    - name: %s\n      match: {path: {%s}, methods: [%s]}\n      upstream: %s\n      rewrite: {%s}\n",
			name, match, method, upstream, rewrite)
		if !r {
			b.WriteString("      timeout: 10s\n")
			return
		}
		b.WriteString(policies)
	}
	route(RouteProducts, "GET", "prefix: /api/products", ServiceCatalog, "prefix: /products", `      timeout: 1s
      perTryTimeout: 300ms
      retry: {attempts: 3, on: [connect-failure, reset, gateway-error]}
`)
	// A login may be repeated: it changes nothing.
	route(RouteLogin, "POST", "exact: /api/login", ServiceUsers, "path: /login", `      timeout: 2s
      perTryTimeout: 1s
      retry: {attempts: 2, on: [connect-failure, reset, gateway-error], nonIdempotent: true}
`)
	route(RouteUsers, "GET", "prefix: /api/users", ServiceUsers, "prefix: /users", `      timeout: 1s
      perTryTimeout: 300ms
      retry: {attempts: 3}
`)
	// Payments carry an Idempotency-Key, so the gateway retries them: the
	// payments service answers a repeated key with its first verdict.
	route(RoutePayments, "POST", "exact: /api/payments", ServicePayments, "path: /payments", `      timeout: 3s
      perTryTimeout: 1s
      retry: {attempts: 3, on: [5xx, connect-failure, reset]}
`)
	fallback := "      fallback:\n        status: 200\n        headers: {X-Shop-Fallback: popular}\n        body: " + popular + "\n"
	route(RouteRecommendations, "GET", "prefix: /api/recommendations", ServiceRecommendations, "prefix: /recommendations", `      timeout: 500ms
      perTryTimeout: 250ms
      retry: {attempts: 2}
`+fallback)
	route(RoutePopular, "GET", "exact: /api/popular", ServiceRecommendations, "path: /popular", "      timeout: 500ms\n"+fallback)
	return []byte(b.String())
}

// Scenario returns a `kind: Scenario` document (the load package's
// schema) of the shop's traffic through the gateway's /api routes at
// baseURL ("http://127.0.0.1:8080"; empty leaves baseURL out, for a caller
// that sets it): browsing 60% (a page of products 40%, one product 20%),
// recommendations 25%, payments 15%. The setup request logs in and keeps
// the token and user id; every payment carries a fresh Idempotency-Key
// from the uuid generator. Its load (100 requests a second for a minute)
// and thresholds (the demo's SLOs: p95 under 200 ms, errors under 1%) are
// defaults for a run of its own; an experiment sets its phases' load.
func (s *Shop) Scenario(baseURL string) []byte {
	base := ""
	if baseURL != "" {
		base = "  baseURL: " + yamlString(strings.TrimSuffix(baseURL, "/")) + "\n"
	}
	return fmt.Appendf(nil, `# Black Friday traffic for the relia demo shop, through the gateway.
kind: Scenario
version: relia/v1
metadata:
  name: shop
spec:
%[5]s  setup:
    name: login
    method: POST
    path: /api/login
    headers: {Content-Type: application/json}
    body: '{"userId": {{randInt 1 %[1]d}}, "password": "%[2]s"}'
    checks:
      - status: [200]
    extract:
      token: $.token
      userId: $.userId
  requests:
    - name: browse-page
      weight: 40
      path: /api/products?page={{randInt 1 %[3]d}}
      checks:
        - status: [200]
    - name: browse-product
      weight: 20
      path: /api/products/{{randInt 1 %[4]d}}
      checks:
        - status: [200]
    - name: recommendations
      weight: 25
      path: /api/recommendations/{{userId}}
      checks:
        - status: [200]
    - name: pay
      weight: 15
      method: POST
      path: /api/payments
      headers:
        Content-Type: application/json
        Authorization: Bearer {{token}}
        Idempotency-Key: '{{uuid}}'
      body: '{"amountCents": {{randInt 500 20000}}, "currency": "EUR"}'
      checks:
        - status: [201, 402]
  load:
    rate: 100
    duration: 1m
  thresholds:
    http_req_duration: ["p(95)<200"]
    http_req_failed: ["rate<0.01"]
`, NumUsers, DemoPassword, NumPages, NumProducts, base)
}
