package netyield

import (
	"runtime"
	"runtime/metrics"
	"sync"
	"time"

	"github.com/relia-dev/relia/clock"
)

// After each collection the runtime sweeps the heap, with one processor
// mostly in its background sweeper, which yields every few spans by
// runtime.Gosched (golang/go#56060): it goes back on the global run
// queue, the scheduler finds it there before it looks at the network,
// and the goroutines whose sockets became ready wait for the sweep to end
// or for the runtime monitor's poll, 10 ms on. A sweep of relia's 64 MiB
// heap (internal/gcfloor) ran 3-7 ms at a time that way, every 2 s at
// 3,000 AI streams a second, and each one held up the first tokens of
// the 20-80 streams that arrived meanwhile (docs/benchmarks.md).
//
// PollDuringSweeps gives the poller its rounds meanwhile. A watcher
// notices each collection's end (its count in runtime/metrics), looking
// often only once the heap nears the collector's goal, and then, every
// Quantum while the sweep frees objects, stops the world for a moment
// (runtime.ReadMemStats, about 1.3 µs with one processor): the runtime
// polls the network as it starts the world again, and puts the
// goroutines it woke on the processor's own run queue, ahead of the
// sweeper.

const (
	// sweepSettle ends a pump: a sweep that freed nothing for this long
	// is over (the sweeper has the processor whenever the goroutines the
	// pump woke have nothing to do).
	sweepSettle = time.Millisecond
	// sweepWindow bounds a pump.
	sweepWindow = 100 * time.Millisecond
	// watchNear is how close to its goal, as a share of the way from the
	// live heap, the heap is when the watcher starts looking every
	// watchNearEvery: Go's pacer starts a collection at 70-95% of the
	// way, relia's heap (a small live heap under gcfloor's floor) at 95%.
	// A collection that starts earlier is seen on a coarser look.
	watchNear      = 0.9
	watchNearEvery = 250 * time.Microsecond
	// watchIdle is the longest the watcher sleeps: what a heap that
	// does not grow costs it.
	watchIdle = 100 * time.Millisecond
)

// PollDuringSweeps starts giving the network poller a round every
// Quantum while the runtime sweeps the heap after a collection, on a
// process with one processor (GOMAXPROCS=1: with more, an idle
// processor's thread waits in the poller), until stop is called.
func PollDuringSweeps() (stop func()) {
	samples := heapMetricSamples()
	w := newSweepWatch(clock.Real(), func() heapState { return readHeap(samples) }, readFrees)
	w.single = func() bool { return runtime.GOMAXPROCS(0) == 1 }
	go w.run()
	return w.stop
}

func newSweepWatch(c clock.Clock, heap func() heapState, round func() uint64) *sweepWatch {
	return &sweepWatch{clock: c, heap: heap, round: round, single: func() bool { return true }, done: make(chan struct{})}
}

// stop ends the watch, and a pump under way.
func (w *sweepWatch) stop() { w.once.Do(func() { close(w.done) }) }

// heapState is what the watcher reads of the heap.
type heapState struct {
	cycles      uint64 // collections ended
	allocated   uint64 // bytes allocated, ever
	inUse, goal uint64 // bytes of the heap's objects not yet swept free, and the collector's goal
	live        uint64 // bytes the last collection left live
}

// sweepWatch watches for collections and pumps the poller through each
// one's sweep.
type sweepWatch struct {
	clock clock.Clock
	heap  func() heapState
	// round gives the poller a round and returns how many objects the
	// runtime has freed so far, which grows while it sweeps.
	round func() uint64
	// single says the process runs on one processor, where the sweeper
	// keeps the poller waiting.
	single func() bool
	done   chan struct{}
	once   sync.Once
	// pumped, if set, hears how many rounds each sweep got (tests).
	pumped func(rounds int)
}

var heapSamples = []string{
	"/gc/cycles/total:gc-cycles", "/gc/heap/allocs:bytes", "/gc/heap/frees:bytes",
	"/gc/heap/goal:bytes", "/gc/heap/live:bytes",
}

