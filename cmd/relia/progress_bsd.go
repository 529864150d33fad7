//go:build darwin || dragonfly || freebsd || netbsd || openbsd

package main

import (
	"os"
	"syscall"
)

// progressSignals ask a run for a progress line at once: SIGINFO is what
// Ctrl-T sends on these systems.
var progressSignals = []os.Signal{syscall.SIGUSR1, syscall.SIGINFO}
