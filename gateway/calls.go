package gateway

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"sync"
	"time"

	"github.com/relia-dev/relia/apimgmt"
	"github.com/relia-dev/relia/callstore"
	"github.com/relia-dev/relia/internal/config"
	"github.com/relia-dev/relia/internal/h1"
	"github.com/relia-dev/relia/outcome"
)

// Calls configures the call store: every answer the gateway gives kept
// as a call record, queryable with `relia calls` and on the admin API,
// analysed by `relia analyze`.
type Calls struct {
	// Store is where calls are kept: a SQLite file ("calls.db",
	// created when missing) or a postgres:// URL shared by several
	// gateways. Empty keeps no calls.
	Store string `yaml:"store"`
	// Spool is the file calls wait in while the store is slow or down,
	// replayed in order when it is back; default the SQLite file's name
	// plus ".spool", or relia-calls.spool for PostgreSQL.
	Spool string `yaml:"spool"`
	// SpoolMaxSize caps the spool; past it calls are dropped, each one
	// counted in relia_calls_dropped_total. Default 1GiB.
	SpoolMaxSize config.Size `yaml:"spoolMaxSize"`
	// BatchSize is the most calls written to the store at once; default
	// 2000.
	BatchSize int `yaml:"batchSize"`
	// FlushInterval is the longest a call waits before its batch is
	// written; default 200ms.
	FlushInterval time.Duration `yaml:"flushInterval"`
	// Retention says how long raw calls and their rollups are kept.
	Retention callstore.Retention `yaml:"retention"`
	// OTLP also exports every call as an OpenTelemetry log record.
	OTLP *CallsOTLP `yaml:"otlp"`
}

// CallsOTLP exports calls over OTLP/HTTP.
type CallsOTLP struct {
	// Endpoint is the collector's logs URL
	// ("http://127.0.0.1:4318/v1/logs"); empty means the
	// OTEL_EXPORTER_OTLP_* variables.
	Endpoint string `yaml:"endpoint"`
}

// calls is what a gateway keeps its calls and API management with.
type calls struct {
	rec     callstore.Recorder
	store   *callstore.DB
	writers []*callstore.Writer
	otlp    *callstore.OTLPSink
	apis    *apimgmt.Manager
	stop    context.CancelFunc
	done    chan struct{}
	name    string
	admin   []adminMount
}

// adminMount is a handler the admin API serves under some paths.
type adminMount struct {
	patterns []string
	h        http.Handler
}

