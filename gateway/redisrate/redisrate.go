package redisrate

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/relia-dev/relia/clock"
	"github.com/relia-dev/relia/resilience"
)

// Defaults of the Settings fields whose zero value means one.
const (
	// DefaultPrefix starts every key the limiter writes, so that its keys
	// are easy to find and cannot collide with an application's.
	DefaultPrefix = "relia:rl:"
	// DefaultTimeout bounds one call to Redis. A Redis on the same network
	// answers in about a millisecond; waiting longer only adds the wait to
	// every request while Redis is in trouble.
	DefaultTimeout = 50 * time.Millisecond
	// DefaultRecheck is how long a limiter that found Redis unreachable
	// answers by its Unreachable policy before it tries Redis again.
	DefaultRecheck = time.Second
)

// The reasons a Decision gives for a refusal, as metric label and log
// field, the same words resilience uses.
const (
	// ReasonRateLimited: the key spent its tokens.
	ReasonRateLimited = "rate_limited"
	// ReasonUnavailable: Redis is unreachable and the policy is
	// FailClosed.
	ReasonUnavailable = "rate_limit_unavailable"
)

// ErrUnavailable is the sentinel of refusals made because Redis is
// unreachable under FailClosed. Such refusals also match
// resilience.ErrRejected; ordinary ones match resilience.ErrRateLimited.
var ErrUnavailable = errors.New("rate limit store unavailable")

// maxRate bounds Rate: the script counts in whole microseconds.
const maxRate = 1e6

// maxSpan bounds Burst/Rate, in microseconds, so that Redis's time plus
// the span stays exact in a Lua double (2^53 microseconds is 285 years
// after 1970; this leaves a century).
const maxSpan = 1 << 51

// Settings configures a Limiter. Every zero value means the default
// documented on its field, except Rate and OnUnreachable, which have
// none; a value out of range makes New fail.
type Settings struct {
	// Name identifies the limiter in errors, events and metrics.
	Name string
	// Rate is how many calls per second each key may make in the long run,
	// across every replica sharing the Redis. It must be positive and at
	// most 1e6.
	Rate float64
	// Burst is how many calls a key may make at once after a quiet spell.
	// Zero means one second's worth, ceil(Rate), and at least 1; negative
	// is an error.
	Burst int
	// Prefix starts every Redis key the limiter uses. Zero means
	// DefaultPrefix. Limiters whose Prefix is equal share buckets, so give
	// each limit its own (the route's name, say) and keep the Rate and
	// Burst of one prefix the same on every replica.
	Prefix string
	// OnUnreachable says what to answer while Redis cannot: FailOpen,
	// FailClosed or FailLocal. It must be set.
	OnUnreachable Unreachable
	// Timeout bounds each call to Redis. Zero means DefaultTimeout;
	// negative is an error.
	Timeout time.Duration
	// Recheck is how long, after a call to Redis failed, the limiter
	// answers by OnUnreachable without trying Redis, so that requests
	// do not each wait Timeout on a Redis that is down. Then one call
	// tries Redis again. Zero means DefaultRecheck; negative is an error.
	Recheck time.Duration
	// LocalRate and LocalBurst configure the per-process bucket of
	// FailLocal, as Rate and Burst do. Zero means Rate and Burst: each
	// replica alone then lets the whole limit through, so N replicas
	// together let N times it through; set LocalRate to Rate/N to keep
	// the combined limit. Ignored unless OnUnreachable is FailLocal.
	LocalRate  float64
	LocalBurst int
	// Clock times Recheck and the FailLocal bucket; nil means the real
	// clock. The shared buckets run on Redis's clock, whatever this is.
	Clock clock.Clock
	// Observer receives EventRejected, with the refusal's reason, for
	// every call refused; nil means none.
	Observer resilience.Observer
	// OnStateChange, when set, is called when the limiter finds Redis
	// unreachable (degraded true, with the error) and when Redis answers
	// again (degraded false, nil): for a log line and a gauge. It runs on
	// the caller's goroutine and must not block.
	OnStateChange func(degraded bool, err error)
}

