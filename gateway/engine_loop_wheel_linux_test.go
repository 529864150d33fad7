//go:build linux && !386

package gateway

import (
	"math/rand/v2"
	"testing"
	"time"
)

// TestWheelFiresEachDeadlineWithinATick: deadlines set, moved and ended
// at random, near and far (past the near level's span and past a whole
// turn of the far one), each fire at the first expire at or after them
// and less than a tick late, never before, never twice; the loop's wake
// time is never after the nearest deadline.
func TestWheelFiresEachDeadlineWithinATick(t *testing.T) {
	t.Parallel()
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	w := newWheel(base)
	rng := rand.New(rand.NewPCG(1, 2))
	const n = 500
	lcs := make([]loopConn, n)
	want := map[*loopConn]time.Time{} // the deadlines in the wheel
	now := base
	spans := []time.Duration{3 * time.Millisecond, 900 * time.Millisecond, 5 * time.Second, 90 * time.Second, 10 * time.Minute}
	fired := 0
	for step := range 20000 {
		lc := &lcs[rng.IntN(n)]
		switch rng.IntN(4) {
		case 0:
			w.remove(lc)
			delete(want, lc)
		default:
			d := time.Duration(rng.Int64N(int64(spans[rng.IntN(len(spans))])))
			at := now.Add(d)
			w.set(lc, at)
			want[lc] = at
		}
		if rng.IntN(8) > 0 {
			continue
		}
		// The loop sleeps until its wake time, or is woken before it.
		wake := w.wake()
		var earliest time.Time
		for _, at := range want {
			if earliest.IsZero() || at.Before(earliest) {
				earliest = at
			}
		}
		if !earliest.IsZero() {
			if wake.IsZero() || wake.After(earliest.Add(time.Millisecond)) {
				t.Fatalf("step %d: the wheel wakes at %v, after its nearest deadline %v", step, wake.Sub(base), earliest.Sub(base))
			}
		}
		next := now.Add(time.Duration(rng.Int64N(int64(3 * time.Millisecond))))
		if !wake.IsZero() && rng.IntN(2) == 0 && wake.After(now) {
			next = wake
		}
		if rng.IntN(50) == 0 {
			next = now.Add(time.Duration(rng.Int64N(int64(20 * time.Minute))))
		}
		now = next
		for _, lc := range w.expire(now, nil) {
			at, ok := want[lc]
			if !ok {
				t.Fatalf("step %d: a deadline fired that was ended or fired before", step)
			}
			if now.Before(at) {
				t.Fatalf("step %d: a deadline fired %v early", step, at.Sub(now))
			}
			delete(want, lc)
			fired++
		}
		for lc, at := range want {
			if !now.Before(at.Add(time.Millisecond)) {
				t.Fatalf("step %d: a deadline %v past did not fire (level %d)", step, now.Sub(at), lc.timer.level)
			}
		}
	}
	if fired < 1000 {
		t.Fatalf("only %d deadlines fired: the test exercised little", fired)
	}
}
