package gateway

import "bytes"

// EscapedSlashes is what the gateway does with a percent-encoded slash
// (%2F) or backslash (%5C) in a request path. Routes match the path that
// results, and the target receives that same path, so a route never
// matches one path while the target serves another.
type EscapedSlashes string

// The choices for encoded slashes.
const (
	// EscapedSlashesDecode decodes them like every other escape, so
	// /a%2Fb is /a/b to routes and targets (the default).
	EscapedSlashesDecode EscapedSlashes = "decode"
	// EscapedSlashesKeep keeps them encoded inside their segment, for APIs
	// that carry names with slashes (/projects/group%2Frepo). Routes see
	// %2F; targets receive %2F. A path whose encoded slashes hide a dot
	// segment (/public/..%2Fadmin) is refused with 400, since a target
	// that decodes them would resolve it to another resource.
	EscapedSlashesKeep EscapedSlashes = "keep"
	// EscapedSlashesReject refuses any path with an encoded slash or
	// backslash with 400.
	EscapedSlashesReject EscapedSlashes = "reject"
)

// hasEscapedSlash reports whether a raw request path holds %2F or %5C, in
// either case, or a bare backslash: no valid path character, and a
// separator to targets that follow Windows or the WHATWG URL standard.
func hasEscapedSlash(raw []byte) bool {
	for i := range raw {
		if raw[i] == '\\' || raw[i] == '%' && i+2 < len(raw) && isEscapedSlash(raw[i+1], raw[i+2]) {
			return true
		}
	}
	return false
}

func isEscapedSlash(hi, lo byte) bool {
	return (hi == '2' && (lo == 'f' || lo == 'F')) || (hi == '5' && (lo == 'c' || lo == 'C'))
}

// appendKeptPath appends the path that routes match when encoded slashes
// are kept: every escape decoded except %2F, %5C and %25, which stay
// encoded in upper case (so each '%' in the result starts one of those
// three), a bare backslash written as %5C too, a '%' that starts no valid
// escape turned into %25, repeated
// slashes merged and dot segments resolved (RFC 3986, 5.2.4). It returns
// false when a segment, split at its encoded slashes too, holds a "." or
// ".." segment: a target that decodes %2F would resolve that one.
func appendKeptPath(dst, raw []byte) ([]byte, bool) {
	start := len(dst)
	dst = append(dst, '/')
	var segBuf [128]byte
	seg := segBuf[:0]
	for i := 0; i <= len(raw); {
		if i == len(raw) || raw[i] == '/' {
			dst = appendSegment(dst, start, seg, i == len(raw))
			if hidesDotSegment(seg) {
				return dst, false
			}
			seg = seg[:0]
			i++
			continue
		}
		c := raw[i]
		if c == '%' {
			if i+2 < len(raw) && isHex(raw[i+1]) && isHex(raw[i+2]) {
				b := unhex(raw[i+1])<<4 | unhex(raw[i+2])
				if b == '/' || b == '\\' || b == '%' {
					seg = append(seg, '%', upperHex[b>>4], upperHex[b&15])
				} else {
					seg = append(seg, b)
				}
				i += 3
				continue
			}
			seg = append(seg, "%25"...)
			i++
			continue
		}
		if c == '\\' {
			seg = append(seg, "%5C"...)
			i++
			continue
		}
		seg = append(seg, c)
		i++
	}
	return dst, true
}

// appendSegment adds one decoded segment to the path being built in
// dst[start:], which always ends in '/'. Empty segments merge into their
// neighbours, "." vanishes, ".." removes the segment before it. The last
// segment is written without a trailing slash, so "/a/b" stays "/a/b" and
// "/a/b/" stays "/a/b/".
func appendSegment(dst []byte, start int, seg []byte, last bool) []byte {
	switch string(seg) {
	case "", ".":
		return dst
	case "..":
		if len(dst)-start > 1 {
			// Drop the previous segment, keeping the slash before it.
			dst = dst[:start+bytes.LastIndexByte(dst[start:len(dst)-1], '/')+1]
		}
		return dst
	}
	dst = append(dst, seg...)
	if !last {
		dst = append(dst, '/')
	}
	return dst
}

// hidesDotSegment reports whether seg, split at its encoded slashes and
// backslashes, has a "." or ".." part.
func hidesDotSegment(seg []byte) bool {
	if !bytes.Contains(seg, []byte{'%'}) {
		return false
	}
	for len(seg) > 0 {
		n := len(seg)
		for i := 0; i+2 < len(seg); i++ {
			if seg[i] == '%' && isEscapedSlash(seg[i+1], seg[i+2]) {
				n = i
				break
			}
		}
		if part := string(seg[:n]); part == "." || part == ".." {
			return true
		}
		if n == len(seg) {
			return false
		}
		seg = seg[n+3:]
		if len(seg) == 0 {
			return false
		}
	}
	return false
}

// appendDecodedPath appends the path that routes match when encoded
// slashes are decoded: every valid escape decoded (a '%' that starts none
// is kept as it is), then repeated slashes merged and dot segments
// resolved (RFC 3986, 5.2.4), so /public/..%2Fadmin is /admin.
func appendDecodedPath(dst, raw []byte) []byte {
	start := len(dst)
	dst = append(dst, '/')
	var segBuf [128]byte
	seg := segBuf[:0]
	flush := func(last bool) {
		dst = appendSegment(dst, start, seg, last)
		seg = seg[:0]
	}
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		if c == '%' && i+2 < len(raw) && isHex(raw[i+1]) && isHex(raw[i+2]) {
			c = unhex(raw[i+1])<<4 | unhex(raw[i+2])
			i += 2
		}
		if c == '/' {
			flush(false)
			continue
		}
		seg = append(seg, c)
	}
	flush(true)
	return dst
}

// appendWirePath encodes a path for the request line: bytes a path may
// not carry are escaped as net/url escapes them. A path from
// appendKeptPath (kept) has each '%' copied as is, since it already
// starts a valid escape; a decoded path has it escaped too.
func appendWirePath(dst, path []byte, kept bool) []byte {
	for _, c := range path {
		if (c != '%' || !kept) && shouldEscapeInPath(c) {
			dst = append(dst, '%', upperHex[c>>4], upperHex[c&15])
		} else {
			dst = append(dst, c)
		}
	}
	return dst
}

// shouldEscapeInPath is net/url's shouldEscape for a path as a whole:
// everything but unreserved characters and $&+,/:;=@ is escaped.
func shouldEscapeInPath(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return false
	}
	switch c {
	case '-', '_', '.', '~', '$', '&', '+', ',', '/', ':', ';', '=', '@':
		return false
	}
	return true
}

const upperHex = "0123456789ABCDEF"

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c <= 'F':
		return c - 'A' + 10
	}
	return c - 'a' + 10
}