// Decision is a Limiter's answer for one call.
type Decision struct {
	// Allowed says whether the call may go ahead.
	Allowed bool
	// Remaining is how many more calls the key may make now, for an
	// X-RateLimit-Remaining header. It is 0 in degraded decisions, where
	// the shared bucket is unknown.
	Remaining int
	// RetryAfter is, for a refused call, how long until a retry could be
	// allowed: until the key's next token, or, under FailClosed, until the
	// limiter tries Redis again. Zero when allowed.
	RetryAfter time.Duration
	// Degraded says that Redis was unreachable and the answer is
	// OnUnreachable's.
	Degraded bool
	// Reason is "" when allowed, else ReasonRateLimited or
	// ReasonUnavailable.
	Reason string
}

// Limiter is a token bucket per key, shared through Redis by every
// process that uses the same Redis, Prefix, Rate and Burst: gateway
// replicas behind one balancer enforce one combined limit per API key or
// client. It decides exactly as resilience.KeyedRateLimiter does (the
// same generic cell rate algorithm), in one Lua script run atomically in
// Redis, on Redis's clock.
//
// Each call is one round trip: EVALSHA, or EVAL when Redis has lost the
// script (after a restart or SCRIPT FLUSH), after which EVALSHA works
// again. Keys are stored as a SHA-256 of the caller's key, so API keys
// and other secrets never appear in Redis, and a long key costs no more
// memory than a short one. Each key expires once its bucket is full
// again, so idle keys leave nothing behind.
//
// When Redis fails to answer within Timeout, the call is answered by
// OnUnreachable and marked Degraded; for Recheck after that every call is
// answered so without waiting on Redis, then one call tries Redis again.
//
// A Limiter is safe for concurrent use.
type Limiter struct {
	client      redis.UniversalClient
	name        string
	prefix      string
	interval    int64 // microseconds per token
	burst       int64
	policy      Unreachable
	timeout     time.Duration
	recheck     time.Duration
	local       *resilience.KeyedRateLimiter
	clock       clock.Clock
	epoch       time.Time
	observer    resilience.Observer
	onChange    func(bool, error)
	intervalArg string
	burstArg    string

	degraded atomic.Bool
	// nextTry is when, in nanoseconds since epoch, a degraded limiter may
	// next try Redis; a caller claims the try by moving it on.
	nextTry atomic.Int64
}

// New returns a Limiter over client, or an error naming the first setting
// out of range. client must bound its calls by the context's deadline
// (ContextTimeoutEnabled in go-redis's options) or Timeout would not
// bound them: New refuses a *redis.Client, *redis.ClusterClient or
// *redis.Ring without it.
func New(client redis.UniversalClient, s Settings) (*Limiter, error) {
	l, err := newLimiter(client, s)
	if err != nil {
		if s.Name != "" {
			return nil, fmt.Errorf("redis rate limiter %s: %w", s.Name, err)
		}
		return nil, fmt.Errorf("redis rate limiter: %w", err)
	}
	return l, nil
}

// CheckRate returns the error New gives for a Rate and Burst it refuses
// (a rate above a million per second, a burst that takes too long to
// refill), or nil: a config can be checked before any Redis is there.
func CheckRate(rate float64, burst int) error {
	_, _, err := bucket(rate, burst)
	return err
}

// bucket is the script's interval between tokens, in microseconds, and
// the burst (a second's worth when burst is 0) of rate and burst.
func bucket(rate float64, burst int) (interval, b int64, err error) {
	switch {
	case math.IsNaN(rate) || rate <= 0 || rate > maxRate:
		return 0, 0, fmt.Errorf("rate %v: must be positive and at most %g per second", rate, float64(maxRate))
	case burst < 0:
		return 0, 0, fmt.Errorf("burst %d: must not be negative", burst)
	}
	interval = int64(maxRate / rate) // rounded down: never stricter than rate
	b = int64(burst)
	if b == 0 {
		b = int64(math.Max(1, math.Ceil(rate)))
	}
	if b > maxSpan/interval {
		return 0, 0, fmt.Errorf("burst %d: takes too long to refill at rate %v", b, rate)
	}
	return interval, b, nil
}

