// Package aidemo is the embedded AI stack that `relia demo ai` runs its
// experiment against: two simulated model providers (ai/mock, "alpha"
// the primary and "beta" the fallback), relia's AI gateway (package ai)
// in front of them with tenants and token quotas, and a small assistant
// service that answers questions by streaming a model's answer through
// the gateway with its tenant's key. Everything listens on loopback
// ports of its own and is started and stopped in-process.
//
//	st, err := aidemo.Start(ctx, aidemo.Options{Seed: 42, Resilient: true})
//	if err != nil { ... }
//	defer st.Close()
//	url := st.URL() + aidemo.AskPath // POST an OpenAI chat request; "user" names the tenant
//	...
//	st.Provider(aidemo.ProviderA).SetFaults([]mock.Fault{{Kind: mock.FaultStatus, Status: 429, RetryAfter: 2 * time.Second}})
//
// # The assistant
//
// POST /ask takes an OpenAI chat request whose "user" field names the
// tenant (acme, globex or initech), adds the assistant's system prompt
// and streams the model's answer back in OpenAI's stream format. A
// tenant over its quota gets the gateway's 429 as it came (the quota
// named in the body and in X-Relia-Quota, Retry-After set); any other
// failure of the gateway is the assistant's 502.
//
// # Resilience
//
// With Options.Resilient the gateway's route fails over from alpha to
// beta (a 429 rests alpha's key for its Retry-After), hedges on beta a
// call whose first token has not come within HedgeAfter, ends a stream
// that stalls past a short idle timeout with a clean error event, and
// trips a breaker on a provider that keeps failing. Without it, the
// route has alpha alone, one attempt, long timeouts and a breaker that
// never trips: provider faults reach the users.
package aidemo
