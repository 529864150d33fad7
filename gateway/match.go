package gateway

import (
	"bytes"
	"fmt"
	"regexp"
	"strings"
)

// headerSource gives a request's header values; *fasthttp.RequestHeader is
// one, so matching reads the parsed request without copying it.
type headerSource interface {
	Peek(key string) []byte
}

// matcher is a route's compiled Match.
type matcher struct {
	hosts   []string // lower case; "*.x" as ".x" suffixes
	exact   string
	prefix  string // without a trailing slash, except "/"
	re      *regexp.Regexp
	methods []string
	headers []headerCond
}

type headerCond struct {
	name, value string // value "*": present
}

func compileMatch(m Match) (*matcher, error) {
	c := &matcher{methods: m.Methods}
	for _, h := range m.Hosts {
		h = strings.ToLower(h)
		if rest, ok := strings.CutPrefix(h, "*"); ok {
			h = rest // ".example.com"
		}
		c.hosts = append(c.hosts, h)
	}
	if p := m.Path; p != nil {
		c.exact = p.Exact
		if p.Prefix != "" {
			c.prefix = p.Prefix
			if len(c.prefix) > 1 {
				c.prefix = strings.TrimSuffix(c.prefix, "/")
			}
		}
		if p.Regex != "" {
			re, err := regexp.Compile(`^(?:` + p.Regex + `)$`)
			if err != nil {
				return nil, fmt.Errorf("compiling path regex: %w", err)
			}
			c.re = re
		}
	}
	for name, v := range m.Headers {
		c.headers = append(c.headers, headerCond{name: name, value: v})
	}
	return c, nil
}

// match reports whether a request with this host (Host header, port
// allowed), method and path satisfies every condition.
func (c *matcher) match(host, method, path []byte, h headerSource) bool {
	if len(c.methods) > 0 {
		ok := false
		for _, m := range c.methods {
			if string(method) == m {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	if len(c.hosts) > 0 && !c.matchHost(host) {
		return false
	}
	switch {
	case c.exact != "":
		if string(path) != c.exact {
			return false
		}
	case c.prefix != "":
		if !pathHasPrefix(path, c.prefix) {
			return false
		}
	case c.re != nil:
		if !c.re.Match(path) {
			return false
		}
	}
	for _, hc := range c.headers {
		v := h.Peek(hc.name)
		if v == nil || (hc.value != "*" && string(v) != hc.value) {
			return false
		}
	}
	return true
}

// pathHasPrefix matches prefix at a segment boundary: "/api" takes /api,
// /api/ and /api/x, not /apis.
func pathHasPrefix(path []byte, prefix string) bool {
	if prefix == "/" {
		return len(path) > 0 && path[0] == '/'
	}
	if len(path) < len(prefix) || string(path[:len(prefix)]) != prefix {
		return false
	}
	return len(path) == len(prefix) || path[len(prefix)] == '/'
}

func (c *matcher) matchHost(host []byte) bool {
	if i := bytes.LastIndexByte(host, ':'); i >= 0 && bytes.IndexByte(host[i:], ']') < 0 {
		host = host[:i]
	}
	for _, h := range c.hosts {
		if h[0] == '.' {
			if len(host) > len(h) && asciiEqualFold(host[len(host)-len(h):], h) {
				return true
			}
		} else if asciiEqualFold(host, h) {
			return true
		}
	}
	return false
}

// asciiEqualFold compares b with lower-case s, ignoring ASCII case, without
// allocating.
func asciiEqualFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range b {
		c := b[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != s[i] {
			return false
		}
	}
	return true
}

// rewritePath returns the path to send upstream; dst is reused.
func (r *route) rewritePath(dst, path []byte) []byte {
	rw := r.cfg.Rewrite
	if rw == nil {
		return append(dst[:0], path...)
	}
	if rw.Path != "" {
		return append(dst[:0], rw.Path...)
	}
	rest := path[len(r.match.prefix):]
	if r.match.prefix == "/" {
		rest = path[1:]
	}
	dst = append(dst[:0], rw.Prefix...)
	switch {
	case len(rest) == 0:
	case strings.HasSuffix(rw.Prefix, "/") && rest[0] == '/':
		dst = append(dst, rest[1:]...)
	case !strings.HasSuffix(rw.Prefix, "/") && rest[0] != '/':
		dst = append(dst, '/')
		dst = append(dst, rest...)
	default:
		dst = append(dst, rest...)
	}
	if len(dst) == 0 {
		dst = append(dst, '/')
	}
	return dst
}
