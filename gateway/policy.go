package gateway

import (
	"bytes"
	"fmt"
	"math"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/relia-dev/relia/clock"
	"github.com/relia-dev/relia/fault"
	"github.com/relia-dev/relia/gateway/cache"
	"github.com/relia-dev/relia/resilience"
)

// Retry defaults, used where a Retry field is left zero. They are shorter
// than resilience's library defaults: at the edge a retry must fit in the
// client's patience, not a batch job's.
const (
	DefaultRetryAttempts = 3
	DefaultRetryBase     = 25 * time.Millisecond
	DefaultRetryCap      = 250 * time.Millisecond
)

// retryWhen is a set of retry conditions.
type retryWhen uint8

const (
	retry5xx retryWhen = 1 << iota
	retryGatewayError
	retryConnect
	retryReset
	retry409
	retry429
)

// retryPolicy is a route's compiled Retry: resilience's own policy, driven
// a step at a time (RetryCall), judging failures by the route's retry.on.
type retryPolicy struct {
	policy   *resilience.Retry
	when     retryWhen
	grpcWhen uint32 // gRPC codes retried, a bit each (grpc.go)
	nonIdem  bool
	budget   *resilience.RetryBudget
}

// attemptFailure is how an attempt failed, as the route's Retry is told
// of it: the target's status, or how no answer came.
type attemptFailure struct {
	status int
	kind   errKind
}

func (f *attemptFailure) Error() string {
	if f.kind != errNone {
		return "upstream attempt failed: " + f.kind.String()
	}
	return "upstream answered " + strconv.Itoa(f.status)
}

// route is a compiled Route: its matcher, pool and policies, built once
// per config generation and read without locks by every request.
type route struct {
	cfg     Route
	name    string
	match   *matcher
	pool    *pool
	timeout time.Duration
	perTry  time.Duration
	maxBody int

	retry    *retryPolicy
	bulkhead *resilience.Bulkhead
	limiter  *resilience.Limiter
	rate     *resilience.KeyedRateLimiter
	shared   *sharedLimit // the rate limit when it is kept in Redis
	cache    *cache.Cache
	// cacheMaxEntry is the largest body the cache would keep.
	cacheMaxEntry int64
	auth          string // AuthRequired, AuthOptional or AuthNone
	hedge         *hedgePolicy
	faults        *fault.HTTPFilter
	// faultHandler is faults wrapped around passThrough, built once.
	faultHandler http.Handler
	fallback     *fallbackResponse

	// quickStart says nothing on the route holds a request up before its
	// first attempt (no bulkhead queue, fault delay, Redis call or
	// credential check), so the attempt may start at the request's start.
	quickStart bool

	// names of headers to remove
	reqRemove, respRemove []string
	// the fields set and added, as bytes, built once
	reqSet, reqAdd, respSet, respAdd [][2][]byte
	// hostSet is the Host requestHeaders.set gives; nil without.
	hostSet []byte
	// upgrades are the protocols a client may switch to (lower case).
	upgrades []string
}

// allowsUpgrade reports whether the route lets a client switch to proto.
func (r *route) allowsUpgrade(proto []byte) bool {
	for _, p := range r.upgrades {
		if bytes.EqualFold(proto, []byte(p)) {
			return true
		}
	}
	return false
}

// fieldPairs turns a config map of fields into name and value bytes, in
// name order so that what goes upstream does not change from one request
// to the next.
func fieldPairs(m map[string]string) [][2][]byte {
	names := make([]string, 0, len(m))
	for k := range m {
		names = append(names, k)
	}
	sort.Strings(names)
	out := make([][2][]byte, 0, len(m))
	for _, k := range names {
		out = append(out, [2][]byte{[]byte(http.CanonicalHeaderKey(k)), []byte(m[k])})
	}
	return out
}

// fallbackResponse is a Fallback ready to write.
type fallbackResponse struct {
	status      int
	body        []byte
	contentType []byte
	headers     [][2][]byte
}

func breakerSettings(name string, b *Breaker, clk clock.Clock, obs resilience.Observer) (resilience.BreakerSettings, error) {
	s := resilience.BreakerSettings{Name: name, Clock: clk, Observer: obs}
	if b != nil {
		s.ConsecutiveFailures = b.ConsecutiveFailures
		s.FailureRatio = float64(b.FailureRatio)
		s.SlowCallRatio = float64(b.SlowCallRatio)
		s.SlowCallDuration = b.SlowCallDuration
		s.MinCalls = b.MinCalls
		s.WindowDuration = b.Window
		s.OpenDuration = b.OpenDuration
	}
	// Validate by building one: the resilience package owns the rules.
	if _, err := resilience.NewBreaker(s); err != nil {
		return s, err
	}
	return s, nil
}

