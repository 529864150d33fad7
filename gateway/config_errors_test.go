package gateway

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/relia-dev/relia/internal/config"
	"github.com/relia-dev/relia/internal/config/configtest"
)

// TestValidationErrorsGolden pins every message validation gives, with
// its file:line:col and field path, in testdata/errors.golden (rewrite
// it with -update when a change to a message is meant).
func TestValidationErrorsGolden(t *testing.T) {
	t.Parallel()
	const head = "kind: Gateway\nversion: relia/v1\nspec:\n"
	listeners := "  listeners: [{address: \"127.0.0.1:8080\"}]\n"
	ups := "  upstreams:\n    - name: users\n      targets: [{address: \"127.0.0.1:9001\"}]\n"
	route := "  routes: [{name: r, upstream: users}]\n"
	doc := func(parts ...string) string { return head + strings.Join(parts, "") }
	cases := []struct{ name, src string }{
		{"no listeners", doc("  listeners: []\n", ups, route)},
		{"bad listeners", doc("  listeners:\n    - {address: nowhere}\n    - {address: \"127.0.0.1:8080\"}\n    - {address: \":8080\", h2c: true, tls: {certFile: c, keyFile: k}}\n", ups, route)},
		{"bad engines", doc("  listeners:\n    - {address: \"127.0.0.1:8081\", engine: epoll}\n    - {address: \"127.0.0.1:8082\", engine: eventloop, h2c: true}\n    - {address: \"127.0.0.1:8083\", engine: eventloop, tls: {certFile: c, keyFile: k}}\n    - {address: \"127.0.0.1:8084\", engine: eventloop}\n", ups, route)},
		{"bad admin address", doc(listeners, "  admin: {address: nine}\n", ups, route)},
		{"open admin", doc(listeners, "  admin: {address: \"0.0.0.0:9901\"}\n", ups, route)},
		{"admin on a listener's port", doc(listeners, "  admin: {address: \"127.0.0.1:8080\"}\n", ups, route)},
		{"unknown escaped-slash choice", doc(listeners, "  server: {escapedSlashes: encode}\n", ups, route)},
		{"bad latency buckets", doc(listeners, "  metrics: {latencyBuckets: [0.1, 0.05, -1]}\n", ups, route)},
		{"bad trusted proxy", doc(listeners, "  trustedProxies: [10.0.0.0/8, 10.0.0.300, \"fe80::/129\"]\n", ups, route)},
		{"auth without credentials", doc(listeners, "  auth: {keyHeader: X-Key}\n", ups, route)},
		{"bad issuers", doc(listeners, "  auth:\n    jwt:\n      - {issuer: a}\n      - {issuer: a, jwksFile: k.json, jwksURL: \"https://idp/jwks\", jwksRefresh: 10ms}\n      - {jwksURL: \"file:///etc/jwks\"}\n      - {issuer: d, secretFile: s, jwksRefresh: 1m}\n", ups, route)},
		{"bad upstreams", doc(listeners, "  upstreams:\n"+
			"    - name: users\n      targets: [{address: \"127.0.0.1:9001\"}]\n"+
			"    - name: users\n      targets: []\n"+
			"    - name: b\n      targets: [{address: b}, {address: \"127.0.0.1:1\", weight: 1001}]\n      balance: fastest\n      maxConnections: -1\n"+
			"    - name: c\n      targets: [{address: \"127.0.0.1:2\"}]\n      hashOn: {header: X-User}\n"+
			"    - name: d\n      targets: [{address: \"127.0.0.1:3\"}]\n      balance: hash\n      hashOn: {header: X-User, clientIP: true}\n", route)},
		{"bad health", doc(listeners, "  upstreams:\n    - name: users\n      targets: [{address: \"127.0.0.1:9001\"}]\n      health:\n"+
			"        active: {path: healthz, interval: 1s, timeout: 1s, healthyThreshold: -1}\n"+
			"        passive: {consecutive5xx: -1, baseEjection: 1m, maxEjection: 30s}\n", route)},
		{"health against the defaults", doc(listeners, "  upstreams:\n    - name: users\n      targets: [{address: \"127.0.0.1:9001\"}]\n      health:\n"+
			"        active: {timeout: 6s}\n        passive: {maxEjection: 10s}\n", route)},
		{"a listener on the default admin port", doc("  listeners: [{address: \"127.0.0.1:9901\"}]\n", ups, route)},
		{"bad breaker", doc(listeners, "  upstreams:\n    - name: users\n      targets: [{address: \"127.0.0.1:9001\"}]\n      breaker: {consecutiveFailures: -1}\n", route)},
		{"route names and targets", doc(listeners, ups, "  routes:\n    - {name: r, upstream: users}\n    - {name: r, upstream: user}\n    - {name: s}\n")},
		{"bad matches", doc(listeners, ups, "  routes:\n    - name: r\n      upstream: users\n      match:\n        path: {regex: \"(\"}\n        hosts: [\"a b\", \"*.*.x\", \"x.*\", \"\"]\n        methods: [get, \"\"]\n    - name: s\n      upstream: users\n      match: {path: {prefix: api}}\n")},
		{"two path kinds", doc(listeners, ups, "  routes:\n    - name: t\n      upstream: users\n      match: {path: {exact: /a, prefix: /b}}\n")},
		{"bad rewrites", doc(listeners, ups, "  routes:\n    - {name: r, upstream: users, rewrite: {prefix: /x}}\n    - {name: s, upstream: users, rewrite: {prefix: /x, path: /y}, match: {path: {prefix: /a}}}\n    - {name: t, upstream: users, rewrite: {}}\n")},
		{"bad timeouts", doc(listeners, ups, "  routes: [{name: r, upstream: users, timeout: 1s, perTryTimeout: 2s}]\n")},
		{"negative duration", doc(listeners, ups, "  routes: [{name: r, upstream: users, timeout: -1s}]\n")},
		{"bad retry", doc(listeners, ups, "  routes: [{name: r, upstream: users, retry: {attempts: 11, base: 1s, cap: 10ms, on: [5xx, sometimes], budget: {minPerSecond: -1}}}]\n")},
		{"bad bulkhead and adaptive", doc(listeners, ups, "  routes:\n    - {name: r, upstream: users, bulkhead: {maxConcurrent: -1}}\n    - {name: s, upstream: users, bulkhead: {maxWait: 1s}}\n    - {name: t, upstream: users, adaptive: {minLimit: 10, maxLimit: 5}}\n")},
		{"past the bounds of the policies", doc(listeners, ups, "  routes:\n"+
			"    - {name: a, upstream: users, adaptive: {initialLimit: 5000}}\n"+
			"    - {name: b, upstream: users, adaptive: {minLimit: 2000}}\n"+
			"    - {name: c, upstream: users, bulkhead: {maxConcurrent: 3000000000}}\n"+
			"    - {name: d, upstream: users, rateLimit: {rate: 1, burst: 3000000000}}\n"+
			"    - {name: e, upstream: users, rateLimit: {rate: 2000000, store: redis, redis: {address: \"127.0.0.1:6379\"}, onUnreachable: open}}\n"+
			"    - {name: f, upstream: users, faults: [{name: f, delay: 100000h}, {name: g, abortStatus: 150}]}\n")},
		{"bad rate limits", doc(listeners, ups, "  routes:\n"+
			"    - {name: a, upstream: users, rateLimit: {rate: 0, burst: -1, key: client_ip, header: X-A}}\n"+
			"    - {name: b, upstream: users, rateLimit: {rate: 2e9, key: header}}\n"+
			"    - {name: c, upstream: users, rateLimit: {rate: 1, key: cookie, store: disk}}\n"+
			"    - {name: d, upstream: users, rateLimit: {rate: 1, onUnreachable: open}}\n"+
			"    - {name: e, upstream: users, rateLimit: {rate: 1, store: redis}}\n"+
			"    - {name: f, upstream: users, rateLimit: {rate: 1, store: redis, redis: {address: redis}, onUnreachable: maybe}}\n"+
			"    - {name: g, upstream: users, rateLimit: {rate: 1, store: redis, redis: {address: \"127.0.0.1:6379\", db: -1}, onUnreachable: open}}\n")},
		{"bad hedges", doc(listeners, ups, "  routes:\n    - {name: r, upstream: users, hedge: {delay: 0s, maxHedges: 4}}\n    - {name: s, hedge: {delay: 10ms}, fallback: {status: 503}}\n")},
		{"bad upgrades and cache", doc(listeners, ups, "  routes: [{name: r, upstream: users, upgrades: [websocket, h2c], cache: {maxSize: 1MiB, maxEntrySize: 2MiB}}]\n")},
		{"bad route auth", doc(listeners, ups, "  routes:\n    - {name: r, upstream: users, auth: required}\n    - {name: s, upstream: users, auth: maybe}\n")},
		{"bad fallback and faults", doc(listeners, ups, "  routes:\n    - name: r\n      fallback: {status: 99}\n      faults:\n        - {name: f, abortStatus: 600}\n        - {name: f}\n")},
		{"bad model api faults", doc(listeners, ups, "  routes:\n    - name: r\n      upstream: users\n      faults:\n"+
			"        - {name: a, abortStatus: 429, errorFormat: azure}\n"+
			"        - {name: b, stallAfterEvents: -1, truncateAfterEvents: 2}\n"+
			"        - {name: c, errorAfterEvents: 2, jsonEquals: gpt-4o}\n"+
			"        - {name: d, abortStatus: 503, firstByteDelay: 1s, nthRequest: 2, firstRequests: 1}\n"+
			"        - {name: e, errorType: rate_limit_error, eventsPerSecond: -2, retryAfter: 2s}\n")},
		{"two gateways", doc(listeners, ups, route) + "---\n" + doc(listeners, ups, route)},
		{"no gateway", "kind: SLO\nversion: relia/v1\n"},
	}
	var out strings.Builder
	for _, tc := range cases {
		_, err := Parse("gw.yaml", []byte(tc.src))
		fmt.Fprintf(&out, "== %s\n", tc.name)
		if err == nil {
			t.Errorf("%s: no error", tc.name)
			continue
		}
		for _, line := range strings.Split(err.Error(), "\n") {
			if !strings.HasPrefix(line, "gw.yaml:") {
				t.Errorf("%s: error line %q does not name the file", tc.name, line)
			}
		}
		var ce *config.Error
		if !errors.As(err, &ce) && tc.name != "no gateway" {
			t.Errorf("%s: %v is not a *config.Error", tc.name, err)
		}
		fmt.Fprintf(&out, "%s\n", err)
	}
	configtest.Golden(t, filepath.Join("testdata", "errors.golden"), []byte(out.String()))
}
