package gateway

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"reflect"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/relia-dev/relia/ai"
	"github.com/relia-dev/relia/apimgmt"
	"github.com/relia-dev/relia/callstore"
	"github.com/relia-dev/relia/clock"
	"github.com/relia-dev/relia/gateway/auth"
	"github.com/relia-dev/relia/gateway/upstream"
	"github.com/relia-dev/relia/outcome"
	"go.opentelemetry.io/otel/trace"
)

// Options are what a Gateway takes besides its config: the process's
// registry, clock, recorder and logs. The zero value is valid.
type Options struct {
	// Registry receives the gateway's metrics and is served on the admin
	// API's /metrics; nil means a registry of the gateway's own.
	Registry *prometheus.Registry
	// Clock is the source of time; nil means the real clock.
	Clock clock.Clock
	// Recorder, when set, receives one outcome per proxied request, named
	// by route, so SLOs can be evaluated over gateway traffic.
	Recorder *outcome.Recorder
	// Logger receives the gateway's own events (reloads, ejections,
	// errors); nil means JSON on stderr.
	Logger *slog.Logger
	// AccessLog, when set, receives the access log instead of the file the
	// config names. An *os.File open on a regular file (a standard error
	// redirected to a file) is written as the gateway's own file is.
	AccessLog io.Writer
	// ConfigPath is the file ReloadFile, the admin reload and the file
	// watch read.
	ConfigPath string
	// Load, when set, makes the config that ReloadFile and the admin
	// reload apply, in place of reading ConfigPath: for a gateway whose
	// config is built in Go from files of other kinds (relia ai serve
	// builds one around the AIGateway documents of its files).
	Load func() (*Config, error)
	// WatchInterval, when positive, polls ConfigPath this often and
	// reloads when it changes.
	WatchInterval time.Duration
	// Authenticate, when set, runs for every matched request before the
	// rate limit, in place of spec.auth. It reads the request's fields and
	// returns the caller's tenant, or an error: an *auth.Error gives the
	// answer's status and reason, any other is a 401.
	Authenticate func(h auth.HeaderGetter, route string) (tenant string, err error)
	// Calls, when set, receives one call record per answer the gateway
	// gives, in place of the store spec.calls names.
	Calls callstore.Recorder
	// APIs, when set, decides each matched call by its API's lifecycle
	// and the caller's subscription, in place of the kind: API documents
	// of the config file.
	APIs *apimgmt.Manager
	// Ready, when set, is consulted by /readyz besides the upstreams'
	// health: a non-nil error (Redis unreachable, say) makes it 503.
	Ready func(ctx context.Context) error
	// TracerProvider, when set, receives a server span per request and a
	// client span per upstream attempt. Left nil, spans are exported over
	// OTLP (http/protobuf, or gRPC with OTEL_EXPORTER_OTLP_PROTOCOL=grpc)
	// when the standard OTEL_* variables ask for it
	// (OTEL_EXPORTER_OTLP_ENDPOINT, OTEL_TRACES_EXPORTER=otlp), and not
	// made at all otherwise.
	TracerProvider trace.TracerProvider
}

// Gateway is a running reverse proxy. Its config is swapped atomically by
// Reload; requests in flight finish under the config they started with.
type Gateway struct {
	opts    Options
	clock   clock.Clock
	log     *slog.Logger
	metrics *metrics
	reg     *prometheus.Registry
	rec     *outcome.Recorder
	access  *accessLog
	// calls keeps call records and API management; nil when neither is
	// configured.
	calls   *calls
	auth    func(x *exchange) bool
	tracing *tracing // nil when traces are off

	state    atomic.Pointer[state]
	reloadMu sync.Mutex
	gen      atomic.Uint64

	accessW    *bufferedWriter
	accessFile *os.File
	redis      redisClients
	keySets    remoteKeySets

	mu        sync.Mutex
	started   bool
	addrs     map[string]string
	admin     *http.Server
	adminAddr string
	// adminMore are the endpoints HandleAdmin added to the admin API.
	adminMore []adminEndpoint
	bg        sync.WaitGroup
	conns     connSet       // client connections, drained by Shutdown
	open      upstream.Open // target connections, ended by Shutdown past its deadline
	stopBg    context.CancelFunc
	bgCtx     context.Context
	// aiSvc is the AI gateway, made by the first config with ai routes
	// and reloaded by every later one (ai.go).
	aiSvc *ai.Service
	// hangUps watches streaming AI answers' clients (ai_hangup_linux.go).
	hangUps hangUps
	// loopClock, when a test sets it before Start, is the event loops'
	// clock (engine_loop_linux.go); nil: the real one.
	loopClock clock.Clock
	// realClock says the gateway's clock is the real one (no
	// Options.Clock): an event loop's reading of the real clock at its
	// wake is then a reading of the gateway's clock too, and a request the
	// loop serves takes its start and its answer's arrival from the wakes
	// that found them instead of reading the clock itself.
	realClock bool
	// loopSweep, when a test sets it before Start, is how often the event
	// loops sweep (engine_loop_linux.go); zero: loopSweep.
	loopSweep time.Duration
	// servers are the listeners' servers while the gateway runs; read
	// without mu by the paths that must reach their event loops
	// (targetWaits).
	servers atomic.Pointer[[]*listenerServer]
	// tunnelOpening, when a test sets it, runs as an upgraded connection's
	// tunnel opens, after its 101 went out (upgrade.go).
	tunnelOpening atomic.Pointer[func()]
}