// buildRoute compiles r; pools holds this generation's pools by name.
func buildRoute(r Route, pools map[string]*pool, srv Server, clk clock.Clock, obs resilience.Observer) (*route, error) {
	m, err := compileMatch(r.Match)
	if err != nil {
		return nil, err
	}
	rt := &route{cfg: r, name: r.Name, match: m, pool: pools[r.Upstream]}
	rt.timeout = r.Timeout
	if rt.timeout == 0 {
		rt.timeout = DefaultRouteTimeout
	}
	rt.perTry = r.PerTryTimeout
	if rt.perTry == 0 || rt.perTry > rt.timeout {
		rt.perTry = rt.timeout
	}
	rt.maxBody = int(r.MaxBodySize)
	if rt.maxBody == 0 {
		rt.maxBody = int(srv.MaxBodyBytes)
	}
	for _, h := range r.RequestHeaders.Remove {
		rt.reqRemove = append(rt.reqRemove, http.CanonicalHeaderKey(h))
	}
	for _, h := range r.ResponseHeaders.Remove {
		rt.respRemove = append(rt.respRemove, http.CanonicalHeaderKey(h))
	}
	for _, kv := range fieldPairs(r.RequestHeaders.Set) {
		if strings.EqualFold(string(kv[0]), "Host") {
			rt.hostSet = kv[1] // the Host line is written apart
			continue
		}
		rt.reqSet = append(rt.reqSet, kv)
	}
	rt.reqAdd = fieldPairs(r.RequestHeaders.Add)
	rt.respSet = fieldPairs(r.ResponseHeaders.Set)
	rt.respAdd = fieldPairs(r.ResponseHeaders.Add)
	for _, u := range r.Upgrades {
		rt.upgrades = append(rt.upgrades, strings.ToLower(u))
	}
	if c := r.Retry; c != nil {
		p := &retryPolicy{nonIdem: c.NonIdempotent}
		attempts := c.Attempts
		if attempts == 0 {
			attempts = DefaultRetryAttempts
		}
		base, capDelay := c.Base, c.Cap
		if base == 0 {
			base = DefaultRetryBase
		}
		if capDelay == 0 {
			capDelay = max(DefaultRetryCap, base)
		}
		on := c.On
		if len(on) == 0 {
			on = []string{"connect-failure", "reset", "gateway-error"}
		}
		for _, o := range on {
			p.when |= map[string]retryWhen{"5xx": retry5xx, "gateway-error": retryGatewayError, "connect-failure": retryConnect,
				"reset": retryReset, "retriable-4xx": retry409, "429": retry429}[o]
		}
		p.grpcWhen = grpcWhen(on)
		p.budget, err = resilience.NewRetryBudget(resilience.RetryBudgetSettings{
			Ratio: float64(c.Budget.Ratio), MinPerSecond: c.Budget.MinPerSecond, Clock: clk,
		})
		if err != nil {
			return nil, fmt.Errorf("route %s: retry budget: %w", r.Name, err)
		}
		p.policy, err = resilience.NewRetry(resilience.RetrySettings{
			Name: r.Name, MaxAttempts: attempts, Base: base, Cap: capDelay, Multiplier: 2, Jitter: resilience.JitterFull,
			Budget: p.budget, Clock: clk, Observer: obs,
			RetryIf: func(err error) bool {
				switch f := err.(type) {
				case *attemptFailure:
					return p.retryable(f.status, f.kind)
				case *grpcFailure:
					return p.retryableGRPC(f)
				}
				return false
			},
		})
		if err != nil {
			return nil, fmt.Errorf("route %s: retry: %w", r.Name, err)
		}
		rt.retry = p
	}
	if h := r.Hedge; h != nil {
		hp := &hedgePolicy{nonIdem: h.NonIdempotent}
		budget := (*resilience.RetryBudget)(nil)
		if rt.retry != nil {
			budget = rt.retry.budget
		} else if budget, err = resilience.NewRetryBudget(resilience.RetryBudgetSettings{Clock: clk}); err != nil {
			return nil, fmt.Errorf("route %s: hedge budget: %w", r.Name, err)
		}
		maxHedges := h.MaxHedges
		if maxHedges == 0 {
			maxHedges = DefaultMaxHedges
		}
		hp.policy, err = resilience.NewHedge(resilience.HedgeSettings{
			Name: r.Name, Delay: h.Delay, MaxHedges: maxHedges, Budget: budget, Clock: clk, Observer: obs,
		})
		if err != nil {
			return nil, fmt.Errorf("route %s: hedge: %w", r.Name, err)
		}
		hp.max = maxHedges
		rt.hedge = hp
	}
	if b := r.Bulkhead; b != nil {
		rt.bulkhead, err = resilience.NewBulkhead(resilience.BulkheadSettings{
			Name: r.Name, MaxConcurrent: b.MaxConcurrent, MaxQueue: b.MaxQueue, MaxWait: b.MaxWait, Clock: clk, Observer: obs,
		})
		if err != nil {
			return nil, fmt.Errorf("route %s: bulkhead: %w", r.Name, err)
		}
	}
	if a := r.Adaptive; a != nil {
		rt.limiter, err = resilience.NewLimiter(resilience.LimiterSettings{
			Name: r.Name, InitialLimit: a.InitialLimit, MinLimit: a.MinLimit, MaxLimit: a.MaxLimit, Clock: clk, Observer: obs,
		})
		if err != nil {
			return nil, fmt.Errorf("route %s: adaptive limit: %w", r.Name, err)
		}
	}
	if rl := r.RateLimit; rl != nil && rl.Store != "redis" {
		rt.rate, err = resilience.NewKeyedRateLimiter(resilience.KeyedRateLimiterSettings{
			Name: r.Name, Rate: rl.Rate, Burst: rl.Burst, Clock: clk, Observer: obs,
		})
		if err != nil {
			return nil, fmt.Errorf("route %s: rate limit: %w", r.Name, err)
		}
	}
	if len(r.Faults) > 0 {
		rules := make([]fault.HTTPRule, 0, len(r.Faults))
		var seed uint64
		for _, f := range r.Faults {
			seed ^= f.Seed
			p := float64(f.Percentage)
			if p == 0 && len(f.Headers) > 0 {
				p = 1 // a fault keyed on a header applies to every request carrying it
			}
			rules = append(rules, fault.HTTPRule{Name: f.Name, Probability: p, Fault: fault.HTTPFault{
				Headers: f.Headers, Delay: f.Delay.Milliseconds(), AbortStatus: f.AbortStatus,
			}})
		}
		rt.faults, err = fault.NewHTTPFilter(rules, fault.HTTPFilterOptions{Seed: seed, Clock: clk, MaxTriggered: 64})
		if err != nil {
			return nil, fmt.Errorf("route %s: faults: %w", r.Name, err)
		}
		rt.faultHandler = rt.faults.Wrap(passThrough)
	}
	if f := r.Fallback; f != nil {
		fr := &fallbackResponse{status: f.Status, body: []byte(f.Body), contentType: []byte(f.ContentType), headers: fieldPairs(f.Headers)}
		if fr.status == 0 {
			fr.status = http.StatusOK
		}
		if len(fr.contentType) == 0 {
			fr.contentType = []byte("application/json")
		}
		rt.fallback = fr
	}
	return rt, nil
}

