package main

import (
	"bytes"
	"fmt"
	"net/netip"
	"runtime"
	"strconv"
	"syscall"
	"unsafe"
)

// messageHooks sees each whole message: a request from the client fd, or
// the response to the client fd's request (from its upstream), and returns
// what to send on.
type messageHooks interface {
	message(fd int, request bool, msg []byte) []byte
}

// side is one socket of a client/upstream pair and the bytes read from it
// that do not yet make a whole message.
type side struct {
	fd, peer int
	client   bool
	pending  []byte
}

// serveEpoll runs the event loop on one locked thread until a fatal error.
// Reads and writes go through RawSyscall so the runtime does not treat
// them as blocking calls (which wakes sysmon); sockets are non-blocking.
//
// hooks, when not nil, sees every message on its way and may rewrite it:
// the per-request work a gateway adds, on an event-loop engine.
func serveEpoll(listen, upstream netip.AddrPort, hooks messageHooks) error {
	runtime.LockOSThread()
	lfd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_NONBLOCK, 0)
	if err != nil {
		return err
	}
	syscall.SetsockoptInt(lfd, syscall.SOL_SOCKET, syscall.SO_REUSEADDR, 1)
	if err := syscall.Bind(lfd, &syscall.SockaddrInet4{Port: int(listen.Port()), Addr: listen.Addr().As4()}); err != nil {
		return fmt.Errorf("listen %s: %w", listen, err)
	}
	if err := syscall.Listen(lfd, 1024); err != nil {
		return err
	}
	ep, err := syscall.EpollCreate1(0)
	if err != nil {
		return err
	}
	watch := func(fd int) error {
		return syscall.EpollCtl(ep, syscall.EPOLL_CTL_ADD, fd, &syscall.EpollEvent{Events: syscall.EPOLLIN, Fd: int32(fd)})
	}
	if err := watch(lfd); err != nil {
		return err
	}
	sides := map[int]*side{}
	closePair := func(s *side) {
		syscall.Close(s.fd)
		syscall.Close(s.peer)
		delete(sides, s.fd)
		delete(sides, s.peer)
	}
	events := make([]syscall.EpollEvent, 256)
	buf := make([]byte, 64<<10)
	for {
		n, err := syscall.EpollWait(ep, events, -1)
		if err == syscall.EINTR {
			continue
		} else if err != nil {
			return err
		}
		for _, ev := range events[:n] {
			fd := int(ev.Fd)
			if fd == lfd {
				for {
					cfd, _, err := syscall.Accept4(lfd, syscall.SOCK_NONBLOCK)
					if err != nil {
						break
					}
					ufd, err := dialUpstream(upstream)
					if err != nil {
						syscall.Close(cfd)
						continue
					}
					syscall.SetsockoptInt(cfd, syscall.IPPROTO_TCP, syscall.TCP_NODELAY, 1)
					sides[cfd] = &side{fd: cfd, peer: ufd, client: true}
					sides[ufd] = &side{fd: ufd, peer: cfd}
					watch(cfd)
					watch(ufd)
				}
				continue
			}
			s := sides[fd]
			if s == nil {
				continue
			}
			m, errno := rawCall(syscall.SYS_READ, fd, buf)
			if errno == syscall.EAGAIN {
				continue
			}
			if m <= 0 {
				closePair(s)
				continue
			}
			s.pending = append(s.pending, buf[:m]...)
			for {
				size := messageSize(s.pending, s.client)
				if size == 0 || size > len(s.pending) {
					break
				}
				msg := s.pending[:size]
				if hooks != nil {
					clientFD := s.fd
					if !s.client {
						clientFD = s.peer
					}
					msg = hooks.message(clientFD, s.client, msg)
				}
				// Small messages on loopback: the write completes or the
				// pair is dropped.
				if w, _ := rawCall(syscall.SYS_WRITE, s.peer, msg); w != len(msg) {
					closePair(s)
					break
				}
				s.pending = s.pending[:copy(s.pending, s.pending[size:])]
			}
		}
	}
}

// messageSize is the length of the first whole message in p: a request's
// head (the benchmark sends GETs without bodies) or a response's head plus
// its Content-Length; 0 while the head is incomplete.
func messageSize(p []byte, request bool) int {
	end := bytes.Index(p, []byte("\r\n\r\n"))
	if end < 0 {
		return 0
	}
	size := end + 4
	if !request {
		head := p[:end]
		if i := bytes.Index(head, []byte("\r\nContent-Length: ")); i >= 0 {
			value := head[i+18:]
			if j := bytes.IndexByte(value, '\r'); j >= 0 {
				value = value[:j]
			}
			n, _ := strconv.Atoi(string(value))
			size += n
		}
	}
	return size
}

func dialUpstream(addr netip.AddrPort) (int, error) {
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
	if err != nil {
		return -1, err
	}
	if err := syscall.Connect(fd, &syscall.SockaddrInet4{Port: int(addr.Port()), Addr: addr.Addr().As4()}); err != nil {
		syscall.Close(fd)
		return -1, err
	}
	syscall.SetNonblock(fd, true)
	syscall.SetsockoptInt(fd, syscall.IPPROTO_TCP, syscall.TCP_NODELAY, 1)
	return fd, nil
}

func rawCall(trap uintptr, fd int, p []byte) (int, syscall.Errno) {
	r, _, errno := syscall.RawSyscall(trap, uintptr(fd), uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
	if errno != 0 {
		return -1, errno
	}
	return int(r), 0
}
