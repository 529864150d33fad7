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
// The gateway serves HTTP/1.1 itself, a goroutine per connection on the
// runtime's network poller with raw syscalls (internal/rawio), and every
// message on both sides is read and written by relia's own codec
// (internal/h1): no second parser's reading frames a request, so what two
// servers could read two ways is refused by construction rather than
// corrected after the fact (docs/gateway.md, "What the edge refuses").
// Requests are the gateway's own type: the head as slices of the
// connection's buffer, the body streamed in bounded pieces (held whole up
// to 64 KiB so that a retry or hedge can resend it), so memory follows
// bytes received. Targets are reached through gateway/upstream's kept-alive
// connections; responses stream back through the connection's buffer.
// On Linux a plain listener runs on event loops by default
// (listeners[].engine: auto or eventloop, engine_loop_linux.go): the common
// proxied request runs whole in a loop through the same pipeline, and
// every other connection is handed to the goroutine engine.
//
// TLS is terminated here; after the handshake ALPN h2 goes to Go's
// HTTP/2 server (golang.org/x/net/http2) behind a guard that bounds
// stream resets, and HTTP/2 requests are converted into the same request
// type. WebSocket upgrades are spliced as bytes once the target answered
// 101, on routes that list the protocol.
//
// A proxied request allocates nothing in the steady state (pinned by
// TestProxyDoesNotAllocate): the exchange is pooled, metric children are
// cached per label set, the access log line is appended by hand, and the
// clock is read once at the start and once at the end of each attempt.
package gateway
