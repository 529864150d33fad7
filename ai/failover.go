package ai

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/relia-dev/relia/clock"
	"github.com/relia-dev/relia/resilience"
)

// target is one attempt's destination: a provider, one of its
// credentials and the model's id there.
type target struct {
	route     *routeState
	rt        *routeTarget
	prov      *providerState
	cred      *credState
	provider  *Provider
	key       string
	model     string
	maxOutput int
	permit    resilience.BreakerPermit
	clock     clock.Clock
}

// name is the target as the fallback path writes it.
func (t *target) name() string { return t.prov.cfg.Name + "/" + t.model }

// failover walks a call's candidates in order: the route's targets (the
// first chosen by weight, drained ones last), then its fallback models'.
// It skips a credential still inside a Retry-After or behind an open
// breaker, bounds attempts by the route's MaxAttempts and retry budget,
// and switches to the context fallback when a provider finds the prompt
// too long. It is safe for the concurrent attempts of a hedge.
type failover struct {
	s      *Service
	routes []*routeState // the chain still to walk
	ctxFB  *routeState

	mu        sync.Mutex
	queue     []*routeTarget
	queueOf   *routeState
	attempts  int
	max       int
	budget    *resilience.RetryBudget
	path      []string
	last      *callError
	wait      time.Duration // the shortest Retry-After among skipped candidates
	rejected  error         // why the last candidate was refused (breaker, budget)
	switched  bool
	exhausted bool
	// The first routes and path entries of a call live in the failover
	// itself: a call that needs no more makes no slice for them.
	routesBuf [2]*routeState
	pathBuf   [2]string
}

func (s *Service) newFailover(rs *routeState) *failover {
	f := &failover{s: s, ctxFB: rs.contextFallback, max: rs.maxAttempts, budget: rs.budget}
	f.routes = append(append(f.routesBuf[:0], rs), rs.fallbacks...)
	f.path = f.pathBuf[:0]
	rs.budget.Deposit()
	return f
}

// order returns a route's targets for one call: the first by smooth
// weight over the route's calls, then the rest in config order, targets
// drained by their SLO after the healthy ones.
func order(rs *routeState) []*routeTarget {
	n := len(rs.targets)
	out := make([]*routeTarget, 0, n)
	first := 0
	if n > 1 {
		pos := int((rs.next.Add(1) - 1) % uint64(rs.weight))
		for i, t := range rs.targets {
			if pos < t.weight {
				first = i
				break
			}
			pos -= t.weight
		}
	}
	var drained []*routeTarget
	for i := range n {
		t := rs.targets[(first+i)%n]
		if i > 0 && t.health.drained() || i == 0 && n > 1 && t.health.drained() {
			drained = append(drained, t)
			continue
		}
		out = append(out, t)
	}
	return append(out, drained...)
}

// next returns the next target to try, with its breaker's permit taken,
// or false when none is left.
func (f *failover) next() (*target, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for {
		if f.exhausted || f.attempts >= f.max {
			return nil, false
		}
		if len(f.queue) == 0 {
			if len(f.routes) == 0 {
				return nil, false
			}
			f.queueOf = f.routes[0]
			f.routes = f.routes[1:]
			f.queue = order(f.queueOf)
			continue
		}
		rt := f.queue[0]
		f.queue = f.queue[1:]
		t, ok := f.pick(rt)
		if !ok {
			continue
		}
		if f.attempts > 0 && !f.budget.Withdraw() {
			t.permit.Done(context.Canceled) // not sent: counts neither way
			f.rejected = &resilience.RejectedError{Policy: "retry", Name: f.queueOf.model.Name, Reason: "retry_budget_exhausted", Sentinel: resilience.ErrRetryBudgetExhausted}
			f.exhausted = true
			return nil, false
		}
		f.attempts++
		return t, true
	}
}

// pick chooses a credential of rt's provider that is neither waiting out
// a Retry-After nor behind an open breaker, rotating over them by
// weight.
func (f *failover) pick(rt *routeTarget) (*target, bool) {
	p := rt.provider
	n := len(p.creds)
	start := int(p.next.Add(1) - 1)
	for i := range n {
		c := p.creds[(start+i)%n]
		if w := f.s.coolingFor(p, c); w > 0 {
			if f.wait == 0 || w < f.wait {
				f.wait = w
			}
			continue
		}
		permit, err := c.breaker.Allow()
		if err != nil {
			f.rejected = err
			continue
		}
		maxOut := f.queueOf.model.MaxOutputTokens
		return &target{
			route: f.queueOf, rt: rt, prov: p, cred: c, provider: p.cfg, key: c.key, model: rt.model,
			maxOutput: maxOut, permit: permit, clock: f.s.clock,
		}, true
	}
	return nil, false
}

