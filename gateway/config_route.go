package gateway

import (
	"cmp"
	"fmt"
	"math"
	"net"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/relia-dev/relia/callstore"
	"github.com/relia-dev/relia/clock"
	"github.com/relia-dev/relia/fault"
	"github.com/relia-dev/relia/gateway/cache"
	"github.com/relia-dev/relia/gateway/redisrate"
	"github.com/relia-dev/relia/internal/config"
	"github.com/relia-dev/relia/resilience"
)

// Route is which requests go where, under which policies.
type Route struct {
	// Name identifies the route in metrics (http_route), logs and errors.
	Name string `yaml:"name" config:"required"`
	// Match says which requests the route takes; empty matches all.
	Match Match `yaml:"match"`
	// Capture keeps the route's request and response headers, bodies or
	// both in its call records, capped and redacted; off by default. A
	// reload changes it from the next request.
	Capture *callstore.Capture `yaml:"capture"`
	// Upstream is the name of the pool the route sends requests to.
	// A route without one answers with its Fallback.
	Upstream string `yaml:"upstream"`
	// AI names the kind: AIGateway document of the config's file whose
	// AI gateway serves the route's requests (/v1/chat/completions,
	// /v1/embeddings, /v1/models, /v1/messages, /prompts/...), in place
	// of an upstream; its providers, failover and quotas are that
	// document's.
	AI string `yaml:"ai"`
	// Rewrite changes the path sent upstream.
	Rewrite *Rewrite `yaml:"rewrite"`
	// RequestHeaders are changed before the request goes upstream.
	RequestHeaders HeaderOps `yaml:"requestHeaders"`
	// ResponseHeaders are changed before the response goes to the client.
	ResponseHeaders HeaderOps `yaml:"responseHeaders"`
	// MaxBodySize bounds the request body; default the server's
	// MaxBodyBytes. Larger requests get 413.
	MaxBodySize config.Size `yaml:"maxBodySize"`
	// Timeout bounds the whole request, retries included; default 15s.
	// On an ai route it has no default: set, it bounds each AI call
	// besides the AIGateway's own timeouts (docs/ai-gateway.md).
	Timeout time.Duration `yaml:"timeout"`
	// PerTryTimeout bounds one attempt; default Timeout.
	PerTryTimeout time.Duration `yaml:"perTryTimeout"`
	// Retry retries failed attempts on another target.
	Retry *Retry `yaml:"retry"`
	// Bulkhead bounds the route's requests in flight.
	Bulkhead *Bulkhead `yaml:"bulkhead"`
	// Adaptive enables an adaptive concurrency limit on the route.
	Adaptive *Adaptive `yaml:"adaptive"`
	// RateLimit limits requests per key.
	RateLimit *RateLimit `yaml:"rateLimit"`
	// Fallback is the static response served when the breaker is open or
	// the pool has no healthy target.
	Fallback *Fallback `yaml:"fallback"`
	// Faults inject delays and aborts into the route's requests, for
	// experiments.
	Faults []Fault `yaml:"faults"`
	// Auth is whether the route needs credentials: "required" (the
	// default once spec.auth is set), "optional" (checked when presented,
	// so the tenant is known, and anonymous calls pass) or "none".
	Auth string `yaml:"auth"`
	// Cache keeps the route's GET responses in memory, as far as their
	// Cache-Control or Expires allow, and serves them while fresh; with
	// stale-if-error it answers with the last good response while the
	// upstream fails.
	Cache *RouteCache `yaml:"cache"`
	// Hedge sends a second attempt to another target when the first has
	// not answered within a delay, and takes whichever answers first.
	Hedge *Hedge `yaml:"hedge"`
	// Upgrades are the protocols a client may switch to on this route
	// (Connection: Upgrade), websocket the only one known: none by
	// default. A connection switches only once the target answered 101;
	// an upgrade the route does not list is served as a plain request, and
	// h2c is never passed to a target (the gateway speaks HTTP/2 itself).
	Upgrades []string `yaml:"upgrades"`
}

// The values of Route.Auth.
const (
	AuthRequired = "required"
	AuthOptional = "optional"
	AuthNone     = "none"
)

// Hedge sends a request again to a second target when the first attempt
// has not answered within Delay, and answers with whichever returns first;
// the others are cancelled. Only idempotent requests are hedged, and every
// hedge is drawn from the route's retry budget (a budget of its own with
// the retry budget's defaults when the route has no retry), so hedging
// cannot double the load on a slow pool. A hedged failure is not hedged
// again but retried, when the route retries. Responses of hedged requests
// are read whole before they are sent on, never streamed.
type Hedge struct {
	// Delay is how long the first attempt runs alone; required. The
	// route's p95 latency is a good choice.
	Delay time.Duration `yaml:"delay" config:"required"`
	// MaxHedges is how many extra attempts a request may send; default 1.
	MaxHedges int `yaml:"maxHedges"`
	// NonIdempotent hedges POST and PATCH too.
	NonIdempotent bool `yaml:"nonIdempotent"`
}

