package resilience

import (
	"math/bits"
	"sync"
	"sync/atomic"
	"time"

	"github.com/relia-dev/relia/clock"
)

// breakerGen is one stay of a breaker in one state: the counts that decide
// when it leaves that state. A state change installs a fresh generation
// rather than clearing counters in place, because clearing cannot be made
// atomic with respect to calls that are ending at the same moment.
type breakerGen struct {
	b         *Breaker
	state     State
	forced    bool
	openUntil time.Time // open and not forced: when probes may start

	ring     *breakerRing       // closed, count-based window
	tw       *breakerTimeWindow // closed, time-based window
	inflight *breakerInFlight   // closed or half-open, with slow-call tripping

	consecutive atomic.Int64  // closed: failures in a row (read on every success)
	lastFailure atomic.Uint64 // closed: completed count after the last failure

	admitted  atomic.Uint64 // calls admitted in this generation
	completed atomic.Uint64 // calls that ended as success or failure
	ignored   atomic.Uint64 // calls that ended with an ignored error
	rejected  atomic.Uint64

	probes         atomic.Int32 // half-open: probes in flight
	probeSuccesses atomic.Int32 // half-open: probes that succeeded
}

func (b *Breaker) newGen(state State, forced bool, openUntil time.Time) *breakerGen {
	g := &breakerGen{b: b, state: state, forced: forced, openUntil: openUntil}
	if state == StateOpen {
		return g
	}
	if state == StateClosed {
		if b.cfg.windowSize > 0 {
			n := uint64(b.cfg.windowSize)
			g.ring = &breakerRing{slots: make([]atomic.Uint32, n), m: ^uint64(0)/n + 1}
		} else {
			g.tw = &breakerTimeWindow{buckets: make([]timeBucket, b.cfg.buckets)}
			for i := range g.tw.buckets {
				g.tw.buckets[i].idx = -1
			}
		}
	}
	if b.cfg.trackInFlight {
		g.inflight = &breakerInFlight{buf: make([]inFlightCall, 16)}
	}
	return g
}

// retire folds the generation's hot-path counters into the breaker's
// totals and stops its slow-call timer. Called with b.mu held.
func (g *breakerGen) retire(b *Breaker) {
	b.totAdmitted.Add(g.admitted.Load())
	b.totCompleted.Add(g.completed.Load())
	if g.inflight != nil {
		g.inflight.retire()
	}
}

// windowCounts returns the calls, failures and slow calls in the closed
// generation's window at time now (used by time-based windows only).
func (g *breakerGen) windowCounts(b *Breaker, now time.Time) (calls, failures, slow int64) {
	switch {
	case g.ring != nil:
		return g.ring.calls.Load(), g.ring.failures.Load(), g.ring.slow.Load()
	case g.tw != nil:
		return g.tw.sum(b.bucketIndex(now))
	}
	return 0, 0, 0
}

// breakerRing is a count-based window: the outcomes of the last
// len(slots) calls. Writers claim a slot by position and swap their
// outcome in; the running counters move by the difference between the
// outcome written and the one it replaced, so they always agree with the
// slots' contents without a lock.
type breakerRing struct {
	slots []atomic.Uint32
	// m is Lemire's fast-modulo multiplier for len(slots): a slot index
	// costs two multiplications instead of a 64-bit division, which is a
	// good share of the success path's budget.
	m                     uint64
	calls, failures, slow atomic.Int64
}

func (r *breakerRing) put(i uint64, o uint32) {
	hi, _ := bits.Mul64(r.m*uint64(uint32(i)), uint64(len(r.slots)))
	slot := &r.slots[hi]
	// In the steady state the slot already holds the same outcome; a
	// plain load then spares the hot path a locked instruction.
	if slot.Load() == o {
		return
	}
	old := slot.Swap(o)
	if old == o {
		return
	}
	if old == 0 {
		r.calls.Add(1)
	}
	if d := int64(o>>1&1) - int64(old>>1&1); d != 0 {
		r.failures.Add(d)
	}
	if d := int64(o>>2&1) - int64(old>>2&1); d != 0 {
		r.slow.Add(d)
	}
}

// breakerTimeWindow is a time-based window: buckets of equal width on the
// breaker's clock, each reused once the window has slid past it.
type breakerTimeWindow struct {
	mu      sync.Mutex
	buckets []timeBucket
}

type timeBucket struct {
	idx                   int64 // which bucket of time it holds; -1 none
	calls, failures, slow int64
}