// report records how an attempt ended: the breaker, the SLO window, the
// Retry-After, the path, and a context fallback when the prompt was too
// long.
func (f *failover) report(t *target, err error) {
	var ce *callError
	if err != nil && !errors.As(err, &ce) {
		ce = &callError{kind: kindNetwork, message: err.Error()}
	}
	t.rt.health.record(ce == nil || ce.kind == kindClient || ce.kind == kindContextLength)
	if ce == nil {
		t.permit.Done(nil)
		f.mu.Lock()
		f.path = append(f.path, t.rt.okEntry)
		f.mu.Unlock()
		return
	}
	t.permit.Done(ce)
	switch ce.kind {
	case kindRateLimited:
		f.s.coolDown(&t.cred.coolUntil, orDefault(ce.retryAfter, defaultRateLimitPause))
	case kindOverloaded:
		if ce.retryAfter > 0 {
			f.s.coolDown(&t.prov.coolUntil, ce.retryAfter)
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.path = append(f.path, fmt.Sprintf("%s:%s", t.name(), ce.kind))
	f.last = ce
	switch ce.kind {
	case kindRateLimited:
		// The limit was the key's: another key of the same provider
		// may still serve. The refused key rests, so this ends.
		if len(t.prov.creds) > 1 {
			f.queue = append([]*routeTarget{t.rt}, f.queue...)
		}
	case kindClient:
		f.exhausted = true
	case kindContextLength:
		if f.ctxFB != nil && !f.switched {
			f.switched = true
			f.routes = []*routeState{f.ctxFB}
			f.queue = nil
		} else {
			f.exhausted = true
		}
	}
}

// toContextFallback starts the call on the context fallback at once,
// when the prompt cannot fit the model.
func (f *failover) toContextFallback() bool {
	if f.ctxFB == nil {
		return false
	}
	f.switched = true
	f.routes = []*routeState{f.ctxFB}
	return true
}

// failure is the error the client gets when no attempt succeeded.
func (f *failover) failure() *apiError {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.last != nil {
		switch f.last.kind {
		case kindClient, kindContextLength:
			return clientErrorOf(f.last)
		}
	}
	if f.attempts == 0 && f.wait > 0 {
		return &apiError{status: http.StatusTooManyRequests, typ: "rate_limit_error", code: "providers_cooling_down", reason: "providers_cooling_down", retryAfter: f.wait,
			message: fmt.Sprintf("every provider of this model asked relia to wait; retry after %s", f.wait.Round(time.Millisecond))}
	}
	if f.attempts == 0 && f.rejected != nil {
		var re *resilience.RejectedError
		if errors.As(f.rejected, &re) {
			return &apiError{status: http.StatusServiceUnavailable, typ: "server_error", code: re.Reason, reason: re.Reason, retryAfter: re.RetryAfter, message: "no provider of this model can be called: " + re.Error()}
		}
	}
	msg := "every provider of this model failed"
	status, code := http.StatusBadGateway, "upstream_failed"
	if f.last != nil {
		msg += "; the last: " + f.last.Error()
		switch f.last.kind {
		case kindRateLimited:
			status, code = http.StatusTooManyRequests, "upstream_rate_limited"
		case kindOverloaded:
			status, code = http.StatusServiceUnavailable, "upstream_overloaded"
		case kindTimeout:
			status, code = http.StatusGatewayTimeout, "upstream_timeout"
		}
	}
	e := &apiError{status: status, typ: "server_error", code: code, reason: code, message: msg}
	if f.exhausted && f.rejected != nil {
		e.reason = "retry_budget_exhausted"
		e.message += " (retry budget exhausted)"
	}
	if f.last != nil {
		e.retryAfter = f.last.retryAfter
	}
	return e
}

func (f *failover) pathCopy() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.path...)
}

func (f *failover) attemptCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.attempts
}
