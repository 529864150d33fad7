//go:build linux && !386

package ai

import (
	"sync/atomic"
	"syscall"
	"unsafe"

	"github.com/relia-dev/relia/internal/pollset"
	"golang.org/x/sys/unix"
)

// waitReadable waits until the provider's connection has bytes to read,
// its end of stream, or an error (the read deadline a cancellation sets
// included: the read that follows reports it), unless what the body
// would read next is already at hand. A stream that Serve relays (its
// host took no HandOff) waits for its next event here, a few frames
// below relayStream, instead of at the bottom of the decoder's reads:
// the collector shrinks a waiting goroutine's stack only when under a
// quarter of it is in use (docs/benchmarks.md, "AI gateway vs
// Portkey"). The read that follows finds the bytes and does not wait.
func (b *upstreamBody) waitReadable() {
	if !b.resp.Body.Waits() {
		return
	}
	if b.peekFn == nil {
		rc, ok := b.rawConn()
		if !ok {
			return
		}
		b.rc = rc
		b.peekFn = func(fd uintptr) bool { return peekReady(fd, &b.peek) }
	}
	// Nothing is buffered: the connection's read buffer waits in a pool
	// meanwhile.
	uc := b.resp.Conn()
	parked := uc.ParkReadBuffer()
	b.rc.Read(b.peekFn)
	if parked {
		uc.UnparkReadBuffer()
	}
}

// rawConn is the provider connection's socket, for system calls of
// relia's own on it.
func (b *upstreamBody) rawConn() (syscall.RawConn, bool) {
	sc, ok := b.resp.Conn().Net().(syscall.Conn)
	if !ok {
		return nil, false
	}
	rc, err := sc.SyscallConn()
	return rc, err == nil
}

// socketReadable reports whether the provider's socket holds bytes (or
// its end, or an error) that a read would return without waiting.
func (b *upstreamBody) socketReadable() bool {
	rc, ok := b.rawConn()
	if !ok {
		return false
	}
	ready := false
	rc.Control(func(fd uintptr) { ready = peekReady(fd, &b.peek) })
	return ready
}

// peekReady reports whether the socket fd has a byte to read, its end of
// stream or an error, without waiting or taking the byte.
func peekReady(fd uintptr, p *[1]byte) bool {
	_, _, e := syscall.RawSyscall6(syscall.SYS_RECVFROM, fd, uintptr(unsafe.Pointer(&p[0])), 1,
		syscall.MSG_PEEK|syscall.MSG_DONTWAIT, 0, 0)
	return e != syscall.EAGAIN && e != syscall.EINTR
}

// streamWaits is the service's epoll set of handed-off streams that wait
// for their providers' next bytes with no goroutine (Relay).
type streamWaits struct {
	pollset.Set
}

// relayWait is a handed-off stream's place in its service's streamWaits.
type relayWait struct {
	// id and fd are the stream's watch, once its first wait made it
	// (fd an int32: the relay then fits the 80-byte size class).
	id uint64
	fd int32
	// state says who has the relay: a Run (relayRunning), a Run that
	// an event told to look again before it waits (relayNotified), or
	// nobody, while the stream waits (relayWaiting).
	state atomic.Int32
	// closed: the set closed with the stream in it; it waits on its
	// goroutine from then on.
	closed atomic.Bool
	// bufParked: the provider connection's read buffer waits in its
	// pool while the stream does.
	bufParked bool
}

const (
	relayRunning int32 = iota
	relayNotified
	relayWaiting
)

// park readies the stream to wait for its provider's next bytes with
// no goroutine and reports true: the caller returns at once and Run
// reports false. It reports false when the next bytes are already at
// hand, or when the stream cannot wait so (another kind of body, the
// set closed), after waiting for them on this goroutine.
func (r *Relay) park() bool {
	b, ok := r.o.body.(*upstreamBody)
	if !ok || !b.resp.Body.Waits() {
		return false // other bodies wait in the decoder's read
	}
	if r.wait.closed.Load() || (r.wait.id == 0 && !r.watch(b)) {
		b.waitReadable()
		return false
	}
	w := &r.wait
	uc := b.resp.Conn()
	for {
		// A cancellation (the call's or an idle timeout) set a read
		// deadline that the read which follows reports.
		if b.cancelled.Load() || peekReady(uintptr(w.fd), &b.peek) {
			return false
		}
		w.bufParked = uc.ParkReadBuffer()
		r.o.dec.idle()
		r.sw.idle()
		if w.state.CompareAndSwap(relayRunning, relayWaiting) {
			// From here another goroutine may run the relay: wake saw
			// the stream waiting. Unless a cancellation came meanwhile
			// and this goroutine takes the relay back first.
			if !b.cancelled.Load() || !w.state.CompareAndSwap(relayWaiting, relayRunning) {
				return true
			}
		} else {
			w.state.Store(relayRunning) // bytes came while it looked: look again
		}
		r.resumed()
	}
}

// watch puts the stream's provider connection in the service's set,
// edge-triggered for bytes, its end or its loss, and has a cancellation
// of its call wake it too. It reports false when the set refused it.
func (r *Relay) watch(b *upstreamBody) bool {
	rc, ok := b.rawConn()
	if !ok {
		return false
	}
	fd := -1
	rc.Control(func(f uintptr) { fd = int(f) })
	id, ok := r.s.waits.Add(fd, unix.EPOLLIN|unix.EPOLLRDHUP|unix.EPOLLET, (*relayWatcher)(r))
	if !ok {
		return false
	}
	r.wait.id, r.wait.fd = id, int32(fd)
	b.mu.Lock()
	b.waker = (*relayWatcher)(r)
	b.mu.Unlock()
	return true
}

// unwatch takes the ended stream out of the set, before its connection
// is closed or kept for another call.
func (r *Relay) unwatch() {
	if r.wait.id == 0 {
		return
	}
	r.s.waits.Remove(r.wait.id, int(r.wait.fd))
	r.wait.id = 0
	if b, ok := r.o.body.(*upstreamBody); ok {
		b.mu.Lock()
		b.waker = nil
		b.mu.Unlock()
	}
}

// resumed gives the provider connection its read buffer back as a Run
// takes the relay, and the stream's writer a buffer.
func (r *Relay) resumed() {
	r.sw.busy()
	if r.wait.bufParked {
		r.wait.bufParked = false
		r.o.body.(*upstreamBody).resp.Conn().UnparkReadBuffer()
	}
}

// relayWatcher is a Relay as its service's set and its body's
// cancellation see it.
type relayWatcher Relay

// Ready wakes the stream on its provider connection's events, and for
// good when the set closes (pollset.Watcher).
func (rw *relayWatcher) Ready(events uint32) bool {
	if events == 0 {
		rw.wait.closed.Store(true)
	}
	rw.wake()
	return true
}

// wake has a new goroutine run the relay on when the stream waits, or
// tells the Run under way to look again before it waits.
func (rw *relayWatcher) wake() {
	w := &rw.wait
	for {
		switch w.state.Load() {
		case relayWaiting:
			if w.state.CompareAndSwap(relayWaiting, relayRunning) {
				go rw.resume()
				return
			}
		case relayRunning:
			if w.state.CompareAndSwap(relayRunning, relayNotified) {
				return
			}
		default:
			return
		}
	}
}
