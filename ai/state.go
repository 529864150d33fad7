package ai

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/relia-dev/relia/resilience"
)

// state is one config's routes, providers and tenants, built for calls
// and swapped whole on reload.
type state struct {
	cfg     *Config
	catalog *Catalog
	routes  map[string]*routeState // by public model name
	tenants []*tenantState
	byKey   map[string]*tenantState
	prompts map[string]*promptState
}

// providerState is a provider's adapter, credentials and provider-wide
// Retry-After.
type providerState struct {
	cfg     *Provider
	adapter adapter
	creds   []*credState
	weight  int
	next    atomic.Uint64
	// coolUntil is when the provider may be called again after an
	// overload with Retry-After, in nanoseconds of the service's clock
	// since its epoch; 0 when it may be called now.
	coolUntil atomic.Int64
}

// credState is one credential with its breaker and Retry-After.
type credState struct {
	cfg       Credential
	name      string
	key       string
	bearer    string // "Bearer " + key, as OpenAI's Authorization has it
	breaker   *resilience.Breaker
	coolUntil atomic.Int64
}

// routeState is a route built for calls.
type routeState struct {
	cfg             *Route
	model           *Model
	targets         []*routeTarget
	weight          int
	next            atomic.Uint64
	fallbacks       []*routeState
	contextFallback *routeState
	budget          *resilience.RetryBudget
	hedge           *resilience.Hedge
	maxAttempts     int
	firstToken      time.Duration
	idle            time.Duration
	total           time.Duration
}

// routeTarget is one target of a route, with the health its SLO judges.
type routeTarget struct {
	provider *providerState
	model    string
	// modelJSON is model as a JSON string, which a client's body gets in
	// place of its own (forwardChat).
	modelJSON []byte
	// okEntry is the fallback path's entry of a call that succeeded
	// here, "provider/model:ok".
	okEntry string
	weight  int
	health  *burnWindow
}

// Defaults of a route.
const (
	DefaultMaxAttempts    = 3
	DefaultFirstToken     = 30 * time.Second
	DefaultIdle           = 30 * time.Second
	DefaultTotal          = 10 * time.Minute
	defaultRateLimitPause = time.Second
)

