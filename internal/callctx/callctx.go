// Package callctx is a cancellable context for calls that stay open long
// and in great numbers: the AI gateway's streams, 10,000 of which may
// wait for their providers at once. It ends once, with a cause, by its
// own Cancel or by its parent's end, as a context.WithCancelCause would;
// what it does not do is hold, for each level, the map of children and
// the done channel that a context.WithCancelCause keeps from its first
// child on. Contexts made from it (context.WithDeadline in a dial,
// context.AfterFunc) hook into it through its AfterFunc method, which
// the context package uses for contexts that have one, and the hooks
// are a short slice let go of when empty; its done channel is made only
// when Done is called. A Context made from another keeps a hook in it
// and no goroutine.
//
//	ctx := callctx.New(parent)
//	defer ctx.Cancel(context.Canceled)
//	timer := clk.AfterFunc(d, func() { ctx.Cancel(errTimeout) })
//	...
//	if errors.Is(callctx.Cause(ctx), errTimeout) { ... }
package callctx

import (
	"context"
	"slices"
	"sync"
	"time"
)

// Context is a context that ends with a cause when Cancel is called or
// its parent ends. Its Err is context.Canceled once it ended.
type Context struct {
	parent context.Context
	// link is this one's hook in the Context it is made from (directly
	// or through values; link.child is set while it is there), unhook
	// takes its hook out of a parent of another kind.
	link   hook
	unhook func() bool
	mu     sync.Mutex
	// done is made by the first Done (closed when the context ends);
	// an ended context without one answers Done with closed.
	done  chan struct{}
	cause error
	hooks []*hook
}

// hook is what runs when a Context ends: a function AfterFunc
// registered, or a Context made from it (its link, so that a child
// costs its parent one pointer).
type hook struct {
	f     func()
	child *Context
}

// closed is the done channel of contexts that ended before one asked
// for theirs.
var closed = func() chan struct{} {
	c := make(chan struct{})
	close(c)
	return c
}()

// key is the key under which a Context answers Value with itself, so
// that Cause finds the nearest one.
type key struct{}

// New returns a Context that ends when parent does (with parent's
// cause), or at Cancel. A parent that never ends (context.Background,
// values over it) costs nothing; one that is a Context, or values over
// one, holds a pointer to the new one; any other parent holds what
// context.AfterFunc takes.
func New(parent context.Context) *Context {
	c := &Context{parent: parent}
	p, ok := parent.(*Context)
	if !ok {
		done := parent.Done()
		if done == nil {
			return c
		}
		if p, ok = parent.Value(key{}).(*Context); !ok || p.Done() != done {
			// Not values over a Context: context.AfterFunc watches it.
			c.unhook = AfterFunc(parent, func() { c.Cancel(Cause(parent)) })
			return c
		}
	}
	c.link.child = c
	if !p.add(&c.link) {
		c.link.child = nil
		c.cause = p.Cause() // it ended already
	}
	return c
}

// up returns the Context that holds c's link, if any: its parent, or
// the Context its parent's values are over.
func (c *Context) up() *Context {
	if c.link.child == nil {
		return nil
	}
	if p, ok := c.parent.(*Context); ok {
		return p
	}
	p, _ := c.parent.Value(key{}).(*Context)
	return p
}

// add registers h, unless c ended, and reports whether it did.
func (c *Context) add(h *hook) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cause != nil {
		return false
	}
	c.hooks = append(c.hooks, h)
	return true
}

// remove unregisters h and reports whether it was registered.
func (c *Context) remove(h *hook) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	i := slices.Index(c.hooks, h)
	if i < 0 {
		return false
	}
	c.hooks = slices.Delete(c.hooks, i, i+1)
	if len(c.hooks) == 0 {
		c.hooks = nil // a waiting call holds no empty array
	}
	return true
}

// AfterFunc arranges for f to be called once ctx ended, as
// context.AfterFunc does, through ctx's own AfterFunc when it has one
// (a Context's runs f on the goroutine that cancelled it: f must not
// wait); stop unhooks it and reports whether it did so before f was
// started.
func AfterFunc(ctx context.Context, f func()) (stop func() bool) {
	if a, ok := ctx.(interface{ AfterFunc(func()) func() bool }); ok {
		return a.AfterFunc(f)
	}
	return context.AfterFunc(ctx, f)
}

// Cause returns why ctx ended: context.Cause(ctx) when that names more
// than ctx's Err, else the cause given to the Cancel of the nearest
// Context that ctx is or is made from, when that one ended (a context
// of the context package made from a Context sees only its Err); nil
// while ctx has not ended.
func Cause(ctx context.Context) error {
	if c, ok := ctx.(*Context); ok {
		return c.Cause()
	}
	err := ctx.Err()
	if err == nil {
		return nil
	}
	if cause := context.Cause(ctx); cause != err {
		return cause
	}
	if c, ok := ctx.Value(key{}).(*Context); ok {
		if cause := c.Cause(); cause != nil {
			return cause
		}
	}
	return err
}

// Cancel ends the context with cause (context.Canceled when nil), unless
// it ended already; its hooks, and the contexts made from it, run and
// end on this goroutine before Cancel returns.
func (c *Context) Cancel(cause error) {
	if cause == nil {
		cause = context.Canceled
	}
	c.mu.Lock()
	if c.cause != nil {
		c.mu.Unlock()
		return
	}
	c.cause = cause
	if c.done != nil {
		close(c.done)
	}
	hooks, unhook := c.hooks, c.unhook
	c.hooks, c.unhook = nil, nil
	c.mu.Unlock()
	if up := c.up(); up != nil {
		up.remove(&c.link) // a no-op when up's end is what ends c
	}
	if unhook != nil {
		unhook()
	}
	for _, h := range hooks {
		if h.child != nil {
			h.child.Cancel(cause)
		} else {
			h.f()
		}
	}
}

// Cause returns the cause the context ended with; nil while it has not
// ended.
func (c *Context) Cause() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cause
}

// AfterFunc arranges for f to be called once the context ended: on the
// goroutine that cancels it (f must not wait), or on a goroutine of its
// own when it ended already. stop unhooks f and reports whether it did
// so before f was called. The context package hooks the contexts made
// from c in here.
func (c *Context) AfterFunc(f func()) (stop func() bool) {
	h := &hook{f: f}
	if !c.add(h) {
		go f()
		return func() bool { return false }
	}
	return func() bool { return c.remove(h) }
}

// Deadline is the parent's.
func (c *Context) Deadline() (time.Time, bool) { return c.parent.Deadline() }

// Done returns a channel closed when the context ends, made by the
// first call.
func (c *Context) Done() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.done == nil {
		if c.cause != nil {
			return closed
		}
		c.done = make(chan struct{})
	}
	return c.done
}

// Err is context.Canceled once the context ended, nil before.
func (c *Context) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cause != nil {
		return context.Canceled
	}
	return nil
}

// Value is the parent's, except that of the key Cause looks for.
func (c *Context) Value(k any) any {
	if k == (key{}) {
		return c
	}
	return c.parent.Value(k)
}

// String names the context as the context package's do.
func (c *Context) String() string { return "callctx.New" }

var _ context.Context = (*Context)(nil)