// RouteCache is a route's response cache, in memory, shared by every
// client of the route (gateway/cache).
type RouteCache struct {
	// MaxSize bounds the memory the cached responses take; default 64MiB.
	MaxSize config.Size `yaml:"maxSize"`
	// MaxEntrySize is the largest response cached; default an eighth of
	// MaxSize.
	MaxEntrySize config.Size `yaml:"maxEntrySize"`
}

// Match is a route's conditions; all that are set must hold.
type Match struct {
	// Hosts match the Host header (port ignored); "*.example.com" matches
	// any subdomain. Empty matches any host.
	Hosts []string `yaml:"hosts"`
	// Path matches the request path.
	Path *PathMatch `yaml:"path"`
	// Methods match the request method; empty matches all.
	Methods []string `yaml:"methods"`
	// Headers must all be present with these values; a value of "*"
	// only requires the header.
	Headers map[string]string `yaml:"headers"`
}

// PathMatch is exactly one of exact, prefix or regex.
type PathMatch struct {
	// Exact matches this path only.
	Exact string `yaml:"exact"`
	// Prefix matches this path and everything under it at a segment
	// boundary: "/api" matches /api and /api/users, not /apis.
	Prefix string `yaml:"prefix"`
	// Regex matches paths the whole of which match this RE2 expression.
	Regex string `yaml:"regex"`
}

// OneOfNoun makes a path match exactly one of its kinds.
func (PathMatch) OneOfNoun() string { return "path match" }

// Rewrite changes the request path before it goes upstream.
type Rewrite struct {
	// Prefix replaces the matched path prefix (a route with a prefix
	// match) with this one: prefix /api, rewrite / sends /api/users as
	// /users.
	Prefix string `yaml:"prefix"`
	// Path replaces the whole path.
	Path string `yaml:"path"`
}

// HeaderOps add, set and remove headers.
type HeaderOps struct {
	// Set replaces these headers.
	Set map[string]string `yaml:"set"`
	// Add appends these headers.
	Add map[string]string `yaml:"add"`
	// Remove deletes these headers.
	Remove []string `yaml:"remove"`
}

// Retry retries failed attempts, on another target where the pool has one.
type Retry struct {
	// Attempts is the most attempts per request, the first included;
	// default 3.
	Attempts int `yaml:"attempts"`
	// Base is the first backoff delay; default 25ms.
	Base time.Duration `yaml:"base"`
	// Cap bounds each backoff delay (full jitter); default 250ms.
	Cap time.Duration `yaml:"cap"`
	// On are the failures that are retried: "5xx", "gateway-error" (502,
	// 503, 504), "connect-failure", "reset", "retriable-4xx" (409), "429";
	// for gRPC calls also the status codes "unavailable",
	// "resource-exhausted", "deadline-exceeded", "internal", "cancelled".
	// Default connect-failure, reset and gateway-error.
	On []string `yaml:"retryOn" config:"alias=on"`
	// NonIdempotent retries POST and PATCH too. Without it only GET,
	// HEAD, OPTIONS, PUT, DELETE, TRACE and requests with an
	// Idempotency-Key header are retried.
	NonIdempotent bool `yaml:"nonIdempotent"`
	// Budget bounds retries to a share of the route's requests.
	Budget Budget `yaml:"budget"`
}

// Budget is a retry budget: retries may add at most Ratio of the requests
// plus MinPerSecond, over a sliding window of 10s.
type Budget struct {
	// Ratio of requests that retries may add; default 20%.
	Ratio config.Ratio `yaml:"ratio"`
	// MinPerSecond is a floor of retries per second; default 3.
	MinPerSecond float64 `yaml:"minPerSecond"`
}

// Bulkhead bounds a route's requests in flight.
type Bulkhead struct {
	// MaxConcurrent requests at once; default 100.
	MaxConcurrent int `yaml:"maxConcurrent"`
	// MaxQueue requests may wait for a slot; default none.
	MaxQueue int `yaml:"maxQueue"`
	// MaxWait is the longest a request waits in the queue.
	MaxWait time.Duration `yaml:"maxWait"`
}

// Adaptive is an adaptive concurrency limit (AIMD) that follows latency.
type Adaptive struct {
	// InitialLimit; default 20.
	InitialLimit int `yaml:"initialLimit"`
	// MinLimit; default 1.
	MinLimit int `yaml:"minLimit"`
	// MaxLimit; default 1000.
	MaxLimit int `yaml:"maxLimit"`
}

