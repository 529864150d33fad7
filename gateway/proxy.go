package gateway

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"runtime"
	"sync"
	"syscall"
	"time"
	"unsafe"

	"github.com/relia-dev/relia/clock"
	"github.com/relia-dev/relia/outcome"
	"github.com/relia-dev/relia/resilience"
	"github.com/valyala/fasthttp"
	"go.opentelemetry.io/otel/trace"
)

// Rejection reasons the gateway itself gives, besides the policies' own
// (breaker_open, bulkhead_full, rate_limited, concurrency_limited, ...).
const (
	ReasonNoRoute           = "no_route"
	ReasonNoHealthyUpstream = "no_healthy_upstream"
	ReasonUpstreamTimeout   = "upstream_timeout"
	ReasonConnectFailed     = "upstream_connect_failed"
	ReasonUpstreamReset     = "upstream_reset"
	// ReasonUpstreamInvalid: the target's response head could be framed
	// two ways (Content-Length twice or beside Transfer-Encoding, a
	// space before a field's colon) or its status is outside 100-599.
	ReasonUpstreamInvalid = "upstream_invalid_response"
	// ReasonConnectionsExhausted: every connection the gateway may open to
	// the target (upstreams[].maxConnections) stayed busy until the
	// attempt's deadline.
	ReasonConnectionsExhausted = "upstream_connections_exhausted"
	ReasonBodyTooLarge         = "body_too_large"
	ReasonRouteTimeout         = "route_timeout"
	// ReasonEscapedSlash: the path holds %2F or %5C and
	// server.escapedSlashes is reject.
	ReasonEscapedSlash = "escaped_slash"
	// ReasonHiddenDotSegment: with server.escapedSlashes keep, the path's
	// encoded slashes hide a "." or ".." segment.
	ReasonHiddenDotSegment = "hidden_dot_segment"
)

// errKind is how an attempt failed without a response.
type errKind uint8

const (
	errNone errKind = iota
	errConnect
	errReset
	errTimeout
	// errInvalid: the target answered with a malformed response head.
	errInvalid
	// errOverflow: the gateway's own connection limit, not the target.
	errOverflow
)

func (k errKind) String() string {
	switch k {
	case errConnect:
		return "connect"
	case errReset:
		return "reset"
	case errTimeout:
		return "timeout"
	case errInvalid:
		return "invalid_response"
	case errOverflow:
		return "connections_exhausted"
	}
	return ""
}

func classifyErr(err error) errKind {
	switch {
	case err == nil:
		return errNone
	case errors.Is(err, errConnectionsExhausted):
		return errOverflow
	case errors.Is(err, errInvalidResponse):
		return errInvalid
	case errors.Is(err, fasthttp.ErrTimeout), errors.Is(err, os.ErrDeadlineExceeded):
		return errTimeout
	case errors.Is(err, fasthttp.ErrDialTimeout), errors.Is(err, syscall.ECONNREFUSED):
		return errConnect
	}
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return errConnect
	}
	return errReset
}

// errUpstreamStatus is what a breaker is told about a 5xx answer.
var errUpstreamStatus = errors.New("upstream answered 5xx")

// exchange is one request's state on its way through the gateway, pooled.
type exchange struct {
	start    time.Time
	end      time.Time // when the last upstream attempt ended
	route    *route
	target   *target
	attempts int
	status   int
	reason   string
	policy   string
	tenant   string
	client   netip.Addr
	rid      []byte
	traceID  [16]byte
	spanID   [8]byte
	parentID [8]byte // the client's span, from its traceparent
	sampled  byte
	// hasParent says the client sent a valid traceparent.
	hasParent bool
	// span and traceCtx are the server span, when tracing is on.
	span     trace.Span
	traceCtx context.Context
	path     []byte // the normalized path routes match, for the log
	// keptPath says path keeps encoded slashes (server.escapedSlashes:
	// keep) and is what the target must receive.
	keptPath bool
	buf      []byte // scratch
	bytesOut int64
	message  string // what a rejection tells the client besides its reason
	// closeClient: the client's connection ends after this response, by
	// the gateway's decision (a target's Connection: close is its own).
	closeClient bool
	ckey        []byte   // the cache key: host then target
	line        []byte   // the access log line
	tp          [55]byte // a traceparent being written
	chost       int      // the length of the host in ckey
}

