package resilience

import (
	"context"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/relia-dev/relia/clock"
)

// DefaultBulkheadMaxConcurrent is a bulkhead's number of slots when
// BulkheadSettings.MaxConcurrent is left zero: more than a healthy
// dependency of a typical service has in flight, few enough that a hung one
// cannot tie up more than this many goroutines and connections.
const DefaultBulkheadMaxConcurrent = 100

// BulkheadSettings configures a Bulkhead. Every zero value means the
// default documented on its field; a value out of range makes NewBulkhead
// fail.
type BulkheadSettings struct {
	// Name identifies the bulkhead in errors, events and metrics (the
	// dependency or route it guards).
	Name string
	// MaxConcurrent is how many calls may run at once. Zero means
	// DefaultBulkheadMaxConcurrent; negative is an error.
	MaxConcurrent int
	// MaxQueue is how many calls may wait for a slot when all are taken;
	// a call that finds the queue full too is rejected at once. Zero means
	// no queue: a call that finds every slot taken is rejected at once.
	// Negative is an error.
	MaxQueue int
	// MaxWait is the longest a queued call waits for a slot before it is
	// rejected. Zero means it waits as long as its context allows, and
	// forever under a context that never ends. Negative, or set without a
	// queue (nothing would wait), is an error.
	MaxWait time.Duration
	// Clock is the source of time for MaxWait; nil means the real clock.
	Clock clock.Clock
	// Observer receives EventAcquired and EventReleased with the new
	// occupancy (InFlight and Queued), and EventRejected with reason
	// "bulkhead_full" or "bulkhead_wait_timeout"; nil means none.
	Observer Observer
}

// Bulkhead bounds how many calls run at once, so that one slow or hung
// dependency cannot take every goroutine, connection and byte of memory a
// service has: calls beyond MaxConcurrent wait in a FIFO queue of at most
// MaxQueue for at most MaxWait, and are otherwise rejected with a
// *RejectedError matching ErrBulkheadFull.
//
// Slots are handed out in arrival order: while anyone waits, a new call
// queues behind them, and a freed slot goes straight to the longest
// waiter. A call whose context ends while it waits gets its context's
// error, not a rejection: the caller gave up, the bulkhead refused
// nothing.
//
// A Bulkhead is a Policy for a Pipeline; proxies use the two-step form
// Acquire and BulkheadPermit.Release. It is safe for concurrent use. While
// nobody waits, taking and giving back a slot is one atomic
// compare-and-swap each, with no lock, clock read or allocation.
type Bulkhead struct {
	name     string
	max      uint64
	maxQueue uint64
	maxWait  time.Duration
	clock    clock.Clock
	observer Observer

	// state packs the occupancy into one word so that a slot is taken
	// or given back with a single compare-and-swap that also sees whether
	// anyone waits: the low 32 bits count calls in flight, the high 32
	// bits calls queued. While the queue count is non-zero, state changes
	// only under mu.
	state atomic.Uint64

	mu sync.Mutex
	// head and tail are the queue of waiters, oldest first. Guarded by mu.
	head, tail *bulkheadWaiter
}

// bulkheadQueuedOne is one queued call in the packed state; adding
// bulkheadUnqueue takes one away.
const (
	bulkheadQueuedOne uint64 = 1 << 32
	bulkheadUnqueue          = ^(bulkheadQueuedOne - 1)
)

func bulkheadInFlight(s uint64) uint64 { return s & (bulkheadQueuedOne - 1) }
func bulkheadQueued(s uint64) uint64   { return s >> 32 }

// bulkheadWaiter is one queued call. ready receives a token when a slot is
// handed to it; granted records the hand-over under the bulkhead's mu, so a
// waiter whose context ends at the same moment knows it holds a slot.
type bulkheadWaiter struct {
	ready      chan struct{}
	granted    bool
	prev, next *bulkheadWaiter
}

// bulkheadWaiters recycles waiters with their channels: every waiter leaves
// with its channel empty, so it can be reused as it is.
var bulkheadWaiters = sync.Pool{New: func() any { return &bulkheadWaiter{ready: make(chan struct{}, 1)} }}

var _ Policy = (*Bulkhead)(nil)

