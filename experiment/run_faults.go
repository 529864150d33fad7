package experiment

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/relia-dev/relia/clock"
	"github.com/relia-dev/relia/fault"
)

// ShopProcessorProxy is the fault proxy a run puts in front of the demo
// shop's payment processor: toxic faults name it to slow down or fail the
// payments' dependency. It is in HTTP mode, so its toxics (type http) act
// per request.
const ShopProcessorProxy = "processor"

// faultBackend is the fault server a run's toxic faults go through: one
// the run starts in-process (with the plan's proxies) and serves on a
// loopback port, or one that already runs (spec.faultServer). Either way
// faults are added and renewed through its control API, so they are
// leases that end by themselves if the run dies.
type faultBackend struct {
	server *fault.Server // nil for an external server
	api    *http.Server
	client *fault.Client
}

// startFaults starts the in-process fault server with the plan's proxies,
// or connects to the external one and checks that it has every proxy the
// plan's toxic faults name.
func startFaults(ctx context.Context, p *Plan, clk clock.Clock, log *slog.Logger) (*faultBackend, error) {
	if p.FaultServer != "" {
		return connectFaults(ctx, p)
	}
	srv, err := fault.NewServer(fault.Options{Clock: clk, Seed: p.FaultServerSeed, DefaultTTL: p.FaultLease, Audit: log})
	if err != nil {
		return nil, fmt.Errorf("starting the fault server: %w", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		srv.Close()
		return nil, fmt.Errorf("starting the fault server: %w", err)
	}
	b := &faultBackend{server: srv, api: &http.Server{Handler: srv.Handler(fault.HandlerOptions{}), ReadHeaderTimeout: 10 * time.Second}}
	go func() { _ = b.api.Serve(ln) }()
	if b.client, err = fault.NewClient("http://"+ln.Addr().String(), "", nil); err != nil {
		b.close()
		return nil, fmt.Errorf("starting the fault server: %w", err)
	}
	for _, px := range p.Proxies {
		if _, err := b.createProxy(px.Name, px.Listen, px.Upstream, px.Mode); err != nil {
			b.close()
			return nil, inputErrorf("proxy %s: %w", px.Name, err)
		}
	}
	return b, nil
}

// connectFaults connects to an external fault server. Its proxies are its
// operator's: the run uses them and creates none, so every proxy a toxic
// fault names must be there before any traffic.
func connectFaults(ctx context.Context, p *Plan) (*faultBackend, error) {
	c, err := fault.NewClient(p.FaultServer, "", nil)
	if err != nil {
		return nil, inputErrorf("fault server %s: %w", p.FaultServer, err)
	}
	proxies, err := c.Proxies(ctx)
	if err != nil {
		return nil, inputErrorf("fault server %s: %w", p.FaultServer, err)
	}
	for _, f := range p.Faults {
		if f.Kind == FaultToxic && !slices.ContainsFunc(proxies, func(px fault.ProxyInfo) bool { return px.Name == f.Toxic.Proxy }) {
			return nil, inputErrorf("fault %s: fault server %s has no proxy %q", f.Name, p.FaultServer, f.Toxic.Proxy)
		}
	}
	return &faultBackend{client: c}, nil
}

// createProxy creates a proxy on the in-process server.
func (b *faultBackend) createProxy(name, listen, upstream, mode string) (fault.ProxyInfo, error) {
	if listen == "" {
		listen = "127.0.0.1:0"
	}
	return b.server.CreateProxy(fault.ProxyConfig{Name: name, Listen: listen, Upstream: upstream, Mode: mode})
}

// close stops the in-process server, which ends every fault it still
// holds.
func (b *faultBackend) close() {
	if b.server == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = b.api.Shutdown(ctx)
	_ = b.server.Close()
	b.server = nil
}

// faultRunner applies a plan's faults at their offsets and ends them at
// theirs, or at once when the run ends early, recording each in the
// timeline.
type faultRunner struct {
	plan    *Plan
	clock   clock.Clock
	log     *slog.Logger
	backend *faultBackend
	target  *system
	start   time.Time
	// why says why a fault ends early: the End* reason of the run's end.
	why func() string
	// failed reports an error that ends the run (a fault that could not
	// be started).
	failed func(error)

	mu      sync.Mutex
	records []FaultRecord // in the plan's fault order
	// providerMu orders the changes of provider faults.
	providerMu sync.Mutex
}

// init records every planned fault as not started.
func (r *faultRunner) init() *faultRunner {
	for _, f := range r.plan.Faults {
		r.records = append(r.records, FaultRecord{Name: f.Name, Phase: f.Phase, Kind: f.Kind, Target: f.Target, Replica: f.Replica, EndReason: EndNotStarted})
	}
	return r
}

// runAll runs every fault in its own goroutine and returns when all have
// ended: on schedule, or when ctx ends (the run aborted, was interrupted
// or failed).
func (r *faultRunner) runAll(ctx context.Context) {
	var wg sync.WaitGroup
	for i := range r.plan.Faults {
		wg.Go(func() { r.run(ctx, i) })
	}
	wg.Wait()
}

// snapshot returns a copy of the records.
func (r *faultRunner) snapshot() []FaultRecord {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.records)
}

