package load

import (
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// fineTimer sleeps with nanosecond precision on the real clock. Go's own
// timers wake up to a millisecond late when the process is otherwise idle
// (the runtime waits in epoll with a timeout in whole milliseconds), which
// at thousands of arrivals a second is most of the gap between them. A
// timerfd is an fd in the runtime's poller, so epoll returns the moment it
// fires, and the goroutine, not a thread, waits for it.
type fineTimer struct {
	f  *os.File
	fd int
}

func newFineTimer() *fineTimer {
	fd, err := unix.TimerfdCreate(unix.CLOCK_MONOTONIC, unix.TFD_NONBLOCK|unix.TFD_CLOEXEC)
	if err != nil {
		return nil // callers fall back to Go's timers
	}
	return &fineTimer{f: os.NewFile(uintptr(fd), "timerfd"), fd: fd}
}

// sleep waits for d; it returns false if the timer could not be used.
func (t *fineTimer) sleep(d time.Duration) bool {
	if t == nil {
		return false
	}
	spec := unix.ItimerSpec{Value: unix.NsecToTimespec(int64(d))}
	if err := unix.TimerfdSettime(t.fd, 0, &spec, nil); err != nil {
		return false
	}
	var buf [8]byte
	_, err := t.f.Read(buf[:])
	return err == nil
}

func (t *fineTimer) close() {
	if t != nil {
		_ = t.f.Close()
	}
}
