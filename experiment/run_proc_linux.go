package experiment

import "syscall"

// childProcAttr makes a command service's process die with relia, so a
// run killed by SIGKILL leaves no service running behind it.
func childProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
