// Package gateway is relia's resilient reverse proxy: the single entry point
// in front of a set of services that applies relia's resilience policies at
// the edge (timeouts, retries with a budget, a breaker per upstream target,
// bulkheads, rate limits, health checking and fallbacks), so every service
// behind it gets them without code changes, and records every proxied request
// as one outcome.Outcome.
//
// A gateway is configured by a `kind: Gateway` document (see Config), read
// strictly with file:line:col errors, and reloaded atomically:
//
//	cfg, err := gateway.LoadFile("gateway.yaml")
//	if err != nil { ... } // gateway.yaml:12:7: spec.routes[0].upstream: unknown upstream "user"
//	gw, err := gateway.New(cfg, gateway.Options{Registry: prometheus.NewRegistry()})
//	if err != nil { ... }
//	go gw.Run(ctx) // listeners, admin API, health checks; returns when ctx ends and drained
//
// # Engine
//
// The HTTP/1.1 hot path runs on fasthttp (a fasthttp.Server in front;
// behind, fasthttp's request and response types written and read over
// kept-alive connections the gateway pools per target), the rest of the
// gateway (route table, pools, balancers, health, policies, recorder, logs,
// metrics) is independent of it. The choice was made by measurement on the
// two-core benchmark machine, wrk on CPU 0 and the proxy on CPU 1: a bare
// fasthttp proxy forwards 22.4k req/s where httputil.ReverseProxy forwards
// 12.1k (nginx 27-28.5k), because fasthttp reuses request and response
// objects and parses headers into byte slices without allocating, while
// net/http allocates a Request, a Header map and a goroutine-heavy transport
// round trip for every request. The policies at the edge would cost less than
// that difference.
//
// What fasthttp does not do is served without giving up its speed on the
// common path:
//   - HTTP/2 (TLS with ALPN "h2", or h2c) listeners run on net/http, whose
//     requests are converted into the same fasthttp request context and go
//     through the same handler (see Listener.TLS and Listener.H2C);
//   - WebSocket and other Upgrade requests are hijacked and spliced to the
//     chosen target as raw bytes after the upstream's 101;
//   - streaming responses (no Content-Length, chunked, text/event-stream)
//     are passed through as a body stream that owns its upstream
//     connection until the client has it all, instead of being buffered;
//     a response of known length is read whole, allocating nothing.
//
// A proxied request allocates nothing in the steady state (pinned by
// TestProxyDoesNotAllocate): the exchange is pooled, metric children are
// cached per label set, the access log line is appended by hand, and the
// clock is read once at the start and once at the end of each attempt.
package gateway
