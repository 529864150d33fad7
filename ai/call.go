package ai

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/relia-dev/relia/ai/wire"
	"github.com/relia-dev/relia/clock"
	"github.com/relia-dev/relia/internal/callctx"
	"github.com/relia-dev/relia/internal/netyield"
	"github.com/relia-dev/relia/resilience"
)

// maxHeldStream bounds the stream bytes relia holds before a flush.
const maxHeldStream = 32 << 10

// MaxResponseBody bounds a provider's non-streaming answer relia reads.
const MaxResponseBody = 32 << 20

// chat serves one chat call: admission (access, context window, quota),
// attempts with failover, and the answer, whole or streamed.
func (s *Service) chat(rctx context.Context, w http.ResponseWriter, st *state, c *caller, req *wire.ChatRequest, eg egress, op string) {
	rec := s.newRecord(op, c, req.Model, req.Stream)
	// handedOff says the host took the stream's relay (HandOff), which
	// ends the call in its turn.
	handedOff := false
	defer func() {
		if !handedOff {
			s.finish(rec)
		}
	}()
	rs, aerr := s.admitModel(st, c, req.Model, TypeChat, op == "prompt")
	if aerr != nil {
		rec.fail(aerr)
		rec.unrouted = aerr.code == codeModelNotFound
		eg.writeError(w, aerr)
		return
	}
	rec.Model = rs.model.Name
	if rs.cfg.LogContent {
		rec.content = &contentLog{prompt: promptText(req)}
	}
	out, ok := req.OutputLimit()
	if !ok {
		out = st.defaultOutput(rs.model)
	}
	f := s.newFailover(rs)
	// The prompt is counted only when a check needs the count: the
	// context window when the prompt's bytes could exceed it, a quota of
	// tokens or cost. A tokenizer costs more than the rest of the call.
	prompt := -1
	estimate := func() int {
		if prompt < 0 {
			prompt = estimateChat(req, rs.model)
		}
		return prompt
	}
	if cw := rs.model.ContextWindow; cw > 0 && chatBound(req)+out > cw && estimate()+out > cw && !f.toContextFallback() {
		aerr := &apiError{status: http.StatusBadRequest, typ: wire.ErrTypeInvalidRequest, code: wire.CodeContextLength,
			message: fmt.Sprintf("the prompt (about %d tokens) and the output cap (%d) exceed the context window of %s (%d tokens)", prompt, out, rs.model.Name, cw)}
		rec.fail(aerr)
		eg.writeError(w, aerr)
		return
	}
	reserve := 0
	if s.quotas.needEstimate(c, rs.model) {
		reserve = estimate()
	}
	res, aerr := s.quotas.admit(rctx, c, rs.model, reserve, rs.model.Price.Cost(Usage{InputTokens: reserve}))
	if aerr != nil {
		rec.fail(aerr)
		eg.writeError(w, aerr)
		return
	}
	ct := s.withTotal(rctx, rs.total)
	if h, ok := w.(CallCanceller); ok {
		h.SetCancel(func() { ct.ctx.Cancel(context.Canceled) })
	}
	// end ends the call once its answer is out: here, or at the end of
	// the stream's relay when the host took it on.
	end := func() {
		if f != nil {
			rec.Attempts = f.attemptCount()
			rec.Path = f.pathCopy()
		}
		ct.stop()
		res.settle(rctx, rec.usage, rec.Cost)
	}
	defer func() {
		if !handedOff {
			end()
		}
	}()
	if req.Stream {
		handedOff = s.chatStream(ct, w, f, req, eg, rec, end)
		if handedOff && !rs.mayHedge() {
			// No attempt is left under way (a hedge's loser may be):
			// the failover's figures are final, and a stream that waits
			// for its provider need not hold it.
			rec.Attempts, rec.Path = f.attemptCount(), f.pathCopy()
			f = nil
		}
	} else {
		s.chatWhole(ct.ctx, w, f, req, eg, rec)
	}
}

// codeModelNotFound is the error code of a call naming a model the
// gateway has no route for.
const codeModelNotFound = "model_not_found"