// RateLimit limits requests per key with a token bucket.
type RateLimit struct {
	// Key is what requests are counted by: "client_ip" (default),
	// "api_key" (the X-API-Key header or a Bearer token) or "header".
	Key string `yaml:"key"`
	// Header names the header whose value is the key, for key: header.
	Header string `yaml:"header"`
	// Rate is requests per second per key.
	Rate float64 `yaml:"rate" config:"required"`
	// Burst is requests a key may make at once; default ceil(rate).
	Burst int `yaml:"burst"`
	// Store is where the buckets live: "memory" (the default: each
	// replica counts on its own) or "redis" (one limit shared by every
	// gateway using the same Redis, gateway name and route).
	Store string `yaml:"store"`
	// Redis is the server of store: redis.
	Redis *RedisStore `yaml:"redis"`
	// OnUnreachable is what store: redis answers while Redis does not:
	// "open" lets calls through, "closed" refuses them with 503
	// rate_limit_unavailable (and makes /readyz fail), "local" falls back
	// to a bucket in each replica. Required with store: redis.
	OnUnreachable string `yaml:"onUnreachable"`
}

// RedisStore is a Redis server that holds shared rate-limit buckets.
type RedisStore struct {
	// Address is host:port of the Redis server.
	Address string `yaml:"address" config:"required"`
	// DB is the database number; default 0.
	DB int `yaml:"db"`
	// PasswordFile holds the password Redis requires, if any.
	PasswordFile string `yaml:"passwordFile"`
	// Timeout bounds one call to Redis; default 50ms. A request waits at
	// most this long on a Redis in trouble before OnUnreachable answers.
	Timeout time.Duration `yaml:"timeout"`
}

// Fallback is a static response.
type Fallback struct {
	// Status of the response; default 200.
	Status int `yaml:"status"`
	// Body of the response.
	Body string `yaml:"body"`
	// ContentType of the body; default application/json.
	ContentType string `yaml:"contentType"`
	// Headers are set on the response.
	Headers map[string]string `yaml:"headers"`
}

// Fault is an HTTP fault injected into a route's requests (see
// fault.HTTPFault, which carries it out). It delays a request, answers in
// the upstream's place (abortStatus, in a model provider's error shape
// with errorFormat), or shapes the upstream's answer as it streams to the
// client (firstByteDelay, eventsPerSecond, the *AfterEvents faults on
// Server-Sent Events, truncateBody, setHeaders), on plain and ai routes.
type Fault struct {
	// Name identifies the fault; the X-Relia-Fault request header can ask
	// for it by name.
	Name string `yaml:"name" config:"required"`
	// Percentage of matching requests faulted, 0..100% as a ratio;
	// default 100% for a fault that matches on headers, the JSON body or
	// the request's number, else none.
	Percentage config.Ratio `yaml:"percentage"`
	// Headers the request must carry for the fault to apply.
	Headers map[string]string `yaml:"headers"`
	// JSONField matches on a top-level member of the request's JSON body
	// ("model"): with neither jsonEquals nor jsonIn, on its presence. At
	// most the first MiB of the body is read to decide (a larger body
	// does not match); the body is forwarded whole.
	JSONField string `yaml:"jsonField"`
	// JSONEquals matches when jsonField's value is this: a string's
	// value, or a number's or true/false's JSON text ("4", "true").
	JSONEquals string `yaml:"jsonEquals"`
	// JSONIn matches when jsonField's value is one of these.
	JSONIn []string `yaml:"jsonIn"`
	// NthRequest faults only the N-th request the fault matches (1 is the
	// first), counted from when the fault was loaded.
	NthRequest int64 `yaml:"nthRequest"`
	// FirstRequests faults only the first N requests the fault matches.
	FirstRequests int64 `yaml:"firstRequests"`
	// Delay holds the request this long first (at most a day).
	Delay time.Duration `yaml:"delay"`
	// AbortStatus answers with this status (200 to 599) instead of
	// proxying: with the gateway's own rejection body (reason
	// fault_injected), or the provider's error body with errorFormat.
	AbortStatus int `yaml:"abortStatus"`
	// RetryAfter is sent as Retry-After, in whole seconds, with an abort.
	RetryAfter time.Duration `yaml:"retryAfter"`
	// ErrorFormat answers an abort, and writes errorAfterEvents' event,
	// in a model provider's shape: "openai" or "anthropic", so that the
	// provider's SDKs raise their own errors (a 429 their rate-limit
	// error). The gateway still counts an abort as a fault_injected
	// rejection.
	ErrorFormat string `yaml:"errorFormat"`
	// ErrorType replaces the provider's error type that the status
	// implies (rate_limit_error, overloaded_error, ...).
	ErrorType string `yaml:"errorType"`
	// FirstByteDelay holds the upstream's answer this long before its
	// first byte goes to the client (at most a day).
	FirstByteDelay time.Duration `yaml:"firstByteDelay"`
	// EventsPerSecond passes at most this many Server-Sent Events a
	// second.
	EventsPerSecond float64 `yaml:"eventsPerSecond"`
	// StallAfterEvents passes this many events and then nothing more,
	// holding the stream until the client leaves or the fault is removed.
	StallAfterEvents *int64 `yaml:"stallAfterEvents"`
	// TruncateAfterEvents passes this many events and then breaks the
	// connection (on HTTP/2, resets the stream): the stream ends without
	// its last event.
	TruncateAfterEvents *int64 `yaml:"truncateAfterEvents"`
	// ErrorAfterEvents passes this many events, then sends an error event
	// in errorFormat's shape and ends the stream.
	ErrorAfterEvents *int64 `yaml:"errorAfterEvents"`
	// TruncateBody passes only this many bytes of the answer's body and
	// then breaks the connection.
	TruncateBody *config.Size `yaml:"truncateBody"`
	// SetHeaders are set on the answer, over the upstream's.
	SetHeaders map[string]string `yaml:"setHeaders"`
	// Seed seeds which requests the percentage picks: the same seed and
	// the same sequence of requests pick the same ones. relia run sets it
	// from the experiment's seed.
	Seed uint64 `yaml:"seed"`
}

