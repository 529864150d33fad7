package gateway

import (
	"context"
	"errors"
	"time"

	"github.com/relia-dev/relia/callstore"
	"github.com/relia-dev/relia/gateway/upstream"
	"github.com/relia-dev/relia/internal/h1"
	"github.com/relia-dev/relia/outcome"
	"github.com/relia-dev/relia/resilience"
	"go.opentelemetry.io/otel/trace"
)

// hedgePolicy is a route's compiled Hedge: resilience's own policy,
// driven a step at a time (HedgeCall).
type hedgePolicy struct {
	policy  *resilience.Hedge
	max     int
	nonIdem bool
}

// hedgeRun is one attempt of a hedged group, run on a goroutine of its
// own with a request and a response of its own. Hedged requests hold
// their bodies, so every run sends the same bytes.
type hedgeRun struct {
	t     *target
	bp    resilience.BreakerPermit
	req   upstream.Request
	resp  *upstream.Response
	err   error
	start time.Time
	lat   time.Duration
	span  trace.Span // the attempt's client span, when tracing is on
	// hedge says the run was a hedge (the delay passed), not the group's
	// first attempt; back says its result came back to the exchange.
	// Both are the exchange's goroutine's, for the call's story.
	hedge, back bool
}

// hedgedAttempt sends the request to one target and, each time the
// route's hedge delay passes without an answer, to one more (up to the
// hedge's maximum, each drawn from the budget), and takes the first
// answer that is not a failure; the others are cancelled by aborting
// their connections. When every attempt fails, the last to fail is the
// group's outcome, as resilience.Hedge has it.
func (g *Gateway) hedgedAttempt(x *exchange, prev *target, hashKey []byte, deadline time.Time, deposit bool) attemptOutcome {
	r := x.route
	hc := r.hedge.policy.Start(deposit)
	method := methodName(x.req.method)
	cctx, cancel := context.WithCancel(x.req.ctx)
	defer cancel()
	results := make(chan *hedgeRun, 1+r.hedge.max)
	var runs []*hedgeRun // for the call's story
	// The attempts that lose go on after the exchange has answered and
	// its connection reads the next request into the same buffer, so
	// they send a copy of the request, not slices of that buffer.
	base := cloneRequest(&x.ureq)
	launch := func(prev *target, answer bool) (*hedgeRun, attemptOutcome) {
		t, bp, start, tryDeadline, out := g.startAttempt(x, prev, hashKey, deadline, answer)
		if out.answered {
			return nil, out
		}
		run := &hedgeRun{t: t, bp: bp, start: start, req: base, resp: upstreamResponses.Get().(*upstream.Response), hedge: !answer}
		runs = append(runs, run)
		run.req.Host = append([]byte(nil), x.upstreamHost(t)...)
		if g.tracing != nil {
			run.req.Fields = append([]h1.Header(nil), base.Fields...)
			run.span = g.tracing.startClientSpan(x, t, &run.req.Fields, run.start)
		}
		t.inflight.Add(1)
		go func() { // exits when the exchange ends or is cancelled
			run.err = t.up.Do(cctx, &run.req, run.resp, tryDeadline)
			t.inflight.Add(-1)
			run.lat = g.clock.Since(run.start)
			results <- run
		}()
		return run, attemptOutcome{}
	}
	first, out := launch(prev, true)
	if out.answered {
		return out
	}
	running, last := 1, first.t
	timer := g.clock.NewTimer(hc.Delay())
	defer timer.Stop()
	hedgeC := timer.C()
	for {
		select {
		case run := <-results:
			running--
			status := 0
			if run.err == nil {
				status = run.resp.Status
			}
			steps := len(x.steps)
			out := g.endAttempt(x, run.t, run.bp, method, status, run.err, run.lat)
			run.back = true
			if run.hedge && len(x.steps) > steps {
				x.steps[steps].Kind = callstore.StepHedge
			}
			if run.span != nil {
				endClientSpan(run.span, out.status, run.err, run.start.Add(run.lat))
			}
			failed := out.err != nil || out.status >= 500 || out.status == 429 || out.status == 409
			if failed && running > 0 {
				run.resp.Release()
				upstreamResponses.Put(run.resp)
				continue
			}
			x.target = run.t
			x.end = g.clock.Now()
			if run.err == nil {
				x.resp.fromTarget(run.resp)
			} else {
				upstreamResponses.Put(run.resp)
			}
			if running > 0 {
				cancel()
				g.cancelledSteps(x, runs)
				go discardHedges(results, running)
			}
			hc.Done(run.err)
			return out
		case <-hedgeC:
			hedgeC = nil
			if !hc.Another() {
				continue
			}
			run, _ := launch(last, false)
			if run == nil {
				continue // nowhere to send it; the attempts out keep running
			}
			running++
			last = run.t
			if hc.More() {
				timer.Reset(hc.Delay())
				hedgeC = timer.C()
			}
		}
	}
}

// cancelledSteps notes in the call's story the attempts of a hedged
// group still out when another answered: cancelled, after the time they
// had run. Their time is not added to the call's upstream time, which the
// winner's already covers.
func (g *Gateway) cancelledSteps(x *exchange, runs []*hedgeRun) {
	if g.calls == nil || g.calls.rec == nil {
		return
	}
	now := g.clock.Now()
	for _, run := range runs {
		if run.back {
			continue
		}
		kind := callstore.StepAttempt
		if run.hedge {
			kind = callstore.StepHedge
		}
		x.steps = append(x.steps, callstore.Step{Kind: kind, Target: run.t.addr, Outcome: outcome.ClassCanceled.String(),
			Reason: "another attempt answered first", Latency: now.Sub(run.start)})
	}
}

// discardHedges collects the cancelled attempts of a hedged group as they
// end; their breakers hear of the cancellation, which does not count
// against the target.
func discardHedges(results <-chan *hedgeRun, n int) {
	for range n {
		run := <-results
		status := 0
		if run.err == nil {
			status = run.resp.Status
			run.resp.Release()
		}
		upstreamResponses.Put(run.resp)
		if run.span != nil {
			endClientSpan(run.span, status, run.err, run.start.Add(run.lat))
		}
		if run.err != nil && errors.Is(run.err, context.Canceled) {
			run.bp.Done(context.Canceled)
			continue
		}
		run.bp.Done(nil)
		run.t.observe(run.lat)
	}
}

// cloneRequest copies r's bytes (method, target, host, fields, held body)
// into one buffer of its own. A hedged request holds its body, so there
// is no stream to copy.
func cloneRequest(r *upstream.Request) upstream.Request {
	n := len(r.Method) + len(r.Target) + len(r.Host) + len(r.Body)
	for _, f := range r.Fields {
		n += len(f.Name) + len(f.Value)
	}
	buf := make([]byte, 0, n)
	take := func(b []byte) []byte {
		if b == nil {
			return nil
		}
		at := len(buf)
		buf = append(buf, b...)
		return buf[at:len(buf):len(buf)]
	}
	c := *r
	c.Method, c.Target, c.Host, c.Body = take(r.Method), take(r.Target), take(r.Host), take(r.Body)
	c.Fields = make([]h1.Header, len(r.Fields))
	for i, f := range r.Fields {
		c.Fields[i] = h1.Header{Name: take(f.Name), Value: take(f.Value)}
	}
	return c
}