// admitModel finds the route of a model the caller may call.
// A prompt's model is called on the tenant's behalf: access to the
// prompt is what is checked.
func (s *Service) admitModel(st *state, c *caller, name, typ string, viaPrompt bool) (*routeState, *apiError) {
	if name == "" {
		return nil, badRequest("model: required")
	}
	rs, ok := st.route(name)
	if !ok {
		return nil, &apiError{status: http.StatusNotFound, typ: wire.ErrTypeNotFound, code: codeModelNotFound, reason: codeModelNotFound, message: fmt.Sprintf("the model %q does not exist or has no route", name)}
	}
	if !viaPrompt && !c.mayCall(rs.model) {
		return nil, &apiError{status: http.StatusForbidden, typ: wire.ErrTypePermission, code: "model_not_allowed", reason: "model_not_allowed", message: fmt.Sprintf("tenant %q may not call model %q", c.tenantName(), rs.model.Name)}
	}
	if rs.model.Type != typ {
		return nil, badRequest(fmt.Sprintf("the model %q is a %s model", rs.model.Name, rs.model.Type))
	}
	return rs, nil
}

func (st *state) defaultOutput(m *Model) int {
	n := orDefault(st.cfg.Spec.DefaultOutputTokens, 1024)
	if m.MaxOutputTokens > 0 && m.MaxOutputTokens < n {
		n = m.MaxOutputTokens
	}
	return n
}

// send sends one attempt's request and returns the response when its
// status is a success, or the provider's error.
func (s *Service) send(t *target, req *http.Request) (*http.Response, error) {
	for k, v := range t.provider.Headers {
		req.Header.Set(k, v)
	}
	resp, err := s.transport.RoundTrip(req)
	if err != nil {
		if req.Context().Err() != nil && errors.Is(callctx.Cause(req.Context()), errFirstToken) {
			return nil, &callError{kind: kindTimeout, message: "no answer within the first-token timeout"}
		}
		return nil, &callError{kind: kindNetwork, message: err.Error()}
	}
	if resp.StatusCode/100 == 2 {
		return resp, nil
	}
	body, _ := readAtMost(resp.Body, 64<<10-1)
	resp.Body.Close()
	return nil, t.prov.adapter.errorOf(resp.StatusCode, resp.Header, body, s.clock.Now())
}

var errFirstToken = errors.New("first-token timeout")

// errTotal is the cause of a call's context that ran past its total
// timeout: the route's, or the host's when shorter (WithTimeout).
var errTotal = errors.New("total timeout")

// callTotal is a call's context, which ends with cause errTotal once the
// call's total timeout passed, and the timer that ends it: the call's own
// until a stream's first token, the stream's from then on (takeTotal),
// so that an open stream waits on one timer. The context is a
// callctx.Context, as the context of each of its attempts is: an open
// stream holds the two, not a chain of the context package's
// cancellations with their children maps and done channels.
type callTotal struct {
	ctx      *callctx.Context
	timer    clock.Timer // nil once a stream's timer took the timeout on
	deadline time.Time
}

// withTotal returns the call's context, ended with cause errTotal once
// total (or the host's shorter bound) passed; its stop releases it.
func (s *Service) withTotal(parent context.Context, total time.Duration) *callTotal {
	if d, ok := parent.Value(timeoutKey{}).(time.Duration); ok && d < total {
		total = d
	}
	ct := &callTotal{ctx: callctx.New(parent), deadline: s.clock.Now().Add(total)}
	ct.timer = s.clock.AfterFunc(total, func() { ct.ctx.Cancel(errTotal) })
	return ct
}

// stop ends the call's context and its timer.
func (ct *callTotal) stop() {
	if ct.timer != nil {
		ct.timer.Stop()
	}
	ct.ctx.Cancel(context.Canceled)
}

// totalTimeout returns the error answered for a call whose context ended
// because its total timeout passed; nil when it did not.
func totalTimeout(ctx context.Context) *apiError {
	if !errors.Is(callctx.Cause(ctx), errTotal) {
		return nil
	}
	return &apiError{status: http.StatusGatewayTimeout, typ: wire.ErrTypeTimeout, code: "timeout", reason: "timeout", message: "the call ran past its total timeout"}
}

// chatWhole serves a non-streaming call.
func (s *Service) chatWhole(ctx context.Context, w http.ResponseWriter, f *failover, req *wire.ChatRequest, eg egress, rec *Record) {
	for {
		t, ok := f.next()
		if !ok {
			aerr := f.failure()
			rec.fail(aerr)
			eg.writeError(w, aerr)
			return
		}
		rec.target(t)
		resp, raw, usage, err := s.attemptWhole(ctx, t, req)
		if err != nil && ctx.Err() != nil {
			t.permit.Done(context.Canceled) // the client left, or the call's time ran out: no verdict on the provider
			if aerr := totalTimeout(ctx); aerr != nil {
				rec.fail(aerr)
				eg.writeError(w, aerr)
				return
			}
			rec.Outcome, rec.Status = OutcomeCancelled, 499
			return
		}
		f.report(t, err)
		if err != nil {
			continue
		}
		rec.usage = usage
		rec.setCost(t.route.model)
		rec.TTFT = s.clock.Since(rec.Time)
		if rec.content != nil {
			if resp = decodeChat(resp, raw); len(resp.Choices) > 0 {
				rec.content.completion = resp.Choices[0].Message.Text()
			}
		}
		rec.Outcome, rec.Status = OutcomeOK, http.StatusOK
		eg.writeResponse(w, resp, raw, t)
		return
	}
}

