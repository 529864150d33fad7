package gateway

import (
	"context"
	"fmt"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/relia-dev/relia/clock"
)

func testPool(t *testing.T, u Upstream, clk clock.Clock) *pool {
	t.Helper()
	if len(u.Targets) == 0 {
		for i := range 3 {
			u.Targets = append(u.Targets, Target{Address: fmt.Sprintf("10.0.0.%d:80", i+1)})
		}
	}
	p, err := newPool(u.withDefaults(), nil, clk, nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestWeightedIsSmooth(t *testing.T) {
	t.Parallel()
	p := testPool(t, Upstream{Balance: BalanceWeighted, Targets: []Target{{Address: "a:1", Weight: 5}, {Address: "b:1", Weight: 1}, {Address: "c:1", Weight: 1}}}, clock.Real())
	var seq string
	for range 7 {
		seq += p.pick(nil, nil).addr[:1]
	}
	if seq != "aabacaa" {
		t.Errorf("sequence %s, want nginx's smooth aabacaa", seq)
	}
}

func TestRoundRobinAvoidsPreviousTarget(t *testing.T) {
	t.Parallel()
	p := testPool(t, Upstream{}, clock.Real())
	for range 10 {
		first := p.pick(nil, nil)
		if next := p.pick(first, nil); next == first {
			t.Fatal("retry picked the same target while others were available")
		}
	}
	p.targets[1].activeUp.Store(false)
	p.targets[2].activeUp.Store(false)
	if got := p.pick(p.targets[0], nil); got != p.targets[0] {
		t.Errorf("with one target left the retry got %v, want it", got)
	}
	p.targets[0].activeUp.Store(false)
	if got := p.pick(nil, nil); got != nil {
		t.Errorf("no target available, got %s", got.addr)
	}
}

func TestHashIsSticky(t *testing.T) {
	t.Parallel()
	p := testPool(t, Upstream{Balance: BalanceHash, HashOn: &HashOn{Header: "X-User"}}, clock.Real())
	counts := map[string]int{}
	moved := 0
	for i := range 300 {
		key := []byte(fmt.Sprintf("user-%d", i))
		a := p.pick(nil, key)
		if b := p.pick(nil, key); a != b {
			t.Fatalf("key %s went to %s then %s", key, a.addr, b.addr)
		}
		counts[a.addr]++
		p.targets[0].activeUp.Store(false)
		if c := p.pick(nil, key); c != a {
			moved++
			if a != p.targets[0] {
				t.Errorf("key %s moved off a healthy target", key)
			}
		}
		p.targets[0].activeUp.Store(true)
	}
	for addr, n := range counts {
		if n < 50 {
			t.Errorf("%s got %d of 300 keys; the ring is lopsided", addr, n)
		}
	}
	if moved != counts[p.targets[0].addr] {
		t.Errorf("%d keys moved, want exactly the %d of the removed target", moved, counts[p.targets[0].addr])
	}
}

func TestLeastRequestAvoidsLoadedTarget(t *testing.T) {
	t.Parallel()
	p := testPool(t, Upstream{Balance: BalanceLeastRequest, Targets: []Target{{Address: "a:1"}, {Address: "b:1"}}}, clock.Real())
	p.targets[0].inflight.Store(50)
	p.targets[0].observe(50 * time.Millisecond)
	p.targets[1].observe(time.Millisecond)
	for range 20 {
		if got := p.pick(nil, nil); got != p.targets[1] {
			t.Fatalf("picked the loaded, slow target")
		}
	}
}

func TestPassiveEjectionGrowsAndKeepsPoolAlive(t *testing.T) {
	t.Parallel()
	clk := clock.NewFake(time.Unix(1e9, 0))
	p := testPool(t, Upstream{Health: Health{Passive: &PassiveHealth{Consecutive5xx: 3, BaseEjection: 10 * time.Second, MaxEjectedShare: 0.5}},
		Targets: []Target{{Address: "a:1"}, {Address: "b:1"}}}, clk)
	a, b := p.targets[0], p.targets[1]
	fail := func(t *target, n int) (ejected bool) {
		for range n {
			ejected = p.report(t, result5xx) || ejected
		}
		return ejected
	}
	if fail(a, 2) {
		t.Fatal("ejected before the threshold")
	}
	p.report(a, resultOK)
	if fail(a, 2) {
		t.Fatal("a success did not reset the count")
	}
	if !fail(a, 1) {
		t.Fatal("not ejected at the threshold")
	}
	if a.available(clk.Now) {
		t.Fatal("ejected target still available")
	}
	if fail(b, 3) {
		t.Error("ejected the last target: detection alone must not empty the pool")
	}
	clk.Advance(10 * time.Second)
	if !a.available(clk.Now) {
		t.Fatal("first ejection lasted more than baseEjection")
	}
	fail(a, 3)
	clk.Advance(15 * time.Second)
	if a.available(clk.Now) {
		t.Error("second ejection was not longer than the first")
	}
	clk.Advance(5 * time.Second)
	if !a.available(clk.Now) {
		t.Error("second ejection lasted more than twice baseEjection")
	}
}

func TestActiveHealthThresholds(t *testing.T) {
	t.Parallel()
	clk := clock.NewFake(time.Unix(1e9, 0))
	p := testPool(t, Upstream{Targets: []Target{{Address: "a:1"}}}, clk)
	tgt := p.targets[0]
	var healthy atomic.Bool
	var probes atomic.Int32
	probe := func(*target, string, time.Duration) bool { probes.Add(1); return healthy.Load() }
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		p.checkLoop(ctx, ActiveHealth{Interval: time.Second, HealthyThreshold: 2, UnhealthyThreshold: 3}.withDefaults(), clk, probe)
	}()
	defer func() { cancel(); <-done }()
	// The loop probes at once, then after each Interval. Each step wakes it
	// and waits until it sleeps again, so the round's result is applied
	// before the test looks.
	clk.BlockUntil(1)
	step := func() {
		clk.Advance(time.Second)
		clk.BlockUntil(1)
	}
	for fails := 1; fails < 3; fails++ {
		if !tgt.activeUp.Load() {
			t.Fatalf("down after %d failed probes; the threshold is 3", fails)
		}
		step()
	}
	if tgt.activeUp.Load() {
		t.Fatal("still up after 3 failed probes")
	}
	healthy.Store(true)
	step()
	if tgt.activeUp.Load() {
		t.Fatal("up after 1 good probe; the threshold is 2")
	}
	step()
	if !tgt.activeUp.Load() {
		t.Fatal("still down after 2 good probes")
	}
	if n := probes.Load(); n != 5 {
		t.Fatalf("%d probes, want 5 (one per round)", n)
	}
}

// A reload that rebuilds a least-request pool (here: a target added) keeps
// what it knows of the targets that stay: requests in flight, latency,
// breaker, health and connections. Before, the new pool started its
// in-flight counts at zero, so the busiest target looked idle to the
// balancer right after every reload, and a request that ended after the
// reload left its old counter behind.
func TestReloadKeepsTargetStateOfTargetsThatStay(t *testing.T) {
	t.Parallel()
	slow, other := newBackend(t, "slow"), newBackend(t, "other")
	release := make(chan struct{})
	arrived := make(chan struct{}, 1)
	slow.handle(func(w http.ResponseWriter, r *http.Request) bool {
		if r.URL.Path == "/hold" {
			arrived <- struct{}{}
			<-release
		}
		return false
	})
	spec := func(targets ...string) string {
		s := "  upstreams:\n    - name: p\n      balance: least_request\n      targets:\n"
		for _, a := range targets {
			s += "        - address: " + a + "\n"
		}
		return s + "  routes:\n    - {name: hold, upstream: p, match: {path: {exact: /hold}}}\n    - {name: r, upstream: p}\n"
	}
	g, url := startGateway(t, spec(slow.addr()), Options{})
	reload := func(targets ...string) {
		t.Helper()
		doc := "kind: Gateway\nversion: relia/v1\nspec:\n  listeners:\n    - name: main\n      address: 127.0.0.1:0\n  admin:\n    address: 127.0.0.1:0\n" + spec(targets...)
		cfg, err := Parse("test.yaml", []byte(doc))
		if err != nil {
			t.Fatal(err)
		}
		if err := g.Reload(cfg); err != nil {
			t.Fatal(err)
		}
	}
	get(t, "GET", url+"/warm", nil) // a latency sample for the EWMA
	done := make(chan struct{})
	go func() {
		defer close(done)
		get(t, "GET", url+"/hold", nil)
	}()
	<-arrived
	statusOf := func(addr string) TargetStatus {
		for _, u := range g.Upstreams() {
			for _, ts := range u.Targets {
				if ts.Address == addr {
					return ts
				}
			}
		}
		t.Fatalf("no target %s in %+v", addr, g.Upstreams())
		return TargetStatus{}
	}
	before := statusOf(slow.addr())
	if before.InFlight != 1 || before.LatencyEWMAMs == 0 {
		t.Fatalf("before the reload: %+v, want one request in flight and a latency", before)
	}
	oldPool := g.state.Load().pools["p"]
	reload(slow.addr())
	if g.state.Load().pools["p"] != oldPool {
		t.Fatal("a reload that leaves the upstream as it was rebuilt its pool")
	}
	reload(slow.addr(), other.addr())
	newPool := g.state.Load().pools["p"]
	if newPool == oldPool {
		t.Fatal("the pool was not rebuilt; the test needs a reload that rebuilds it")
	}
	after := statusOf(slow.addr())
	if after.InFlight != 1 || after.LatencyEWMAMs != before.LatencyEWMAMs {
		t.Errorf("after the reload: %+v, want the in-flight request and latency kept from %+v", after, before)
	}
	if nt, ot := newPool.targets[0], oldPool.targets[0]; nt.breaker != ot.breaker || nt.up != ot.up {
		t.Error("the staying target lost its breaker or its connections")
	}
	if newPool.targets[1].inflight == oldPool.targets[0].inflight {
		t.Error("the new target shares the old one's counters")
	}
	close(release)
	<-done
	if n := statusOf(slow.addr()).InFlight; n != 0 {
		t.Errorf("after the request ended: %d in flight, want 0", n)
	}
}
