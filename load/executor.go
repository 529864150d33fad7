package load

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/relia-dev/relia/clock"
)

// Arrival is one open-model request as the dispatcher hands it to a
// worker: its number in the whole test and the time it was due.
type Arrival struct {
	N   uint64
	Due time.Time
}

// OpenExecutor runs an open-model test: arrival n is due at
// Start+Schedule.Arrival(n) whatever the service does, so a slow service
// cannot slow the offered load down (no coordinated omission). At most
// MaxInFlight arrivals are in flight at once, counting those handed to a
// worker and not yet picked up; an arrival that finds the cap reached is
// dropped and counted, never queued behind the others.
//
// Workers are goroutines started as they are needed: when an arrival is
// handed over and no worker is waiting for one. The pool thus stays near
// the concurrency the service needs (rate times response time) rather
// than the cap, so the dispatcher is not queued behind hundreds of
// runnable workers and sends on time.
type OpenExecutor struct {
	Schedule    *Schedule
	Segment     Segment
	MaxInFlight int
	Clock       clock.Clock
	// Do sends one request; it runs on a worker goroutine and returns when
	// the request is done.
	Do func(ctx context.Context, a Arrival)
	// NewWorker, when set, replaces Do: each worker goroutine calls it once,
	// with its number, and sends its requests with the function it returns,
	// so that per-worker state (buffers, a random source) needs no lock.
	NewWorker func(id int) func(ctx context.Context, a Arrival)
	// Drop is told of every arrival that found the in-flight cap reached.
	Drop func(a Arrival)
}

// fineTimerFor is how long before an arrival is due the real-clock
// dispatcher leaves Go's timer (which may wake a millisecond late) for the
// fine timer, which does not watch ctx.
const fineTimerFor = 2 * time.Millisecond

// OpenStats sums up a finished open-model run.
type OpenStats struct {
	Dispatched, Dropped uint64
	// Workers is the number of worker goroutines the run started.
	Workers int
}

// Run dispatches every arrival of its segment, then waits for the requests
// in flight. Cancelling ctx stops dispatching; requests in flight get ctx
// too, so they end as cancelled.
func (e *OpenExecutor) Run(ctx context.Context, start time.Time) OpenStats {
	clk := clock.OrReal(e.Clock)
	seg := e.Segment
	if seg.Count == 0 {
		seg = Whole
	}
	maxInFlight := max(e.MaxInFlight, 1)
	// The buffer holds every arrival that may be in flight, so handing one
	// over never blocks the dispatcher.
	work := make(chan Arrival, maxInFlight)
	var (
		wg       sync.WaitGroup
		stats    OpenStats
		inFlight atomic.Int64 // handed over and not yet done
		idle     atomic.Int64 // workers waiting for an arrival
	)
	worker := func(id int) {
		defer wg.Done()
		do := e.Do
		if e.NewWorker != nil {
			do = e.NewWorker(id)
		}
		for {
			idle.Add(1)
			a, ok := <-work
			idle.Add(-1)
			if !ok {
				return
			}
			do(ctx, a)
			inFlight.Add(-1)
		}
	}
	timer := clk.NewTimer(time.Hour)
	timer.Stop()
	var fine *fineTimer
	var fineFor time.Duration
	if clk == clock.Real() {
		if fine = newFineTimer(); fine != nil {
			defer fine.close()
			fineFor = fineTimerFor
		}
	}
	share := seg.Share(e.Schedule.Total())
dispatch:
	for k := uint64(0); k < share; k++ {
		n := seg.Nth(k)
		at, ok := e.Schedule.Arrival(n)
		if !ok {
			break
		}
		due := start.Add(at)
		if wait := due.Sub(clk.Now()) - fineFor; wait > 0 {
			timer.Reset(wait)
			select {
			case <-timer.C():
			case <-ctx.Done():
				timer.Stop()
				break dispatch
			}
		} else if ctx.Err() != nil {
			break
		}
		// The last stretch of the wait is on the fine timer, so arrivals
		// go out within microseconds of their schedule.
		if fine != nil {
			if wait := time.Until(due); wait > 0 && !fine.sleep(wait) {
				fine.close()
				fine, fineFor = nil, 0
				timer.Reset(wait)
				<-timer.C()
			}
		}
		a := Arrival{N: n, Due: due}
		if inFlight.Load() >= int64(maxInFlight) {
			stats.Dropped++
			if e.Drop != nil {
				e.Drop(a)
			}
			continue
		}
		inFlight.Add(1)
		work <- a
		stats.Dispatched++
		if int64(len(work)) > idle.Load() && stats.Workers < maxInFlight {
			wg.Add(1)
			go worker(stats.Workers)
			stats.Workers++
		}
	}
	close(work)
	wg.Wait()
	return stats
}

