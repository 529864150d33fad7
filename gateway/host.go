package gateway

import (
	"bytes"

	"github.com/valyala/fasthttp"
)

// ReasonInvalidHost: the request's host is missing or ambiguous (RFC 9112,
// section 3.2): an HTTP/1.1 request without Host, or with more than one.
const ReasonInvalidHost = "invalid_host"

// checkHost applies RFC 9112's rules for the host of a request, so that
// the route chosen by host and the Host the target receives are one and
// the same. A request target in absolute form (GET http://a.example/x)
// names the host itself and wins over the Host header, which the target
// then receives rewritten to match; without that, a route would be chosen
// by one host and the request served by the other. It returns the reason
// when the request must be refused, with x.message saying why.
func (x *exchange) checkHost(req *fasthttp.Request) string {
	h := &req.Header
	if hostFields(h.RawHeaders()) > 1 {
		x.message = "the request has more than one Host header"
		return ReasonInvalidHost
	}
	if isAbsoluteForm(h.RequestURI()) {
		host := req.URI().Host()
		if len(host) == 0 {
			x.message = "the request target names no host"
			return ReasonInvalidHost
		}
		h.SetHostBytes(host)
		return ""
	}
	if len(h.Host()) == 0 && h.IsHTTP11() {
		x.message = "an HTTP/1.1 request needs a Host header"
		return ReasonInvalidHost
	}
	return ""
}

// hostFields counts the Host fields in raw header lines.
func hostFields(raw []byte) int {
	n := 0
	for len(raw) > 0 {
		line := raw
		if i := bytes.IndexByte(raw, '\n'); i >= 0 {
			line, raw = raw[:i], raw[i+1:]
		} else {
			raw = nil
		}
		if len(line) >= 5 && line[4] == ':' && (line[0]|0x20) == 'h' && (line[1]|0x20) == 'o' && (line[2]|0x20) == 's' && (line[3]|0x20) == 't' {
			n++
		}
	}
	return n
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