func (w *breakerTimeWindow) put(idx int64, o uint32) {
	w.mu.Lock()
	bk := &w.buckets[idx%int64(len(w.buckets))]
	if bk.idx != idx {
		*bk = timeBucket{idx: idx}
	}
	bk.calls++
	bk.failures += int64(o >> 1 & 1)
	bk.slow += int64(o >> 2 & 1)
	w.mu.Unlock()
}

// sum adds up the buckets that lie within the window ending in bucket idx.
func (w *breakerTimeWindow) sum(idx int64) (calls, failures, slow int64) {
	w.mu.Lock()
	n := int64(len(w.buckets))
	for i := range w.buckets {
		bk := &w.buckets[i]
		if bk.idx > idx-n && bk.idx <= idx {
			calls += bk.calls
			failures += bk.failures
			slow += bk.slow
		}
	}
	w.mu.Unlock()
	return calls, failures, slow
}

// breakerInFlight tracks the start times of calls in flight, so that calls
// that hang past the slow-call duration count as slow before they end: a
// dependency that stops answering trips the breaker while its calls still
// hang. Calls start in clock order, so the set is a queue (a ring buffer
// indexed by sequence number) and one timer, armed for the oldest call not
// yet judged, is enough.
type breakerInFlight struct {
	mu        sync.Mutex
	buf       []inFlightCall // len is a power of two
	head      uint64         // sequence number of the oldest call kept
	next      uint64         // sequence number of the next call
	mark      uint64         // oldest call not yet judged slow or not
	timer     clock.Timer
	armed     bool
	retired   bool
	slowCount atomic.Int64 // calls in flight past the slow-call duration
}

type inFlightCall struct {
	start      time.Time
	done, slow bool
}

func (f *breakerInFlight) at(seq uint64) *inFlightCall {
	return &f.buf[seq&uint64(len(f.buf)-1)]
}

// add registers a call that started at start and returns its sequence
// number.
func (f *breakerInFlight) add(b *Breaker, g *breakerGen, start time.Time) uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.next-f.head == uint64(len(f.buf)) {
		grown := make([]inFlightCall, 2*len(f.buf))
		for s := f.head; s < f.next; s++ {
			grown[s&uint64(len(grown)-1)] = *f.at(s)
		}
		f.buf = grown
	}
	seq := f.next
	f.next++
	*f.at(seq) = inFlightCall{start: start}
	if !f.armed && !f.retired && f.mark == seq {
		f.arm(b, g, b.cfg.slowDuration+1)
	}
	return seq
}

// arm sets the timer to judge the oldest unjudged call after d. The extra
// nanosecond callers add makes "slow" mean strictly longer than the
// slow-call duration, as for calls that end.
func (f *breakerInFlight) arm(b *Breaker, g *breakerGen, d time.Duration) {
	f.armed = true
	if f.timer == nil {
		f.timer = b.cfg.clock.AfterFunc(d, func() { f.fire(b, g) })
		return
	}
	f.timer.Reset(d)
}

// done removes the call seq from the set.
func (f *breakerInFlight) done(seq uint64) {
	f.mu.Lock()
	c := f.at(seq)
	c.done = true
	if c.slow {
		f.slowCount.Add(-1)
	}
	for f.head < f.next && f.at(f.head).done {
		f.head++
	}
	if f.mark < f.head {
		f.mark = f.head
	}
	f.mu.Unlock()
}

// fire judges the calls whose slow-call duration has passed, re-arms the
// timer for the next one and trips the breaker if the hung calls tip a
// ratio over.
func (f *breakerInFlight) fire(b *Breaker, g *breakerGen) {
	f.mu.Lock()
	if f.retired {
		f.mu.Unlock()
		return
	}
	f.armed = false
	now := b.cfg.clock.Now()
	found := false
	for ; f.mark < f.next; f.mark++ {
		c := f.at(f.mark)
		if c.done {
			continue
		}
		if left := c.start.Add(b.cfg.slowDuration).Sub(now); left >= 0 {
			f.arm(b, g, left+1)
			break
		}
		c.slow = true
		f.slowCount.Add(1)
		found = true
	}
	f.mu.Unlock()
	if !found || b.cur.Load() != g {
		return
	}
	switch g.state {
	case StateHalfOpen:
		b.trip(g)
	case StateClosed:
		if b.cfg.ratios && b.ratioTripped(g, now) {
			b.trip(g)
		}
	}
}

func (f *breakerInFlight) retire() {
	f.mu.Lock()
	f.retired = true
	if f.timer != nil {
		f.timer.Stop()
	}
	f.mu.Unlock()
}
