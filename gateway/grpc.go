package gateway

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"sync"
	"time"

	"golang.org/x/net/http2"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/relia-dev/relia/callstore"
	"github.com/relia-dev/relia/clock"
	"github.com/relia-dev/relia/internal/grpcstatus"
	"github.com/relia-dev/relia/outcome"
	"github.com/relia-dev/relia/resilience"
)

// gRPC routes. A route whose upstream pool has a grpc: block proxies gRPC
// calls: each call a client makes over HTTP/2 goes to a target over
// HTTP/2 (cleartext with prior knowledge, or TLS), request and response
// messages streamed both ways as they come and the target's trailers
// (grpc-status, grpc-message, ...) passed back, so unary, server, client
// and bidirectional streaming calls all go through. Routes match methods
// by path (/package.Service/Method, or a prefix /package.Service).
//
// The gateway is gRPC-aware where it decides: a call's deadline
// (grpc-timeout) is capped by the route's timeout and sent on as what is
// left of it; an attempt is retried, on another target, when it failed
// before any answer reached the client and the route's retryOn names its
// failure (connect-failure, reset, unavailable, resource-exhausted,
// deadline-exceeded, internal, cancelled; gateway-error covers
// UNAVAILABLE and DEADLINE_EXCEEDED, 5xx and 429 the codes google.rpc.Code
// maps to them), waiting at least the target's grpc-retry-pushback-ms,
// and not at all when the target's pushback is negative; a retry replays
// the messages sent so far from a buffer of at most the route's
// maxBodySize, so a stream that outgrew it is not retried. The call's
// status code is a label of relia_gateway_grpc_calls_total; its HTTP
// status (google.rpc.Code's mapping) is what the HTTP metrics, the access
// log and SLOs read. Targets' active health checks use the standard gRPC
// health checking protocol (grpc.health.v1.Health/Check).

// GRPCUpstream makes a pool's targets gRPC servers.
type GRPCUpstream struct {
	// TLS connects to the targets over TLS (ALPN h2); without it, HTTP/2
	// in cleartext with prior knowledge (h2c).
	TLS bool `yaml:"tls"`
	// CAFile is a PEM bundle of roots that sign the targets' certificates;
	// default the system's.
	CAFile string `yaml:"caFile"`
	// ServerName is the name checked in the targets' certificates;
	// default the target's host.
	ServerName string `yaml:"serverName"`
	// InsecureSkipVerify skips the certificate check (test setups only).
	InsecureSkipVerify bool `yaml:"insecureSkipVerify"`
}

// ReasonGRPCNeedsHTTP2: a gRPC route got an HTTP/1.1 request; gRPC is
// HTTP/2 only.
const ReasonGRPCNeedsHTTP2 = "grpc_needs_http2"

// grpcRetryCodes are the gRPC retry conditions and their codes.
var grpcRetryCodes = map[string]codes.Code{
	"cancelled": codes.Canceled, "deadline-exceeded": codes.DeadlineExceeded, "internal": codes.Internal,
	"resource-exhausted": codes.ResourceExhausted, "unavailable": codes.Unavailable,
}

// grpcWhen returns the bit set of the gRPC codes a retryOn list names.
func grpcWhen(on []string) uint32 {
	var w uint32
	for _, o := range on {
		if c, ok := grpcRetryCodes[o]; ok {
			w |= 1 << c
		}
	}
	return w
}

// grpcFailure is how a gRPC attempt failed, as the route's Retry is told
// of it: the code, the HTTP status google.rpc.Code gives it, how no
// answer came, and the target's pushback.
type grpcFailure struct {
	attemptFailure
	code     codes.Code
	detail   string
	pushback time.Duration
	hinted   bool
}

// RetryHint is the target's grpc-retry-pushback-ms: the next attempt
// waits at least that long.
func (f *grpcFailure) RetryHint() (time.Duration, bool) { return f.pushback, f.hinted }

// retryableGRPC reports whether a failed gRPC attempt may be retried.
func (p *retryPolicy) retryableGRPC(f *grpcFailure) bool {
	if f.kind != errNone {
		return p.retryable(0, f.kind)
	}
	return p.grpcWhen&(1<<f.code) != 0 || p.retryable(f.status, errNone)
}

