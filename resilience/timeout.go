package resilience

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/relia-dev/relia/clock"
)

// TimeoutSettings configures a Timeout.
type TimeoutSettings struct {
	// Name names the policy instance in events and errors.
	Name string
	// Timeout is how long the rest of the pipeline may run; it must be
	// positive (there is no sensible default for it).
	Timeout time.Duration
	// Clock is the source of time; nil means real.
	Clock clock.Clock
	// Observer receives EventTimeout when the deadline passes, and
	// EventSuccess or EventFailure per call.
	Observer Observer
}

// Timeout bounds how long the rest of the pipeline may run. Where it stands
// decides what it bounds: inside a Retry (the recommended place, innermost)
// it bounds each attempt, and the Retry may try again; outermost it bounds
// the whole call, retries and backoffs included. Both may be used at once.
//
// The rest of the pipeline runs under a context whose deadline is the
// earlier of the caller's and the Timeout's. When the caller's deadline is
// the earlier one, the caller's context is passed on unchanged and its
// error (context.DeadlineExceeded) is what the caller gets. When the
// Timeout's deadline passes, the call returns a *TimeoutError matching both
// ErrTimeout and context.DeadlineExceeded — also when the function ignored
// its context and returned late, successfully or not.
//
// The context is relia's own, cheaper than context.WithTimeout: one
// allocation per call, and a timer (and the watch on the caller's context)
// only once someone asks for Done. It stays valid until its deadline, not
// merely until the policy returns, so that a result that still reads from
// it (an HTTP response body) can be read within the same time bound, as
// with http.Client's Timeout. Its timer, when there is one, stops at the
// deadline or when the caller's context ends.
//
// A Timeout is safe for concurrent use.
type Timeout struct {
	name     string
	timeout  time.Duration
	clock    clock.Clock
	observer Observer
	// err is returned by every timed-out call. It is immutable, so one
	// value serves all calls and a timeout costs no allocation.
	err *TimeoutError
}

var _ Policy = (*Timeout)(nil)

// NewTimeout returns a Timeout, or an error when the timeout is not
// positive.
func NewTimeout(s TimeoutSettings) (*Timeout, error) {
	if s.Timeout <= 0 {
		return nil, fmt.Errorf("timeout %q: timeout %s not positive", s.Name, s.Timeout)
	}
	return &Timeout{
		name:     s.Name,
		timeout:  s.Timeout,
		clock:    clock.OrReal(s.Clock),
		observer: s.Observer,
		err:      &TimeoutError{Name: s.Name, Limit: s.Timeout},
	}, nil
}

// Run runs next under the timeout.
func (t *Timeout) Run(ctx context.Context, next Next) error {
	now := t.clock.Now()
	deadline := now.Add(t.timeout)
	if pd, ok := ctx.Deadline(); ok && !pd.After(deadline) {
		// The caller's deadline comes first: its context already says
		// everything this one would, and its error is the right one.
		err := next.Call(ctx)
		if err == nil && ctx.Err() == context.DeadlineExceeded {
			// Late, having ignored the context: as with the Timeout's own
			// deadline, a result past the deadline is no result.
			err = context.DeadlineExceeded
		}
		t.observe(err, now)
		return err
	}
	tc := &timeoutCtx{parent: ctx, deadline: deadline, clock: t.clock}
	err := next.Call(tc)
	if tc.timedOut() {
		if t.observer != nil {
			t.observer.Observe(Event{Kind: EventTimeout, Policy: "timeout", Name: t.name, Duration: t.clock.Since(now)})
		}
		err = t.err
	}
	t.observe(err, now)
	return err
}

func (t *Timeout) observe(err error, start time.Time) {
	if t.observer == nil {
		return
	}
	kind := EventSuccess
	if err != nil {
		kind = EventFailure
	}
	t.observer.Observe(Event{Kind: kind, Policy: "timeout", Name: t.name, Duration: t.clock.Since(start)})
}

// TimeoutError is the error of a call whose Timeout passed. It matches
// ErrTimeout and context.DeadlineExceeded.
type TimeoutError struct {
	// Name is the Timeout policy's name.
	Name string
	// Limit is the policy's timeout.
	Limit time.Duration
}

