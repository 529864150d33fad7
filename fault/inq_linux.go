//go:build linux && !386

package fault

import (
	"errors"
	"io"
	"net"
	"sync/atomic"
	"syscall"
	"unsafe"
)

// tcpInq is Linux's TCP_INQ socket option and control message (4.18+).
const tcpInq = 36

// inqReader is a pump's reader that also forwards, while its direction has
// no toxics: inside one syscall.RawConn.Control of the destination and one
// RawConn.Read of the source, it reads the source and writes what it read
// to the destination with raw syscalls, over and over, and returns to the
// pump only with data for the toxics, at the end of the stream, or on an
// error. Holding both sockets that way saves the runtime's lock and
// readiness bookkeeping on every write; link.close wakes a reader that
// waits on one socket before closing the other, since a Close waits for
// the socket's holders.
//
// After each read the kernel's TCP_INQ hint says how many bytes are still
// queued, and is 1 once the peer's FIN is queued. At 0 the reader waits
// for the poller at once, without the read that would return EAGAIN: the
// socket holds nothing, and whatever arrives later raises a new readiness
// edge, which the poller keeps for the wait since the reader does not
// leave RawConn.Read (leaving it would reset the readiness). That saves
// one syscall for every chunk a proxied request or response makes; a
// reader without the hint must read until EAGAIN, since a FIN that
// arrives with the data raises no edge of its own.
type inqReader struct {
	src, dst syscall.RawConn
	buf      []byte
	msg      syscall.Msghdr
	iov      syscall.Iovec
	oob      []byte
	chain    *atomic.Pointer[[]*toxicState] // the direction's toxics
	// write forwards what is left when the destination is full, waiting
	// for room as the pump's writes do.
	write  func([]byte) error
	dstfd  uintptr
	n      int
	rest   []byte // not yet forwarded: the destination was full
	err    error
	rerr   error
	readFn func(fd uintptr) bool
	ctlFn  func(fd uintptr)
}

// errForward wraps a failed forward, which ends the link as a failed
// write does.
var errForward = errors.New("forwarding")

// newInqReader returns a reader of src that forwards to dst (write waits
// for room in dst), or nil where src or dst is not a TCP socket or the
// kernel gives no TCP_INQ hint.
func newInqReader(src, dst net.Conn, buf []byte, chain *atomic.Pointer[[]*toxicState], write func([]byte) error) *inqReader {
	stc, ok1 := src.(*net.TCPConn)
	dtc, ok2 := dst.(*net.TCPConn)
	if !ok1 || !ok2 {
		return nil
	}
	srcRC, err1 := stc.SyscallConn()
	dstRC, err2 := dtc.SyscallConn()
	if err1 != nil || err2 != nil {
		return nil
	}
	var serr error
	if err := srcRC.Control(func(fd uintptr) { serr = syscall.SetsockoptInt(int(fd), syscall.SOL_TCP, tcpInq, 1) }); err != nil || serr != nil {
		return nil
	}
	r := &inqReader{src: srcRC, dst: dstRC, buf: buf, chain: chain, write: write, oob: make([]byte, syscall.CmsgSpace(4))}
	r.iov.Base = &buf[0]
	r.msg.Iov = &r.iov
	r.msg.Iovlen = 1
	r.msg.Control = &r.oob[0]
	// The callbacks are made once, so forwarding allocates nothing.
	r.readFn = r.loop
	r.ctlFn = func(dstfd uintptr) {
		r.dstfd = dstfd
		r.rerr = r.src.Read(r.readFn)
	}
	return r
}

// recv reads once; inq is the kernel's hint (1 when it gave none, so the
// caller reads again rather than miss an end).
func (r *inqReader) recv(fd uintptr) (n, inq int, errno syscall.Errno) {
	r.iov.SetLen(len(r.buf))
	r.msg.SetControllen(len(r.oob))
	r.msg.Flags = 0
	got, _, errno := syscall.RawSyscall(syscall.SYS_RECVMSG, fd, uintptr(unsafe.Pointer(&r.msg)), 0)
	if errno != 0 {
		return 0, 0, errno
	}
	inq = 1
	if h := (*syscall.Cmsghdr)(unsafe.Pointer(&r.oob[0])); int(r.msg.Controllen) >= syscall.CmsgLen(4) &&
		h.Level == syscall.SOL_TCP && h.Type == tcpInq {
		inq = int(*(*int32)(unsafe.Pointer(&r.oob[syscall.CmsgLen(0)])))
	}
	return int(got), inq, 0
}

// loop is the source's RawConn.Read callback: it returns false to wait
// for the poller and true to return to the pump.
func (r *inqReader) loop(fd uintptr) bool {
	for {
		n, inq, errno := r.recv(fd)
		switch errno {
		case 0:
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			return false
		default:
			r.err = errno
			return true
		}
		if n == 0 {
			r.err = io.EOF
			return true
		}
		if len(*r.chain.Load()) > 0 {
			r.n = n
			return true
		}
		for p := r.buf[:n]; len(p) > 0; {
			w, _, errno := syscall.RawSyscall(syscall.SYS_WRITE, r.dstfd, uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
			switch errno {
			case 0:
				p = p[w:]
			case syscall.EINTR:
			case syscall.EAGAIN:
				r.rest = p
				return true
			default:
				r.err = errors.Join(errForward, errno)
				return true
			}
		}
		if inq == 0 {
			return false
		}
	}
}

// read forwards until there is data for the toxics (n > 0 in the
// buffer), the stream ends (io.EOF) or something fails.
func (r *inqReader) read() (int, error) {
	for {
		r.n, r.rest, r.err, r.rerr = 0, nil, nil, nil
		if err := r.dst.Control(r.ctlFn); err != nil {
			return 0, err
		}
		if r.rerr != nil {
			return 0, r.rerr
		}
		if r.rest == nil {
			return r.n, r.err
		}
		if err := r.write(r.rest); err != nil {
			return 0, errors.Join(errForward, err)
		}
	}
}
