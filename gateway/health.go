package gateway

import (
	"context"
	"sync"
	"time"

	"github.com/relia-dev/relia/clock"
	"github.com/relia-dev/relia/gateway/upstream"
	"github.com/relia-dev/relia/internal/h1"
)

// healthLoop is a pool's active checker.
type healthLoop struct {
	cancel context.CancelFunc
	done   chan struct{}
}

// startHealth starts p's active checks, if it has any; the caller holds
// g.mu. The loop belongs to the pool and ends at stopHealth.
func (g *Gateway) startHealth(p *pool) {
	if p.cfg.Health.Active == nil || p.loop != nil {
		return
	}
	ctx, cancel := context.WithCancel(g.bgCtx)
	p.loop = &healthLoop{cancel: cancel, done: make(chan struct{})}
	probe := g.probe
	if p.cfg.GRPC != nil {
		probe = g.probeGRPC(p, p.cfg.Health.Active.GRPCService)
	}
	go func() { // exits when ctx ends
		defer close(p.loop.done)
		p.checkLoop(ctx, *p.cfg.Health.Active, g.clock, probe)
	}()
}

// stopHealth stops p's checks and waits for the loop to end.
func (p *pool) stopHealth() {
	defer p.closeGRPC()
	if p.loop == nil {
		return
	}
	p.loop.cancel()
	<-p.loop.done
}

// probeFunc checks one target once; true means healthy.
type probeFunc func(t *target, path string, timeout time.Duration) bool

// checkLoop probes every target at once each interval, first right away,
// and applies the thresholds.
func (p *pool) checkLoop(ctx context.Context, a ActiveHealth, clk clock.Clock, probe probeFunc) {
	for {
		var wg sync.WaitGroup
		results := make([]bool, len(p.targets))
		for i, t := range p.targets {
			wg.Add(1)
			go func() {
				defer wg.Done()
				results[i] = probe(t, a.Path, a.Timeout)
			}()
		}
		wg.Wait()
		for i, t := range p.targets {
			p.applyCheck(t, results[i], a)
		}
		if clock.Sleep(ctx, clk, a.Interval) != nil {
			return
		}
	}
}

// applyCheck moves a target's active health by one probe result: it goes
// down after UnhealthyThreshold failures in a row and comes back after
// HealthyThreshold successes in a row.
func (p *pool) applyCheck(t *target, ok bool, a ActiveHealth) {
	if ok {
		t.checkFail = 0
		t.checkOK++
		if !t.activeUp.Load() && t.checkOK >= a.HealthyThreshold {
			t.activeUp.Store(true)
		}
		return
	}
	t.checkOK = 0
	t.checkFail++
	if t.activeUp.Load() && t.checkFail >= a.UnhealthyThreshold {
		t.activeUp.Store(false)
	}
}

// probe sends GET path to t; a 2xx or 3xx answer within timeout is healthy.
func (g *Gateway) probe(t *target, path string, timeout time.Duration) bool {
	req := upstream.Request{Method: []byte("GET"), Target: []byte(path), Host: t.addrBytes, Fields: probeFields}
	var resp upstream.Response
	// The wall clock: a deadline is the kernel's, whatever clock the
	// gateway's schedule runs on.
	if err := t.up.Do(context.Background(), &req, &resp, time.Now().Add(timeout)); err != nil {
		return false
	}
	resp.Release()
	return resp.Status >= 200 && resp.Status < 400
}

// probeFields are the fields of a health check.
var probeFields = []h1.Header{{Name: []byte("User-Agent"), Value: []byte("relia-gateway-health")}}
