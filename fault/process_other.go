//go:build !unix

package fault

import (
	"errors"
	"fmt"
	"runtime"
)

// Signals by pid need a Unix system; elsewhere kill and pause faults fail
// with errors.ErrUnsupported (CPU, memory and disk faults still work).
const (
	sigStop = iota
	sigCont
	sigKill
)

var errNoProcess = errors.New("no such process")

func signalPID(int, int) error {
	return fmt.Errorf("signalling processes on %s: %w", runtime.GOOS, errors.ErrUnsupported)
}
