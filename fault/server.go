package fault

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"sort"
	"sync"
	"syscall"
	"time"

	"github.com/relia-dev/relia/clock"
	"github.com/relia-dev/relia/internal/buildinfo"
)

// End reasons recorded in the audit log when a fault ends.
const (
	EndRemoved  = "removed"  // deleted through the API, or its proxy was
	EndExpired  = "expired"  // nobody renewed its lease
	EndReset    = "reset"    // POST /reset
	EndShutdown = "shutdown" // the server stopped
)

// Options configure a Server. The zero value is valid.
type Options struct {
	// Clock drives leases and toxic delays; nil means the real clock.
	Clock clock.Clock
	// Seed seeds every random fault decision. The same seed and the same
	// traffic (the same connections in the same order) give the same
	// decisions. The caller picks and records it; relia fault serve prints
	// it.
	Seed uint64
	// Audit receives one record per fault start, renewal and end; nil
	// discards them.
	Audit *slog.Logger
	// DefaultTTL is the lease of a toxic created without lease_ttl; 0
	// means none: such a toxic stays until removed, as in Toxiproxy, so
	// suites written for Toxiproxy keep their toxics. relia's own Client
	// always asks for a lease. Process faults always have one: this, or
	// DefaultLeaseTTL when this is 0.
	DefaultTTL time.Duration
	// MaxProxies caps the number of proxies, so that clients cannot
	// create listeners until file descriptors run out; 0 means
	// DefaultMaxProxies.
	MaxProxies int
	// DialTimeout bounds connecting to an upstream; 0 means 5 s.
	DialTimeout time.Duration
	// AllowProcessFaults lets the control API run process faults (kill,
	// pause, CPU, memory, disk fill) on this machine. Off by default: a
	// fault proxy is often reachable by more people than its host.
	AllowProcessFaults bool
}

// Server is a set of named fault proxies and their faults. Its methods are
// safe for concurrent use; Handler serves its control API.
type Server struct {
	clock      clock.Clock
	seed       uint64
	audit      *slog.Logger
	defaultTTL time.Duration
	maxProxies int
	dialer     net.Dialer

	process      *ProcessFaults
	allowProcess bool

	mu      sync.Mutex
	proxies map[string]*proxyEntry
	closed  bool
}

// NewServer returns a server with no proxies.
func NewServer(opts Options) (*Server, error) {
	if opts.DefaultTTL < 0 || opts.DefaultTTL > MaxLeaseTTL {
		return nil, fmt.Errorf("default lease ttl must be within [0, %v] (0: no lease), got %v", MaxLeaseTTL, opts.DefaultTTL)
	}
	if opts.MaxProxies < 0 {
		return nil, fmt.Errorf("max proxies must not be negative, got %d", opts.MaxProxies)
	}
	if opts.DialTimeout < 0 {
		return nil, fmt.Errorf("dial timeout must not be negative, got %v", opts.DialTimeout)
	}
	s := &Server{
		clock:      clock.OrReal(opts.Clock),
		seed:       opts.Seed,
		audit:      opts.Audit,
		defaultTTL: opts.DefaultTTL,
		maxProxies: cmp.Or(opts.MaxProxies, DefaultMaxProxies),
		proxies:    map[string]*proxyEntry{},
	}
	if s.audit == nil {
		s.audit = slog.New(slog.NewJSONHandler(io.Discard, nil))
	}
	s.process = NewProcessFaults(s.clock, s.audit)
	s.process.defaultTTL = cmp.Or(s.defaultTTL, DefaultLeaseTTL)
	s.allowProcess = opts.AllowProcessFaults
	s.dialer.Timeout = opts.DialTimeout
	if s.dialer.Timeout == 0 {
		s.dialer.Timeout = 5 * time.Second
	}
	return s, nil
}

// Seed returns the seed of the server's random decisions.
func (s *Server) Seed() uint64 { return s.seed }

