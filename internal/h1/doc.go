// Package h1 parses HTTP/1.1 request and response heads in place: the
// method, target, status and every header field are slices of the buffer
// the bytes were read into, so parsing allocates nothing and a proxy can
// forward a head by copying the fields it keeps. It is strict where RFC
// 9112 leaves a recipient a choice that could let a request mean one
// thing to relia and another to the next hop (request smuggling): bare LF,
// obsolete line folding, whitespace before a colon, conflicting or
// malformed Content-Length, Transfer-Encoding with Content-Length.
//
// It is the parser an event-loop engine for the gateway would need
// (docs/benchmarks.md weighs one with the floor proxies of
// bench/gateway/floor, which use it); the gateway's request path does not
// use it.
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
