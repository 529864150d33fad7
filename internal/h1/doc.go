// Package h1 parses HTTP/1.1 request and response heads in place: the
// method, target, status and every header field are slices of the buffer
// the bytes were read into, so parsing allocates nothing and a proxy can
// forward a head by copying the fields it keeps. It is strict where RFC
// 9112 leaves a recipient a choice that could let a request mean one
// thing to relia and another to the next hop (request smuggling): bare LF,
// obsolete line folding, whitespace before a colon, conflicting or
// malformed Content-Length, Transfer-Encoding with Content-Length.
//
// It is relia's one HTTP/1.1 codec: request and response heads, the
// framing a head gives its body (Content-Length, chunked with strict hex
// sizes, bounded chunk-size lines and trailer sections, until close, no
// body for HEAD, 1xx, 204 and 304), the one list of hop-by-hop fields, and
// the lines a writer needs. Reader buffers a connection's input and grows
// only with the bytes that arrive; Body streams a body out of it in
// pieces of that buffer, so memory follows bytes received, never a length
// a message announces.
//
//	var req h1.Request
//	n, err := h1.ParseRequest(buf, h1.DefaultLimits, &req)
//	if err == h1.ErrIncomplete {
//		// read more, then parse again
//	}
//	host, _ := req.Get("Host")
//	out = req.AppendFields(out, req.IsHopByHop) // the end-to-end fields
//	_ = buf[n:] // the body, or the next request
package h1
