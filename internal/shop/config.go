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
	RouteCart            = "cart"
	RouteCheckout        = "checkout"
	RouteReceipts        = "receipts"
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
// every replica of a service a target of the service's pool, and routes
// under /api:
//
//	GET  /api/products[/{id}]          catalog
//	POST /api/login, GET /api/users/{id}  users
//	POST /api/payments                 payments
//	GET  /api/recommendations/{userId} recommendations
//	GET  /api/popular                  the popular items
//	GET  /api/cart, POST /api/cart/items  the cart (in a cookie)
//	POST /api/checkout                 a payment, 303 to its receipt
//	GET  /api/payments/{id}            the receipt
//
// With Options.Resilient every pool and route carries the edge's
// policies:
//
//   - a per-try timeout under each route's overall one, so a hanging or
//     paused replica costs one try, not the request;
//   - retries on another replica with backoff and a retry budget (20% of
//     the route's requests plus 5 a second), for idempotent requests:
//     GETs, payments (they carry an Idempotency-Key, and the payments
//     service answers a repeated key with its first verdict) and logins
//     (which change nothing);
//   - a breaker per target, active health checks (GET /healthz every
//     second) and passive outlier ejection (connect errors, resets and
//     timeouts in a row), so a dead or paused replica leaves its pool
//     within a second or two;
//   - the popular items as the static fallback of the recommendations and
//     popular routes. The gateway serves a fallback only when no target
//     of the pool may be tried (every breaker open, every replica
//     unhealthy or ejected), not on a 5xx: a failing try is retried on
//     another replica, and the recommendations' breakers trip after three
//     failures in a row, so a recommendations outage turns into fallbacks
//     within a few requests.
//
// Without Resilient the routes pass requests through: one try, no
// breaker, no health checks, no fallback, an overall timeout of 10 s only
// so that a hang cannot last for ever.
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
	for _, u := range gatewayUpstreams {
		fmt.Fprintf(&b, "    - name: %s\n", u.service)
		b.WriteString("      targets:\n")
		for _, ep := range eps[u.service] {
			fmt.Fprintf(&b, "        - address: %s\n", strings.TrimPrefix(ep, "http://"))
		}
		if !r {
			b.WriteString("      breaker: {disabled: true}\n")
			continue
		}
		fmt.Fprintf(&b, `      balance: least_request
      health:
        active: {path: /healthz, interval: 1s, timeout: 250ms, healthyThreshold: 1, unhealthyThreshold: 2}
        passive: {consecutive5xx: %d, consecutiveConnectErrors: 2, baseEjection: 5s, maxEjection: 30s}
      breaker: {%s, openDuration: 5s}
`, u.consecutive5xx, u.breaker)
	}

	fallback := "      fallback:\n        status: 200\n        headers: {X-Shop-Fallback: popular}\n        body: " +
		yamlString(string(s.data.popular)) + "\n"
	b.WriteString("  routes:\n")
	for _, rt := range gatewayRoutes {
		fmt.Fprintf(&b, "    - name: %s\n      match: {path: {%s}, methods: [%s]}\n      upstream: %s\n      rewrite: {%s}\n",
			rt.name, rt.match, rt.method, rt.upstream, rt.rewrite)
		if !r {
			b.WriteString("      timeout: 10s\n")
			continue
		}
		fmt.Fprintf(&b, "      timeout: %s\n      perTryTimeout: %s\n", rt.timeout, rt.perTry)
		fmt.Fprintf(&b, "      retry: {attempts: %d, on: [%s], budget: {ratio: 20%%, minPerSecond: 5}", rt.attempts, rt.retryOn)
		if rt.nonIdempotent {
			b.WriteString(", nonIdempotent: true")
		}
		b.WriteString("}\n")
		if rt.fallback {
			b.WriteString(fallback)
		}
	}
	return []byte(b.String())
}

// Routes returns the names of the gateway's routes, in config order:
// what a gateway fault in an experiment may name.
func Routes() []string {
	out := make([]string, len(gatewayRoutes))
	for i, r := range gatewayRoutes {
		out[i] = r.name
	}
	return out
}

// gatewayUpstream is the resilient policy of one service's pool.
type gatewayUpstream struct {
	service string
	// consecutive5xx ejects a replica after this many 5xx in a row. Where
	// a service's 5xx mirror a dependency's failure rather than its own
	// (payments answer 502 when the processor fails), it is high: every
	// replica would fail alike, and ejecting them only thins the pool.
	consecutive5xx int
	breaker        string // the breaker's trip rules, in flow style
}

