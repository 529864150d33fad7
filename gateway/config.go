package gateway

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"regexp"
	"strings"
	"time"

	"github.com/relia-dev/relia/gateway/auth"
	"github.com/relia-dev/relia/gateway/cache"
	"github.com/relia-dev/relia/gateway/redisrate"
	"github.com/relia-dev/relia/internal/config"
)

// Kind is the kind: of gateway documents.
const Kind = "Gateway"

// Defaults of the server settings, used where a field is left zero.
const (
	DefaultReadHeaderTimeout = 10 * time.Second
	DefaultIdleTimeout       = 90 * time.Second
	DefaultWriteTimeout      = 60 * time.Second
	DefaultMaxHeaderBytes    = 16 << 10
	DefaultMaxBodyBytes      = 10 << 20
	DefaultDrainTimeout      = 15 * time.Second
	DefaultRouteTimeout      = 15 * time.Second
	DefaultAdminAddress      = "127.0.0.1:9901"
)

// Config is the body of a `kind: Gateway` document. Every field's comment
// is user documentation (docs/gateway.md and docs/schema/gateway.json are
// generated from the same struct).
type Config struct {
	// Metadata names the gateway.
	Metadata Metadata `yaml:"metadata"`
	// Spec is what the gateway does.
	Spec Spec `yaml:"spec" config:"required"`

	// doc is the document the config was read from, so that validation
	// errors point into it.
	doc config.Document
}

// Metadata names a gateway in logs and metrics.
type Metadata struct {
	// Name of the gateway, "edge" when left out.
	Name string `yaml:"name"`
}

// Spec is a gateway's listeners, routes and upstream pools.
type Spec struct {
	// Listeners accept client traffic; at least one.
	Listeners []Listener `yaml:"listeners" config:"required"`
	// Admin is the admin API listener (config, routes, health, breakers,
	// reload, /metrics, /healthz, /readyz).
	Admin Admin `yaml:"admin"`
	// Server holds the defenses every listener applies.
	Server Server `yaml:"server"`
	// TrustedProxies are the addresses (CIDRs or single IPs) whose
	// X-Forwarded-For and X-Forwarded-Proto are believed; from anyone
	// else they are replaced.
	TrustedProxies []string `yaml:"trustedProxies"`
	// AccessLog configures the JSON access log.
	AccessLog AccessLog `yaml:"accessLog"`
	// Metrics configures the gateway's Prometheus metrics.
	Metrics Metrics `yaml:"metrics"`
	// Auth configures who may call the gateway: API keys, JWTs or both.
	// Once it is set, every route requires credentials unless it says
	// auth: optional or auth: none.
	Auth *Auth `yaml:"auth"`
	// Upstreams are the pools of targets routes send requests to.
	Upstreams []Upstream `yaml:"upstreams" config:"required"`
	// Routes are tried in order; the first that matches a request takes it.
	Routes []Route `yaml:"routes" config:"required"`
}

// Listener is an address the gateway accepts client traffic on.
type Listener struct {
	// Name identifies the listener in logs; defaults to its address.
	Name string `yaml:"name"`
	// Address is host:port to listen on, "127.0.0.1:8080" or ":8080".
	Address string `yaml:"address" config:"required"`
	// TLS, when set, serves HTTPS with HTTP/2 (ALPN h2) and HTTP/1.1.
	TLS *TLS `yaml:"tls"`
	// H2C serves HTTP/2 without TLS (prior knowledge or Upgrade: h2c)
	// besides HTTP/1.1, on net/http rather than the fast HTTP/1.1 engine.
	H2C bool `yaml:"h2c"`
}

// TLS names a certificate and its key, PEM files.
type TLS struct {
	// CertFile is the certificate chain, PEM.
	CertFile string `yaml:"certFile" config:"required"`
	// KeyFile is the private key, PEM.
	KeyFile string `yaml:"keyFile" config:"required"`
}

