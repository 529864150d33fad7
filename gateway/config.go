package gateway

import (
	"cmp"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/relia-dev/relia/ai"
	"github.com/relia-dev/relia/apimgmt"
	"github.com/relia-dev/relia/internal/config"
)

// Kind is the kind: of gateway documents.
const Kind = "Gateway"

// DefaultName names a gateway whose metadata has no name.
const DefaultName = "edge"

// Defaults of the server settings, used where a field is left zero.
const (
	DefaultReadHeaderTimeout = 10 * time.Second
	DefaultIdleTimeout       = 90 * time.Second
	DefaultWriteTimeout      = 60 * time.Second
	DefaultMaxHeaderBytes    = 16 << 10
	DefaultMaxBodyBytes      = 10 << 20
	DefaultDrainTimeout      = 15 * time.Second
	DefaultAdminAddress      = "127.0.0.1:9901"
)

// Config is the body of a `kind: Gateway` document. Every field's comment
// is user documentation (docs/gateway.md and docs/schema/gateway.json are
// generated from the same struct).
type Config struct {
	// Metadata names the gateway.
	Metadata Metadata `yaml:"metadata"`
	// Spec is what the gateway does.
	Spec Spec `yaml:"spec" config:"required"`

	// doc is the document the config was read from, so that validation
	// errors point into it.
	doc config.Document
	// apis are the kind: API documents of the config's file.
	apis []*apimgmt.API
	// ai is the AI gateway the ai routes name (ai_config.go).
	ai *ai.Bundle
}

// Metadata names a gateway in logs and metrics.
type Metadata struct {
	// Name of the gateway, "edge" when left out.
	Name string `yaml:"name"`
}

// Spec is a gateway's listeners, routes and upstream pools.
type Spec struct {
	// Listeners accept client traffic; at least one.
	Listeners []Listener `yaml:"listeners" config:"required"`
	// Admin is the admin API listener (config, routes, health, breakers,
	// reload, /metrics, /healthz, /readyz).
	Admin Admin `yaml:"admin"`
	// Server holds the defenses every listener applies.
	Server Server `yaml:"server"`
	// TrustedProxies are the addresses (CIDRs or single IPs) whose
	// X-Forwarded-For and X-Forwarded-Proto are believed; from anyone
	// else they are replaced.
	TrustedProxies []string `yaml:"trustedProxies"`
	// AccessLog configures the JSON access log.
	AccessLog AccessLog `yaml:"accessLog"`
	// Metrics configures the gateway's Prometheus metrics.
	Metrics Metrics `yaml:"metrics"`
	// Calls keeps every call the gateway answers in a call store, for
	// relia calls and relia analyze.
	Calls Calls `yaml:"calls"`
	// Auth configures who may call the gateway: API keys, JWTs or both.
	// Once it is set, every route requires credentials unless it says
	// auth: optional or auth: none.
	Auth *Auth `yaml:"auth"`
	// Upstreams are the pools of targets routes send requests to;
	// required unless every route is an ai route.
	Upstreams []Upstream `yaml:"upstreams"`
	// Routes are tried in order; the first that matches a request takes it.
	Routes []Route `yaml:"routes" config:"required"`
}

// Listener is an address the gateway accepts client traffic on.
type Listener struct {
	// Name identifies the listener in logs; defaults to its address.
	Name string `yaml:"name"`
	// Address is host:port to listen on, "127.0.0.1:8080" or ":8080".
	Address string `yaml:"address" config:"required"`
	// TLS, when set, serves HTTPS with HTTP/2 (ALPN h2) and HTTP/1.1.
	TLS *TLS `yaml:"tls"`
	// H2C serves HTTP/2 without TLS (prior knowledge or Upgrade: h2c)
	// besides HTTP/1.1, on net/http rather than the fast HTTP/1.1 engine.
	H2C bool `yaml:"h2c"`
	// Engine serves the listener's HTTP/1.1 connections: "goroutines",
	// a goroutine per connection on Go's network poller; "eventloop", one
	// epoll loop per processor that runs the common proxied request whole
	// and hands the rest to goroutines (Linux only; not with tls or h2c);
	// or "auto" (the default), the event loop where it may run and
	// goroutines elsewhere. docs/gateway.md, "Engines".
	Engine string `yaml:"engine"`
}

// The listener engines (Listener.Engine).
const (
	EngineAuto       = "auto"
	EngineGoroutines = "goroutines"
	EngineEventLoop  = "eventloop"
)

