package experiment

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/relia-dev/relia/capacity/autoscale"
	"github.com/relia-dev/relia/clock"
	"github.com/relia-dev/relia/gateway"
	"github.com/relia-dev/relia/outcome"
)

// scaledReplica is one replica of an autoscaled service.
type scaledReplica struct {
	proc    *procReplica
	index   int
	decided time.Time // when the autoscaler asked for it
	readyAt time.Time // when it joined the gateway; zero while starting
	removed bool
}

// autoscaler runs an autoscaled command service: its replicas, the
// gateway in front of them, and the HPA controller that sizes them. Its
// one goroutine (loop) scrapes the gateway every second and syncs at the
// controller's period; close ends it.
type autoscaler struct {
	svc   Service
	as    *Autoscale
	env   targetEnv
	clock clock.Clock
	ctrl  *autoscale.Controller
	gw    *gateway.Gateway
	reg   *prometheus.Registry
	rec   *outcome.Recorder

	mu       sync.Mutex
	replicas []*scaledReplica
	desired  int
	lastSeen float64
	samples  []counterSample
	record   ScalingRecord
	starting sync.WaitGroup // replicas being started or drained

	stop chan struct{}
	done chan struct{}
}

// counterSample is the gateway's request counter at one scrape.
type counterSample struct {
	at time.Time
	n  float64
}

// startAutoscaled starts the service's minimum replicas, the gateway in
// front of them, and the autoscaler.
func (t *system) startAutoscaled(ctx context.Context, env targetEnv, svc Service) error {
	as := svc.Autoscale
	ctrl, err := autoscale.NewController(as.HPA())
	if err != nil {
		return inputErrorf("service %s: %w", svc.Name, err)
	}
	rec, err := outcome.NewRecorder(outcome.Options{})
	if err != nil {
		return err
	}
	a := &autoscaler{svc: svc, as: as, env: env, clock: env.clock, ctrl: ctrl, reg: prometheus.NewRegistry(), rec: rec,
		desired: as.MinReplicas, stop: make(chan struct{}), done: make(chan struct{})}
	a.record = ScalingRecord{Schema: ScalingSchema, Service: svc.Name, Autoscale: *as, Seconds: []ScalingSecond{}, Syncs: []time.Time{}, Events: []ScalingEvent{}, Requests: rec}
	t.closers = append(t.closers, a.close)
	now := a.clock.Now()
	for range as.MinReplicas {
		r := a.newReplica(now)
		if err := r.proc.start(); err != nil {
			return inputErrorf("service %s replica %d: %w", svc.Name, r.index, err)
		}
		if err := r.proc.waitHealthy(ctx); err != nil {
			return inputErrorf("service %s replica %d: %w", svc.Name, r.index, err)
		}
		r.readyAt = now
	}
	if err := a.startGateway(); err != nil {
		return err
	}
	if t.url == "" {
		t.url = "http://" + a.gw.Addr("public")
	}
	go a.loop()
	return nil
}

// newReplica adds a replica on the lowest free index; a.mu is held or
// the loop has not started.
func (a *autoscaler) newReplica(decided time.Time) *scaledReplica {
	idx := 0
	for slices.ContainsFunc(a.replicas, func(r *scaledReplica) bool { return r.index == idx }) {
		idx++
	}
	p := &procReplica{svc: a.svc, index: idx, port: a.svc.Port + idx, clock: a.clock, log: a.env.log}
	if a.env.logDir != "" {
		p.logPath = filepath.Join(a.env.logDir, fmt.Sprintf("%s-%d.log", a.svc.Name, idx))
	}
	r := &scaledReplica{proc: p, index: idx, decided: decided}
	a.replicas = append(a.replicas, r)
	return r
}

