// Package redisrate is a rate limit per key (API key, tenant, client IP)
// shared through Redis, so that every replica of the gateway enforces one
// combined limit rather than one limit each.
//
// It makes the same decisions as resilience.KeyedRateLimiter, the
// gateway's local limiter: a token bucket of Rate tokens a second and
// Burst at once, kept as one timestamp per key (the generic cell rate
// algorithm). Here the timestamp lives in Redis and one Lua script reads
// and moves it atomically, on Redis's clock, so replicas whose clocks
// disagree still agree on every decision. Refusals carry the same reason,
// "rate_limited", and the same retry hint.
//
//	client := redis.NewClient(&redis.Options{Addr: "redis:6379", ContextTimeoutEnabled: true})
//	limiter, err := redisrate.New(client, redisrate.Settings{
//		Name:          "api",
//		Rate:          100, // per second, per key, across all replicas
//		Burst:         200,
//		Prefix:        "relia:rl:api:",
//		OnUnreachable: redisrate.FailOpen,
//	})
//	...
//	d, err := limiter.Allow(ctx, apiKeyID)
//	if err != nil {
//		return // the client went away
//	}
//	if !d.Allowed {
//		// 429 with Retry-After: d.RetryAfter, reason d.Reason
//	}
//
// # When Redis is unreachable
//
// A shared limit depends on Redis, so every Limiter must say what to do
// without it: Settings.OnUnreachable has no default. FailOpen lets calls
// through, FailClosed refuses them with reason "rate_limit_unavailable"
// (a 503 rather than a 429: the caller did nothing wrong), and FailLocal
// falls back to a token bucket in each process at LocalRate. Such answers
// are marked Decision.Degraded. A limiter that found Redis unreachable
// does not try it again for Settings.Recheck, so that requests do not
// each wait Timeout on a Redis that is down, and returns to shared
// decisions as soon as Redis answers.
//
// # Keys in Redis
//
// Each key is stored under Prefix and a SHA-256 of the caller's key: a
// secret used as a key (an API key) never appears in Redis, and an
// attacker-chosen header value of any length costs a fixed 32 bytes.
// Keys expire once their bucket would be full again.
package redisrate