// DefaultRouteTimeout bounds a request, retries included, where a route
// sets no Timeout.
const DefaultRouteTimeout = 15 * time.Second

// Retry defaults, used where a Retry field is left zero. They are shorter
// than resilience's library defaults: at the edge a retry must fit in the
// client's patience, not a batch job's.
const (
	DefaultRetryAttempts = 3
	DefaultRetryBase     = 25 * time.Millisecond
	DefaultRetryCap      = 250 * time.Millisecond
)

// DefaultMaxHedges is how many extra attempts a hedged request sends when
// Hedge.MaxHedges is left zero.
const DefaultMaxHedges = 1

// defaultRetryOn are the failures retried where Retry.On is left empty.
func defaultRetryOn() []string { return []string{"connect-failure", "reset", "gateway-error"} }

// routeRefs is what a route may refer to outside itself.
type routeRefs struct {
	upstreams map[string]bool // the pools' names
	auth      bool            // spec.auth is set
}

// check validates the route at path at; that its name is unique is the
// spec's to check.
func (r Route) check(p *problems, at string, refs routeRefs) {
	if r.AI != "" {
		r.checkAI(p, at)
	} else if r.Upstream == "" && r.Fallback == nil {
		p.add(at+".upstream", "a route needs an upstream or a fallback")
	} else if r.Upstream != "" && !refs.upstreams[r.Upstream] {
		p.add(at+".upstream", "unknown upstream %q", r.Upstream)
	}
	r.Match.check(p, at+".match")
	if r.Rewrite != nil {
		r.Rewrite.check(p, at+".rewrite", r.Match.Path)
	}
	if r.PerTryTimeout > 0 && r.Timeout > 0 && r.PerTryTimeout > r.Timeout {
		p.add(at+".perTryTimeout", "%v exceeds the route's timeout %v", r.PerTryTimeout, r.Timeout)
	}
	if r.Retry != nil {
		r.Retry.check(p, at+".retry")
	}
	if r.Bulkhead != nil {
		r.Bulkhead.check(p, at+".bulkhead")
	}
	if r.Adaptive != nil {
		r.Adaptive.check(p, at+".adaptive")
	}
	if r.RateLimit != nil {
		r.RateLimit.check(p, at+".rateLimit")
	}
	if r.Hedge != nil {
		r.Hedge.check(p, at+".hedge", r.Upstream != "")
	}
	for j, u := range r.Upgrades {
		if !strings.EqualFold(u, "websocket") {
			p.add(fmt.Sprintf("%s.upgrades[%d]", at, j), "unknown protocol %q (websocket)", u)
		}
	}
	if r.Cache != nil {
		r.Cache.check(p, at+".cache")
	}
	switch r.Auth {
	case "", AuthNone:
	case AuthRequired, AuthOptional:
		if !refs.auth {
			p.add(at+".auth", "auth: %s needs spec.auth", r.Auth)
		}
	default:
		p.add(at+".auth", "unknown value %q (required, optional, none)", r.Auth)
	}
	if r.Fallback != nil {
		r.Fallback.check(p, at+".fallback")
	}
	names := map[string]bool{}
	for j, f := range r.Faults {
		fp := fmt.Sprintf("%s.faults[%d]", at, j)
		if names[f.Name] {
			p.add(fp+".name", "duplicate fault %q", f.Name)
		}
		names[f.Name] = true
		f.check(p, fp)
	}
}