// Status is what GET /relia/status reports: what a runner records beside
// its results to reproduce a run's fault decisions.
type Status struct {
	Seed    uint64 `json:"seed"`
	Version string `json:"version"`
	// Launched maps the processes the server launched (targets of kill,
	// restart and pause by name) to their current pids.
	Launched map[string]int `json:"launched"`
}

// Status returns the server's seed, version and launched processes.
func (s *Server) Status() Status {
	return Status{Seed: s.seed, Version: buildinfo.String(), Launched: s.process.Launched()}
}

// ProxyConfig defines a proxy, in Toxiproxy's JSON shape.
type ProxyConfig struct {
	Name     string `json:"name"`
	Listen   string `json:"listen"`
	Upstream string `json:"upstream"`
	// Enabled defaults to true.
	Enabled *bool `json:"enabled,omitempty"`
	// Mode is relia's: "tcp" (the default, Toxiproxy's) or "http", where
	// toxics of type http act per request on HTTP/1.1 traffic.
	Mode string `json:"mode,omitempty"`
	// MaxTriggered is relia's: in HTTP mode, how many requests at once a
	// request header (X-Relia-Fault: <toxic name>) may push into a fault;
	// 0 disables header-triggered faults.
	MaxTriggered int `json:"max_triggered,omitempty"`
}

// ProxyInfo is a proxy as the API shows it.
type ProxyInfo struct {
	Name     string  `json:"name"`
	Listen   string  `json:"listen"`
	Upstream string  `json:"upstream"`
	Enabled  bool    `json:"enabled"`
	Toxics   []Toxic `json:"toxics"`
	// Mode is "tcp" or "http".
	Mode string `json:"mode"`
}

// proxyEntry is one named proxy, in TCP or HTTP mode.
type proxyEntry struct {
	srv  *Server
	name string

	mu       sync.Mutex
	listen   string
	upstream string
	enabled  bool
	ln       net.Listener
	accepted sync.WaitGroup // the accept loop
	toxics   []*toxicEntry  // in the order added
	links    map[*link]struct{}
	seq      uint64
	mode     string
	filter   *HTTPFilter // http mode
	httpSrv  *httpProxy  // http mode, while enabled
	// httpTransport is the http mode's pool of upstream connections.
	httpTransport interface{ CloseIdleConnections() }
}

// toxicEntry is a toxic on a proxy with its lease, if it has one. A new
// entry replaces it on update, so links see the change as a new toxic
// state.
type toxicEntry struct {
	spec      *toxicSpec
	key       uint64
	ttl       time.Duration // 0: no lease
	expiresAt time.Time
	started   time.Time
	timer     clock.Timer // nil without a lease
}

func (e *toxicEntry) info() Toxic {
	t := Toxic{
		Name: e.spec.name, Type: e.spec.typ, Stream: e.spec.dir.String(), Toxicity: e.spec.toxicity,
		Attributes: e.spec.impl,
	}
	if e.ttl > 0 {
		t.Lease = &Lease{TTL: e.ttl.String(), ExpiresAt: e.expiresAt}
	}
	return t
}

// stopTimer stops e's lease timer, if it has one.
func (e *toxicEntry) stopTimer() {
	if e.timer != nil {
		e.timer.Stop()
		e.timer = nil
	}
}

func (s *Server) errClosed() error { return errors.New("fault server is shut down") }

