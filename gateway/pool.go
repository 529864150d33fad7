package gateway

import (
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/relia-dev/relia/clock"
	"github.com/relia-dev/relia/gateway/upstream"
	"github.com/relia-dev/relia/resilience"
)

const (
	// maxIdleConns bounds the idle connections a target keeps.
	maxIdleConns = 256
	// hashReplicas is how many points each unit of weight puts on the
	// consistent-hash ring: enough that keys spread within a few percent.
	hashReplicas = 160
)

// target is one member of a pool and everything the gateway knows about it.
type target struct {
	addr      string
	addrBytes []byte
	weight    int
	// up holds the target's connections and sends its requests.
	up      *upstream.Target
	breaker *resilience.Breaker

	// inflight and ewmaNs are the load the least-request balancer weighs
	// the target by. They describe the target, not the config, so a pool
	// rebuilt by a reload shares them with the pool before it (targetLoad).
	inflight *atomic.Int64
	ewmaNs   *atomic.Uint64 // float64 bits: latency EWMA in ns

	// activeUp is the active check's verdict; true until a check says
	// otherwise, so a new pool serves at once.
	activeUp             atomic.Bool
	checkOK, checkFail   int          // consecutive probe results; health loop only
	ejectedUntil         atomic.Int64 // unix ns; 0: not ejected
	consec5xx, consecErr atomic.Int32
	ejections            int // consecutive ejections, under pool.mu
	lastEjectEnd         time.Time
}

// targetLoad holds a target's load counters in one allocation.
type targetLoad struct {
	inflight atomic.Int64
	ewmaNs   atomic.Uint64
}

// available reports whether the balancer may choose t: healthy and its
// breaker not open.
func (t *target) available(now func() time.Time) bool {
	return t.healthy(now) && (t.breaker == nil || t.breaker.State() != resilience.StateOpen)
}

// healthy reports whether t passes its active check and is not ejected.
func (t *target) healthy(now func() time.Time) bool {
	if !t.activeUp.Load() {
		return false
	}
	u := t.ejectedUntil.Load()
	return u == 0 || now().UnixNano() >= u
}

// observe folds one attempt's latency into the EWMA the least-request
// balancer weighs targets by.
func (t *target) observe(d time.Duration) {
	const alpha = 0.2
	for {
		old := t.ewmaNs.Load()
		prev := math.Float64frombits(old)
		next := float64(d)
		if prev != 0 {
			next = prev*(1-alpha) + next*alpha
		}
		if t.ewmaNs.CompareAndSwap(old, math.Float64bits(next)) {
			return
		}
	}
}

// pool is an upstream: its targets and how one is chosen.
type pool struct {
	name    string
	cfg     Upstream
	targets []*target
	clock   clock.Clock
	passive PassiveHealth // zero thresholds: off

	loop *healthLoop // active checks; nil without them or before Start

	// grpc is a gRPC pool's transports and health clients (grpc.go).
	grpcOnce sync.Once
	grpc     *grpcPool

	rr   atomic.Uint64
	mu   sync.Mutex
	cur  []int // smooth weighted round robin state, under mu
	ring []ringPoint
}

type ringPoint struct {
	hash uint64
	t    *target
}

// newPool builds the pool of u, an upstream with its defaults applied
// (Upstream.withDefaults); open, when set, lists the connections its
// targets open, for shutdown. prev, when set, is the pool of the same name
// in the generation before: targets that stay in the new pool keep their
// state from it (inheritTarget). onWait, when set, runs as a request
// begins to wait for one of a target's connections (upstream.Settings).
func newPool(u Upstream, prev *pool, clk clock.Clock, newBreaker func(name string) (*resilience.Breaker, error), open *upstream.Open, onWait func()) (*pool, error) {
	p := &pool{name: u.Name, cfg: u, clock: clk}
	for _, tc := range u.Targets {
		t := &target{addr: tc.Address, addrBytes: []byte(tc.Address), weight: tc.Weight}
		if old := prev.target(tc.Address); old != nil {
			p.inheritTarget(t, prev, old)
		} else {
			ld := &targetLoad{}
			t.inflight, t.ewmaNs = &ld.inflight, &ld.ewmaNs
			t.activeUp.Store(true)
		}
		if t.up == nil {
			t.up = upstream.New(upstream.Settings{Addr: tc.Address, MaxConns: u.MaxConnections, MaxIdle: maxIdleConns, DialTimeout: u.ConnectTimeout, Clock: clk, Open: open, OnWait: onWait})
		}
		if t.breaker == nil && newBreaker != nil {
			b, err := newBreaker(u.Name + "/" + tc.Address)
			if err != nil {
				return nil, err
			}
			t.breaker = b
		}
		p.targets = append(p.targets, t)
	}
	p.cur = make([]int, len(p.targets))
	if ph := u.Health.Passive; ph != nil {
		p.passive = *ph
	}
	if p.cfg.Balance == BalanceHash {
		for _, t := range p.targets {
			for i := range hashReplicas * t.weight {
				p.ring = append(p.ring, ringPoint{hash: fnv64(fmt.Appendf(nil, "%s#%d", t.addr, i)), t: t})
			}
		}
		slices.SortFunc(p.ring, func(a, b ringPoint) int {
			switch {
			case a.hash < b.hash:
				return -1
			case a.hash > b.hash:
				return 1
			}
			return 0
		})
	}
	return p, nil
}