// update changes fault i's record under the lock.
func (r *faultRunner) update(i int, f func(*FaultRecord)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	f(&r.records[i])
}

// run is fault i's life: wait for its start, apply it, keep its lease
// alive until its end, and undo it.
func (r *faultRunner) run(ctx context.Context, i int) {
	f := r.plan.Faults[i]
	if err := sleepUntil(ctx, r.clock, r.start.Add(f.Start)); err != nil {
		return // the run ended before the fault's start
	}
	// Applying runs to its end even if the run ends meanwhile, so that a
	// fault the server took is known and undone below, never orphaned.
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	undo, hold, err := r.apply(actx, f)
	cancel()
	if err != nil {
		r.update(i, func(fr *FaultRecord) { fr.Error = err.Error() })
		r.log.Error("fault could not be started", "fault", f.Name, "error", err)
		r.failed(fmt.Errorf("starting fault %s: %w", f.Name, err))
		return
	}
	r.update(i, func(fr *FaultRecord) { fr.Start = r.clock.Now() })
	r.log.Info("fault started", "fault", f.Name, "target", f.Target, "replica", f.Replica)

	holdCtx, stopHold := context.WithCancel(ctx)
	lost := make(chan error, 1)
	if hold != nil {
		go func() { lost <- fault.Hold(holdCtx, r.clock, r.plan.FaultLease/3, hold) }()
	}
	reason := EndStopped
	var holdErr error
	timer := r.clock.NewTimer(r.start.Add(f.End).Sub(r.clock.Now()))
	select {
	case <-timer.C():
	case <-ctx.Done():
		reason = r.why()
	case holdErr = <-lost:
		if ctx.Err() != nil {
			reason, holdErr = r.why(), nil
		} else {
			reason = EndExpired
		}
	}
	timer.Stop()
	stopHold()
	undoErr := undo()
	r.update(i, func(fr *FaultRecord) {
		fr.End, fr.EndReason = r.clock.Now(), reason
		if err := errors.Join(holdErr, undoErr); err != nil {
			fr.Error = err.Error()
		}
	})
	r.log.Info("fault ended", "fault", f.Name, "reason", reason)
}

// apply starts fault f and returns how to undo it and, for faults held as
// leases on the fault server, how to renew the lease.
func (r *faultRunner) apply(ctx context.Context, f PlannedFault) (undo func() error, renew func(context.Context) error, err error) {
	switch f.Kind {
	case FaultToxic:
		return r.applyToxic(ctx, f)
	case FaultGateway:
		gw := r.target.gateway
		if err := gw.set(f, true); err != nil {
			return nil, nil, err
		}
		return func() error { return gw.set(f, false) }, nil, nil
	case FaultProcess:
		return r.applyProcess(f)
	case FaultProvider:
		return r.applyProvider(f)
	}
	return nil, nil, fmt.Errorf("unknown fault kind %q", f.Kind)
}

// applyToxic adds a toxic through the fault server's API with the plan's
// lease.
func (r *faultRunner) applyToxic(ctx context.Context, f PlannedFault) (func() error, func(context.Context) error, error) {
	t := f.Toxic
	tox := float64(t.Toxicity)
	if tox == 0 {
		tox = 1
	}
	req := fault.ToxicRequest{Name: f.Name, Type: t.Type, Stream: t.Stream, Toxicity: &tox, Attributes: t.Attributes, LeaseTTL: r.plan.FaultLease.String()}
	c := r.backend.client
	if _, err := c.AddToxic(ctx, t.Proxy, req); err != nil {
		return nil, nil, err
	}
	undo := func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := c.RemoveToxic(ctx, t.Proxy, f.Name); err != nil && !errors.Is(err, fault.ErrToxicNotFound) {
			return err // not found: its lease ran out first, and gone is what undo wants
		}
		return nil
	}
	renew := func(ctx context.Context) error {
		_, err := c.RenewToxic(ctx, t.Proxy, f.Name, r.plan.FaultLease)
		return err
	}
	return undo, renew, nil
}

// applyProcess acts on the replica the plan chose.
func (r *faultRunner) applyProcess(f PlannedFault) (func() error, func(context.Context) error, error) {
	pr := f.Process
	reps := r.target.replicas[pr.Service]
	if f.Replica < 0 || f.Replica >= len(reps) {
		return nil, nil, fmt.Errorf("service %s has %d replicas, no replica %d", pr.Service, len(reps), f.Replica)
	}
	rep := reps[f.Replica]
	switch pr.Action {
	case ActionKill:
		if err := rep.kill(); err != nil {
			return nil, nil, err
		}
		return rep.restart, nil, nil
	case ActionRestart:
		if err := rep.restart(); err != nil {
			return nil, nil, err
		}
		return func() error { return nil }, nil, nil
	case ActionPause:
		if err := rep.pause(); err != nil {
			return nil, nil, err
		}
		return rep.resume, nil, nil
	}
	return nil, nil, fmt.Errorf("unknown process action %q", pr.Action)
}

// sleepUntil waits on clk until t or until ctx ends.
func sleepUntil(ctx context.Context, clk clock.Clock, t time.Time) error {
	if d := t.Sub(clk.Now()); d > 0 {
		return clock.Sleep(ctx, clk, d)
	}
	return ctx.Err()
}
