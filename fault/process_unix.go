//go:build unix

package fault

import "syscall"

const (
	sigStop = syscall.SIGSTOP
	sigCont = syscall.SIGCONT
	sigKill = syscall.SIGKILL
)

var errNoProcess = syscall.ESRCH

func signalPID(pid int, sig syscall.Signal) error { return syscall.Kill(pid, sig) }
