package gcfloor

import (
	"runtime"
	"runtime/debug"
	"testing"
	"time"
)

func TestPercentFor(t *testing.T) {
	for _, c := range []struct {
		base, floor uint64
		want        int
	}{
		{8 << 20, 64 << 20, 800},  // a small heap: the floor
		{64 << 20, 64 << 20, 100}, // the floor's size: the default
		{500 << 20, 64 << 20, 100},
		{6 << 20, 64 << 20, 1070},        // rounded up to 10
		{2 << 20, 64 << 20, 1600},        // no more than the runtime's minimum goal allows
		{1 << 10, 640 << 20, maxPercent}, // bounded
		{0, 64 << 20, 1600},
	} {
		if got := percentFor(c.base, c.floor); got != c.want {
			t.Errorf("base %d, floor %d: %d, want %d", c.base, c.floor, got, c.want)
		}
	}
}

// TestKeepTunesAfterEachCollection: the percent is set at once, and
// again after a collection that leaves a different live heap; stop
// restores the percent there was.
func TestKeepTunesAfterEachCollection(t *testing.T) {
	before := debug.SetGCPercent(100)
	defer debug.SetGCPercent(before)
	// The first tuning reads the live heap the last collection left, which
	// may still count what an earlier test (or run, with -count) held.
	runtime.GC()
	tuned := make(chan int, 16)
	stop := keep(64<<20, func(p int) { tuned <- p })
	first := <-tuned
	// Keep 32 MiB live: the goal is then live + 64 MiB, about 300%.
	held := make([][]byte, 32)
	for i := range held {
		held[i] = make([]byte, 1<<20)
	}
	runtime.GC()
	runtime.GC() // the cleanup of the first cycle's sentinel runs after it
	select {
	case p := <-tuned:
		if p >= first || p < 150 || p > 300 {
			t.Errorf("with 32 MiB live, percent %d (first %d): want about 64/32 × 100", p, first)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("no tuning after two collections (first %d)", first)
	}
	runtime.KeepAlive(held)
	stop()
	if p := debug.SetGCPercent(100); p != 100 {
		t.Errorf("after stop the percent is %d, want the 100 set before", p)
	}
}
