package gateway

import (
	"cmp"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/relia-dev/relia/clock"
	"github.com/relia-dev/relia/internal/config"
	"github.com/relia-dev/relia/resilience"
)

// Balance names a load-balancing algorithm.
type Balance string

// The balancing algorithms.
const (
	// BalanceRoundRobin takes healthy targets in turn (the default).
	BalanceRoundRobin Balance = "round_robin"
	// BalanceWeighted takes targets in proportion to their weights, smoothly
	// interleaved (nginx's smooth weighted round robin).
	BalanceWeighted Balance = "weighted"
	// BalanceLeastRequest picks the better of two random targets by
	// in-flight requests times an EWMA of their latency (power of two
	// choices).
	BalanceLeastRequest Balance = "least_request"
	// BalanceHash picks a target by consistent hashing of a header's value
	// or the client IP, so a key sticks to one target while the pool is
	// stable.
	BalanceHash Balance = "hash"
)

// Upstream is a pool of targets that serve the same thing.
type Upstream struct {
	// Name identifies the pool; routes refer to it.
	Name string `yaml:"name" config:"required"`
	// Targets are the pool's members.
	Targets []Target `yaml:"targets" config:"required"`
	// Balance is how a target is chosen: round_robin (default), weighted,
	// least_request or hash.
	Balance Balance `yaml:"balance"`
	// HashOn is the key of the hash balancer.
	HashOn *HashOn `yaml:"hashOn"`
	// MaxConnections bounds connections to each target; default 1024. A
	// request that finds them all busy waits for one until its attempt's
	// deadline.
	MaxConnections int `yaml:"maxConnections"`
	// ConnectTimeout bounds dialing a target; default 2s.
	ConnectTimeout time.Duration `yaml:"connectTimeout"`
	// Health configures active checks and passive outlier detection.
	Health Health `yaml:"health"`
	// Breaker configures the circuit breaker kept for each target.
	// Left out, a breaker with resilience's defaults (5 failures in a row,
	// open 30s) guards each target.
	Breaker *Breaker `yaml:"breaker"`
	// GRPC makes the targets gRPC servers, reached over HTTP/2: routes to
	// the pool proxy gRPC calls (docs/grpc.md, "Through the gateway").
	GRPC *GRPCUpstream `yaml:"grpc"`
}

// Target is one member of a pool.
type Target struct {
	// Address is host:port of the target.
	Address string `yaml:"address" config:"required"`
	// Weight is the target's share with the weighted balancer; default 1.
	Weight int `yaml:"weight"`
}

// HashOn is the key of the hash balancer: a request header, or the client IP.
type HashOn struct {
	// Header hashes on this request header's value.
	Header string `yaml:"header"`
	// ClientIP hashes on the client's address.
	ClientIP bool `yaml:"clientIP"`
}

// Health combines active checks with passive outlier detection: a target
// receives traffic when its active check (if any) says healthy and it is
// not ejected.
type Health struct {
	// Active checks probe each target on an interval.
	Active *ActiveHealth `yaml:"active"`
	// Passive ejects targets that fail real requests.
	Passive *PassiveHealth `yaml:"passive"`
}

// ActiveHealth probes each target with an HTTP GET.
type ActiveHealth struct {
	// Path is the path probed; default /healthz. A 2xx or 3xx is healthy.
	Path string `yaml:"path"`
	// Interval between probes; default 5s.
	Interval time.Duration `yaml:"interval"`
	// Timeout of one probe; default 1s, below Interval.
	Timeout time.Duration `yaml:"timeout"`
	// HealthyThreshold is how many successes in a row make an unhealthy
	// target healthy; default 2.
	HealthyThreshold int `yaml:"healthyThreshold"`
	// UnhealthyThreshold is how many failures in a row make a healthy
	// target unhealthy; default 3.
	UnhealthyThreshold int `yaml:"unhealthyThreshold"`
	// GRPCService is, for a gRPC pool, the service whose status the
	// standard gRPC health check asks for (grpc.health.v1.Health/Check);
	// default "", the whole server. SERVING is healthy; the pool's
	// probes use it instead of Path.
	GRPCService string `yaml:"grpcService"`
}

