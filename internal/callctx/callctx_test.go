package callctx

import (
	"context"
	"errors"
	"testing"
)

var errWhy = errors.New("why")

func ended(ctx context.Context) bool {
	select {
	case <-ctx.Done():
		return true
	default:
		return false
	}
}

func TestCancel(t *testing.T) {
	t.Parallel()
	c := New(context.Background())
	if c.unhook != nil || c.up() != nil || hooking(c.parent) != nil {
		t.Error("a context made from Background holds a hook in it")
	}
	done := c.Done() // asked before the end: closed by Cancel
	calls := 0
	c.AfterFunc(func() { calls++ })
	if c.Err() != nil || Cause(c) != nil || ended(c) {
		t.Fatal("the context ended before Cancel")
	}
	c.Cancel(errWhy)
	c.Cancel(context.Canceled) // the first cause stays
	select {
	case <-done:
	default:
		t.Error("Done's channel is open after Cancel")
	}
	if !ended(c) || c.Err() != context.Canceled || Cause(c) != errWhy || calls != 1 {
		t.Errorf("after Cancel: ended %v, Err %v, Cause %v, hook calls %d; want true, context.Canceled, %v, 1", ended(c), c.Err(), Cause(c), calls, errWhy)
	}
	ran := make(chan struct{})
	if c.AfterFunc(func() { close(ran) })() {
		t.Error("stop of a hook on an ended context reports it stopped it")
	}
	<-ran // run on a goroutine of its own
}

func TestParentContext(t *testing.T) {
	t.Parallel()
	p := New(context.Background())
	c := New(p)
	if len(p.hooks) != 1 {
		t.Fatalf("the parent holds %d hooks, want 1", len(p.hooks))
	}
	c.Cancel(nil)
	if p.Err() != nil || c.Cause() != context.Canceled {
		t.Errorf("a child's Cancel: parent's Err %v, child's cause %v", p.Err(), c.Cause())
	}
	if p.hooks != nil {
		t.Errorf("the parent holds %d hooks after its child ended, want none", len(p.hooks))
	}
	if late := New(c); late.Cause() != context.Canceled || c.hooks != nil {
		t.Errorf("made from an ended Context: cause %v, want %v", late.Cause(), context.Canceled)
	}
	c2 := New(context.WithValue(p, key{}, p)) // values over the parent
	c3 := New(context.WithValue(p, errWhy, 1))
	if len(p.hooks) != 2 {
		t.Fatalf("values over the parent: it holds %d hooks, want 2", len(p.hooks))
	}
	p.Cancel(errWhy)
	if c2.Cause() != errWhy || c3.Cause() != errWhy {
		t.Errorf("the children's causes are %v and %v, want the parent's %v", c2.Cause(), c3.Cause(), errWhy)
	}
}

// TestStandardChildren: contexts of the context package made from a
// Context end with it and hold a hook in it rather than a goroutine.
func TestStandardChildren(t *testing.T) {
	t.Parallel()
	c := New(context.Background())
	child, cancel := context.WithCancel(context.WithValue(c, errWhy, 1))
	cancel()
	if c.hooks != nil {
		t.Fatalf("a cancelled child left %d hooks", len(c.hooks))
	}
	own, cancelOwn := context.WithCancelCause(c)
	cancelOwn(context.DeadlineExceeded) // ends before c
	child, cancel = context.WithCancel(c)
	defer cancel()
	stopped := make(chan struct{})
	context.AfterFunc(c, func() { close(stopped) })
	if len(c.hooks) != 2 {
		t.Fatalf("a child and an AfterFunc hold %d hooks, want 2", len(c.hooks))
	}
	c.Cancel(errWhy)
	<-stopped
	if !ended(child) || Cause(child) != errWhy {
		t.Errorf("the child: ended %v, cause %v", ended(child), Cause(child))
	}
	if Cause(context.WithValue(c, errWhy, 2)) != errWhy {
		t.Error("Cause of values over the context is not its cause")
	}
	if Cause(own) != context.DeadlineExceeded {
		t.Errorf("a child's own cause: %v, want %v", Cause(own), context.DeadlineExceeded)
	}
}

func TestStandardParent(t *testing.T) {
	t.Parallel()
	p, cancel := context.WithCancelCause(context.Background())
	c := New(p)
	d := New(c)
	cancel(errWhy)
	<-d.Done()
	if c.Cause() != errWhy || d.Cause() != errWhy {
		t.Errorf("causes %v and %v, want the parent's %v", c.Cause(), d.Cause(), errWhy)
	}
	if c.Value(errWhy) != nil || context.WithValue(c, errWhy, 3).Value(errWhy) != 3 {
		t.Error("values are not the parent's")
	}
	late := New(p) // made from an ended parent
	<-late.Done()
	if late.Cause() != errWhy {
		t.Errorf("made from an ended parent: cause %v, want %v", late.Cause(), errWhy)
	}
}

// countHook counts its runs and keeps the last cause.
type countHook struct {
	runs  int
	cause error
}

func (h *countHook) ContextEnded(cause error) { h.runs, h.cause = h.runs+1, cause }

func TestAddHook(t *testing.T) {
	t.Parallel()
	c := New(context.Background())
	kept, removed := new(countHook), new(countHook)
	if AddHook(context.WithValue(c, errWhy, 1), kept) != c || AddHook(c, removed) != c {
		t.Fatal("a Context, or values over one, did not take a hook")
	}
	if !c.RemoveHook(removed) || c.RemoveHook(removed) {
		t.Error("RemoveHook: want true once, then false")
	}
	std, cancel := context.WithCancel(context.Background())
	defer cancel()
	if AddHook(std, new(countHook)) != nil || AddHook(context.Background(), new(countHook)) != nil {
		t.Error("a context of the context package took a hook")
	}
	c.Cancel(errWhy)
	if kept.runs != 1 || kept.cause != errWhy || removed.runs != 0 {
		t.Errorf("hooks after Cancel: kept ran %d times with %v, removed %d times; want 1 with %v, 0", kept.runs, kept.cause, removed.runs, errWhy)
	}
	if AddHook(c, new(countHook)) != nil || c.RemoveHook(kept) {
		t.Error("an ended Context took a hook, or still held one")
	}
}
