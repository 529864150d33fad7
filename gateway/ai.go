package gateway

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/relia-dev/relia/ai"
	"github.com/relia-dev/relia/callstore"
	"github.com/relia-dev/relia/internal/h1"
	"github.com/relia-dev/relia/internal/rawio"
	"github.com/relia-dev/relia/outcome"
)

// The AI gateway on the gateway's listeners: a route with `ai:` hands its
// requests, once the gateway's own codec has read them and its auth, API
// checks, rate limits and concurrency limits have passed them, to an
// ai.Service. The service writes its answer through aiWriter, which
// frames it with internal/h1 on an HTTP/1.1 connection (a body of known
// length, or chunks flushed as the service flushes them: one chunk per
// server-sent event) or passes it to the HTTP/2 stream. The call's
// record (model, provider, tokens, cost, time to first token, fallback
// path) reaches the access log and the call store through the request's
// record hook.

// buildAI returns the AI service that cfg's ai routes are served by. The
// gateway makes one with the first config that has ai routes and reloads
// it with each config after, so a reload keeps the breakers, Retry-After
// waits and quota counts of the providers and tenants that stay.
func (g *Gateway) buildAI(cfg *Config) (*ai.Service, error) {
	if !cfg.hasAIRoute() {
		return nil, nil
	}
	b := cfg.ai
	if b == nil {
		return nil, cfg.errorf("spec.routes", "ai routes need their AIGateway document: Parse reads it from the config's file, SetAI gives it to a config built in Go")
	}
	if g.aiSvc == nil {
		svc, err := ai.New(b.Config, b.Catalog, ai.Options{Clock: g.clock, Registry: g.reg, Observer: g.metrics.obs, Prompts: b.Prompts})
		if err != nil {
			return nil, fmt.Errorf("building the AI gateway %s: %w", b.Config.Metadata.Name, err)
		}
		g.aiSvc = svc
		return svc, nil
	}
	if err := g.aiSvc.Reload(b.Config, b.Catalog, b.Prompts); err != nil {
		return nil, fmt.Errorf("reloading the AI gateway %s: %w", b.Config.Metadata.Name, err)
	}
	return g.aiSvc, nil
}

// closeAI releases what the AI service opened (its Redis client, its
// idle provider connections).
func (g *Gateway) closeAI() {
	g.hangUps.close()
	if g.aiSvc != nil {
		g.aiSvc.Close()
	}
}

// ServeAIUsage serves the admin API's GET /ai/usage (and relia ai
// serve's /usage): each AI tenant's quotas in their current windows.
func (g *Gateway) ServeAIUsage(w http.ResponseWriter, r *http.Request) {
	svc := g.state.Load().ai
	if svc == nil {
		writeJSON(w, http.StatusNotFound, map[string]string{"reason": "no_ai_gateway", "error": "no route of the config is an ai route"})
		return
	}
	u, err := svc.Usage(r.Context())
	if err != nil {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"reason": "quota_store_unavailable", "error": err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"usage": u})
}

// aiCall is what the gateway keeps of an AI request: its writer, and the
// AI gateway's record of the call once it ended.
type aiCall struct {
	w    aiWriter
	body aiBody
	// rec is the call's record, once it ended: a request the service
	// refused before it chose a model (a bad body) has none. It is made
	// then, so that an open stream does not hold its space.
	rec *ai.Record
	// relay is the rest of a stream the service handed off (HandOff),
	// until it ended (relayAI); resume runs it on from a new goroutine
	// after it waited with none (conn.relay).
	relay  *ai.Relay
	resume func()
}

// serveAI serves x on the AI service of its route. A stream that the
// service handed off once its first token was out (HandOff) is not over
// when it returns: x.ai.relay holds the rest, which the connection's
// next goroutine runs (relayAI) once this one has unwound and ended
// (conn.done), and which waits for its provider with no goroutine where
// it can (ai.Relay).
func (g *Gateway) serveAI(x *exchange) {
	ac, ctx, req := g.startAI(x)
	ok := ac.w.serve(ctx, x.st.ai, req)
	*req = ai.Request{}
	aiRequests.Put(req)
	if ac.relay != nil {
		return
	}
	g.afterAI(x, ac, ok)
}

