//go:build linux

package pollset

import (
	"os"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// A Watcher is told of its descriptor's events.
type Watcher interface {
	// Ready gets the events of one epoll_wait for the watcher's
	// descriptor (unix.EPOLLIN, unix.EPOLLRDHUP...), or 0 once when the
	// set closes with the watcher still in it. It runs on the set's
	// goroutine with the set locked: it must be short, must not wait,
	// and must not call the set. It reports whether the watch goes on;
	// false ends it as Remove would.
	Ready(events uint32) (keep bool)
}

// Set is one epoll instance, made with the first Add, whose events one
// goroutine, parked on Go's poller, hands to their watchers. The zero
// Set is ready to use; Close ends it and its goroutine.
type Set struct {
	mu   sync.Mutex
	epfd int      // the epoll instance, once the first watch was added
	f    *os.File // epfd, through the poller
	done chan struct{}
	// w holds the watches by slot, free the slots whose watch ended. A
	// watch's id is its slot's index in its low 32 bits and the slot's
	// generation (counted from 1, so no id is 0) in its high 32: an event
	// read before its watch ended names an older generation and finds no
	// watcher, even once the slot holds another watch. A slot costs a
	// watch 32 bytes where a map's entry cost about 80.
	w      []watch
	free   []uint32
	closed bool
}

type watch struct {
	w   Watcher // nil while the slot is free
	fd  int
	gen uint32
}

// lookup returns the slot of watch id while that watch is on.
func (s *Set) lookup(id uint64) (slot uint32, ok bool) {
	slot = uint32(id)
	if int(slot) >= len(s.w) {
		return 0, false
	}
	w := &s.w[slot]
	return slot, w.w != nil && w.gen == uint32(id>>32)
}

// end ends the watch in slot, freeing the slot for another, and returns
// what it watched.
func (s *Set) end(slot uint32) watch {
	w := s.w[slot]
	s.w[slot].w = nil
	s.free = append(s.free, slot)
	return w
}

// Add watches fd for events (an epoll event mask; unix.EPOLLET for
// edge-triggered events) and returns the watch's id for Remove. It
// reports false when the set is closed or epoll refused fd.
func (s *Set) Add(fd int, events uint32, w Watcher) (id uint64, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || (s.f == nil && !s.start()) {
		return 0, false
	}
	var slot uint32
	if n := len(s.free); n > 0 {
		slot = s.free[n-1]
	} else {
		slot = uint32(len(s.w))
		s.w = append(s.w, watch{})
		s.free = append(s.free, slot)
	}
	gen := s.w[slot].gen + 1
	if gen == 0 {
		gen = 1
	}
	id = uint64(slot) | uint64(gen)<<32
	ev := unix.EpollEvent{Events: events, Fd: int32(slot), Pad: int32(gen)}
	if unix.EpollCtl(s.epfd, unix.EPOLL_CTL_ADD, fd, &ev) != nil {
		return 0, false
	}
	s.free = s.free[:len(s.free)-1]
	s.w[slot] = watch{w, fd, gen}
	return id, true
}

// Remove ends the watch id of fd, which must still be open. It reports
// whether the watch was on (a watch that its watcher or Close ended is
// not).
func (s *Set) Remove(id uint64, fd int) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	slot, ok := s.lookup(id)
	if !ok || s.closed {
		return false
	}
	s.end(slot)
	unix.EpollCtl(s.epfd, unix.EPOLL_CTL_DEL, fd, nil)
	return true
}

// start makes the epoll instance and the goroutine that waits on it,
// which ends when Close closes the instance.
func (s *Set) start() bool {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return false
	}
	if unix.SetNonblock(epfd, true) != nil {
		unix.Close(epfd)
		return false
	}
	f := os.NewFile(uintptr(epfd), "pollset")
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return false
	}
	s.epfd, s.f, s.done = epfd, f, make(chan struct{})
	go s.run(rc)
	return true
}

// run waits for events until the instance is closed.
func (s *Set) run(rc syscall.RawConn) {
	defer close(s.done)
	var evs [64]unix.EpollEvent
	// wait hands out what the instance has and reports false, so that
	// the poller parks the goroutine until the instance's next edge:
	// once a wait returned fewer events than it had room for, every
	// event after it raises one (or came while it ran, and the poller
	// calls again at once). It returns only when the instance closes.
	wait := func(fd uintptr) bool {
		for {
			n, err := unix.EpollWait(int(fd), evs[:], 0)
			if err != nil || n == 0 {
				return false // nothing (or EINTR): the poller waits and calls again
			}
			s.ready(evs[:n])
			if n < len(evs) {
				return false
			}
		}
	}
	for rc.Read(wait) == nil {
	}
}

// ready hands events to their watchers.
func (s *Set) ready(evs []unix.EpollEvent) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, ev := range evs {
		id := uint64(uint32(ev.Fd)) | uint64(uint32(ev.Pad))<<32
		slot, ok := s.lookup(id)
		if !ok || s.closed {
			continue
		}
		if !s.w[slot].w.Ready(ev.Events) {
			w := s.end(slot)
			unix.EpollCtl(s.epfd, unix.EPOLL_CTL_DEL, w.fd, nil)
		}
	}
}

// Close ends the set and waits for its goroutine; each watcher still in
// it gets a last Ready(0). Add fails from then on.
func (s *Set) Close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	f, done := s.f, s.done
	for i := range s.w {
		if s.w[i].w != nil {
			s.end(uint32(i)).w.Ready(0)
		}
	}
	s.mu.Unlock()
	if f != nil {
		f.Close()
		<-done
	}
}
