package h1

import (
	"net/http"
	"strconv"
)

// AppendRequestLine appends "METHOD target HTTP/1.1\r\n".
func AppendRequestLine(dst, method, target []byte) []byte {
	dst = append(dst, method...)
	dst = append(dst, ' ')
	dst = append(dst, target...)
	return append(dst, " HTTP/1.1\r\n"...)
}

// AppendStatusLine appends "HTTP/1.1 code reason\r\n" with the reason
// phrase RFC 9110 gives the code (none for a code it does not name).
func AppendStatusLine(dst []byte, code int) []byte {
	dst = append(dst, "HTTP/1.1 "...)
	dst = strconv.AppendInt(dst, int64(code), 10)
	dst = append(dst, ' ')
	return append(append(dst, http.StatusText(code)...), "\r\n"...)
}

// AppendField appends one "Name: value\r\n" line.
func AppendField(dst, name, value []byte) []byte {
	dst = append(dst, name...)
	dst = append(dst, ": "...)
	dst = append(dst, value...)
	return append(dst, "\r\n"...)
}

// AppendContentLength appends a Content-Length line.
func AppendContentLength(dst []byte, n int64) []byte {
	dst = append(dst, "Content-Length: "...)
	dst = strconv.AppendInt(dst, n, 10)
	return append(dst, "\r\n"...)
}

// AppendChunkSize appends the chunk-size line of a chunk of n bytes.
func AppendChunkSize(dst []byte, n int) []byte {
	dst = strconv.AppendUint(dst, uint64(n), 16)
	return append(dst, "\r\n"...)
}

// AppendLastChunk appends the last chunk, the trailer fields and the
// empty line that end a chunked body.
func AppendLastChunk(dst []byte, trailers []Header) []byte {
	dst = append(dst, "0\r\n"...)
	for i := range trailers {
		dst = AppendField(dst, trailers[i].Name, trailers[i].Value)
	}
	return append(dst, "\r\n"...)
}

// EqualFold reports whether b and the ASCII string s are equal ignoring
// case.
func EqualFold(b []byte, s string) bool { return equalFold(b, s) }

// IsToken reports whether b is a token (RFC 9110, section 5.6.2): a
// valid field name or method.
func IsToken(b []byte) bool { return isToken(b) }

// HopByHop reports whether name is one of the fields RFC 9110 (section
// 7.6.1) makes hop-by-hop, whatever a Connection field says: relia's one
// list of them.
func HopByHop(name []byte) bool {
	// By length first: a proxy asks this of every field of every head,
	// and most fields match no length here.
	switch len(name) {
	case 2:
		return equalFold(name, "TE")
	case 7:
		return equalFold(name, "Trailer") || equalFold(name, "Upgrade")
	case 10:
		return equalFold(name, "Connection") || equalFold(name, "Keep-Alive")
	case 16:
		return equalFold(name, "Proxy-Connection")
	case 17:
		return equalFold(name, "Transfer-Encoding")
	case 18:
		return equalFold(name, "Proxy-Authenticate")
	case 19:
		return equalFold(name, "Proxy-Authorization")
	}
	return false
}