// ClosedExecutor runs a closed-model test: a number of virtual users, each
// looping over Iterate, follows Profile. Users start when the profile
// reaches them and stop, after their current iteration, when it falls
// below them.
type ClosedExecutor struct {
	Profile *VUProfile
	Segment Segment
	Clock   clock.Clock
	// Tick is how often the active count is re-evaluated; default 100ms.
	Tick time.Duration
	// Iterate runs one iteration of VU vu (its number in the whole test)
	// and returns when it is done, including its think time.
	Iterate func(ctx context.Context, vu int)
	// Active, when set, is told the number of running VUs whenever it
	// changes.
	Active func(n int)
	// GracefulStop is how long VUs still in an iteration at the end may
	// take to finish it before their context is cancelled; default 30s.
	GracefulStop time.Duration
}

// ClosedStats sums up a finished closed-model run.
type ClosedStats struct {
	Iterations uint64
	MaxActive  int
}

type vuHandle struct {
	stop atomic.Bool
}

// Run runs the profile to its end (or until ctx is cancelled), then waits
// for every VU to finish its iteration.
func (e *ClosedExecutor) Run(ctx context.Context, start time.Time) ClosedStats {
	clk := clock.OrReal(e.Clock)
	seg := e.Segment
	if seg.Count == 0 {
		seg = Whole
	}
	tick := e.Tick
	if tick <= 0 {
		tick = 100 * time.Millisecond
	}
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg         sync.WaitGroup
		iterations atomic.Uint64
		running    []*vuHandle
		stats      ClosedStats
	)
	end := start.Add(e.Profile.Duration())
	// No iteration starts at or after the profile's end, even before the
	// controller has noticed the end. A flag set by a timer says so; reading
	// the clock on every iteration costs more than the rest of the loop on
	// machines whose clock is not in the vDSO.
	var ended atomic.Bool
	endTimer := clk.AfterFunc(end.Sub(clk.Now()), func() { ended.Store(true) })
	defer endTimer.Stop()
	set := func(target int) {
		for len(running) < target {
			h := &vuHandle{}
			vu := int(seg.Nth(uint64(len(running))))
			running = append(running, h)
			wg.Add(1)
			go func() {
				defer wg.Done()
				for !h.stop.Load() && !ended.Load() && runCtx.Err() == nil {
					e.Iterate(runCtx, vu)
					iterations.Add(1)
				}
			}()
		}
		for len(running) > target {
			running[len(running)-1].stop.Store(true)
			running = running[:len(running)-1]
		}
		stats.MaxActive = max(stats.MaxActive, len(running))
		if e.Active != nil {
			e.Active(len(running))
		}
	}
	timer := clk.NewTimer(0)
	last := -1
loop:
	for {
		select {
		case <-timer.C():
		case <-ctx.Done():
			timer.Stop()
			break loop
		}
		now := clk.Now()
		if !now.Before(end) {
			break
		}
		if n := e.Profile.ActiveIn(seg, now.Sub(start)); n != last {
			set(n)
			last = n
		}
		timer.Reset(min(tick, end.Sub(now)))
	}
	set(0)
	grace := e.GracefulStop
	if grace <= 0 {
		grace = 30 * time.Second
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	timer.Reset(grace)
	select {
	case <-done:
	case <-timer.C():
	case <-ctx.Done():
	}
	timer.Stop()
	cancel()
	<-done
	stats.Iterations = iterations.Load()
	return stats
}
