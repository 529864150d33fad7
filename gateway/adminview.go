package gateway

import (
	"maps"
	"net/url"
	"strings"
	"time"

	"github.com/relia-dev/relia/gateway/auth"
	"github.com/relia-dev/relia/internal/config"
)

// RouteStatus is one route as the admin API's /routes reports it, in the
// order routes are tried: what it takes, where it sends it, its limits
// with defaults applied, and its policies with their state now. Keys are
// snake_case, as in all JSON relia writes; /config shows the same
// settings in the config's own keys.
type RouteStatus struct {
	Name  string      `json:"name"`
	Match MatchStatus `json:"match"`
	// Upstream is the pool's name; empty for a route that only answers
	// with its fallback.
	Upstream        string  `json:"upstream,omitempty"`
	RewritePrefix   string  `json:"rewrite_prefix,omitempty"`
	RewritePath     string  `json:"rewrite_path,omitempty"`
	Auth            string  `json:"auth"`
	TimeoutMs       float64 `json:"timeout_ms"`
	PerTryTimeoutMs float64 `json:"per_try_timeout_ms"`
	MaxBodyBytes    int64   `json:"max_body_bytes"`
	// Retry and the policies below are absent when the route has none.
	Retry     *RetryStatus     `json:"retry,omitempty"`
	Hedge     *HedgeStatus     `json:"hedge,omitempty"`
	Bulkhead  *BulkheadStatus  `json:"bulkhead,omitempty"`
	Adaptive  *AdaptiveStatus  `json:"adaptive,omitempty"`
	RateLimit *RateLimitStatus `json:"rate_limit,omitempty"`
	Cache     *CacheStatus     `json:"cache,omitempty"`
	// FallbackStatus is the status the route's fallback answers with;
	// absent without one.
	FallbackStatus int `json:"fallback_status,omitempty"`
	// Faults are the names of the route's faults.
	Faults   []string `json:"faults,omitempty"`
	Upgrades []string `json:"upgrades,omitempty"`
}

// MatchStatus is what a route takes; absent fields match everything.
// Values of credential headers are shown as [redacted].
type MatchStatus struct {
	Hosts      []string          `json:"hosts,omitempty"`
	PathExact  string            `json:"path_exact,omitempty"`
	PathPrefix string            `json:"path_prefix,omitempty"`
	PathRegex  string            `json:"path_regex,omitempty"`
	Methods    []string          `json:"methods,omitempty"`
	Headers    map[string]string `json:"headers,omitempty"`
}

// RetryStatus is a route's retry policy.
type RetryStatus struct {
	Attempts           int      `json:"attempts"`
	BaseMs             float64  `json:"base_ms"`
	CapMs              float64  `json:"cap_ms"`
	RetryOn            []string `json:"retry_on"`
	NonIdempotent      bool     `json:"non_idempotent"`
	BudgetRatio        float64  `json:"budget_ratio"`
	BudgetMinPerSecond float64  `json:"budget_min_per_second"`
}

// HedgeStatus is a route's hedging policy.
type HedgeStatus struct {
	DelayMs       float64 `json:"delay_ms"`
	MaxHedges     int     `json:"max_hedges"`
	NonIdempotent bool    `json:"non_idempotent"`
}

// BulkheadStatus is a route's bulkhead: its bounds and its load now.
type BulkheadStatus struct {
	MaxConcurrent int     `json:"max_concurrent"`
	MaxQueue      int     `json:"max_queue"`
	MaxWaitMs     float64 `json:"max_wait_ms"`
	InFlight      int     `json:"in_flight"`
	Queued        int     `json:"queued"`
}

// AdaptiveStatus is a route's adaptive concurrency limit: its bounds, the
// limit it has reached and its load now.
type AdaptiveStatus struct {
	Limit    int `json:"limit"`
	MinLimit int `json:"min_limit"`
	MaxLimit int `json:"max_limit"`
	InFlight int `json:"in_flight"`
}

// RateLimitStatus is a route's rate limit.
type RateLimitStatus struct {
	Key    string  `json:"key"`
	Header string  `json:"header,omitempty"`
	Rate   float64 `json:"rate"`
	Burst  int     `json:"burst"`
	Store  string  `json:"store"`
	// Redis is the address of the shared store's server.
	Redis         string `json:"redis,omitempty"`
	OnUnreachable string `json:"on_unreachable,omitempty"`
}

// CacheStatus is a route's response cache.
type CacheStatus struct {
	MaxBytes      int64 `json:"max_bytes"`
	MaxEntryBytes int64 `json:"max_entry_bytes"`
}

