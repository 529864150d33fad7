package resilience

import (
	"errors"
	"fmt"
	"time"
)

// Sentinel errors for the conditions callers test with errors.Is. Every
// rejection returned by a policy is a *RejectedError that matches its
// sentinel and ErrRejected.
var (
	// ErrRejected matches every rejection by any policy.
	ErrRejected = errors.New("rejected")
	// ErrBreakerOpen: the circuit breaker is open.
	ErrBreakerOpen = errors.New("circuit breaker open")
	// ErrHalfOpenFull: the breaker is half-open and all probe slots are taken.
	ErrHalfOpenFull = errors.New("circuit breaker half-open: probes in flight")
	// ErrBulkheadFull: the bulkhead's slots and queue are full, or the wait
	// for a slot ran past its limit.
	ErrBulkheadFull = errors.New("bulkhead full")
	// ErrRateLimited: the rate limiter has no token for the call.
	ErrRateLimited = errors.New("rate limited")
	// ErrConcurrencyLimited: the adaptive concurrency limit is reached.
	ErrConcurrencyLimited = errors.New("concurrency limit reached")
	// ErrRetryBudgetExhausted: a retry or hedge was not sent because the
	// retry budget is spent.
	ErrRetryBudgetExhausted = errors.New("retry budget exhausted")
	// ErrTimeout: the Timeout policy's deadline passed. It also matches
	// context.DeadlineExceeded.
	ErrTimeout = errors.New("timeout")
	// ErrRetriesExhausted: all attempts failed; the error wraps the last one.
	ErrRetriesExhausted = errors.New("retries exhausted")
)

// RejectedError is a call refused by a policy. It names the policy and the
// reason (the same reason that appears as a metric label and log field), and
// carries a retry hint where one is known.
type RejectedError struct {
	// Policy is the kind of policy: "breaker", "bulkhead", "ratelimit",
	// "adaptive", "retry", "timeout".
	Policy string
	// Name is the policy instance's name, if it has one (an upstream, say).
	Name string
	// Reason is a short machine-readable reason, e.g. "breaker_open".
	Reason string
	// RetryAfter is when a retry could succeed; zero when unknown.
	RetryAfter time.Duration
	// Sentinel is the sentinel error this rejection matches.
	Sentinel error
}

// Error describes the rejection.
func (e *RejectedError) Error() string {
	s := e.Policy
	if e.Name != "" {
		s += " " + e.Name
	}
	s += ": " + e.Sentinel.Error() + " (" + e.Reason + ")"
	if e.RetryAfter > 0 {
		s += fmt.Sprintf(", retry after %s", e.RetryAfter)
	}
	return s
}

// Is matches ErrRejected and the rejection's sentinel.
func (e *RejectedError) Is(target error) bool {
	return target == ErrRejected || target == e.Sentinel
}

// RetryHint returns the rejection's retry hint.
func (e *RejectedError) RetryHint() (time.Duration, bool) {
	return e.RetryAfter, e.RetryAfter > 0
}

// RetryHinter is implemented by errors that carry a hint of when a retry may
// succeed, such as an HTTP 429 or 503 with Retry-After. Retry honours it.
type RetryHinter interface {
	RetryHint() (time.Duration, bool)
}

// RetryHintOf returns the first retry hint found in err's chain.
func RetryHintOf(err error) (time.Duration, bool) {
	var h RetryHinter
	if errors.As(err, &h) {
		return h.RetryHint()
	}
	return 0, false
}