func (s *Service) attemptWhole(ctx context.Context, t *target, req *wire.ChatRequest) (*wire.ChatResponse, []byte, Usage, error) {
	hreq, err := t.prov.adapter.chatRequest(ctx, t, req)
	if err != nil {
		return nil, nil, Usage{}, &callError{kind: kindClient, status: http.StatusBadRequest, message: err.Error()}
	}
	resp, err := s.send(t, hreq)
	if err != nil {
		return nil, nil, Usage{}, err
	}
	defer resp.Body.Close()
	body, err := readAtMost(resp.Body, MaxResponseBody)
	if err != nil {
		return nil, nil, Usage{}, &callError{kind: kindNetwork, message: "reading the answer: " + err.Error()}
	}
	if len(body) > MaxResponseBody {
		return nil, nil, Usage{}, &callError{kind: kindServer, message: "the answer is over 32MiB"}
	}
	cr, raw, err := t.prov.adapter.chatResponse(t, body)
	if err != nil {
		return nil, nil, Usage{}, &callError{kind: kindServer, message: err.Error()}
	}
	if cr == nil {
		return nil, raw, usageOf(raw), nil
	}
	return cr, raw, usageFromOpenAI(cr.Usage), nil
}

// openStream is a provider's stream opened up to its first token.
type openStream struct {
	t    *target
	body io.Closer
	dec  streamDecoder
	// ctx is the stream's: it ends with the call's, at close, or when
	// timer (first token, then idle) fires; once the stream is the call's
	// (its first token is out), total is the call's, whose total timeout
	// the timer watches too (takeTotal, rearm).
	ctx     *callctx.Context
	timer   clock.Timer
	total   atomic.Pointer[callTotal]
	expired atomic.Bool
	// armedPieces is how many pieces of its body the stream had read when
	// its timer was last set (touch).
	armedPieces uint64
	pending     []piece
	ended       bool // the stream ended (io.EOF) while pending was read
}

// waitNext waits for the provider's next bytes at the caller's depth
// where its body can (upstreamBody.waitReadable); other bodies wait in
// the decoder's read.
func (o *openStream) waitNext() {
	if b, ok := o.body.(*upstreamBody); ok {
		b.waitReadable()
	}
}

// timeout ends the stream whose timer fired: the call, with cause
// errTotal, when its total timeout passed (takeTotal), else the stream,
// which had no first token or no next token in time.
func (o *openStream) timeout() {
	if ct := o.total.Load(); ct != nil && !o.t.clock.Now().Before(ct.deadline) {
		ct.ctx.Cancel(errTotal)
		return
	}
	o.expired.Store(true)
	o.ctx.Cancel(errFirstToken)
}

// takeTotal has the stream's timer watch the call's total timeout too,
// in place of the call's own timer, once the stream is the call's.
func (o *openStream) takeTotal(ct *callTotal) {
	o.total.Store(ct)
	if ct.timer != nil {
		ct.timer.Stop()
		ct.timer = nil
	}
}

// rearm sets the stream's timer to its idle timeout, or to what is left
// of the call's total timeout when that is sooner.
func (o *openStream) rearm() {
	if b, ok := o.body.(*upstreamBody); ok {
		o.armedPieces = b.pieces
	}
	d := o.t.route.idle
	if ct := o.total.Load(); ct != nil {
		if left := ct.deadline.Sub(o.t.clock.Now()); left < d {
			d = left
		}
	}
	o.timer.Reset(d)
}

// touch rearms the stream's timer for an event it relayed, when bytes
// of the provider's came since the timer was set: the events of one read
// arrived together. Setting it for each event (three clock reads and a
// change of a runtime timer) took a 100-token stream that came in one
// read about a twentieth of its CPU.
func (o *openStream) touch() {
	if b, ok := o.body.(*upstreamBody); ok && b.pieces == o.armedPieces {
		return
	}
	o.rearm()
}

func (o *openStream) close() {
	o.timer.Stop()
	o.ctx.Cancel(context.Canceled)
	o.body.Close()
	o.dec.release()
}

