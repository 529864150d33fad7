// Package cache is the gateway's HTTP response cache: in memory, bounded
// in bytes, shared by every client (a shared cache in RFC 9111's terms),
// and engine-neutral: it reads request headers through HeaderGetter,
// which http.Header satisfies, and keeps responses as plain values.
//
// A proxy consults it before the upstream and offers it what came back:
//
//	key := cache.Key{Method: method, Host: host, Target: target}
//	entry, fresh, staleOK := c.Lookup(key, reqHeader)
//	if fresh {
//		// serve entry.Status, entry.Header, entry.Body,
//		// with Age: cache.AgeHeader(entry.Age(now))
//	}
//	status, header, body, err := callUpstream()
//	if (err != nil || status >= 500) && staleOK {
//		// serve the stale entry instead of the failure (stale-if-error)
//	}
//	c.Store(key, reqHeader, status, header, body)
//
// Freshness comes from the response's s-maxage, max-age or Expires, age
// from its Date and Age and the time held; responses without explicit
// freshness are not stored. no-store, no-cache and private responses,
// responses that set cookies and answers to authorized requests are not
// stored either; Vary is honoured; a request's no-cache, max-age and
// min-fresh are. stale-if-error (RFC 5861) keeps an entry usable past its
// lifetime while the upstream fails, unless must-revalidate,
// proxy-revalidate or s-maxage forbid it.
//
// ParseCacheControl reads a Cache-Control value without allocating.
package cache
