//go:build !linux

package experiment

import "syscall"

// childProcAttr is the default elsewhere: only Linux can tie a child's
// life to its parent's.
func childProcAttr() *syscall.SysProcAttr { return nil }