// relayAI runs the rest of x's handed-off stream until it ended, then
// ends the call as serveAI would have and reports true; or until it
// waits for its provider with no goroutine, and reports false: ac.resume
// runs it on, and x is not this goroutine's any more.
func (g *Gateway) relayAI(x *exchange) bool {
	ac := x.ai
	ended := true
	ok := ac.w.guard(s(x.path), func() { ended = ac.relay.Run(ac.resume) })
	if ok && !ended {
		return false
	}
	ac.relay, ac.resume = nil, nil
	g.afterAI(x, ac, ok)
	return true
}

// afterAI ends x's AI call once the service's part of it returned (ok
// says it did not panic).
func (g *Gateway) afterAI(x *exchange, ac *aiCall, ok bool) {
	ac.w.streamed()
	if ok {
		g.endAI(x, ac)
	}
	ac.w.cancelCall()
}

// HandOff takes the rest of a stream whose first events are out, on an
// HTTP/1.1 connection whose route holds nothing for the request's
// length (a concurrency limit's permit, a cache entry to fill): x's
// goroutine then ends, and the connection's next one relays the stream
// (serveAI).
func (w *aiWriter) HandOff(relay *ai.Relay) bool {
	r := w.x.route
	if w.c == nil || w.relay || !w.chunked || w.err != nil || r.limiter != nil || r.bulkhead != nil || r.cache != nil {
		return false
	}
	w.x.ai.relay = relay
	return true
}

var _ ai.HandOff = (*aiWriter)(nil)

// SetCancel takes the cancellation of the AI call that answers through
// w (ai.CallCanceller): a hang-up or a failed write ends the call with
// it.
func (w *aiWriter) SetCancel(cancel func()) { w.cancel = cancel }

var _ ai.CallCanceller = (*aiWriter)(nil)

// cancelCall ends the call that answers through w, if one started (or,
// for a fault's writer, the answer behind the fault).
func (w *aiWriter) cancelCall() {
	if w.cancel != nil {
		w.cancel()
	}
}

// aiRequests holds the requests that the AI service reads (ai.Request):
// one is the service's while Serve runs, not the call's (a stream that
// waits does not hold it), and not on serveAI's frame either (a stream
// that the serving goroutine relays waits with serveAI below it, and a
// smaller frame keeps the waiting stack under the quarter of 16 KiB at
// which the collector halves it).
var aiRequests = sync.Pool{New: func() any { return new(ai.Request) }}

// startAI makes x's AI call: its writer, its context (the caller, the
// route's timeout, the record hook) and the request as the service
// reads it, from aiRequests.
//
//go:noinline
func (g *Gateway) startAI(x *exchange) (*aiCall, context.Context, *ai.Request) {
	ac := &aiCall{}
	x.ai = ac
	w := &ac.w
	w.x, w.g, w.c = x, g, x.h1c
	w.header = http.Header{}
	ctx := x.req.ctx
	if x.h2r != nil {
		ctx = x.h2r.Context()
		w.h2 = x.h2w
		w.c = nil
	}
	if x.faultOut != nil {
		// A fault shapes the answer (faults_stream.go): it goes to the
		// fault, and the fault's writer frames it for the client.
		w.h2, w.c, w.relay = x.faultOut, nil, true
	}
	if x.tenant != "" {
		ctx = ai.WithCaller(ctx, ai.Caller{Tenant: x.tenant, Key: x.keyID})
	}
	if d := x.route.timeout; d > 0 {
		// The route's timeout counts from the request's arrival.
		ctx = ai.WithTimeout(ctx, d-g.clock.Since(x.start))
	}
	ctx = ai.WithRecordHook(ctx, func(r *ai.Record) { ac.rec = r })
	// No cancellation of the gateway's own: the service gives the
	// writer the call's (SetCancel), the only one an open stream holds.
	var body *aiBody
	if x.req.src != nil {
		x.req.limit = int64(x.route.maxBody)
		ac.body.req = &x.req
		body = &ac.body
	} else {
		x.req.bodyDone = true
	}
	req := aiRequests.Get().(*ai.Request)
	*req = x.aiRequest(body)
	return ac, ctx, req
}

