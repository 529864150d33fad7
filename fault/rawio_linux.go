//go:build linux

package fault

import (
	"io"
	"net"
	"syscall"
	"unsafe"
)

// On Linux the proxy reads and writes TCP sockets with raw syscalls inside
// syscall.RawConn's callbacks. The sockets are non-blocking (the runtime's
// poller waits for readiness), so no call blocks, and skipping the
// runtime's syscall bookkeeping (entersyscall, exitsyscall) spares the
// proxy the sysmon wake-ups and P hand-offs that otherwise take about a
// tenth of its CPU on small requests; docs/benchmarks.md has the
// measurements.

// rawReader returns a reader of c into buf, or nil when c is not a TCP
// connection (the caller then uses c.Read). It returns io.EOF at the end.
func rawReader(c net.Conn, buf []byte) func() (int, error) {
	rc := rawConn(c)
	if rc == nil || len(buf) == 0 {
		return nil
	}
	var n int
	var rerr error
	read := func(fd uintptr) bool {
		for {
			r, _, e := syscall.RawSyscall(syscall.SYS_READ, fd, uintptr(unsafe.Pointer(&buf[0])), uintptr(len(buf)))
			switch e {
			case 0:
				n, rerr = int(r), nil
				if r == 0 {
					rerr = io.EOF
				}
				return true
			case syscall.EINTR:
			case syscall.EAGAIN:
				// The poller waits for readiness and calls again. (It
				// cannot be skipped after a short read: a FIN read with
				// the data raises no new edge.)
				return false
			default:
				n, rerr = 0, e
				return true
			}
		}
	}
	return func() (int, error) {
		if err := rc.Read(read); err != nil {
			return 0, err
		}
		return n, rerr
	}
}

// rawWriter returns a writer of all of p to c, or nil when c is not a TCP
// connection (the caller then uses c.Write).
func rawWriter(c net.Conn) func(p []byte) error {
	rc := rawConn(c)
	if rc == nil {
		return nil
	}
	var p []byte
	var werr error
	write := func(fd uintptr) bool {
		for len(p) > 0 {
			r, _, e := syscall.RawSyscall(syscall.SYS_WRITE, fd, uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
			switch e {
			case 0:
				p = p[r:]
			case syscall.EINTR:
			case syscall.EAGAIN:
				return false // the poller waits for room and calls again
			default:
				werr = e
				return true
			}
		}
		return true
	}
	return func(b []byte) error {
		if len(b) == 0 {
			return nil
		}
		p, werr = b, nil
		err := rc.Write(write)
		p = nil
		if err != nil {
			return err
		}
		return werr
	}
}

// rawConn returns c's raw connection when c is TCP, else nil.
func rawConn(c net.Conn) syscall.RawConn {
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return nil
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return nil
	}
	return rc
}