// grpcPool is a gRPC pool's transports and health clients, per target.
type grpcPool struct {
	cfg  GRPCUpstream
	tls  *tls.Config
	mu   sync.Mutex
	tr   map[*target]*http2.Transport
	hc   map[*target]*grpc.ClientConn
	err  error
	done bool
}

// grpcState returns the pool's gRPC state, made on first use.
func (p *pool) grpcState() (*grpcPool, error) {
	p.grpcOnce.Do(func() {
		gp := &grpcPool{cfg: *p.cfg.GRPC, tr: map[*target]*http2.Transport{}, hc: map[*target]*grpc.ClientConn{}}
		if gp.cfg.TLS {
			gp.tls, gp.err = grpcTLSConfig(gp.cfg)
		}
		p.grpc = gp
	})
	return p.grpc, p.grpc.err
}

func grpcTLSConfig(c GRPCUpstream) (*tls.Config, error) {
	conf := &tls.Config{ServerName: c.ServerName, InsecureSkipVerify: c.InsecureSkipVerify, NextProtos: []string{"h2"}, MinVersion: tls.VersionTLS12} //nolint:gosec // opt-in
	if c.CAFile != "" {
		pem, err := os.ReadFile(c.CAFile)
		if err != nil {
			return nil, fmt.Errorf("grpc caFile: %w", err)
		}
		roots := x509.NewCertPool()
		if !roots.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("grpc caFile %s: no PEM certificate found", c.CAFile)
		}
		conf.RootCAs = roots
	}
	return conf, nil
}

// transport returns t's HTTP/2 transport.
func (gp *grpcPool) transport(t *target, connectTimeout time.Duration) *http2.Transport {
	gp.mu.Lock()
	defer gp.mu.Unlock()
	if tr := gp.tr[t]; tr != nil {
		return tr
	}
	addr := t.addr
	tr := &http2.Transport{AllowHTTP: !gp.cfg.TLS}
	dialer := &net.Dialer{Timeout: connectTimeout}
	if gp.cfg.TLS {
		conf := gp.tls.Clone()
		if conf.ServerName == "" {
			conf.ServerName, _, _ = net.SplitHostPort(addr)
		}
		tr.DialTLSContext = func(ctx context.Context, network, _ string, _ *tls.Config) (net.Conn, error) {
			return (&tls.Dialer{NetDialer: dialer, Config: conf}).DialContext(ctx, network, addr)
		}
	} else {
		tr.DialTLSContext = func(ctx context.Context, network, _ string, _ *tls.Config) (net.Conn, error) {
			return dialer.DialContext(ctx, network, addr)
		}
	}
	gp.tr[t] = tr
	return tr
}

// healthConn returns a gRPC client connection to t for health checks.
func (gp *grpcPool) healthConn(t *target) (*grpc.ClientConn, error) {
	gp.mu.Lock()
	defer gp.mu.Unlock()
	if gp.done {
		return nil, errors.New("pool closed")
	}
	if c := gp.hc[t]; c != nil {
		return c, nil
	}
	creds := insecure.NewCredentials()
	if gp.cfg.TLS {
		creds = credentials.NewTLS(gp.tls)
	}
	c, err := grpc.NewClient(t.addr, grpc.WithTransportCredentials(creds))
	if err != nil {
		return nil, err
	}
	gp.hc[t] = c
	return c, nil
}

// closeGRPC closes the pool's idle gRPC connections and health clients.
func (p *pool) closeGRPC() {
	gp := p.grpc
	if gp == nil {
		return
	}
	gp.mu.Lock()
	defer gp.mu.Unlock()
	gp.done = true
	for _, tr := range gp.tr {
		tr.CloseIdleConnections()
	}
	for _, c := range gp.hc {
		c.Close()
	}
	clear(gp.hc)
}

// probeGRPC asks t's gRPC health service about service ("" is the whole
// server); SERVING within timeout is healthy.
func (g *Gateway) probeGRPC(p *pool, service string) probeFunc {
	return func(t *target, _ string, timeout time.Duration) bool {
		gp, err := p.grpcState()
		if err != nil {
			return false
		}
		conn, err := gp.healthConn(t)
		if err != nil {
			return false
		}
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		resp, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{Service: service})
		return err == nil && resp.GetStatus() == healthpb.HealthCheckResponse_SERVING
	}
}