var gatewayUpstreams = []gatewayUpstream{
	{ServiceCatalog, 5, "consecutiveFailures: 5"},
	{ServiceUsers, 5, "failureRatio: 50%, minCalls: 20, window: 10s"},
	// Payments fail when the processor does; the breaker opens only when
	// nearly every try fails, so retries ride out a partial outage.
	{ServicePayments, 100, "failureRatio: 80%, minCalls: 20, window: 10s"},
	// Three failures in a row open a recommendations replica's breaker:
	// with every replica's open, the route serves its fallback.
	{ServiceRecommendations, 5, "consecutiveFailures: 3, failureRatio: 50%, minCalls: 10, window: 10s"},
}

// gatewayRoute is one route of the shop's gateway config and its
// resilient policies.
type gatewayRoute struct {
	name, method, match, upstream, rewrite string
	timeout, perTry                        string
	attempts                               int
	retryOn                                string
	nonIdempotent                          bool // a login may be repeated: it changes nothing
	fallback                               bool // the popular items
}

const (
	// onConnectErrors retries what never reached a service's handler, or
	// what a proxy in front of one gave up on.
	onConnectErrors = "connect-failure, reset, gateway-error"
	// onServerErrors retries any 5xx too: safe for requests a repeat does
	// not change.
	onServerErrors = "5xx, connect-failure, reset"
)

var gatewayRoutes = []gatewayRoute{
	{name: RouteProducts, method: "GET", match: "prefix: /api/products", upstream: ServiceCatalog, rewrite: "prefix: /products",
		timeout: "1s", perTry: "300ms", attempts: 3, retryOn: onConnectErrors},
	{name: RouteLogin, method: "POST", match: "exact: /api/login", upstream: ServiceUsers, rewrite: "path: /login",
		timeout: "2s", perTry: "1s", attempts: 2, retryOn: onConnectErrors, nonIdempotent: true},
	{name: RouteUsers, method: "GET", match: "prefix: /api/users", upstream: ServiceUsers, rewrite: "prefix: /users",
		timeout: "1s", perTry: "300ms", attempts: 3, retryOn: onConnectErrors},
	// Payments carry an Idempotency-Key, so the gateway retries them, 5xx
	// included: the payments service answers a repeated key with its
	// first verdict and forgets a key that reached none.
	{name: RoutePayments, method: "POST", match: "exact: /api/payments", upstream: ServicePayments, rewrite: "path: /payments",
		timeout: "3s", perTry: "1s", attempts: 3, retryOn: onServerErrors},
	// A try outlasts the service's own catalog policy (two calls of
	// CatalogCallTimeout, then its in-process fallback), so the service's
	// answer, personalised or popular, comes back before the gateway
	// gives up on it.
	{name: RouteRecommendations, method: "GET", match: "prefix: /api/recommendations", upstream: ServiceRecommendations, rewrite: "prefix: /recommendations",
		timeout: "1s", perTry: "400ms", attempts: 2, retryOn: onServerErrors, fallback: true},
	{name: RoutePopular, method: "GET", match: "exact: /api/popular", upstream: ServiceRecommendations, rewrite: "path: /popular",
		timeout: "500ms", perTry: "250ms", attempts: 2, retryOn: onServerErrors, fallback: true},
	// The cart lives in its cookie, so adding to it again adds nothing a
	// retry could double: the gateway may retry it like a GET.
	{name: RouteCart, method: "GET, POST", match: "prefix: /api/cart", upstream: ServiceCatalog, rewrite: "prefix: /cart",
		timeout: "1s", perTry: "300ms", attempts: 3, retryOn: onConnectErrors, nonIdempotent: true},
	// Checkout is a payment answered with a redirect to its receipt; it
	// carries an Idempotency-Key like the payments route.
	{name: RouteCheckout, method: "POST", match: "exact: /api/checkout", upstream: ServicePayments, rewrite: "path: /checkout",
		timeout: "3s", perTry: "1s", attempts: 3, retryOn: onServerErrors},
	{name: RouteReceipts, method: "GET", match: "prefix: /api/payments/", upstream: ServicePayments, rewrite: "prefix: /payments/",
		timeout: "1s", perTry: "300ms", attempts: 3, retryOn: onConnectErrors},
}

