//go:build linux

package rawio

import (
	"io"
	"net"
	"syscall"
	"time"
	"unsafe"
)

// Conn is one TCP connection's raw reader and writer. A Conn is used by
// one goroutine at a time for reads and one for writes, as a net.Conn's
// Read and Write would be.
type Conn struct {
	rc syscall.RawConn

	rbuf []byte
	rn   int
	rerr error
	wbuf []byte
	werr error
	// readFn and writeFn are the callbacks of every read and write, made
	// once so that reads and writes allocate nothing, and only two (not
	// one for each way of reading and writing) so that a connection that
	// waits for minutes, as an AI stream's do, holds little: tryRead and
	// tryWrite say the call must not wait, eagain that a tried read found
	// nothing.
	readFn   func(uintptr) bool
	writeFn  func(uintptr) bool
	tryRead  bool
	tryWrite bool
	eagain   bool
}

// New returns c's raw reader and writer, or nil when c is not a TCP
// connection.
func New(c net.Conn) *Conn {
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return nil
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return nil
	}
	x := &Conn{rc: rc}
	x.readFn = func(fd uintptr) bool {
		if x.readOnce(fd) {
			return true
		}
		// Unless the read is only tried, the poller waits for readiness
		// and calls again. (A read that returns EAGAIN cannot be skipped
		// after a short read: a FIN read with the data raises no new edge.)
		x.eagain = true
		return x.tryRead
	}
	x.writeFn = func(fd uintptr) bool {
		for len(x.wbuf) > 0 {
			r, _, e := syscall.RawSyscall(syscall.SYS_WRITE, fd, uintptr(unsafe.Pointer(&x.wbuf[0])), uintptr(len(x.wbuf)))
			switch e {
			case 0:
				x.wbuf = x.wbuf[r:]
			case syscall.EINTR:
			case syscall.EAGAIN:
				// Unless the write is only tried, the poller waits for
				// room and calls again.
				return x.tryWrite
			default:
				x.werr = e
				return true
			}
		}
		return true
	}
	return x
}

// readOnce reads into rbuf, reporting false on EAGAIN.
func (x *Conn) readOnce(fd uintptr) bool {
	for {
		r, _, e := syscall.RawSyscall(syscall.SYS_READ, fd, uintptr(unsafe.Pointer(&x.rbuf[0])), uintptr(len(x.rbuf)))
		switch e {
		case 0:
			x.rn, x.rerr = int(r), nil
			if r == 0 {
				x.rerr = io.EOF
			}
			return true
		case syscall.EINTR:
		case syscall.EAGAIN:
			return false
		default:
			x.rn, x.rerr = 0, e
			return true
		}
	}
}

// Read reads into p, waiting for data; it returns io.EOF at the end of
// the stream.
func (x *Conn) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	x.rbuf, x.tryRead = p, false
	err := x.rc.Read(x.readFn)
	x.rbuf = nil
	if err != nil {
		return 0, err
	}
	return x.rn, x.rerr
}

// TryRead reads into p without waiting: ready is false when no data (and
// no end of stream) was there to read.
func (x *Conn) TryRead(p []byte) (n int, ready bool, err error) {
	if len(p) == 0 {
		return 0, false, nil
	}
	x.rbuf, x.tryRead, x.eagain = p, true, false
	err = x.rc.Read(x.readFn)
	x.rbuf = nil
	if err != nil {
		return 0, true, err
	}
	if x.eagain {
		return 0, false, nil
	}
	return x.rn, true, x.rerr
}

// Write writes all of p, waiting for room in the socket's buffer.
func (x *Conn) Write(p []byte) error {
	if len(p) == 0 {
		return nil
	}
	x.wbuf, x.werr, x.tryWrite = p, nil, false
	err := x.rc.Write(x.writeFn)
	x.wbuf = nil
	if err != nil {
		return err
	}
	return x.werr
}

// writeBy writes all of p; set sets the write deadline, and is called
// only when the socket's buffer is full and the write must wait.
func (x *Conn) writeBy(p []byte, deadline time.Time, set func(time.Time) error) error {
	if len(p) == 0 {
		return nil
	}
	x.wbuf, x.werr, x.tryWrite = p, nil, true
	err := x.rc.Write(x.writeFn)
	if err == nil && x.werr == nil && len(x.wbuf) > 0 {
		if err = set(deadline); err == nil {
			x.tryWrite = false
			err = x.rc.Write(x.writeFn)
			if err == nil && x.werr == nil {
				// A deadline left set would fail the next write once it
				// passed, before that write is even tried.
				err = set(time.Time{})
			}
		}
	}
	x.wbuf = nil
	if err != nil {
		return err
	}
	return x.werr
}

// tcpConn is a TCP connection whose Read and Write are raw; every other
// method (deadlines, CloseWrite, ReadFrom's splice) is net.TCPConn's.
type tcpConn struct {
	*net.TCPConn
	raw *Conn
}

func (c *tcpConn) Read(p []byte) (int, error) {
	n, err := c.raw.Read(p)
	if err != nil && err != io.EOF {
		err = &net.OpError{Op: "read", Net: "tcp", Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: err}
	}
	return n, err
}

func (c *tcpConn) Write(p []byte) (int, error) {
	if err := c.raw.Write(p); err != nil {
		return 0, &net.OpError{Op: "write", Net: "tcp", Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: err}
	}
	return len(p), nil
}

func (c *tcpConn) writeBy(p []byte, deadline time.Time) error {
	if err := c.raw.writeBy(p, deadline, c.TCPConn.SetWriteDeadline); err != nil {
		return &net.OpError{Op: "write", Net: "tcp", Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: err}
	}
	return nil
}

// Wrap returns c with raw Read and Write when c is a TCP connection, else
// c itself. Errors keep net.Conn's shape (*net.OpError), so callers that
// classify them see what they would have seen.
func Wrap(c net.Conn) net.Conn {
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return c
	}
	raw := New(tc)
	if raw == nil {
		return c
	}
	return &tcpConn{TCPConn: tc, raw: raw}
}

// Listener wraps every connection ln accepts with Wrap.
func Listener(ln net.Listener) net.Listener { return listener{ln} }

type listener struct{ net.Listener }

func (l listener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return Wrap(c), nil
}
