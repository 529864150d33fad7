package netyield

import (
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// Quantum is how long goroutines may take turns by runtime.Gosched alone
// before Yield makes them wait for a round of the network poller. A round
// costs a few microseconds (an eventfd's write and read, and a park and a
// wake of each yielding goroutine), so a round every Quantum of bursts
// costs them a few percent.
const Quantum = 100 * time.Microsecond

// epoch is what lastRound counts from: time.Since reads the monotonic
// clock, which no wall-clock step moves.
var epoch = time.Now()

// rounds hands out the poller's rounds. Its zero value starts the
// waiting goroutine on first use.
type rounds struct {
	// lastRound is when the last round ended, in nanoseconds from epoch.
	lastRound atomic.Int64
	quantum   time.Duration

	start sync.Once
	mu    sync.Mutex
	ok    bool          // the poller watches the round's descriptor
	next  chan struct{} // closed as the next round comes
	asked bool          // the next round was asked for
	poke  func()        // asks the poller for a round
}

var shared = rounds{quantum: Quantum}

// Yield lets other goroutines run: those runnable now, and, once Quantum
// passed since the network poller's last round through Yield, those its
// next round wakes; it returns when they had their turn.
func Yield() { shared.yield() }

func (r *rounds) yield() {
	if time.Duration(time.Since(epoch).Nanoseconds()-r.lastRound.Load()) < r.quantum {
		runtime.Gosched()
		return
	}
	r.start.Do(r.begin)
	r.mu.Lock()
	if !r.ok {
		r.mu.Unlock()
		runtime.Gosched()
		return
	}
	next := r.next
	if !r.asked {
		r.asked = true
		r.poke()
	}
	r.mu.Unlock()
	<-next
}

// roundCame wakes the goroutines that wait for the round, once the
// poller woke the goroutine that waits for it.
func (r *rounds) roundCame() {
	r.mu.Lock()
	close(r.next)
	r.next = make(chan struct{})
	r.asked = false
	r.lastRound.Store(time.Since(epoch).Nanoseconds())
	r.mu.Unlock()
}
