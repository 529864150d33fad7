//go:build !linux

package slo

import "os/exec"

// stopWithTest does nothing where the kernel cannot tie a child's life to
// its parent's; the test's cleanup still stops Prometheus.
func stopWithTest(*exec.Cmd) {}
