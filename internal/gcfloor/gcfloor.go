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
	percent int
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
	k := &keeper{floor: floor, tuned: tuned, percent: -1, sample: []metrics.Sample{{Name: "/gc/heap/live:bytes"}}}
	before := debug.SetGCPercent(minPercent)
	debug.SetGCPercent(before)
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
	metrics.Read(k.sample)
	live := uint64(0)
	if k.sample[0].Value.Kind() == metrics.KindUint64 {
		live = k.sample[0].Value.Uint64()
	}
	p := percentFor(live, k.floor)
	if p != k.percent {
		debug.SetGCPercent(p)
		k.percent = p
		if k.tuned != nil {
			k.tuned(p)
		}
	}
	return true
}

// percentFor is the GOGC that puts the next collection at live + floor
// bytes, or at twice live where that is more, rounded to 10 so that a
// heap that varies a little does not reset it after every collection.
func percentFor(live, floor uint64) int {
	if live == 0 {
		return maxPercent
	}
	p := floor * 100 / live
	p = (p + 9) / 10 * 10
	return int(min(max(p, minPercent), maxPercent))
}
