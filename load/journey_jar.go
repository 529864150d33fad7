package load

import (
	"cmp"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"path"
	"strings"
	"time"

	"github.com/relia-dev/relia/internal/config"
)

// The default bounds of a journey user's cookie jar: enough for a site
// that sets a few dozen cookies of a few hundred bytes, small enough
// that thousands of users hold megabytes, not gigabytes, whatever a
// target sends.
const (
	DefaultMaxCookies     = 100
	DefaultMaxCookieBytes = 32 << 10
)

// CookieJarSpec bounds the cookie jar each journey user keeps. A cookie
// a response sets past either bound is dropped (not kept, never sent)
// and counted in the results (journeys.cookies_dropped).
type CookieJarSpec struct {
	// MaxCookies is the most cookies one user keeps; default 100.
	MaxCookies int `yaml:"maxCookies"`
	// MaxSize is the most bytes (names, values, domains and paths) of
	// one user's cookies; default 32KiB.
	MaxSize config.Size `yaml:"maxSize"`
}

// jarKey identifies a stored cookie as a jar does: a cookie set again
// with the same domain, path and name replaces it.
type jarKey struct{ domain, path, name string }

// cookieJar is a user's jar: net/http/cookiejar's matching rules, within
// a count and a byte bound of its own. Its sizes count every cookie it
// accepted until one deletes it or replaces it (a cookie that expires
// by itself still counts), so the bound holds whatever the target sends.
type cookieJar struct {
	jar        *cookiejar.Jar
	sizes      map[jarKey]int
	bytes      int
	maxCookies int
	maxBytes   int
}

func newCookieJar(maxCookies, maxBytes int) *cookieJar {
	j := &cookieJar{sizes: map[jarKey]int{}, maxCookies: maxCookies, maxBytes: maxBytes}
	j.reset()
	return j
}

// reset empties the jar.
func (j *cookieJar) reset() {
	j.jar, _ = cookiejar.New(nil) // no options: cannot fail
	clear(j.sizes)
	j.bytes = 0
}

// Cookies returns the cookies to send to u.
func (j *cookieJar) Cookies(u *url.URL) []*http.Cookie { return j.jar.Cookies(u) }

// set keeps the cookies a response from u set, within the bounds, and
// returns how many it dropped. now tells which deletions (an Expires in
// the past) free their room.
func (j *cookieJar) set(u *url.URL, cookies []*http.Cookie, now time.Time) (dropped int) {
	keep := cookies[:0]
	for _, c := range cookies {
		k := jarKey{strings.ToLower(cmp.Or(strings.TrimPrefix(c.Domain, "."), u.Hostname())), cmp.Or(c.Path, defaultCookiePath(u.Path)), c.Name}
		size := len(k.domain) + len(k.path) + len(c.Name) + len(c.Value)
		old, had := j.sizes[k]
		switch {
		case c.MaxAge < 0 || !c.Expires.IsZero() && !c.Expires.After(now):
			if had {
				delete(j.sizes, k)
				j.bytes -= old
			}
		case !had && len(j.sizes) >= j.maxCookies, j.bytes-old+size > j.maxBytes:
			dropped++
			continue
		default:
			j.sizes[k] = size
			j.bytes += size - old
		}
		keep = append(keep, c)
	}
	if len(keep) > 0 {
		j.jar.SetCookies(u, keep)
	}
	return dropped
}

// defaultCookiePath is the path a cookie without one gets: the request
// path's directory (RFC 6265, 5.1.4).
func defaultCookiePath(p string) string {
	if p == "" || p[0] != '/' || strings.Count(p, "/") == 1 {
		return "/"
	}
	return path.Dir(p)
}
