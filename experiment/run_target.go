package experiment

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/relia-dev/relia/clock"
	"github.com/relia-dev/relia/gateway"
	"github.com/relia-dev/relia/internal/aidemo"
	"github.com/relia-dev/relia/internal/shop"
)

// replicaControl is what a process fault does to one replica of a
// service the run started: the demo shop's in-process replicas and
// command processes answer to the same four verbs.
type replicaControl interface {
	kill() error
	restart() error
	pause() error
	resume() error
}

// system is the system under test as the run started it: where the load
// goes, the replicas process faults act on, and the gateway gateway
// faults reconfigure.
type system struct {
	url      string
	replicas map[string][]replicaControl
	shop     *shop.Shop
	ai       *aidemo.Stack
	gateway  *runGateway
	closers  []func()
}

// close stops everything the run started, last started first.
func (t *system) close() {
	for i := len(t.closers) - 1; i >= 0; i-- {
		t.closers[i]()
	}
	t.closers = nil
}

// targetEnv is what starting the target needs from the run.
type targetEnv struct {
	plan   *Plan
	clock  clock.Clock
	log    *slog.Logger
	logDir string // where command services' output goes; "" discards it
	faults *faultBackend
}

// startTarget starts the services of the plan's target (the demo shop
// behind the relia gateway, or commands with health checks) and works out
// where the load goes. A service that does not become healthy is an
// inputError: nothing has been sent yet.
func startTarget(ctx context.Context, env targetEnv) (*system, error) {
	p := env.plan
	t := &system{url: p.Target.URL, replicas: map[string][]replicaControl{}}
	for _, svc := range p.Target.Services {
		var err error
		switch {
		case svc.Shop != nil:
			err = t.startShop(ctx, env, svc)
		case svc.AI != nil:
			err = t.startAI(ctx, env, svc)
		case svc.Autoscale != nil:
			err = t.startAutoscaled(ctx, env, svc)
		default:
			err = t.startCommand(ctx, env, svc)
		}
		if err != nil {
			t.close()
			return nil, err
		}
	}
	return t, nil
}

// startShop starts the demo shop, the fault proxy in front of its payment
// processor (the proxy named ShopProcessorProxy) and the relia gateway in
// front of it all.
func (t *system) startShop(ctx context.Context, env targetEnv, svc Service) error {
	sh, err := shop.Start(ctx, shop.Options{
		Seed:      DeriveSeed(env.plan.Seed, "shop"),
		Latency:   true,
		Clock:     env.clock,
		Resilient: !svc.Shop.DisableResilience,
		Replicas:  shopReplicas(svc.Shop.Replicas),
	})
	if err != nil {
		return fmt.Errorf("starting the demo shop: %w", err)
	}
	t.closers = append(t.closers, func() { _ = sh.Close() })
	t.shop = sh
	if env.faults.server != nil {
		u, err := url.Parse(sh.Processor().URL())
		if err != nil {
			return fmt.Errorf("starting the processor's fault proxy: %w", err)
		}
		info, err := env.faults.createProxy(ShopProcessorProxy, "", u.Host, "http")
		if err != nil {
			return fmt.Errorf("starting the processor's fault proxy: %w", err)
		}
		if err := sh.Processor().Via("http://" + info.Listen); err != nil {
			return err
		}
	}
	for _, name := range ShopServices {
		for _, r := range sh.Replicas(name) {
			t.replicas[name] = append(t.replicas[name], shopReplica{r})
		}
	}
	gw, err := startGateway(sh.GatewayConfig(), env)
	if err != nil {
		return err
	}
	t.closers = append(t.closers, gw.close)
	t.gateway = gw
	if t.url == "" {
		t.url = "http://" + gw.gw.Addr("public")
	}
	return nil
}

// shopReplicas asks for n replicas of every shop service.
func shopReplicas(n int) map[string]int {
	m := make(map[string]int, len(ShopServices))
	for _, s := range ShopServices {
		m[s] = n
	}
	return m
}

// shopReplica adapts a replica of the demo shop.
type shopReplica struct{ r *shop.Replica }

func (s shopReplica) kill() error    { s.r.Kill(); return nil }
func (s shopReplica) restart() error { s.r.Kill(); return s.r.Restart() }
func (s shopReplica) pause() error   { s.r.Pause(); return nil }
func (s shopReplica) resume() error  { s.r.Resume(); return nil }

// startCommand starts every replica of a command service and waits until
// each answers its health check.
func (t *system) startCommand(ctx context.Context, env targetEnv, svc Service) error {
	reps := make([]*procReplica, svc.Replicas)
	for i := range reps {
		r := &procReplica{svc: svc, index: i, port: svc.Port + i, clock: env.clock, log: env.log}
		if env.logDir != "" {
			r.logPath = filepath.Join(env.logDir, fmt.Sprintf("%s-%d.log", svc.Name, i))
		}
		if err := r.start(); err != nil {
			return inputErrorf("service %s replica %d: %w", svc.Name, i, err)
		}
		t.closers = append(t.closers, r.stop)
		t.replicas[svc.Name] = append(t.replicas[svc.Name], r)
		reps[i] = r
	}
	for i, r := range reps {
		if err := r.waitHealthy(ctx); err != nil {
			return inputErrorf("service %s replica %d: %w", svc.Name, i, err)
		}
	}
	if t.url == "" {
		t.url = "http://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(svc.Port))
	}
	return nil
}

// procReplica is one replica of a command service: a child process that
// dies with relia (so even a SIGKILLed run leaves no service behind) and
// that process faults kill, restart, stop and continue.
type procReplica struct {
	svc     Service
	index   int
	port    int
	clock   clock.Clock
	log     *slog.Logger
	logPath string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd has been waited for
	out  *os.File
}