// PassiveHealth ejects a target after consecutive failures of real
// requests, for longer on each repeat, as Envoy's outlier detection does.
type PassiveHealth struct {
	// Consecutive5xx ejects after this many 5xx answers in a row;
	// default 5.
	Consecutive5xx int `yaml:"consecutive5xx"`
	// ConsecutiveConnectErrors ejects after this many connect errors,
	// resets or timeouts in a row; default 3.
	ConsecutiveConnectErrors int `yaml:"consecutiveConnectErrors"`
	// BaseEjection is the first ejection's length; the n-th in a row lasts
	// n times as long, up to MaxEjection. Default 30s.
	BaseEjection time.Duration `yaml:"baseEjection"`
	// MaxEjection caps an ejection; default 300s.
	MaxEjection time.Duration `yaml:"maxEjection"`
	// MaxEjectedShare is the largest share of the pool that may be
	// ejected at once, so detection alone never empties a pool; default
	// 50%. At least one target always stays.
	MaxEjectedShare config.Ratio `yaml:"maxEjectedShare"`
}

// Breaker configures a per-target circuit breaker (see
// resilience.BreakerSettings for the exact rules).
type Breaker struct {
	// ConsecutiveFailures trips after this many failures in a row;
	// default 5 when no ratio is set.
	ConsecutiveFailures int `yaml:"consecutiveFailures"`
	// FailureRatio trips when failures reach this share of the window.
	FailureRatio config.Ratio `yaml:"failureRatio"`
	// SlowCallRatio trips when calls slower than SlowCallDuration reach
	// this share of the window; calls still hanging count.
	SlowCallRatio config.Ratio `yaml:"slowCallRatio"`
	// SlowCallDuration is when a call counts as slow; default 10s.
	SlowCallDuration time.Duration `yaml:"slowCallDuration"`
	// MinCalls the window must hold before a ratio is judged; default 10.
	MinCalls int `yaml:"minCalls"`
	// Window makes the window time-based: the calls of the last Window.
	Window time.Duration `yaml:"window"`
	// OpenDuration is how long the breaker stays open; default 30s.
	OpenDuration time.Duration `yaml:"openDuration"`
	// Disabled removes the breaker.
	Disabled bool `yaml:"disabled"`
}

// Pool defaults, used where an Upstream field is left zero.
const (
	DefaultMaxConnections = 1024
	DefaultConnectTimeout = 2 * time.Second
)

// Active health check defaults, used where an ActiveHealth field is left
// zero.
const (
	DefaultHealthPath               = "/healthz"
	DefaultHealthInterval           = 5 * time.Second
	DefaultHealthTimeout            = time.Second
	DefaultHealthHealthyThreshold   = 2
	DefaultHealthUnhealthyThreshold = 3
)

// Outlier detection defaults, used where a PassiveHealth field is left
// zero.
const (
	DefaultConsecutive5xx           = 5
	DefaultConsecutiveConnectErrors = 3
	DefaultBaseEjection             = 30 * time.Second
	// DefaultMaxEjection caps ejections, or is baseEjection when that is
	// longer.
	DefaultMaxEjection     = 300 * time.Second
	DefaultMaxEjectedShare = 0.5
)

// check validates the pool at path at; that its name is unique is the
// spec's to check.
func (u Upstream) check(p *problems, at string) {
	if len(u.Targets) == 0 {
		p.add(at+".targets", "an upstream needs at least one target")
	}
	for j, t := range u.Targets {
		t.check(p, fmt.Sprintf("%s.targets[%d]", at, j))
	}
	switch u.Balance {
	case "", BalanceRoundRobin, BalanceWeighted, BalanceLeastRequest:
		if u.HashOn != nil {
			p.add(at+".hashOn", "hashOn is for balance: hash")
		}
	case BalanceHash:
		if !u.HashOn.single() {
			p.add(at+".hashOn", "balance: hash needs hashOn with exactly one of header or clientIP")
		}
	default:
		p.add(at+".balance", "unknown balancer %q (round_robin, weighted, least_request, hash)", u.Balance)
	}
	if u.MaxConnections < 0 {
		p.add(at+".maxConnections", "negative")
	}
	u.Health.check(p, at+".health")
	u.Breaker.check(p, at+".breaker", u.Name)
}

// withDefaults returns the pool as the gateway runs it.
func (u Upstream) withDefaults() Upstream {
	u.Balance = cmp.Or(u.Balance, BalanceRoundRobin)
	u.Targets = mapSlice(u.Targets, Target.withDefaults)
	u.MaxConnections = cmp.Or(u.MaxConnections, DefaultMaxConnections)
	u.ConnectTimeout = cmp.Or(u.ConnectTimeout, DefaultConnectTimeout)
	u.Health = u.Health.withDefaults()
	u.Breaker = u.Breaker.withDefaults()
	return u
}

func (t Target) check(p *problems, at string) {
	if _, _, err := net.SplitHostPort(t.Address); err != nil {
		p.add(at+".address", "%q is not host:port", t.Address)
	}
	if t.Weight < 0 || t.Weight > 1000 {
		p.add(at+".weight", "%d is not in [0, 1000]", t.Weight)
	}
}