// build turns a validated config into state, keeping the breakers and
// Retry-After of credentials that prev had under the same provider and
// name, so a reload does not forget a provider's trouble.
func (s *Service) build(cfg *Config, cat *Catalog, prev *state) (*state, error) {
	st := &state{cfg: cfg, catalog: cat, routes: map[string]*routeState{}, byKey: map[string]*tenantState{}}
	providers := map[string]*providerState{}
	for i := range cfg.Spec.Providers {
		p := &cfg.Spec.Providers[i]
		ps := &providerState{cfg: p, adapter: adapterFor(p.Type)}
		var old *providerState
		if prev != nil {
			old = prev.provider(p.Name)
		}
		if old != nil {
			ps.coolUntil.Store(old.coolUntil.Load())
		}
		keys := p.Keys
		if len(keys) == 0 {
			keys = []Credential{{}} // an open OpenAI-compatible server
		}
		for k, c := range keys {
			key, err := c.secret()
			if err != nil {
				return nil, cfg.errorf(fmt.Sprintf("spec.providers[%d].keys[%d]", i, k), "%v", err)
			}
			cs := &credState{cfg: c, name: c.Name, key: key, bearer: "Bearer " + key}
			if cs.name == "" {
				cs.name = fmt.Sprintf("key-%d", k+1)
			}
			if old != nil {
				for _, oc := range old.creds {
					if oc.name == cs.name && oc.key == cs.key {
						cs.breaker = oc.breaker
						cs.coolUntil.Store(oc.coolUntil.Load())
					}
				}
			}
			if cs.breaker == nil {
				b, err := resilience.NewBreaker(resilience.BreakerSettings{
					Name:                p.Name + "/" + cs.name,
					Clock:               s.clock,
					Observer:            s.observer,
					ConsecutiveFailures: p.Breaker.ConsecutiveFailures,
					OpenDuration:        p.Breaker.OpenDuration,
					IsFailure:           breakerFailure,
				})
				if err != nil {
					return nil, cfg.errorf(fmt.Sprintf("spec.providers[%d].breaker", i), "%v", err)
				}
				cs.breaker = b
			}
			w := c.Weight
			if w == 0 {
				w = 1
			}
			ps.weight += w
			for range w {
				ps.creds = append(ps.creds, cs)
			}
		}
		providers[p.Name] = ps
	}
	for i := range cfg.Spec.Routes {
		r := &cfg.Spec.Routes[i]
		m, _ := cat.Lookup(r.Model)
		rs := &routeState{
			cfg: r, model: m,
			maxAttempts: orDefault(r.MaxAttempts, DefaultMaxAttempts),
			firstToken:  orDefault(r.Timeouts.FirstToken, DefaultFirstToken),
			idle:        orDefault(r.Timeouts.Idle, DefaultIdle),
			total:       orDefault(r.Timeouts.Total, DefaultTotal),
		}
		b, err := resilience.NewRetryBudget(resilience.RetryBudgetSettings{Ratio: r.RetryBudget.Ratio, MinPerSecond: r.RetryBudget.MinPerSecond, Clock: s.clock})
		if err != nil {
			return nil, cfg.errorf(fmt.Sprintf("spec.routes[%d].retryBudget", i), "%v", err)
		}
		rs.budget = b
		if r.HedgeAfter > 0 {
			h, err := resilience.NewHedge(resilience.HedgeSettings{Name: m.Name, Delay: r.HedgeAfter, Budget: b, Clock: s.clock, Observer: s.observer})
			if err != nil {
				return nil, cfg.errorf(fmt.Sprintf("spec.routes[%d].hedgeAfter", i), "%v", err)
			}
			rs.hedge = h
		}
		for _, t := range r.Targets {
			ps := providers[t.Provider]
			model := t.Model
			if model == "" {
				model = m.Providers[ps.cfg.Type]
			}
			if model == "" {
				model = m.Name
			}
			w := orDefault(t.Weight, 1)
			q, _ := json.Marshal(model)
			rt := &routeTarget{provider: ps, model: model, modelJSON: q, okEntry: ps.cfg.Name + "/" + model + ":ok", weight: w, health: newBurnWindow(r.SLO, s.clock)}
			rs.targets = append(rs.targets, rt)
			rs.weight += w
		}
		st.routes[m.Name] = rs
	}
	for i := range cfg.Spec.Routes {
		r := &cfg.Spec.Routes[i]
		m, _ := cat.Lookup(r.Model)
		rs := st.routes[m.Name]
		for _, f := range r.Fallbacks {
			fm, _ := cat.Lookup(f)
			rs.fallbacks = append(rs.fallbacks, st.routes[fm.Name])
		}
		if r.ContextFallback != "" {
			fm, _ := cat.Lookup(r.ContextFallback)
			rs.contextFallback = st.routes[fm.Name]
		}
	}
	if err := s.buildTenants(st, cfg); err != nil {
		return nil, err
	}
	return st, nil
}

// breakerFailure counts what says a credential or provider is in
// trouble; a client's bad request does not, nor a refusal that said when
// to come back (429 or 529 with Retry-After): the credential or provider
// rests exactly that long, and a breaker that also opened would keep it
// out past the time the provider gave.
func breakerFailure(err error) bool {
	if errors.Is(err, context.Canceled) {
		return false
	}
	if ce, ok := err.(*callError); ok {
		if (ce.kind == kindRateLimited || ce.kind == kindOverloaded) && ce.retryAfter > 0 {
			return false
		}
		return ce.kind != kindClient && ce.kind != kindContextLength
	}
	return err != nil
}

func orDefault[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}

func (st *state) provider(name string) *providerState {
	for _, r := range st.routes {
		for _, t := range r.targets {
			if t.provider.cfg.Name == name {
				return t.provider
			}
		}
	}
	return nil
}

// route finds the route of a public model name or alias.
func (st *state) route(name string) (*routeState, bool) {
	m, ok := st.catalog.Lookup(name)
	if !ok {
		return nil, false
	}
	r, ok := st.routes[m.Name]
	return r, ok
}

// nanosOf converts a time of the service's clock to the form coolUntil
// stores.
func (s *Service) nanosOf(t time.Time) int64 { return t.Sub(s.epoch).Nanoseconds() + 1 }

// coolingFor returns how long a credential (or its provider) must still
// wait, zero when it may be called.
func (s *Service) coolingFor(p *providerState, c *credState) time.Duration {
	now := s.nanosOf(s.clock.Now())
	until := max(p.coolUntil.Load(), c.coolUntil.Load())
	if until > now {
		return time.Duration(until - now)
	}
	return 0
}

// coolDown records a Retry-After: until it passes, v is not called.
func (s *Service) coolDown(v *atomic.Int64, d time.Duration) {
	until := s.nanosOf(s.clock.Now().Add(d))
	for {
		cur := v.Load()
		if cur >= until || v.CompareAndSwap(cur, until) {
			return
		}
	}
}
