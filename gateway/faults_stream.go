package gateway

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/relia-dev/relia/fault"
)

// The faults on an answer (slow first byte, events a second, a stall, a
// truncation or an error event after N events, a truncated body, headers
// set) are fault.HTTPFilter's, the fault proxy's own: the gateway hands
// the request to the fault's Serve with two writers. Behind the fault,
// relayAnswer serves the request as if no fault applied (concurrency
// limits, then the AI gateway, the fallback or the upstream) and writes
// the answer to the writer the fault gives it, on a goroutine of the
// fault's for the stream faults. In front of it, faultOut, an aiWriter,
// frames what the fault passes on for the client: internal/h1 on
// HTTP/1.1, the stream on HTTP/2. A fault that breaks the answer ends the
// HTTP/1.1 connection without the body's end, or resets the HTTP/2
// stream. Routes without such a fault never come here.

// errFaultCut ends an answer that a fault broke off.
var errFaultCut = errors.New("a fault broke the answer off")

// faultAnswer serves x through the fault d, which shapes the answer.
func (g *Gateway) faultAnswer(x *exchange, d fault.Decision, hr *http.Request) {
	oc := &aiCall{}
	w := &oc.w
	w.x, w.g, w.c, w.header, w.watchAtHead = x, g, x.h1c, http.Header{}, true
	if x.h2r != nil {
		w.h2, w.c = x.h2w, nil
	}
	// The answer's end, or the client's, ends the attempts behind it.
	prev := x.req.ctx
	ctx, cancel := context.WithCancel(prev)
	defer func() {
		cancel()
		x.req.ctx = prev
	}()
	w.cancel = cancel
	x.req.ctx = ctx
	out := &faultOut{aiWriter: w, set: d.Fault().SetHeaders}
	behind := http.HandlerFunc(func(pw http.ResponseWriter, _ *http.Request) { g.relayAnswer(x, pw) })
	cut := serveFault(d, out, hr.WithContext(ctx), behind)
	w.streamed() // the hang-up watch and buffers of a chunked answer (ai.go)
	// The record of an AI call made behind the fault is the call's.
	if in := x.ai; in != nil {
		oc.rec = in.rec
	}
	x.ai = oc
	if cut {
		w.fail(errFaultCut)
		x.abortStream = true
		return
	}
	w.end()
}

// serveFault runs d's Serve and reports whether it broke the answer off
// (http.ErrAbortHandler, as net/http handlers say it).
func serveFault(d fault.Decision, w http.ResponseWriter, r *http.Request, next http.Handler) (cut bool) {
	defer func() {
		if v := recover(); v != nil {
			if v != http.ErrAbortHandler {
				panic(v)
			}
			cut = true
		}
	}()
	d.Serve(w, r, next)
	return false
}

// relayAnswer serves x as its route does when no fault applies and
// writes the answer to w, the fault's writer: the AI gateway writes
// through it itself (serveAI), any other answer is written by writeHTTP.
// It touches nothing of x that faultOut uses once the answer's head is
// written: the response moves out of x first.
func (g *Gateway) relayAnswer(x *exchange, w http.ResponseWriter) {
	x.faultOut = w
	g.pass(x)
	x.faultOut = nil
	if x.ai != nil {
		return
	}
	resp := x.resp
	x.resp = response{lengthField: -1}
	defer resp.release()
	writeHTTP(w, &resp, string(x.req.method) == "HEAD", nil)
}

// faultOut is the writer a fault passes the answer on to: an aiWriter on
// the client's connection, with the fault's setHeaders over the
// answer's.
type faultOut struct {
	*aiWriter
	set  map[string]string
	gone chan struct{}
}

var (
	_ http.Flusher        = (*faultOut)(nil)
	_ fault.ClientWatcher = (*faultOut)(nil)
)

func (o *faultOut) WriteHeader(code int) {
	if o.status == 0 {
		for k, v := range o.set {
			o.header.Set(k, v)
		}
	}
	o.aiWriter.WriteHeader(code)
}

func (o *faultOut) Write(p []byte) (int, error) {
	if o.status == 0 {
		o.WriteHeader(http.StatusOK)
	}
	return o.aiWriter.Write(p)
}

func (o *faultOut) Flush() {
	if o.status == 0 {
		o.WriteHeader(http.StatusOK)
	}
	o.aiWriter.Flush()
}

// ClientGone returns a channel closed when the HTTP/1.1 client's
// connection ends, for a stalled stream: it reads the connection from
// then on, which only an answer that ends the connection may do (a stall
// does). Over HTTP/2 the stream's context tells; nil then, and while the
// request's body is still unread.
func (o *faultOut) ClientGone() <-chan struct{} {
	c, req := o.c, &o.x.req
	if c == nil || req.src != nil && !req.bodyDone {
		return nil
	}
	if o.gone == nil {
		gone := make(chan struct{})
		o.gone = gone
		if c.ended.Load() {
			// The gateway ended the connection (a shutdown's deadline).
			close(gone)
			return gone
		}
		c.setReadDeadline(time.Time{})
		// Ends with the connection, which the gateway closes once the
		// stalled answer is given up.
		go func() {
			defer close(gone)
			var b [512]byte
			for {
				if _, err := c.c.Read(b[:]); err != nil {
					return
				}
			}
		}()
	}
	return o.gone
}
