package netyield

import (
	"os"
	"syscall"
	"unsafe"
)

// begin makes the round's descriptor, an eventfd that the poller
// watches, and the goroutine that waits on it for good. Asking for a
// round writes to it; the poller then wakes that goroutine at its next
// look at the network, with every other goroutine whose socket is ready.
// Without it, Yield is runtime.Gosched.
func (r *rounds) begin() {
	efd, _, errno := syscall.RawSyscall(syscall.SYS_EVENTFD2, 0, syscall.O_NONBLOCK|syscall.O_CLOEXEC, 0)
	if errno != 0 {
		return
	}
	f := os.NewFile(efd, "netyield")
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.next = make(chan struct{})
	r.poke = func() {
		one := uint64(1)
		syscall.RawSyscall(syscall.SYS_WRITE, efd, uintptr(unsafe.Pointer(&one)), 8)
	}
	r.ok = true
	go func() {
		var n uint64
		// read says the descriptor may hold a count: not right after a
		// read took it, as only a poke after that read raises the next
		// edge, which the poller waits for. Each round then reads once,
		// not once more to find it empty.
		read := true
		take := func(fd uintptr) bool {
			if !read {
				read = true
				return false
			}
			_, _, errno := syscall.RawSyscall(syscall.SYS_READ, fd, uintptr(unsafe.Pointer(&n)), 8)
			if errno == syscall.EAGAIN {
				return false
			}
			read = false
			return true
		}
		for rc.Read(take) == nil {
			r.roundCame()
		}
		r.mu.Lock() // the descriptor failed: yield by Gosched from here on
		r.ok = false
		close(r.next)
		r.mu.Unlock()
	}()
}
