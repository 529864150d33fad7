package gateway

import (
	"bytes"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/relia-dev/relia/gateway/upstream"
	"github.com/relia-dev/relia/internal/h1"
)

// upgrade proxies a protocol switch on a route that lets the protocol
// through: the request goes to a target over a connection of its own, and
// only if the target answers 101 Switching Protocols for that same
// protocol does the connection become a tunnel (see conn.splice). Any
// other answer is passed on as a plain response, and the client's
// connection stays HTTP: its next request is routed, checked and logged
// like any other.
func (g *Gateway) upgrade(x *exchange) {
	r := x.route
	if r.pool == nil {
		g.serveFallback(x, "fallback")
		return
	}
	t := r.pool.pick(nil, nil)
	if t == nil {
		t = r.pool.openBreaker(g.clock.Now) // its breaker answers, as for requests
	}
	if t == nil {
		g.unavailable(x, "health", ReasonNoHealthyUpstream, 0)
		return
	}
	x.target, x.attempts = t, 1
	if t.breaker != nil {
		bp, err := t.breaker.Allow()
		if err != nil {
			g.rejectErr(x, err)
			return
		}
		defer func() { bp.Done(nil) }()
	}
	if err := g.readBody(x); err != nil {
		g.bodyRefusal(x, err)
		return
	}
	g.prepareUpstream(x)
	deadline := g.clock.Now().Add(r.timeout)
	uc, err := t.up.Dial(x.req.ctx, deadline)
	if err != nil {
		g.reject(x, http.StatusServiceUnavailable, "upstream", ReasonConnectFailed, 0)
		return
	}
	u := &x.ureq
	u.Host = x.upstreamHost(t)
	u.Fields = append(u.Fields, h1.Header{Name: bs("Connection"), Value: bs("Upgrade")}, h1.Header{Name: bs("Upgrade"), Value: x.req.upgrade})
	up := upstreamResponses.Get().(*upstream.Response)
	if err := uc.Send(x.req.ctx, u, up, deadline); err != nil {
		uc.Close()
		upstreamResponses.Put(up)
		g.attemptFailed(x, classifyErr(err))
		return
	}
	x.end = g.clock.Now()
	switched := up.Status == http.StatusSwitchingProtocols
	if switched {
		proto, _ := up.Get("Upgrade")
		switched = up.Upgrade && bytes.EqualFold(proto, x.req.upgrade)
	}
	if !switched {
		if up.Status == http.StatusSwitchingProtocols {
			// A switch to something else than was asked for.
			uc.Close()
			upstreamResponses.Put(up)
			g.reject(x, http.StatusBadGateway, "upstream", ReasonUpstreamInvalid, 0)
			return
		}
		x.resp.fromTarget(up) // a plain answer; the connection is not kept
		return
	}
	x.resp.own(http.StatusSwitchingProtocols)
	for _, f := range up.Headers {
		if !up.IsHopByHop(f.Name) {
			x.resp.fields = append(x.resp.fields, f)
		}
	}
	x.resp.detach()
	upstreamResponses.Put(up)
	x.upgraded = uc
}

// splice copies bytes both ways between the client and the target an
// upgrade switched to, until either side ends; then it ends both. Bytes
// either side sent past the 101 exchange, already buffered, go first.
func (c *conn) splice(x *exchange) {
	uc := x.upgraded
	x.upgraded = nil
	defer uc.Close()
	var zero time.Time
	c.c.SetDeadline(zero)
	tc := uc.Net()
	tc.SetDeadline(zero)
	if hook := c.g.tunnelOpening.Load(); hook != nil {
		(*hook)()
	}
	c.tunnel.Store(&tc)
	// A drain that began lets the tunnel run until its deadline; one whose
	// deadline ended this connection before the tunnel was stored above
	// found no tunnel to end, so the tunnel ends itself. (end stores ended
	// before it loads tunnel, this stores tunnel before it loads ended:
	// one of the two sees the other.)
	if c.ended.Load() {
		c.end()
	}
	var once sync.Once
	endBoth := func() {
		once.Do(func() {
			c.nc.SetDeadline(time.Unix(1, 0))
			tc.SetDeadline(time.Unix(1, 0))
		})
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // ends when either side ends
		defer wg.Done()
		defer endBoth()
		if p := uc.Reader().Buffered(); len(p) > 0 {
			if c.write(p) != nil {
				return
			}
		}
		copyConn(c.write, uc)
	}()
	func() {
		defer endBoth()
		if p := c.rd.Buffered(); len(p) > 0 {
			if uc.Write(p) != nil {
				return
			}
		}
		copyConn(uc.Write, c)
	}()
	wg.Wait()
}

// copyConn copies from src to write until either fails.
func copyConn(write func([]byte) error, src io.Reader) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 && write(buf[:n]) != nil {
			return
		}
		if err != nil {
			return
		}
	}
}
