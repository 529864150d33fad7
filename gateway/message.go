package gateway

import (
	"context"
	"errors"
	"io"
	"net/netip"
	"sync"
	"unsafe"

	"github.com/relia-dev/relia/gateway/upstream"
	"github.com/relia-dev/relia/internal/h1"
)

// request is a client's request as the gateway handles it, whichever
// protocol it came over: HTTP/1.1 (its head's slices point into the
// connection's buffer, parsed by internal/h1) or HTTP/2 (converted from
// net/http's request). Fields hold only end-to-end fields: Host, framing
// and hop-by-hop fields are read at intake and never forwarded as sent.
type request struct {
	method []byte
	target []byte // as received
	path   []byte // the target's raw path
	query  []byte // "?..." or empty
	host   []byte // the absolute form's authority, else Host; empty for an HTTP/1.0 client without one
	minor  int    // HTTP/1.x minor version; 1 for HTTP/2
	h2     bool
	tls    bool
	peer   netip.Addr
	fields []h1.Header
	// upgrade is the protocol an upgrade request asks for; nil without.
	upgrade []byte
	// closing: the client closes its connection after this request.
	closing bool
	// expect: the client waits for 100 Continue before its body.
	expect bool
	ctx    context.Context

	// The body: framing and length as the head announced (length -1
	// when unknown), read from src. held is the body read whole, when
	// the gateway holds it (see holdBody).
	framing h1.Framing
	length  int64
	src     upstream.BodySource
	held    []byte
	// bodyErr is why the body could not be read; bodyRead counts its
	// bytes, and bodyDone says it was read to its end.
	bodyRead int64
	bodyDone bool
	// pending is what was held and not yet passed on, once a body too
	// large to hold streams; limit is the route's maxBodySize.
	pending []byte
	limit   int64
	// tap keeps the body's first bytes for a route that captures bodies;
	// nil for the others (capture.go).
	tap *bodyTap
	// continuer answers Expect: 100-continue; nil where the protocol
	// does it itself.
	continuer interface{ sendContinue() }

	arena []byte
}

// reset empties r for the next request, keeping its buffers.
func (r *request) reset() {
	*r = request{fields: r.fields[:0], arena: r.arena[:0], held: r.held[:0]}
}

// store copies b into r's arena and returns the copy, which stays valid
// until r is reset. Slices stored before stay valid when the arena fills:
// a new one is made and the old lives on while they point into it.
func store(arena *[]byte, b []byte) []byte {
	a := *arena
	if cap(a)-len(a) < len(b) {
		a = make([]byte, 0, max(1024, 2*cap(a), len(b)))
	}
	start := len(a)
	a = append(a, b...)
	*arena = a
	return a[start:len(a):len(a)]
}

// Peek returns the value of the first field named name, nil without; it
// makes request a headerSource for route matching.
func (r *request) Peek(name string) []byte {
	if h1.EqualFold([]byte("Host"), name) {
		return r.host
	}
	return getField(r.fields, name)
}

// Get returns a field's value as a string (a copy), for gateway/auth and
// gateway/cache.
func (r *request) Get(name string) string { return string(r.Peek(name)) }

func getField(fields []h1.Header, name string) []byte {
	for i := range fields {
		if h1.EqualFold(fields[i].Name, name) {
			return fields[i].Value
		}
	}
	return nil
}

// del removes every field named name.
func delField(fields []h1.Header, name string) []h1.Header {
	out := fields[:0]
	for _, f := range fields {
		if !h1.EqualFold(f.Name, name) {
			out = append(out, f)
		}
	}
	return out
}

// set replaces the fields named name by one with value; name and value
// must outlive the message (constants, the config, an arena).
func setField(fields []h1.Header, name string, value []byte) []h1.Header {
	for i := range fields {
		if h1.EqualFold(fields[i].Name, name) {
			fields[i].Value = value
			tail := delField(fields[i+1:], name) // the first stays, the rest go
			return fields[:i+1+len(tail)]
		}
	}
	return append(fields, h1.Header{Name: bs(name), Value: value})
}

// bs returns a string's bytes without copying; they must not be written.
func bs(str string) []byte { return unsafe.Slice(unsafe.StringData(str), len(str)) }

// response is what the gateway sends back: a target's answer, whose body
// streams from the target's connection, or an answer of the gateway's own.
type response struct {
	status int
	fields []h1.Header
	// body is the gateway's own body, when up is nil.
	body []byte
	// up is the target's answer, when the response is one; its body
	// streams from the connection it holds until released.
	up *upstream.Response
	// lengthField is the Content-Length passed on with an answer that
	// has no body (to HEAD, 304); -1 without.
	lengthField int64
	// closing: the connection closes after this response.
	closing bool
	arena   []byte
}

func (r *response) reset() {
	r.release()
	*r = response{fields: r.fields[:0], arena: r.arena[:0], lengthField: -1}
}

// release gives back the target's connection, if the response holds one.
func (r *response) release() {
	if r.up != nil {
		r.up.Release()
		upstreamResponses.Put(r.up)
		r.up = nil
	}
}

// own makes r the gateway's own answer, forgetting any target's.
func (r *response) own(status int) {
	r.reset()
	r.status = status
}

var upstreamResponses = sync.Pool{New: func() any { return new(upstream.Response) }}

// fromTarget makes r the target's answer up: its end-to-end fields, its
// body to stream.
func (r *response) fromTarget(up *upstream.Response) {
	r.reset()
	r.up = up
	r.status = up.Status
	r.lengthField = up.LengthField
	named := up.NamesFields()
	for _, f := range up.Headers {
		if h1.HopByHop(f.Name) || named && up.IsHopByHop(f.Name) || h1.EqualFold(f.Name, "Content-Length") {
			continue
		}
		r.fields = append(r.fields, f)
	}
}

// detach copies the fields out of the target's connection buffer, so that
// the body can be read before the head is written.
func (r *response) detach() {
	for i := range r.fields {
		r.fields[i].Name = store(&r.arena, r.fields[i].Name)
		r.fields[i].Value = store(&r.arena, r.fields[i].Value)
	}
}

// bodyLength returns the length of the body to send: the own body's, the
// target's announced one, or -1 when it is known only at its end.
func (r *response) bodyLength() int64 {
	if r.up == nil {
		return int64(len(r.body))
	}
	switch r.up.Framing {
	case h1.NoBody:
		return 0
	case h1.Length:
		return r.up.ContentLength
	}
	return -1
}

// readAll reads the target's body whole into r.body, up to limit bytes;
// false when it is larger or could not be read (r then holds nothing to
// send and must be answered otherwise).
func (r *response) readAll(limit int64) bool {
	r.detach()
	start := len(r.arena)
	for {
		p, err := r.up.Body.Next()
		if err == io.EOF {
			break
		}
		if err != nil || int64(len(r.arena)-start+len(p)) > limit {
			return false
		}
		r.arena = append(r.arena, p...)
	}
	r.body = r.arena[start:]
	r.arena = r.arena[len(r.arena):]
	r.release()
	return true
}

// errBodyTooLarge: a request body went past its route's limit while it
// was read.
var errBodyTooLarge = errors.New("request body larger than the route allows")
