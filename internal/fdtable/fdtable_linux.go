package fdtable

import (
	"golang.org/x/sys/unix"
)

// Gateway is how many descriptors a gateway's table is grown to hold:
// 32,768 connections, a table of 256 KiB in the kernel.
const Gateway = 1 << 16

// Grow makes the descriptor table hold at least n descriptors, or as
// many as the open-file limit allows, by taking a descriptor numbered
// just under that and closing it again. It returns the size it grew to.
func Grow(n int) (int, error) {
	var lim unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
		return 0, err
	}
	if lim.Cur < uint64(n) {
		n = int(lim.Cur)
	}
	if n <= 0 {
		return 0, nil
	}
	fd, err := unix.FcntlInt(0, unix.F_DUPFD_CLOEXEC, n-1)
	if err != nil {
		// Descriptor 0 may be closed: any open descriptor will do.
		var p [2]int
		if perr := unix.Pipe2(p[:], unix.O_CLOEXEC); perr != nil {
			return 0, err
		}
		defer unix.Close(p[0])
		defer unix.Close(p[1])
		if fd, err = unix.FcntlInt(uintptr(p[0]), unix.F_DUPFD_CLOEXEC, n-1); err != nil {
			return 0, err
		}
	}
	unix.Close(fd)
	return n, nil
}