// target returns the pool's target at addr; nil when there is none or p
// is nil.
func (p *pool) target(addr string) *target {
	if p == nil {
		return nil
	}
	for _, t := range p.targets {
		if t.addr == addr {
			return t
		}
	}
	return nil
}

// uses reports whether one of p's targets sends through up.
func (p *pool) uses(up *upstream.Target) bool {
	for _, t := range p.targets {
		if t.up == up {
			return true
		}
	}
	return false
}

// inheritTarget gives t, new in p, the state old had in prev, the pool of
// the generation before: its load (shared, so requests that started on
// prev count in p until they end), and, where the settings that made
// them did not change, its connections and breaker (shared) and its
// health (copied: each pool's health loop and ejections keep their own).
// A reload that adds a target or changes a policy thus leaves the others
// as busy, as open and as ejected as they were.
func (p *pool) inheritTarget(t *target, prev *pool, old *target) {
	t.inflight, t.ewmaNs = old.inflight, old.ewmaNs
	n, o := p.cfg, prev.cfg
	if n.MaxConnections == o.MaxConnections && n.ConnectTimeout == o.ConnectTimeout {
		t.up = old.up
	}
	if reflect.DeepEqual(n.Breaker, o.Breaker) {
		t.breaker = old.breaker
	}
	t.activeUp.Store(true)
	if reflect.DeepEqual(n.Health.Active, o.Health.Active) {
		t.activeUp.Store(old.activeUp.Load())
	}
	if reflect.DeepEqual(n.Health.Passive, o.Health.Passive) {
		t.ejectedUntil.Store(old.ejectedUntil.Load())
		t.consec5xx.Store(old.consec5xx.Load())
		t.consecErr.Store(old.consecErr.Load())
		prev.mu.Lock()
		t.ejections, t.lastEjectEnd = old.ejections, old.lastEjectEnd
		prev.mu.Unlock()
	}
}

// pick chooses a target for one attempt. avoid, when not nil, is the
// target of the previous attempt, taken only when nothing else is
// available; key is the hash balancer's key. It returns nil when no target
// is available.
func (p *pool) pick(avoid *target, key []byte) *target {
	now := p.clock.Now
	switch p.cfg.Balance {
	case BalanceWeighted:
		return p.pickWeighted(avoid, now)
	case BalanceLeastRequest:
		return p.pickLeast(avoid, now)
	case BalanceHash:
		return p.pickHash(avoid, key, now)
	}
	n := len(p.targets)
	start := int(p.rr.Add(1) % uint64(n))
	return firstAvailable(n, func(i int) *target { return p.targets[(start+i)%n] }, avoid, now)
}

// firstAvailable returns the first available of n candidates other than
// avoid, or avoid when it is the only one available.
func firstAvailable(n int, at func(int) *target, avoid *target, now func() time.Time) *target {
	var fallback *target
	for i := range n {
		t := at(i)
		if !t.available(now) {
			continue
		}
		if t == avoid {
			fallback = t
			continue
		}
		return t
	}
	return fallback
}

// openBreaker returns a target that is out of rotation only because its
// breaker is open (healthy by the active check, not ejected), if any.
func (p *pool) openBreaker(now func() time.Time) *target {
	for _, t := range p.targets {
		if t.breaker != nil && t.healthy(now) && t.breaker.State() == resilience.StateOpen {
			return t
		}
	}
	return nil
}

// pickWeighted is nginx's smooth weighted round robin over the available
// targets: each pick adds every weight to its current value and takes the
// largest, which then gives back the total. Weights 5,1,1 give
// a a b a c a a rather than a a a a a b c.
func (p *pool) pickWeighted(avoid *target, now func() time.Time) *target {
	p.mu.Lock()
	defer p.mu.Unlock()
	best, total := -1, 0
	for i, t := range p.targets {
		if !t.available(now) || (t == avoid && len(p.targets) > 1) {
			continue
		}
		p.cur[i] += t.weight
		total += t.weight
		if best < 0 || p.cur[i] > p.cur[best] {
			best = i
		}
	}
	if best < 0 {
		if avoid != nil && avoid.available(now) {
			return avoid
		}
		return nil
	}
	p.cur[best] -= total
	return p.targets[best]
}

