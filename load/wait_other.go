//go:build !linux

package load

import "time"

// fineTimer is the nanosecond sleep of Linux; elsewhere Go's timers serve.
type fineTimer struct{}

func newFineTimer() *fineTimer              { return nil }
func (*fineTimer) sleep(time.Duration) bool { return false }
func (*fineTimer) close()                   {}