// openCalls sets up the call store and API management from cfg and the
// options. It runs once, in New; both need a restart to change.
func (g *Gateway) openCalls(cfg *Config) error {
	c := &calls{name: cfg.Metadata.Name}
	if c.name == "" {
		c.name = "edge"
	}
	var err error
	ctx, cancel := context.WithCancel(context.Background())
	c.stop, c.done = cancel, make(chan struct{})
	var bg []func()
	cs := cfg.Spec.Calls
	switch {
	case g.opts.Calls != nil:
		c.rec = g.opts.Calls
	case cs.Store != "":
		if c.store, err = callstore.Open(ctx, cs.Store, callstore.Options{Clock: g.clock}); err != nil {
			cancel()
			return err
		}
		spool := cs.Spool
		if spool == "" {
			spool = "relia-calls.spool"
			if !strings.Contains(cs.Store, "://") {
				spool = strings.TrimPrefix(cs.Store, "sqlite:") + ".spool"
			}
		}
		w, err := callstore.NewWriter(c.store, callstore.WriterOptions{
			Name: "store", Clock: g.clock, BatchSize: cs.BatchSize, FlushInterval: cs.FlushInterval,
			SpoolPath: spool, SpoolMaxBytes: int64(cs.SpoolMaxSize), Logger: g.log, Registerer: g.reg,
		})
		if err != nil {
			c.store.Close()
			cancel()
			return err
		}
		c.writers = append(c.writers, w)
		tee := callstore.Tee{w}
		if cs.OTLP != nil {
			if c.otlp, err = callstore.NewOTLPSink(ctx, callstore.OTLPOptions{Endpoint: cs.OTLP.Endpoint, Clock: g.clock}); err != nil {
				c.close(context.Background())
				return err
			}
			ow, err := callstore.NewWriter(c.otlp, callstore.WriterOptions{Name: "otlp", Clock: g.clock, SpoolPath: spool + ".otlp", Logger: g.log, Registerer: g.reg})
			if err != nil {
				c.close(context.Background())
				return err
			}
			c.writers = append(c.writers, ow)
			tee = append(tee, ow)
		}
		c.rec = tee
		store, ret := c.store, cs.Retention
		bg = append(bg, func() { callstore.RunMaintenance(ctx, store, ret, time.Minute, g.clock, g.log) })
		c.admin = append(c.admin, adminMount{[]string{"GET /calls", "GET /calls/", "GET /audit"}, callstore.Handler(c.store)})
	}
	switch {
	case g.opts.APIs != nil:
		c.apis = g.opts.APIs
	case len(cfg.apis) > 0:
		var store apimgmt.Store = &apimgmt.MemoryStore{}
		if c.store != nil {
			store = c.store
		} else {
			g.log.Warn("APIs are configured without a call store: subscriptions are kept in memory and lost at restart")
		}
		if c.apis, err = apimgmt.NewManager(ctx, store, cfg.apis, apimgmt.Options{Clock: g.clock, Logger: g.log}); err != nil {
			c.close(context.Background())
			return err
		}
		m := c.apis
		bg = append(bg, func() { m.Run(ctx, 5*time.Second) })
	}
	if c.apis != nil {
		admin := "http://" + cfg.Spec.Admin.Address
		c.admin = append(c.admin, adminMount{[]string{"GET /apis", "GET /catalog", "GET /portal", "GET /subscriptions", "POST /subscriptions", "POST /subscriptions/"}, c.apis.Handler(admin)})
	}
	go func() {
		defer close(c.done)
		done := make(chan struct{}, len(bg))
		for _, f := range bg {
			go func() { f(); done <- struct{}{} }() // each ends with ctx
		}
		for range bg {
			<-done
		}
	}()
	if c.rec == nil && c.apis == nil {
		cancel()
		<-c.done
		return nil
	}
	g.calls = c
	return nil
}

