//go:build unix && !(darwin || dragonfly || freebsd || netbsd || openbsd)

package main

import (
	"os"
	"syscall"
)

// progressSignals ask a run for a progress line at once (kill -USR1).
var progressSignals = []os.Signal{syscall.SIGUSR1}
