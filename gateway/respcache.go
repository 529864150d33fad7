package gateway

import (
	"net/http"

	"github.com/relia-dev/relia/gateway/cache"
	"github.com/valyala/fasthttp"
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
func cacheKey(ctx *fasthttp.RequestCtx, x *exchange) cache.Key {
	host := ctx.Request.Header.Host()
	target := ctx.Request.Header.RequestURI()
	x.ckey = append(append(x.ckey[:0], host...), target...)
	x.chost = len(host)
	return x.cacheKey(methodName(ctx.Method()))
}

// cacheKey returns the key cacheKey built, its strings aliasing x.ckey.
func (x *exchange) cacheKey(method string) cache.Key {
	return cache.Key{Method: method, Host: s(x.ckey[:x.chost]), Target: s(x.ckey[x.chost:])}
}

// cacheLookup consults the route's cache before the request goes
// upstream. It serves a fresh entry and reports true; otherwise it returns
// the entry that stale-if-error allows to serve should the upstream fail.
func (g *Gateway) cacheLookup(ctx *fasthttp.RequestCtx, x *exchange) (handled bool, stale *cache.Entry) {
	r := x.route
	key := cacheKey(ctx, x)
	if !ctx.IsGet() && !ctx.IsHead() {
		return false, nil
	}
	e, fresh, staleOK := r.cache.Lookup(key, requestHeader{&ctx.Request.Header})
	if fresh {
		g.serveCached(ctx, x, e, cacheHit)
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
func (g *Gateway) cacheAfter(ctx *fasthttp.RequestCtx, x *exchange, stale *cache.Entry) {
	r := x.route
	resp := &ctx.Response
	status := resp.StatusCode()
	if !ctx.IsGet() && !ctx.IsHead() {
		if status < 400 && !ctx.IsOptions() && !ctx.IsTrace() {
			r.cache.Invalidate(x.cacheKey(methodName(ctx.Method())))
		}
		return
	}
	failed := status == 500 || status == 502 || status == 503 || status == 504 || x.policy == "fallback"
	if failed && stale != nil {
		g.serveCached(ctx, x, stale, cacheStale)
		return
	}
	g.metrics.cacheLookup(r.name, cacheMiss)
	resp.Header.Set(cacheHeader, "MISS")
	if !ctx.IsGet() || failed || x.policy != "" {
		return
	}
	if len(resp.Header.Peek("Cache-Control")) == 0 && len(resp.Header.Peek("Expires")) == 0 {
		return // nothing to store without explicit freshness; skip the copy
	}
	// Upstream bodies arrive as streams. One of known length that fits in
	// an entry is read whole (and then sent from memory); one without a
	// length (chunked, server-sent events) keeps streaming, uncached.
	if cl := resp.Header.ContentLength(); cl < 0 || int64(cl) > r.cacheMaxEntry {
		return
	}
	hdr := make(http.Header)
	resp.Header.VisitAll(func(k, v []byte) {
		if string(k) == cacheHeader {
			return
		}
		hdr.Add(string(k), string(v))
	})
	// The cache keeps the key's strings, so they must not alias x.ckey.
	key := cache.Key{Method: http.MethodGet, Host: string(x.ckey[:x.chost]), Target: string(x.ckey[x.chost:])}
	r.cache.Store(key, requestHeader{&ctx.Request.Header}, status, hdr, resp.Body())
}

// serveCached answers with a stored response.
func (g *Gateway) serveCached(ctx *fasthttp.RequestCtx, x *exchange, e *cache.Entry, result string) {
	resp := &ctx.Response
	resp.CloseBodyStream()
	resp.Reset()
	resp.SetStatusCode(e.Status)
	for k, vs := range e.Header {
		if k == "Content-Length" || k == "Transfer-Encoding" {
			continue
		}
		for _, v := range vs {
			resp.Header.Add(k, v)
		}
	}
	resp.Header.Set("Age", cache.AgeHeader(e.Age(g.clock.Now())))
	if result == cacheStale {
		resp.Header.Set(cacheHeader, "STALE")
	} else {
		resp.Header.Set(cacheHeader, "HIT")
	}
	resp.SetBody(e.Body)
	g.metrics.cacheLookup(x.route.name, result)
}
