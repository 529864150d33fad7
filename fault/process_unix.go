//go:build unix

package fault

import (
	"os"
	"syscall"
)

const (
	sigStop = syscall.SIGSTOP
	sigCont = syscall.SIGCONT
	sigKill = syscall.SIGKILL
)

var errNoProcess = syscall.ESRCH

func signalPID(pid int, sig syscall.Signal) error { return syscall.Kill(pid, sig) }

// holdMemory maps n bytes of anonymous memory outside the Go heap and
// touches every page, so they are resident and the garbage collector
// neither scans them nor sizes its heap goal by them; release unmaps them,
// giving them back to the kernel at once.
func holdMemory(n int64) (mem []byte, release func() error, err error) {
	mem, err = syscall.Mmap(-1, 0, int(n), syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_ANON|syscall.MAP_PRIVATE)
	if err != nil {
		return nil, nil, err
	}
	page := os.Getpagesize()
	for i := 0; i < len(mem); i += page {
		mem[i] = 1
	}
	return mem, func() error { return syscall.Munmap(mem) }, nil
}