// Admin configures the admin API listener.
type Admin struct {
	// Address is host:port of the admin API; default 127.0.0.1:9901.
	// "off" disables it.
	Address string `yaml:"address"`
	// TokenFile holds the bearer token the admin API requires. Required
	// when Address is not a loopback address: an open admin API on a
	// public interface would let anyone reload the config.
	TokenFile string `yaml:"tokenFile"`
}

// Server holds the limits and timeouts that defend every listener against
// slow or oversized clients.
type Server struct {
	// ReadHeaderTimeout bounds how long a client may take to send the
	// request headers (slowloris); default 10s.
	ReadHeaderTimeout time.Duration `yaml:"readHeaderTimeout"`
	// IdleTimeout closes keep-alive connections idle this long; default 90s.
	IdleTimeout time.Duration `yaml:"idleTimeout"`
	// WriteTimeout bounds writing one response; default 60s.
	WriteTimeout time.Duration `yaml:"writeTimeout"`
	// MaxHeaderBytes bounds the request line and headers; default 16KiB.
	// Larger requests get 431.
	MaxHeaderBytes config.Size `yaml:"maxHeaderBytes"`
	// MaxBodyBytes bounds a request body where a route sets no limit of
	// its own; default 10MiB. Larger requests get 413.
	MaxBodyBytes config.Size `yaml:"maxBodyBytes"`
	// DrainTimeout is how long shutdown waits for in-flight requests;
	// default 15s.
	DrainTimeout time.Duration `yaml:"drainTimeout"`
	// EscapedSlashes is what happens to %2F and %5C in request paths:
	// decode (default), keep (encoded, inside their segment), or reject
	// (400). Routes match, and targets receive, the resulting path.
	EscapedSlashes EscapedSlashes `yaml:"escapedSlashes"`
}

// AccessLog configures the JSON access log. Authorization, cookies and
// API keys are never written.
type AccessLog struct {
	// Path is the file to append to; "-" or empty means stderr.
	Path string `yaml:"path"`
	// Disabled turns the access log off.
	Disabled bool `yaml:"disabled"`
}

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

