package gateway

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"os"
	"sync"
	"syscall"
	"time"
	"unsafe"

	"github.com/relia-dev/relia/callstore"
	"github.com/relia-dev/relia/clock"
	"github.com/relia-dev/relia/gateway/upstream"
	"github.com/relia-dev/relia/internal/h1"
	"github.com/relia-dev/relia/outcome"
	"github.com/relia-dev/relia/resilience"
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
	// ReasonBodyTooLarge: the request body is larger than the route's
	// maxBodySize (announced, or counted as it arrived).
	ReasonBodyTooLarge = "body_too_large"
	ReasonRouteTimeout = "route_timeout"
	// ReasonEscapedSlash: the path holds %2F or %5C and
	// server.escapedSlashes is reject.
	ReasonEscapedSlash = "escaped_slash"
	// ReasonHiddenDotSegment: with server.escapedSlashes keep, the path's
	// encoded slashes hide a "." or ".." segment.
	ReasonHiddenDotSegment = "hidden_dot_segment"
	// ReasonInvalidRequest: the request line or the request as a whole
	// could not be read (RFC 9112, section 3).
	ReasonInvalidRequest = "invalid_request"
	// ReasonHeadTooLarge: the request line and fields are over
	// server.maxHeaderBytes, or too many (431).
	ReasonHeadTooLarge = "head_too_large"
	// ReasonRequestTimeout: the request's head or body did not arrive
	// within server.readHeaderTimeout (408).
	ReasonRequestTimeout = "request_timeout"
	// ReasonInvalidBody: the request body ended before its length, or
	// its chunked coding is malformed.
	ReasonInvalidBody = "invalid_body"
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
	// errClient: the client's body could not be read; not the target.
	errClient
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
	case errClient:
		return "client"
	}
	return ""
}

