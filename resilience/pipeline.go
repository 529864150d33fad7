package resilience

import (
	"context"
	"fmt"
	"sync"
)

// Policy is one stage of a Pipeline: it decides whether, when and how often
// the rest of the pipeline runs. Run must call next.Call zero or more times
// (concurrently only through next.Fork) and return the error the caller
// should see. A policy that rejects a call returns an error without calling
// next.
//
// Policies are not generic: they judge a call by its error. A Pipeline's
// classifier turns failing results (an HTTP 503, say) into errors before any
// policy sees them, so one Breaker serves pipelines of any result type.
type Policy interface {
	Run(ctx context.Context, next Next) error
}

// Next is the rest of a pipeline as seen from inside a Policy: the inner
// policies and, last, the caller's function. It is a small value; copying it
// is free.
type Next struct {
	exec  execution
	index int
}

// Call runs the rest of the pipeline once. The result of the call is kept by
// the execution; the error is returned. A result superseded by a later Call
// is handed to the pipeline's discard hook (to close HTTP bodies, say).
func (n Next) Call(ctx context.Context) error { return n.exec.call(ctx, n.index) }

// Fork returns a Next that runs the rest of the pipeline into a result slot
// of its own, so that attempts may run concurrently (hedging). A fork's
// result becomes the call's result only when Adopt is called with it;
// otherwise it is discarded by Release.
func (n Next) Fork() Next { return Next{exec: n.exec.fork(), index: n.index} }

// Adopt makes the result of fork, a Next returned by Fork, the result of n.
func (n Next) Adopt(fork Next) { n.exec.adopt(fork.exec) }

// Release hands the result held by a fork that was not adopted to the
// pipeline's discard hook.
func (n Next) Release() { n.exec.release() }

// setCancel gives a fork the cancel function of the context its attempt
// runs under. A released fork cancels it; an adopted fork hands it to the
// call, which cancels it once the caller is done with the result. So the
// winner of a hedge keeps a live context while its result is in use (an
// HTTP body is still being read) and no context outlives its call.
func (n Next) setCancel(cancel context.CancelFunc) { n.exec.setCancel(cancel) }

// execution is the per-call state behind Next; callFrame[T] implements it.
type execution interface {
	call(ctx context.Context, index int) error
	fork() execution
	adopt(from execution)
	release()
	setCancel(cancel context.CancelFunc)
}

// Pipeline runs functions returning T under a list of policies, outermost
// first. The recommended order, outer to inner, is
//
//	Fallback, Retry or Hedge, Breaker, RateLimiter, Bulkhead (or adaptive
//	Limiter), Timeout
//
// so that a fallback covers every failure, each retry passes the breaker and
// the limits afresh, and the timeout bounds a single attempt. Put a second
// Timeout outermost to bound the whole call including retries.
//
// A Pipeline is safe for concurrent use; build it once and share it.
type Pipeline[T any] struct {
	policies []Policy
	classify func(T, error) error
	discard  func(T)
	pool     sync.Pool
}

// NewPipeline returns a pipeline of the given policies, outermost first.
// Nil policies are skipped, so optional policies can be passed as nil.
//
// NewPipeline panics when a policy that supplies results (a Fallback) was
// built for another result type than T: that is a programming error, and
// failing when the pipeline is built, usually at start-up, surfaces it before
// any call. BuildPipeline returns the same condition as an error.
func NewPipeline[T any](policies ...Policy) *Pipeline[T] {
	p, err := BuildPipeline[T](policies...)
	if err != nil {
		panic("resilience: " + err.Error())
	}
	return p
}

// BuildPipeline is NewPipeline returning an error instead of panicking when
// a result-supplying policy (a Fallback[U]) does not match the pipeline's
// result type T.
func BuildPipeline[T any](policies ...Policy) (*Pipeline[T], error) {
	p := &Pipeline[T]{}
	for i, pol := range policies {
		if pol == nil {
			continue
		}
		if tp, ok := pol.(typedPolicy); ok {
			if err := tp.checkPipeline(p); err != nil {
				return nil, fmt.Errorf("building pipeline: policy %d: %w", i, err)
			}
		}
		p.policies = append(p.policies, pol)
	}
	p.pool.New = func() any { return &callFrame[T]{p: p} }
	return p, nil
}

// typedPolicy is implemented by policies that put a value of their own into
// the call's result and so work only in a pipeline of one result type.
// checkPipeline gets the *Pipeline[T] being built and reports a mismatch.
type typedPolicy interface {
	checkPipeline(p any) error
}