// proxyGRPC proxies one gRPC call: through the route's pool, retried as
// the route says while nothing has reached the client, and answers it
// with a status of its own when no target could.
func (g *Gateway) proxyGRPC(x *exchange) {
	w, r := x.h2w, x.h2r
	if w == nil {
		g.reject(x, http.StatusHTTPVersionNotSupported, "server", ReasonGRPCNeedsHTTP2, 0)
		return
	}
	x.grpcHandled = true
	rt := x.route
	p := rt.pool
	gp, err := p.grpcState()
	if err != nil {
		g.endGRPC(x, w, codes.Unavailable, "gateway: "+err.Error(), nil)
		return
	}
	deadline := x.start.Add(rt.timeout)
	if d, ok := parseGRPCTimeout(r.Header.Get("Grpc-Timeout")); ok && x.start.Add(d).Before(deadline) {
		deadline = x.start.Add(d)
	}
	var body *replayBody
	if r.Body != nil && r.Body != http.NoBody {
		limit := 0
		if rt.retry != nil {
			limit = rt.maxBody
		}
		body = &replayBody{src: r.Body, limit: limit}
		// The call's record counts what the client sent, whichever
		// attempt read it.
		defer func() { x.req.bodyRead = body.received() }()
	}
	var rc resilience.RetryCall
	if rt.retry != nil {
		rc = rt.retry.policy.Start()
	}
	var prev *target
	for attempt := 1; ; attempt++ {
		x.attempts = attempt
		t, bp, now, tryDeadline, out := g.startAttempt(x, prev, nil, deadline, false)
		if out.answered || t == nil {
			x.reason = ReasonNoHealthyUpstream
			g.endGRPC(x, w, codes.Unavailable, "gateway: no target available (unhealthy, ejected or its breaker open)", nil)
			return
		}
		x.target = t
		if !tryDeadline.After(now) {
			bp.Done(nil)
			x.reason = ReasonRouteTimeout
			g.endGRPC(x, w, codes.DeadlineExceeded, "gateway: the call's deadline passed", nil)
			return
		}
		resp, f, lat := g.grpcAttempt(x, gp, t, body, tryDeadline.Sub(now))
		g.accountGRPC(x, t, bp, f, lat)
		if f == nil {
			g.relayGRPC(x, w, resp, lat)
			return
		}
		if resp != nil {
			resp.Body.Close()
		}
		x.cancelAttempt()
		if rt.retry != nil && body.replayable() && !(f.hinted && f.pushback < 0) {
			if wait, err := rc.Again(f, deadline); err == nil {
				if wait > 0 && clock.Sleep(r.Context(), g.clock, wait) != nil {
					g.endGRPC(x, w, codes.Canceled, "gateway: the client left", nil)
					return
				}
				prev = t
				continue
			}
		}
		if f.kind != errNone {
			_, _, x.reason = failureAnswer(f.kind)
		}
		var pushback *int64
		if f.hinted {
			ms := f.pushback.Milliseconds()
			if f.pushback < 0 {
				ms = -1
			}
			pushback = &ms
		}
		g.endGRPC(x, w, f.code, f.msg(), pushback)
		return
	}
}