// NewBulkhead returns a Bulkhead configured by s, or an error naming the
// first setting out of range.
func NewBulkhead(s BulkheadSettings) (*Bulkhead, error) {
	if err := s.fill(); err != nil {
		if s.Name != "" {
			return nil, fmt.Errorf("bulkhead %s: %w", s.Name, err)
		}
		return nil, fmt.Errorf("bulkhead: %w", err)
	}
	return &Bulkhead{
		name:     s.Name,
		max:      uint64(s.MaxConcurrent),
		maxQueue: uint64(s.MaxQueue),
		maxWait:  s.MaxWait,
		clock:    clock.OrReal(s.Clock),
		observer: s.Observer,
	}, nil
}

// fill validates s and puts the defaults into its zero fields.
func (s *BulkheadSettings) fill() error {
	switch {
	case s.MaxConcurrent < 0 || s.MaxConcurrent > math.MaxInt32:
		return fmt.Errorf("max concurrent %d: must lie in [0, %d]", s.MaxConcurrent, math.MaxInt32)
	case s.MaxQueue < 0 || s.MaxQueue > math.MaxInt32:
		return fmt.Errorf("max queue %d: must lie in [0, %d]", s.MaxQueue, math.MaxInt32)
	case s.MaxWait < 0:
		return fmt.Errorf("max wait %s: must not be negative", s.MaxWait)
	case s.MaxWait > 0 && s.MaxQueue == 0:
		return fmt.Errorf("max wait %s set without a queue: no call ever waits", s.MaxWait)
	}
	if s.MaxConcurrent == 0 {
		s.MaxConcurrent = DefaultBulkheadMaxConcurrent
	}
	return nil
}

// Name returns the bulkhead's name.
func (b *Bulkhead) Name() string { return b.name }

// InFlight returns how many calls hold a slot.
func (b *Bulkhead) InFlight() int { return int(bulkheadInFlight(b.state.Load())) }

// Queued returns how many calls wait for a slot.
func (b *Bulkhead) Queued() int { return int(bulkheadQueued(b.state.Load())) }

// BulkheadPermit is a slot taken by Acquire. Give it back with Release
// exactly once. It is a one-word value: keep it on the stack; the zero
// BulkheadPermit's Release does nothing.
type BulkheadPermit struct {
	b *Bulkhead
}

// Acquire takes a slot, waiting in the queue for one when all are taken
// and the queue has room. The caller makes its call and then gives the slot
// back with the permit's Release.
//
// It refuses with a *RejectedError matching ErrBulkheadFull, reason
// "bulkhead_full" when slots and queue are full, or "bulkhead_wait_timeout"
// when MaxWait passed before a slot came free. When ctx ends while the call
// waits, it returns ctx's error.
func (b *Bulkhead) Acquire(ctx context.Context) (BulkheadPermit, error) {
	s := b.state.Load()
	for bulkheadQueued(s) == 0 && bulkheadInFlight(s) < b.max {
		if b.state.CompareAndSwap(s, s+1) {
			b.observe(EventAcquired, s+1)
			return BulkheadPermit{b: b}, nil
		}
		s = b.state.Load()
	}
	return b.acquireSlow(ctx)
}

// acquireSlow takes a slot under the lock, or queues for one.
func (b *Bulkhead) acquireSlow(ctx context.Context) (BulkheadPermit, error) {
	b.mu.Lock()
	for {
		s := b.state.Load()
		switch {
		case bulkheadQueued(s) == 0 && bulkheadInFlight(s) < b.max:
			if b.state.CompareAndSwap(s, s+1) {
				b.mu.Unlock()
				b.observe(EventAcquired, s+1)
				return BulkheadPermit{b: b}, nil
			}
		case bulkheadQueued(s) >= b.maxQueue:
			b.mu.Unlock()
			return BulkheadPermit{}, b.reject("bulkhead_full")
		case ctx.Err() != nil:
			// Already over before it started to wait: no point queueing.
			b.mu.Unlock()
			return BulkheadPermit{}, ctx.Err()
		default:
			// While the queue count is non-zero nobody changes the state
			// without mu, so the waiter is in the queue before any
			// release can look for it.
			if b.state.CompareAndSwap(s, s+bulkheadQueuedOne) {
				w := bulkheadWaiters.Get().(*bulkheadWaiter)
				b.pushLocked(w)
				b.mu.Unlock()
				return b.wait(ctx, w)
			}
		}
	}
}