// gatewayConfig is the gateway in front of the ready replicas.
func (a *autoscaler) gatewayConfig() (*gateway.Config, error) {
	var targets []string
	for _, r := range a.replicas {
		if !r.readyAt.IsZero() && !r.removed {
			targets = append(targets, fmt.Sprintf("        - address: %s", net.JoinHostPort("127.0.0.1", strconv.Itoa(r.proc.port))))
		}
	}
	listen := a.as.Listen
	if listen == "" {
		listen = "127.0.0.1:0"
	}
	yaml := fmt.Sprintf(`kind: Gateway
version: relia/v1
metadata: {name: %s}
spec:
  listeners:
    - {name: public, address: %q}
  admin: {address: "off"}
  upstreams:
    - name: %s
      balance: %s
      breaker: {disabled: true}
      targets:
%s
  routes:
    - name: %s
      upstream: %s
      timeout: %s
`, a.svc.Name, listen, a.svc.Name, a.as.Balance, strings.Join(targets, "\n"), a.svc.Name, a.svc.Name, a.as.Timeout)
	return gateway.Parse(a.svc.Name+"-gateway.yaml", []byte(yaml))
}

func (a *autoscaler) startGateway() error {
	cfg, err := a.gatewayConfig()
	if err != nil {
		return fmt.Errorf("starting the gateway of %s: %w", a.svc.Name, err)
	}
	gw, err := gateway.New(cfg, gateway.Options{Clock: a.clock, Logger: a.env.log, Registry: a.reg, Recorder: a.rec, AccessLog: io.Discard})
	if err != nil {
		return fmt.Errorf("starting the gateway of %s: %w", a.svc.Name, err)
	}
	if err := gw.Start(); err != nil {
		return fmt.Errorf("starting the gateway of %s: %w", a.svc.Name, err)
	}
	a.gw = gw
	return nil
}

// reload points the gateway at the ready replicas; a.mu is held.
func (a *autoscaler) reload() {
	cfg, err := a.gatewayConfig()
	if err == nil {
		err = a.gw.Reload(cfg)
	}
	if err != nil {
		a.env.log.Error("autoscaler: reloading the gateway", "service", a.svc.Name, "error", err)
	}
}

// loop scrapes the gateway's request counter every second and syncs the
// controller at each whole multiple of its period, until close.
func (a *autoscaler) loop() {
	defer close(a.done)
	period := a.as.SyncPeriod
	next := a.clock.Now().Truncate(time.Second).Add(time.Second)
	for {
		tm := a.clock.NewTimer(next.Sub(a.clock.Now()))
		select {
		case <-a.stop:
			tm.Stop()
			return
		case <-tm.C():
		}
		now := next
		a.scrape(now)
		if now.Truncate(period).Equal(now) {
			a.sync(now)
		}
		a.mu.Lock()
		if a.record.Start.IsZero() {
			a.record.Start = now
		}
		a.record.Seconds = append(a.record.Seconds, ScalingSecond{At: now, Replicas: a.desired, Ready: a.readyCount(), Metric: a.lastSeen})
		a.mu.Unlock()
		next = next.Add(time.Second)
	}
}

// scrape reads the gateway's request counter: every request it answered.
func (a *autoscaler) scrape(now time.Time) {
	fams, err := a.reg.Gather()
	if err != nil {
		return
	}
	var n float64
	for _, f := range fams {
		if f.GetName() != "http_server_request_duration_seconds" {
			continue
		}
		for _, m := range f.GetMetric() {
			n += float64(m.GetHistogram().GetSampleCount())
		}
	}
	a.mu.Lock()
	a.samples = append(a.samples, counterSample{now, n})
	// keep what the window needs
	cut := now.Add(-a.as.MetricWindow - time.Second)
	for len(a.samples) > 2 && a.samples[0].at.Before(cut) {
		a.samples = a.samples[1:]
	}
	a.mu.Unlock()
}

// rate is the counter's increase over the metric window before now, per
// second; a.mu is held.
func (a *autoscaler) rate(now time.Time) float64 {
	if len(a.samples) < 2 {
		return 0
	}
	last := a.samples[len(a.samples)-1]
	first := last
	for _, s := range a.samples {
		if !s.at.Before(now.Add(-a.as.MetricWindow)) {
			first = s
			break
		}
	}
	if !last.at.After(first.at) {
		return 0
	}
	return (last.n - first.n) / last.at.Sub(first.at).Seconds()
}

func (a *autoscaler) readyCount() int {
	n := 0
	for _, r := range a.replicas {
		if !r.readyAt.IsZero() && !r.removed {
			n++
		}
	}
	return n
}