var exchangePool = sync.Pool{New: func() any {
	return &exchange{rid: make([]byte, 0, 64), path: make([]byte, 0, 64), buf: make([]byte, 0, 256), line: make([]byte, 0, 512)}
}}

// s returns b as a string without copying, for APIs that only read the
// string during the call or copy it themselves.
func s(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}

// methodName returns a constant for the usual methods, so metric labels
// and logs need no allocation.
func methodName(m []byte) string {
	switch string(m) {
	case "GET":
		return "GET"
	case "POST":
		return "POST"
	case "PUT":
		return "PUT"
	case "DELETE":
		return "DELETE"
	case "HEAD":
		return "HEAD"
	case "PATCH":
		return "PATCH"
	case "OPTIONS":
		return "OPTIONS"
	}
	return "_OTHER" // OpenTelemetry's name for methods outside the known set
}

// hopHeaders are the hop-by-hop headers of RFC 9110 section 7.6.1 that a
// proxy must not forward (Connection and Transfer-Encoding are handled by
// the HTTP engine itself).
var hopHeaders = []string{"Keep-Alive", "Proxy-Connection", "Proxy-Authenticate", "Proxy-Authorization", "Te", "Trailer", "Upgrade"}

// serve is the HTTP/1.1 request handler: every request from every listener
// passes here.
func (g *Gateway) serve(ctx *fasthttp.RequestCtx) {
	st := g.state.Load()
	x := exchangePool.Get().(*exchange)
	*x = exchange{rid: x.rid[:0], path: x.path[:0], buf: x.buf[:0], ckey: x.ckey[:0], line: x.line[:0]}
	x.start = g.clock.Now()
	req := &ctx.Request

	dropTrailers(&req.Header)
	dropRequestConnectionListed(&req.Header)
	g.identify(ctx, st, x)
	refused := x.routingPath(req, st.cfg.Spec.Server.EscapedSlashes)
	if bad := x.checkRequestHead(req); bad != "" {
		refused = bad
	}

	if refused == "" {
		method := req.Header.Method()
		for _, r := range st.routes {
			if r.match.match(req.Header.Host(), method, x.path, &req.Header) {
				x.route = r
				break
			}
		}
	}
	if g.tracing != nil {
		g.tracing.startServerSpan(ctx, x)
	}
	switch {
	case refused == ReasonTunnelRefused:
		g.reject(ctx, x, fasthttp.StatusMethodNotAllowed, "server", refused, 0)
		ctx.Response.Header.Set("Allow", "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS, TRACE")
	case refused == ReasonUnsupportedVersion:
		g.reject(ctx, x, fasthttp.StatusHTTPVersionNotSupported, "server", refused, 0)
		x.closeClient = true
	case refused != "":
		g.reject(ctx, x, fasthttp.StatusBadRequest, "server", refused, 0)
		if refused == ReasonInvalidFraming || refused == ReasonInvalidHeader {
			// Where this body ends is unknown, or was read differently by
			// whatever sent it, so where the next request starts is too:
			// MUST close (RFC 9112, 6.3).
			x.closeClient = true
		}
	case x.route == nil:
		g.reject(ctx, x, fasthttp.StatusNotFound, "router", ReasonNoRoute, 0)
	default:
		g.handle(ctx, st, x)
	}
	g.finish(ctx, x)
	exchangePool.Put(x)
	g.closeDelimitForHTTP10(ctx, &st.cfg.Spec.Server)
	// fasthttp writes the response once this handler returns. Yielding
	// first lets the other connections whose upstream answers are in
	// finish their handlers too, so responses go out back to back, as an
	// event loop's do: a client waiting on another core is then woken
	// once for several writes rather than once each (each wake of an idle
	// core is an inter-processor interrupt, dear in a VM). With nothing
	// else runnable this returns at once. docs/benchmarks.md measures it.
	runtime.Gosched()
}