// start launches the replica's process.
func (r *procReplica) start() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	args := make([]string, len(r.svc.Command))
	for i, a := range r.svc.Command {
		a = strings.ReplaceAll(a, "{{port}}", strconv.Itoa(r.port))
		args[i] = strings.ReplaceAll(a, "{{replica}}", strconv.Itoa(r.index))
	}
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Env = append(os.Environ(), "PORT="+strconv.Itoa(r.port), "RELIA_REPLICA="+strconv.Itoa(r.index))
	for k, v := range r.svc.Env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	cmd.SysProcAttr = childProcAttr()
	if r.logPath != "" {
		if r.out == nil {
			f, err := os.OpenFile(r.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
			if err != nil {
				return fmt.Errorf("opening its log: %w", err)
			}
			r.out = f
		}
		cmd.Stdout, cmd.Stderr = r.out, r.out
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting %s: %w", args[0], err)
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(done)
	}()
	r.cmd, r.done = cmd, done
	r.log.Info("service replica started", "service", r.svc.Name, "replica", r.index, "pid", cmd.Process.Pid, "port", r.port)
	return nil
}

// waitHealthy polls the health check until it answers 2xx, the process
// exits, or the health timeout passes.
func (r *procReplica) waitHealthy(ctx context.Context) error {
	u := "http://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(r.port)) + r.svc.Health.Path
	deadline := r.clock.Now().Add(r.svc.Health.Timeout)
	hc := &http.Client{Timeout: time.Second}
	var last error
	for {
		r.mu.Lock()
		done := r.done
		r.mu.Unlock()
		select {
		case <-done:
			return fmt.Errorf("exited before its health check %s answered", u)
		default:
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if err != nil {
			return err
		}
		resp, err := hc.Do(req)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode >= 200 && resp.StatusCode < 300 {
				return nil
			}
			err = fmt.Errorf("status %d", resp.StatusCode)
		}
		last = err
		if !r.clock.Now().Before(deadline) {
			return fmt.Errorf("health check %s did not answer 2xx within %s: %v", u, fmtDur(r.svc.Health.Timeout), last)
		}
		if err := clock.Sleep(ctx, r.clock, 100*time.Millisecond); err != nil {
			return err
		}
	}
}

// signal sends sig to the replica's process, if it runs.
func (r *procReplica) signal(sig syscall.Signal) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cmd == nil {
		return errors.New("not running")
	}
	select {
	case <-r.done:
		return errors.New("not running")
	default:
	}
	return r.cmd.Process.Signal(sig)
}

func (r *procReplica) kill() error {
	r.mu.Lock()
	cmd, done := r.cmd, r.done
	r.mu.Unlock()
	if cmd == nil {
		return nil
	}
	_ = cmd.Process.Signal(syscall.SIGCONT) // a stopped process dies only once continued
	_ = cmd.Process.Kill()
	<-done
	return nil
}

func (r *procReplica) restart() error {
	if err := r.kill(); err != nil {
		return err
	}
	return r.start()
}

func (r *procReplica) pause() error  { return r.signal(syscall.SIGSTOP) }
func (r *procReplica) resume() error { return r.signal(syscall.SIGCONT) }

// stop ends the replica for good at the end of the run.
func (r *procReplica) stop() {
	_ = r.kill()
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.out != nil {
		r.out.Close()
		r.out = nil
	}
}

// runGateway is the relia gateway a run starts in front of the demo
// shop. Gateway faults are applied by reloading its config with the
// faults active at the time added to their routes.
type runGateway struct {
	gw     *gateway.Gateway
	name   string
	base   []byte // the config without faults
	routes []string

	mu     sync.Mutex
	active map[string]PlannedFault // by fault name
}

// startGateway starts a gateway on the config in data.
func startGateway(data []byte, env targetEnv) (*runGateway, error) {
	const name = "shop-gateway.yaml"
	cfg, err := gateway.Parse(name, data)
	if err != nil {
		return nil, fmt.Errorf("starting the gateway: %w", err)
	}
	gw, err := gateway.New(cfg, gateway.Options{Clock: env.clock, Logger: env.log, Registry: prometheus.NewRegistry(), AccessLog: io.Discard})
	if err != nil {
		return nil, fmt.Errorf("starting the gateway: %w", err)
	}
	if err := gw.Start(); err != nil {
		return nil, fmt.Errorf("starting the gateway: %w", err)
	}
	g := &runGateway{gw: gw, name: name, base: data, active: map[string]PlannedFault{}}
	for _, r := range cfg.Spec.Routes {
		g.routes = append(g.routes, r.Name)
	}
	return g, nil
}

// close drains the gateway.
func (g *runGateway) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = g.gw.Shutdown(ctx)
}

// set adds (on) or removes a gateway fault and reloads the gateway with
// every fault active now.
func (g *runGateway) set(f PlannedFault, on bool) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if on {
		g.active[f.Name] = f
	} else {
		delete(g.active, f.Name)
	}
	cfg, err := gateway.Parse(g.name, g.base)
	if err != nil {
		return err
	}
	names := slices.Sorted(maps.Keys(g.active)) // the same config for the same faults
	for _, name := range names {
		af := g.active[name]
		gf := af.Gateway
		for i := range cfg.Spec.Routes {
			rt := &cfg.Spec.Routes[i]
			if rt.Name == gf.Route {
				rt.Faults = append(rt.Faults, gf.RouteFault(af.Name, af.Seed))
			}
		}
	}
	return g.gw.Reload(cfg)
}
