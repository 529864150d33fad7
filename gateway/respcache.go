package gateway

import (
	"net/http"

	"github.com/relia-dev/relia/callstore"
	"github.com/relia-dev/relia/gateway/cache"
	"github.com/relia-dev/relia/internal/h1"
	"github.com/relia-dev/relia/outcome"
)

// Cache lookup results, the result label of
// relia_gateway_cache_lookups_total.
const (
	cacheHit   = "hit"
	cacheMiss  = "miss"
	cacheStale = "stale"
)

// cacheHeader tells the client how the cache answered.
const cacheHeader = "X-Relia-Cache"

// cacheKey builds the request's cache key into x.ckey: the host and the
// target (path and query) as the client sent them, before any rewrite.
// The key's strings alias x.ckey and live as long as the exchange.
func cacheKey(x *exchange) cache.Key {
	host := x.req.host
	x.ckey = append(append(x.ckey[:0], host...), x.req.path...)
	x.ckey = append(x.ckey, x.req.query...)
	x.chost = len(host)
	return x.cacheKey(methodName(x.req.method))
}

// isMethod reports whether the request's method is m.
func (x *exchange) isMethod(m string) bool { return string(x.req.method) == m }

// cacheKey returns the key cacheKey built, its strings aliasing x.ckey.
func (x *exchange) cacheKey(method string) cache.Key {
	return cache.Key{Method: method, Host: s(x.ckey[:x.chost]), Target: s(x.ckey[x.chost:])}
}

// cacheLookup consults the route's cache before the request goes
// upstream. It serves a fresh entry and reports true; otherwise it returns
// the entry that stale-if-error allows to serve should the upstream fail.
func (g *Gateway) cacheLookup(x *exchange) (handled bool, stale *cache.Entry) {
	r := x.route
	key := cacheKey(x)
	if !x.isMethod("GET") && !x.isMethod("HEAD") {
		return false, nil
	}
	e, fresh, staleOK := r.cache.Lookup(key, &x.req)
	if fresh {
		g.serveCached(x, e, cacheHit)
		return true, nil
	}
	if staleOK {
		return false, e
	}
	return false, nil
}

// cacheAfter runs once the upstream (or a policy) has answered a request
// to a cached route: it covers a failure with a stale entry, stores a
// cacheable answer, and invalidates the resource on a successful unsafe
// request (RFC 9111 section 4.4).
func (g *Gateway) cacheAfter(x *exchange, stale *cache.Entry) {
	r := x.route
	resp := &x.resp
	status := resp.status
	if !x.isMethod("GET") && !x.isMethod("HEAD") {
		if status < 400 && !x.isMethod("OPTIONS") && !x.isMethod("TRACE") {
			r.cache.Invalidate(x.cacheKey(methodName(x.req.method)))
		}
		return
	}
	failed := status == 500 || status == 502 || status == 503 || status == 504 || x.policy == "fallback"
	if failed && stale != nil {
		g.serveCached(x, stale, cacheStale)
		return
	}
	g.metrics.cacheLookup(r.name, cacheMiss)
	resp.fields = setField(resp.fields, cacheHeader, bs("MISS"))
	if !x.isMethod("GET") || failed || x.policy != "" || resp.up == nil {
		return
	}
	if getField(resp.fields, "Cache-Control") == nil && getField(resp.fields, "Expires") == nil {
		return // nothing to store without explicit freshness; skip the copy
	}
	// Upstream bodies arrive as streams. One of known length that fits in
	// an entry is read whole (and then sent from memory); one without a
	// length (chunked, server-sent events) keeps streaming, uncached.
	if cl := resp.bodyLength(); cl < 0 || cl > r.cacheMaxEntry {
		return
	}
	if !resp.readAll(r.cacheMaxEntry) {
		g.reject(x, http.StatusBadGateway, "upstream", ReasonUpstreamReset, 0)
		return
	}
	hdr := make(http.Header)
	for _, f := range resp.fields {
		if h1.EqualFold(f.Name, cacheHeader) {
			continue
		}
		hdr.Add(string(f.Name), string(f.Value))
	}
	// The cache keeps the key's strings, so they must not alias x.ckey.
	key := cache.Key{Method: http.MethodGet, Host: string(x.ckey[:x.chost]), Target: string(x.ckey[x.chost:])}
	r.cache.Store(key, &x.req, status, hdr, resp.body)
}

// serveCached answers with a stored response.
func (g *Gateway) serveCached(x *exchange, e *cache.Entry, result string) {
	resp := &x.resp
	resp.own(e.Status)
	for k, vs := range e.Header {
		if k == "Content-Length" || k == "Transfer-Encoding" {
			continue
		}
		for _, v := range vs {
			resp.fields = append(resp.fields, h1.Header{Name: bs(k), Value: bs(v)})
		}
	}
	resp.fields = setField(resp.fields, "Age", bs(cache.AgeHeader(e.Age(g.clock.Now()))))
	g.addStep(x, callstore.StepCache, result, e.Status, outcome.ClassifyResponse(e.Status, nil).String(), "", 0)
	if result == cacheStale {
		resp.fields = setField(resp.fields, cacheHeader, bs("STALE"))
	} else {
		resp.fields = setField(resp.fields, cacheHeader, bs("HIT"))
	}
	resp.body = e.Body
	g.metrics.cacheLookup(x.route.name, result)
}