// open sends an attempt and reads its stream up to the first token, all
// within the route's first-token timeout. The stream's context lives
// past ctx (a hedge's attempt context ends when the hedge returns) but
// ends with the call's.
func (s *Service) open(ctx, callCtx context.Context, t *target, req *wire.ChatRequest) (*openStream, error) {
	sctx := callctx.New(callCtx)
	o := &openStream{t: t, ctx: sctx}
	// stop unhooks the cancel from a hedge's attempt context.
	var stop func() bool
	if ctx != callCtx { // a hedge's attempt
		stop = callctx.AfterFunc(ctx, func() { sctx.Cancel(context.Canceled) })
	}
	o.timer = s.clock.AfterFunc(t.route.firstToken, o.timeout)
	unhook := func() {
		if stop != nil {
			stop()
		}
	}
	fail := func(err error) (*openStream, error) {
		o.timer.Stop()
		unhook()
		sctx.Cancel(context.Canceled)
		if o.body != nil {
			o.body.Close()
		}
		if o.expired.Load() {
			return nil, &callError{kind: kindTimeout, message: fmt.Sprintf("no first token within %s", t.route.firstToken)}
		}
		return nil, err
	}
	hreq, err := t.prov.adapter.chatRequest(sctx, t, req)
	if err != nil {
		return fail(&callError{kind: kindClient, status: http.StatusBadRequest, message: err.Error()})
	}
	resp, err := s.send(t, hreq)
	if err != nil {
		return fail(err)
	}
	o.body = resp.Body
	o.dec = t.prov.adapter.chatStream(t, resp.Body)
	for {
		p, err := o.dec.next()
		if err == io.EOF {
			o.ended = true
			break
		}
		if err != nil {
			var ce *callError
			if !errors.As(err, &ce) {
				ce = &callError{kind: kindNetwork, message: "reading the stream: " + err.Error()}
			}
			return fail(ce)
		}
		p.raw = bytes.Clone(p.raw) // held past the decoder's next read
		o.pending = append(o.pending, p)
		if p.tokens {
			break
		}
	}
	unhook()
	if ctx.Err() != nil { // a hedge's loser: it lost while the token came
		return fail(ctx.Err())
	}
	if b, ok := o.body.(*upstreamBody); ok && !o.ended {
		b.streaming()
	}
	return o, nil
}

// chatStream serves a streaming call: attempts fail over (or hedge)
// until one produces a first token; only then does the client get a
// byte, so a failover before it is invisible. After it, a failure ends
// the client's stream with an error event and the call is recorded as
// failed mid-stream: what was sent cannot be unsent, and a silent retry
// would send different text. Once the first token is out, a writer that
// is a HandOff may take the rest of the stream, and end and the record's
// finish (the call's end) with it: chatStream then reports true, and
// the call is not over.
func (s *Service) chatStream(ct *callTotal, w http.ResponseWriter, f *failover, req *wire.ChatRequest, eg egress, rec *Record, end func()) (handedOff bool) {
	ctx := ct.ctx
	var o *openStream
	for o == nil {
		var err error
		o, err = s.openNext(ctx, f, req, rec)
		if err != nil {
			if aerr := totalTimeout(ctx); aerr != nil {
				rec.fail(aerr)
				eg.writeError(w, aerr)
				return false
			}
			if ctx.Err() != nil {
				rec.Outcome, rec.Status = OutcomeCancelled, 499
				return false
			}
			aerr := f.failure()
			rec.fail(aerr)
			eg.writeError(w, aerr)
			return false
		}
	}
	t := o.t
	rec.target(t)
	rec.TTFT = s.clock.Since(rec.Time)
	closing := true
	defer func() {
		if closing {
			o.close()
		}
	}()

	includeUsage := req.StreamOptions != nil && req.StreamOptions.IncludeUsage
	sw := &streamWriter{w: w, eg: eg, includeUsage: includeUsage, t: t, content: rec.content}
	sw.start()
	var err error
	for _, p := range o.pending {
		sw.piece(p)
	}
	o.pending = nil
	if !o.ended {
		o.takeTotal(ct)
		o.rearm()
		err = sw.flush()
		if h, ok := w.(HandOff); ok && err == nil && h.HandOff(&Relay{s: s, ctx: ct.ctx, o: o, sw: sw, rec: rec, end: end}) {
			closing = false
			return true
		}
		if err == nil {
			_, err = relayStream(o, sw, nil)
		}
	}
	s.endStream(ctx, o, sw, rec, err)
	return false
}