// Route is which requests go where, under which policies.
type Route struct {
	// Name identifies the route in metrics (http_route), logs and errors.
	Name string `yaml:"name" config:"required"`
	// Match says which requests the route takes; empty matches all.
	Match Match `yaml:"match"`
	// Upstream is the name of the pool the route sends requests to.
	// A route without one answers with its Fallback.
	Upstream string `yaml:"upstream"`
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

// Auth configures the gateway's authentication: API keys from a file,
// bearer JWTs, or both. Which routes a caller may call comes from its key
// entry (routes), or from the token (routesClaim, tenantRoutes); a call to
// any other route is refused with 403.
type Auth struct {
	// KeysFile is an API key file (kind: APIKeys): for each key its id,
	// tenant, the routes it may call and the SHA-256 of the key, never the
	// key itself. Read at start and on every reload.
	KeysFile string `yaml:"keysFile"`
	// KeyHeader is the request header API keys come in; default
	// X-API-Key. A key may also come as "Authorization: Bearer <key>".
	KeyHeader string `yaml:"keyHeader"`
	// JWT lists the issuers whose bearer tokens are accepted. A token is
	// verified under the entry whose issuer matches its iss; with several
	// entries each must name its issuer.
	JWT []JWT `yaml:"jwt"`
}

// JWT configures bearer-token verification: HS256 with a shared secret,
// RS256 and ES256 with the issuer's published keys (JWKS).
type JWT struct {
	// Issuer, when set, must equal the token's iss.
	Issuer string `yaml:"issuer"`
	// Audience, when set, must be among the token's aud.
	Audience string `yaml:"audience"`
	// JWKSFile is a JSON Web Key Set file (the issuer's jwks_uri saved)
	// whose keys verify RS256 and ES256 tokens by kid.
	JWKSFile string `yaml:"jwksFile"`
	// JWKSURL is the issuer's jwks_uri, fetched at start and every
	// JWKSRefresh, and at once (at most every 30s) for a token whose kid
	// the set lacks, so rotated keys need no config change. A failed fetch
	// keeps the last good set; /readyz reports the set's state. At most
	// one of JWKSFile and JWKSURL.
	JWKSURL string `yaml:"jwksURL"`
	// JWKSRefresh is how often JWKSURL is fetched; default 10m.
	JWKSRefresh time.Duration `yaml:"jwksRefresh"`
	// SecretFile holds the HS256 secret, at least 32 bytes.
	SecretFile string `yaml:"secretFile"`
	// Leeway allows for clock skew on exp and nbf; default none.
	Leeway time.Duration `yaml:"leeway"`
	// AllowNoExpiry accepts tokens without exp.
	AllowNoExpiry bool `yaml:"allowNoExpiry"`
	// TenantClaim is the claim naming the caller's tenant; default tenant.
	TenantClaim string `yaml:"tenantClaim"`
	// RoutesClaim is a claim listing the routes the token may call
	// (space-separated, as scope is, or an array).
	RoutesClaim string `yaml:"routesClaim"`
	// TenantRoutes lists, per tenant, the routes its tokens may call, by
	// name or glob. With neither this nor RoutesClaim a valid token may
	// call every route.
	TenantRoutes map[string][]string `yaml:"tenantRoutes"`
}

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

// maxEntry is the largest entry the cache keeps, as gateway/cache
// defaults it.
func (rc *RouteCache) maxEntry() int64 {
	switch {
	case rc.MaxEntrySize > 0:
		return int64(rc.MaxEntrySize)
	case rc.MaxSize > 0:
		return int64(rc.MaxSize) / 8
	}
	return cache.DefaultMaxBytes / 8
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
// fault.HTTPFault).
type Fault struct {
	// Name identifies the fault; the X-Relia-Fault request header can ask
	// for it by name.
	Name string `yaml:"name" config:"required"`
	// Percentage of matching requests faulted, 0..100% as a ratio.
	Percentage config.Ratio `yaml:"percentage"`
	// Headers the request must carry for the fault to apply.
	Headers map[string]string `yaml:"headers"`
	// Delay holds the request this long first.
	Delay time.Duration `yaml:"delay"`
	// AbortStatus answers with this status instead of proxying.
	AbortStatus int `yaml:"abortStatus"`
	// Seed seeds which requests the percentage picks: the same seed and
	// the same sequence of requests pick the same ones. relia run sets it
	// from the experiment's seed.
	Seed uint64 `yaml:"seed"`
}

// LoadFile reads and validates the Gateway document in the file at path.
func LoadFile(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading gateway config: %w", err)
	}
	return Parse(path, data)
}

// Parse reads and validates the Gateway document in data, which must hold
// exactly one; documents of other kinds are skipped. name is used in errors.
func Parse(name string, data []byte) (*Config, error) {
	docs, err := config.Parse(name, data)
	if err != nil {
		return nil, err
	}
	var found *Config
	for _, d := range docs {
		if d.Kind != Kind {
			continue
		}
		if found != nil {
			return nil, d.Errorf("kind", "a second Gateway document; a file holds one")
		}
		c := &Config{doc: d}
		if err := d.Decode(c); err != nil {
			return nil, err
		}
		if err := c.validate(); err != nil {
			return nil, err
		}
		found = c
	}
	if found == nil {
		return nil, fmt.Errorf("%s: no document of kind %s", name, Kind)
	}
	return found, nil
}

// errorf reports a problem at the field at path, positioned in the source
// document when there is one.
func (c *Config) errorf(path, format string, args ...any) error {
	if c.doc.Node == nil {
		return fmt.Errorf("%s: %s", path, fmt.Sprintf(format, args...))
	}
	return c.doc.Errorf(path, format, args...)
}

// Validate checks what the strict decoder cannot: references between
// routes and upstreams, regexes, addresses, impossible combinations. Configs
// built in Go should be validated before New; New does it too.
func (c *Config) Validate() error { return c.validate() }

var retryOn = map[string]bool{"5xx": true, "gateway-error": true, "connect-failure": true, "reset": true, "retriable-4xx": true, "429": true,
	"unavailable": true, "resource-exhausted": true, "deadline-exceeded": true, "internal": true, "cancelled": true}

func (c *Config) validate() error {
	var errs []error
	bad := func(path, format string, args ...any) { errs = append(errs, c.errorf(path, format, args...)) }
	s := &c.Spec
	if len(s.Listeners) == 0 {
		bad("spec.listeners", "at least one listener is required")
	}
	seenAddr := map[string]string{}
	for i, l := range s.Listeners {
		p := fmt.Sprintf("spec.listeners[%d]", i)
		host, port, err := net.SplitHostPort(l.Address)
		if err != nil {
			bad(p+".address", "%q is not host:port", l.Address)
			continue
		}
		for a, prev := range seenAddr {
			ah, ap, _ := net.SplitHostPort(a)
			// Port 0 asks for a free port each time: never a clash.
			if ap == port && port != "0" && (ah == host || ah == "" || host == "" || ah == "0.0.0.0" || host == "0.0.0.0") {
				bad(p+".address", "%s overlaps listener %s (%s)", l.Address, prev, a)
			}
		}
		seenAddr[l.Address] = fmt.Sprint(i)
		if l.TLS != nil && l.H2C {
			bad(p+".h2c", "h2c is HTTP/2 without TLS; a TLS listener already serves HTTP/2")
		}
	}
	if a := s.Admin.Address; a != "" && a != "off" {
		host, port, err := net.SplitHostPort(a)
		if err != nil {
			bad("spec.admin.address", "%q is not host:port", a)
		} else {
			if !isLoopbackHost(host) && s.Admin.TokenFile == "" {
				bad("spec.admin.tokenFile", "the admin API listens on a non-loopback address %s and needs a bearer token", a)
			}
			for _, l := range s.Listeners {
				if _, lp, _ := net.SplitHostPort(l.Address); lp == port && port != "0" {
					bad("spec.admin.address", "the admin API may not share port %s with listener %s", port, l.Address)
				}
			}
		}
	}
	switch s.Server.EscapedSlashes {
	case "", EscapedSlashesDecode, EscapedSlashesKeep, EscapedSlashesReject:
	default:
		bad("spec.server.escapedSlashes", "unknown choice %q (decode, keep, reject)", s.Server.EscapedSlashes)
	}
	s.Metrics.validate(bad)
	for i, tp := range s.TrustedProxies {
		if _, err := parsePrefix(tp); err != nil {
			bad(fmt.Sprintf("spec.trustedProxies[%d]", i), "%v", err)
		}
	}
	if a := s.Auth; a != nil {
		if a.KeysFile == "" && len(a.JWT) == 0 {
			bad("spec.auth", "auth needs keysFile, jwt or both")
		}
		issuers := map[string]bool{}
		for i, j := range a.JWT {
			jp := fmt.Sprintf("spec.auth.jwt[%d]", i)
			switch {
			case j.JWKSFile == "" && j.JWKSURL == "" && j.SecretFile == "":
				bad(jp, "an issuer needs jwksFile, jwksURL or secretFile")
			case j.JWKSFile != "" && j.JWKSURL != "":
				bad(jp+".jwksURL", "jwksFile and jwksURL are both set; use one")
			}
			if j.JWKSURL != "" {
				if err := auth.CheckJWKSURL(j.JWKSURL); err != nil {
					bad(jp+".jwksURL", "%v", err)
				}
			}
			if j.JWKSRefresh < 0 || (j.JWKSRefresh > 0 && j.JWKSRefresh < time.Second) {
				bad(jp+".jwksRefresh", "jwksRefresh %v: must be at least 1s", j.JWKSRefresh)
			} else if j.JWKSRefresh != 0 && j.JWKSURL == "" {
				bad(jp+".jwksRefresh", "jwksRefresh without jwksURL")
			}
			if len(a.JWT) > 1 && j.Issuer == "" {
				bad(jp+".issuer", "with several issuers each must name its iss")
			}
			if issuers[j.Issuer] {
				bad(jp+".issuer", "duplicate issuer %q", j.Issuer)
			}
			issuers[j.Issuer] = true
		}
	}
	ups := map[string]bool{}
	for i, u := range s.Upstreams {
		p := fmt.Sprintf("spec.upstreams[%d]", i)
		if ups[u.Name] {
			bad(p+".name", "duplicate upstream %q", u.Name)
		}
		ups[u.Name] = true
		if len(u.Targets) == 0 {
			bad(p+".targets", "an upstream needs at least one target")
		}
		for j, t := range u.Targets {
			if _, _, err := net.SplitHostPort(t.Address); err != nil {
				bad(fmt.Sprintf("%s.targets[%d].address", p, j), "%q is not host:port", t.Address)
			}
			if t.Weight < 0 || t.Weight > 1000 {
				bad(fmt.Sprintf("%s.targets[%d].weight", p, j), "%d is not in [0, 1000]", t.Weight)
			}
		}
		switch u.Balance {
		case "", BalanceRoundRobin, BalanceWeighted, BalanceLeastRequest:
			if u.HashOn != nil {
				bad(p+".hashOn", "hashOn is for balance: hash")
			}
		case BalanceHash:
			if u.HashOn == nil || (u.HashOn.Header == "") == !u.HashOn.ClientIP {
				bad(p+".hashOn", "balance: hash needs hashOn with exactly one of header or clientIP")
			}
		default:
			bad(p+".balance", "unknown balancer %q (round_robin, weighted, least_request, hash)", u.Balance)
		}
		if u.MaxConnections < 0 {
			bad(p+".maxConnections", "negative")
		}
		if a := u.Health.Active; a != nil {
			if a.HealthyThreshold < 0 || a.UnhealthyThreshold < 0 {
				bad(p+".health.active", "thresholds must be positive")
			}
			if a.Timeout > 0 && a.Interval > 0 && a.Timeout >= a.Interval {
				bad(p+".health.active.timeout", "timeout %v must be below interval %v", a.Timeout, a.Interval)
			}
			if a.Path != "" && !strings.HasPrefix(a.Path, "/") {
				bad(p+".health.active.path", "%q must start with /", a.Path)
			}
		}
		if ph := u.Health.Passive; ph != nil {
			if ph.Consecutive5xx < 0 || ph.ConsecutiveConnectErrors < 0 {
				bad(p+".health.passive", "thresholds must be positive")
			}
			if ph.MaxEjection != 0 && ph.MaxEjection < ph.BaseEjection {
				bad(p+".health.passive.maxEjection", "%v is below baseEjection %v", ph.MaxEjection, ph.BaseEjection)
			}
		}
		if _, err := breakerSettings(u.Name, u.Breaker, nil, nil); err != nil {
			bad(p+".breaker", "%v", err)
		}
	}
	names := map[string]bool{}
	for i, r := range s.Routes {
		p := fmt.Sprintf("spec.routes[%d]", i)
		if names[r.Name] {
			bad(p+".name", "duplicate route %q", r.Name)
		}
		names[r.Name] = true
		if r.Upstream == "" && r.Fallback == nil {
			bad(p+".upstream", "a route needs an upstream or a fallback")
		} else if r.Upstream != "" && !ups[r.Upstream] {
			bad(p+".upstream", "unknown upstream %q", r.Upstream)
		}
		if pm := r.Match.Path; pm != nil {
			if pm.Regex != "" {
				if _, err := regexp.Compile(pm.Regex); err != nil {
					bad(p+".match.path.regex", "%v", err)
				}
			}
			for _, v := range []string{pm.Exact, pm.Prefix} {
				if v != "" && !strings.HasPrefix(v, "/") {
					bad(p+".match.path", "%q must start with /", v)
				}
			}
		}
		for j, h := range r.Match.Hosts {
			if h == "" || strings.ContainsAny(h, "/ ") || strings.Count(h, "*") > 1 || (strings.Contains(h, "*") && !strings.HasPrefix(h, "*.")) {
				bad(fmt.Sprintf("%s.match.hosts[%d]", p, j), "%q is not a host name or *.domain", h)
			}
		}
		for j, m := range r.Match.Methods {
			if m == "" || strings.ToUpper(m) != m {
				bad(fmt.Sprintf("%s.match.methods[%d]", p, j), "%q is not an upper-case method", m)
			}
		}
		if rw := r.Rewrite; rw != nil {
			if (rw.Prefix == "") == (rw.Path == "") {
				bad(p+".rewrite", "set exactly one of prefix or path")
			}
			if rw.Prefix != "" && (r.Match.Path == nil || r.Match.Path.Prefix == "") {
				bad(p+".rewrite.prefix", "a prefix rewrite needs a prefix path match")
			}
		}
		if r.PerTryTimeout > 0 && r.Timeout > 0 && r.PerTryTimeout > r.Timeout {
			bad(p+".perTryTimeout", "%v exceeds the route's timeout %v", r.PerTryTimeout, r.Timeout)
		}
		if rt := r.Retry; rt != nil {
			if rt.Attempts < 0 || rt.Attempts > 10 {
				bad(p+".retry.attempts", "%d is not in [1, 10]", rt.Attempts)
			}
			if rt.Cap > 0 && rt.Cap < rt.Base {
				bad(p+".retry.cap", "%v is below base %v", rt.Cap, rt.Base)
			}
			for j, o := range rt.On {
				if !retryOn[o] {
					bad(fmt.Sprintf("%s.retry.retryOn[%d]", p, j), "unknown retry condition %q (5xx, gateway-error, connect-failure, reset, retriable-4xx, 429; for gRPC unavailable, resource-exhausted, deadline-exceeded, internal, cancelled)", o)
				}
			}
			if rt.Budget.MinPerSecond < 0 {
				bad(p+".retry.budget.minPerSecond", "negative")
			}
		}
		if b := r.Bulkhead; b != nil && (b.MaxConcurrent < 0 || b.MaxQueue < 0 || (b.MaxWait > 0 && b.MaxQueue == 0)) {
			bad(p+".bulkhead", "maxConcurrent and maxQueue must be positive, and maxWait needs a queue")
		}
		if a := r.Adaptive; a != nil && (a.MinLimit < 0 || a.MaxLimit < 0 || a.InitialLimit < 0 || (a.MaxLimit > 0 && a.MinLimit > a.MaxLimit)) {
			bad(p+".adaptive", "limits must be positive with minLimit <= maxLimit")
		}
		if rl := r.RateLimit; rl != nil {
			if rl.Rate <= 0 || rl.Rate > 1e9 {
				bad(p+".rateLimit.rate", "%v is not in (0, 1e9]", rl.Rate)
			}
			if rl.Burst < 0 {
				bad(p+".rateLimit.burst", "negative")
			}
			switch rl.Key {
			case "", "client_ip", "api_key":
				if rl.Header != "" {
					bad(p+".rateLimit.header", "header is for key: header")
				}
			case "header":
				if rl.Header == "" {
					bad(p+".rateLimit.header", "key: header needs a header name")
				}
			default:
				bad(p+".rateLimit.key", "unknown key %q (client_ip, api_key, header)", rl.Key)
			}
			switch rl.Store {
			case "", "memory":
				if rl.Redis != nil || rl.OnUnreachable != "" {
					bad(p+".rateLimit.store", "redis and onUnreachable are for store: redis")
				}
			case "redis":
				if rl.Redis == nil {
					bad(p+".rateLimit.redis", "store: redis needs redis: {address: host:port}")
				} else if _, _, err := net.SplitHostPort(rl.Redis.Address); err != nil {
					bad(p+".rateLimit.redis.address", "%q is not host:port", rl.Redis.Address)
				} else if rl.Redis.DB < 0 {
					bad(p+".rateLimit.redis.db", "negative")
				}
				if rl.OnUnreachable == "" {
					bad(p+".rateLimit.onUnreachable", "store: redis must say what to do while Redis is unreachable: open, closed or local")
				} else if _, err := redisrate.ParseUnreachable(rl.OnUnreachable); err != nil {
					bad(p+".rateLimit.onUnreachable", "unknown value %q (open, closed, local)", rl.OnUnreachable)
				}
			default:
				bad(p+".rateLimit.store", "unknown store %q (memory, redis)", rl.Store)
			}
		}
		if h := r.Hedge; h != nil {
			if h.Delay <= 0 {
				bad(p+".hedge.delay", "a hedge needs a positive delay")
			}
			if h.MaxHedges < 0 || h.MaxHedges > 3 {
				bad(p+".hedge.maxHedges", "%d is not in [1, 3]", h.MaxHedges)
			}
			if r.Upstream == "" {
				bad(p+".hedge", "a hedge needs an upstream")
			}
		}
		for j, u := range r.Upgrades {
			if !strings.EqualFold(u, "websocket") {
				bad(fmt.Sprintf("%s.upgrades[%d]", p, j), "unknown protocol %q (websocket)", u)
			}
		}
		if c := r.Cache; c != nil {
			maxSize := int64(c.MaxSize)
			if maxSize == 0 {
				maxSize = cache.DefaultMaxBytes
			}
			if int64(c.MaxEntrySize) > maxSize {
				bad(p+".cache.maxEntrySize", "%v exceeds the cache's maxSize %v", c.MaxEntrySize, config.Size(maxSize))
			}
		}
		switch r.Auth {
		case "", AuthNone:
		case AuthRequired, AuthOptional:
			if s.Auth == nil {
				bad(p+".auth", "auth: %s needs spec.auth", r.Auth)
			}
		default:
			bad(p+".auth", "unknown value %q (required, optional, none)", r.Auth)
		}
		if f := r.Fallback; f != nil && f.Status != 0 && (f.Status < 100 || f.Status > 599) {
			bad(p+".fallback.status", "%d is not an HTTP status", f.Status)
		}
		fnames := map[string]bool{}
		for j, f := range r.Faults {
			fp := fmt.Sprintf("%s.faults[%d]", p, j)
			if fnames[f.Name] {
				bad(fp+".name", "duplicate fault %q", f.Name)
			}
			fnames[f.Name] = true
			if f.AbortStatus != 0 && (f.AbortStatus < 100 || f.AbortStatus > 599) {
				bad(fp+".abortStatus", "%d is not an HTTP status", f.AbortStatus)
			}
			if f.AbortStatus == 0 && f.Delay == 0 {
				bad(fp, "a fault needs a delay or an abortStatus")
			}
		}
	}
	c.validateGRPC(bad)
	return errors.Join(errs...)
}

func isLoopbackHost(host string) bool {
	if host == "localhost" {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}

// parsePrefix reads a CIDR or a single address.
func parsePrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return p, fmt.Errorf("parsing trusted proxy: %w", err)
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("parsing trusted proxy: %w", err)
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// JSONSchema returns the JSON Schema of Gateway documents, for editors
// (published as docs/schema/gateway.json).
func JSONSchema() ([]byte, error) { return config.Schema(Kind, Config{}) }
