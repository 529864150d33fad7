//go:build linux

package gateway

import (
	"sync/atomic"
	"syscall"

	"github.com/relia-dev/relia/internal/pollset"
	"golang.org/x/sys/unix"
)

// hangUps notices, while AI answers stream on HTTP/1.1 connections, that
// their clients closed them: one epoll instance (a pollset.Set) holds
// every streaming connection's socket, edge-triggered, for the end of
// the client's side (EPOLLRDHUP: its FIN came) or the connection's loss
// (a reset). A hang-up cancels the call at once, which stops the
// provider's stream, instead of at the next write; Go's HTTP server
// treats a client's end of stream the same way. Bytes that arrive (the
// client's next request, or TLS records such as its close_notify) are
// not a hang-up and stay where the connection's reader finds them:
// nothing is read. One watch for all streams costs a stream an epoll
// entry rather than a goroutine and its stack (docs/benchmarks.md, "AI
// gateway vs Portkey").
type hangUps struct {
	set pollset.Set
	// watched counts the answers put in the watch.
	watched atomic.Uint64
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
	rc.Control(func(fd uintptr) {
		if id, ok := w.g.hangUps.set.Add(int(fd), unix.EPOLLRDHUP|unix.EPOLLET, w); ok {
			w.watchID, w.watchFd = id, int(fd)
			w.g.hangUps.watched.Add(1)
		}
	})
}

// unwatch takes the connection out of the watch.
func (w *aiWriter) unwatch() {
	if w.watchID != 0 {
		w.g.hangUps.set.Remove(w.watchID, w.watchFd)
		w.watchID = 0
	}
}

// Ready cancels the call whose client hung up, and ends its watch
// (pollset.Watcher).
func (w *aiWriter) Ready(events uint32) bool {
	if events&(unix.EPOLLRDHUP|unix.EPOLLHUP|unix.EPOLLERR) == 0 {
		return true
	}
	w.hungUp.Store(true)
	w.cancelCall()
	return false
}

// close ends the watch and waits for its goroutine.
func (h *hangUps) close() { h.set.Close() }
