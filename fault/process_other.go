//go:build !unix

package fault

import (
	"errors"
	"fmt"
	"runtime"
	"runtime/debug"
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

// holdMemory allocates n bytes on the Go heap and touches every page, so
// they are resident; release drops them and returns freed memory to the
// system.
func holdMemory(n int64) (mem []byte, release func() error, err error) {
	mem = make([]byte, n)
	for i := 0; i < len(mem); i += 4096 {
		mem[i] = 1
	}
	return mem, func() error {
		runtime.KeepAlive(mem)
		mem = nil
		debug.FreeOSMemory()
		return nil
	}, nil
}