// grpcAttempt sends the call to t once. It returns the target's response
// with a nil failure when the call is to be relayed (a response that is
// not a failed Trailers-Only one), or the failure.
func (g *Gateway) grpcAttempt(x *exchange, gp *grpcPool, t *target, body *replayBody, budget time.Duration) (*http.Response, *grpcFailure, time.Duration) {
	r := x.h2r
	ctx, cancel := context.WithTimeout(r.Context(), budget)
	x.grpcCancel = cancel
	out := &http.Request{
		Method: http.MethodPost, URL: &url.URL{Scheme: "http", Host: t.addr, Path: r.URL.Path, RawPath: r.URL.RawPath},
		Host: r.Host, Header: r.Header.Clone(), Proto: "HTTP/2.0", ProtoMajor: 2,
	}
	if gp.cfg.TLS {
		out.URL.Scheme = "https"
	}
	out.Header.Set("Grpc-Timeout", formatGRPCTimeout(budget))
	if body != nil {
		out.Body, out.ContentLength = body.readerFor(), -1
	}
	out = out.WithContext(ctx)
	start := time.Now()
	t.inflight.Add(1)
	resp, err := gp.transport(t, p2d(x.route.pool.cfg.ConnectTimeout)).RoundTrip(out)
	t.inflight.Add(-1)
	lat := time.Since(start)
	if err != nil {
		kind := classifyErr(err)
		// The target resets the stream when the deadline the gateway sent
		// it passes, which can reach the gateway before its own timer has
		// fired: past the deadline, the failure is the deadline's.
		if dl, _ := ctx.Deadline(); ctx.Err() == context.DeadlineExceeded || !time.Now().Before(dl) {
			kind = errTimeout
		}
		code := codes.Unavailable
		if kind == errTimeout {
			code = codes.DeadlineExceeded
		}
		return nil, &grpcFailure{attemptFailure: attemptFailure{kind: kind}, code: code, detail: err.Error()}, lat
	}
	// A Trailers-Only response carries the status in its headers and
	// ends the stream: a failure the gateway may retry, since nothing of
	// it has reached the client.
	st := resp.Header.Get("Grpc-Status")
	if st == "" || st == "0" {
		return resp, nil, lat
	}
	n, _ := strconv.Atoi(st)
	code := codes.Code(n)
	f := &grpcFailure{attemptFailure: attemptFailure{status: grpcstatus.HTTPStatus(code)}, code: code, detail: resp.Header.Get("Grpc-Message")}
	if pb := resp.Header.Get("Grpc-Retry-Pushback-Ms"); pb != "" {
		if ms, err := strconv.ParseInt(pb, 10, 64); err == nil {
			f.pushback, f.hinted = time.Duration(ms)*time.Millisecond, true
		}
	}
	return resp, f, lat
}

// p2d returns the connect timeout or its default.
func p2d(d time.Duration) time.Duration {
	if d <= 0 {
		return DefaultConnectTimeout
	}
	return d
}

// accountGRPC tells the balancer, the client metric, the breaker and
// passive health how an attempt went: the codes that say the target is in
// trouble (UNAVAILABLE, INTERNAL, UNKNOWN, DATA_LOSS) count as its
// failures, as a 5xx does.
func (g *Gateway) accountGRPC(x *exchange, t *target, bp resilience.BreakerPermit, f *grpcFailure, lat time.Duration) {
	t.observe(lat)
	status, kind := 200, errNone
	if f != nil {
		status, kind = f.status, f.kind
	}
	g.metrics.observeClient(t.addr, "POST", status, kind.String(), lat)
	result := resultOK
	switch {
	case f == nil:
		bp.Done(nil)
	case f.kind != errNone:
		bp.Done(errors.New(f.detail))
		result = resultConnErr
	case f.code == codes.Unavailable || f.code == codes.Internal || f.code == codes.Unknown || f.code == codes.DataLoss:
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
	if f != nil {
		g.grpcStep(x, f.code, f, lat)
	}
}

// grpcStep notes an attempt in the call's story, as an HTTP route's
// attempts are: the HTTP status google.rpc.Code gives its gRPC status
// (0 when no answer came), its outcome class, and as its reason the gRPC
// status's name with the target's pushback ("UNAVAILABLE, pushback
// 10ms"). lat is the time to the attempt's response head.
func (g *Gateway) grpcStep(x *exchange, code codes.Code, f *grpcFailure, lat time.Duration) {
	if g.calls == nil || g.calls.rec == nil {
		return
	}
	status, class := grpcstatus.HTTPStatus(code), ""
	reason := grpcstatus.Name(code)
	switch {
	case f != nil && f.kind != errNone:
		status, class = 0, f.kind.String()
	default:
		class = outcome.ClassifyResponse(status, nil).String()
	}
	if f != nil && f.hinted {
		if f.pushback < 0 {
			reason += ", pushback: no retry"
		} else {
			reason += ", pushback " + f.pushback.String()
		}
	}
	g.addStep(x, callstore.StepAttempt, x.target.addr, status, class, reason, lat)
}

// relayGRPC passes a target's response to the client: its headers, each
// message as it arrives, its trailers. lat is the attempt's time to its
// response head, for the call's story.
func (g *Gateway) relayGRPC(x *exchange, w http.ResponseWriter, resp *http.Response, lat time.Duration) {
	defer resp.Body.Close()
	h := w.Header()
	for k, vs := range resp.Header {
		h[k] = vs
	}
	if g.calls != nil && g.calls.rec != nil {
		x.headAfter, x.headSent = g.clock.Since(x.start), true
	}
	w.WriteHeader(resp.StatusCode)
	rc := http.NewResponseController(w)
	buf := make([]byte, 16<<10)
	broken := false
	for {
		n, err := resp.Body.Read(buf)
		if n > 0 {
			x.bytesOut += int64(n)
			if _, werr := w.Write(buf[:n]); werr != nil {
				broken = true
				break
			}
			_ = rc.Flush()
		}
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			broken = true
			break
		}
	}
	code := codes.Unknown
	if broken && x.h2r.Context().Err() != nil {
		code = codes.Canceled // the client left mid-call
	} else if broken {
		code = codes.Unavailable
	} else if st := resp.Trailer.Get("Grpc-Status"); st != "" {
		n, _ := strconv.Atoi(st)
		code = codes.Code(n)
	} else if st := resp.Header.Get("Grpc-Status"); st != "" {
		n, _ := strconv.Atoi(st)
		code = codes.Code(n)
	}
	for k, vs := range resp.Trailer {
		h[http.TrailerPrefix+k] = vs
	}
	g.grpcStep(x, code, nil, lat)
	g.grpcDone(x, code)
	if broken {
		panic(http.ErrAbortHandler) // the client must not take a cut stream for a whole
	}
}