// WithClassifier returns a copy of the pipeline that passes each attempt's
// result and error through classify: the error it returns is what the
// policies see. It lets a failing result (an HTTP 503) count as a failure
// while the result itself is kept, and returned to the caller if no policy
// replaces it.
func (p *Pipeline[T]) WithClassifier(classify func(T, error) error) *Pipeline[T] {
	c := NewPipeline[T](p.policies...)
	c.classify, c.discard = classify, p.discard
	return c
}

// WithDiscard returns a copy of the pipeline that calls discard with every
// result that is superseded: an attempt that is retried, or a hedge that
// lost. Use it to close resources such as HTTP response bodies.
func (p *Pipeline[T]) WithDiscard(discard func(T)) *Pipeline[T] {
	c := NewPipeline[T](p.policies...)
	c.classify, c.discard = p.classify, discard
	return c
}

// Get runs fn under the pipeline's policies and returns the final result and
// error. With a classifier, the error is the classified one: a result the
// classifier judged a failure comes back together with that error.
//
// When a policy ran the winning attempt under a context of its own (a
// Hedge), that context is cancelled before Get returns, so fn must not
// return a result that keeps reading from its context, such as an HTTP
// response whose body is still to be read.
func (p *Pipeline[T]) Get(ctx context.Context, fn func(context.Context) (T, error)) (T, error) {
	r, cancel, err := p.get(ctx, fn)
	if cancel != nil {
		cancel()
	}
	return r, err
}

// get is Get handing the winning attempt's context cancel function, if
// there is one, to the caller, who calls it once done with the result.
func (p *Pipeline[T]) get(ctx context.Context, fn func(context.Context) (T, error)) (T, context.CancelFunc, error) {
	if len(p.policies) == 0 {
		r, err := fn(ctx)
		if p.classify != nil {
			err = p.classify(r, err)
		}
		return r, nil, err
	}
	e := p.pool.Get().(*callFrame[T])
	e.fn = fn
	err := p.policies[0].Run(ctx, Next{exec: e, index: 1})
	r, cancel := e.result, e.cancel
	var zero T
	e.result, e.hasResult, e.fn, e.cancel = zero, false, nil, nil
	p.pool.Put(e)
	return r, cancel, err
}

// Policies returns the pipeline's policies, outermost first.
func (p *Pipeline[T]) Policies() []Policy { return append([]Policy(nil), p.policies...) }

// callFrame holds one call's function and its current result.
type callFrame[T any] struct {
	p         *Pipeline[T]
	fn        func(context.Context) (T, error)
	result    T
	hasResult bool
	// cancel ends the context the current result was produced under, when
	// a policy gave that attempt a context of its own.
	cancel context.CancelFunc
}

func (e *callFrame[T]) call(ctx context.Context, index int) error {
	if index < len(e.p.policies) {
		return e.p.policies[index].Run(ctx, Next{exec: e, index: index + 1})
	}
	r, err := e.fn(ctx)
	if e.p.classify != nil {
		err = e.p.classify(r, err)
	}
	e.set(r)
	return err
}

// set replaces the result, discarding the superseded one. It leaves cancel
// alone: in a fork, cancel belongs to the fork's context, which later
// attempts in the same fork (a retry inside a hedge) still run under.
func (e *callFrame[T]) set(r T) {
	if e.hasResult && e.p.discard != nil {
		e.p.discard(e.result)
	}
	e.result, e.hasResult = r, true
}

// drop discards the current result and ends its context.
func (e *callFrame[T]) drop() {
	if e.hasResult && e.p.discard != nil {
		e.p.discard(e.result)
	}
	var zero T
	e.result, e.hasResult = zero, false
	if e.cancel != nil {
		e.cancel()
		e.cancel = nil
	}
}

func (e *callFrame[T]) setCancel(cancel context.CancelFunc) { e.cancel = cancel }

func (e *callFrame[T]) fork() execution {
	return &callFrame[T]{p: e.p, fn: e.fn}
}

func (e *callFrame[T]) adopt(from execution) {
	f := from.(*callFrame[T])
	if !f.hasResult {
		f.drop()
		return
	}
	e.set(f.result)
	if e.cancel != nil {
		e.cancel()
	}
	e.cancel = f.cancel
	var zero T
	f.result, f.hasResult, f.cancel = zero, false, nil
}

func (e *callFrame[T]) release() { e.drop() }

// PolicyFunc adapts a function to the Policy interface.
type PolicyFunc func(ctx context.Context, next Next) error

// Run calls f.
func (f PolicyFunc) Run(ctx context.Context, next Next) error { return f(ctx, next) }
