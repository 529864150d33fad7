//go:build linux && !386

package gateway

import (
	"math"
	"math/bits"
	"time"
)

// A loop keeps its connections' deadlines (head, idle, the target's
// answer, a connect) in a timing wheel of two levels: setting, moving
// and ending one is O(1) and allocates nothing, and the loop learns the
// nearest from a few words of bitmap, so it sleeps until exactly then.
//
// Time counts in ticks of a millisecond from the loop's start; a
// deadline fires at the first tick at or after it, so at most a tick
// late. The near level has a slot per tick for the next wheelNear ticks;
// a deadline further out waits in the far level, a slot per wheelNear
// ticks, and moves down to the near level when its block begins (once
// in its life, and only if it lives that long: a deadline moved or ended
// before costs nothing more).
const (
	wheelTick  = time.Millisecond
	wheelShift = 10
	wheelNear  = 1 << wheelShift // ticks, about a second
	wheelFar   = 256             // near spans, about four minutes
)

// timerLinks are a loopConn's place in its loop's wheel.
type timerLinks struct {
	prev, next *loopConn
	tick       int64
	level      int8 // 0: not in the wheel; 1: near; 2: far
}

// wheel is a loop's deadlines; the loop's own, never shared.
type wheel struct {
	base time.Time
	// at is the last tick expired; every deadline in the wheel is after
	// it, the near level's within wheelNear ticks of it.
	at int64
	// due is no later than the next tick at which something is due or
	// moves down; a tick before it needs no look.
	due     int64
	near    [wheelNear]*loopConn
	far     [wheelFar]*loopConn
	nearSet [wheelNear / 64]uint64
	farSet  [wheelFar / 64]uint64
}

func newWheel(base time.Time) wheel {
	return wheel{base: base, due: math.MaxInt64}
}

// tickOf is the first tick at or after t.
func (w *wheel) tickOf(t time.Time) int64 {
	d := t.Sub(w.base)
	return int64((d + wheelTick - 1) / wheelTick)
}

// timeOf is when tick tk begins.
func (w *wheel) timeOf(tk int64) time.Time {
	return w.base.Add(time.Duration(tk) * wheelTick)
}

// set makes lc's deadline t, in place of the one it had.
func (w *wheel) set(lc *loopConn, t time.Time) {
	w.remove(lc)
	w.insert(lc, max(w.tickOf(t), w.at+1))
}

func (w *wheel) insert(lc *loopConn, tk int64) {
	tl := &lc.timer
	tl.tick = tk
	var head **loopConn
	if tk-w.at <= wheelNear {
		s := tk & (wheelNear - 1)
		head, tl.level = &w.near[s], 1
		w.nearSet[s/64] |= 1 << (s % 64)
		w.due = min(w.due, tk)
	} else {
		b := tk >> wheelShift
		s := b & (wheelFar - 1)
		head, tl.level = &w.far[s], 2
		w.farSet[s/64] |= 1 << (s % 64)
		w.due = min(w.due, b<<wheelShift)
	}
	tl.prev, tl.next = nil, *head
	if *head != nil {
		(*head).timer.prev = lc
	}
	*head = lc
}

// remove takes lc's deadline out of the wheel, if it has one.
func (w *wheel) remove(lc *loopConn) {
	tl := &lc.timer
	if tl.level == 0 {
		return
	}
	var head **loopConn
	var set *uint64
	var bit uint64
	if tl.level == 1 {
		s := tl.tick & (wheelNear - 1)
		head, set, bit = &w.near[s], &w.nearSet[s/64], 1<<(s%64)
	} else {
		s := (tl.tick >> wheelShift) & (wheelFar - 1)
		head, set, bit = &w.far[s], &w.farSet[s/64], 1<<(s%64)
	}
	if tl.prev != nil {
		tl.prev.timer.next = tl.next
	} else {
		*head = tl.next
		if tl.next == nil {
			*set &^= bit
		}
	}
	if tl.next != nil {
		tl.next.timer.prev = tl.prev
	}
	*tl = timerLinks{}
}

// next returns the next tick after at at which a deadline is due or the
// far level has one to move down; math.MaxInt64 when the wheel is empty.
func (w *wheel) next() int64 {
	next := int64(math.MaxInt64)
	if tk, ok := nextSet(w.nearSet[:], w.at+1); ok {
		next = tk
	}
	if b, ok := nextSet(w.farSet[:], (w.at>>wheelShift)+1); ok {
		next = min(next, b<<wheelShift)
	}
	return next
}

// nextSet returns the first n >= from, within one turn of set's bits,
// whose bit (n modulo the bits) is set.
func nextSet(set []uint64, from int64) (int64, bool) {
	size := int64(len(set) * 64)
	i := from & (size - 1)
	for scanned := int64(0); scanned < size+64; {
		word := set[i/64] >> (i % 64)
		if word != 0 {
			return from + scanned + int64(bits.TrailingZeros64(word)), true
		}
		step := 64 - i%64
		scanned += step
		i = (i + step) & (size - 1)
	}
	return 0, false
}

// expire advances the wheel to now and appends what became due to fired,
// taken out of the wheel.
func (w *wheel) expire(now time.Time, fired []*loopConn) []*loopConn {
	nowTick := int64(now.Sub(w.base) / wheelTick)
	for nowTick >= w.due {
		tk := w.next()
		if tk > nowTick {
			w.due = tk
			break
		}
		w.at = tk - 1
		if tk&(wheelNear-1) == 0 {
			// A far block begins: its deadlines move to the near level (or
			// stay far, when a turn or more away).
			s := (tk >> wheelShift) & (wheelFar - 1)
			lc := w.far[s]
			w.far[s] = nil
			w.farSet[s/64] &^= 1 << (s % 64)
			for lc != nil {
				next, tick := lc.timer.next, lc.timer.tick
				lc.timer = timerLinks{}
				w.insert(lc, tick)
				lc = next
			}
		}
		s := tk & (wheelNear - 1)
		for lc := w.near[s]; lc != nil; {
			next := lc.timer.next
			lc.timer = timerLinks{}
			fired = append(fired, lc)
			lc = next
		}
		w.near[s] = nil
		w.nearSet[s/64] &^= 1 << (s % 64)
		w.at = tk
		w.due = tk + 1
	}
	if nowTick > w.at {
		w.at = nowTick
	}
	return fired
}

// dueBefore reports whether something may be due before t: when not,
// the loop need not look for its next deadline.
func (w *wheel) dueBefore(t time.Time) bool { return w.due < w.tickOf(t) }

// wake returns when the loop is next to look at the wheel; zero when
// nothing waits in it.
func (w *wheel) wake() time.Time {
	w.due = w.next() // exact again: deadlines moved or ended since
	if w.due == math.MaxInt64 {
		return time.Time{}
	}
	return w.timeOf(w.due)
}