// endGRPC answers a call with a status of the gateway's own, as a
// Trailers-Only response.
func (g *Gateway) endGRPC(x *exchange, w http.ResponseWriter, code codes.Code, msg string, pushback *int64) {
	grpcstatus.WriteTrailersOnly(w, code, msg, pushback)
	g.grpcDone(x, code)
}

// grpcDone records a call's end: its HTTP status for the HTTP metrics,
// the access log and SLOs, its code for the gRPC metric.
func (g *Gateway) grpcDone(x *exchange, code codes.Code) {
	x.end = g.clock.Now()
	x.status = grpcstatus.HTTPStatus(code)
	x.resp.status = x.status
	x.cancelAttempt()
	g.metrics.grpcCall(x.route.name, grpcstatus.Name(code))
}

// cancelAttempt ends the current attempt's context.
func (x *exchange) cancelAttempt() {
	if x.grpcCancel != nil {
		x.grpcCancel()
		x.grpcCancel = nil
	}
}

// msg is the status message a failed attempt ends the call with.
func (f *grpcFailure) msg() string {
	if f.kind != errNone {
		return "gateway: upstream " + f.kind.String() + ": " + f.detail
	}
	return f.detail
}

// parseGRPCTimeout reads a grpc-timeout header: up to eight digits and a
// unit (H, M, S, m, u, n).
func parseGRPCTimeout(v string) (time.Duration, bool) {
	if len(v) < 2 || len(v) > 9 {
		return 0, false
	}
	var n int64
	for i := 0; i < len(v)-1; i++ {
		c := v[i]
		if c < '0' || c > '9' {
			return 0, false // digits only: no sign, no space
		}
		n = n*10 + int64(c-'0')
	}
	unit := map[byte]time.Duration{'H': time.Hour, 'M': time.Minute, 'S': time.Second, 'm': time.Millisecond, 'u': time.Microsecond, 'n': time.Nanosecond}[v[len(v)-1]]
	if unit == 0 {
		return 0, false
	}
	if n > int64(math.MaxInt64/unit) {
		return math.MaxInt64, true // 99999999H: longer than any deadline, not a negative one
	}
	return time.Duration(n) * unit, true
}

// formatGRPCTimeout writes d as a grpc-timeout value, in the finest unit
// that fits eight digits.
func formatGRPCTimeout(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	for _, u := range []struct {
		unit time.Duration
		c    string
	}{{time.Nanosecond, "n"}, {time.Microsecond, "u"}, {time.Millisecond, "m"}, {time.Second, "S"}, {time.Minute, "M"}} {
		if v := d / u.unit; v < 100_000_000 {
			if d%u.unit != 0 && u.unit > time.Nanosecond {
				v++ // never shorter than asked: round up past the finest unit
			}
			return strconv.FormatInt(int64(v), 10) + u.c
		}
	}
	h := d / time.Hour
	if d%time.Hour != 0 {
		h++
	}
	return strconv.FormatInt(int64(h), 10) + "H"
}

// replayBody is a call's request stream, read once from the client and
// kept (up to limit bytes) so that an attempt that failed before the
// client saw anything can be made again with the same messages, followed
// by whatever the client sends next. One attempt reads it at a time: a
// new attempt's reader makes the previous one's read nothing more.
type replayBody struct {
	src    io.Reader
	limit  int
	readMu sync.Mutex // serialises reads from src
	mu     sync.Mutex
	kept   []byte
	read   int64 // bytes read from src
	over   bool  // more than limit was read: no replay
	eof    bool
	err    error
	cur    *replayReader
}

