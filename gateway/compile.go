package gateway

import (
	"fmt"
	"net/http"
	"reflect"
	"strings"

	"github.com/relia-dev/relia/clock"
	"github.com/relia-dev/relia/fault"
	"github.com/relia-dev/relia/gateway/cache"
	"github.com/relia-dev/relia/resilience"
)

// This file is where a config becomes what requests read: build compiles
// a validated config, through its effective form (every default written
// out by the config types' withDefaults), into one generation's state.
// Nothing here chooses a default.

// build compiles cfg into a generation. Pools of prev whose config did
// not change carry over whole (connections, health, breakers); rebuilt
// pools keep the state of the targets that stay (newPool).
func (g *Gateway) build(cfg *Config, prev *state) (*state, error) {
	eff := cfg.Effective()
	s := &eff.Spec
	st := &state{cfg: cfg, eff: eff, gen: g.gen.Add(1), loaded: g.clock.Now(), pools: map[string]*pool{}}
	for _, tp := range s.TrustedProxies {
		p, err := parsePrefix(tp)
		if err != nil {
			return nil, err
		}
		st.trust = append(st.trust, p)
	}
	for _, u := range s.Upstreams {
		var before *pool
		if prev != nil {
			before = prev.pools[u.Name]
		}
		if before != nil && reflect.DeepEqual(before.cfg, u) {
			st.pools[u.Name] = before
			st.poolList = append(st.poolList, before)
			continue
		}
		p, err := newPool(u, before, g.clock, g.breakerMaker(u), &g.open, g.targetWaits)
		if err != nil {
			return nil, fmt.Errorf("building upstream %s: %w", u.Name, err)
		}
		st.pools[u.Name] = p
		st.poolList = append(st.poolList, p)
	}
	var err error
	if st.auth, st.keySets, err = buildAuth(s.Auth, g.clock, &g.keySets, g.log); err != nil {
		return nil, err
	}
	for _, r := range s.Routes {
		rt, err := compileRoute(r, st.pools, g.clock, g.metrics.obs)
		if err != nil {
			return nil, err
		}
		if rt.capture, err = routeCapture(r, s.Auth); err != nil {
			return nil, err
		}
		if rl := r.RateLimit; rl != nil && rl.Store == "redis" {
			if rt.shared, err = g.buildSharedLimit(eff.Metadata.Name, r); err != nil {
				return nil, err
			}
		}
		if rc := r.Cache; rc != nil {
			// A reload keeps the responses a route has cached as long as
			// its cache settings stay the same.
			if old := prev.routeNamed(r.Name); old != nil && old.cache != nil && *old.cfg.Cache == *rc {
				rt.cache = old.cache
			} else if rt.cache, err = cache.New(cache.Settings{MaxBytes: int64(rc.MaxSize), MaxEntryBytes: int64(rc.MaxEntrySize), Clock: g.clock}); err != nil {
				return nil, fmt.Errorf("route %s: cache: %w", r.Name, err)
			}
			rt.cacheMaxEntry = int64(rc.MaxEntrySize)
		}
		rt.quickStart = rt.bulkhead == nil && rt.faults == nil && rt.shared == nil && (rt.auth == AuthNone || st.auth == nil)
		st.routes = append(st.routes, rt)
	}
	// Last, as a reload of the AI service cannot be undone.
	if st.ai, err = g.buildAI(cfg); err != nil {
		return nil, err
	}
	return st, nil
}

// breakerMaker returns what makes the breaker of each of u's targets; nil
// when u's breaker is disabled.
func (g *Gateway) breakerMaker(u Upstream) func(name string) (*resilience.Breaker, error) {
	if u.Breaker.Disabled {
		return nil
	}
	return func(name string) (*resilience.Breaker, error) {
		s, err := u.Breaker.settings(name, g.clock, g.metrics.obs)
		if err != nil {
			return nil, err
		}
		return resilience.NewBreaker(s)
	}
}

