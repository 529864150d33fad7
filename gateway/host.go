package gateway

import (
	"bytes"

	"github.com/relia-dev/relia/internal/h1"
)

// ReasonInvalidHost: the request's host is missing or ambiguous (RFC 9112,
// section 3.2): an HTTP/1.1 request without Host, or with more than one.
const ReasonInvalidHost = "invalid_host"

// ReasonTunnelRefused: a CONNECT request. The gateway forwards requests to
// the targets of its routes; it opens no tunnels to addresses a client
// names.
const ReasonTunnelRefused = "tunnel_refused"

// ReasonInvalidFraming: the request's body length cannot be determined
// reliably (RFC 9112, section 6.3): Transfer-Encoding sent on more than
// one line, with a coding other than chunked, or together with
// Content-Length; a Content-Length that is not one number.
const ReasonInvalidFraming = "invalid_framing"

// ReasonInvalidHeader: a header line is malformed (RFC 9112, section 5):
// whitespace or another character a name cannot hold before its colon
// ("Transfer Encoding: chunked"), no colon at all, a folded continuation
// line, a control character in a value, a bare CR or LF.
const ReasonInvalidHeader = "invalid_header"

// ReasonUnsupportedVersion: the request line names an HTTP version whose
// major number is not 1 (HTTP/2.0 sent as text, HTTP/0.9); it gets 505.
const ReasonUnsupportedVersion = "unsupported_version"

// ReasonInvalidTarget: the request target is neither a path nor an
// absolute http(s) URL (RFC 9112, section 3.2): `x` without its leading
// slash, the asterisk form `*`, which asks about a server rather than a
// resource, and the gateway speaks for many, or an absolute URL with
// userinfo (`http://user:pass@host/`), which the gateway never turns into
// credentials.
const ReasonInvalidTarget = "invalid_target"

// checkTarget reads the request target the codec accepted: CONNECT is
// refused, a path is split from its query, and an absolute-form target
// names the host itself, winning over the Host field (the route chosen by
// host and the Host the target gets are then one and the same). It sets
// x.path, the path routes match, and returns the reason when the request
// must be refused, with x.message saying why.
func (x *exchange) checkTarget(mode EscapedSlashes) string {
	r := &x.req
	if string(r.method) == "CONNECT" {
		x.message = "CONNECT is not proxied: the gateway opens no tunnels"
		return ReasonTunnelRefused
	}
	t := r.target
	if len(t) > 0 && t[0] != '/' {
		scheme, rest, ok := bytes.Cut(t, []byte("://"))
		if !ok || !(h1.EqualFold(scheme, "http") || h1.EqualFold(scheme, "https")) {
			x.message = "the request target must be a path starting with / or an absolute http(s) URL"
			return ReasonInvalidTarget
		}
		end := bytes.IndexAny(rest, "/?#")
		if end < 0 {
			end = len(rest)
		}
		authority := rest[:end]
		if bytes.IndexByte(authority, '@') >= 0 {
			x.message = "userinfo in the request target is refused; send credentials in Authorization"
			return ReasonInvalidTarget
		}
		if len(authority) == 0 {
			x.message = "the request target names no host"
			return ReasonInvalidHost
		}
		r.host = authority
		t = rest[end:]
		if len(t) == 0 || t[0] == '?' {
			t = append(bs("/")[:1:1], t...) // an empty path is "/"
		}
	}
	if len(t) == 0 {
		x.message = "the request target must be a path starting with / or an absolute http(s) URL"
		return ReasonInvalidTarget
	}
	if i := bytes.IndexByte(t, '#'); i >= 0 {
		t = t[:i] // a fragment is never sent; a client that does is lenient
	}
	r.path, r.query = t, nil
	if i := bytes.IndexByte(t, '?'); i >= 0 {
		r.path, r.query = t[:i], t[i:]
	}
	return x.routingPath(r.path, mode)
}