// replayable reports whether the stream so far can be sent again.
func (b *replayBody) replayable() bool {
	if b == nil {
		return true
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return !b.over && b.limit > 0
}

// received is how many bytes were read from the client so far.
func (b *replayBody) received() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.read
}

// readerFor starts an attempt's reading from the beginning.
func (b *replayBody) readerFor() *replayReader {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.cur != nil {
		b.cur.dead = true
	}
	b.cur = &replayReader{b: b}
	return b.cur
}

// replayReader is one attempt's view of a replayBody.
type replayReader struct {
	b    *replayBody
	pos  int
	dead bool // under b.mu
}

var errAttemptAbandoned = errors.New("attempt abandoned")

func (r *replayReader) Read(p []byte) (int, error) {
	b := r.b
	b.readMu.Lock()
	defer b.readMu.Unlock()
	b.mu.Lock()
	switch {
	case r.dead:
		b.mu.Unlock()
		return 0, errAttemptAbandoned
	case r.pos < len(b.kept):
		n := copy(p, b.kept[r.pos:])
		r.pos += n
		b.mu.Unlock()
		return n, nil
	case b.eof:
		b.mu.Unlock()
		return 0, io.EOF
	case b.err != nil:
		err := b.err
		b.mu.Unlock()
		return 0, err
	}
	b.mu.Unlock()
	// Reading from the client may wait, with b.mu free for a new attempt
	// to mark this one dead; what is read is kept whoever reads it.
	n, err := b.src.Read(p)
	b.mu.Lock()
	defer b.mu.Unlock()
	b.read += int64(n)
	if n > 0 && !b.over {
		if len(b.kept)+n > b.limit {
			b.over, b.kept = true, nil
		} else {
			b.kept = append(b.kept, p[:n]...)
		}
	}
	if errors.Is(err, io.EOF) {
		b.eof = true
	} else if err != nil {
		b.err = err
	}
	if r.dead {
		return 0, errAttemptAbandoned
	}
	r.pos = len(b.kept)
	return n, err
}

// Close is the transport's: the attempt is over.
func (r *replayReader) Close() error { return nil }

// validateGRPC checks what is gRPC's in a config: a pool's TLS settings,
// and the route features a gRPC call cannot use.
func (c *Config) validateGRPC(bad func(path, format string, args ...any)) {
	s := &c.Spec
	grpcPools := map[string]bool{}
	for i, u := range s.Upstreams {
		p := fmt.Sprintf("spec.upstreams[%d]", i)
		if u.GRPC == nil {
			if a := u.Health.Active; a != nil && a.GRPCService != "" {
				bad(p+".health.active.grpcService", "is for gRPC pools (grpc:)")
			}
			continue
		}
		grpcPools[u.Name] = true
		g := u.GRPC
		if !g.TLS && (g.CAFile != "" || g.ServerName != "" || g.InsecureSkipVerify) {
			bad(p+".grpc", "caFile, serverName and insecureSkipVerify need tls: true")
		}
		if g.TLS {
			if _, err := grpcTLSConfig(*g); err != nil {
				bad(p+".grpc.caFile", "%v", err)
			}
		}
		if a := u.Health.Active; a != nil && a.Path != "" {
			bad(p+".health.active.path", "a gRPC pool is checked with the gRPC health protocol: give grpcService (default: the whole server), not a path")
		}
	}
	for i, r := range s.Routes {
		if !grpcPools[r.Upstream] {
			continue
		}
		p := fmt.Sprintf("spec.routes[%d]", i)
		switch {
		case r.Cache != nil:
			bad(p+".cache", "route %s proxies gRPC calls, which are not cached", r.Name)
		case r.Hedge != nil:
			bad(p+".hedge", "route %s proxies gRPC calls; hedging them is not supported", r.Name)
		case len(r.Upgrades) > 0:
			bad(p+".upgrades", "route %s proxies gRPC calls, which do not upgrade", r.Name)
		case r.Rewrite != nil:
			bad(p+".rewrite", "route %s proxies gRPC calls, whose path is the method: it is not rewritten", r.Name)
		}
	}
}
