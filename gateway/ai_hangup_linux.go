//go:build linux

package gateway

import (
	"os"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// hangUps notices, while AI answers stream on HTTP/1.1 connections, that
// their clients closed them: one epoll instance holds every streaming
// connection's socket, edge-triggered, for the end of the client's side
// (EPOLLRDHUP: its FIN came) or the connection's loss (a reset), and one
// goroutine waits for it through the runtime's poller. A hang-up cancels
// the call at once, which stops the provider's stream, instead of at the
// next write; Go's HTTP server treats a client's end of stream the same
// way. Bytes that arrive (the client's next request, or TLS records such
// as its close_notify) are not a hang-up and stay where the connection's
// reader finds them: nothing is read. One watch for all streams costs a
// stream an epoll entry rather than a goroutine and its stack
// (docs/benchmarks.md, "AI gateway vs Portkey").
type hangUps struct {
	mu   sync.Mutex
	epfd int      // the epoll instance, once the first stream was watched
	f    *os.File // epfd, through the poller
	done chan struct{}
	// next is the next watch's id (never 0, never reused: an event read
	// before its watch ended finds no writer).
	next   uint64
	w      map[uint64]*aiWriter
	closed bool
}

// watchHangUp puts a streaming answer's connection in the gateway's
// watch; unwatch takes it out before the connection is read again.
func (w *aiWriter) watchHangUp() {
	c := w.c
	if c == nil || !w.x.req.bodyDone {
		return
	}
	sc, ok := c.nc.(syscall.Conn)
	if !ok {
		return
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return
	}
	rc.Control(func(fd uintptr) { w.g.hangUps.add(w, int(fd)) })
}

// unwatch takes the connection out of the watch.
func (w *aiWriter) unwatch() {
	if w.watchID != 0 {
		w.g.hangUps.remove(w.watchID, w.watchFd)
		w.watchID = 0
	}
}

// add watches fd for w, starting the watch with its first stream.
func (h *hangUps) add(w *aiWriter, fd int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed || (h.f == nil && !h.start()) {
		return
	}
	h.next++
	id := h.next
	ev := unix.EpollEvent{Events: unix.EPOLLRDHUP | unix.EPOLLET, Fd: int32(uint32(id)), Pad: int32(uint32(id >> 32))}
	if unix.EpollCtl(h.epfd, unix.EPOLL_CTL_ADD, fd, &ev) != nil {
		return
	}
	h.w[id] = w
	w.watchID, w.watchFd = id, fd
}

// start makes the epoll instance and the goroutine that waits on it,
// which ends when close closes the instance.
func (h *hangUps) start() bool {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return false
	}
	if unix.SetNonblock(epfd, true) != nil {
		unix.Close(epfd)
		return false
	}
	f := os.NewFile(uintptr(epfd), "ai-hangups")
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return false
	}
	h.epfd, h.f, h.done, h.w = epfd, f, make(chan struct{}), make(map[uint64]*aiWriter)
	go h.run(rc)
	return true
}

// run waits for hang-ups until the instance is closed.
func (h *hangUps) run(rc syscall.RawConn) {
	defer close(h.done)
	var evs [64]unix.EpollEvent
	wait := func(fd uintptr) bool {
		n, err := unix.EpollWait(int(fd), evs[:], 0)
		if err != nil || n == 0 {
			return false // nothing yet (or EINTR): the poller waits and calls again
		}
		h.ended(evs[:n])
		return true
	}
	for rc.Read(wait) == nil {
	}
}

// ended cancels the calls whose clients hung up.
func (h *hangUps) ended(evs []unix.EpollEvent) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, ev := range evs {
		id := uint64(uint32(ev.Fd)) | uint64(uint32(ev.Pad))<<32
		w, ok := h.w[id]
		if !ok || ev.Events&(unix.EPOLLRDHUP|unix.EPOLLHUP|unix.EPOLLERR) == 0 {
			continue
		}
		delete(h.w, id)
		unix.EpollCtl(h.epfd, unix.EPOLL_CTL_DEL, w.watchFd, nil)
		w.hungUp.Store(true)
		w.cancel()
	}
}

// remove ends the watch id of fd, which is still open.
func (h *hangUps) remove(id uint64, fd int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.w[id]; ok && !h.closed {
		delete(h.w, id)
		unix.EpollCtl(h.epfd, unix.EPOLL_CTL_DEL, fd, nil)
	}
}

// close ends the watch and waits for its goroutine.
func (h *hangUps) close() {
	h.mu.Lock()
	h.closed = true
	f, done := h.f, h.done
	h.mu.Unlock()
	if f != nil {
		f.Close()
		<-done
	}
}
