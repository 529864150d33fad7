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
// cannot slow the offered load down (no coordinated omission). Arrivals go
// to a pool of at most MaxInFlight workers; an arrival that finds every
// worker busy is dropped and counted, never queued behind the others.
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
	// Drop is told of every arrival no worker was free for.
	Drop func(a Arrival)
}

// OpenStats sums up a finished open-model run.
type OpenStats struct {
	Dispatched, Dropped uint64
	// Workers is the most workers that ran at once.
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
	work := make(chan Arrival)
	var wg sync.WaitGroup
	var stats OpenStats
	worker := func(id int, first Arrival) {
		defer wg.Done()
		do := e.Do
		if e.NewWorker != nil {
			do = e.NewWorker(id)
		}
		do(ctx, first)
		for a := range work {
			do(ctx, a)
		}
	}
	timer := clk.NewTimer(time.Hour)
	timer.Stop()
	share := seg.Share(e.Schedule.Total())
dispatch:
	for k := uint64(0); k < share; k++ {
		n := seg.Nth(k)
		at, ok := e.Schedule.Arrival(n)
		if !ok {
			break
		}
		due := start.Add(at)
		if wait := due.Sub(clk.Now()); wait > 0 {
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
		a := Arrival{N: n, Due: due}
		select {
		case work <- a:
			stats.Dispatched++
		default:
			if stats.Workers < e.MaxInFlight {
				stats.Workers++
				stats.Dispatched++
				wg.Add(1)
				go worker(stats.Workers-1, a)
			} else {
				stats.Dropped++
				if e.Drop != nil {
					e.Drop(a)
				}
			}
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
	set := func(target int) {
		for len(running) < target {
			h := &vuHandle{}
			vu := int(seg.Nth(uint64(len(running))))
			running = append(running, h)
			wg.Add(1)
			go func() {
				defer wg.Done()
				// No iteration starts at or after the profile's end, even
				// before the controller has noticed the end.
				for !h.stop.Load() && runCtx.Err() == nil && clk.Now().Before(end) {
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