// CallCanceller is what a host's http.ResponseWriter implements to end
// a chat call that it can no longer answer (its client hung up, or a
// write failed) without a cancellable context of its own above the
// call's: the call gives it cancel once it starts, and calling cancel
// ends the call as the cancellation of Serve's context would. relia
// gateway's edge is one: an open stream then holds one context the
// less.
type CallCanceller interface {
	SetCancel(cancel func())
}

// StreamWaiter is what a host's http.ResponseWriter implements to learn
// that a stream it writes waits for its provider's next bytes, once, the
// first time it does: relia gateway's edge then starts to watch the
// client for a hang-up, which a stream relayed straight through (its
// provider's answer came at once) leaves to its writes to see.
type StreamWaiter interface {
	StreamWaits()
}

// HandOff is what a host's http.ResponseWriter implements when it can
// relay an open stream from goroutines of its own, so that the
// goroutine that served the request up to the first token (its deep
// stack of host and call frames) can end while the stream waits for
// tokens. relia gateway's edge is one.
type HandOff interface {
	// HandOff takes r, which streams the rest of the answer through the
	// writer and ends the call (Relay.Run), or reports false and leaves
	// the stream to Serve. Once taken, r runs after Serve returned, and
	// the answer ends when Run reports it ended.
	HandOff(r *Relay) bool
}

// Relay is the rest of a stream that a host took (HandOff): its events
// from the provider to the client, then the call's end (the breaker's
// verdict, usage, quota, record).
//
// Where it can (Linux, a provider over relia's own HTTP/1.1 client), a
// relay that has nothing at hand waits with no goroutine: its provider
// connection is in the service's epoll set (one for all streams), and
// the relay goes on from a new goroutine once bytes come, the stream's
// timeouts pass or its call is cancelled. A waiting stream then holds
// its state on the heap and no stack (docs/benchmarks.md, "Open
// streams' memory"). Elsewhere Run waits for the provider as Serve
// would.
type Relay struct {
	s   *Service
	ctx *callctx.Context // the call's
	o   *openStream
	sw  *streamWriter
	rec *Record
	end func()
	// resume is the host's, from Run: it runs the relay on.
	resume func()
	wait   relayWait
}

// Run relays the stream until it ends, and reports true once the call
// ended; or until it must wait for the provider with nothing at hand,
// and reports false: the stream then waits without a goroutine, and
// resume is called once, on a new goroutine, when it can go on; resume
// calls Run again. A host must not touch the relay or the writer after
// Run reported false: the next Run may already be under way. Runs never
// overlap.
func (r *Relay) Run(resume func()) (ended bool) {
	r.resume = resume
	r.resumed()
	ended = true
	defer func() {
		if ended { // also when a panic unwinds Run: the call ends as it can
			r.unwatch()
			r.o.close()
			r.end()
			r.s.finish(r.rec)
		}
	}()
	waits, err := relayStream(r.o, r.sw, r)
	if waits {
		ended = false
		return false
	}
	r.s.endStream(r.ctx, r.o, r.sw, r.rec, err)
	return true
}

// relayStream passes the stream's events to the client until the
// provider's stream ends (io.EOF) or fails, or the client's write does.
// With a relay that can wait without a goroutine (park), it returns
// early, reporting true, when the stream waits so; otherwise a stream
// waits here for each next event, a few frames deep.
func relayStream(o *openStream, sw *streamWriter, r *Relay) (waits bool, err error) {
	turn := time.Now()
	relayed := 0
	for {
		// While the next event is already at hand, the other streams run
		// first (yield) once this one has had its turn: a provider that
		// sent its whole answer at once would otherwise hold the
		// processor for the whole of it, and on one core every stream
		// that became ready meanwhile, a new one's first token included,
		// would wait behind it. A turn is a few events, not one: a yield
		// between every two events cost more than relaying them. A
		// stream whose events come one by one waits for each anyway and
		// does not yield: it waits here, with a shallow stack
		// (waitNext), or on no stack at all (park).
		if o.dec.buffered() > 0 {
			// The clock is read every few events: an event takes about a
			// microsecond to relay, a read of the clock a twentieth of it.
			if relayed++; relayed%turnEvents == 0 && time.Since(turn) >= relayTurn {
				yield()
				turn = time.Now()
			}
		} else if sw.waits(); r != nil && r.park() {
			return true, nil
		} else {
			o.waitNext()
		}
		p, err := o.dec.next()
		if err != nil {
			return false, err
		}
		o.touch()
		sw.piece(p)
		// Events already read from the provider go out in one write;
		// the flush waits only while more are at hand.
		if o.dec.buffered() == 0 || len(sw.buf) >= maxHeldStream {
			if err := sw.flush(); err != nil {
				return false, err
			}
		}
	}
}

