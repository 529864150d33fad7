//go:build linux || darwin || freebsd || dragonfly

package fault

import "syscall"

// diskFree returns the bytes an unprivileged user may still write under
// dir; ok is false when dir cannot be examined.
func diskFree(dir string) (int64, bool) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0, false
	}
	return int64(uint64(st.Bavail) * uint64(st.Bsize)), true
}
