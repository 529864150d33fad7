package ai

import (
	"sync"
	"time"

	"github.com/relia-dev/relia/clock"
	"github.com/relia-dev/relia/slo"
)

// Defaults of a route's SLO.
const (
	DefaultSLOWindow   = 5 * time.Minute
	DefaultMaxBurnRate = 14.4
	DefaultSLOMinCalls = 20
)

// healthBuckets is how many buckets a burn window is cut into.
const healthBuckets = 10

// burnWindow counts one target's good and failed calls over a sliding
// window and judges its burn rate against the route's objective: a
// target burning its error budget faster than MaxBurnRate is drained
// (tried after the healthy ones) before its breaker would trip on hard
// failures. A nil *burnWindow (no SLO) never drains.
type burnWindow struct {
	objective float64
	maxBurn   float64
	minCalls  int64
	width     time.Duration
	clock     clock.Clock
	origin    time.Time

	mu      sync.Mutex
	buckets [healthBuckets]struct{ epoch, good, bad int64 }
}

func newBurnWindow(o *RouteSLO, c clock.Clock) *burnWindow {
	if o == nil {
		return nil
	}
	w := &burnWindow{
		objective: float64(o.Objective),
		maxBurn:   orDefault(o.MaxBurnRate, DefaultMaxBurnRate),
		minCalls:  int64(orDefault(o.MinCalls, DefaultSLOMinCalls)),
		width:     orDefault(o.Window, DefaultSLOWindow) / healthBuckets,
		clock:     c,
		origin:    c.Now(),
	}
	return w
}

// record counts one call.
func (w *burnWindow) record(ok bool) {
	if w == nil {
		return
	}
	n := int64(w.clock.Since(w.origin) / w.width)
	w.mu.Lock()
	b := &w.buckets[n%healthBuckets]
	if b.epoch != n {
		b.epoch, b.good, b.bad = n, 0, 0
	}
	if ok {
		b.good++
	} else {
		b.bad++
	}
	w.mu.Unlock()
}

// burnRate returns the burn rate over the window and whether the window
// holds enough calls to judge.
func (w *burnWindow) burnRate() (float64, bool) {
	if w == nil {
		return 0, false
	}
	n := int64(w.clock.Since(w.origin) / w.width)
	var good, bad int64
	w.mu.Lock()
	for _, b := range w.buckets {
		if b.epoch > n-healthBuckets && b.epoch <= n {
			good += b.good
			bad += b.bad
		}
	}
	w.mu.Unlock()
	if good+bad < w.minCalls || good+bad == 0 {
		return 0, false
	}
	return slo.BurnRate(float64(bad)/float64(good+bad), w.objective), true
}

// drained reports whether the target burns its budget too fast to be
// tried first.
func (w *burnWindow) drained() bool {
	r, ok := w.burnRate()
	return ok && r > w.maxBurn
}
