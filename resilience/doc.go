// Package resilience protects calls to dependencies in-process: timeouts,
// retries with backoff, jitter and a retry budget, circuit breakers,
// bulkheads, rate limiters, adaptive concurrency limits, fallbacks and
// hedged requests, composed into a Pipeline, and an http.RoundTripper that
// applies them to HTTP calls.
//
// # Policies and pipelines
//
// A Policy decides whether, when and how often the rest of a pipeline runs.
// Policies are built from Settings structs whose zero values are documented
// defaults; a setting out of range is a constructor error. A Pipeline[T]
// runs a func(context.Context) (T, error) under its policies, outermost
// first:
//
//	retry, _ := resilience.NewRetry(resilience.RetrySettings{MaxAttempts: 3})
//	breaker, _ := resilience.NewBreaker(resilience.BreakerSettings{Name: "users"})
//	timeout, _ := resilience.NewTimeout(resilience.TimeoutSettings{Timeout: time.Second})
//	users := resilience.NewPipeline[*User](retry, breaker, timeout)
//
//	u, err := users.Get(ctx, func(ctx context.Context) (*User, error) {
//		return client.User(ctx, id)
//	})
//
// Policies are not generic: they judge an attempt by its error. A
// pipeline's classifier (WithClassifier) turns failing results, such as an
// HTTP 503, into errors before any policy sees them, and its discard hook
// (WithDiscard) releases results that a retry or a hedge superseded, such as
// response bodies. Only Fallback is generic, because it supplies the result;
// a Fallback[T] in a pipeline of another type is reported when the pipeline
// is built (BuildPipeline returns the error, NewPipeline panics).
//
// # Order
//
// The recommended order, outer to inner, is
//
//	Fallback, Retry or Hedge, Breaker, RateLimiter, Bulkhead or adaptive Limiter, Timeout
//
// for these reasons:
//
//   - Fallback outermost covers every failure below it, rejections included.
//   - Retry (or a hedging policy) outside the breaker and the limits sends every new
//     attempt through them afresh: an open breaker stops the retries, and a
//     retry takes a new bulkhead slot rather than holding one while it
//     backs off.
//   - The Breaker outside the limiters counts the dependency's failures,
//     not relia's own rejections from a full bulkhead.
//   - The RateLimiter before the Bulkhead spends no slot on a call it
//     refuses.
//   - The Timeout innermost bounds one attempt; add a second Timeout
//     outermost to bound the whole call, retries included.
//
// # Limits
//
// Four policies bound how much work reaches a dependency:
//
//   - Bulkhead caps concurrent calls; callers beyond the cap wait in FIFO
//     order, up to MaxQueue of them and for at most MaxWait, and are
//     rejected at once when both the slots and the queue are full.
//   - RateLimiter is a token bucket (Rate and Burst, computed as GCRA, so
//     it keeps one timestamp rather than a token count); KeyedRateLimiter
//     keeps one bucket per key (API key, client IP) with at most MaxKeys
//     of them, and idle keys expire.
//   - Limiter is an adaptive concurrency limit that follows measured
//     latency, by AIMD or a gradient in the manner of Netflix's
//     concurrency-limits, never below its floor; its defaults do not
//     reject under normal load.
//
// Each also has a two-step form for callers that are not a function call,
// such as a proxy that answers on another goroutine: Bulkhead.Acquire and
// BulkheadPermit.Release, Limiter.Allow and LimiterPermit.Done,
// Breaker.Allow and BreakerPermit.Done, KeyedRateLimiter.AllowKey and
// AcquireKey. Their rejection reasons are bulkhead_full,
// bulkhead_wait_timeout, rate_limited and concurrency_limited.
//
// # Hedging and HTTP
//
// Hedge sends one more attempt when the first has not answered within a
// delay, fixed or a percentile of recent latencies; the first success
// wins and the others are cancelled, their results passed to the
// pipeline's discard hook. A hedge is not a retry: it does not wait for a
// failure. Hedges and retries may share one RetryBudget, so that neither
// can multiply load on a dependency that is already struggling.
//
// NewTransport wraps an http.RoundTripper in a list of policies. 5xx and
// 429 answers count as failures (a *StatusError carrying the response's
// Retry-After), as do transport errors; only idempotent methods, or
// requests with an Idempotency-Key header, are retried or hedged, with
// their bodies rewound for each attempt. The caller gets the final
// upstream response, and a hedge winner's body stays readable until the
// caller closes it.
//
// # Rejections
//
// A policy that refuses a call returns a *RejectedError naming the policy,
// a machine-readable reason and, where known, when to retry. Test for them
// with errors.Is against the sentinels (ErrBreakerOpen, ErrBulkheadFull,
// ErrRateLimited, ErrTimeout, ...) or ErrRejected for any rejection, and
// read the hint with RetryHintOf.
//
// # Observers and clocks
//
// Every policy takes an Observer that receives Events (success, failure,
// rejections with their reason, retries, state changes), which package
// resilienceprom turns into Prometheus metrics. An Observer that never
// reads Event.Duration says so as a DurationObserver, as resilienceprom's
// does, and spares the breaker the clock reads that would measure it.
// Every policy takes a clock.Clock; nil means the real clock, and tests
// pass clock.NewFake to drive delays, timeouts and breaker windows
// without sleeping. Callers that have read the clock already may pass
// the time in (Retry.StartAt, RetryBudget.DepositAt).
package resilience
