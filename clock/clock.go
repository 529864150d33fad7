package clock

import (
	"context"
	"time"
)

// Clock is the source of time for everything in relia that waits, measures
// or schedules. Production code uses Real; tests use a Fake and advance it.
//
// Implementations must be safe for concurrent use.
type Clock interface {
	// Now returns the current time. Real clocks include a monotonic reading,
	// so differences between two Now values are immune to wall-clock steps.
	Now() time.Time
	// Since returns the time elapsed since t.
	Since(t time.Time) time.Duration
	// NewTimer creates a timer that sends the current time on its channel
	// after at least d.
	NewTimer(d time.Duration) Timer
	// AfterFunc calls f in its own goroutine after at least d.
	AfterFunc(d time.Duration, f func()) Timer
}

// Timer is a single pending event, as returned by NewTimer and AfterFunc.
type Timer interface {
	// C is the channel the timer fires on. It is nil for AfterFunc timers.
	C() <-chan time.Time
	// Stop prevents the timer from firing. It reports whether the call
	// stopped the timer (false if it had already fired or been stopped).
	Stop() bool
	// Reset changes the timer to fire after d. It reports whether the timer
	// had been active.
	Reset(d time.Duration) bool
}

// Real returns the system clock.
func Real() Clock { return realClock{} }

// OrReal returns c, or the system clock when c is nil, so that options
// structs can leave their Clock field unset.
func OrReal(c Clock) Clock {
	if c == nil {
		return realClock{}
	}
	return c
}

type realClock struct{}

func (realClock) Now() time.Time                  { return time.Now() }
func (realClock) Since(t time.Time) time.Duration { return time.Since(t) }
func (realClock) NewTimer(d time.Duration) Timer  { return realTimer{time.NewTimer(d)} }
func (realClock) AfterFunc(d time.Duration, f func()) Timer {
	return realTimer{time.AfterFunc(d, f)}
}

type realTimer struct{ t *time.Timer }

func (r realTimer) C() <-chan time.Time        { return r.t.C }
func (r realTimer) Stop() bool                 { return r.t.Stop() }
func (r realTimer) Reset(d time.Duration) bool { return r.t.Reset(d) }

// Sleep waits for d on clock c, or until ctx is done, whichever comes first.
// It returns ctx.Err() when the context ended the wait and nil otherwise.
// A non-positive d returns at once (with ctx.Err() if ctx is already done).
func Sleep(ctx context.Context, c Clock, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := c.NewTimer(d)
	select {
	case <-t.C():
		return nil
	case <-ctx.Done():
		t.Stop()
		return ctx.Err()
	}
}