func newLimiter(client redis.UniversalClient, s Settings) (*Limiter, error) {
	switch {
	case client == nil:
		return nil, errors.New("client: must not be nil")
	case !contextTimeouts(client):
		return nil, errors.New("client: must have ContextTimeoutEnabled so that Timeout bounds each call")
	case s.OnUnreachable == 0 || s.OnUnreachable > FailLocal:
		return nil, fmt.Errorf("on unreachable %d: must be FailOpen, FailClosed or FailLocal", s.OnUnreachable)
	case s.Timeout < 0:
		return nil, fmt.Errorf("timeout %s: must not be negative", s.Timeout)
	case s.Recheck < 0:
		return nil, fmt.Errorf("recheck %s: must not be negative", s.Recheck)
	}
	interval, burst, err := bucket(s.Rate, s.Burst)
	if err != nil {
		return nil, err
	}
	c := clock.OrReal(s.Clock)
	l := &Limiter{
		client:      client,
		name:        s.Name,
		prefix:      s.Prefix,
		interval:    interval,
		burst:       burst,
		policy:      s.OnUnreachable,
		timeout:     s.Timeout,
		recheck:     s.Recheck,
		clock:       c,
		epoch:       c.Now(),
		observer:    s.Observer,
		onChange:    s.OnStateChange,
		intervalArg: strconv.FormatInt(interval, 10),
		burstArg:    strconv.FormatInt(burst, 10),
	}
	if l.prefix == "" {
		l.prefix = DefaultPrefix
	}
	if l.timeout == 0 {
		l.timeout = DefaultTimeout
	}
	if l.recheck == 0 {
		l.recheck = DefaultRecheck
	}
	if s.OnUnreachable == FailLocal {
		rate, lb := s.LocalRate, s.LocalBurst
		if rate == 0 {
			rate = s.Rate
			if lb == 0 {
				lb = int(burst)
			}
		}
		local, err := resilience.NewKeyedRateLimiter(resilience.KeyedRateLimiterSettings{Name: s.Name, Rate: rate, Burst: lb, Clock: c})
		if err != nil {
			return nil, fmt.Errorf("local fallback: %w", err)
		}
		l.local = local
	}
	return l, nil
}

// contextTimeouts reports whether the client honours context deadlines,
// or true when its options cannot be read.
func contextTimeouts(c redis.UniversalClient) bool {
	switch c := c.(type) {
	case *redis.Client:
		return c.Options().ContextTimeoutEnabled
	case *redis.ClusterClient:
		return c.Options().ContextTimeoutEnabled
	case *redis.Ring:
		return c.Options().ContextTimeoutEnabled
	}
	return true
}

// Name returns the limiter's name.
func (l *Limiter) Name() string { return l.name }

// Burst returns each key's bucket capacity.
func (l *Limiter) Burst() int { return int(l.burst) }

// Degraded reports whether the last call to Redis failed, for a
// readiness check.
func (l *Limiter) Degraded() bool { return l.degraded.Load() }