// withDefaults returns the route as the gateway runs it under srv (its
// defaults applied); auth says whether spec.auth is set.
func (r Route) withDefaults(srv Server, auth bool) Route {
	if r.AI == "" { // an AI call is bounded by its AIGateway's timeouts unless the route sets one
		r.Timeout = cmp.Or(r.Timeout, DefaultRouteTimeout)
	}
	if r.PerTryTimeout == 0 || r.PerTryTimeout > r.Timeout {
		r.PerTryTimeout = r.Timeout
	}
	r.MaxBodySize = cmp.Or(r.MaxBodySize, srv.MaxBodyBytes)
	if r.Auth == "" {
		r.Auth = AuthNone
		if auth {
			r.Auth = AuthRequired
		}
	}
	r.Retry = mapPtr(r.Retry, Retry.withDefaults)
	r.Hedge = mapPtr(r.Hedge, Hedge.withDefaults)
	r.Bulkhead = mapPtr(r.Bulkhead, Bulkhead.withDefaults)
	r.Adaptive = mapPtr(r.Adaptive, Adaptive.withDefaults)
	r.RateLimit = mapPtr(r.RateLimit, RateLimit.withDefaults)
	r.Cache = mapPtr(r.Cache, RouteCache.withDefaults)
	r.Fallback = mapPtr(r.Fallback, Fallback.withDefaults)
	r.Faults = mapSlice(r.Faults, Fault.withDefaults)
	return r
}

func (m Match) check(p *problems, at string) {
	if pm := m.Path; pm != nil {
		if pm.Regex != "" {
			if _, err := regexp.Compile(pm.Regex); err != nil {
				p.add(at+".path.regex", "%v", err)
			}
		}
		for _, v := range []string{pm.Exact, pm.Prefix} {
			if v != "" && !strings.HasPrefix(v, "/") {
				p.add(at+".path", "%q must start with /", v)
			}
		}
	}
	for j, h := range m.Hosts {
		if h == "" || strings.ContainsAny(h, "/ ") || strings.Count(h, "*") > 1 || (strings.Contains(h, "*") && !strings.HasPrefix(h, "*.")) {
			p.add(fmt.Sprintf("%s.hosts[%d]", at, j), "%q is not a host name or *.domain", h)
		}
	}
	for j, meth := range m.Methods {
		if meth == "" || strings.ToUpper(meth) != meth {
			p.add(fmt.Sprintf("%s.methods[%d]", at, j), "%q is not an upper-case method", meth)
		}
	}
}

// check validates the rewrite of a route whose path match is path.
func (rw Rewrite) check(p *problems, at string, path *PathMatch) {
	if (rw.Prefix == "") == (rw.Path == "") {
		p.add(at, "set exactly one of prefix or path")
	}
	if rw.Prefix != "" && (path == nil || path.Prefix == "") {
		p.add(at+".prefix", "a prefix rewrite needs a prefix path match")
	}
}

func (rt Retry) check(p *problems, at string) {
	if rt.Attempts < 0 || rt.Attempts > 10 {
		p.add(at+".attempts", "%d is not in [1, 10]", rt.Attempts)
	}
	if rt.Cap > 0 && rt.Cap < rt.Base {
		p.add(at+".cap", "%v is below base %v", rt.Cap, rt.Base)
	}
	for j, o := range rt.On {
		_, http := retryConditions[o]
		if _, grpc := grpcRetryCodes[o]; !http && !grpc {
			p.add(fmt.Sprintf("%s.retryOn[%d]", at, j), "unknown retry condition %q (5xx, gateway-error, connect-failure, reset, retriable-4xx, 429; for gRPC unavailable, resource-exhausted, deadline-exceeded, internal, cancelled)", o)
		}
	}
	if rt.Budget.MinPerSecond < 0 {
		p.add(at+".budget.minPerSecond", "negative")
	}
}

func (rt Retry) withDefaults() Retry {
	rt.Attempts = cmp.Or(rt.Attempts, DefaultRetryAttempts)
	rt.Base = cmp.Or(rt.Base, DefaultRetryBase)
	rt.Cap = cmp.Or(rt.Cap, max(DefaultRetryCap, rt.Base))
	if len(rt.On) == 0 {
		rt.On = defaultRetryOn()
	}
	rt.Budget.Ratio = cmp.Or(rt.Budget.Ratio, config.Ratio(resilience.DefaultBudgetRatio))
	rt.Budget.MinPerSecond = cmp.Or(rt.Budget.MinPerSecond, resilience.DefaultBudgetMinPerSecond)
	return rt
}

func (b Bulkhead) check(p *problems, at string) {
	if b.MaxConcurrent < 0 || b.MaxQueue < 0 || (b.MaxWait > 0 && b.MaxQueue == 0) {
		p.add(at, "maxConcurrent and maxQueue must be positive, and maxWait needs a queue")
	} else if _, err := resilience.NewBulkhead(b.settings("", nil, nil)); err != nil {
		p.add(at, "%v", err) // a bound of resilience's own, so that New never refuses what Parse took
	}
}