// endAI ends x's AI call once the service returned: the answer's end,
// and what the call's record tells the access log and the call store.
//
//go:noinline
func (g *Gateway) endAI(x *exchange, ac *aiCall) {
	w := &ac.w
	if ac.body.req != nil && ac.body.err != nil && !w.sent {
		// The body could not be read (malformed, too large, late): the
		// gateway answers as on any route, and the AI gateway made no
		// call.
		x.ai = nil
		g.bodyRefusal(x, ac.body.err)
		return
	}
	w.end()
	if ac.rec != nil {
		if x.tenant == "" && ac.rec.Tenant != "anonymous" {
			// The AI gateway's own tenant keys named the caller.
			x.tenant, x.keyID = ac.rec.Tenant, ac.rec.Key
		}
		x.attempts = ac.rec.Attempts
		if w.hungUp.Load() && ac.rec.Outcome == ai.OutcomeCancelled {
			x.reason = "client_closed"
		}
		if ac.rec.Outcome != ai.OutcomeOK && x.reason == "" {
			x.reason = ac.rec.Reason
		}
		x.upstreamLat = ac.rec.Duration
		for i, p := range ac.rec.Path {
			x.steps = append(x.steps, aiStep(i, p, ac.rec.Model))
		}
	}
}

// aiRequest is x's request as the AI service reads it: the method and
// path copied out of the read buffer (the service may keep them), its
// fields read in place through the request's Get, which copies what it
// returns. No *http.Request and no http.Header are made.
func (x *exchange) aiRequest(body *aiBody) ai.Request {
	r := &x.req
	method := methodName(r.method)
	if method == "_OTHER" {
		method = string(r.method)
	}
	req := ai.Request{Method: method, Path: string(x.path), Header: r}
	if q := bytes.TrimPrefix(r.query, []byte("?")); len(q) > 0 {
		req.Query = string(q)
	}
	if body != nil {
		req.Body = body
		if r.framing == h1.Length {
			req.ContentLength = r.length
		}
	}
	return req
}

// serve runs the AI service on req, as net/http would: a panic in it
// ends this request, not the gateway. The client gets a 500 when nothing
// was sent yet, else its connection ends without the body's end, so it
// cannot take the part for the whole. It reports whether the service
// returned.
func (w *aiWriter) serve(ctx context.Context, svc *ai.Service, req *ai.Request) (ok bool) {
	return w.guard(req.Path, func() { svc.Serve(ctx, w, req) })
}

// guard runs fn, a part of the AI service's answer on the request for
// path, and recovers from its panic as serve says. It reports whether
// fn returned.
func (w *aiWriter) guard(path string, fn func()) (ok bool) {
	defer func() {
		if ok {
			return
		}
		v := recover()
		w.g.log.Error("the AI gateway failed on a request", "panic", fmt.Sprint(v), "route", routeName(w.x), "path", path)
		if !w.sent {
			w.status, w.held = 0, w.held[:0]
			w.header = http.Header{"Content-Type": {"application/json"}}
			w.WriteHeader(http.StatusInternalServerError)
			w.held = append(w.held, `{"error":{"message":"the AI gateway failed on this request","type":"server_error","param":null,"code":null}}`...)
			w.end()
			return
		}
		if w.h2 != nil {
			panic(http.ErrAbortHandler) // the stream is reset
		}
		w.fail(errAIPanic)
	}()
	fn()
	return true
}

var errAIPanic = errors.New("the AI gateway failed mid-answer")

