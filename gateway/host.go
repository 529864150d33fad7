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
// one line, with a coding other than chunked, or together with
// Content-Length.
const ReasonInvalidFraming = "invalid_framing"

// ReasonInvalidHeader: a header line has whitespace between its name and
// the colon (RFC 9112, section 5.1), which servers must refuse: one that
// trims it reads "Transfer-Encoding : chunked" as framing, one that does
// not reads a field of another name.
const ReasonInvalidHeader = "invalid_header"

// ReasonUnsupportedVersion: the request line names an HTTP version whose
// major number is not 1 (HTTP/2.0 sent as text, HTTP/0.9); it gets 505.
const ReasonUnsupportedVersion = "unsupported_version"

// ReasonInvalidTarget: the request target is neither a path nor an
// absolute URL (RFC 9112, section 3.2): `x` without its leading slash, or
// the asterisk form `*`, which asks about a server rather than a resource,
// and the gateway speaks for many.
const ReasonInvalidTarget = "invalid_target"

// checkRequestHead refuses what two servers could read two ways in a
// request's head (RFC 9112): CONNECT, whose target is a host rather than a
// resource; a version other than 1.x; framing or header lines that one
// server could parse differently from another; a target that is neither a
// path nor an absolute URL; and a host missing or named twice. It also
// makes the route chosen by host and the Host the target receives one and
// the same: a request target in absolute form (GET http://a.example/x)
// names the host itself and wins over the Host header, which the target
// then receives rewritten to match. It returns the reason when the
// request must be refused, with x.message saying why.
func (x *exchange) checkRequestHead(req *fasthttp.Request) string {
	h := &req.Header
	if h.IsConnect() {
		x.message = "CONNECT is not proxied: the gateway opens no tunnels"
		return ReasonTunnelRefused
	}
	if proto := h.Protocol(); len(proto) == 8 && proto[5] != '1' {
		x.message = "HTTP/" + string(proto[5:]) + " is not spoken over this connection"
		return ReasonUnsupportedVersion
	}
	f := scanHead(h.RawHeaders())
	switch {
	case f.spacedName:
		x.message = "a header name is followed by whitespace before its colon"
		return ReasonInvalidHeader
	case f.codings > 1:
		// fasthttp reads such a body as chunked; a proxy in front may
		// not, so the two would disagree where the next request starts.
		x.message = "Transfer-Encoding is sent more than once"
		return ReasonInvalidFraming
	case f.codings == 1 && f.otherCoding:
		// identity, which fasthttp accepts, is no coding any more: a
		// proxy in front may have framed the body some other way.
		x.message = "Transfer-Encoding must be chunked"
		return ReasonInvalidFraming
	case f.codings == 1 && f.lengths > 0:
		// Each side of a smuggling attack picks one of the two.
		x.message = "Transfer-Encoding and Content-Length are both sent"
		return ReasonInvalidFraming
	case f.hosts > 1:
		x.message = "the request has more than one Host header"
		return ReasonInvalidHost
	}
	target := h.RequestURI()
	if hasSpaceOrControl(target) {
		// fasthttp reads "/a b" as /a%20b: a target reached by a request
		// line no other server would accept.
		x.message = "the request target holds a space or a control character"
		return ReasonInvalidTarget
	}
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

// headFields is what scanHead finds in a request's raw header lines.
type headFields struct {
	hosts, codings, lengths int
	// otherCoding: a Transfer-Encoding line whose value is not chunked.
	otherCoding bool
	// spacedName: a line with whitespace between the name and the colon.
	spacedName bool
}

// scanHead counts the Host, Transfer-Encoding and Content-Length fields in
// raw header lines, and notes the lines no server may accept. fasthttp
// keeps such a line's name, space included, and would forward it.
func scanHead(raw []byte) headFields {
	var f headFields
	for len(raw) > 0 {
		line := raw
		if i := bytes.IndexByte(raw, '\n'); i >= 0 {
			line, raw = raw[:i], raw[i+1:]
		} else {
			raw = nil
		}
		i := bytes.IndexByte(line, ':')
		if i <= 0 || line[0] == ' ' || line[0] == '\t' {
			continue // not a field line, or an obsolete folded continuation
		}
		if c := line[i-1]; c == ' ' || c == '\t' {
			f.spacedName = true
		}
		switch {
		case i == 4 && bytes.EqualFold(line[:4], []byte("host")):
			f.hosts++
		case i == 14 && bytes.EqualFold(line[:14], []byte("content-length")):
			f.lengths++
		case i == 17 && bytes.EqualFold(line[:17], []byte("transfer-encoding")):
			f.codings++
			if !bytes.EqualFold(bytes.TrimSpace(line[i+1:]), []byte("chunked")) {
				f.otherCoding = true
			}
		}
	}
	return f
}

// hasSpaceOrControl reports whether a request target holds a byte that a
// request line cannot carry: a space, a control character or DEL.
func hasSpaceOrControl(target []byte) bool {
	for _, c := range target {
		if c <= ' ' || c == 0x7f {
			return true
		}
	}
	return false
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