// onLoops reports whether the listener runs on event loops: it asks for
// them, or leaves the choice (auto) where they may serve it.
func (l Listener) onLoops() bool {
	switch cmp.Or(l.Engine, defaultEngine) {
	case EngineEventLoop:
		return l.TLS == nil && !l.H2C
	case EngineAuto:
		return eventLoopSupported && l.TLS == nil && !l.H2C
	}
	return false
}

// defaultEngine serves listeners that name no engine; the package's tests
// set it from RELIA_TEST_ENGINE to run on either engine.
var defaultEngine = EngineAuto

// TLS names a certificate and its key, PEM files.
type TLS struct {
	// CertFile is the certificate chain, PEM.
	CertFile string `yaml:"certFile" config:"required"`
	// KeyFile is the private key, PEM.
	KeyFile string `yaml:"keyFile" config:"required"`
}

// Admin configures the admin API listener.
type Admin struct {
	// Address is host:port of the admin API; default 127.0.0.1:9901.
	// "off" disables it.
	Address string `yaml:"address"`
	// TokenFile holds the bearer token the admin API requires. Required
	// when Address is not a loopback address: an open admin API on a
	// public interface would let anyone reload the config.
	TokenFile string `yaml:"tokenFile"`
}

// Server holds the limits and timeouts that defend every listener against
// slow or oversized clients.
type Server struct {
	// ReadHeaderTimeout bounds how long a client may take to send the
	// request headers (slowloris); default 10s.
	ReadHeaderTimeout time.Duration `yaml:"readHeaderTimeout"`
	// IdleTimeout closes keep-alive connections idle this long; default 90s.
	IdleTimeout time.Duration `yaml:"idleTimeout"`
	// WriteTimeout bounds writing one response; default 60s.
	WriteTimeout time.Duration `yaml:"writeTimeout"`
	// MaxHeaderBytes bounds the request line and headers; default 16KiB.
	// Larger requests get 431.
	MaxHeaderBytes config.Size `yaml:"maxHeaderBytes"`
	// MaxBodyBytes bounds a request body where a route sets no limit of
	// its own; default 10MiB. Larger requests get 413.
	MaxBodyBytes config.Size `yaml:"maxBodyBytes"`
	// DrainTimeout is how long shutdown waits for in-flight requests;
	// default 15s.
	DrainTimeout time.Duration `yaml:"drainTimeout"`
	// EscapedSlashes is what happens to %2F and %5C in request paths:
	// decode (default), keep (encoded, inside their segment), or reject
	// (400). Routes match, and targets receive, the resulting path.
	EscapedSlashes EscapedSlashes `yaml:"escapedSlashes"`
}

// AccessLog configures the JSON access log. Authorization, cookies and
// API keys are never written.
type AccessLog struct {
	// Path is the file to append to; "-" or empty means stderr.
	Path string `yaml:"path"`
	// Disabled turns the access log off.
	Disabled bool `yaml:"disabled"`
}

// LoadFile reads and validates the Gateway document in the file at path.
func LoadFile(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading gateway config: %w", err)
	}
	return Parse(path, data)
}

// Parse reads and validates the Gateway document in data, which must hold
// exactly one; documents of other kinds are skipped. name is used in errors.
func Parse(name string, data []byte) (*Config, error) {
	docs, err := config.Parse(name, data)
	if err != nil {
		return nil, err
	}
	var found *Config
	for _, d := range docs {
		if d.Kind != Kind {
			continue
		}
		if found != nil {
			return nil, d.Errorf("kind", "a second Gateway document; a file holds one")
		}
		c := &Config{doc: d}
		if err := d.Decode(c); err != nil {
			return nil, err
		}
		if err := c.validate(); err != nil {
			return nil, err
		}
		found = c
	}
	if found == nil {
		return nil, fmt.Errorf("%s: no document of kind %s", name, Kind)
	}
	// The APIs the gateway serves are kind: API documents of the same
	// file.
	if found.apis, err = apimgmt.Parse(name, data); err != nil {
		return nil, err
	}
	if err := checkAPIRoutes(found); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if err := found.parseAI(name, data); err != nil {
		return nil, err
	}
	return found, nil
}

// errorf reports a problem at the field at path, positioned in the source
// document when there is one.
func (c *Config) errorf(path, format string, args ...any) error {
	if c.doc.Node == nil {
		return fmt.Errorf("%s: %s", path, fmt.Sprintf(format, args...))
	}
	return c.doc.Errorf(path, format, args...)
}