// aiStep turns one entry of an AI call's path ("provider/model:result")
// into a call-store step: the attempts on the asked model are attempts,
// those on another model fallbacks.
func aiStep(i int, entry, model string) callstore.Step {
	target, result, _ := strings.Cut(entry, ":")
	st := callstore.Step{Kind: callstore.StepAttempt, Target: target, Outcome: "ok"}
	if i > 0 && !strings.HasSuffix(target, "/"+model) {
		st.Kind = callstore.StepFallback
	}
	if result != "ok" {
		st.Outcome, st.Reason = "error", result
	}
	return st
}

// aiBody is a client's request body as the AI service reads it: from the
// gateway's reading of it (internal/h1 framing on HTTP/1.1), within the
// route's limit.
type aiBody struct {
	req       *request
	p         []byte
	continued bool
	// err is why the body could not be read to its end.
	err error
}

func (b *aiBody) Read(p []byte) (int, error) {
	r := b.req
	if !b.continued {
		b.continued = true
		if r.expect && r.continuer != nil {
			r.continuer.sendContinue()
		}
	}
	for len(b.p) == 0 {
		b.p = nil // no hold on the connection's buffer (dropReadBuffer)
		if r.bodyDone {
			return 0, io.EOF
		}
		q, err := r.src.Next()
		if err == io.EOF {
			r.bodyDone = true
			return 0, io.EOF
		}
		if err != nil {
			b.err = err
			return 0, err
		}
		r.bodyRead += int64(len(q))
		if r.bodyRead > r.limit {
			b.err = errBodyTooLarge
			return 0, errBodyTooLarge
		}
		b.p = q
	}
	n := copy(p, b.p)
	b.p = b.p[n:]
	return n, nil
}

func (b *aiBody) Close() error { return nil }

// aiHoldBytes is how much of an answer the AI writer holds before it
// sends the head: an answer that fits goes with its Content-Length, a
// larger one, or one the service flushes (a stream), goes chunked.
const aiHoldBytes = 32 << 10

// aiWriter is the http.ResponseWriter the AI service answers through. On
// HTTP/1.1 it writes with internal/h1 to the client connection; on
// HTTP/2 it passes the answer to the stream.
type aiWriter struct {
	g      *Gateway
	x      *exchange
	c      *conn               // the HTTP/1.1 connection; nil over HTTP/2
	h2     http.ResponseWriter // the HTTP/2 stream; nil over HTTP/1.1
	header http.Header
	// cancel ends the AI call once it started (SetCancel), or the
	// answer behind a fault (faultAnswer); nil before.
	cancel func()
	// status is the answer's, once WriteHeader decided it; sent says the
	// head went to the client.
	status  int
	sent    bool
	chunked bool
	closing bool
	noBody  bool
	held    []byte
	// pending is what the next write sends (writePending): the head and
	// the body's chunks since the last flush, in a buffer of aiChunkBufs.
	pending []byte
	err     error
	// relay: the answer goes to a fault (h2 is its writer), whose own
	// aiWriter prepares the head and counts the bytes.
	relay bool
	// watchAtHead: a chunked answer's client is watched for a hang-up
	// from its head on, not from its stream's first wait (StreamWaits):
	// the answer a fault shapes, which may stall it.
	watchAtHead bool
	// lent says the connection's write buffer is lent to aiChunkBufs.
	lent bool
	// watchID and watchFd are the stream's entry in the gateway's watch
	// for hang-ups (ai_hangup_linux.go), while it is in it; hungUp says
	// the client hung up.
	watchID uint64
	watchFd int
	hungUp  atomic.Bool
}

var _ http.Flusher = (*aiWriter)(nil)

func (w *aiWriter) Header() http.Header {
	if w.header == nil { // changed after the head was written, and ignored
		w.header = http.Header{}
	}
	return w.header
}