func classifyErr(err error) errKind {
	switch {
	case err == nil:
		return errNone
	case errors.Is(err, upstream.ErrConnectionsExhausted):
		return errOverflow
	case errors.Is(err, upstream.ErrClientBody), errors.Is(err, errBodyTooLarge):
		return errClient
	case errors.Is(err, upstream.ErrInvalidResponse):
		return errInvalid
	case errors.Is(err, os.ErrDeadlineExceeded), errors.Is(err, context.DeadlineExceeded):
		// A dial that times out ends with either, whichever of its
		// deadline and its context's noticed first.
		return errTimeout
	case errors.Is(err, syscall.ECONNREFUSED):
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

// errConnectionsExhausted is the rejection a breaker is told of when every
// connection to a target stayed busy: the gateway's own limit, which it
// ignores (it matches resilience.ErrRejected).
var errConnectionsExhausted = &resilience.RejectedError{Policy: "upstream", Reason: ReasonConnectionsExhausted, Sentinel: upstream.ErrConnectionsExhausted}

// exchange is one request's state on its way through the gateway, pooled.
// Its exchangeState is zeroed once its request is done (clear); the
// fields here are what it keeps from one request to the next: the
// messages' field arrays and arenas, and buffers, which renew empties.
type exchange struct {
	exchangeState
	req     request
	resp    response
	rid     []byte
	path    []byte   // the normalized path routes match, for the log
	buf     []byte   // scratch
	xff     []byte   // the X-Forwarded-For sent upstream
	utarget []byte   // the target sent upstream
	ckey    []byte   // the cache key: host then target
	line    []byte   // the access log line
	stamp   logStamp // the second its last line ended in, formatted
	// tt holds the trace id's hex and a traceparent being written; made
	// at the exchange's first use of either (traceIDHex) and kept with
	// it, out of line so that the exchange stays in its size class.
	tt *traceText
	// steps are the call's story, kept when the gateway keeps calls.
	steps []callstore.Step
	// taps keep the first bytes of bodies (capture.go).
	taps *captureTaps
}

// exchangeState is what an exchange knows of its request alone.
type exchangeState struct {
	g        *Gateway
	st       *state
	ureq     upstream.Request
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
	traceID  [16]byte
	spanID   [8]byte
	parentID [8]byte // the client's span, from its traceparent
	sampled  byte
	// hasParent says the client sent a valid traceparent.
	hasParent bool
	// The flags sit together, in the padding after sampled, rather than
	// each in a word of its own: an AI stream holds its exchange for
	// minutes, and the struct with the allocator's 8-byte header fits
	// 1,536 B (TestExchangeSize).
	//
	// keptPath says path keeps encoded slashes (server.escapedSlashes:
	// keep) and is what the target must receive.
	keptPath    bool
	grpcHandled bool // see h2w
	// capturing says the route keeps bodies (see taps).
	capturing   bool
	abortStream bool // see faultOut
	headSent    bool // see headAfter
	// span and traceCtx are the server span, when tracing is on.
	span     trace.Span
	traceCtx context.Context
	bytesOut int64
	message  string // what a rejection tells the client besides its reason
	chost    int    // the length of the host in ckey
	// upgraded is the target connection an upgrade switched to.
	upgraded *upstream.Conn
	// failure is the last attempt's, as the route's Retry is told of it.
	failure attemptFailure
	// pc is the request's state across its attempts (proxy).
	pc proxyCall
	// h2w and h2r are an HTTP/2 request's stream, which a gRPC route
	// answers on directly (grpc.go): grpcHandled says it did, grpcCancel
	// ends its current attempt.
	h2w        http.ResponseWriter
	h2r        *http.Request
	grpcCancel context.CancelFunc
	// keyID is the caller's key id (an API key's id, a JWT's subject).
	keyID string
	// api and apiVersion name the API the route belongs to; apiHeaders
	// are its lifecycle headers (a deprecated API's).
	api, apiVersion string
	apiHeaders      [][2]string
	// upstreamLat is the time spent on targets, kept when the gateway
	// keeps calls.
	upstreamLat time.Duration
	// respHeaders are the response's fields as captured before its body
	// streamed (capture.go).
	respHeaders []callstore.Header
	// headAfter is how long after the call's start a relayed gRPC
	// response's head went to the client, once headSent says it did, for
	// the record's time to first byte (x.end is the call's end).
	headAfter time.Duration
	// h1c is the HTTP/1.1 connection the request came on (nil over
	// HTTP/2), and ai the call when the AI gateway answered it (ai.go).
	h1c *conn
	ai  *aiCall
	// faultOut, while a fault shapes the answer, is where the answer
	// goes (faults_stream.go); abortStream says the fault broke it off,
	// so an HTTP/2 stream must be reset.
	faultOut http.ResponseWriter
}

var exchangePool = sync.Pool{New: func() any {
	// The field arrays and the line buffer come from the pools that AI
	// streams lend theirs to (ai.go, lendBuffers).
	return &exchange{rid: make([]byte, 0, exchangeIDBytes), path: make([]byte, 0, exchangePathBytes), buf: make([]byte, 0, exchangeBufBytes), line: lineBuffer(),
		xff: make([]byte, 0, exchangeXFFBytes), utarget: make([]byte, 0, exchangeTargetBytes), req: request{fields: fieldArray()}, resp: response{fields: fieldArray()}}
}}

// The sizes an exchange's buffers start at (an AI stream lends them out,
// ai.go).
const (
	exchangeIDBytes     = 64
	exchangePathBytes   = 64
	exchangeBufBytes    = 256
	exchangeTargetBytes = 128
	exchangeXFFBytes    = 64
)

func newExchange(g *Gateway) *exchange {
	return exchangePool.Get().(*exchange).renew(g)
}

// renew readies an exchange that was cleared (putExchange, or an event
// loop's clear) for a request to g, keeping its buffers.
func (x *exchange) renew(g *Gateway) *exchange {
	// clear zeroed the request's own state: only the messages and the
	// buffers are readied here, in place.
	x.req.reset()
	x.resp.reset()
	x.g = g
	x.rid, x.path, x.buf, x.ckey, x.line, x.xff, x.utarget = x.rid[:0], x.path[:0], x.buf[:0], x.ckey[:0], x.line[:0], x.xff[:0], x.utarget[:0]
	x.steps = x.steps[:0]
	x.ureq.Fields = x.req.fields[:0]
	return x
}

func putExchange(x *exchange) {
	x.clear()
	exchangePool.Put(x)
}

// clear drops what an exchange refers to once its request is done.
func (x *exchange) clear() {
	x.resp.release()
	x.req.src, x.req.ctx, x.req.continuer = nil, nil, nil
	clear(x.steps)
	// The request's own state, zeroed whole: what the next request
	// (renew) starts from.
	x.exchangeState = exchangeState{}
}

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

// serveExchange is the request handler: every request from every
// listener and protocol passes here, and leaves with x.resp set.
func (g *Gateway) serveExchange(x *exchange) {
	if g.routeRequest(x, time.Time{}) {
		g.handle(x.st, x)
	}
	g.prepareResponse(x)
}

// routeRequest starts a request's way: its identity, its target checked
// and its route matched. It reports whether a route is to handle it;
// otherwise the rejection is in x.resp. Both engines start here
// (serveExchange, and the event loop's engine_loop_linux.go). start is
// when the request came, from a reading of the gateway's clock the engine
// already had (the event loop's wake that found it); zero: read the clock.
func (g *Gateway) routeRequest(x *exchange, start time.Time) bool {
	st := g.state.Load()
	x.st = st
	if start.IsZero() {
		start = g.clock.Now()
	}
	x.start = start
	req := &x.req
	g.identify(x)
	refused := x.checkTarget(st.cfg.Spec.Server.EscapedSlashes)
	if refused == "" {
		for _, r := range st.routes {
			if r.match.match(req.host, req.method, x.path, req) {
				x.route = r
				break
			}
		}
	}
	if g.tracing != nil {
		g.tracing.startServerSpan(x)
	}
	switch {
	case refused == ReasonTunnelRefused:
		g.reject(x, http.StatusMethodNotAllowed, "server", refused, 0)
		x.resp.fields = append(x.resp.fields, h1.Header{Name: bs("Allow"), Value: bs("GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS, TRACE")})
	case refused != "":
		g.reject(x, http.StatusBadRequest, "server", refused, 0)
	case x.route == nil:
		g.reject(x, http.StatusNotFound, "router", ReasonNoRoute, 0)
	default:
		return true
	}
	return false
}

// routingPath sets x.path, the path routes match and targets receive,
// under the config's choice for encoded slashes. It returns the reason
// when that choice refuses the path.
func (x *exchange) routingPath(raw []byte, mode EscapedSlashes) string {
	switch mode {
	case EscapedSlashesKeep:
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
		if hasEscapedSlash(raw) {
			x.path = append(x.path[:0], raw...)
			x.message = "encoded slashes (%2F, %5C) are refused in paths"
			return ReasonEscapedSlash
		}
	}
	x.path = appendDecodedPath(x.path[:0], raw)
	return ""
}

// identify sets the request id, the trace context, the client address and
// the forwarding fields.
func (g *Gateway) identify(x *exchange) {
	r := &x.req
	if rid := getField(r.fields, "X-Request-Id"); validRequestID(rid) {
		x.rid = append(x.rid, rid...)
	} else {
		x.rid = appendRandomHex(x.rid, 16)
	}
	r.fields = setField(r.fields, "X-Request-Id", x.rid)
	if tid, parent, flags, ok := parseTraceparent(getField(r.fields, "Traceparent")); ok {
		x.setTraceID(tid)
		x.parentID, x.sampled, x.hasParent = parent, flags, true
	} else {
		putRandom(tid[:])
		x.setTraceID(tid)
		x.sampled = 1
	}
	putRandom(x.spanID[:])
	x.setTraceparent(&r.fields, x.spanID)

	peer := r.peer
	x.client = peer
	proto := bs("http")
	if r.tls {
		proto = bs("https")
	}
	st := x.st
	if st != nil && st.trusted(peer) {
		// Believe the chain: the client is the rightmost address that is
		// not one of our trusted proxies.
		xff := getField(r.fields, "X-Forwarded-For")
		if c, ok := clientFromXFF(xff, st); ok {
			x.client = c
		}
		x.xff = append(x.xff[:0], xff...)
		if len(xff) > 0 {
			x.xff = append(x.xff, ", "...)
		}
		x.xff = x.h1c.appendAddr(x.xff, peer)
		r.fields = setField(r.fields, "X-Forwarded-For", x.xff)
		if len(getField(r.fields, "X-Forwarded-Proto")) == 0 {
			r.fields = setField(r.fields, "X-Forwarded-Proto", proto)
		}
	} else {
		x.xff = x.h1c.appendAddr(x.xff[:0], peer)
		r.fields = setField(r.fields, "X-Forwarded-For", x.xff)
		r.fields = setField(r.fields, "X-Forwarded-Proto", proto)
	}
}

func (x *exchange) scheme() string {
	if x.req.tls {
		return "https"
	}
	return "http"
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
func (g *Gateway) handle(st *state, x *exchange) {
	if !g.admit(st, x) {
		return
	}
	r := x.route
	if r.cache == nil || x.upgrading() {
		g.forward(x)
		return
	}
	handled, stale := g.cacheLookup(x)
	if handled {
		return
	}
	g.forward(x)
	g.cacheAfter(x, stale)
}

// admit checks a matched request against its route's admission rules:
// the announced body size, authentication, the API's lifecycle and the
// rate limits. It reports whether the request may go on; otherwise the
// rejection is in x.resp.
func (g *Gateway) admit(st *state, x *exchange) bool {
	r := x.route
	req := &x.req
	if req.length > int64(r.maxBody) {
		// Refused before a byte of the body is read.
		g.reject(x, http.StatusRequestEntityTooLarge, "server", ReasonBodyTooLarge, 0)
		return false
	}
	if g.auth != nil {
		if !g.auth(x) {
			return false
		}
	} else if st.auth != nil && r.auth != AuthNone {
		if !g.authenticate(st.auth, x) {
			return false
		}
	}
	if g.calls != nil && g.calls.apis != nil && !g.checkAPI(x) {
		return false
	}
	if r.rate != nil {
		key := g.rateKey(r, x)
		ok, wait := r.rate.AllowKey(key)
		if !ok {
			g.metrics.rateDecision(r.name, decisionLimited)
			g.reject(x, http.StatusTooManyRequests, "ratelimit", "rate_limited", wait)
			return false
		}
		g.metrics.rateDecision(r.name, decisionAllowed)
	} else if r.shared != nil {
		if !g.allowShared(r.shared, g.rateKey(r, x), x) {
			return false
		}
	}
	return true
}

// upgrading reports whether the request asks for a protocol its route
// lets through; any other upgrade is served as a plain request.
func (x *exchange) upgrading() bool {
	return x.req.upgrade != nil && x.route != nil && x.route.allowsUpgrade(x.req.upgrade)
}

// forward takes a request that passed authentication and rate limits
// through the fault filter, the concurrency limits and on upstream.
func (g *Gateway) forward(x *exchange) {
	if x.route.faults != nil && g.applyFaults(x) {
		return
	}
	g.pass(x)
}

// pass serves a request that no fault stopped: through the concurrency
// limits to the AI gateway, the fallback or upstream.
func (g *Gateway) pass(x *exchange) {
	r := x.route
	if r.bulkhead != nil {
		permit, err := r.bulkhead.Acquire(x.req.ctx)
		if err != nil {
			g.rejectErr(x, err)
			return
		}
		defer permit.Release()
	}
	var lp resilience.LimiterPermit
	if r.limiter != nil {
		var err error
		if lp, err = r.limiter.Allow(); err != nil {
			g.rejectErr(x, err)
			return
		}
	}
	if r.cfg.AI != "" {
		g.serveAI(x)
		lp.Done(nil)
		return
	}
	if x.upgrading() {
		g.upgrade(x)
		lp.Done(nil)
		return
	}
	if r.pool == nil {
		g.serveFallback(x, "fallback")
		lp.Done(nil)
		return
	}
	if r.pool.cfg.GRPC != nil {
		g.proxyGRPC(x)
		lp.Done(nil)
		return
	}
	kind := g.proxy(x)
	if kind == errTimeout {
		lp.Done(resilience.ErrTimeout)
	} else {
		lp.Done(nil)
	}
}

// rateKey returns the rate-limit key of the request; the string aliases
// request memory, which KeyedRateLimiter copies when it keeps a key.
func (g *Gateway) rateKey(r *route, x *exchange) string {
	rl := r.cfg.RateLimit
	switch rl.Key {
	case "header":
		return s(x.req.Peek(rl.Header))
	case "api_key":
		if x.tenant != "" {
			return x.tenant
		}
		if k := x.req.Peek("X-Api-Key"); len(k) > 0 {
			return s(k)
		}
		if a := x.req.Peek("Authorization"); len(a) > 7 && string(a[:7]) == "Bearer " {
			return s(a[7:])
		}
		return ""
	}
	x.buf = x.client.AppendTo(x.buf[:0])
	return s(x.buf)
}

// requestHoldBytes is the largest request body the gateway reads whole
// before it goes upstream, so that the request can be sent again (a
// retry, a hedge); a larger one streams to the target as it arrives and is
// sent once. Either way the gateway's memory follows the bytes received.
const requestHoldBytes = 64 << 10

// readBody prepares the request's body for the upstream request: held
// whole when it is small enough, else streamed. It reads within the
// route's limit and reports why it could not.
func (g *Gateway) readBody(x *exchange) error {
	req, u := &x.req, &x.ureq
	if req.src == nil {
		req.bodyDone = true
		return nil
	}
	if req.expect && req.continuer != nil {
		req.continuer.sendContinue()
	}
	limit := int64(x.route.maxBody)
	if req.length > requestHoldBytes {
		// Too large to hold: it streams, but only once its first bytes
		// are here, so that a client that announces a body and sends
		// nothing holds no connection to a target.
		p, err := req.src.Next()
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return err
		}
		req.bodyRead = int64(len(p))
		if req.tap != nil {
			req.tap.add(p)
		}
		req.pending = p
		u.Stream, u.Length = &x.req, req.length
		return nil
	}
	held := req.held[:0]
	for {
		p, err := req.src.Next()
		if err == io.EOF {
			req.bodyDone = true
			req.held = held
			u.Body = held
			return nil
		}
		if err != nil {
			return err
		}
		req.bodyRead += int64(len(p))
		if req.bodyRead > limit {
			return errBodyTooLarge
		}
		if req.tap != nil {
			req.tap.add(p)
		}
		held = append(held, p...)
		if len(held) > requestHoldBytes {
			// Too large to hold: what was read goes first, the rest as it
			// arrives, chunked.
			req.held = held
			req.pending = held
			u.Stream, u.Length = &x.req, -1
			return nil
		}
	}
}

// Next gives the body to the upstream request as it arrives: what was
// held first, then the rest, within the route's limit. It makes request
// an upstream.BodySource.
func (r *request) Next() ([]byte, error) {
	if len(r.pending) > 0 {
		p := r.pending
		r.pending = nil
		return p, nil
	}
	p, err := r.src.Next()
	if err == io.EOF {
		r.bodyDone = true
		return nil, err
	}
	if err != nil {
		return nil, err
	}
	r.bodyRead += int64(len(p))
	if r.bodyRead > r.limit {
		return nil, errBodyTooLarge
	}
	if r.tap != nil {
		r.tap.add(p)
	}
	return p, nil
}

// bodyRefusal answers a request whose body could not be read.
func (g *Gateway) bodyRefusal(x *exchange, err error) {
	x.resp.closing = true
	switch {
	case errors.Is(err, errBodyTooLarge):
		g.reject(x, http.StatusRequestEntityTooLarge, "server", ReasonBodyTooLarge, 0)
	case isTimeout(err):
		g.reject(x, http.StatusRequestTimeout, "server", ReasonRequestTimeout, 0)
	default:
		x.message = "the request body ended early or its chunked coding is malformed"
		g.reject(x, http.StatusBadRequest, "server", ReasonInvalidBody, 0)
	}
}

// proxy sends the request upstream, retrying under the route's policy,
// and leaves the response (or a rejection) in x.resp. It returns how the
// last attempt failed, if it did.
func (g *Gateway) proxy(x *exchange) errKind {
	pc := &x.pc
	if kind, ok := g.proxyBegin(x, pc); !ok {
		return kind
	}
	return g.proxyAttempts(x, pc, nil)
}

// proxyAttempts makes the request's attempts until one ends it; made,
// when set, is the outcome of an attempt made already (by an event loop,
// which hands the request on when it is to go again).
func (g *Gateway) proxyAttempts(x *exchange, pc *proxyCall, made *attemptOutcome) errKind {
	for {
		var a attemptOutcome
		switch {
		case made != nil:
			a, made = *made, nil
		case pc.hedging:
			// Without a retry the hedge's budget takes the call's deposit.
			pc.next(x)
			a = g.hedgedAttempt(x, pc.prev, pc.hashKey, pc.deadline, pc.attempt == 1 && !pc.retrying)
		default:
			pc.next(x)
			a = g.attempt(x, pc.prev, pc.hashKey, pc.deadline)
		}
		kind, again, wait := g.proxyAfter(x, pc, a)
		if !again {
			return kind
		}
		if wait > 0 && clock.Sleep(x.req.ctx, g.clock, wait) != nil {
			return kind
		}
	}
}

// proxyCall is a proxied request's state across its attempts.
type proxyCall struct {
	rc       resilience.RetryCall
	retrying bool
	hedging  bool
	hashKey  []byte
	deadline time.Time
	prev     *target
	attempt  int
}

// next counts the attempt about to start.
func (pc *proxyCall) next(x *exchange) {
	pc.attempt++
	x.attempts = pc.attempt
}

// proxyBegin prepares a request's attempts: its body read (whole when it
// is small), the upstream request built, the retry started. It reports
// false, with the answer in x.resp, when the request ends here.
func (g *Gateway) proxyBegin(x *exchange, pc *proxyCall) (errKind, bool) {
	r := x.route
	p := r.pool
	req := &x.req
	req.limit = int64(r.maxBody)
	g.startCapture(x)
	if err := g.readBody(x); err != nil {
		g.bodyRefusal(x, err)
		return errClient, false
	}
	g.prepareUpstream(x)
	*pc = proxyCall{deadline: x.start.Add(r.timeout)}
	method := req.method
	once := x.ureq.Stream != nil // a streamed body is sent once
	if rp := r.retry; rp != nil && !once && (rp.nonIdem || idempotentMethod(method) || len(req.Peek("Idempotency-Key")) > 0) {
		// The request's start, on the clock the budget keeps, spares
		// the deposit a clock read.
		pc.rc, pc.retrying = rp.policy.StartAt(x.start), true
	}
	if hc := p.cfg.HashOn; hc != nil {
		if hc.Header != "" {
			pc.hashKey = req.Peek(hc.Header)
		} else {
			pc.hashKey = x.client.AppendTo(x.buf[:0])
		}
	}
	pc.hedging = !once && r.hedge != nil && (r.hedge.nonIdem || idempotentMethod(method))
	return errNone, true
}

// proxyAfter judges an attempt: the request ends (with how its last
// attempt failed, if it did), or goes again after wait.
func (g *Gateway) proxyAfter(x *exchange, pc *proxyCall, a attemptOutcome) (kind errKind, again bool, wait time.Duration) {
	if a.answered {
		return a.kind, false, 0
	}
	t, err, status, kind := a.t, a.err, a.status, a.kind
	failed := err != nil || status >= 500 || status == 429 || status == 409
	if !failed {
		return errNone, false, 0
	}
	if kind == errClient {
		g.bodyRefusal(x, err)
		return kind, false, 0
	}
	if pc.retrying {
		x.failure = attemptFailure{status: status, kind: kind}
		if wait, rerr := pc.rc.Again(&x.failure, pc.deadline); rerr == nil {
			x.resp.release()
			pc.prev = t
			return kind, true, wait
		}
	}
	if err != nil {
		g.attemptFailed(x, kind)
	}
	return kind, false, 0
}

// attemptFailed answers for an attempt that got no response.
func (g *Gateway) attemptFailed(x *exchange, kind errKind) {
	status, policy, reason := failureAnswer(kind)
	g.reject(x, status, policy, reason, 0)
}

// failureAnswer is the answer to a call whose last attempt got no
// response, by how it failed: its status, policy and reason (gRPC calls
// take the reason only).
func failureAnswer(kind errKind) (status int, policy, reason string) {
	switch kind {
	case errTimeout:
		return http.StatusGatewayTimeout, "timeout", ReasonUpstreamTimeout
	case errConnect:
		return http.StatusServiceUnavailable, "upstream", ReasonConnectFailed
	case errOverflow:
		return http.StatusServiceUnavailable, "upstream", ReasonConnectionsExhausted
	case errInvalid:
		return http.StatusBadGateway, "upstream", ReasonUpstreamInvalid
	}
	return http.StatusBadGateway, "upstream", ReasonUpstreamReset
}

// attemptOutcome is how one attempt (or one hedged group of attempts)
// ended: the response is in x.resp unless err is set. answered means the
// gateway already wrote its own answer (no target, breaker open, no time
// left) and the request is over.
type attemptOutcome struct {
	t        *target
	err      error
	status   int
	kind     errKind
	answered bool
}

// attempt sends the request once, to a target other than prev where the
// pool has one.
func (g *Gateway) attempt(x *exchange, prev *target, hashKey []byte, deadline time.Time) attemptOutcome {
	t, bp, now, tryDeadline, out := g.startAttempt(x, prev, hashKey, deadline, true)
	if out.answered {
		return out
	}
	span := g.attemptSpan(x, t, now)
	up := upstreamResponses.Get().(*upstream.Response)
	t.inflight.Add(1)
	err := t.up.Do(x.req.ctx, &x.ureq, up, tryDeadline)
	return g.attemptDone(x, t, bp, now, time.Time{}, span, up, err)
}

// attemptSpan readies an attempt on t that starts at now: its client span
// when tracing is on, the Host the target gets.
func (g *Gateway) attemptSpan(x *exchange, t *target, now time.Time) trace.Span {
	var span trace.Span
	if g.tracing != nil {
		span = g.tracing.startClientSpan(x, t, &x.ureq.Fields, now)
	}
	x.ureq.Host = x.upstreamHost(t)
	return span
}

// attemptDone accounts for an attempt that went to t and ended with up's
// head read, or err: the response taken in, the breaker, the balancer,
// the metrics and the span told. end is when the attempt ended, from a
// reading of the gateway's clock the engine already had (the event
// loop's wake that found the answer); zero: read the clock.
func (g *Gateway) attemptDone(x *exchange, t *target, bp resilience.BreakerPermit, now, end time.Time, span trace.Span, up *upstream.Response, err error) attemptOutcome {
	t.inflight.Add(-1)
	if end.IsZero() || end.Before(now) {
		// Before now: the attempt failed in the wake it started in.
		end = g.clock.Now()
	}
	x.end = end
	lat := x.end.Sub(now)
	status := 0
	if err == nil {
		x.resp.fromTarget(up)
		status = up.Status
	} else {
		upstreamResponses.Put(up)
	}
	res := g.endAttempt(x, t, bp, methodName(x.req.method), status, err, lat)
	if span != nil {
		endClientSpan(span, res.status, err, now.Add(lat))
	}
	return res
}

// upstreamHost is the Host the target gets: the route's or the client's,
// else (an HTTP/1.0 client that sent none) the target's address, as
// nginx's proxy_pass names it.
func (x *exchange) upstreamHost(t *target) []byte {
	if x.route.hostSet != nil {
		return x.route.hostSet
	}
	if len(x.req.host) > 0 {
		return x.req.host
	}
	return t.addrBytes
}

// startAttempt picks the target, asks its breaker and works out the
// attempt's deadline; when any of them says no it answers the request if
// answer is set (a hedge that cannot go leaves the request to the attempts
// already out) and reports answered. now is when the attempt starts: for
// the first attempt of a route where nothing can hold a request up before
// it goes upstream, the request's start, which needs no clock read of its
// own.
func (g *Gateway) startAttempt(x *exchange, prev *target, hashKey []byte, deadline time.Time, answer bool) (t *target, bp resilience.BreakerPermit, now, tryDeadline time.Time, out attemptOutcome) {
	t = x.route.pool.pick(prev, hashKey)
	if t == nil && answer {
		// With targets out only because their breakers are open, a
		// breaker gives the answer: breaker_open with its Retry-After, or
		// a probe if its open time just ended.
		t = x.route.pool.openBreaker(g.clock.Now)
	}
	if t == nil {
		if answer {
			g.unavailable(x, "health", ReasonNoHealthyUpstream, 0)
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
			g.unavailable(x, "breaker", reason, wait)
			return nil, bp, now, now, attemptOutcome{answered: true}
		}
	}
	if x.attempts <= 1 && x.route.quickStart && g.auth == nil && x.req.src == nil {
		now = x.start
	} else {
		now = g.clock.Now()
	}
	tryDeadline = min64(deadline, now.Add(x.route.perTry))
	if !tryDeadline.After(now) {
		bp.Done(nil)
		g.reject(x, http.StatusGatewayTimeout, "timeout", ReasonRouteTimeout, 0)
		return nil, bp, now, now, attemptOutcome{answered: true, kind: errTimeout}
	}
	return t, bp, now, tryDeadline, attemptOutcome{}
}

// endAttempt accounts for an attempt that went upstream: latency for the
// balancer, the client metric, the breaker and passive health.
func (g *Gateway) endAttempt(x *exchange, t *target, bp resilience.BreakerPermit, method string, status int, err error, lat time.Duration) attemptOutcome {
	kind := classifyErr(err)
	if kind == errClient {
		// The client's body failed: nothing to learn about the target.
		bp.Done(nil)
		return attemptOutcome{t: t, err: err, kind: kind}
	}
	t.observe(lat)
	g.metrics.observeClient(t.addr, method, status, kind.String(), lat)
	if err != nil {
		g.addStep(x, callstore.StepAttempt, t.addr, status, kind.String(), "", lat)
	} else {
		g.addStep(x, callstore.StepAttempt, t.addr, status, outcome.ClassifyResponse(status, nil).String(), "", lat)
	}
	result := resultOK
	switch {
	case kind == errOverflow:
		// The gateway's own limit: the breaker ignores the rejection and
		// passive health does not count it.
		bp.Done(errConnectionsExhausted)
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

// prepareUpstream builds the request sent upstream from the client's: the
// path rewritten and encoded for the request line, the route's header
// changes applied (the client's hop-by-hop fields were never taken in).
func (g *Gateway) prepareUpstream(x *exchange) {
	r, req, u := x.route, &x.req, &x.ureq
	var buf [256]byte
	path := x.path
	if r.cfg.Rewrite != nil {
		path = r.rewritePath(buf[:0], x.path)
	}
	x.utarget = appendWirePath(x.utarget[:0], path, x.keptPath)
	x.utarget = append(x.utarget, req.query...)
	fields := req.fields
	for _, name := range r.reqRemove {
		fields = delField(fields, name)
	}
	for _, kv := range r.reqSet {
		fields = setField(fields, s(kv[0]), kv[1])
	}
	for _, kv := range r.reqAdd {
		fields = append(fields, h1.Header{Name: kv[0], Value: kv[1]})
	}
	req.fields = fields
	u.Method, u.Target, u.Fields = req.method, x.utarget, fields
}

// unavailable answers a request the gateway cannot send upstream: with the
// route's fallback when it has one, else 503.
func (g *Gateway) unavailable(x *exchange, policy, reason string, wait time.Duration) {
	if x.route.fallback != nil {
		x.reason = reason
		g.serveFallback(x, policy)
		return
	}
	g.reject(x, http.StatusServiceUnavailable, policy, reason, wait)
}

func (g *Gateway) serveFallback(x *exchange, policy string) {
	f := x.route.fallback
	resp := &x.resp
	resp.own(f.status)
	resp.fields = append(resp.fields, h1.Header{Name: bs("Content-Type"), Value: f.contentType})
	for _, h := range f.headers {
		resp.fields = setField(resp.fields, s(h[0]), h[1])
	}
	resp.fields = setField(resp.fields, "X-Relia-Fallback", bs(x.route.name))
	resp.body = f.body
	if x.policy == "" {
		x.policy = policy
	}
	g.addStep(x, callstore.StepFallback, "", f.status, outcome.ClassifyResponse(f.status, nil).String(), x.reason, 0)
	g.metrics.obs.Observe(resilience.Event{Kind: resilience.EventFallback, Policy: "fallback", Name: x.route.name})
}

// rejectErr renders a policy's *RejectedError.
func (g *Gateway) rejectErr(x *exchange, err error) {
	var rej *resilience.RejectedError
	if errors.As(err, &rej) {
		status := http.StatusServiceUnavailable
		if errors.Is(err, resilience.ErrRateLimited) {
			status = http.StatusTooManyRequests
		}
		g.reject(x, status, rej.Policy, rej.Reason, rej.RetryAfter)
		return
	}
	// The client went away while the request waited.
	g.reject(x, 499, "client", "client_closed", 0)
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
// policy, and Retry-After when a wait is known. Every answer the gateway
// gives of its own passes here, so each is logged and counted by reason.
func (g *Gateway) reject(x *exchange, status int, policy, reason string, wait time.Duration) {
	resp := &x.resp
	closing := resp.closing
	resp.own(status)
	resp.closing = closing
	x.reason, x.policy = reason, policy
	body := rejectionBody{Reason: reason, Policy: policy, RequestID: string(x.rid), Message: x.message}
	if x.route != nil {
		body.Route = x.route.name
	}
	if wait > 0 {
		resp.fields = append(resp.fields, h1.Header{Name: bs("Retry-After"), Value: bs(retryAfterSeconds(wait))})
		body.RetryAfterSeconds = int64((wait + time.Second - 1) / time.Second)
	} else if status == http.StatusServiceUnavailable || status == http.StatusTooManyRequests {
		resp.fields = append(resp.fields, h1.Header{Name: bs("Retry-After"), Value: bs("1")})
		body.RetryAfterSeconds = 1
	}
	b, _ := json.Marshal(body)
	resp.fields = append(resp.fields, h1.Header{Name: bs("Content-Type"), Value: bs("application/json")})
	resp.body = append(b, '\n')
	if policy != "ratelimit" && policy != "breaker" && policy != "bulkhead" && policy != "adaptive" {
		// Policies report their own rejections to the observer.
		g.metrics.obs.Observe(rejectedEvent(policy, routeName(x), reason))
	}
	if policy == "server" && status != http.StatusRequestEntityTooLarge && status != http.StatusMethodNotAllowed {
		// What the HTTP layer refuses leaves the connection in doubt.
		resp.closing = true
	}
}

// rejectedEvent is the observer's record of a rejection, for the
// rejections counted outside reject.
func rejectedEvent(policy, name, reason string) resilience.Event {
	return resilience.Event{Kind: resilience.EventRejected, Policy: policy, Name: name, Reason: reason}
}

func routeName(x *exchange) string {
	if x.route == nil {
		return ""
	}
	return x.route.name
}

// prepareResponse applies the route's response header changes and the
// request id to the response about to be written.
func (g *Gateway) prepareResponse(x *exchange) {
	if x.ai != nil && x.ai.prepared() {
		return
	}
	resp := &x.resp
	if r := x.route; r != nil {
		for _, name := range r.respRemove {
			resp.fields = delField(resp.fields, name)
		}
		for _, kv := range r.respSet {
			resp.fields = setField(resp.fields, s(kv[0]), kv[1])
		}
		for _, kv := range r.respAdd {
			resp.fields = append(resp.fields, h1.Header{Name: kv[0], Value: kv[1]})
		}
	}
	resp.fields = setField(resp.fields, "X-Request-Id", x.rid)
	x.addAPIHeaders()
	x.status = resp.status
	if x.route != nil && x.route.capture != nil {
		x.captureResponseHead()
	}
}

// finish records the request, once its response is written, in the
// metrics, the outcome recorder and the access log.
func (g *Gateway) finish(x *exchange) {
	// The last attempt's end is the request's: one clock read per
	// request and one per attempt.
	end := x.end
	if end.IsZero() {
		end = g.clock.Now()
	}
	lat := end.Sub(x.start)
	route := "unmatched"
	if x.route != nil {
		route = x.route.name
	}
	class, errType := outcome.ClassifyResponse(x.status, nil), ""
	if x.ai != nil {
		class, errType = x.aiClass(class)
	}
	g.metrics.observeServer(route, methodName(x.req.method), x.status, errType, lat)
	if g.rec != nil {
		g.rec.Record(outcome.Outcome{
			Start: x.start, Latency: lat, Status: x.status, Class: class,
			BytesIn: x.req.bodyRead, BytesOut: x.bytesOut, Name: route, Attempt: max(x.attempts, 1),
		})
	}
	g.access.log(x, route, lat)
	if g.calls != nil && g.calls.rec != nil {
		g.recordCall(x, lat)
	}
	if x.span != nil {
		x.endServerSpan(route, x.start.Add(lat))
	}
}