// routingPath sets x.path, the path routes match and targets receive,
// under the config's choice for encoded slashes. It returns the reason
// when that choice refuses the path.
func (x *exchange) routingPath(req *fasthttp.Request, mode EscapedSlashes) string {
	switch mode {
	case EscapedSlashesKeep:
		raw := req.URI().PathOriginal()
		if !hasEscapedSlash(raw) {
			break
		}
		var ok bool
		x.path, ok = appendKeptPath(x.path[:0], raw)
		x.keptPath = true
		if !ok {
			x.message = "an encoded slash in the path hides a dot segment"
			return ReasonHiddenDotSegment
		}
		return ""
	case EscapedSlashesReject:
		if hasEscapedSlash(req.URI().PathOriginal()) {
			x.path = append(x.path[:0], req.URI().PathOriginal()...)
			x.message = "encoded slashes (%2F, %5C) are refused in paths"
			return ReasonEscapedSlash
		}
	}
	x.path = append(x.path[:0], req.URI().Path()...)
	return ""
}

// identify sets the request id, the trace context, the client address and
// the forwarding headers.
func (g *Gateway) identify(ctx *fasthttp.RequestCtx, st *state, x *exchange) {
	h := &ctx.Request.Header
	if rid := h.Peek("X-Request-Id"); validRequestID(rid) {
		x.rid = append(x.rid, rid...)
	} else {
		x.rid = appendRandomHex(x.rid, 16)
		h.SetBytesV("X-Request-Id", x.rid)
	}
	if tid, parent, flags, ok := parseTraceparent(h.Peek("Traceparent")); ok {
		x.traceID, x.parentID, x.sampled, x.hasParent = tid, parent, flags, true
	} else {
		putRandom(x.traceID[:])
		x.sampled = 1
	}
	putRandom(x.spanID[:])
	x.setTraceparent(h, x.spanID)

	peer := remoteAddr(ctx)
	x.client = peer
	if st.trusted(peer) {
		// Believe the chain: the client is the rightmost address that is
		// not one of our trusted proxies.
		xff := h.Peek("X-Forwarded-For")
		if c, ok := clientFromXFF(xff, st); ok {
			x.client = c
		}
		x.buf = append(x.buf[:0], xff...)
		if len(xff) > 0 {
			x.buf = append(x.buf, ", "...)
		}
		x.buf = peer.AppendTo(x.buf)
		h.SetBytesV("X-Forwarded-For", x.buf)
		if len(h.Peek("X-Forwarded-Proto")) == 0 {
			h.Set("X-Forwarded-Proto", scheme(ctx))
		}
	} else {
		x.buf = peer.AppendTo(x.buf[:0])
		h.SetBytesV("X-Forwarded-For", x.buf)
		h.Set("X-Forwarded-Proto", scheme(ctx))
	}
}

func scheme(ctx *fasthttp.RequestCtx) string {
	if ctx.IsTLS() || ctx.UserValue(tlsKey{}) != nil {
		return "https"
	}
	return "http"
}

func remoteAddr(ctx *fasthttp.RequestCtx) netip.Addr {
	if ta, ok := ctx.RemoteAddr().(*net.TCPAddr); ok {
		a, _ := netip.AddrFromSlice(ta.IP)
		return a.Unmap()
	}
	return netip.Addr{}
}

// clientFromXFF returns the rightmost address in an X-Forwarded-For chain
// that is not a trusted proxy.
func clientFromXFF(xff []byte, st *state) (netip.Addr, bool) {
	for len(xff) > 0 {
		i := len(xff) - 1
		for i >= 0 && xff[i] != ',' {
			i--
		}
		part := xff[i+1:]
		for len(part) > 0 && part[0] == ' ' {
			part = part[1:]
		}
		a, err := netip.ParseAddr(s(part))
		if err != nil {
			return netip.Addr{}, false
		}
		a = a.Unmap()
		if !st.trusted(a) {
			return a, true
		}
		if i < 0 {
			return a, true
		}
		xff = xff[:i]
	}
	return netip.Addr{}, false
}