// heapMetricSamples are the samples readHeap reads into.
func heapMetricSamples() []metrics.Sample {
	s := make([]metrics.Sample, len(heapSamples))
	for i, name := range heapSamples {
		s[i].Name = name
	}
	return s
}

// readHeap reads the heap's state into s, samples of heapSamples.
func readHeap(s []metrics.Sample) heapState {
	metrics.Read(s)
	v := func(i int) uint64 {
		if s[i].Value.Kind() != metrics.KindUint64 {
			return 0
		}
		return s[i].Value.Uint64()
	}
	h := heapState{cycles: v(0), allocated: v(1), goal: v(3), live: v(4)}
	if freed := v(2); freed < h.allocated {
		h.inUse = h.allocated - freed
	}
	return h
}

// readFrees stops and starts the world, which polls the network, and
// returns the count of objects the collector freed: those of the size
// classes (MemStats.Frees counts each tiny allocation as freed at once).
func readFrees() uint64 {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	n := uint64(0)
	for _, c := range ms.BySize {
		n += c.Frees
	}
	return n
}

func (w *sweepWatch) run() {
	last := w.heap()
	rate := rateMeter{base: last.allocated, at: w.clock.Now()}
	t := w.clock.NewTimer(w.nextLook(last, 0))
	defer t.Stop()
	for w.wait(t) {
		h := w.heap()
		if h.cycles != last.cycles && w.single() {
			w.pump()
			h = w.heap()
		}
		rate.update(h.allocated, w.clock.Now())
		last = h
		t.Reset(w.nextLook(last, rate.perSecond))
	}
}

// nextLook is how long the watcher sleeps after reading h: as h says on
// one processor, and watchIdle with more, where it only watches for
// GOMAXPROCS to change.
func (w *sweepWatch) nextLook(h heapState, rate float64) time.Duration {
	if !w.single() {
		return watchIdle
	}
	return h.nextLook(rate)
}

// wait waits for t to fire and reports true, or for the watch's end and
// reports false.
func (w *sweepWatch) wait(t clock.Timer) bool {
	select {
	case <-w.done:
		return false
	case <-t.C():
		return true
	}
}

// rateMeter measures how fast the heap grows, over spans of rateSpan at
// least: allocations reach the counters a span of memory at a time.
type rateMeter struct {
	base      uint64
	at        time.Time
	perSecond float64
}

const rateSpan = 20 * time.Millisecond

func (m *rateMeter) update(allocated uint64, now time.Time) {
	d := now.Sub(m.at)
	if d < rateSpan {
		return
	}
	m.perSecond = 0
	if allocated > m.base {
		m.perSecond = float64(allocated-m.base) / d.Seconds()
	}
	m.base, m.at = allocated, now
}

// nextLook is how long the watcher may sleep before it looks again:
// watchNearEvery once the heap is near its goal, else half the time the
// heap takes to get near it at rate bytes a second, within watchIdle.
func (h heapState) nextLook(rate float64) time.Duration {
	if h.goal <= h.live {
		return watchNearEvery
	}
	near := h.live + uint64(watchNear*float64(h.goal-h.live))
	if h.inUse >= near {
		return watchNearEvery
	}
	if rate <= 0 {
		return watchIdle
	}
	d := time.Duration(float64(near-h.inUse) / rate / 2 * float64(time.Second))
	return min(max(d, watchNearEvery), watchIdle)
}

// pump gives the poller a round every Quantum while the sweep frees
// objects, until it freed none for sweepSettle, within sweepWindow.
func (w *sweepWatch) pump() {
	start := w.clock.Now()
	freed := w.round()
	changed := start
	rounds := 1
	t := w.clock.NewTimer(Quantum)
	defer t.Stop()
	for {
		if !w.wait(t) {
			return
		}
		now := w.clock.Now()
		f := w.round()
		rounds++
		if f != freed {
			freed, changed = f, now
		}
		if now.Sub(changed) >= sweepSettle || now.Sub(start) >= sweepWindow {
			break
		}
		t.Reset(Quantum)
	}
	if w.pumped != nil {
		w.pumped(rounds)
	}
}