// wait blocks a queued waiter until a slot is handed to it, MaxWait passes
// or ctx ends.
func (b *Bulkhead) wait(ctx context.Context, w *bulkheadWaiter) (BulkheadPermit, error) {
	var expired <-chan time.Time
	if b.maxWait > 0 {
		t := b.clock.NewTimer(b.maxWait)
		defer t.Stop()
		expired = t.C()
	}
	var cause error
	select {
	case <-w.ready:
		w.granted = false
		bulkheadWaiters.Put(w)
		return BulkheadPermit{b: b}, nil
	case <-expired:
	case <-ctx.Done():
		cause = ctx.Err()
	}
	b.mu.Lock()
	granted := w.granted
	if granted {
		// A slot was handed over as the wait ended: take the token, so the
		// waiter can be reused. A caller who gave up passes the slot on; a
		// caller whose MaxWait passed keeps it, since it came in time.
		<-w.ready
		if cause != nil {
			b.releaseLocked()
		}
	} else {
		b.removeLocked(w)
		b.state.Add(bulkheadUnqueue)
	}
	b.mu.Unlock()
	w.granted = false
	bulkheadWaiters.Put(w)
	switch {
	case cause != nil:
		return BulkheadPermit{}, cause
	case granted:
		return BulkheadPermit{b: b}, nil
	}
	return BulkheadPermit{}, b.reject("bulkhead_wait_timeout")
}

// Release gives the slot back: to the longest waiter if anyone waits,
// otherwise to the pool of free slots.
func (p BulkheadPermit) Release() {
	b := p.b
	if b == nil {
		return
	}
	s := b.state.Load()
	for bulkheadQueued(s) == 0 {
		if b.state.CompareAndSwap(s, s-1) {
			b.observe(EventReleased, s-1)
			return
		}
		s = b.state.Load()
	}
	b.mu.Lock()
	b.releaseLocked()
	b.mu.Unlock()
}

// releaseLocked gives a slot back with mu held, handing it to the oldest
// waiter when there is one.
func (b *Bulkhead) releaseLocked() {
	w := b.head
	if w == nil {
		// Nobody waits, and nobody can start to without mu.
		s := b.state.Add(^uint64(0))
		b.observe(EventReleased, s)
		return
	}
	b.removeLocked(w)
	w.granted = true
	s := b.state.Add(bulkheadUnqueue)
	w.ready <- struct{}{}
	// The slot changes hands without being freed: one call leaves, one
	// joins, the queue shrinks by one.
	b.observe(EventReleased, s)
	b.observe(EventAcquired, s)
}

func (b *Bulkhead) pushLocked(w *bulkheadWaiter) {
	w.prev, w.next = b.tail, nil
	if b.tail == nil {
		b.head = w
	} else {
		b.tail.next = w
	}
	b.tail = w
}

func (b *Bulkhead) removeLocked(w *bulkheadWaiter) {
	if w.prev == nil {
		b.head = w.next
	} else {
		w.prev.next = w.next
	}
	if w.next == nil {
		b.tail = w.prev
	} else {
		w.next.prev = w.prev
	}
	w.prev, w.next = nil, nil
}

func (b *Bulkhead) observe(kind EventKind, s uint64) {
	if b.observer != nil {
		b.observer.Observe(Event{Kind: kind, Policy: "bulkhead", Name: b.name,
			InFlight: int(bulkheadInFlight(s)), Queued: int(bulkheadQueued(s))})
	}
}

func (b *Bulkhead) reject(reason string) error {
	if b.observer != nil {
		s := b.state.Load()
		b.observer.Observe(Event{Kind: EventRejected, Policy: "bulkhead", Name: b.name, Reason: reason,
			InFlight: int(bulkheadInFlight(s)), Queued: int(bulkheadQueued(s))})
	}
	return &RejectedError{Policy: "bulkhead", Name: b.name, Reason: reason, Sentinel: ErrBulkheadFull}
}

// Run implements Policy: it runs next holding a slot, and gives the slot
// back when next returns or panics.
func (b *Bulkhead) Run(ctx context.Context, next Next) error {
	p, err := b.Acquire(ctx)
	if err != nil {
		return err
	}
	defer p.Release()
	return next.Call(ctx)
}
