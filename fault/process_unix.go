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

// diskFree returns the bytes an unprivileged user may still write under
// dir; ok is false when dir cannot be examined.
func diskFree(dir string) (int64, bool) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0, false
	}
	return int64(uint64(st.Bavail) * uint64(st.Bsize)), true
}
