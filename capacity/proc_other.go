//go:build !linux

package capacity

import "errors"

// NewProcessSampler is Linux only: it reads /proc.
func NewProcessSampler(pid int) (ProcessSampler, error) {
	return nil, errors.New("measuring a process's CPU and memory needs Linux's /proc")
}
