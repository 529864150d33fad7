package gcfloor

import (
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync"
)

// Floor is the floor relia's long-running servers keep (relia gateway,
// relia ai serve).
const Floor = 64 << 20

// heapMinimum is the runtime's least heap goal at GOGC=100.
const heapMinimum = 4 << 20

// Percent bounds: the default's doubling at least, and at most the
// goal a live heap of 1/maxPercent of the floor would get.
const (
	minPercent = 100
	maxPercent = 5000
)

// keeper sets the collector's percent after each collection.
type keeper struct {
	floor uint64
	// tuned, if set, hears each percent set (for tests).
	tuned func(percent int)

	mu      sync.Mutex
	stopped bool
	percent int // the GOGC set now
	sample  []metrics.Sample
}

// Keep holds the heap goal at least floor bytes above the live heap
// until stop is called, which restores the percent that was set before.
// It does nothing when GOGC is set in the environment.
func Keep(floor uint64) (stop func()) {
	if os.Getenv("GOGC") != "" || floor == 0 {
		return func() {}
	}
	return keep(floor, nil)
}

func keep(floor uint64, tuned func(int)) func() {
	before := debug.SetGCPercent(minPercent)
	debug.SetGCPercent(before)
	if before <= 0 {
		return func() {} // collection is off, or at every allocation: the program's choice
	}
	k := &keeper{floor: floor, tuned: tuned, percent: before, sample: []metrics.Sample{
		{Name: "/gc/heap/live:bytes"}, {Name: "/gc/heap/goal:bytes"},
	}}
	k.arm()
	k.tune() // from now, not from the next collection
	return func() {
		k.mu.Lock()
		k.stopped = true
		k.mu.Unlock()
		debug.SetGCPercent(before)
	}
}

// arm leaves an object for the next collection to find unreachable; its
// cleanup, which runs after that collection, tunes and arms again.
func (k *keeper) arm() {
	// 16 bytes or more, so that the tiny allocator does not pack it
	// with objects that keep it alive.
	sentinel := new([2]uint64)
	runtime.AddCleanup(sentinel, func(k *keeper) {
		if k.tune() {
			k.arm()
		}
	}, k)
}

// tune sets the percent for the live heap the last collection left; it
// reports false once stopped.
func (k *keeper) tune() bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.stopped {
		return false
	}
	// The goal is the live heap plus GOGC percent of a base: the live
	// heap, the goroutine stacks and the globals, as the runtime counts
	// them. The goal the current percent gave tells what that base is.
	metrics.Read(k.sample)
	if k.sample[0].Value.Kind() != metrics.KindUint64 || k.sample[1].Value.Kind() != metrics.KindUint64 {
		return true
	}
	live, goal := k.sample[0].Value.Uint64(), k.sample[1].Value.Uint64()
	if goal <= live {
		return true
	}
	p := percentFor((goal-live)*100/uint64(k.percent), k.floor)
	if p != k.percent {
		debug.SetGCPercent(p)
		k.percent = p
		if k.tuned != nil {
			k.tuned(p)
		}
	}
	return true
}

// percentFor is the GOGC that puts the next collection floor bytes
// above the live heap, or where Go's default would where that is later,
// given what GOGC is a share of (the live heap, stacks and globals);
// rounded to 10 so that a heap that varies a little does not reset it
// after every collection.
func percentFor(base, floor uint64) int {
	p := uint64(maxPercent)
	if base > 0 {
		p = floor * 100 / base
	}
	// Go never sets a goal below 4 MiB × GOGC/100: past floor/4 MiB ×
	// 100 that minimum alone would put the goal above the floor.
	p = min(p, floor*100/heapMinimum)
	p = (p + 9) / 10 * 10
	return int(min(max(p, minPercent), maxPercent))
}