// state is one config generation: everything a request reads, built once
// and never changed.
type state struct {
	cfg      *Config // as loaded
	eff      *Config // cfg.Effective(): what was compiled
	gen      uint64
	loaded   time.Time
	routes   []*route
	pools    map[string]*pool
	poolList []*pool
	trust    []netip.Prefix
	// auth checks credentials under the config's spec.auth; nil without.
	auth *authenticators
	// keySets are the remote JWKS auth fetches keys from.
	keySets []*auth.RemoteJWKS
	// ai serves the ai routes; nil without (ai.go).
	ai *ai.Service
}

func (st *state) trusted(a netip.Addr) bool {
	for _, p := range st.trust {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// New builds a gateway from a validated config. It opens the access log
// but no listener; Start does that.
func New(cfg *Config, o Options) (*Gateway, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	g := &Gateway{opts: o, clock: clock.OrReal(o.Clock), realClock: o.Clock == nil || o.Clock == clock.Real(), log: o.Logger, rec: o.Recorder, reg: o.Registry}
	if g.log == nil {
		g.log = slog.New(slog.NewJSONHandler(os.Stderr, nil))
	}
	if g.reg == nil {
		g.reg = prometheus.NewRegistry()
	}
	m, err := newMetrics(g.reg, g.state.Load, cfg.Spec.Metrics.latencyBuckets())
	if err != nil {
		return nil, fmt.Errorf("registering gateway metrics: %w", err)
	}
	g.metrics = m
	if o.Authenticate != nil {
		authn := o.Authenticate
		g.auth = func(x *exchange) bool {
			tenant, err := authn(&x.req, x.route.name)
			if err == nil {
				x.tenant = tenant
				return true
			}
			g.refuseAuth(x, err)
			return false
		}
	}
	if err := g.openAccessLog(cfg); err != nil {
		return nil, err
	}
	if err := g.openCalls(cfg); err != nil {
		g.closeAccessLog()
		return nil, fmt.Errorf("opening the call store: %w", err)
	}
	st, err := g.build(cfg, nil)
	if err == nil {
		g.tracing, err = newTracing(o)
	}
	if err != nil {
		g.closeAccessLog()
		g.calls.close(context.Background())
		g.redis.close()
		g.keySets.close()
		return nil, err
	}
	g.state.Store(st)
	return g, nil
}

func (g *Gateway) openAccessLog(cfg *Config) error {
	var dst io.Writer
	switch al := cfg.Spec.AccessLog; {
	case g.opts.AccessLog != nil:
		dst = g.opts.AccessLog // relia ai serve's standard error among them
	case al.Disabled:
		return nil
	case al.Path == "" || al.Path == "-":
		dst = os.Stderr
	default:
		f, err := os.OpenFile(al.Path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
		if err != nil {
			return fmt.Errorf("opening access log: %w", err)
		}
		g.accessFile = f
		dst = f
	}
	// Any file, the config's or a standard error redirected to one, is
	// written by newFileWriter's raw writes when it is a regular file; a
	// pipe or a terminal through os.File.
	//
	// The flush tick is the real clock's even when the gateway runs on a
	// fake one: it bounds how stale the file is for whoever reads it, and
	// is no part of the request logic that tests drive through the clock
	// (whose pending timers they count). So is the time a write to the
	// file took.
	if f, ok := dst.(*os.File); ok {
		dst = newFileWriter(f, clock.Real())
	}
	g.accessW = newBufferedWriter(dst, clock.Real())
	g.access = &accessLog{w: g.accessW}
	return nil
}

func (g *Gateway) closeAccessLog() {
	if g.accessW != nil {
		g.accessW.Close()
	}
	if g.accessFile != nil {
		g.accessFile.Close()
	}
}

// Config returns the config in force.
func (g *Gateway) Config() *Config { return g.state.Load().cfg }

// Reload applies cfg atomically: requests that started before it finish
// under the old config, every later one sees the new. An invalid config,
// or one that changes what needs a restart (listeners, admin, server
// limits, access log, metrics), is rejected and the old one keeps serving.
func (g *Gateway) Reload(cfg *Config) error {
	g.reloadMu.Lock()
	defer g.reloadMu.Unlock()
	err := g.reload(cfg)
	if err != nil {
		g.metrics.reloads.WithLabelValues("failure").Inc()
		g.log.Error("config reload rejected; the previous config keeps serving", "error", err)
		return err
	}
	g.metrics.reloads.WithLabelValues("success").Inc()
	g.log.Info("config reloaded", "generation", g.state.Load().gen)
	return nil
}

func (g *Gateway) reload(cfg *Config) error {
	if err := cfg.validate(); err != nil {
		return err
	}
	old := g.state.Load()
	o, n := old.eff.Spec, cfg.Effective().Spec
	switch {
	case !reflect.DeepEqual(o.Listeners, n.Listeners):
		return cfg.errorf("spec.listeners", "listeners cannot change on reload; restart the gateway")
	case !reflect.DeepEqual(o.Admin, n.Admin):
		return cfg.errorf("spec.admin", "the admin listener cannot change on reload; restart the gateway")
	case !reflect.DeepEqual(o.Server, n.Server):
		return cfg.errorf("spec.server", "server limits cannot change on reload; restart the gateway")
	case !reflect.DeepEqual(o.AccessLog, n.AccessLog):
		return cfg.errorf("spec.accessLog", "the access log cannot change on reload; restart the gateway")
	case !reflect.DeepEqual(o.Metrics, n.Metrics):
		return cfg.errorf("spec.metrics", "metrics cannot change on reload; restart the gateway")
	case !reflect.DeepEqual(o.Calls, n.Calls):
		return cfg.errorf("spec.calls", "the call store cannot change on reload; restart the gateway")
	case (len(old.cfg.apis) > 0) != (len(cfg.apis) > 0) && g.opts.APIs == nil:
		return errors.New("APIs cannot be added to or removed from a gateway on reload; restart the gateway")
	}
	st, err := g.build(cfg, old)
	if err != nil {
		g.keySets.retain(old.keySets) // drop the sets the failed build made
		return err
	}
	g.mu.Lock()
	running := g.started
	if running {
		for _, p := range st.poolList {
			if old.pools[p.name] != p {
				g.startHealth(p)
			}
		}
	}
	g.mu.Unlock()
	g.state.Store(st)
	g.keySets.retain(st.keySets)
	g.auditReload(old, st)
	if g.calls != nil && g.calls.apis != nil && g.opts.APIs == nil {
		if err := g.calls.apis.SetAPIs(context.Background(), cfg.apis, "gateway"); err != nil {
			g.log.Error("writing the APIs' changes to the audit log failed", "error", err)
		}
	}
	for _, p := range old.poolList {
		if np := st.pools[p.name]; np != p {
			p.stopHealth()
			// Targets the new pool does not keep are retired: their
			// idle connections close now, those of requests still in
			// flight when the requests end.
			for _, t := range p.targets {
				if np == nil || !np.uses(t.up) {
					t.up.Retire()
				}
			}
		}
	}
	return nil
}

// ReloadFile reads Options.ConfigPath, or makes the config with
// Options.Load, and reloads it.
func (g *Gateway) ReloadFile() error {
	load := g.opts.Load
	if load == nil {
		if g.opts.ConfigPath == "" {
			return errors.New("reloading: the gateway was not started from a file")
		}
		load = func() (*Config, error) { return LoadFile(g.opts.ConfigPath) }
	}
	cfg, err := load()
	if err != nil {
		g.metrics.reloads.WithLabelValues("failure").Inc()
		g.log.Error("config reload rejected; the previous config keeps serving", "error", err)
		return err
	}
	return g.Reload(cfg)
}

// Start opens the listeners and the admin API and starts health checks;
// it returns once they accept connections. Addr and AdminAddr then give
// their addresses (useful with port 0).
func (g *Gateway) Start() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.started {
		return errors.New("starting gateway: already started")
	}
	st := g.state.Load()
	srv := st.eff.Spec.Server
	g.addrs = map[string]string{}
	var lns []net.Listener
	var servers []*listenerServer
	fail := func(err error) error {
		for _, ln := range lns {
			ln.Close()
		}
		for _, ls := range servers {
			ls.closeLoops()
		}
		return err
	}
	for i, l := range st.eff.Spec.Listeners {
		ls, err := g.newListenerServer(l, srv)
		if err != nil {
			return fail(err)
		}
		ln, err := listen(st.eff, fmt.Sprintf("spec.listeners[%d].address", i), l.Address, "")
		if err != nil {
			return fail(err)
		}
		lns = append(lns, ln)
		ls.ln = ln
		if l.onLoops() {
			if err := g.newLoops(ls); err != nil {
				return fail(fmt.Errorf("listener %s: opening its event loops: %w", ls.name, err))
			}
		}
		g.addrs[ls.name] = ln.Addr().String()
		servers = append(servers, ls)
	}
	if err := g.startAdmin(st); err != nil {
		return fail(err)
	}
	g.servers.Store(&servers)
	for _, ls := range servers {
		g.startLoops(ls)
		g.bg.Add(1)
		go func() { // exits when Shutdown closes the listener
			defer g.bg.Done()
			ls.serve()
		}()
	}
	g.bgCtx, g.stopBg = context.WithCancel(context.Background())
	for _, p := range st.poolList {
		g.startHealth(p)
	}
	g.keySets.start()
	if g.opts.WatchInterval > 0 && g.opts.ConfigPath != "" {
		g.bg.Add(1)
		go g.watch(g.bgCtx) // exits when Shutdown cancels bgCtx
	}
	g.started = true
	return nil
}

// listen opens a listener on addr, the value of the config's field at
// path; dflt, when set, says the address is the default of a field left
// out. A port another process holds is named with the field that chose it,
// so that two gateways on one machine tell the user what to change.
func listen(cfg *Config, path, addr, dflt string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err == nil {
		return ln, nil
	}
	what := addr
	if dflt != "" {
		what += " (" + dflt + ")"
	}
	if errors.Is(err, syscall.EADDRINUSE) {
		_, port, _ := net.SplitHostPort(addr)
		return nil, cfg.errorf(path, "cannot listen on %s: port %s is in use by another gateway or program; give %s a free port (port 0 picks one)", what, port, path)
	}
	return nil, cfg.errorf(path, "cannot listen on %s: %v", what, err)
}

// Addr returns the address a listener (by name, or by its configured
// address when it has no name) listens on, once started.
func (g *Gateway) Addr(name string) string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.addrs[name]
}

// AdminAddr returns the admin API's address once started; empty when off.
func (g *Gateway) AdminAddr() string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.adminAddr
}