// settings are the resilience settings of the bulkhead of the route named
// name.
func (b Bulkhead) settings(name string, clk clock.Clock, obs resilience.Observer) resilience.BulkheadSettings {
	return resilience.BulkheadSettings{Name: name, MaxConcurrent: b.MaxConcurrent, MaxQueue: b.MaxQueue, MaxWait: b.MaxWait, Clock: clk, Observer: obs}
}

func (b Bulkhead) withDefaults() Bulkhead {
	b.MaxConcurrent = cmp.Or(b.MaxConcurrent, resilience.DefaultBulkheadMaxConcurrent)
	return b
}

func (a Adaptive) check(p *problems, at string) {
	if a.MinLimit < 0 || a.MaxLimit < 0 || a.InitialLimit < 0 || (a.MaxLimit > 0 && a.MinLimit > a.MaxLimit) {
		p.add(at, "limits must be positive with minLimit <= maxLimit")
	} else if _, err := resilience.NewLimiter(a.settings("", nil, nil)); err != nil {
		p.add(at, "%v", err) // the limits against resilience's defaults and bounds
	}
}

// settings are the resilience settings of the adaptive limit of the route
// named name.
func (a Adaptive) settings(name string, clk clock.Clock, obs resilience.Observer) resilience.LimiterSettings {
	return resilience.LimiterSettings{Name: name, InitialLimit: a.InitialLimit, MinLimit: a.MinLimit, MaxLimit: a.MaxLimit, Clock: clk, Observer: obs}
}

// withDefaults writes out resilience's limiter defaults: the initial
// limit, left out, is its default moved into [minLimit, maxLimit].
func (a Adaptive) withDefaults() Adaptive {
	a.MinLimit = cmp.Or(a.MinLimit, resilience.DefaultLimiterMinLimit)
	a.MaxLimit = cmp.Or(a.MaxLimit, resilience.DefaultLimiterMaxLimit)
	a.InitialLimit = cmp.Or(a.InitialLimit, min(max(resilience.DefaultLimiterInitialLimit, a.MinLimit), a.MaxLimit))
	return a
}

func (rl RateLimit) check(p *problems, at string) {
	if rl.Rate <= 0 || rl.Rate > 1e9 {
		p.add(at+".rate", "%v is not in (0, 1e9]", rl.Rate)
	}
	if rl.Burst < 0 {
		p.add(at+".burst", "negative")
	} else if rl.Rate > 0 && rl.Rate <= 1e9 {
		rl.checkBucket(p, at)
	}
	switch rl.Key {
	case "", "client_ip", "api_key":
		if rl.Header != "" {
			p.add(at+".header", "header is for key: header")
		}
	case "header":
		if rl.Header == "" {
			p.add(at+".header", "key: header needs a header name")
		}
	default:
		p.add(at+".key", "unknown key %q (client_ip, api_key, header)", rl.Key)
	}
	switch rl.Store {
	case "", "memory":
		if rl.Redis != nil || rl.OnUnreachable != "" {
			p.add(at+".store", "redis and onUnreachable are for store: redis")
		}
	case "redis":
		if rl.Redis == nil {
			p.add(at+".redis", "store: redis needs redis: {address: host:port}")
		} else {
			rl.Redis.check(p, at+".redis")
		}
		if rl.OnUnreachable == "" {
			p.add(at+".onUnreachable", "store: redis must say what to do while Redis is unreachable: open, closed or local")
		} else if _, err := redisrate.ParseUnreachable(rl.OnUnreachable); err != nil {
			p.add(at+".onUnreachable", "unknown value %q (open, closed, local)", rl.OnUnreachable)
		}
	default:
		p.add(at+".store", "unknown store %q (memory, redis)", rl.Store)
	}
}

// checkBucket holds rate and burst to the bounds of the limiter that
// counts them: resilience's bucket (the memory store, and the local
// fallback of the redis store) and, for store: redis, redisrate's.
func (rl RateLimit) checkBucket(p *problems, at string) {
	_, err := resilience.NewKeyedRateLimiter(rl.settings("", nil, nil))
	if err == nil && rl.Store == "redis" {
		err = redisrate.CheckRate(rl.Rate, rl.Burst)
	}
	if err != nil {
		p.add(at, "%v", err)
	}
}

// settings are the resilience settings of the in-memory rate limit of
// the route named name.
func (rl RateLimit) settings(name string, clk clock.Clock, obs resilience.Observer) resilience.KeyedRateLimiterSettings {
	return resilience.KeyedRateLimiterSettings{Name: name, Rate: rl.Rate, Burst: rl.Burst, Clock: clk, Observer: obs}
}

