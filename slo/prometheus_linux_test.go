package slo

import (
	"os/exec"
	"syscall"
)

// stopWithTest makes the kernel kill cmd if the test binary dies first
// (a timeout, a crash), so that no Prometheus outlives its test.
func stopWithTest(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
