// Package fault is relia's fault injection: a TCP and HTTP fault proxy with
// a Toxiproxy-compatible control API, a per-request HTTP fault filter the
// gateway reuses, and process faults on the local machine.
//
// A fault can be a lease: it ends by itself when its TTL runs out unless a
// runner renews it (Hold does that for a runner), so a fault never outlives
// a runner killed with SIGKILL. Client asks for a lease on every toxic
// (DefaultLeaseTTL unless told otherwise), and process faults always have
// one; a toxic created through Toxiproxy's API without lease_ttl stays until
// removed, as in Toxiproxy, unless the server sets a default lease
// (Options.DefaultTTL). Stopping the server ends all faults and reverts all
// process faults. Each start and end, with the reason (removed, expired,
// reset, shutdown), goes to the audit log.
//
// In front of a model API, HTTP faults fail the way providers do: error
// answers in OpenAI's or Anthropic's shape (ErrorFormat), and faults on a
// Server-Sent Events stream as it passes (a slow first byte, events a
// second, a stall, a truncation or an error event after N events); they
// can match on a member of the JSON body (the model) and on the N-th or
// first N requests:
//
//	srv.AddToxic("llm", strings.NewReader(`{"type":"http","lease_ttl":"2m",
//		"attributes":{"json_field":"model","json_equals":"gpt-4o","stall_after_events":5}}`))
//
// Process faults (ProcessFaults) act on the local machine: kill, restart or
// pause a process (by pid, or by the name of one the server launched), burn
// CPU, hold memory, fill disk. The control API offers them only when the
// server allows them (Options.AllowProcessFaults).
//
// Random decisions (toxicity per connection, jitter, slicing, per-request
// percentages) come from PCG streams derived from one seed, the proxy and
// fault names and the connection's or request's number, so the same seed
// and the same traffic give the same decisions whatever the goroutines do.
//
//	srv, _ := fault.NewServer(fault.Options{Seed: 42})
//	defer srv.Close()
//	srv.CreateProxy(fault.ProxyConfig{Name: "db", Listen: "127.0.0.1:26379", Upstream: "127.0.0.1:6379"})
//	srv.AddToxic("db", strings.NewReader(`{"type":"latency","lease_ttl":"2m","attributes":{"latency":100,"jitter":20}}`))
//	http.ListenAndServe("127.0.0.1:8474", srv.Handler(fault.HandlerOptions{}))
//
// Differences from Toxiproxy, all deliberate:
//   - lease_ttl on a toxic asks for a lease, and
//     POST /proxies/{proxy}/toxics/{toxic}/renew renews it;
//   - unknown fields are errors (Toxiproxy ignores them), as are negative
//     values, toxicity outside [0, 1], names that are not 1 to 128 letters,
//     digits, '-', '_' and '.', and proxies past Options.MaxProxies;
//   - the end of a stream is passed on as a TCP half-close, not a close;
//   - latency delays chunks one after another on a connection;
//   - a proxy may be in HTTP mode, where toxics of type http act per
//     request.
package fault
