// Package callctx is a cancellable context for calls that stay open long
// and in great numbers: the AI gateway's streams, 10,000 of which may
// wait for their providers at once. It ends once, with a cause, by its
// own Cancel or by its parent's end, as a context.WithCancelCause would;
// what it does not do is hold, for each level, the map of children and
// the done channel that a context.WithCancelCause keeps from its first
// child on. What runs at its end is a short slice of Hooks, let go of
// when empty: a Context made from another is itself its hook in it (no
// goroutine, no closure), a type of the caller's own may be one
// (AddHook), and contexts of the context package made from it
// (context.WithDeadline in a dial, context.AfterFunc) hook in through
// its AfterFunc method, which that package uses for contexts that have
// one. Its done channel is made only when Done is called.
//
//	ctx := callctx.New(parent)
//	defer ctx.Cancel(context.Canceled)
//	timer := clk.AfterFunc(d, func() { ctx.Cancel(errTimeout) })
//	if held := callctx.AddHook(ctx, body); held != nil { // body.ContextEnded(cause) at the end
//		defer held.RemoveHook(body)
//	}
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
	// unhook takes this one's hook out of a parent that is not a
	// Context (nor values over one); in one that is, the hook is this
	// Context itself (up).
	unhook func() bool
	mu     sync.Mutex
	// done is made by the first Done (closed when the context ends);
	// an ended context without one answers Done with closed.
	done  chan struct{}
	cause error
	hooks []Hook
}

// Hook is what a Context runs when it ends (AddHook): a type of the
// caller's own that knows what to do, so that hooking in costs no
// closure. ContextEnded runs once, on the goroutine that ends the
// Context, and must not wait. A Context is the Hook of the Contexts
// made from it.
type Hook interface {
	ContextEnded(cause error)
}

// ContextEnded ends c with the cause of the Context it is made from.
func (c *Context) ContextEnded(cause error) { c.Cancel(cause) }

// funcHook is a function that AfterFunc registered.
type funcHook struct{ f func() }

func (h *funcHook) ContextEnded(error) { h.f() }

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
// one, holds the new one among its hooks; any other parent holds what
// context.AfterFunc takes.
func New(parent context.Context) *Context {
	c := &Context{parent: parent}
	p := hooking(parent)
	if p == nil {
		if parent.Done() != nil {
			unhook := AfterFunc(parent, func() { c.Cancel(Cause(parent)) })
			// A parent that ended already runs the hook on a goroutine of
			// its own at once, whose Cancel may come before this store:
			// both take the lock, and an ended c needs no unhook.
			c.mu.Lock()
			if c.cause == nil {
				c.unhook = unhook
			}
			c.mu.Unlock()
		}
		return c
	}
	if !p.add(c) {
		c.cause = p.Cause() // it ended already
	}
	return c
}

// hooking returns the Context that ends ctx, when ctx is one or values
// over one; nil otherwise.
func hooking(ctx context.Context) *Context {
	if p, ok := ctx.(*Context); ok {
		return p
	}
	done := ctx.Done()
	if done == nil {
		return nil
	}
	if p, ok := ctx.Value(key{}).(*Context); ok && p.Done() == done {
		return p
	}
	return nil
}

// up returns the Context that may hold c among its hooks: its parent,
// or the Context its parent's values are over.
func (c *Context) up() *Context {
	if p, ok := c.parent.(*Context); ok {
		return p
	}
	p, _ := c.parent.Value(key{}).(*Context)
	return p
}

// AddHook has h run when ctx ends, and returns the Context that holds
// it, for RemoveHook; nil when ctx is neither a Context nor values over
// one (the caller watches it some other way: context.AfterFunc), or
// when ctx ended already (h does not run).
func AddHook(ctx context.Context, h Hook) *Context {
	if p := hooking(ctx); p != nil && p.add(h) {
		return p
	}
	return nil
}

// RemoveHook takes h out of c's hooks and reports whether it was there
// (false once c ended and ran it).
func (c *Context) RemoveHook(h Hook) bool { return c.remove(h) }

// add registers h, unless c ended, and reports whether it did.
func (c *Context) add(h Hook) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cause != nil {
		return false
	}
	c.hooks = append(c.hooks, h)
	return true
}

// remove unregisters h and reports whether it was registered.
func (c *Context) remove(h Hook) bool {
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
	if unhook != nil {
		unhook()
	} else if up := c.up(); up != nil {
		up.remove(c) // a no-op when up's end is what ends c
	}
	for _, h := range hooks {
		h.ContextEnded(cause)
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
	h := &funcHook{f: f}
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
