package capacity

import (
	"fmt"
	"time"

	"github.com/prometheus/procfs"
)

// procSampler reads a process's CPU time and resident memory from /proc.
type procSampler struct{ proc procfs.Proc }

// NewProcessSampler samples the process pid from /proc.
func NewProcessSampler(pid int) (ProcessSampler, error) {
	p, err := procfs.NewProc(pid)
	if err != nil {
		return nil, fmt.Errorf("process %d: %w", pid, err)
	}
	return procSampler{p}, nil
}

// Sample returns the process's user and system CPU time and its resident
// memory.
func (s procSampler) Sample() (time.Duration, int64, error) {
	st, err := s.proc.Stat()
	if err != nil {
		return 0, 0, err
	}
	return time.Duration(st.CPUTime() * float64(time.Second)), int64(st.ResidentMemory()), nil
}