func (w *aiWriter) WriteHeader(code int) {
	if w.status != 0 || code < 200 {
		return
	}
	w.status = code
	x := w.x
	resp := &x.resp
	resp.own(code)
	for k, vs := range w.header {
		name := bs(k)
		if !h1.IsToken(name) || h1.HopByHop(name) || h1.EqualFold(name, "Content-Length") {
			continue
		}
		for _, v := range vs {
			if strings.ContainsAny(v, "\r\n\x00") {
				continue
			}
			resp.fields = append(resp.fields, h1.Header{Name: name, Value: bs(v)})
		}
	}
	// The fields hold the strings; an open stream need not hold the map.
	w.header = nil
	if !w.relay {
		w.g.prepareResponse(x)
	}
	w.noBody = string(x.req.method) == "HEAD"
}

func (w *aiWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	if w.err != nil {
		return 0, w.err
	}
	if w.noBody {
		return len(p), nil
	}
	if !w.sent {
		w.held = append(w.held, p...)
		if len(w.held) > aiHoldBytes {
			w.Flush()
		}
		return len(p), w.err
	}
	w.send(p)
	return len(p), w.err
}

// StreamWaits puts a chunked answer's connection in the watch for
// hang-ups once its stream waits for its provider (ai.StreamWaiter):
// while a stream is relayed straight through, its writes see a hang-up,
// and a watch for it cost two epoll_ctl calls a stream.
func (w *aiWriter) StreamWaits() {
	if w.chunked && w.watchID == 0 && w.err == nil {
		w.watchHangUp()
	}
}

// Flush sends the head, if it is not sent, and what is held and
// pending: on HTTP/1.1 in one write, the body as one chunk.
func (w *aiWriter) Flush() {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	if w.err != nil {
		return
	}
	if !w.sent {
		w.sendHead(-1)
	}
	if len(w.held) > 0 {
		p := w.held
		w.held = nil
		w.send(p)
	}
	w.writePending()
	if w.h2 != nil && w.err == nil {
		if f, ok := w.h2.(http.Flusher); ok {
			f.Flush()
		}
	}
}

// end finishes the answer once the service returned: a held answer goes
// whole with its length, a chunked one gets its last chunk, each in one
// write with what is pending (a stream's last events, which the service
// wrote without a flush).
func (w *aiWriter) end() {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	if w.err != nil {
		return
	}
	if !w.sent {
		w.sendHead(int64(len(w.held)))
		if !w.noBody && len(w.held) > 0 {
			w.send(w.held)
		}
		w.held = nil
	} else if w.chunked {
		w.pending = h1.AppendLastChunk(w.pendingBuffer(), nil)
	}
	w.writePending()
}

// sendHead writes the head; length is the body's, -1 when it is known only
// at its end.
func (w *aiWriter) sendHead(length int64) {
	w.sent = true
	x := w.x
	resp := &x.resp
	if w.h2 != nil {
		h := w.h2.Header()
		for _, f := range resp.fields {
			h.Add(string(f.Name), string(f.Value))
		}
		if length >= 0 {
			h.Set("Content-Length", strconv.FormatInt(length, 10))
		}
		w.h2.WriteHeader(resp.status)
		return
	}
	c := w.c
	req := &x.req
	w.closing = resp.closing || req.closing || c.g.conns.closing()
	b := h1.AppendStatusLine(w.pendingBuffer(), resp.status)
	for i := range resp.fields {
		b = h1.AppendField(b, resp.fields[i].Name, resp.fields[i].Value)
	}
	switch {
	case length >= 0:
		b = h1.AppendContentLength(b, length)
	case req.minor == 1:
		w.chunked = true
		b = append(b, "Transfer-Encoding: chunked\r\n"...)
		if w.watchAtHead {
			w.watchHangUp()
		}
		defer w.lendBuffers()
	default:
		// An HTTP/1.0 client cannot read chunks: the body ends with the
		// connection.
		w.closing = true
	}
	switch {
	case w.closing:
		b = append(b, "Connection: close\r\n"...)
	case req.minor == 0:
		b = append(b, "Connection: keep-alive\r\n"...)
	}
	w.pending = append(b, "\r\n"...)
}