// withDefaults writes out the key, the store and the burst the bucket
// gets: one second's worth, at least 1.
func (rl RateLimit) withDefaults() RateLimit {
	rl.Key = cmp.Or(rl.Key, "client_ip")
	rl.Burst = cmp.Or(rl.Burst, int(max(1, math.Ceil(rl.Rate))))
	rl.Store = cmp.Or(rl.Store, "memory")
	rl.Redis = mapPtr(rl.Redis, RedisStore.withDefaults)
	return rl
}

func (rs RedisStore) check(p *problems, at string) {
	if _, _, err := net.SplitHostPort(rs.Address); err != nil {
		p.add(at+".address", "%q is not host:port", rs.Address)
	} else if rs.DB < 0 {
		p.add(at+".db", "negative")
	}
}

func (rs RedisStore) withDefaults() RedisStore {
	rs.Timeout = cmp.Or(rs.Timeout, redisrate.DefaultTimeout)
	return rs
}

// check validates the hedge of a route; hasUpstream says whether the
// route has a pool to hedge over.
func (h Hedge) check(p *problems, at string, hasUpstream bool) {
	if h.Delay <= 0 {
		p.add(at+".delay", "a hedge needs a positive delay")
	}
	if h.MaxHedges < 0 || h.MaxHedges > 3 {
		p.add(at+".maxHedges", "%d is not in [1, 3]", h.MaxHedges)
	}
	if !hasUpstream {
		p.add(at, "a hedge needs an upstream")
	}
}

func (h Hedge) withDefaults() Hedge {
	h.MaxHedges = cmp.Or(h.MaxHedges, DefaultMaxHedges)
	return h
}

func (rc RouteCache) check(p *problems, at string) {
	if e := rc.withDefaults(); rc.MaxEntrySize > e.MaxSize {
		p.add(at+".maxEntrySize", "%v exceeds the cache's maxSize %v", rc.MaxEntrySize, e.MaxSize)
	}
}

// withDefaults writes out gateway/cache's defaults: 64MiB, entries up to
// an eighth of it.
func (rc RouteCache) withDefaults() RouteCache {
	rc.MaxSize = cmp.Or(rc.MaxSize, cache.DefaultMaxBytes)
	rc.MaxEntrySize = cmp.Or(rc.MaxEntrySize, rc.MaxSize/8)
	return rc
}

func (f Fallback) check(p *problems, at string) {
	if f.Status != 0 && (f.Status < 100 || f.Status > 599) {
		p.add(at+".status", "%d is not an HTTP status", f.Status)
	}
}

func (f Fallback) withDefaults() Fallback {
	f.Status = cmp.Or(f.Status, http.StatusOK)
	f.ContentType = cmp.Or(f.ContentType, "application/json")
	return f
}

// check validates a fault; that its name is unique in the route is the
// route's to check.
// FaultProblem is one thing wrong with a route fault: the field it is
// about (".abortStatus"; empty for the fault as a whole) and what is
// wrong.
type FaultProblem struct {
	Field   string
	Message string
}