// Error names the policy and its timeout.
func (e *TimeoutError) Error() string {
	s := "timeout"
	if e.Name != "" {
		s += " " + e.Name
	}
	return s + ": deadline of " + e.Limit.String() + " exceeded"
}

// Is matches ErrTimeout and context.DeadlineExceeded.
func (e *TimeoutError) Is(target error) bool {
	return target == ErrTimeout || target == context.DeadlineExceeded
}

// Timeout reports true, as net.Error's Timeout does.
func (e *TimeoutError) Timeout() bool { return true }

// timeoutCtx is a context with a deadline on an injected clock, built for
// the hot path: the struct is its only allocation until Done is called.
// Done creates the channel, a clock timer for the deadline and, when the
// parent can end, a context.AfterFunc on it.
type timeoutCtx struct {
	parent   context.Context
	deadline time.Time
	clock    clock.Clock

	done atomic.Value // chan struct{}, set once by Done

	mu  sync.Mutex
	err error // set once the context ended; never reset
	// expired is true when the context ended by its own deadline rather
	// than by the parent's end.
	expired bool
	timer   clock.Timer
	stop    func() bool // unregisters the watch on the parent
}

func (c *timeoutCtx) Deadline() (time.Time, bool) { return c.deadline, true }

func (c *timeoutCtx) Value(key any) any { return c.parent.Value(key) }

func (c *timeoutCtx) String() string {
	return fmt.Sprintf("resilience.Timeout(%v).WithDeadline(%s)", c.parent, c.deadline)
}

// Err reports why the context ended. Without a timer it consults the clock
// and the parent itself, so a context nobody asked Done of still ends on
// time.
func (c *timeoutCtx) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.checkLocked()
}

// checkLocked ends the context if its parent ended or its deadline passed
// and returns its error. c.mu must be held.
func (c *timeoutCtx) checkLocked() error {
	if c.err != nil {
		return c.err
	}
	if err := c.parent.Err(); err != nil {
		c.endLocked(err)
	} else if !c.clock.Now().Before(c.deadline) {
		c.expired = true
		c.endLocked(context.DeadlineExceeded)
	}
	return c.err
}

// endLocked ends the context with err: Err returns it, Done is closed, and
// the timer and the watch on the parent are released. c.mu must be held.
func (c *timeoutCtx) endLocked(err error) {
	c.err = err
	// Release first, close last: whoever sees Done closed finds the timer
	// and the watch on the parent already gone.
	if c.timer != nil {
		c.timer.Stop()
		c.timer = nil
	}
	if c.stop != nil {
		c.stop()
		c.stop = nil
	}
	if d, ok := c.done.Load().(chan struct{}); ok {
		close(d)
	}
}

// Done returns a channel closed when the deadline passes or the parent
// ends. The first call arms a timer on the clock and a watch on the parent.
func (c *timeoutCtx) Done() <-chan struct{} {
	if d, ok := c.done.Load().(chan struct{}); ok {
		return d
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if d, ok := c.done.Load().(chan struct{}); ok {
		return d
	}
	d := make(chan struct{})
	if c.checkLocked() != nil {
		// Ended already, before anyone held a channel to close: hand out a
		// closed one and arm nothing.
		close(d)
		c.done.Store(d)
		return d
	}
	c.done.Store(d)
	c.timer = c.clock.AfterFunc(c.deadline.Sub(c.clock.Now()), c.expire)
	if c.parent.Done() != nil {
		c.stop = context.AfterFunc(c.parent, c.parentDone)
	}
	return d
}

// expire is the timer's callback.
func (c *timeoutCtx) expire() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err == nil {
		c.expired = true
		c.endLocked(context.DeadlineExceeded)
	}
}

// parentDone is the watch on the parent.
func (c *timeoutCtx) parentDone() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err == nil {
		c.endLocked(c.parent.Err())
	}
}

// timedOut reports whether the context ended, or would have ended, by its
// own deadline rather than the parent's end.
func (c *timeoutCtx) timedOut() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.checkLocked()
	return c.expired
}
