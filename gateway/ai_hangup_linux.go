//go:build linux

package gateway

import (
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// watchHangUp notices, while an AI answer streams on a plain-text
// HTTP/1.1 connection, that the client closed it: a goroutine waits on
// the poller for the connection to become readable and peeks at it, so a
// pipelined request's bytes stay where the connection's reader finds
// them. End of stream (or a reset) cancels the call at once, which stops
// the provider's stream, instead of at the next write. Bytes to read
// (the client's next request) end the watch: the client is there. Go's
// HTTP server treats a client's end of stream the same way.
//
// On TLS the bytes are records the watch cannot read: a client that
// hangs up sends its close_notify alert and then its end of stream. So
// there bytes do not end the watch; the socket's TCP state says whether
// the client's end of stream came, checked at each arrival (the poller
// reports each one).
// unwatch ends the goroutine before the connection is read again.
func (w *aiWriter) watchHangUp() {
	c := w.c
	if c == nil || !w.x.req.bodyDone || len(c.rd.Buffered()) > 0 {
		return
	}
	tls := c.tls
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
			case tls:
				if !peerEnded(int(fd)) {
					return false // a record, maybe the close_notify: wait for what comes next
				}
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

// peerEnded reports whether the peer of a TCP socket has ended its side
// (its FIN came: CLOSE_WAIT) or the connection is gone, whatever bytes
// are still unread.
func peerEnded(fd int) bool {
	info, err := unix.GetsockoptTCPInfo(fd, unix.IPPROTO_TCP, unix.TCP_INFO)
	if err != nil {
		return true
	}
	switch info.State {
	case unix.BPF_TCP_CLOSE_WAIT, unix.BPF_TCP_CLOSE, unix.BPF_TCP_LAST_ACK:
		return true
	}
	return false
}