// send adds a piece of the body to what is pending, on HTTP/1.1 as a
// chunk when the body is chunked; over HTTP/2 it writes it.
func (w *aiWriter) send(p []byte) {
	if !w.relay {
		w.x.bytesOut += int64(len(p))
	}
	if w.h2 != nil {
		if _, err := w.h2.Write(p); err != nil {
			w.fail(err)
		}
		return
	}
	b := w.pendingBuffer()
	if w.chunked {
		b = h1.AppendChunkSize(b, len(p))
		b = append(b, p...)
		b = append(b, "\r\n"...)
	} else {
		b = append(b, p...)
	}
	w.pending = b
	if len(b) >= aiHoldBytes {
		// Writes that no flush follows (a proxied body behind a fault)
		// go out as they come, not held whole.
		w.writePending()
	}
}

// pendingBuffer returns what is pending, or an empty buffer from
// aiChunkBufs to add to when nothing is.
func (w *aiWriter) pendingBuffer() []byte {
	if w.pending == nil {
		return writeBuffer()
	}
	return w.pending
}

// writePending writes what is pending (the head, chunks, the last chunk)
// in one write, and gives its buffer back to aiChunkBufs: a stream that
// waits for its next event holds none. The head and a stream's first
// event go out in one packet, and its last events with the last chunk,
// rather than one write (and one wake-up of the client) each.
func (w *aiWriter) writePending() {
	b := w.pending
	if b == nil {
		return
	}
	w.pending = nil
	if w.err == nil && len(b) > 0 {
		w.write(b)
	}
	if cap(b) <= aiChunkBufMax {
		b = b[:0]
		aiChunkBufs.Put(&b)
	}
}

// aiChunkBufs hold the chunks of streaming answers while they are
// written, so that a stream that waits for its next event holds no
// buffer of its own: the client connection's write buffer is lent to
// them for the stream's life (lendBuffers, takeBuffers). Over 10,000
// open streams that is 40 MB (docs/benchmarks.md).
var aiChunkBufs = sync.Pool{New: func() any {
	b := make([]byte, 0, 4096)
	return &b
}}

// aiChunkBufMax is the largest buffer aiChunkBufs keeps.
const aiChunkBufMax = 64 << 10

// aiFieldBufs and aiLineBufs hold buffers of exchanges while their
// answers stream: a streaming exchange lends its request's and its
// response's field arrays (32 fields, 1.5 KB each) and keeps the
// request's fields on a copy of their size (the response's were written
// with its head), and lends the buffer of its access log line, which is
// written at the stream's end (lendBuffers, takeBuffers).
var (
	aiFieldBufs = sync.Pool{New: func() any {
		f := make([]h1.Header, 0, 32)
		return &f
	}}
	aiLineBufs = sync.Pool{New: func() any {
		b := make([]byte, 0, 512)
		return &b
	}}
)

// writeBuffer, fieldArray and lineBuffer take an empty buffer from the
// pools that streams lend theirs to: a stream takes its own kind back when
// it ends, and new connections and exchanges take theirs there too, so
// that what streams lend is used again rather than made anew while it
// waits in a pool.
func writeBuffer() []byte     { return (*aiChunkBufs.Get().(*[]byte))[:0] }
func fieldArray() []h1.Header { return (*aiFieldBufs.Get().(*[]h1.Header))[:0] }
func lineBuffer() []byte      { return (*aiLineBufs.Get().(*[]byte))[:0] }

