package netyield

import (
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/relia-dev/relia/clock"
)

// TestNextLookNearTheGoal: the watcher looks every watchNearEvery once
// the heap is within a tenth of the way to its goal, sleeps half the time
// the heap takes to get there before, and watchIdle on a heap that does
// not grow.
func TestNextLookNearTheGoal(t *testing.T) {
	const mb = 1 << 20
	for _, c := range []struct {
		name string
		h    heapState
		rate float64
		want time.Duration
	}{
		{"near", heapState{live: 5 * mb, goal: 69 * mb, inUse: 63 * mb}, 30 * mb, watchNearEvery},
		{"past the goal", heapState{live: 5 * mb, goal: 69 * mb, inUse: 70 * mb}, 0, watchNearEvery},
		// 90% of the way is 5 + 57.6 MiB; 3 MiB short of it at 30 MiB/s,
		// half the time is 50 ms.
		{"on the way", heapState{live: 5 * mb, goal: 69 * mb, inUse: 5*mb + 60397977 - 3*mb}, 30 * mb, 50 * time.Millisecond},
		{"far away", heapState{live: 5 * mb, goal: 69 * mb, inUse: 6 * mb}, 30 * mb, watchIdle},
		{"far and slow", heapState{live: 5 * mb, goal: 69 * mb, inUse: 60 * mb}, 1 * mb, watchIdle},
		{"not growing", heapState{live: 5 * mb, goal: 69 * mb, inUse: 6 * mb}, 0, watchIdle},
		{"almost there", heapState{live: 5 * mb, goal: 69 * mb, inUse: 5*mb + 60397977 - 1024}, 30 * mb, watchNearEvery},
		{"no goal above the live heap", heapState{live: 5 * mb, goal: 5 * mb}, 30 * mb, watchNearEvery},
	} {
		if got := c.h.nextLook(c.rate); got != c.want {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
}

// TestRateMeterSpans: the rate is taken over rateSpan at least, so that
// a look between two of the counters' updates does not read as a heap
// that stopped growing.
func TestRateMeterSpans(t *testing.T) {
	start := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	m := rateMeter{base: 1000, at: start}
	m.update(1000, start.Add(time.Millisecond)) // too soon: no reading
	if m.perSecond != 0 || m.base != 1000 {
		t.Fatalf("a look within the span moved the meter: %+v", m)
	}
	m.update(1000+20<<20, start.Add(rateSpan*10)) // 20 MiB over 200 ms
	if want := float64(100 << 20); m.perSecond != want {
		t.Errorf("rate %v, want %v", m.perSecond, want)
	}
	m.update(1000+20<<20, start.Add(rateSpan*11))
	if m.perSecond != 0 {
		t.Errorf("a heap that did not grow over a span: rate %v", m.perSecond)
	}
}

// pumpWith runs a pump on a fake clock whose rounds report frees, one
// value a round (the last repeated), and returns its rounds.
func pumpWith(t *testing.T, frees []uint64) int {
	t.Helper()
	fc := clock.NewFake(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	var n atomic.Int64
	w := newSweepWatch(fc, nil, func() uint64 {
		i := int(n.Add(1)) - 1
		return frees[min(i, len(frees)-1)]
	})
	rounds := make(chan int, 1)
	w.pumped = func(r int) { rounds <- r }
	go w.pump()
	for {
		select {
		case r := <-rounds:
			return r
		default:
		}
		if fc.Waiters() == 0 { // the pump is between two rounds, or done
			time.Sleep(10 * time.Microsecond)
			continue
		}
		fc.Advance(Quantum)
	}
}

// TestPumpRunsWhileTheSweepFrees: a pump gives the poller a round every
// Quantum while the frees grow, and ends sweepSettle after they stopped.
func TestPumpRunsWhileTheSweepFrees(t *testing.T) {
	settle := int(sweepSettle / Quantum)
	if got, want := pumpWith(t, []uint64{10, 20, 30, 40}), 4+settle; got != want {
		t.Errorf("frees growing for 3 rounds: %d rounds, want %d", got, want)
	}
	if got, want := pumpWith(t, []uint64{7}), 1+settle; got != want {
		t.Errorf("nothing to sweep: %d rounds, want %d", got, want)
	}
	grows := make([]uint64, 5000)
	for i := range grows {
		grows[i] = uint64(i)
	}
	if got, want := pumpWith(t, grows), 1+int(sweepWindow/Quantum); got != want {
		t.Errorf("frees that never stop: %d rounds, want the window's %d", got, want)
	}
}

// TestWatcherPumpsOnceACollectionEnded: the watcher pumps when the
// collections' count moved, and not on a process with more than one
// processor, where it looks only every watchIdle.
func TestWatcherPumpsOnceACollectionEnded(t *testing.T) {
	for _, single := range []bool{true, false} {
		fc := clock.NewFake(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
		var mu sync.Mutex
		h := heapState{cycles: 1, live: 5 << 20, goal: 69 << 20, inUse: 68 << 20}
		var pumps, looks atomic.Int64
		w := newSweepWatch(fc, func() heapState { mu.Lock(); defer mu.Unlock(); looks.Add(1); return h }, func() uint64 { return 0 })
		w.single = func() bool { return single }
		w.pumped = func(int) { pumps.Add(1) }
		go w.run()
		fc.BlockUntil(1) // the watcher's first look waits
		fc.Advance(watchIdle)
		fc.BlockUntil(1)
		mu.Lock()
		h.cycles, h.inUse = 2, 6<<20 // a collection ended
		mu.Unlock()
		before := looks.Load()
		fc.Advance(watchIdle)
		for range int(sweepSettle/Quantum) + 2 { // the pump's rounds, then the watcher's next look
			fc.BlockUntil(1)
			fc.Advance(Quantum)
		}
		fc.BlockUntil(1)
		w.stop()
		if looks.Load() == before {
			t.Fatalf("one processor %v: the watcher did not look after the collection", single)
		}
		if got, want := pumps.Load(), map[bool]int64{true: 1, false: 0}[single]; got != want {
			t.Errorf("one processor %v: %d pumps, want %d", single, got, want)
		}
	}
}

// TestSweepWatchSeesARealCollection: on one processor, with the
// runtime's own counters, the watcher pumps after a collection the
// heap's growth started.
func TestSweepWatchSeesARealCollection(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	samples := heapMetricSamples()
	w := newSweepWatch(clock.Real(), func() heapState { return readHeap(samples) }, readFrees)
	pumped := make(chan int, 16)
	w.pumped = func(r int) { pumped <- r }
	go w.run()
	defer w.stop()
	var keep [][]byte
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		for range 1000 {
			keep = append(keep, make([]byte, 512))
			if len(keep) > 4096 {
				keep = keep[:0]
			}
		}
		select {
		case r := <-pumped:
			if r < 1 {
				t.Fatalf("a pump of %d rounds", r)
			}
			return
		default:
			runtime.Gosched()
		}
	}
	t.Fatal("no pump after 20 s of collections")
}
