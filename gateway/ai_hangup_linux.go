//go:build linux

package gateway

import (
	"syscall"
	"time"
)

// watchHangUp notices, while an AI answer streams on a plain-text
// HTTP/1.1 connection, that the client closed it: a goroutine waits on
// the poller for the connection to become readable and peeks at it, so a
// pipelined request's bytes stay where the connection's reader finds
// them. End of stream (or a reset) cancels the call at once, which stops
// the provider's stream, instead of at the next write. Bytes to read
// (the client's next request) end the watch: the client is there. Go's
// HTTP server treats a client's end of stream the same way. TLS
// connections are not watched: their bytes are records, not requests.
// unwatch ends the goroutine before the connection is read again.
func (w *aiWriter) watchHangUp() {
	c := w.c
	if c == nil || c.tls || !w.x.req.bodyDone || len(c.rd.Buffered()) > 0 {
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
	done := make(chan struct{})
	w.watch = done
	go func() {
		defer close(done)
		var b [1]byte
		gone := false
		rc.Read(func(fd uintptr) bool {
			n, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
			switch {
			case err == syscall.EAGAIN || err == syscall.EINTR:
				return false // wait for the poller
			case err != nil || n == 0:
				gone = true
			}
			return true
		})
		if gone {
			w.hungUp.Store(true)
			w.cancel()
		}
	}()
}

// unwatch ends watchHangUp's goroutine and waits for it.
func (w *aiWriter) unwatch() {
	if w.watch == nil {
		return
	}
	w.c.setReadDeadline(time.Unix(1, 0)) // through the conn: the wait for its next request sets one anew
	<-w.watch
	w.watch = nil
}