// endStream ends a stream that relayed up to err (nil or io.EOF: the
// provider's stream ended): the record's usage, cost and outcome, the
// breaker's verdict, and the client's last event.
func (s *Service) endStream(ctx context.Context, o *openStream, sw *streamWriter, rec *Record, err error) {
	t := o.t
	defer sw.release()
	if err == io.EOF || o.ended {
		err = nil
	}
	rec.usage = sw.usage
	rec.setCost(t.route.model)
	if out := sw.usage.OutputTokens; out > 1 {
		rec.TPOT = (s.clock.Since(rec.Time) - rec.TTFT) / time.Duration(out-1)
	}
	if err == nil {
		sw.end()
		t.permit.Done(nil)
		rec.Outcome, rec.Status = OutcomeOK, http.StatusOK
		return
	}
	overdue := totalTimeout(ctx) != nil
	if ctx.Err() != nil && !o.expired.Load() && !overdue {
		t.permit.Done(context.Canceled)
		rec.Outcome, rec.Status = OutcomeCancelled, 499
		return
	}
	var ce *callError
	switch {
	case overdue:
		ce = &callError{kind: kindTimeout, message: "the call ran past its total timeout"}
	case o.expired.Load():
		ce = &callError{kind: kindTimeout, message: fmt.Sprintf("the stream stalled: no token for %s", t.route.idle)}
	case errors.As(err, &ce):
	default:
		ce = &callError{kind: kindNetwork, message: "the stream broke: " + err.Error()}
	}
	if overdue {
		t.permit.Done(context.Canceled) // the call's time ran out: no verdict on the provider
	} else {
		t.permit.Done(ce)
		t.rt.health.record(false)
	}
	aerr := &apiError{status: http.StatusBadGateway, typ: wire.ErrTypeServer, code: "stream_interrupted", reason: "failed_mid_stream",
		message: fmt.Sprintf("the provider's stream failed after the first token (%s); relia does not retry a stream once text was sent", ce)}
	sw.fail(aerr)
	rec.Outcome, rec.Status, rec.Reason = OutcomeFailedMidStream, http.StatusOK, ce.kind.String()
}

// yield lets the other goroutines run before a stream goes on: those
// runnable (runtime.Gosched: a fraction of a microsecond, or nothing when
// none waits) and, every netyield.Quantum of bursts, those the network
// poller wakes, a new request or another stream's first token among them.
// A variable so that a test can count the yields.
var yield = netyield.Yield

// relayTurn is how long a stream relays the events it has at hand before
// it yields: long enough that a yield's cost is a small part of it, short
// beside netyield.Quantum, the wait it bounds for everyone else.
const relayTurn = 20 * time.Microsecond

// turnEvents is how many events a stream relays between its looks at
// the clock for the end of its turn.
const turnEvents = 4

// openNext opens the next candidate's stream, hedged when the route says
// so: another candidate is tried when no first token came within
// HedgeAfter, and the first stream with a token wins.
func (s *Service) openNext(ctx context.Context, f *failover, req *wire.ChatRequest, rec *Record) (*openStream, error) {
	h := f.hedge()
	if h == nil {
		t, ok := f.next()
		if !ok {
			return nil, errNoCandidate
		}
		rec.target(t)
		o, err := s.open(ctx, ctx, t, req)
		if err != nil {
			if ctx.Err() != nil {
				t.permit.Done(context.Canceled) // the client left: no verdict on the provider
				return nil, ctx.Err()
			}
			f.report(t, err)
			return nil, nil
		}
		f.reportOpened(t)
		return o, nil
	}
	p := resilience.NewPipeline[*openStream](h).WithDiscard(func(o *openStream) {
		if o != nil {
			o.t.permit.Done(context.Canceled)
			o.close()
		}
	})
	var noneLeft atomic.Bool
	o, err := p.Get(ctx, func(actx context.Context) (*openStream, error) {
		t, ok := f.next()
		if !ok {
			noneLeft.Store(true)
			return nil, errNoCandidate
		}
		o, err := s.open(actx, ctx, t, req)
		if err != nil {
			if errors.Is(err, context.Canceled) && ctx.Err() == nil {
				t.permit.Done(context.Canceled) // a hedge's loser, cancelled
				return nil, err
			}
			f.report(t, err)
			return nil, err
		}
		f.reportOpened(t)
		return o, nil
	})
	if err != nil {
		if noneLeft.Load() && f.attemptCount() == 0 || errors.Is(err, errNoCandidate) {
			return nil, errNoCandidate
		}
		return nil, nil
	}
	return o, nil
}

