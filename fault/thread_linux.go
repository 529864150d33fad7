//go:build linux

package fault

import "syscall"

// threadID returns the calling thread's id, as /proc/self/task names it.
func threadID() int { return syscall.Gettid() }