// Scenario returns a `kind: Scenario` document (the load package's
// schema) of the shop's traffic through the gateway's /api routes at
// baseURL ("http://127.0.0.1:8080"; empty leaves baseURL out, for a caller
// that sets it), as users walking journeys, each with its own cookies:
//
//   - browse (60% of users): a page of products, then one product;
//   - cart (25%): browse, add a product to the cart (a cookie) and view
//     it, then the recommendations;
//   - checkout (15%): log in (the session cookie), add to the cart, view
//     it and keep its total, then check out: a payment of the total with
//     a fresh Idempotency-Key, answered 303 and followed to its receipt,
//     or 402 for a declined card.
//
// About 3.2 requests a user. Its load (6 users a second for a minute) and
// thresholds (the demo's SLOs on requests: p95 under 200 ms, errors under
// 1%; and 99% of journeys succeeding) are defaults for a run of its own;
// an experiment sets its phases' load.
func (s *Shop) Scenario(baseURL string) []byte { return ScenarioYAML(baseURL) }

// RequestsPerUser is about how many requests one user of the shop's
// scenario sends, for a caller that sizes a rate of users from a rate of
// requests.
const RequestsPerUser = 3.2

// ScenarioYAML is Shop.Scenario without a running shop: the traffic does
// not depend on one, so an experiment can be written out before the shop
// starts.
func ScenarioYAML(baseURL string) []byte {
	base := ""
	if baseURL != "" {
		base = "  baseURL: " + yamlString(strings.TrimSuffix(baseURL, "/")) + "\n"
	}
	return fmt.Appendf(nil, `# Black Friday traffic for the relia demo shop, through the gateway: users
# walking journeys, each with its own cookies.
kind: Scenario
version: relia/v1
metadata:
  name: shop
spec:
%[5]s  headers: {Content-Type: application/json}
  journeys:
    - name: browse
      weight: 60
      steps:
        - group: browse
          steps:
            - request: {name: browse-page, path: '/api/products?page={{randInt 1 %[3]d}}', checks: [{status: [200]}]}
            - {think: 10ms, thinkMax: 40ms}
            - request: {name: browse-product, path: '/api/products/{{randInt 1 %[4]d}}', checks: [{status: [200]}]}
    - name: cart
      weight: 25
      steps:
        - group: browse
          steps:
            - request: {name: browse-page, path: '/api/products?page={{randInt 1 %[3]d}}', checks: [{status: [200]}]}
            - request: {name: browse-product, path: '/api/products/{{randInt 1 %[4]d}}', checks: [{status: [200]}]}
        - group: cart
          steps:
            - request:
                name: add-to-cart
                method: POST
                path: /api/cart/items
                body: '{"productId": {{randInt 1 %[4]d}}}'
                checks: [{status: [200]}]
            - request: {name: view-cart, path: /api/cart, checks: [{status: [200]}, {jsonPath: $.count, equals: "1"}]}
        - {think: 10ms, thinkMax: 40ms}
        - request: {name: recommendations, path: '/api/recommendations/{{randInt 1 %[1]d}}', checks: [{status: [200]}]}
    - name: checkout
      weight: 15
      setup:
        - request:
            name: login
            method: POST
            path: /api/login
            body: '{"userId": {{randInt 1 %[1]d}}, "password": "%[2]s"}'
            checks: [{status: [200]}]
      steps:
        - group: cart
          steps:
            - request:
                name: add-to-cart
                method: POST
                path: /api/cart/items
                body: '{"productId": {{randInt 1 %[4]d}}}'
                checks: [{status: [200]}]
            - request:
                name: view-cart
                path: /api/cart
                extract: {total: $.totalCents}
                checks: [{status: [200]}]
        - {think: 10ms, thinkMax: 40ms}
        - group: checkout
          steps:
            # The session cookie says who pays; the answer is 303 to the
            # receipt, which is followed, or 402 for a declined card.
            - request:
                name: checkout
                method: POST
                path: /api/checkout
                headers: {Idempotency-Key: '{{uuid}}'}
                body: '{"amountCents": {{total}}, "currency": "EUR"}'
                expectedStatuses: [200, 402]  # a declined card is an answer, not a failure
                checks: [{status: [200, 402]}]
  load:
    rate: 6   # users a second: about 20 requests a second
    duration: 1m
    # The generator's own tolerance: the shop is judged on 200 ms, so the
    # generator may send a request up to 50 ms late, a quarter of that;
    # when more than 10%% leave later, the run is inconclusive, not failed.
    lateAfter: 50ms
  thresholds:
    http_req_duration: ["p(95)<200"]
    http_req_failed: ["rate<0.01"]
    journey_success: ["rate>0.99"]
    "group_duration{group:::checkout}": ["p(95)<1000"]
`, NumUsers, DemoPassword, NumPages, NumProducts, base)
}