// CreateProxy adds a proxy and, unless disabled, starts it listening.
func (s *Server) CreateProxy(cfg ProxyConfig) (ProxyInfo, error) {
	if err := checkProxyConfig(cfg, ""); err != nil {
		return ProxyInfo{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ProxyInfo{}, s.errClosed()
	}
	if _, ok := s.proxies[cfg.Name]; ok {
		return ProxyInfo{}, ErrProxyAlreadyExists.detail("%s", quoteName(cfg.Name))
	}
	if len(s.proxies) >= s.maxProxies {
		return ProxyInfo{}, s.errTooMany()
	}
	p := &proxyEntry{srv: s, name: cfg.Name, listen: cfg.Listen, upstream: cfg.Upstream, links: map[*link]struct{}{}, mode: "tcp"}
	if cfg.Mode == "http" {
		p.mode = "http"
		f, err := NewHTTPFilter(nil, HTTPFilterOptions{Seed: streamKey(s.seed, cfg.Name, ""), Clock: s.clock, MaxTriggered: cfg.MaxTriggered})
		if err != nil {
			return ProxyInfo{}, ErrBadRequestBody.detail("%v", err)
		}
		p.filter = f
	}
	if cfg.Enabled == nil || *cfg.Enabled {
		p.mu.Lock()
		err := p.start()
		p.mu.Unlock()
		if err != nil {
			return ProxyInfo{}, err
		}
	}
	s.proxies[cfg.Name] = p
	s.audit.Info("proxy created", "proxy", p.name, "listen", p.listen, "upstream", p.upstream, "seed", s.seed)
	return p.info(), nil
}

func checkProxyConfig(cfg ProxyConfig, where string) error {
	if cfg.Mode != "" && cfg.Mode != "tcp" && cfg.Mode != "http" {
		return ErrBadRequestBody.detail("mode must be tcp or http, got %q%s", cfg.Mode, where)
	}
	if cfg.MaxTriggered < 0 {
		return ErrBadRequestBody.detail("max_triggered must not be negative, got %d%s", cfg.MaxTriggered, where)
	}
	if err := checkName("proxy", cfg.Name, where); err != nil {
		return err
	}
	if cfg.Upstream == "" {
		return ErrMissingField.detail("upstream%s", where)
	}
	return checkAddrs(cfg.Listen, cfg.Upstream, where)
}

// checkAddrs rejects addresses that cannot be host:port, so a typo is a
// 400 naming the field rather than a failure to listen or dial later.
// An empty listen address means any free port, as in Toxiproxy.
func checkAddrs(listen, upstream, where string) error {
	if listen != "" {
		if _, _, err := net.SplitHostPort(listen); err != nil {
			return ErrBadRequestBody.detail("listen %q must be host:port%s", listen, where)
		}
	}
	if _, port, err := net.SplitHostPort(upstream); err != nil || port == "" {
		return ErrBadRequestBody.detail("upstream %q must be host:port%s", upstream, where)
	}
	return nil
}

// ErrListenInUse answers a proxy whose listen address another socket
// holds.
var ErrListenInUse = &APIError{"listen address in use", http.StatusConflict}

// DefaultMaxProxies is how many proxies a server holds unless
// Options.MaxProxies says otherwise.
const DefaultMaxProxies = 1000

// ErrTooManyProxies answers a proxy past Options.MaxProxies.
var ErrTooManyProxies = &APIError{"too many proxies", http.StatusConflict}

func (s *Server) errTooMany() error {
	return ErrTooManyProxies.detail("the server holds at most %d (relia fault serve --max-proxies); delete one first", s.maxProxies)
}

// Populate creates or replaces the proxies in cfgs, as Toxiproxy's
// /populate does: a proxy with the same listen and upstream is kept as is.
// It validates all before creating any.
func (s *Server) Populate(cfgs []ProxyConfig) ([]ProxyInfo, error) {
	fresh := 0
	s.mu.Lock()
	for _, c := range cfgs {
		if _, ok := s.proxies[c.Name]; !ok {
			fresh++
		}
	}
	full := len(s.proxies)+fresh > s.maxProxies
	s.mu.Unlock()
	for i, c := range cfgs {
		if err := checkProxyConfig(c, fmt.Sprintf(" at proxy %d", i+1)); err != nil {
			return nil, err
		}
	}
	if full {
		return nil, s.errTooMany()
	}
	out := make([]ProxyInfo, 0, len(cfgs))
	for _, c := range cfgs {
		s.mu.Lock()
		old, ok := s.proxies[c.Name]
		s.mu.Unlock()
		if ok {
			old.mu.Lock()
			same := old.listen == c.Listen && old.upstream == c.Upstream
			old.mu.Unlock()
			if same {
				out = append(out, old.info())
				continue
			}
			if err := s.DeleteProxy(c.Name); err != nil && !errors.Is(err, ErrProxyNotFound) {
				return out, err
			}
		}
		info, err := s.CreateProxy(c)
		if err != nil {
			return out, err
		}
		out = append(out, info)
	}
	return out, nil
}

func (s *Server) lookup(name string) (*proxyEntry, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.proxies[name]
	if !ok {
		return nil, ErrProxyNotFound.detail("%s", quoteName(name))
	}
	return p, nil
}

// Proxies returns every proxy, sorted by name.
func (s *Server) Proxies() []ProxyInfo {
	s.mu.Lock()
	ps := make([]*proxyEntry, 0, len(s.proxies))
	for _, p := range s.proxies {
		ps = append(ps, p)
	}
	s.mu.Unlock()
	out := make([]ProxyInfo, 0, len(ps))
	for _, p := range ps {
		out = append(out, p.info())
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Proxy returns one proxy.
func (s *Server) Proxy(name string) (ProxyInfo, error) {
	p, err := s.lookup(name)
	if err != nil {
		return ProxyInfo{}, err
	}
	return p.info(), nil
}

// UpdateProxy changes a proxy's listen address, upstream or enabled state,
// as Toxiproxy's POST /proxies/{name} does: a new address restarts it.
func (s *Server) UpdateProxy(name string, listen, upstream string, enabled bool) (ProxyInfo, error) {
	p, err := s.lookup(name)
	if err != nil {
		return ProxyInfo{}, err
	}
	if err := checkAddrs(listen, upstream, ""); err != nil {
		return ProxyInfo{}, err
	}
	p.mu.Lock()
	if listen != p.listen || upstream != p.upstream {
		p.stop()
		p.listen, p.upstream = listen, upstream
	}
	if enabled && !p.enabled {
		err = p.start()
	} else if !enabled {
		p.stop()
	}
	p.mu.Unlock()
	if err != nil {
		return ProxyInfo{}, err
	}
	return p.info(), nil
}

// DeleteProxy stops a proxy and ends its faults.
func (s *Server) DeleteProxy(name string) error {
	s.mu.Lock()
	p, ok := s.proxies[name]
	delete(s.proxies, name)
	s.mu.Unlock()
	if !ok {
		return ErrProxyNotFound.detail("%s", quoteName(name))
	}
	p.mu.Lock()
	p.stop()
	p.endAllLocked(EndRemoved)
	p.mu.Unlock()
	s.audit.Info("proxy deleted", "proxy", name)
	return nil
}

// Reset re-enables every proxy and removes every fault, as Toxiproxy's
// POST /reset does.
func (s *Server) Reset() error {
	s.mu.Lock()
	ps := make([]*proxyEntry, 0, len(s.proxies))
	for _, p := range s.proxies {
		ps = append(ps, p)
	}
	s.mu.Unlock()
	var errs []error
	for _, p := range ps {
		p.mu.Lock()
		if !p.enabled {
			errs = append(errs, p.start())
		}
		p.endAllLocked(EndReset)
		p.mu.Unlock()
	}
	return errors.Join(errs...)
}

// ProcessFaults returns the server's process faults, which Close reverts.
func (s *Server) ProcessFaults() *ProcessFaults { return s.process }

// Close stops every proxy and ends every fault (reason shutdown), process
// faults included; the server accepts nothing afterwards.
func (s *Server) Close() error {
	defer s.process.Close()
	s.mu.Lock()
	s.closed = true
	ps := s.proxies
	s.proxies = map[string]*proxyEntry{}
	s.mu.Unlock()
	for _, p := range ps {
		p.mu.Lock()
		p.stop()
		p.endAllLocked(EndShutdown)
		p.mu.Unlock()
	}
	return nil
}

// AddToxic decodes a Toxiproxy toxic (plus relia's lease_ttl) from body and
// adds it to a proxy under a lease.
func (s *Server) AddToxic(proxy string, body io.Reader) (Toxic, error) {
	p, err := s.lookup(proxy)
	if err != nil {
		return Toxic{}, err
	}
	spec, err := decodeToxic(body)
	if err != nil {
		return Toxic{}, err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if (spec.typ == "http") != (p.mode == "http") {
		return Toxic{}, ErrInvalidToxicType.detail("%s toxics do not apply to a proxy in %s mode", spec.typ, p.mode)
	}
	if p.find(spec.name) >= 0 {
		return Toxic{}, ErrToxicAlreadyExists.detail("%s on proxy %s", quoteName(spec.name), quoteName(p.name))
	}
	if !spec.ttlMarked {
		spec.ttl = s.defaultTTL
	}
	e := s.newEntry(p, spec, s.clock.Now())
	p.toxics = append(p.toxics, e)
	p.applyLocked(spec.dir)
	s.audit.Info("fault started", "proxy", p.name, "fault", spec.name, "type", spec.typ,
		"stream", spec.dir.String(), "toxicity", spec.toxicity, "ttl", leaseString(e.ttl), "seed", s.seed)
	return e.info(), nil
}

// leaseString is a lease for the audit log: its TTL, or "none".
func leaseString(ttl time.Duration) string {
	if ttl == 0 {
		return NoLease
	}
	return ttl.String()
}

func (s *Server) newEntry(p *proxyEntry, spec *toxicSpec, started time.Time) *toxicEntry {
	e := &toxicEntry{spec: spec, key: streamKey(s.seed, p.name, spec.name), ttl: spec.ttl, started: started}
	s.arm(p, e)
	return e
}

// arm (re)starts e's lease timer, if it has a lease. The caller holds
// p.mu.
func (s *Server) arm(p *proxyEntry, e *toxicEntry) {
	e.stopTimer()
	if e.ttl == 0 {
		e.expiresAt = time.Time{}
		return
	}
	e.expiresAt = s.clock.Now().Add(e.ttl)
	e.timer = s.clock.AfterFunc(e.ttl, func() { p.expire(e) })
}

// errToxicNotFound names the toxic and its proxy.
func errToxicNotFound(proxy, name string) error {
	return ErrToxicNotFound.detail("%s on proxy %s", quoteName(name), quoteName(proxy))
}

// UpdateToxic changes a toxic's attributes or toxicity, as Toxiproxy's
// POST /proxies/{p}/toxics/{t} does; it also renews the lease (lease_ttl
// gives a new one, "none" takes it away).
func (s *Server) UpdateToxic(proxy, name string, body io.Reader) (Toxic, error) {
	p, err := s.lookup(proxy)
	if err != nil {
		return Toxic{}, err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	i := p.find(name)
	if i < 0 {
		return Toxic{}, errToxicNotFound(proxy, name)
	}
	old := p.toxics[i]
	spec, err := decodeUpdate(old.spec, body)
	if err != nil {
		return Toxic{}, err
	}
	if !spec.ttlMarked {
		spec.ttl = old.ttl
	}
	old.stopTimer()
	e := s.newEntry(p, spec, old.started)
	p.toxics[i] = e
	p.applyLocked(spec.dir)
	s.audit.Info("fault updated", "proxy", p.name, "fault", name, "toxicity", spec.toxicity, "ttl", leaseString(e.ttl))
	return e.info(), nil
}

// ErrNoLease answers a renewal of a toxic that has no lease and was given
// none.
var ErrNoLease = &APIError{"toxic has no lease", http.StatusConflict}

// RenewToxic extends a toxic's lease by ttl from now (0: by its own TTL).
// A toxic without a lease gets one when ttl is given.
func (s *Server) RenewToxic(proxy, name string, ttl time.Duration) (Toxic, error) {
	if ttl < 0 || ttl > MaxLeaseTTL {
		return Toxic{}, ErrBadRequestBody.detail("lease_ttl must be within (0, %v], got %v", MaxLeaseTTL, ttl)
	}
	p, err := s.lookup(proxy)
	if err != nil {
		return Toxic{}, err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	i := p.find(name)
	if i < 0 {
		return Toxic{}, errToxicNotFound(proxy, name)
	}
	e := p.toxics[i]
	if ttl > 0 {
		e.ttl = ttl
	}
	if e.ttl == 0 {
		return Toxic{}, ErrNoLease.detail("%s on proxy %s stays until removed; renew with a lease_ttl to give it one", quoteName(name), quoteName(proxy))
	}
	s.arm(p, e)
	s.audit.Debug("fault renewed", "proxy", p.name, "fault", name, "expires_at", e.expiresAt)
	return e.info(), nil
}

// RemoveToxic ends a toxic.
func (s *Server) RemoveToxic(proxy, name string) error {
	p, err := s.lookup(proxy)
	if err != nil {
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	i := p.find(name)
	if i < 0 {
		return errToxicNotFound(proxy, name)
	}
	p.endLocked(i, EndRemoved)
	return nil
}

// Toxics returns a proxy's toxics, upstream ones first, each in the order
// added (Toxiproxy's order).
func (s *Server) Toxics(proxy string) ([]Toxic, error) {
	p, err := s.lookup(proxy)
	if err != nil {
		return nil, err
	}
	return p.info().Toxics, nil
}

// Toxic returns one toxic.
func (s *Server) Toxic(proxy, name string) (Toxic, error) {
	p, err := s.lookup(proxy)
	if err != nil {
		return Toxic{}, err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	i := p.find(name)
	if i < 0 {
		return Toxic{}, errToxicNotFound(proxy, name)
	}
	return p.toxics[i].info(), nil
}

func (p *proxyEntry) find(name string) int {
	return slices.IndexFunc(p.toxics, func(e *toxicEntry) bool { return e.spec.name == name })
}

func (p *proxyEntry) info() ProxyInfo {
	p.mu.Lock()
	defer p.mu.Unlock()
	in := ProxyInfo{Name: p.name, Listen: p.listen, Upstream: p.upstream, Enabled: p.enabled, Toxics: []Toxic{}, Mode: p.mode}
	for _, dir := range []Direction{Upstream, Downstream} {
		for _, e := range p.toxics {
			if e.spec.dir == dir {
				in.Toxics = append(in.Toxics, e.info())
			}
		}
	}
	return in
}

// expire ends e when its lease runs out, unless it was renewed, replaced
// or removed meanwhile.
func (p *proxyEntry) expire(e *toxicEntry) {
	p.mu.Lock()
	defer p.mu.Unlock()
	i := slices.Index(p.toxics, e)
	if i < 0 || e.ttl == 0 || p.srv.clock.Now().Before(e.expiresAt) {
		return
	}
	p.endLocked(i, EndExpired)
}

// endLocked removes toxic i and records why. The caller holds p.mu.
func (p *proxyEntry) endLocked(i int, reason string) {
	e := p.toxics[i]
	e.stopTimer()
	p.toxics = slices.Delete(p.toxics, i, i+1)
	p.applyLocked(e.spec.dir)
	p.srv.audit.Info("fault ended", "proxy", p.name, "fault", e.spec.name, "type", e.spec.typ,
		"reason", reason, "active", p.srv.clock.Since(e.started).String())
}

func (p *proxyEntry) endAllLocked(reason string) {
	for len(p.toxics) > 0 {
		p.endLocked(len(p.toxics)-1, reason)
	}
}

// chainLocked returns the toxics of dir in order. The caller holds p.mu.
func (p *proxyEntry) chainLocked(dir Direction) []*toxicEntry {
	var out []*toxicEntry
	for _, e := range p.toxics {
		if e.spec.dir == dir {
			out = append(out, e)
		}
	}
	return out
}

// applyLocked pushes the chain of dir to every open connection.
func (p *proxyEntry) applyLocked(dir Direction) {
	if p.filter != nil {
		// In HTTP mode every toxic is a rule, whatever its stream, and
		// its toxicity is the share of matching requests it faults.
		rules := make([]HTTPRule, 0, len(p.toxics))
		for _, e := range p.toxics {
			rules = append(rules, HTTPRule{Name: e.spec.name, Probability: e.spec.toxicity, Fault: e.spec.impl.(*HTTPToxic).HTTPFault})
		}
		if err := p.filter.SetRules(rules); err != nil {
			p.srv.audit.Error("applying http faults", "proxy", p.name, "err", err)
		}
		return
	}
	chain := p.chainLocked(dir)
	for l := range p.links {
		l.setChain(dir, chain)
	}
}

// start listens and starts the accept loop. The caller holds p.mu.
func (p *proxyEntry) start() error {
	if p.enabled {
		return nil
	}
	ln, err := net.Listen("tcp", p.listen)
	if errors.Is(err, syscall.EADDRINUSE) {
		return ErrListenInUse.detail("%s (proxy %s)", p.listen, p.name)
	}
	var dnsErr *net.DNSError
	var addrErr *net.AddrError
	if errors.As(err, &dnsErr) || errors.As(err, &addrErr) {
		return ErrBadRequestBody.detail("listen %q: %v", p.listen, err)
	}
	if err != nil {
		return fmt.Errorf("starting proxy %s: %w", p.name, err)
	}
	p.ln, p.enabled = ln, true
	// Like Toxiproxy, show the address actually bound (port 0 resolved).
	p.listen = ln.Addr().String()
	if p.mode == "http" {
		p.httpSrv = p.newHTTPServer()
		go p.httpSrv.Serve(ln)
		return nil
	}
	p.accepted.Add(1)
	go p.acceptLoop(ln)
	return nil
}

// stop closes the listener and every connection. The caller holds p.mu.
func (p *proxyEntry) stop() {
	if !p.enabled {
		return
	}
	p.enabled = false
	if p.httpSrv != nil {
		p.httpSrv.Close()
		p.httpTransport.CloseIdleConnections()
		p.httpSrv = nil
	}
	p.ln.Close()
	for l := range p.links {
		l.close()
	}
}

// acceptLoop accepts until ln closes; each connection gets its sequence
// number here, in accept order, which keys its random decisions.
func (p *proxyEntry) acceptLoop(ln net.Listener) {
	defer p.accepted.Done()
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		if !p.enabled || p.ln != ln {
			p.mu.Unlock()
			c.Close()
			continue
		}
		l := newLink(p, p.seq, c)
		p.seq++
		p.links[l] = struct{}{}
		for _, dir := range []Direction{Upstream, Downstream} {
			l.setChain(dir, p.chainLocked(dir))
		}
		upstream := p.upstream
		p.mu.Unlock()
		go p.serve(l, upstream)
	}
}

// serve dials the upstream and proxies l until it ends, then forgets it.
func (p *proxyEntry) serve(l *link, upstream string) {
	defer func() {
		l.close()
		p.mu.Lock()
		delete(p.links, l)
		p.mu.Unlock()
		l.detachAll()
	}()
	if l.refusing() {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		select {
		case <-l.done:
			cancel()
		case <-ctx.Done():
		}
	}()
	up, err := p.srv.dialer.DialContext(ctx, "tcp", upstream)
	cancel()
	if err != nil {
		p.srv.audit.Debug("dialing upstream", "proxy", p.name, "upstream", upstream, "err", err)
		return
	}
	if !l.setUpstream(up) {
		return
	}
	l.run()
}