// Problems checks f as the gateway does when it loads a route's faults;
// relia run checks an experiment's gateway faults with it too.
func (f Fault) Problems() []FaultProblem {
	var ps []FaultProblem
	add := func(field, format string, args ...any) {
		ps = append(ps, FaultProblem{Field: field, Message: fmt.Sprintf(format, args...)})
	}
	if f.AbortStatus != 0 && (f.AbortStatus < 200 || f.AbortStatus > 599) {
		add(".abortStatus", "%d is not a status a fault may answer with (200 to 599)", f.AbortStatus)
	}
	if f.AbortStatus == 0 && f.Delay == 0 && !f.shapesResponse() {
		add("", "a fault needs something to do: a delay, an abortStatus, or a fault on the answer (firstByteDelay, eventsPerSecond, stallAfterEvents, truncateAfterEvents, errorAfterEvents, truncateBody, setHeaders)")
	}
	if f.RetryAfter < 0 || f.RetryAfter > 0 && f.AbortStatus == 0 {
		add(".retryAfter", "retryAfter goes with an abortStatus and must not be negative")
	}
	switch f.ErrorFormat {
	case "", fault.FormatOpenAI, fault.FormatAnthropic:
		if f.ErrorFormat != "" && f.AbortStatus == 0 && f.ErrorAfterEvents == nil {
			add(".errorFormat", "errorFormat shapes the answer of abortStatus or the event of errorAfterEvents; give one")
		}
	default:
		add(".errorFormat", "unknown value %q (openai, anthropic)", f.ErrorFormat)
	}
	if f.ErrorType != "" && f.ErrorFormat == "" {
		add(".errorType", "errorType needs errorFormat")
	}
	if f.JSONField == "" && f.JSONEquals != "" {
		add(".jsonEquals", "jsonEquals needs jsonField, the member it compares")
	} else if f.JSONField == "" && len(f.JSONIn) > 0 {
		add(".jsonIn", "jsonIn needs jsonField, the member it compares")
	} else if f.JSONEquals != "" && len(f.JSONIn) > 0 {
		add(".jsonIn", "jsonEquals and jsonIn both set; give one")
	}
	if f.NthRequest < 0 {
		add(".nthRequest", "must not be negative, got %d", f.NthRequest)
	}
	if f.FirstRequests < 0 {
		add(".firstRequests", "must not be negative, got %d", f.FirstRequests)
	} else if f.FirstRequests > 0 && f.NthRequest > 0 {
		add(".firstRequests", "nthRequest and firstRequests both set; give one")
	}
	if f.EventsPerSecond < 0 || f.EventsPerSecond != f.EventsPerSecond {
		add(".eventsPerSecond", "must not be negative, got %v", f.EventsPerSecond)
	}
	ends := 0
	for _, e := range []struct {
		name string
		v    *int64
	}{{"stallAfterEvents", f.StallAfterEvents}, {"truncateAfterEvents", f.TruncateAfterEvents}, {"errorAfterEvents", f.ErrorAfterEvents}} {
		if e.v == nil {
			continue
		}
		ends++
		if *e.v < 0 {
			add("."+e.name, "must not be negative, got %d", *e.v)
		} else if ends > 1 {
			add("."+e.name, "stallAfterEvents, truncateAfterEvents and errorAfterEvents each end a stream; give one")
		}
	}
	if f.ErrorAfterEvents != nil && f.ErrorFormat == "" {
		add(".errorAfterEvents", "errorAfterEvents needs errorFormat, the provider whose error event to send")
	}
	if f.AbortStatus != 0 && f.actsOnResponse() {
		add(".abortStatus", "abortStatus answers in place of the upstream; the faults on its answer cannot go with it")
	}
	if len(ps) > 0 {
		return ps
	}
	if _, err := fault.NewHTTPFilter([]fault.HTTPRule{f.withDefaults().rule()}, fault.HTTPFilterOptions{}); err != nil {
		add("", "%v", err) // the fault filter's own bounds (a delay of at most a day, header names)
	}
	return ps
}

func (f Fault) check(p *problems, at string) {
	for _, fp := range f.Problems() {
		p.add(at+fp.Field, "%s", fp.Message)
	}
}

// shapesResponse reports whether f acts on the upstream's answer, its
// headers included.
func (f Fault) shapesResponse() bool {
	return f.actsOnResponse() || len(f.SetHeaders) > 0
}

// actsOnResponse reports whether f acts on the upstream's answer's body or
// timing (fault.HTTPFault.ActsOnResponse).
func (f Fault) actsOnResponse() bool {
	return f.FirstByteDelay != 0 || f.EventsPerSecond != 0 || f.StallAfterEvents != nil ||
		f.TruncateAfterEvents != nil || f.ErrorAfterEvents != nil || f.TruncateBody != nil
}

// rule is the fault filter's rule that f, with its defaults, configures.
func (f Fault) rule() fault.HTTPRule {
	ft := fault.HTTPFault{
		Headers: f.Headers, JSONField: f.JSONField, NthRequest: f.NthRequest, FirstRequests: f.FirstRequests,
		Delay: f.Delay.Milliseconds(), AbortStatus: f.AbortStatus, RetryAfter: int64((f.RetryAfter + time.Second - 1) / time.Second),
		ErrorFormat: f.ErrorFormat, ErrorType: f.ErrorType, FirstByteDelay: f.FirstByteDelay.Milliseconds(),
		EventsPerSecond: f.EventsPerSecond, StallAfterEvents: f.StallAfterEvents, TruncateAfterEvents: f.TruncateAfterEvents,
		ErrorAfterEvents: f.ErrorAfterEvents, SetHeaders: f.SetHeaders,
	}
	if f.JSONEquals != "" {
		v := fault.JSONScalar(f.JSONEquals)
		ft.JSONEquals = &v
	}
	for _, v := range f.JSONIn {
		ft.JSONIn = append(ft.JSONIn, fault.JSONScalar(v))
	}
	if f.TruncateBody != nil {
		n := int64(*f.TruncateBody)
		ft.TruncateBody = &n
	}
	return fault.HTTPRule{Name: f.Name, Probability: float64(f.Percentage), Fault: ft}
}

// withDefaults writes out the share a fault keyed on headers, the JSON
// body or the request's number applies to: every request that matches.
func (f Fault) withDefaults() Fault {
	if f.Percentage == 0 && (len(f.Headers) > 0 || f.JSONField != "" || f.NthRequest > 0 || f.FirstRequests > 0) {
		f.Percentage = 1
	}
	return f
}
