package gateway

import (
	"bufio"
	"io"
	"net"
	"sync"
	"time"

	"github.com/valyala/fasthttp"
)

// isUpgrade reports whether the client asks to switch protocols
// (WebSocket, h2c upgrade is handled by the HTTP/2 listener instead).
func isUpgrade(req *fasthttp.Request) bool {
	return req.Header.ConnectionUpgrade() && len(req.Header.Peek("Upgrade")) > 0
}

// upgrade proxies a protocol switch: the request goes to a target over a
// connection of its own, and from then on bytes are copied both ways until
// either side closes. The target's 101 (or refusal) reaches the client
// through the same copy, so the gateway never needs to understand
// WebSocket frames.
func (g *Gateway) upgrade(ctx *fasthttp.RequestCtx, x *exchange) {
	r := x.route
	if r.pool == nil {
		g.serveFallback(ctx, x, "fallback")
		return
	}
	t := r.pool.pick(nil, nil)
	if t == nil {
		t = r.pool.openBreaker(g.clock.Now) // its breaker answers, as for requests
	}
	if t == nil {
		g.unavailable(ctx, x, "health", ReasonNoHealthyUpstream, 0)
		return
	}
	x.target, x.attempts = t, 1
	if t.breaker != nil {
		bp, err := t.breaker.Allow()
		if err != nil {
			g.rejectErr(ctx, x, err)
			return
		}
		defer func() { bp.Done(nil) }()
	}
	timeout := r.pool.cfg.ConnectTimeout
	if timeout == 0 {
		timeout = DefaultConnectTimeout
	}
	up, err := fasthttp.DialTimeout(t.addr, timeout)
	if err != nil {
		g.reject(ctx, x, fasthttp.StatusServiceUnavailable, "upstream", ReasonConnectFailed, 0)
		return
	}
	req := &ctx.Request
	proto := string(req.Header.Peek("Upgrade"))
	prepareUpstream(req, r, x)
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", proto)
	bw := bufio.NewWriter(up)
	if err := req.Write(bw); err != nil || bw.Flush() != nil {
		up.Close()
		g.reject(ctx, x, fasthttp.StatusBadGateway, "upstream", ReasonUpstreamReset, 0)
		return
	}
	ctx.SetStatusCode(fasthttp.StatusSwitchingProtocols)
	spliced := func(c net.Conn) {
		// No deadlines from here on, set before serve so that a Shutdown
		// already past its deadline, which ends c at once, is not undone.
		var zero time.Time
		c.SetDeadline(zero)
		up.SetDeadline(zero)
		g.taken.serve(func() { endConn(c); up.Close() }, func() { splice(c, up) })
	}
	if hijackBridged(ctx, spliced) {
		return
	}
	ctx.HijackSetNoResponse(true)
	ctx.Hijack(spliced)
}

// splice copies between a and b until one side ends, then ends both:
// endConn, because the fast engine's hijacked connection ignores Close,
// and a copy still reading from it would wait for the client's next byte.
func splice(a, b net.Conn) {
	var once sync.Once
	closeBoth := func() { once.Do(func() { endConn(a); endConn(b) }) }
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); io.Copy(a, b); closeBoth() }()
	go func() { defer wg.Done(); io.Copy(b, a); closeBoth() }()
	wg.Wait()
}