var errNoCandidate = errors.New("no candidate left")

// mayHedge reports whether a call on rs may hedge: rs, one of its
// fallbacks or its context fallback has a hedge policy.
func (rs *routeState) mayHedge() bool {
	if rs.hedge != nil || rs.contextFallback != nil && rs.contextFallback.hedge != nil {
		return true
	}
	for _, fb := range rs.fallbacks {
		if fb.hedge != nil {
			return true
		}
	}
	return false
}

// hedge returns the hedge policy of the chain's current route, if any.
func (f *failover) hedge() *resilience.Hedge {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.queueOf != nil {
		return f.queueOf.hedge
	}
	if len(f.routes) > 0 {
		return f.routes[0].hedge
	}
	return nil
}

// reportOpened records a stream that reached its first token: its path
// entry and SLO count now; its breaker permit stays open until the stream
// ends.
func (f *failover) reportOpened(t *target) {
	t.rt.health.record(true)
	f.mu.Lock()
	f.path = append(f.path, t.rt.okEntry)
	f.mu.Unlock()
}

// streamWriter writes a stream to the client in the ingress's format.
type streamWriter struct {
	w            http.ResponseWriter
	eg           egress
	t            *target
	buf          []byte
	includeUsage bool
	usage        Usage
	finish       string
	id           string // the stream's chunk id, for chunks relia adds
	// content, on a route that logs it, takes the completion's text,
	// collected in text.
	content *contentLog
	text    *bytes.Buffer
	// box holds buf while idle lends it out (nil then).
	box *[]byte
	// waited says the stream waited for its provider (waits).
	waited bool
}

// waits tells a host that is a StreamWaiter that the stream waits for
// its provider, the first time it does.
func (sw *streamWriter) waits() {
	if sw.waited {
		return
	}
	sw.waited = true
	if h, ok := sw.w.(StreamWaiter); ok {
		h.StreamWaits()
	}
}

// idleStreamBufs holds the buffers of stream writers whose streams wait
// (streamWriter.idle).
var idleStreamBufs sync.Pool

// idle lends the writer's buffer to the other streams while its stream
// waits with nothing held (the last flush emptied it); busy takes one
// back.
func (sw *streamWriter) idle() {
	if len(sw.buf) > 0 || cap(sw.buf) == 0 || cap(sw.buf) > 2*maxHeldStream {
		return
	}
	b := sw.box
	if b == nil {
		b = new([]byte)
	}
	*b, sw.buf, sw.box = sw.buf[:0], nil, nil
	idleStreamBufs.Put(b)
}

// release gives the writer's buffer to the next stream once its own
// ended: a stream whose provider answered at once grows its buffer to
// maxHeldStream, doubling, and each stream that did so anew allocated
// about twice that (85 KB a 100-token stream, most of what it allocated).
func (sw *streamWriter) release() {
	sw.buf = sw.buf[:0]
	sw.idle()
}

func (sw *streamWriter) busy() {
	if sw.buf != nil {
		return
	}
	if b, ok := idleStreamBufs.Get().(*[]byte); ok {
		sw.buf, sw.box, *b = *b, b, nil
	}
}

func (sw *streamWriter) start() {
	sw.busy() // a buffer a stream before it left, not one grown again from nothing
	h := sw.w.Header()
	h["Content-Type"], h["Cache-Control"], h["X-Accel-Buffering"] = eventStreamType, noCache, noAccelBuffering
	sw.w.WriteHeader(http.StatusOK)
	sw.buf = sw.eg.streamStart(sw.buf[:0], sw.t)
}

func (sw *streamWriter) piece(p piece) {
	if p.usage != nil {
		sw.usage = *p.usage
	}
	if p.chunk != nil && p.chunk.ID != "" {
		sw.id = p.chunk.ID
	}
	if p.finish != "" {
		sw.finish = p.finish
	}
	if sw.content != nil {
		if sw.text == nil {
			sw.text = new(bytes.Buffer)
		}
		collectText(sw.text, p)
	}
	sw.buf = sw.eg.streamPiece(sw.buf, p, sw)
}

func (sw *streamWriter) flush() error {
	if len(sw.buf) == 0 {
		return nil
	}
	if _, err := sw.w.Write(sw.buf); err != nil {
		return err
	}
	sw.buf = sw.buf[:0]
	return http.NewResponseController(sw.w).Flush() // made on the stack, not held by a waiting stream
}

