//go:build linux

package pollset

import (
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// chanWatcher sends each event it is told of, and keeps watching while
// keep says so.
type chanWatcher struct {
	evs  chan uint32
	keep bool
}

func (w *chanWatcher) Ready(events uint32) bool {
	w.evs <- events
	return w.keep
}

func socketPair(t *testing.T) (int, int) {
	t.Helper()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fds[0]); unix.Close(fds[1]) })
	return fds[0], fds[1]
}

func next(t *testing.T, evs chan uint32) uint32 {
	t.Helper()
	select {
	case ev := <-evs:
		return ev
	case <-time.After(10 * time.Second):
		t.Fatal("no event")
		return 0
	}
}

func none(t *testing.T, evs chan uint32) {
	t.Helper()
	select {
	case ev := <-evs:
		t.Fatalf("an event %#x after its watch ended", ev)
	case <-time.After(50 * time.Millisecond):
	}
}

// TestSet: a watcher is told of each edge on its descriptor until it
// ends its watch (Ready's false) or Remove does; Close tells the
// watchers still in the set with Ready(0), and Add fails after it.
func TestSet(t *testing.T) {
	var s Set
	a, peerA := socketPair(t)
	b, peerB := socketPair(t)
	wa := &chanWatcher{evs: make(chan uint32, 8), keep: true}
	wb := &chanWatcher{evs: make(chan uint32, 8), keep: false}
	ida, ok := s.Add(a, unix.EPOLLIN|unix.EPOLLET, wa)
	if !ok {
		t.Fatal("Add refused a socket")
	}
	if _, ok := s.Add(b, unix.EPOLLIN|unix.EPOLLRDHUP|unix.EPOLLET, wb); !ok {
		t.Fatal("Add refused a socket")
	}
	for range 2 { // edge-triggered: each write is an edge, nothing read
		unix.Write(peerA, []byte("x"))
		if ev := next(t, wa.evs); ev&unix.EPOLLIN == 0 {
			t.Fatalf("event %#x, want EPOLLIN", ev)
		}
	}
	unix.Write(peerB, []byte("x"))
	next(t, wb.evs)
	unix.Write(peerB, []byte("y")) // wb ended its watch with its first event
	none(t, wb.evs)
	if !s.Remove(ida, a) || s.Remove(ida, a) {
		t.Fatal("Remove: want true for a watch on, false after")
	}
	unix.Write(peerA, []byte("z"))
	none(t, wa.evs)

	// The next watch takes a freed place under another id: the ended
	// watch's id does not end it.
	c, peerC := socketPair(t)
	wc := &chanWatcher{evs: make(chan uint32, 8), keep: true}
	idc, ok := s.Add(c, unix.EPOLLIN|unix.EPOLLET, wc)
	if !ok {
		t.Fatal("Add refused a socket")
	}
	if idc == ida || s.Remove(ida, c) {
		t.Fatalf("a new watch's id %#x: an ended watch's id (%#x) ends it", idc, ida)
	}
	unix.Write(peerC, []byte("x"))
	next(t, wc.evs)
	s.Close()
	if ev := next(t, wc.evs); ev != 0 {
		t.Fatalf("Close told a watcher %#x, want 0", ev)
	}
	if _, ok := s.Add(c, unix.EPOLLIN, wc); ok {
		t.Fatal("Add after Close succeeded")
	}
}
