package gateway

import (
	"bytes"

	"github.com/valyala/fasthttp"
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
// one line, where chunked may not be the final coding.
const ReasonInvalidFraming = "invalid_framing"

// ReasonInvalidTarget: the request target is neither a path nor an
// absolute URL (RFC 9112, section 3.2): `x` without its leading slash, or
// the asterisk form `*`, which asks about a server rather than a resource,
// and the gateway speaks for many.
const ReasonInvalidTarget = "invalid_target"

// checkHost applies RFC 9112's rules for the host of a request (and
// refuses a Transfer-Encoding sent twice, found by the same scan, and
// CONNECT, whose target is a host rather than a resource), so that
// the route chosen by host and the Host the target receives are one and
// the same. A request target in absolute form (GET http://a.example/x)
// names the host itself and wins over the Host header, which the target
// then receives rewritten to match; without that, a route would be chosen
// by one host and the request served by the other. Any other target must
// be a path. It returns the reason
// when the request must be refused, with x.message saying why.
func (x *exchange) checkHost(req *fasthttp.Request) string {
	h := &req.Header
	if h.IsConnect() {
		x.message = "CONNECT is not proxied: the gateway opens no tunnels"
		return ReasonTunnelRefused
	}
	hosts, codings := framingFields(h.RawHeaders())
	if codings > 1 {
		// fasthttp reads such a body as chunked; a proxy in front may
		// not, so the two would disagree where the next request starts.
		x.message = "Transfer-Encoding is sent more than once"
		return ReasonInvalidFraming
	}
	if hosts > 1 {
		x.message = "the request has more than one Host header"
		return ReasonInvalidHost
	}
	target := h.RequestURI()
	if isAbsoluteForm(target) {
		host := req.URI().Host()
		if len(host) == 0 {
			x.message = "the request target names no host"
			return ReasonInvalidHost
		}
		h.SetHostBytes(host)
		return ""
	}
	if len(target) == 0 || target[0] != '/' {
		// fasthttp would read x as /x and * as /*, so a target could be
		// reached by a request line no other server would accept.
		x.message = "the request target must be a path starting with / or an absolute URL"
		return ReasonInvalidTarget
	}
	if len(h.Host()) == 0 && h.IsHTTP11() {
		x.message = "an HTTP/1.1 request needs a Host header"
		return ReasonInvalidHost
	}
	return ""
}

// framingFields counts the Host and the Transfer-Encoding fields in raw
// header lines.
func framingFields(raw []byte) (hosts, codings int) {
	for len(raw) > 0 {
		line := raw
		if i := bytes.IndexByte(raw, '\n'); i >= 0 {
			line, raw = raw[:i], raw[i+1:]
		} else {
			raw = nil
		}
		if i := bytes.IndexByte(line, ':'); i == 4 && bytes.EqualFold(line[:4], []byte("host")) {
			hosts++
		} else if i == 17 && bytes.EqualFold(line[:17], []byte("transfer-encoding")) {
			codings++
		}
	}
	return hosts, codings
}

// isAbsoluteForm reports whether a request target starts with a scheme:
// http:// or https://, in any case.
func isAbsoluteForm(target []byte) bool {
	for _, scheme := range []string{"http://", "https://"} {
		if len(target) >= len(scheme) && bytes.EqualFold(target[:len(scheme)], []byte(scheme)) {
			return true
		}
	}
	return false
}
