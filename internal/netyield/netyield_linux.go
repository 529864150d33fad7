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
		// take reads the count each time it is called, even right after a
		// read took one: each rc.Read starts by clearing the poller's
		// readiness mark, so a poke that came between the last read and
		// this call is found by this read or not at all (its edge was
		// spent). Skipping the read lost such a poke and left its yielder
		// waiting for good.
		take := func(fd uintptr) bool {
			_, _, errno := syscall.RawSyscall(syscall.SYS_READ, fd, uintptr(unsafe.Pointer(&n)), 8)
			return errno != syscall.EAGAIN
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
