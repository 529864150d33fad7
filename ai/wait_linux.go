//go:build linux && !386

package ai

import (
	"syscall"
	"unsafe"
)

// waitReadable waits until the provider's connection has bytes to read,
// its end of stream, or an error (the read deadline a cancellation sets
// included: the read that follows reports it), unless what the body
// would read next is already at hand. A stream waits for its next event
// here, a few frames below relayStream, instead of at the bottom of the
// decoder's reads: the collector shrinks a waiting goroutine's stack
// only when under a quarter of it is in use, and 10,000 open streams are
// 10,000 waiting goroutines (docs/benchmarks.md, "AI gateway vs
// Portkey"). The read that follows finds the bytes and does not wait.
func (b *upstreamBody) waitReadable() {
	if !b.resp.Body.Waits() {
		return
	}
	if b.peekFn == nil {
		sc, ok := b.resp.Conn().Net().(syscall.Conn)
		if !ok {
			return
		}
		rc, err := sc.SyscallConn()
		if err != nil {
			return
		}
		b.rc = rc
		b.peekFn = func(fd uintptr) bool {
			_, _, e := syscall.RawSyscall6(syscall.SYS_RECVFROM, fd, uintptr(unsafe.Pointer(&b.peek[0])), 1,
				syscall.MSG_PEEK|syscall.MSG_DONTWAIT, 0, 0)
			return e != syscall.EAGAIN && e != syscall.EINTR // else the poller waits and calls again
		}
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