// lendBuffers lends the connection's write buffer to aiChunkBufs while
// its answer streams, and x's field arrays and line buffer to
// aiFieldBufs and aiLineBufs, and its spare buffers to aiSpareBufs, and
// lets go of the connection's read buffer if it can. The request's
// fields stay, on a copy of their size, only where the route keeps
// them for the call store (capture); nothing else reads them after
// the service read the request.
func (w *aiWriter) lendBuffers() {
	c, x := w.c, w.x
	req, resp := x.req.fields, x.resp.fields
	keepFields := x.route.capture.KeepsHeaders()
	if keepFields {
		x.req.fields = slices.Clone(req)
	} else {
		x.req.fields = nil
	}
	c.dropReadBuffer(x)
	b := c.wbuf[:0]
	c.wbuf = nil
	w.lent = true
	aiChunkBufs.Put(&b)
	x.resp.fields, x.ureq.Fields = nil, nil
	lendFields(req)
	lendFields(resp)
	line := x.line[:0]
	x.line = nil
	aiLineBufs.Put(&line)
	// What the exchange needs only before the answer: the client's key
	// (buf) and the target of a proxied request (utarget); and, unless
	// the fields stay (they point into them), the X-Forwarded-For value
	// and the trace id's text, which the access log and the call record
	// make again at the end.
	// The request id and path stay, on one copy of their length.
	sp := &exchangeSpare{buf: x.buf[:0], utarget: x.utarget[:0]}
	x.buf, x.utarget = nil, nil
	if !keepFields {
		sp.xff, sp.tt = x.xff[:0], x.tt
		x.xff, x.tt = nil, nil
		sp.rid, sp.path = x.rid[:0], x.path[:0]
		kept := make([]byte, 0, len(x.rid)+len(x.path))
		kept = append(kept, x.rid...)
		kept = append(kept, x.path...)
		x.rid, x.path = kept[:len(x.rid):len(x.rid)], kept[len(x.rid):]
	}
	aiSpareBufs.Put(sp)
}

// exchangeSpare is what an exchange lends out while its AI answer
// streams (lendBuffers) besides its field arrays and line buffer.
type exchangeSpare struct {
	buf, utarget, xff, rid, path []byte
	tt                           *traceText
}

// orNew returns b, or an empty buffer of size bytes when b is nil.
func orNew(b []byte, size int) []byte {
	if b == nil {
		return make([]byte, 0, size)
	}
	return b
}

// aiSpareBufs holds the spare buffers that streaming exchanges lend.
var aiSpareBufs sync.Pool

// takeSpare gives x spare buffers again, lent by another stream if one
// did, made anew otherwise (as exchangePool makes them).
func (x *exchange) takeSpare() {
	sp, _ := aiSpareBufs.Get().(*exchangeSpare)
	if sp == nil {
		sp = &exchangeSpare{buf: make([]byte, 0, exchangeBufBytes), utarget: make([]byte, 0, exchangeTargetBytes)}
	}
	x.buf, x.utarget = sp.buf, sp.utarget
	if x.xff == nil { // lent with the fields' copy (lendBuffers)
		x.xff = orNew(sp.xff, exchangeXFFBytes)
		x.tt = sp.tt
		x.rid = append(orNew(sp.rid, exchangeIDBytes), x.rid...)
		x.path = append(orNew(sp.path, exchangePathBytes), x.path...)
	}
}

// lendFields puts a field array in aiFieldBufs, emptied.
func lendFields(f []h1.Header) {
	if cap(f) == 0 {
		return
	}
	f = f[:cap(f)]
	clear(f)
	f = f[:0]
	aiFieldBufs.Put(&f)
}

// streamed ends what a streaming answer held on its connection: its
// hang-up watch, and the write buffer it lent out.
func (w *aiWriter) streamed() {
	w.unwatch()
	w.takeBuffers()
}

// takeBuffers gives the connection a write buffer again once its
// answer streamed, and x its field arrays, the request's fields copied
// back, and its line buffer.
func (w *aiWriter) takeBuffers() {
	if w.lent {
		w.lent = false
		w.c.wbuf = writeBuffer()
		if rd := &w.c.rd; rd.Buf == nil {
			rd.Buf = readBuffer() // the one it let go of is another's (dropReadBuffer)
		}
		if h := &w.c.hreq; h.Headers == nil {
			h.Headers = fieldArray() // for the next head, which would grow one from none
		}
		x := w.x
		x.req.fields = append(fieldArray(), x.req.fields...)
		x.resp.fields = fieldArray()
		x.ureq.Fields = x.req.fields[:0]
		x.line = lineBuffer()
		x.takeSpare()
	}
}

