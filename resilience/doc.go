// Package resilience protects calls to dependencies in-process: timeouts,
// retries with backoff, jitter and a retry budget, circuit breakers,
// bulkheads, rate limiters, adaptive concurrency limits and fallbacks,
// composed into a Pipeline.
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
// rejections with their reason, retries, state changes), which
// package resilienceprom turns into Prometheus metrics. Every policy takes a
// clock.Clock; nil means the real clock, and tests pass clock.NewFake to
// drive delays, timeouts and breaker windows without sleeping.
package resilience
