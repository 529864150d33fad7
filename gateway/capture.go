package gateway

import (
	"fmt"
	"slices"

	"github.com/relia-dev/relia/callstore"
	"github.com/relia-dev/relia/internal/h1"
)

// Capturing bodies. A route whose capture keeps bodies has the first
// capture.maxBodyBytes of each body copied aside as the body streams
// through the gateway (bodyTap): the request's as readBody and
// request.Next hand it to the target, the response's as passOn or
// writeHTTP2 hand it to the client. What is forwarded is the same bytes,
// neither held back nor changed; the copy stops at the cap, so a
// capture's memory is bounded by the cap, whatever the client announces
// or sends. The record gets the kept prefix, redacted by the route's
// callstore.Redactor, and the whole size (bytes_in, bytes_out). An
// answer of the gateway's own (a rejection, a fallback, a cached answer)
// is whole in memory already and is read from there. Routes that capture
// no bodies pay one test of a bool per body piece.

// bodyTap keeps the first bytes of a body, up to limit.
type bodyTap struct {
	buf   []byte
	limit int
}

// add keeps what of p fits under the limit. The buffer grows with what
// arrives, never past the limit.
func (t *bodyTap) add(p []byte) {
	room := t.limit - len(t.buf)
	if room <= 0 || len(p) == 0 {
		return
	}
	if len(p) > room {
		p = p[:room]
	}
	if cap(t.buf)-len(t.buf) < len(p) {
		n := min(max(2*cap(t.buf), len(t.buf)+len(p), 512), t.limit)
		grown := make([]byte, len(t.buf), n)
		copy(grown, t.buf)
		t.buf = grown
	}
	t.buf = append(t.buf, p...)
}

// captureTaps are an exchange's two taps, kept with it in its pool once
// a capturing route has used them.
type captureTaps struct {
	req, resp bodyTap
}

// startCapture turns the taps on for a request whose route keeps bodies;
// it runs before the request's body is read.
func (g *Gateway) startCapture(x *exchange) {
	red := x.route.capture
	if !red.KeepsBodies() || g.calls == nil || g.calls.rec == nil {
		return
	}
	if x.taps == nil {
		x.taps = new(captureTaps)
	}
	limit := red.MaxBodyBytes()
	x.taps.req = bodyTap{buf: x.taps.req.buf[:0], limit: limit}
	x.taps.resp = bodyTap{buf: x.taps.resp.buf[:0], limit: limit}
	x.capturing = true
	x.req.tap = &x.taps.req
}

// tapResponse keeps the first bytes of the response body as they go to
// the client.
func (x *exchange) tapResponse(p []byte) {
	if x.capturing {
		x.taps.resp.add(p)
	}
}

// captureResponseHead keeps the response's fields, redacted, for a
// route that captures headers. It runs as the response is about to be
// written: a target's fields point into its connection's buffer, which
// the body overwrites as it streams and which goes back to the pool
// with the connection.
func (x *exchange) captureResponseHead() {
	if red := x.route.capture; red.KeepsHeaders() {
		x.respHeaders = red.Headers(headerList(x.resp.fields))
	}
}

// captureInto puts what the route keeps of the call's headers and
// bodies, redacted, into rec.
func (x *exchange) captureInto(rec *callstore.Record, red *callstore.Redactor) {
	if red.KeepsHeaders() {
		// The request's head stays in the client connection's buffer
		// until the exchange ends.
		rec.RequestHeaders = red.Headers(headerList(x.req.fields))
		rec.ResponseHeaders = x.respHeaders
	}
	if !red.KeepsBodies() {
		return
	}
	if x.capturing {
		rec.RequestBody = red.Body(x.taps.req.buf, x.req.bodyRead)
	}
	switch {
	case len(x.resp.body) > 0 && x.bytesOut > 0:
		rec.ResponseBody = red.Body(x.resp.body, x.bytesOut)
	case x.capturing:
		rec.ResponseBody = red.Body(x.taps.resp.buf, x.bytesOut)
	}
}

// routeCapture compiles a route's capture; the header API keys come in
// (spec.auth.keyHeader) is never kept, whatever its name. It is part of
// the route, so a reload changes it with the rest of the route.
func routeCapture(r Route, a *Auth) (*callstore.Redactor, error) {
	if r.Capture == nil {
		return nil, nil
	}
	c := *r.Capture
	if a != nil && a.KeyHeader != "" {
		c.RedactHeaders = append(slices.Clip(c.RedactHeaders), a.KeyHeader)
	}
	red, err := callstore.NewRedactor(c)
	if err != nil {
		return nil, fmt.Errorf("route %s: capture: %w", r.Name, err)
	}
	return red, nil
}

// headerList copies h1 fields for a capturing route.
func headerList(fields []h1.Header) []callstore.Header {
	out := make([]callstore.Header, len(fields))
	for i, f := range fields {
		out[i] = callstore.Header{Name: string(f.Name), Value: string(f.Value)}
	}
	return out
}

// validateCapture checks the routes' capture settings where `relia
// validate` sees them: JSON paths and the body cap, and no bodies on
// gRPC routes, whose messages are not captured.
func (c *Config) validateCapture(bad func(path, format string, args ...any)) {
	grpcPools := map[string]bool{}
	for _, u := range c.Spec.Upstreams {
		if u.GRPC != nil {
			grpcPools[u.Name] = true
		}
	}
	for i, r := range c.Spec.Routes {
		if r.Capture == nil {
			continue
		}
		at := fmt.Sprintf("spec.routes[%d].capture", i)
		if _, err := callstore.NewRedactor(*r.Capture); err != nil {
			bad(at, "%v", err)
		}
		if r.Capture.Bodies && grpcPools[r.Upstream] {
			bad(at+".bodies", "route %s proxies gRPC calls, whose messages are not captured", r.Name)
		}
	}
}