// Allow takes one token from key's shared bucket and reports whether
// there was one.
//
// The error is non-nil only when ctx ended before Redis answered: the
// caller has gone and the Decision is empty. Redis being unreachable is
// not an error but a Degraded decision, answered by OnUnreachable.
func (l *Limiter) Allow(ctx context.Context, key string) (Decision, error) {
	if l.degraded.Load() {
		now := l.now()
		next := l.nextTry.Load()
		if now < next {
			return l.byPolicy(key, next-now), nil
		}
		if !l.nextTry.CompareAndSwap(next, now+int64(l.recheck)) {
			// Another call is trying Redis now.
			return l.byPolicy(key, int64(l.recheck)), nil
		}
	}
	d, err := l.ask(ctx, key)
	if err != nil {
		if ctx.Err() != nil {
			return Decision{}, fmt.Errorf("asking redis: %w", ctx.Err())
		}
		l.nextTry.Store(l.now() + int64(l.recheck))
		if !l.degraded.Swap(true) && l.onChange != nil {
			l.onChange(true, err)
		}
		return l.byPolicy(key, int64(l.recheck)), nil
	}
	if l.degraded.Swap(false) && l.onChange != nil {
		l.onChange(false, nil)
	}
	if !d.Allowed {
		l.rejected(ReasonRateLimited)
	}
	return d, nil
}

// Acquire is Allow returning a refusal as a *resilience.RejectedError,
// with the Decision's reason and retry hint, ready for a proxy to render:
// matching resilience.ErrRateLimited for a spent bucket and ErrUnavailable
// for a refusal under FailClosed. Like Allow, it returns ctx's error when
// ctx ended first.
func (l *Limiter) Acquire(ctx context.Context, key string) error {
	d, err := l.Allow(ctx, key)
	if err != nil || d.Allowed {
		return err
	}
	sentinel := resilience.ErrRateLimited
	if d.Reason == ReasonUnavailable {
		sentinel = ErrUnavailable
	}
	return &resilience.RejectedError{Policy: "ratelimit", Name: l.name, Reason: d.Reason, RetryAfter: d.RetryAfter, Sentinel: sentinel}
}

// ask runs the script for key.
func (l *Limiter) ask(ctx context.Context, key string) (Decision, error) {
	ctx, cancel := context.WithTimeout(ctx, l.timeout)
	defer cancel()
	res, err := gcraScript.Run(ctx, l.client, []string{l.redisKey(key)}, l.intervalArg, l.burstArg, 1).Int64Slice()
	if err != nil {
		return Decision{}, err
	}
	if len(res) != 3 {
		return Decision{}, fmt.Errorf("rate limit script returned %d values, want 3", len(res))
	}
	if res[0] == 1 {
		return Decision{Allowed: true, Remaining: int(res[1])}, nil
	}
	return Decision{Remaining: int(res[1]), RetryAfter: time.Duration(res[2]) * time.Microsecond, Reason: ReasonRateLimited}, nil
}

// byPolicy answers a call while Redis is unreachable; retry is when the
// limiter will try Redis next, in nanoseconds from now.
func (l *Limiter) byPolicy(key string, retry int64) Decision {
	d := Decision{Degraded: true}
	switch l.policy {
	case FailOpen:
		d.Allowed = true
	case FailClosed:
		d.Reason, d.RetryAfter = ReasonUnavailable, time.Duration(max(retry, 0))
	case FailLocal:
		var wait time.Duration
		if d.Allowed, wait = l.local.AllowKey(key); !d.Allowed {
			d.Reason, d.RetryAfter = ReasonRateLimited, wait
		}
	}
	if !d.Allowed {
		l.rejected(d.Reason)
	}
	return d
}

// redisKey is the prefix and a hash of key: fixed length whatever the
// key, and no secret in Redis's keyspace.
func (l *Limiter) redisKey(key string) string {
	sum := sha256.Sum256([]byte(key))
	var buf [32]byte
	hex.Encode(buf[:], sum[:16]) // 128 bits: collisions are out of reach
	return l.prefix + string(buf[:])
}

func (l *Limiter) now() int64 { return int64(l.clock.Since(l.epoch)) }

func (l *Limiter) rejected(reason string) {
	if l.observer != nil {
		l.observer.Observe(resilience.Event{Kind: resilience.EventRejected, Policy: "ratelimit", Name: l.name, Reason: reason})
	}
}