// write writes b to the client within the server's write timeout, which
// is set only when the write must wait for room (rawio.WriteBy): a
// stream's writes then cost no runtime timer each.
func (w *aiWriter) write(b []byte) {
	c := w.c
	if err := rawio.WriteBy(c.c, b, time.Now().Add(c.s.srv.WriteTimeout)); err != nil {
		w.fail(err)
	}
}

// fail ends the call when the client can no longer be written to: its
// context ends, which stops the provider's stream.
func (w *aiWriter) fail(err error) {
	w.err = err
	w.closing = true
	w.cancelCall()
}

// keep reports whether the HTTP/1.1 connection stays open after the
// answer: it was framed and written, and the request's body was read to
// its end.
func (w *aiWriter) keep() bool {
	return w.err == nil && !w.closing && w.x.req.bodyDone
}

// appendAIFields appends an AI call's fields to its access log line.
func (x *exchange) appendAIFields(b []byte) []byte {
	if x.ai == nil || x.ai.rec == nil {
		return b
	}
	r := x.ai.rec
	b = append(b, `,"model":`...)
	b = appendJSONStr(b, r.Model)
	b = append(b, `,"provider":`...)
	b = appendJSONStr(b, r.Provider)
	b = append(b, `,"input_tokens":`...)
	b = strconv.AppendInt(b, int64(r.InputTokens), 10)
	b = append(b, `,"output_tokens":`...)
	b = strconv.AppendInt(b, int64(r.OutputTokens), 10)
	b = append(b, `,"cost_usd":`...)
	b = strconv.AppendFloat(b, r.Cost, 'g', -1, 64)
	b = append(b, `,"ttft_ms":`...)
	b = strconv.AppendFloat(b, float64(r.TTFT)/float64(time.Millisecond), 'f', -1, 64)
	b = append(b, `,"ai_outcome":`...)
	b = appendJSONStr(b, r.Outcome)
	if len(r.Path) > 0 {
		b = append(b, `,"ai_path":[`...)
		for i, p := range r.Path {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendJSONStr(b, p)
		}
		b = append(b, ']')
	}
	return b
}

// aiClass is how an AI call counts in the gateway's metrics and outcome
// recorder: as its status says (class), except a stream that failed
// after its first token, which the client got with a 200: it failed, as
// its call record and the GenAI metrics say, with error type
// failed_mid_stream.
func (x *exchange) aiClass(class outcome.Class) (outcome.Class, string) {
	if x.ai.rec == nil || x.ai.rec.Outcome != ai.OutcomeFailedMidStream {
		return class, ""
	}
	if x.ai.rec.Reason == "timeout" {
		return outcome.ClassTimeout, ai.OutcomeFailedMidStream
	}
	return outcome.ClassReset, ai.OutcomeFailedMidStream
}

// addAICall fills a call record's AI fields.
func (x *exchange) addAICall(rec *callstore.Record) {
	if x.ai == nil || x.ai.rec == nil {
		return
	}
	r := x.ai.rec
	rec.Model, rec.Provider = r.Model, r.Provider
	rec.InputTokens, rec.OutputTokens, rec.Cost = int64(r.InputTokens), int64(r.OutputTokens), r.Cost
	if r.Provider != "" {
		rec.Target = r.Provider
	}
	if r.TTFT > 0 {
		rec.TTFB = r.TTFT
	}
	if r.Outcome == ai.OutcomeFailedMidStream {
		// The client got a 200 and then an error event: the call failed.
		rec.Outcome, rec.Reason = r.Outcome, r.Reason
	}
}

// prepared reports whether the AI writer prepared the answer's head as
// it wrote it (aiWriter.WriteHeader): the gateway's preparing of the
// response after the call has nothing left to do, and a stream's
// response fields may be lent out or their stream still under way
// (HandOff).
func (ac *aiCall) prepared() bool {
	return ac.relay != nil || ac.w.sent && !ac.w.relay
}
