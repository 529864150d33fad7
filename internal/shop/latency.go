package shop

import (
	"context"
	"hash/fnv"
	"math"
	"sync/atomic"
	"time"

	"github.com/relia-dev/relia/clock"
)

// latency is a service step's seeded service-time distribution:
// log-normal around Median, with a tail: a share TailShare of requests
// take TailFactor times longer (a GC pause, a cold cache). Draw n depends
// only on the seed, the step's name and n, never on goroutine timing.
type latency struct {
	median     time.Duration
	sigma      float64
	tailShare  float64
	tailFactor float64
	key        uint64
	n          atomic.Uint64
}

// The tail of every step: 1% of requests take 8 times longer; nothing
// takes longer than maxFactor medians.
const (
	tailShare  = 0.01
	tailFactor = 8
	maxFactor  = 40
)

func newLatency(seed uint64, name string, median time.Duration) *latency {
	return &latency{median: median, sigma: 0.5, tailShare: tailShare, tailFactor: tailFactor, key: streamKey(seed, name)}
}

// next draws the next service time.
func (l *latency) next() time.Duration {
	n := l.n.Add(1) - 1
	u1, u2, u3 := unit(l.key, 3*n), unit(l.key, 3*n+1), unit(l.key, 3*n+2)
	// Box-Muller: a standard normal from two uniforms; 1-u1 keeps log off 0.
	z := math.Sqrt(-2*math.Log(1-u1)) * math.Cos(2*math.Pi*u2)
	f := math.Exp(l.sigma * z)
	if u3 < l.tailShare {
		f *= l.tailFactor
	}
	f = min(f, maxFactor)
	return time.Duration(f * float64(l.median))
}

// pacer sleeps a step's service time on the shop's clock, or not at all
// when the shop runs without artificial latency.
type pacer struct {
	clock clock.Clock
	on    bool
}

// pause waits l's next service time; it returns ctx's error when the
// request ended first.
func (p pacer) pause(ctx context.Context, l *latency) error {
	if !p.on {
		return ctx.Err()
	}
	return clock.Sleep(ctx, p.clock, l.next())
}

// streamKey derives an independent stream's key from the seed and a name.
func streamKey(seed uint64, name string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(name))
	return splitmix(seed ^ splitmix(h.Sum64()))
}

// unit is draw n of stream key, uniform in [0, 1): counter-based, so a
// decision depends on the request's number and not on which goroutine
// asked first.
func unit(key, n uint64) float64 {
	return float64(splitmix(key^splitmix(n))>>11) / (1 << 53)
}

// splitmix is SplitMix64's output function, a good 64-bit mixer.
func splitmix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}