// end writes the stream's last events without a flush: the server sends
// them with the end of its answer (the last chunk) in one write.
func (sw *streamWriter) end() {
	sw.buf = sw.eg.streamEnd(sw.buf, sw)
	sw.writeLast()
	if sw.content != nil {
		sw.content.completion = sw.completion()
	}
}

func (sw *streamWriter) fail(e *apiError) {
	sw.buf = sw.eg.streamFail(sw.buf, e, sw)
	sw.writeLast()
	if sw.content != nil {
		sw.content.completion = sw.completion()
	}
}

// writeLast writes what the stream holds, its last bytes, for the server
// to send as its answer ends.
func (sw *streamWriter) writeLast() {
	if len(sw.buf) > 0 {
		sw.w.Write(sw.buf)
		sw.buf = sw.buf[:0]
	}
}

// completion is the text collected for the content log.
func (sw *streamWriter) completion() string {
	if sw.text == nil {
		return ""
	}
	return sw.text.String()
}

// collectText appends a piece's text to b, for records that keep
// completions.
func collectText(b *bytes.Buffer, p piece) {
	c := p.chatChunk()
	if c == nil {
		return
	}
	for _, ch := range c.Choices {
		if ch.Delta.Content != nil {
			b.WriteString(*ch.Delta.Content)
		}
	}
}

// embeddings serves one embeddings call.
func (s *Service) embeddings(rctx context.Context, w http.ResponseWriter, st *state, c *caller, req *wire.EmbeddingRequest) {
	eg := openAIEgress{}
	rec := s.newRecord("embeddings", c, req.Model, false)
	defer s.finish(rec)
	rs, aerr := s.admitModel(st, c, req.Model, TypeEmbedding, false)
	if aerr != nil {
		rec.fail(aerr)
		rec.unrouted = aerr.code == codeModelNotFound
		eg.writeError(w, aerr)
		return
	}
	rec.Model = rs.model.Name
	est := 0
	if s.quotas.needEstimate(c, rs.model) {
		est = estimateEmbedding(req, rs.model)
	}
	res, aerr := s.quotas.admit(rctx, c, rs.model, est, rs.model.Price.Cost(Usage{InputTokens: est}))
	if aerr != nil {
		rec.fail(aerr)
		eg.writeError(w, aerr)
		return
	}
	defer func() { res.settle(rctx, rec.usage, rec.Cost) }()
	ct := s.withTotal(rctx, rs.total)
	defer ct.stop()
	ctx := ct.ctx
	f := s.newFailover(rs)
	defer func() { rec.Attempts, rec.Path = f.attemptCount(), f.pathCopy() }()
	for {
		t, ok := f.next()
		if !ok {
			aerr := f.failure()
			rec.fail(aerr)
			eg.writeError(w, aerr)
			return
		}
		rec.target(t)
		body, usage, err := s.attemptEmbed(ctx, t, req)
		if err != nil && ctx.Err() != nil {
			t.permit.Done(context.Canceled)
			if aerr := totalTimeout(ctx); aerr != nil {
				rec.fail(aerr)
				eg.writeError(w, aerr)
				return
			}
			rec.Outcome, rec.Status = OutcomeCancelled, 499
			return
		}
		f.report(t, err)
		if err != nil {
			continue
		}
		rec.usage = usage
		rec.setCost(rs.model)
		rec.Outcome, rec.Status = OutcomeOK, http.StatusOK
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		w.Write(body)
		return
	}
}

func (s *Service) attemptEmbed(ctx context.Context, t *target, req *wire.EmbeddingRequest) ([]byte, Usage, error) {
	hreq, err := t.prov.adapter.embedRequest(ctx, t, req)
	if err != nil {
		return nil, Usage{}, &callError{kind: kindClient, status: http.StatusBadRequest, message: err.Error()}
	}
	resp, err := s.send(t, hreq)
	if err != nil {
		return nil, Usage{}, err
	}
	defer resp.Body.Close()
	body, err := readAtMost(resp.Body, MaxResponseBody)
	if err != nil || len(body) > MaxResponseBody {
		return nil, Usage{}, &callError{kind: kindNetwork, message: "reading the answer failed or it is over 32MiB"}
	}
	out, u, err := t.prov.adapter.embedResponse(t, req, body)
	if err != nil {
		return nil, Usage{}, &callError{kind: kindServer, message: err.Error()}
	}
	return out, u, nil
}