// Routes reports every route of the config in force, in the order they
// are tried.
func (g *Gateway) Routes() []RouteStatus {
	st := g.state.Load()
	rd := newRedactor(st.eff)
	out := make([]RouteStatus, 0, len(st.routes))
	for _, rt := range st.routes {
		out = append(out, rt.status(rd))
	}
	return out
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// status reports the route, its config being the effective one.
func (rt *route) status(rd redactor) RouteStatus {
	c := rt.cfg
	rs := RouteStatus{Name: c.Name, Upstream: c.Upstream, Auth: c.Auth, TimeoutMs: ms(c.Timeout), PerTryTimeoutMs: ms(c.PerTryTimeout),
		MaxBodyBytes: int64(c.MaxBodySize), Faults: make([]string, 0, len(c.Faults)), Upgrades: c.Upgrades}
	rs.Match = MatchStatus{Hosts: c.Match.Hosts, Methods: c.Match.Methods, Headers: rd.headers(c.Match.Headers)}
	if pm := c.Match.Path; pm != nil {
		rs.Match.PathExact, rs.Match.PathPrefix, rs.Match.PathRegex = pm.Exact, pm.Prefix, pm.Regex
	}
	if rw := c.Rewrite; rw != nil {
		rs.RewritePrefix, rs.RewritePath = rw.Prefix, rw.Path
	}
	if r := c.Retry; r != nil {
		rs.Retry = &RetryStatus{Attempts: r.Attempts, BaseMs: ms(r.Base), CapMs: ms(r.Cap), RetryOn: r.On, NonIdempotent: r.NonIdempotent,
			BudgetRatio: float64(r.Budget.Ratio), BudgetMinPerSecond: r.Budget.MinPerSecond}
	}
	if h := c.Hedge; h != nil {
		rs.Hedge = &HedgeStatus{DelayMs: ms(h.Delay), MaxHedges: h.MaxHedges, NonIdempotent: h.NonIdempotent}
	}
	if b := c.Bulkhead; b != nil {
		rs.Bulkhead = &BulkheadStatus{MaxConcurrent: b.MaxConcurrent, MaxQueue: b.MaxQueue, MaxWaitMs: ms(b.MaxWait),
			InFlight: rt.bulkhead.InFlight(), Queued: rt.bulkhead.Queued()}
	}
	if a := c.Adaptive; a != nil {
		rs.Adaptive = &AdaptiveStatus{Limit: rt.limiter.Limit(), MinLimit: a.MinLimit, MaxLimit: a.MaxLimit, InFlight: rt.limiter.InFlight()}
	}
	if rl := c.RateLimit; rl != nil {
		rs.RateLimit = &RateLimitStatus{Key: rl.Key, Header: rl.Header, Rate: rl.Rate, Burst: rl.Burst, Store: rl.Store, OnUnreachable: rl.OnUnreachable}
		if rl.Redis != nil {
			rs.RateLimit.Redis = rl.Redis.Address
		}
	}
	if rc := c.Cache; rc != nil {
		rs.Cache = &CacheStatus{MaxBytes: int64(rc.MaxSize), MaxEntryBytes: int64(rc.MaxEntrySize)}
	}
	if f := c.Fallback; f != nil {
		rs.FallbackStatus = f.Status
	}
	for _, f := range c.Faults {
		rs.Faults = append(rs.Faults, f.Name)
	}
	return rs
}

// configJSON is the config in force as /config shows it: the effective
// config, every default written out, in the config's own keys, with the
// credentials written into it redacted. It reads back as a config file.
func (st *state) configJSON() ([]byte, error) {
	return config.MarshalJSON(Kind, newRedactor(st.eff).config(st.eff))
}

// redactor hides the credentials a config may hold in itself. Secrets
// proper (API keys, JWT secrets, the Redis password, the admin token) are
// never in a config, only the names of the files that hold them; what a
// user may write into one is a credential header's value (a route that
// sets Authorization for its target, a match on an API key) or a
// password in a URL.
type redactor struct {
	keyHeader string // the header API keys come in, besides auth's list
}

func newRedactor(c *Config) redactor {
	if c.Spec.Auth != nil {
		return redactor{keyHeader: c.Spec.Auth.KeyHeader}
	}
	return redactor{}
}

// headers returns m with the values of credential headers redacted; a
// "*", which only asks for the header's presence, stays.
func (rd redactor) headers(m map[string]string) map[string]string {
	var out map[string]string
	for k, v := range m {
		if v == "*" || !(auth.IsSensitive(k) || (rd.keyHeader != "" && strings.EqualFold(k, rd.keyHeader))) {
			continue
		}
		if out == nil {
			out = maps.Clone(m)
		}
		out[k] = auth.Redacted
	}
	if out == nil {
		return m
	}
	return out
}

// url returns s with the userinfo of a URL redacted.
func (rd redactor) url(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.User == nil {
		return s
	}
	u.User = url.User("redacted")
	return u.String()
}

// config returns a copy of c with its credentials redacted.
func (rd redactor) config(c *Config) *Config {
	out := *c
	out.Spec.Routes = mapSlice(c.Spec.Routes, rd.route)
	out.Spec.Auth = mapPtr(c.Spec.Auth, func(a Auth) Auth {
		a.JWT = mapSlice(a.JWT, func(j JWT) JWT {
			j.JWKSURL = rd.url(j.JWKSURL)
			return j
		})
		return a
	})
	return &out
}

func (rd redactor) route(r Route) Route {
	r.Match.Headers = rd.headers(r.Match.Headers)
	for _, ops := range []*HeaderOps{&r.RequestHeaders, &r.ResponseHeaders} {
		ops.Set, ops.Add = rd.headers(ops.Set), rd.headers(ops.Add)
	}
	r.Fallback = mapPtr(r.Fallback, func(f Fallback) Fallback {
		f.Headers = rd.headers(f.Headers)
		return f
	})
	r.Faults = mapSlice(r.Faults, func(f Fault) Fault {
		f.Headers = rd.headers(f.Headers)
		return f
	})
	return r
}