// pickLeast is the power of two choices: two distinct random available
// targets, the one with the lower (in-flight + 1) × latency EWMA wins. It
// avoids the herd that a global least-loaded choice sends to one target.
func (p *pool) pickLeast(avoid *target, now func() time.Time) *target {
	n := len(p.targets)
	var a, b *target
	i := rand.IntN(n)
	for k := range n {
		t := p.targets[(i+k)%n]
		if t == avoid || !t.available(now) {
			continue
		}
		if a == nil {
			a = t
			// Start the second search at another random place so the
			// pair is not always neighbours.
			i2 := rand.IntN(n)
			for k2 := range n {
				t2 := p.targets[(i2+k2)%n]
				if t2 != a && t2 != avoid && t2.available(now) {
					b = t2
					break
				}
			}
			break
		}
	}
	switch {
	case a == nil:
		if avoid != nil && avoid.available(now) {
			return avoid
		}
		return nil
	case b == nil:
		return a
	}
	if score(b) < score(a) {
		return b
	}
	return a
}

func score(t *target) float64 {
	lat := math.Float64frombits(t.ewmaNs.Load())
	if lat < 1000 {
		lat = 1000 // an unmeasured target is neither favoured nor shunned
	}
	return float64(t.inflight.Load()+1) * lat
}

// pickHash walks the ring clockwise from the key's hash to the first
// available target, so that a key moves only when its target goes away.
func (p *pool) pickHash(avoid *target, key []byte, now func() time.Time) *target {
	h := fnv64(key)
	i, _ := slices.BinarySearchFunc(p.ring, h, func(rp ringPoint, h uint64) int {
		switch {
		case rp.hash < h:
			return -1
		case rp.hash > h:
			return 1
		}
		return 0
	})
	n := len(p.ring)
	return firstAvailable(n, func(k int) *target { return p.ring[(i+k)%n].t }, avoid, now)
}

// fnv64 is FNV-1a with a final mix: stable across processes, so gateway replicas hash a key
// to the same target.
func fnv64(b []byte) uint64 {
	h := uint64(14695981039346656037)
	for _, c := range b {
		h ^= uint64(c)
		h *= 1099511628211
	}
	// FNV alone spreads keys that differ in their last bytes ("a#1",
	// "a#2") poorly over the ring; a final avalanche (splitmix64's) fixes it.
	h ^= h >> 30
	h *= 0xbf58476d1ce4e5b9
	h ^= h >> 27
	h *= 0x94d049bb133111eb
	h ^= h >> 31
	return h
}

// healthyShare is the share of targets available now, for readiness.
func (p *pool) healthyShare() float64 {
	n := 0
	for _, t := range p.targets {
		if t.available(p.clock.Now) {
			n++
		}
	}
	return float64(n) / float64(len(p.targets))
}

// attemptResult is what passive health learns from one attempt.
type attemptResult uint8

const (
	resultOK attemptResult = iota
	result5xx
	resultConnErr // connect error, reset or timeout
	resultIgnored // says nothing about the target (the gateway's own limit)
)

// report feeds passive outlier detection and returns true when it ejected t.
func (p *pool) report(t *target, r attemptResult) bool {
	if p.passive.Consecutive5xx == 0 || r == resultIgnored {
		return false
	}
	switch r {
	case resultOK:
		if t.consec5xx.Load() != 0 {
			t.consec5xx.Store(0)
		}
		if t.consecErr.Load() != 0 {
			t.consecErr.Store(0)
		}
		return false
	case result5xx:
		if int(t.consec5xx.Add(1)) < p.passive.Consecutive5xx {
			return false
		}
	case resultConnErr:
		if int(t.consecErr.Add(1)) < p.passive.ConsecutiveConnectErrors {
			return false
		}
	}
	return p.eject(t)
}

// eject takes t out of rotation for a time that grows with consecutive
// ejections, unless that would eject more than the allowed share of the
// pool: detection alone never empties it.
func (p *pool) eject(t *target) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.clock.Now()
	ns := now.UnixNano()
	if u := t.ejectedUntil.Load(); u != 0 && ns < u {
		return false // already out
	}
	ejected := 0
	for _, o := range p.targets {
		if u := o.ejectedUntil.Load(); u != 0 && ns < u {
			ejected++
		}
	}
	allowed := int(math.Floor(float64(p.passive.MaxEjectedShare) * float64(len(p.targets))))
	allowed = min(allowed, len(p.targets)-1)
	if ejected+1 > allowed {
		return false
	}
	// A target that stayed in long after its last ejection starts over.
	if !t.lastEjectEnd.IsZero() && now.Sub(t.lastEjectEnd) > p.passive.MaxEjection {
		t.ejections = 0
	}
	t.ejections++
	d := min(p.passive.BaseEjection*time.Duration(t.ejections), p.passive.MaxEjection)
	t.ejectedUntil.Store(now.Add(d).UnixNano())
	t.lastEjectEnd = now.Add(d)
	t.consec5xx.Store(0)
	t.consecErr.Store(0)
	return true
}

// ewmaMs is t's latency average in milliseconds, for the admin API.
func ewmaMs(t *target) float64 {
	return math.Float64frombits(t.ewmaNs.Load()) / 1e6
}