// Validate checks what the strict decoder cannot: references between
// routes and upstreams, regexes, addresses, impossible combinations. Configs
// built in Go should be validated before New; New does it too.
func (c *Config) Validate() error { return c.validate() }

func (c *Config) validate() error {
	p := &problems{c: c}
	c.Spec.check(p)
	c.validateGRPC(p.add)
	c.validateCapture(p.add)
	return errors.Join(p.errs...)
}

// problems collects what validation finds: each problem at the path of
// the field in error, positioned in the source document when there is
// one. Each config type checks itself into it (a method check(p, at)
// where at is the type's own path); the spec checks what lies between
// them.
type problems struct {
	c    *Config
	errs []error
}

// add records a problem with the field at path.
func (p *problems) add(path, format string, args ...any) {
	p.errs = append(p.errs, p.c.errorf(path, format, args...))
}

// check validates the spec: each part checks itself, and the spec checks
// what refers across parts (routes to upstreams and spec.auth, the admin
// API's port to the listeners') and that names are unique.
func (s *Spec) check(p *problems) {
	if len(s.Listeners) == 0 {
		p.add("spec.listeners", "at least one listener is required")
	}
	for i, l := range s.Listeners {
		l.check(p, fmt.Sprintf("spec.listeners[%d]", i), s.Listeners[:i])
	}
	s.Admin.check(p, "spec.admin", s.Listeners)
	s.Server.check(p, "spec.server")
	s.Metrics.check(p, "spec.metrics")
	for i, tp := range s.TrustedProxies {
		if _, err := parsePrefix(tp); err != nil {
			p.add(fmt.Sprintf("spec.trustedProxies[%d]", i), "%v", err)
		}
	}
	if s.Auth != nil {
		s.Auth.check(p, "spec.auth")
	}
	if len(s.Upstreams) == 0 && !s.onlyAIRoutes() {
		p.add("spec.upstreams", "missing (required)")
	}
	refs := routeRefs{upstreams: map[string]bool{}, auth: s.Auth != nil}
	for i, u := range s.Upstreams {
		at := fmt.Sprintf("spec.upstreams[%d]", i)
		if refs.upstreams[u.Name] {
			p.add(at+".name", "duplicate upstream %q", u.Name)
		}
		refs.upstreams[u.Name] = true
		u.check(p, at)
	}
	names := map[string]bool{}
	for i, r := range s.Routes {
		at := fmt.Sprintf("spec.routes[%d]", i)
		if names[r.Name] {
			p.add(at+".name", "duplicate route %q", r.Name)
		}
		names[r.Name] = true
		r.check(p, at, refs)
	}
}

// check validates the listener at path at against those before it.
func (l Listener) check(p *problems, at string, before []Listener) {
	host, port, err := net.SplitHostPort(l.Address)
	if err != nil {
		p.add(at+".address", "%q is not host:port", l.Address)
		return
	}
	for i, o := range before {
		oh, op, err := net.SplitHostPort(o.Address)
		// Port 0 asks for a free port each time: never a clash.
		if err == nil && op == port && port != "0" && (oh == host || oh == "" || host == "" || oh == "0.0.0.0" || host == "0.0.0.0") {
			p.add(at+".address", "%s overlaps listener %d (%s)", l.Address, i, o.Address)
		}
	}
	if l.TLS != nil && l.H2C {
		p.add(at+".h2c", "h2c is HTTP/2 without TLS; a TLS listener already serves HTTP/2")
	}
	switch l.Engine {
	case "", EngineAuto, EngineGoroutines:
	case EngineEventLoop:
		switch {
		case !eventLoopSupported:
			p.add(at+".engine", "the eventloop engine runs on Linux only (not linux/386); use goroutines")
		case l.TLS != nil:
			p.add(at+".engine", "the eventloop engine serves plain HTTP/1.1 listeners; a tls listener runs on goroutines")
		case l.H2C:
			p.add(at+".engine", "the eventloop engine serves plain HTTP/1.1 listeners; an h2c listener runs on goroutines")
		}
	default:
		p.add(at+".engine", "%q is not an engine: auto, goroutines or eventloop", l.Engine)
	}
}