// close stops the background work and flushes the writers until ctx
// ends (what is left stays in the spool for the next start).
func (c *calls) close(ctx context.Context) error {
	if c == nil {
		return nil
	}
	c.stop()
	if c.done != nil {
		<-c.done
	}
	var errs []error
	for _, w := range c.writers {
		if err := w.Close(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	if c.otlp != nil {
		errs = append(errs, c.otlp.Close(ctx))
	}
	if c.store != nil {
		errs = append(errs, c.store.Close())
	}
	return errors.Join(errs...)
}

// checkAPI applies the route's API lifecycle and the tenant's
// subscription; on refusal it answers and reports false.
func (g *Gateway) checkAPI(x *exchange) bool {
	d := g.calls.apis.Check(x.route.name, x.tenant)
	x.api, x.apiVersion, x.apiHeaders = d.API, d.Version, d.Headers
	if d.Allow {
		return true
	}
	x.message = d.Message
	g.reject(x, d.Status, "api", d.Reason, 0)
	return false
}

// addAPIHeaders puts a deprecated API's Deprecation, Sunset and Link
// headers on the response.
func (x *exchange) addAPIHeaders() {
	for _, h := range x.apiHeaders {
		x.resp.fields = append(x.resp.fields, h1.Header{Name: bs(h[0]), Value: bs(h[1])})
	}
}

// addStep notes one part of the call's story, when calls are kept.
func (g *Gateway) addStep(x *exchange, kind, target string, status int, outcomeName, reason string, lat time.Duration) {
	if g.calls == nil || g.calls.rec == nil {
		return
	}
	x.steps = append(x.steps, callstore.Step{Kind: kind, Target: target, Status: status, Outcome: outcomeName, Reason: reason, Latency: lat})
	if kind == callstore.StepAttempt || kind == callstore.StepHedge {
		x.upstreamLat += lat
	}
}

// callRecords hold the records recordCall fills. They are pooled rather
// than kept in each exchange: an exchange lives as long as its request (an
// AI stream's for minutes) and most gateways keep no calls, while the
// writer copies the record before Record returns.
var callRecords = sync.Pool{New: func() any { return new(callstore.Record) }}

// recordCall hands the finished call to the call store's writer, which
// copies it before returning: the strings point into the exchange's
// buffers.
func (g *Gateway) recordCall(x *exchange, lat time.Duration) {
	c := g.calls
	rec := callRecords.Get().(*callstore.Record)
	*rec = callstore.Record{
		Time: x.start, RequestID: s(x.rid), Gateway: c.name, Route: routeName(x), API: x.api, APIVersion: x.apiVersion,
		Tenant: x.tenant, KeyID: x.keyID, Method: methodName(x.req.method), Path: s(x.path), Status: x.status,
		Reason: x.reason, Latency: lat, Upstream: x.upstreamLat, Attempts: x.attempts,
		BytesIn: x.req.bodyRead, BytesOut: x.bytesOut, Steps: x.steps,
	}
	if x.traceID != ([16]byte{}) {
		rec.TraceID = s(x.traceIDHex())
	}
	if x.status == 0 {
		rec.Outcome = outcome.ClassReset.String()
	} else {
		rec.Outcome = outcome.ClassifyResponse(x.status, nil).String()
	}
	switch {
	case x.headSent: // a gRPC call, whose x.end is its stream's end
		rec.TTFB = x.headAfter
	case !x.end.IsZero():
		rec.TTFB = x.end.Sub(x.start)
	default:
		rec.TTFB = lat
	}
	if x.target != nil {
		rec.Target = x.target.addr
	}
	if x.route != nil {
		if p := x.route.cfg.Match.Path; p != nil {
			rec.PathTemplate = p.template()
		}
		if red := x.route.capture; red != nil {
			x.captureInto(rec, red)
		}
	}
	x.addAICall(rec)
	c.rec.Record(rec)
	*rec = callstore.Record{}
	callRecords.Put(rec)
}

// auditReload appends a reload that changed the routes, the upstreams,
// spec.auth or the trusted proxies to the audit log, naming what changed
// (what the APIs' lifecycles became, apimgmt appends itself).
func (g *Gateway) auditReload(old, next *state) {
	if g.calls == nil || g.calls.store == nil {
		return
	}
	o, n := old.eff.Spec, next.eff.Spec
	var changes []string
	changes = appendChanged(changes, "route", o.Routes, n.Routes, func(r Route) string { return r.Name })
	changes = appendChanged(changes, "upstream", o.Upstreams, n.Upstreams, func(u Upstream) string { return u.Name })
	if !reflect.DeepEqual(o.Auth, n.Auth) {
		changes = append(changes, "auth changed")
	}
	if !reflect.DeepEqual(o.TrustedProxies, n.TrustedProxies) {
		changes = append(changes, "trusted proxies changed")
	}
	if len(changes) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	e := callstore.AuditEntry{Time: g.clock.Now(), Actor: "gateway", Action: "config.reload",
		Detail: fmt.Sprintf("generation %d: %s", next.gen, strings.Join(changes, "; "))}
	if _, err := g.calls.store.AppendAudit(ctx, e); err != nil {
		g.log.Error("writing the config reload to the audit log failed", "error", err)
	}
}

// appendChanged appends to changes what of a named list was added,
// removed or changed between before and after ("route orders-v2 added").
func appendChanged[T any](changes []string, what string, before, after []T, name func(T) string) []string {
	was := map[string]T{}
	for _, b := range before {
		was[name(b)] = b
	}
	for _, a := range after {
		b, ok := was[name(a)]
		switch {
		case !ok:
			changes = append(changes, what+" "+name(a)+" added")
		case !reflect.DeepEqual(a, b):
			changes = append(changes, what+" "+name(a)+" changed")
		}
		delete(was, name(a))
	}
	for _, b := range before {
		if _, ok := was[name(b)]; ok {
			changes = append(changes, what+" "+name(b)+" removed")
		}
	}
	return changes
}

// checkAPIRoutes reports an API that covers a route the gateway does not
// have.
func checkAPIRoutes(cfg *Config) error {
	have := map[string]bool{}
	for _, r := range cfg.Spec.Routes {
		have[r.Name] = true
	}
	for _, a := range cfg.apis {
		for _, r := range a.Spec.Routes {
			if !have[r] {
				return fmt.Errorf("API %s covers route %q, which the gateway config does not have", a.Name(), r)
			}
		}
	}
	return nil
}

// template is the path pattern a route matches, as configured.
func (p *PathMatch) template() string {
	switch {
	case p.Exact != "":
		return p.Exact
	case p.Prefix != "":
		return p.Prefix
	}
	return p.Regex
}