// sync runs one decision of the controller and carries it out.
func (a *autoscaler) sync(now time.Time) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.lastSeen = a.rate(now)
	a.record.Syncs = append(a.record.Syncs, now)
	d := a.ctrl.Decide(autoscale.Observation{Now: now, Current: int32(a.desired), Ready: int32(a.readyCount()), Value: a.lastSeen})
	to := int(d.Desired)
	if to == a.desired {
		return
	}
	a.record.Events = append(a.record.Events, ScalingEvent{At: now, From: a.desired, To: to, Reason: d.Reason, Observed: a.lastSeen})
	a.env.log.Info("autoscaler scaled", "service", a.svc.Name, "from", a.desired, "to", to, "reason", d.Reason, "observed", a.lastSeen)
	for n := a.desired; n < to; n++ {
		r := a.newReplica(now)
		a.starting.Go(func() { a.bringUp(r) })
	}
	for n := a.desired; n > to; n-- {
		a.takeDown()
	}
	a.desired = to
}

// bringUp starts a replica, waits for its health check and the start-up
// delay, and adds it to the gateway, unless it was removed meanwhile.
func (a *autoscaler) bringUp(r *scaledReplica) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-a.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	err := r.proc.start()
	if err == nil {
		err = r.proc.waitHealthy(ctx)
	}
	if err == nil {
		err = sleepUntil(ctx, a.clock, r.decided.Add(a.as.StartupDelay))
	}
	a.mu.Lock()
	if err == nil && !r.removed {
		r.readyAt = a.clock.Now()
		a.reload()
		a.mu.Unlock()
		return
	}
	if err != nil && ctx.Err() == nil {
		a.env.log.Error("autoscaler: a replica did not start", "service", a.svc.Name, "replica", r.index, "error", err)
	}
	r.removed = true
	a.forget(r)
	a.mu.Unlock()
	r.proc.stop()
}

// takeDown removes the newest replica still starting, or else the most
// recently ready, as a ReplicaSet picks pods to delete; a.mu is held.
func (a *autoscaler) takeDown() {
	var victim *scaledReplica
	for _, r := range a.replicas {
		if r.removed {
			continue
		}
		switch {
		case victim == nil:
			victim = r
		case r.readyAt.IsZero() != victim.readyAt.IsZero():
			if r.readyAt.IsZero() {
				victim = r
			}
		case r.decided.After(victim.decided) || (r.decided.Equal(victim.decided) && r.index > victim.index):
			victim = r
		}
	}
	if victim == nil {
		return
	}
	victim.removed = true
	if victim.readyAt.IsZero() {
		return // bringUp stops it
	}
	a.reload()
	a.starting.Go(func() {
		select {
		case <-a.stop:
		case <-a.after(a.as.DrainTimeout):
		}
		victim.proc.stop()
		a.mu.Lock()
		a.forget(victim)
		a.mu.Unlock()
	})
}

// after is a channel that fires after d on the autoscaler's clock.
func (a *autoscaler) after(d time.Duration) <-chan time.Time { return a.clock.NewTimer(d).C() }

// forget drops a removed replica from the list, freeing its index; a.mu
// is held.
func (a *autoscaler) forget(r *scaledReplica) {
	a.replicas = slices.DeleteFunc(a.replicas, func(x *scaledReplica) bool { return x == r })
}

// close stops the autoscaler, the gateway and every replica, and writes
// the scaling record into the run's output folder.
func (a *autoscaler) close() {
	select {
	case <-a.stop:
		return
	default:
	}
	close(a.stop)
	if a.gw != nil {
		<-a.done
	}
	a.starting.Wait()
	if a.gw != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = a.gw.Shutdown(ctx)
		cancel()
	}
	a.mu.Lock()
	reps := slices.Clone(a.replicas)
	a.mu.Unlock()
	for _, r := range reps {
		r.proc.stop()
	}
	if a.env.logDir == "" || a.gw == nil {
		return
	}
	a.mu.Lock()
	data, err := json.MarshalIndent(&a.record, "", "  ")
	a.mu.Unlock()
	if err == nil {
		err = os.WriteFile(filepath.Join(a.env.logDir, ScalingFile(a.svc.Name)), append(data, '\n'), 0o644)
	}
	if err != nil {
		a.env.log.Error("autoscaler: writing the scaling record", "service", a.svc.Name, "error", err)
	}
}