func (t Target) withDefaults() Target {
	t.Weight = cmp.Or(t.Weight, 1)
	return t
}

// single reports whether h names exactly one key.
func (h *HashOn) single() bool { return h != nil && (h.Header != "") != h.ClientIP }

func (h Health) check(p *problems, at string) {
	if h.Active != nil {
		h.Active.check(p, at+".active")
	}
	if h.Passive != nil {
		h.Passive.check(p, at+".passive")
	}
}

func (h Health) withDefaults() Health {
	if h.Active != nil {
		a := h.Active.withDefaults()
		h.Active = &a
	}
	if h.Passive != nil {
		ph := h.Passive.withDefaults()
		h.Passive = &ph
	}
	return h
}

// check judges the probe's timing as it runs, defaults applied, so that
// the effective config validates too.
func (a ActiveHealth) check(p *problems, at string) {
	if a.HealthyThreshold < 0 || a.UnhealthyThreshold < 0 {
		p.add(at, "thresholds must be positive")
	}
	if e := a.withDefaults(); e.Timeout >= e.Interval {
		p.add(at+".timeout", "timeout %v must be below interval %v", e.Timeout, e.Interval)
	}
	if a.Path != "" && !strings.HasPrefix(a.Path, "/") {
		p.add(at+".path", "%q must start with /", a.Path)
	}
}

func (a ActiveHealth) withDefaults() ActiveHealth {
	a.Path = cmp.Or(a.Path, DefaultHealthPath)
	a.Interval = cmp.Or(a.Interval, DefaultHealthInterval)
	a.Timeout = cmp.Or(a.Timeout, min(DefaultHealthTimeout, a.Interval/2))
	a.HealthyThreshold = cmp.Or(a.HealthyThreshold, DefaultHealthHealthyThreshold)
	a.UnhealthyThreshold = cmp.Or(a.UnhealthyThreshold, DefaultHealthUnhealthyThreshold)
	return a
}

// check judges the ejection times as they run, defaults applied, so that
// the effective config validates too.
func (ph PassiveHealth) check(p *problems, at string) {
	if ph.Consecutive5xx < 0 || ph.ConsecutiveConnectErrors < 0 {
		p.add(at, "thresholds must be positive")
	}
	if e := ph.withDefaults(); e.MaxEjection < e.BaseEjection {
		p.add(at+".maxEjection", "%v is below baseEjection %v", e.MaxEjection, e.BaseEjection)
	}
}

func (ph PassiveHealth) withDefaults() PassiveHealth {
	ph.Consecutive5xx = cmp.Or(ph.Consecutive5xx, DefaultConsecutive5xx)
	ph.ConsecutiveConnectErrors = cmp.Or(ph.ConsecutiveConnectErrors, DefaultConsecutiveConnectErrors)
	ph.BaseEjection = cmp.Or(ph.BaseEjection, DefaultBaseEjection)
	ph.MaxEjection = cmp.Or(ph.MaxEjection, max(DefaultMaxEjection, ph.BaseEjection))
	ph.MaxEjectedShare = cmp.Or(ph.MaxEjectedShare, DefaultMaxEjectedShare)
	return ph
}

// check builds the breaker's settings once: the resilience package owns
// the rules.
func (b *Breaker) check(p *problems, at, upstream string) {
	if _, err := b.settings(upstream, nil, nil); err != nil {
		p.add(at, "%v", err)
	}
}

// settings are the resilience settings of the breaker named name that b
// configures (nil: resilience's defaults), checked.
func (b *Breaker) settings(name string, clk clock.Clock, obs resilience.Observer) (resilience.BreakerSettings, error) {
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
	if _, err := resilience.NewBreaker(s); err != nil {
		return s, err
	}
	return s, nil
}

// withDefaults returns the breaker each target gets, resilience's
// defaults written out: a breaker of defaults when b is nil, b alone
// when it is disabled.
func (b *Breaker) withDefaults() *Breaker {
	var e Breaker
	if b != nil {
		e = *b
	}
	if e.Disabled {
		return &e
	}
	ratios := e.FailureRatio != 0 || e.SlowCallRatio != 0
	if e.ConsecutiveFailures == 0 && !ratios {
		e.ConsecutiveFailures = resilience.DefaultBreakerConsecutiveFailures
	}
	if e.SlowCallDuration == 0 && e.SlowCallRatio != 0 {
		e.SlowCallDuration = resilience.DefaultBreakerSlowCallDuration
	}
	e.MinCalls = cmp.Or(e.MinCalls, resilience.DefaultBreakerMinCalls)
	e.OpenDuration = cmp.Or(e.OpenDuration, resilience.DefaultBreakerOpenDuration)
	return &e
}
