// Package shop is the demo shop that `relia demo` runs its "Black Friday"
// experiment against: small, cheap, realistic services, each an HTTP/1.1
// JSON server on a loopback port of its own, all started and stopped
// in-process, so the demo needs nothing outside the binary.
//
//	s, err := shop.Start(ctx, shop.Options{Seed: 42, Latency: true, Resilient: true})
//	if err != nil { ... }
//	defer s.Close()
//	cfg, _ := gateway.Parse("shop", s.GatewayConfig()) // the shop behind relia's gateway
//	scenario := s.Scenario(gatewayURL)                // its traffic, for the load generator
//	...
//	s.Processor().SetFaults(shop.ProcessorFaults{Latency: 300 * time.Millisecond, ErrorRate: 0.2})
//	s.Catalog(1).Kill()    // a crash: refused connections, resets in flight
//	s.Catalog(1).Restart() // back on the same port
//	s.Replicas(shop.ServicePayments)[0].Kill() // any service can crash
//	s.Catalog(2).Pause()   // a SIGSTOP: connections accepted, nothing answered
//	s.Catalog(2).Resume()  // a SIGCONT: what it held is answered
//	s.Processor().Via(proxyURL)                // payments reach the processor through a fault proxy
//
// # Services
//
// Every service runs Options.Replicas[service] replicas, each on a port of
// its own (default 3 of the catalog, 1 of the others; the processor always
// runs one), and every answer carries X-Shop-Replica with the replica's
// index. The gateway config lists every replica of a service as a target
// of its pool.
//
//   - catalog: GET /products?page=N (20 a page, 500 products),
//     GET /products/{id}.
//   - users: POST /login {"userId": 1..1000, "password": "demo"} returns a
//     bearer token; GET /users/{id} needs one. Tokens are signed with a
//     secret every service shares, so any service checks them alone.
//   - payments: POST /payments {"amountCents", "currency"} with a token and
//     an Idempotency-Key; it charges through the processor over HTTP. A
//     repeated key gets the first verdict (marked Idempotent-Replayed), so
//     retries through the gateway never charge twice.
//   - processor: the flaky payment provider payments depends on. It fails
//     a small share of charges by itself and takes the faults the
//     experiment switches (Processor.SetFaults): added latency, an error
//     rate, a hang, applied through fault.HTTPFilter like every HTTP fault
//     in relia.
//   - recommendations: GET /recommendations/{userId} reads the catalog over
//     HTTP and personalises slowly; GET /popular is the static stand-in.
//     With Options.Resilient it guards its catalog calls in-process
//     (timeout, retry on the next replica, resilience.Fallback to the
//     popular items); the gateway config falls back to the same items.
//
// Every service serves GET /healthz and GET /metrics
// (http_server_request_duration_seconds by http_route,
// http_request_method and http_response_status_code) and records its
// server-side outcomes into Options.Recorders.
//
// # Determinism
//
// Data, service times and every fault decision come from Options.Seed and
// counters (the n-th draw of a named stream), not from goroutine timing,
// so a seed replays the same shop. Service times (Options.Latency) are
// slept on Options.Clock; without Latency the services answer at once,
// which is what tests want.
package shop
