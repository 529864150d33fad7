package gateway

import (
	"bytes"

	"github.com/valyala/fasthttp"
)

// trailerMark is added to a chunked request's header fields once its head
// is read and before its body is: the fields after it came from the body's
// trailer section, which fasthttp merges into the header fields. No field
// read from the wire can have this name, since a colon ends a name.
const trailerMark = ":trailers"

// markTrailers is the HTTP/1.1 servers' HeaderReceived hook. It changes
// none of the server's limits.
func markTrailers(h *fasthttp.RequestHeader) fasthttp.RequestConfig {
	if h.ContentLength() == -1 {
		h.Add(trailerMark, "1")
	}
	return fasthttp.RequestConfig{}
}

// dropTrailers removes a chunked request's trailer fields from its header
// fields, where fasthttp put them. RFC 9110 (6.5.1) forbids the merge: a
// field sent after the body would choose routes, pass auth and reach the
// target as a header, unseen by whatever inspected the head. The request
// goes upstream with a Content-Length, so there is no trailer section to
// keep them in: they are dropped, as nginx does. A head field that shares
// a trailer field's name is kept.
func dropTrailers(h *fasthttp.RequestHeader) {
	if h.Peek(trailerMark) == nil {
		return
	}
	var names [][]byte
	marked := false
	h.VisitAll(func(k, _ []byte) {
		if marked {
			names = append(names, append([]byte(nil), k...))
		}
		marked = marked || string(k) == trailerMark
	})
	if len(names) == 0 {
		h.Del(trailerMark)
		return
	}
	type field struct{ k, v []byte }
	var kept []field
	marked = false
	h.VisitAll(func(k, v []byte) {
		if marked = marked || string(k) == trailerMark; marked {
			return
		}
		for _, n := range names {
			if bytes.EqualFold(k, n) {
				kept = append(kept, field{append([]byte(nil), k...), append([]byte(nil), v...)})
				return
			}
		}
	})
	h.Del(trailerMark)
	for _, n := range names {
		h.DelBytes(n)
	}
	for _, f := range kept {
		h.AddBytesKV(f.k, f.v)
	}
}