// compileRoute compiles r, a route with its defaults applied; pools holds
// this generation's pools by name.
func compileRoute(r Route, pools map[string]*pool, clk clock.Clock, obs resilience.Observer) (*route, error) {
	m, err := compileMatch(r.Match)
	if err != nil {
		return nil, err
	}
	rt := &route{cfg: r, name: r.Name, match: m, pool: pools[r.Upstream], auth: r.Auth,
		timeout: r.Timeout, perTry: r.PerTryTimeout, maxBody: int(r.MaxBodySize)}
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
		if rt.retry, err = compileRetry(r.Name, c, clk, obs); err != nil {
			return nil, err
		}
	}
	if h := r.Hedge; h != nil {
		hp := &hedgePolicy{nonIdem: h.NonIdempotent, max: h.MaxHedges}
		budget := (*resilience.RetryBudget)(nil)
		if rt.retry != nil {
			budget = rt.retry.budget
		} else if budget, err = resilience.NewRetryBudget(resilience.RetryBudgetSettings{Clock: clk}); err != nil {
			return nil, fmt.Errorf("route %s: hedge budget: %w", r.Name, err)
		}
		hp.policy, err = resilience.NewHedge(resilience.HedgeSettings{
			Name: r.Name, Delay: h.Delay, MaxHedges: h.MaxHedges, Budget: budget, Clock: clk, Observer: obs,
		})
		if err != nil {
			return nil, fmt.Errorf("route %s: hedge: %w", r.Name, err)
		}
		rt.hedge = hp
	}
	if b := r.Bulkhead; b != nil {
		rt.bulkhead, err = resilience.NewBulkhead(b.settings(r.Name, clk, obs))
		if err != nil {
			return nil, fmt.Errorf("route %s: bulkhead: %w", r.Name, err)
		}
	}
	if a := r.Adaptive; a != nil {
		rt.limiter, err = resilience.NewLimiter(a.settings(r.Name, clk, obs))
		if err != nil {
			return nil, fmt.Errorf("route %s: adaptive limit: %w", r.Name, err)
		}
	}
	if rl := r.RateLimit; rl != nil && rl.Store != "redis" {
		rt.rate, err = resilience.NewKeyedRateLimiter(rl.settings(r.Name, clk, obs))
		if err != nil {
			return nil, fmt.Errorf("route %s: rate limit: %w", r.Name, err)
		}
	}
	if len(r.Faults) > 0 {
		rules := make([]fault.HTTPRule, 0, len(r.Faults))
		var seed uint64
		for _, f := range r.Faults {
			seed ^= f.Seed
			rules = append(rules, f.rule())
			rt.faultBody = rt.faultBody || f.JSONField != ""
		}
		rt.faults, err = fault.NewHTTPFilter(rules, fault.HTTPFilterOptions{Seed: seed, Clock: clk, MaxTriggered: 64})
		if err != nil {
			return nil, fmt.Errorf("route %s: faults: %w", r.Name, err)
		}
	}
	if f := r.Fallback; f != nil {
		rt.fallback = &fallbackResponse{status: f.Status, body: []byte(f.Body), contentType: []byte(f.ContentType), headers: fieldPairs(f.Headers)}
	}
	return rt, nil
}

// compileRetry makes the retry policy of the route named name from c, a
// Retry with its defaults applied.
func compileRetry(name string, c *Retry, clk clock.Clock, obs resilience.Observer) (*retryPolicy, error) {
	p := &retryPolicy{nonIdem: c.NonIdempotent}
	for _, o := range c.On {
		p.when |= retryConditions[o]
	}
	p.grpcWhen = grpcWhen(c.On)
	var err error
	p.budget, err = resilience.NewRetryBudget(resilience.RetryBudgetSettings{
		Ratio: float64(c.Budget.Ratio), MinPerSecond: c.Budget.MinPerSecond, Clock: clk,
	})
	if err != nil {
		return nil, fmt.Errorf("route %s: retry budget: %w", name, err)
	}
	p.policy, err = resilience.NewRetry(resilience.RetrySettings{
		Name: name, MaxAttempts: c.Attempts, Base: c.Base, Cap: c.Cap, Multiplier: 2, Jitter: resilience.JitterFull,
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
		return nil, fmt.Errorf("route %s: retry: %w", name, err)
	}
	return p, nil
}

// routeNamed returns the route called name; nil when there is none or st
// is nil.
func (st *state) routeNamed(name string) *route {
	if st == nil {
		return nil
	}
	for _, r := range st.routes {
		if r.name == name {
			return r
		}
	}
	return nil
}