// check validates the admin API's address, which may share no port with
// the listeners: a port shared with a listener would make one of them
// fail to start.
func (a Admin) check(p *problems, at string, listeners []Listener) {
	addr := a.withDefaults().Address
	if addr == "off" {
		return
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		p.add(at+".address", "%q is not host:port", addr)
		return
	}
	if !isLoopbackHost(host) && a.TokenFile == "" {
		p.add(at+".tokenFile", "the admin API listens on a non-loopback address %s and needs a bearer token", addr)
	}
	what := ""
	if a.Address == "" {
		what = " (" + addr + ", " + defaultAdminNote + ")"
	}
	for _, l := range listeners {
		if _, lp, _ := net.SplitHostPort(l.Address); lp == port && port != "0" {
			p.add(at+".address", "the admin API%s may not share port %s with listener %s", what, port, l.Address)
		}
	}
}

func (a Admin) withDefaults() Admin {
	a.Address = cmp.Or(a.Address, DefaultAdminAddress)
	return a
}

func (s Server) check(p *problems, at string) {
	switch s.EscapedSlashes {
	case "", EscapedSlashesDecode, EscapedSlashesKeep, EscapedSlashesReject:
	default:
		p.add(at+".escapedSlashes", "unknown choice %q (decode, keep, reject)", s.EscapedSlashes)
	}
}

func (s Server) withDefaults() Server {
	s.ReadHeaderTimeout = cmp.Or(s.ReadHeaderTimeout, DefaultReadHeaderTimeout)
	s.IdleTimeout = cmp.Or(s.IdleTimeout, DefaultIdleTimeout)
	s.WriteTimeout = cmp.Or(s.WriteTimeout, DefaultWriteTimeout)
	s.MaxHeaderBytes = cmp.Or(s.MaxHeaderBytes, DefaultMaxHeaderBytes)
	s.MaxBodyBytes = cmp.Or(s.MaxBodyBytes, DefaultMaxBodyBytes)
	s.DrainTimeout = cmp.Or(s.DrainTimeout, DefaultDrainTimeout)
	s.EscapedSlashes = cmp.Or(s.EscapedSlashes, EscapedSlashesDecode)
	return s
}

// Effective returns a copy of the config with every default applied: the
// values the gateway runs with, which it compiles and which the admin
// API's /config shows. Each type writes out its own defaults
// (withDefaults); the copy validates, reads back as itself, and changes
// nothing c holds.
func (c *Config) Effective() *Config {
	return &Config{Metadata: c.Metadata.withDefaults(), Spec: c.Spec.withDefaults(), doc: c.doc}
}

func (m Metadata) withDefaults() Metadata {
	m.Name = cmp.Or(m.Name, DefaultName)
	return m
}

func (s Spec) withDefaults() Spec {
	s.Listeners = mapSlice(s.Listeners, Listener.withDefaults)
	s.Admin = s.Admin.withDefaults()
	s.Server = s.Server.withDefaults()
	s.TrustedProxies = slices.Clone(s.TrustedProxies)
	s.AccessLog = s.AccessLog.withDefaults()
	s.Metrics = s.Metrics.withDefaults()
	s.Auth = mapPtr(s.Auth, Auth.withDefaults)
	s.Upstreams = mapSlice(s.Upstreams, Upstream.withDefaults)
	s.Routes = mapSlice(s.Routes, func(r Route) Route { return r.withDefaults(s.Server, s.Auth != nil) })
	return s
}

// withDefaults names the listener by its address when it has no name.
func (l Listener) withDefaults() Listener {
	l.Name = cmp.Or(l.Name, l.Address)
	return l
}

func (a AccessLog) withDefaults() AccessLog {
	if !a.Disabled && a.Path == "" {
		a.Path = "-"
	}
	return a
}

// mapSlice returns f of each element of in, in a new slice (nil for nil),
// so that a changed copy (defaults written out, credentials redacted)
// never changes the config it comes from.
func mapSlice[T any](in []T, f func(T) T) []T {
	if in == nil {
		return nil
	}
	out := make([]T, len(in))
	for i, v := range in {
		out[i] = f(v)
	}
	return out
}

// mapPtr returns a pointer to f of *v, or nil for nil.
func mapPtr[T any](v *T, f func(T) T) *T {
	if v == nil {
		return nil
	}
	x := f(*v)
	return &x
}

func isLoopbackHost(host string) bool {
	if host == "localhost" {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}

// parsePrefix reads a CIDR or a single address.
func parsePrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return p, fmt.Errorf("parsing trusted proxy: %w", err)
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("parsing trusted proxy: %w", err)
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// JSONSchema returns the JSON Schema of Gateway documents, for editors
// (published as docs/schema/gateway.json).
func JSONSchema() ([]byte, error) { return config.Schema(Kind, Config{}) }