// retryable reports whether an attempt that failed this way may be
// retried under the policy.
func (p *retryPolicy) retryable(status int, kind errKind) bool {
	switch kind {
	case errConnect:
		return p.when&retryConnect != 0
	case errReset, errTimeout, errInvalid:
		return p.when&retryReset != 0
	}
	switch {
	case status >= 500 && p.when&retry5xx != 0:
		return true
	case (status == 502 || status == 503 || status == 504) && p.when&retryGatewayError != 0:
		return true
	case status == 409 && p.when&retry409 != 0:
		return true
	case status == 429 && p.when&retry429 != 0:
		return true
	}
	return false
}

// idempotentMethod reports whether RFC 9110 lets a client repeat method.
func idempotentMethod(m []byte) bool {
	switch string(m) {
	case "GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE":
		return true
	}
	return false
}

// retryAfterSeconds renders a wait as Retry-After's delta-seconds, rounded
// up so a client never comes back early.
func retryAfterSeconds(d time.Duration) string {
	return strconv.FormatInt(int64(math.Ceil(d.Seconds())), 10)
}

// headerIn reports whether name (canonical) is in list.
func headerIn(list []string, name string) bool {
	for _, h := range list {
		if strings.EqualFold(h, name) {
			return true
		}
	}
	return false
}