// Shutdown stops accepting connections and waits, until ctx ends, for the
// requests in flight to finish, upgraded connections and streams included
// (those still open when ctx ends are closed); then it stops health checks
// and flushes the access log.
func (g *Gateway) Shutdown(ctx context.Context) error {
	g.mu.Lock()
	var servers []*listenerServer
	if s := g.servers.Swap(nil); s != nil {
		servers = *s
	}
	admin := g.admin
	started := g.started
	g.started = false
	g.mu.Unlock()
	var errs []error
	for _, ls := range servers {
		ls.ln.Close()
		// HTTP/2 connections get GOAWAY and finish their streams.
		ls.h2base.Shutdown(ctx)
	}
	// Idle connections close now; the others finish their requests (and
	// upgraded ones their tunnels) until ctx ends, when those left and
	// their targets' connections are ended.
	g.conns.drain(ctx, g.open.EndAll, func() {
		for _, ls := range servers {
			ls.wakeLoops()
		}
	})
	if admin != nil {
		admin.Close()
	}
	if started {
		g.stopBg()
		for _, p := range g.state.Load().poolList {
			p.stopHealth()
			for _, t := range p.targets {
				t.up.Retire()
			}
		}
	}
	g.bg.Wait()
	g.closeAccessLog()
	if err := g.calls.close(ctx); err != nil {
		errs = append(errs, fmt.Errorf("flushing calls: %w", err))
	}
	g.redis.close()
	g.keySets.close()
	g.closeAI()
	if g.tracing != nil && g.tracing.shutdown != nil {
		if err := g.tracing.shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("flushing traces: %w", err))
		}
	}
	return errors.Join(errs...)
}

// Run starts the gateway and serves until ctx ends, then drains within the
// config's drain timeout.
func (g *Gateway) Run(ctx context.Context) error {
	if err := g.Start(); err != nil {
		return err
	}
	<-ctx.Done()
	d := g.Config().Spec.Server.withDefaults().DrainTimeout
	sctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	return g.Shutdown(sctx)
}

// watch reloads the config file when its size or modification time
// changes.
func (g *Gateway) watch(ctx context.Context) {
	defer g.bg.Done()
	stamp := func() (time.Time, int64) {
		fi, err := os.Stat(g.opts.ConfigPath)
		if err != nil {
			return time.Time{}, -1
		}
		return fi.ModTime(), fi.Size()
	}
	lastT, lastS := stamp()
	for {
		if clock.Sleep(ctx, g.clock, g.opts.WatchInterval) != nil {
			return
		}
		t, s := stamp()
		if s < 0 || (t.Equal(lastT) && s == lastS) {
			continue
		}
		lastT, lastS = t, s
		g.ReloadFile()
	}
}