// validRequestID accepts client-chosen ids that are safe to log and echo:
// 1-128 visible ASCII characters without quotes or backslashes.
func validRequestID(b []byte) bool {
	if len(b) == 0 || len(b) > 128 {
		return false
	}
	for _, c := range b {
		if c <= ' ' || c >= 0x7f || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}

func appendRandomHex(dst []byte, n int) []byte {
	var b [32]byte
	putRandom(b[:n])
	return hex.AppendEncode(dst, b[:n])
}

func putRandom(b []byte) {
	for i := 0; i < len(b); i += 8 {
		v := rand.Uint64()
		for j := i; j < len(b) && j < i+8; j++ {
			b[j] = byte(v)
			v >>= 8
		}
	}
}

// parseTraceparent reads a W3C traceparent: version 00, a non-zero trace
// id and parent id, and flags.
func parseTraceparent(v []byte) (tid [16]byte, parent [8]byte, sampled byte, ok bool) {
	if len(v) < 55 || v[2] != '-' || v[35] != '-' || v[52] != '-' || (len(v) > 55 && v[55] != '-') {
		return tid, parent, 0, false
	}
	if v[0] == 'f' && v[1] == 'f' {
		return tid, parent, 0, false
	}
	var flags [1]byte
	if _, err := hex.Decode(tid[:], v[3:35]); err != nil {
		return tid, parent, 0, false
	}
	if _, err := hex.Decode(parent[:], v[36:52]); err != nil {
		return tid, parent, 0, false
	}
	if _, err := hex.Decode(flags[:], v[53:55]); err != nil {
		return tid, parent, 0, false
	}
	if tid == ([16]byte{}) || parent == ([8]byte{}) {
		return tid, parent, 0, false
	}
	return tid, parent, flags[0] & 1, true
}

// handle runs a matched request through the route's policies.
func (g *Gateway) handle(ctx *fasthttp.RequestCtx, st *state, x *exchange) {
	r := x.route
	req := &ctx.Request
	if len(req.Body()) > r.maxBody {
		g.reject(ctx, x, fasthttp.StatusRequestEntityTooLarge, "server", ReasonBodyTooLarge, 0)
		return
	}
	if g.auth != nil {
		if !g.auth(ctx, x) {
			return
		}
	} else if st.auth != nil && r.auth != AuthNone {
		if !g.authenticate(ctx, st.auth, x) {
			return
		}
	}
	if r.rate != nil {
		key := g.rateKey(ctx, r, x)
		ok, wait := r.rate.AllowKey(key)
		if !ok {
			g.metrics.rateDecision(r.name, decisionLimited)
			g.reject(ctx, x, fasthttp.StatusTooManyRequests, "ratelimit", "rate_limited", wait)
			return
		}
		g.metrics.rateDecision(r.name, decisionAllowed)
	} else if r.shared != nil {
		if !g.allowShared(ctx, r.shared, g.rateKey(ctx, r, x), x) {
			return
		}
	}
	if r.cache == nil || isUpgrade(req) {
		g.forward(ctx, x)
		return
	}
	handled, stale := g.cacheLookup(ctx, x)
	if handled {
		return
	}
	g.forward(ctx, x)
	g.cacheAfter(ctx, x, stale)
}

// forward takes a request that passed authentication and rate limits
// through the fault filter, the concurrency limits and on upstream.
func (g *Gateway) forward(ctx *fasthttp.RequestCtx, x *exchange) {
	r := x.route
	req := &ctx.Request
	if r.faults != nil && g.applyFaults(ctx, x) {
		return
	}
	if r.bulkhead != nil {
		permit, err := r.bulkhead.Acquire(ctx)
		if err != nil {
			g.rejectErr(ctx, x, err)
			return
		}
		defer permit.Release()
	}
	var lp resilience.LimiterPermit
	if r.limiter != nil {
		var err error
		if lp, err = r.limiter.Allow(); err != nil {
			g.rejectErr(ctx, x, err)
			return
		}
	}
	if isUpgrade(req) {
		g.upgrade(ctx, x)
		lp.Done(nil)
		return
	}
	if r.pool == nil {
		g.serveFallback(ctx, x, "fallback")
		lp.Done(nil)
		return
	}
	kind := g.proxy(ctx, x)
	if kind == errTimeout {
		lp.Done(resilience.ErrTimeout)
	} else {
		lp.Done(nil)
	}
}

// rateKey returns the rate-limit key of the request; the string aliases
// request memory, which KeyedRateLimiter copies when it keeps a key.
func (g *Gateway) rateKey(ctx *fasthttp.RequestCtx, r *route, x *exchange) string {
	rl := r.cfg.RateLimit
	switch rl.Key {
	case "header":
		return s(ctx.Request.Header.Peek(rl.Header))
	case "api_key":
		if x.tenant != "" {
			return x.tenant
		}
		if k := ctx.Request.Header.Peek("X-Api-Key"); len(k) > 0 {
			return s(k)
		}
		if a := ctx.Request.Header.Peek("Authorization"); len(a) > 7 && string(a[:7]) == "Bearer " {
			return s(a[7:])
		}
		return ""
	}
	x.buf = x.client.AppendTo(x.buf[:0])
	return s(x.buf)
}

// proxy sends the request upstream, retrying under the route's policy,
// and leaves the response (or a rejection) in ctx.Response. It returns
// how the last attempt failed, if it did.
func (g *Gateway) proxy(ctx *fasthttp.RequestCtx, x *exchange) errKind {
	r := x.route
	p := r.pool
	req := &ctx.Request
	prepareUpstream(req, r, x)

	deadline := x.start.Add(r.timeout)
	method := req.Header.Method()
	maxAttempts := 1
	if rp := r.retry; rp != nil && (rp.nonIdem || idempotentMethod(method) || len(req.Header.Peek("Idempotency-Key")) > 0) {
		maxAttempts = rp.attempts
		rp.budget.Deposit()
	}
	var hashKey []byte
	if hc := p.cfg.HashOn; hc != nil {
		if hc.Header != "" {
			hashKey = req.Header.Peek(hc.Header)
		} else {
			hashKey = x.client.AppendTo(x.buf[:0])
		}
	}
	hedging := r.hedge != nil && (r.hedge.nonIdem || idempotentMethod(method))
	if hedging && maxAttempts == 1 {
		// Without a retry policy the hedge's own budget takes the deposit.
		r.hedge.budget.Deposit()
	}
	var prev *target
	var delay time.Duration
	for attempt := 1; ; attempt++ {
		x.attempts = attempt
		var a attemptOutcome
		if hedging {
			a = g.hedgedAttempt(ctx, x, prev, hashKey, deadline)
		} else {
			a = g.attempt(ctx, x, prev, hashKey, deadline)
		}
		if a.answered {
			return a.kind
		}
		t, err, status, kind := a.t, a.err, a.status, a.kind
		failed := err != nil || status >= 500 || status == 429 || status == 409
		if !failed {
			return errNone
		}
		if attempt < maxAttempts && r.retry.retryable(status, kind) {
			delay = resilience.Backoff(r.retry.backoff, attempt, delay, nil)
			if g.clock.Now().Add(delay).Before(deadline) {
				if r.retry.budget.Withdraw() {
					g.metrics.obs.Observe(resilience.Event{Kind: resilience.EventRetry, Policy: "retry", Name: r.name, Attempt: attempt + 1, Delay: delay})
					ctx.Response.CloseBodyStream()
					if delay > 0 {
						if clock.Sleep(ctx, g.clock, delay) != nil {
							return kind
						}
					}
					prev = t
					continue
				}
				g.metrics.obs.Observe(resilience.Event{Kind: resilience.EventRejected, Policy: "retry", Name: r.name, Reason: "retry_budget_exhausted"})
			}
		}
		if err != nil {
			switch kind {
			case errTimeout:
				g.reject(ctx, x, fasthttp.StatusGatewayTimeout, "timeout", ReasonUpstreamTimeout, 0)
			case errConnect:
				g.reject(ctx, x, fasthttp.StatusServiceUnavailable, "upstream", ReasonConnectFailed, 0)
			case errOverflow:
				g.reject(ctx, x, fasthttp.StatusServiceUnavailable, "upstream", ReasonConnectionsExhausted, 0)
			case errInvalid:
				g.reject(ctx, x, fasthttp.StatusBadGateway, "upstream", ReasonUpstreamInvalid, 0)
			default:
				g.reject(ctx, x, fasthttp.StatusBadGateway, "upstream", ReasonUpstreamReset, 0)
			}
		}
		return kind
	}
}

// attemptOutcome is how one attempt (or one hedged group of attempts)
// ended: the response is in ctx.Response unless err is set. answered
// means the gateway already wrote its own answer (no target, breaker open,
// no time left) and the request is over.
type attemptOutcome struct {
	t        *target
	err      error
	status   int
	kind     errKind
	answered bool
}

// attempt sends the request once, to a target other than prev where the
// pool has one.
func (g *Gateway) attempt(ctx *fasthttp.RequestCtx, x *exchange, prev *target, hashKey []byte, deadline time.Time) attemptOutcome {
	t, bp, now, tryDeadline, out := g.startAttempt(ctx, x, prev, hashKey, deadline, true)
	if out.answered {
		return out
	}
	var span trace.Span
	if g.tracing != nil {
		span = g.tracing.startClientSpan(x, t, &ctx.Request, now)
	}
	t.inflight.Add(1)
	err := t.do(context.Background(), &ctx.Request, &ctx.Response, tryDeadline, true)
	t.inflight.Add(-1)
	x.end = g.clock.Now()
	lat := x.end.Sub(now)
	res := g.endAttempt(x, t, bp, methodName(ctx.Request.Header.Method()), &ctx.Response, err, lat)
	if span != nil {
		endClientSpan(span, res.status, err, now.Add(lat))
	}
	return res
}

// startAttempt picks the target, asks its breaker and works out the
// attempt's deadline; when any of them says no it answers the request if
// answer is set (a hedge that cannot go leaves the request to the attempts
// already out) and reports answered. now is when the attempt starts: for
// the first attempt of a route where nothing can hold a request up before
// it goes upstream, the request's start, which needs no clock read of its
// own.
func (g *Gateway) startAttempt(ctx *fasthttp.RequestCtx, x *exchange, prev *target, hashKey []byte, deadline time.Time, answer bool) (t *target, bp resilience.BreakerPermit, now, tryDeadline time.Time, out attemptOutcome) {
	t = x.route.pool.pick(prev, hashKey)
	if t == nil && answer {
		// With targets out only because their breakers are open, a
		// breaker gives the answer: breaker_open with its Retry-After, or
		// a probe if its open time just ended.
		t = x.route.pool.openBreaker(g.clock.Now)
	}
	if t == nil {
		if answer {
			g.unavailable(ctx, x, "health", ReasonNoHealthyUpstream, 0)
		}
		return nil, bp, now, now, attemptOutcome{answered: true}
	}
	if !answer {
		if t.breaker != nil {
			var err error
			if bp, err = t.breaker.Allow(); err != nil {
				return nil, bp, now, now, attemptOutcome{answered: true}
			}
		}
		now = g.clock.Now()
		return t, bp, now, min64(deadline, now.Add(x.route.perTry)), attemptOutcome{}
	}
	x.target = t
	if t.breaker != nil {
		var err error
		if bp, err = t.breaker.Allow(); err != nil {
			wait, _ := resilience.RetryHintOf(err)
			var rej *resilience.RejectedError
			reason := "breaker_open"
			if errors.As(err, &rej) {
				reason = rej.Reason
			}
			g.unavailable(ctx, x, "breaker", reason, wait)
			return nil, bp, now, now, attemptOutcome{answered: true}
		}
	}
	if x.attempts <= 1 && x.route.quickStart && g.auth == nil {
		now = x.start
	} else {
		now = g.clock.Now()
	}
	tryDeadline = min64(deadline, now.Add(x.route.perTry))
	if !tryDeadline.After(now) {
		bp.Done(nil)
		g.reject(ctx, x, fasthttp.StatusGatewayTimeout, "timeout", ReasonRouteTimeout, 0)
		return nil, bp, now, now, attemptOutcome{answered: true, kind: errTimeout}
	}
	return t, bp, now, tryDeadline, attemptOutcome{}
}

// endAttempt accounts for an attempt that went upstream: latency for the
// balancer, the client metric, the breaker and passive health.
func (g *Gateway) endAttempt(x *exchange, t *target, bp resilience.BreakerPermit, method string, resp *fasthttp.Response, err error, lat time.Duration) attemptOutcome {
	t.observe(lat)
	kind := classifyErr(err)
	status := 0
	if err == nil {
		status = resp.StatusCode()
	}
	g.metrics.observeClient(t.addr, method, status, kind.String(), lat)
	result := resultOK
	switch {
	case kind == errOverflow:
		// The gateway's own limit: the breaker ignores the rejection and
		// passive health does not count it.
		bp.Done(err)
		result = resultIgnored
	case err != nil:
		bp.Done(err)
		result = resultConnErr
	case status >= 500:
		bp.Done(errUpstreamStatus)
		result = result5xx
	default:
		bp.Done(nil)
	}
	p := x.route.pool
	if p.report(t, result) {
		g.metrics.ejections.WithLabelValues(p.name, t.addr).Inc()
		g.log.Warn("target ejected", "upstream", p.name, "target", t.addr)
	}
	return attemptOutcome{t: t, err: err, status: status, kind: kind}
}

func min64(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// prepareUpstream turns the client's request into the one sent upstream:
// hop-by-hop headers out, path rewritten, the route's header changes
// applied.
func prepareUpstream(req *fasthttp.Request, r *route, x *exchange) {
	h := &req.Header
	// The client's Content-Type or none: fasthttp would otherwise write
	// application/octet-stream for a body sent without one.
	h.SetNoDefaultContentType(true)
	// The Host header as it stands (the client's, the authority of an
	// absolute-form target, or the route's own): fasthttp would otherwise
	// overwrite it with the host it parsed from the request line.
	req.UseHostHeader = true
	for _, name := range hopHeaders {
		h.Del(name)
	}
	switch {
	case x.keptPath:
		// fasthttp would decode the path it sends; the target gets the
		// path the route matched, encoded slashes kept.
		u := req.URI()
		var buf, wire [256]byte
		u.DisablePathNormalizing = true
		u.SetPathBytes(appendWirePath(wire[:0], r.rewritePath(buf[:0], x.path)))
	case r.cfg.Rewrite != nil:
		u := req.URI()
		var buf [256]byte
		u.SetPathBytes(r.rewritePath(buf[:0], u.Path()))
	}
	req.URI().SetScheme("http")
	for _, name := range r.reqRemove {
		h.Del(name)
	}
	for k, v := range r.cfg.RequestHeaders.Set {
		h.Set(k, v)
	}
	for k, v := range r.cfg.RequestHeaders.Add {
		h.Add(k, v)
	}
}

// unavailable answers a request the gateway cannot send upstream: with the
// route's fallback when it has one, else 503.
func (g *Gateway) unavailable(ctx *fasthttp.RequestCtx, x *exchange, policy, reason string, wait time.Duration) {
	if x.route.fallback != nil {
		x.reason = reason
		g.serveFallback(ctx, x, policy)
		return
	}
	g.reject(ctx, x, fasthttp.StatusServiceUnavailable, policy, reason, wait)
}

func (g *Gateway) serveFallback(ctx *fasthttp.RequestCtx, x *exchange, policy string) {
	f := x.route.fallback
	ctx.Response.CloseBodyStream()
	ctx.Response.Reset()
	ctx.SetStatusCode(f.status)
	ctx.SetContentType(f.contentType)
	for _, h := range f.headers {
		ctx.Response.Header.Set(h[0], h[1])
	}
	ctx.Response.Header.Set("X-Relia-Fallback", x.route.name)
	ctx.SetBody(f.body)
	if x.policy == "" {
		x.policy = policy
	}
	g.metrics.obs.Observe(resilience.Event{Kind: resilience.EventFallback, Policy: "fallback", Name: x.route.name})
}

// rejectErr renders a policy's *RejectedError.
func (g *Gateway) rejectErr(ctx *fasthttp.RequestCtx, x *exchange, err error) {
	var rej *resilience.RejectedError
	if errors.As(err, &rej) {
		status := fasthttp.StatusServiceUnavailable
		if errors.Is(err, resilience.ErrRateLimited) {
			status = fasthttp.StatusTooManyRequests
		}
		g.reject(ctx, x, status, rej.Policy, rej.Reason, rej.RetryAfter)
		return
	}
	// The client went away while the request waited.
	g.reject(ctx, x, 499, "client", "client_closed", 0)
}

// rejectionBody is the JSON every rejection carries.
type rejectionBody struct {
	Reason            string `json:"reason"`
	Policy            string `json:"policy"`
	Route             string `json:"route,omitempty"`
	RequestID         string `json:"request_id"`
	RetryAfterSeconds int64  `json:"retry_after_seconds,omitempty"`
	Message           string `json:"message,omitempty"`
}

// reject answers with status and a JSON body naming the reason and the
// policy, and Retry-After when a wait is known.
func (g *Gateway) reject(ctx *fasthttp.RequestCtx, x *exchange, status int, policy, reason string, wait time.Duration) {
	ctx.Response.CloseBodyStream()
	ctx.Response.Reset()
	x.reason, x.policy = reason, policy
	body := rejectionBody{Reason: reason, Policy: policy, RequestID: string(x.rid), Message: x.message}
	if x.route != nil {
		body.Route = x.route.name
	}
	if wait > 0 {
		ra := retryAfterSeconds(wait)
		ctx.Response.Header.Set("Retry-After", ra)
		body.RetryAfterSeconds = int64((wait + time.Second - 1) / time.Second)
	} else if status == fasthttp.StatusServiceUnavailable || status == fasthttp.StatusTooManyRequests {
		ctx.Response.Header.Set("Retry-After", "1")
		body.RetryAfterSeconds = 1
	}
	b, _ := json.Marshal(body)
	ctx.SetStatusCode(status)
	ctx.SetContentType("application/json")
	ctx.SetBody(append(b, '\n'))
	if policy != "ratelimit" && policy != "breaker" && policy != "bulkhead" && policy != "adaptive" {
		// Policies report their own rejections to the observer.
		g.metrics.obs.Observe(resilience.Event{Kind: resilience.EventRejected, Policy: policy, Name: routeName(x), Reason: reason})
	}
}

func routeName(x *exchange) string {
	if x.route == nil {
		return ""
	}
	return x.route.name
}

// finish fixes up the response headers and records the request in the
// metrics, the outcome recorder and the access log.
func (g *Gateway) finish(ctx *fasthttp.RequestCtx, x *exchange) {
	resp := &ctx.Response
	rh := &resp.Header
	// A response without Content-Type leaves without one: fasthttp would
	// write text/plain (a reset response forgets the server's setting).
	rh.SetNoDefaultContentType(true)
	// The upstream's connection management is not the client's.
	dropResponseConnectionListed(rh)
	if x.closeClient {
		rh.SetConnectionClose()
	}
	for _, name := range hopHeaders {
		rh.Del(name)
	}
	if r := x.route; r != nil {
		for _, name := range r.respRemove {
			rh.Del(name)
		}
		for k, v := range r.cfg.ResponseHeaders.Set {
			rh.Set(k, v)
		}
		for k, v := range r.cfg.ResponseHeaders.Add {
			rh.Add(k, v)
		}
	}
	rh.SetBytesV("X-Request-Id", x.rid)
	x.status = resp.StatusCode()
	if cl := rh.ContentLength(); cl >= 0 {
		x.bytesOut = int64(cl)
	}
	// The last attempt's end is the request's, give or take the header
	// edits above: one clock read per request and one per attempt.
	end := x.end
	if end.IsZero() {
		end = g.clock.Now()
	}
	lat := end.Sub(x.start)
	route := "unmatched"
	if x.route != nil {
		route = x.route.name
	}
	g.metrics.observeServer(route, methodName(ctx.Method()), x.status, lat)
	if g.rec != nil {
		g.rec.Record(outcome.Outcome{
			Start: x.start, Latency: lat, Status: x.status, Class: outcome.ClassifyResponse(x.status, nil),
			BytesIn: int64(len(ctx.Request.Body())), BytesOut: x.bytesOut, Name: route, Attempt: max(x.attempts, 1),
		})
	}
	g.access.log(ctx, x, route, lat)
	if x.span != nil {
		x.endServerSpan(route, x.start.Add(lat))
	}
}
