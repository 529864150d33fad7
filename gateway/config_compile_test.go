package gateway

import (
	"strings"
	"testing"
)

// TestParsedConfigCompiles holds validation to its promise: a config that
// Parse accepts builds a gateway. Each case sets one field at the edge of
// what the policy behind it takes; a value the policy refuses must be
// refused by Parse, with its position, not by New at start-up or reload.
func TestParsedConfigCompiles(t *testing.T) {
	t.Parallel()
	routes := []string{
		"adaptive: {initialLimit: 5000}",
		"adaptive: {initialLimit: 1000}",
		"adaptive: {minLimit: 2000}",
		"adaptive: {maxLimit: 3000000000}",
		"adaptive: {initialLimit: 3, minLimit: 5}",
		"bulkhead: {maxConcurrent: 3000000000}",
		"bulkhead: {maxConcurrent: 2147483647, maxQueue: 2147483647, maxWait: 1s}",
		"bulkhead: {maxQueue: 3000000000}",
		"cache: {maxSize: 1}",
		"cache: {maxSize: 1TiB}",
		"hedge: {delay: 1ms, maxHedges: 3}",
		"hedge: {delay: 100000h}",
		"rateLimit: {rate: 1e9, burst: 2000000000}",
		"rateLimit: {rate: 1, burst: 3000000000}",
		"rateLimit: {rate: 0.000001}",
		"retry: {base: 100h}",
		"retry: {attempts: 10, cap: 100000h}",
		"retry: {budget: {ratio: 100%, minPerSecond: 1e12}}",
		"timeout: 100000h",
		"maxBodySize: 1TiB",
		"faults: [{name: f, delay: 100000h, percentage: 100%}]",
		"faults: [{name: f, abortStatus: 599, percentage: 0%}]",
		"fallback: {status: 599}",
		"faults: [{name: f, abortStatus: 150}]",
		"faults: [{name: f, delay: 100us}]",
		"rateLimit: {rate: 2000000, store: redis, redis: {address: \"127.0.0.1:1\"}, onUnreachable: open}",
		"rateLimit: {rate: 0.001, burst: 2000000000, store: redis, redis: {address: \"127.0.0.1:1\"}, onUnreachable: local}",
	}
	upstreams := []string{
		"maxConnections: 3000000000",
		"connectTimeout: 100000h",
		"breaker: {consecutiveFailures: 3000000000}",
		"breaker: {minCalls: 3000000000, failureRatio: 100%}",
		"breaker: {window: 1ms}",
		"breaker: {window: 100000h, openDuration: 100000h}",
		"breaker: {slowCallRatio: 1%, slowCallDuration: 1ns}",
		"health: {active: {interval: 1ms, timeout: 1ms, healthyThreshold: 3000000000}}",
		"health: {passive: {consecutive5xx: 3000000000, baseEjection: 1ns, maxEjectedShare: 100%}}",
	}
	var docs []string
	for _, r := range routes {
		docs = append(docs, validHead+"  routes: [{name: r, upstream: users, "+r+"}]\n")
	}
	for _, u := range upstreams {
		docs = append(docs, strings.Replace(validHead, `targets: [{address: "127.0.0.1:9001"}]`, `targets: [{address: "127.0.0.1:9001"}]`+"\n      "+strings.Replace(u, "\n", "\n      ", -1), 1)+"  routes: [{name: r, upstream: users}]\n")
	}
	for _, doc := range docs {
		cfg, err := Parse("p.yaml", []byte(doc))
		if err != nil {
			t.Logf("refused: %v", err)
			continue
		}
		g, err := New(cfg, Options{AccessLog: discard{}})
		if err != nil {
			t.Errorf("Parse accepted a config New refuses:\n%s\nNew: %v", doc, err)
			continue
		}
		g.closeAccessLog()
	}
}
