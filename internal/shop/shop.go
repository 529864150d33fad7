package shop

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/relia-dev/relia/clock"
	"github.com/relia-dev/relia/fault"
	"github.com/relia-dev/relia/outcome"
)

// The services, as named in Endpoints and Options.Recorders.
const (
	ServiceCatalog         = "catalog"
	ServiceUsers           = "users"
	ServicePayments        = "payments"
	ServiceProcessor       = "processor"
	ServiceRecommendations = "recommendations"
)

// Services lists the service names in the order they start.
var Services = []string{ServiceCatalog, ServiceUsers, ServiceProcessor, ServicePayments, ServiceRecommendations}

// DefaultCatalogReplicas is the number of catalog replicas when
// Options.CatalogReplicas is zero.
const DefaultCatalogReplicas = 3

// maxCatalogReplicas bounds the replicas one shop starts.
const maxCatalogReplicas = 64

// Options configure a Shop. The zero value is a valid shop: three catalog
// replicas, no artificial latency, the processor's default error rate, no
// in-process resilience, seed 0.
type Options struct {
	// Seed seeds the data (products, users), the latency draws and every
	// fault decision: the same seed and the same traffic give the same
	// answers.
	Seed uint64
	// CatalogReplicas is how many catalog replicas run, 1 to 64; zero
	// means DefaultCatalogReplicas.
	CatalogReplicas int
	// Latency turns on the services' own service times: seeded log-normal
	// draws with medians of 2-10 ms and a tail (1% take 8 times longer),
	// slept on Clock. Off, the services answer at once, for tests.
	Latency bool
	// Clock is what the services sleep on and time requests with; nil
	// means the real clock.
	Clock clock.Clock
	// Resilient gives the recommendations service its own in-process
	// policies (a timeout and a retry per catalog call, the popular items
	// as resilience.Fallback) and makes GatewayConfig the resilient one.
	Resilient bool
	// ProcessorErrorRate is the share of charges the processor fails by
	// itself (500), in [0, 1]; zero means DefaultProcessorErrorRate.
	// NoProcessorErrors turns these errors off.
	ProcessorErrorRate float64
	// NoProcessorErrors makes the processor fail only by injected faults.
	NoProcessorErrors bool
	// Recorders, by service name (ServiceCatalog, ...), receive each
	// service's server-side outcomes, named after the route template
	// ("/products/{id}"). Catalog replicas share one. Health checks and
	// metric scrapes are not recorded. Unknown names are an error.
	Recorders map[string]*outcome.Recorder
}

func (o Options) validate() error {
	var errs []error
	if o.CatalogReplicas < 0 || o.CatalogReplicas > maxCatalogReplicas {
		errs = append(errs, fmt.Errorf("catalog replicas %d not in [1, %d]", o.CatalogReplicas, maxCatalogReplicas))
	}
	if math.IsNaN(o.ProcessorErrorRate) || o.ProcessorErrorRate < 0 || o.ProcessorErrorRate > 1 {
		errs = append(errs, fmt.Errorf("processor error rate %v not in [0, 1]", o.ProcessorErrorRate))
	}
	for name := range o.Recorders {
		if !slices.Contains(Services, name) {
			errs = append(errs, fmt.Errorf("recorder for unknown service %q (services: %v)", name, Services))
		}
	}
	return errors.Join(errs...)
}

// Shop is the running demo shop: every service listening on its own
// loopback port. Its methods are safe for concurrent use.
type Shop struct {
	opts      Options
	data      *catalogData
	services  map[string][]*Replica
	processor *Processor
	transport *http.Transport
	stopWatch func() bool

	closeOnce sync.Once
	closeErr  error
}

// Start starts every service and returns once all of them listen. When
// ctx ends, the shop closes as Close does; Close may be called either way.
func Start(ctx context.Context, o Options) (*Shop, error) {
	if err := o.validate(); err != nil {
		return nil, fmt.Errorf("starting the shop: %w", err)
	}
	if o.CatalogReplicas == 0 {
		o.CatalogReplicas = DefaultCatalogReplicas
	}
	errorRate := o.ProcessorErrorRate
	if errorRate == 0 {
		errorRate = DefaultProcessorErrorRate
	}
	if o.NoProcessorErrors {
		errorRate = 0
	}
	clk := clock.OrReal(o.Clock)
	pace := pacer{clock: clk, on: o.Latency}
	data, err := newCatalogData(o.Seed)
	if err != nil {
		return nil, fmt.Errorf("starting the shop: %w", err)
	}
	s := &Shop{
		opts: o, data: data, services: map[string][]*Replica{},
		// The services' calls to each other: loopback only, kept alive,
		// closed with the shop.
		transport: &http.Transport{MaxIdleConnsPerHost: 256, IdleConnTimeout: 90 * time.Second},
	}
	client := &http.Client{Transport: s.transport}
	tok := newTokens(o.Seed)
	// serve starts replica i of a service.
	serve := func(service string, i int, h http.Handler) (*Replica, error) {
		r := &Replica{service: service, index: i}
		r.srv = newServer(service, h, clk, o.Recorders[service], healthBody(service, i))
		s.services[service] = append(s.services[service], r)
		return r, r.srv.start()
	}
	fail := func(err error) (*Shop, error) {
		s.Close()
		return nil, fmt.Errorf("starting the shop: %w", err)
	}

	var catalog []string
	for i := range o.CatalogReplicas {
		r, err := serve(ServiceCatalog, i, catalogHandler(data, pace, o.Seed, i))
		if err != nil {
			return fail(err)
		}
		catalog = append(catalog, r.URL())
	}
	if _, err := serve(ServiceUsers, 0, usersHandler(o.Seed, tok, pace)); err != nil {
		return fail(err)
	}
	filter, err := fault.NewHTTPFilter(nil, fault.HTTPFilterOptions{Seed: streamKey(o.Seed, "processor/faults"), Clock: clk})
	if err != nil {
		return fail(err)
	}
	proc, err := serve(ServiceProcessor, 0, processorHandler(o.Seed, pace, errorRate, filter))
	s.processor = &Processor{srv: proc.srv, filter: filter}
	if err != nil {
		return fail(err)
	}
	pay, err := newPayments(o.Seed, tok, pace, client, s.processor.base)
	if err != nil {
		return fail(err)
	}
	if _, err := serve(ServicePayments, 0, pay.handler()); err != nil {
		return fail(err)
	}
	recs, err := newRecommender(o.Seed, data, pace, client, catalog, o.Resilient)
	if err != nil {
		return fail(err)
	}
	if _, err := serve(ServiceRecommendations, 0, recs.handler()); err != nil {
		return fail(err)
	}
	s.stopWatch = context.AfterFunc(ctx, func() { s.Close() })
	return s, nil
}

func healthBody(service string, replica int) func() []byte {
	b := fmt.Appendf(nil, `{"status":"ok","service":%q,"replica":%d}`, service, replica)
	return func() []byte { return b }
}

// Close stops every service (callers before the services they call), lets
// answers in progress finish and closes the connections between services.
// When it returns, no goroutine of the shop is left. It is idempotent.
func (s *Shop) Close() error {
	s.closeOnce.Do(func() {
		if s.stopWatch != nil {
			s.stopWatch()
		}
		var errs []error
		for _, name := range slices.Backward(Services) {
			for _, r := range s.services[name] {
				errs = append(errs, r.srv.close())
			}
		}
		s.transport.CloseIdleConnections()
		s.closeErr = errors.Join(errs...)
	})
	return s.closeErr
}

// Endpoints returns each service's base URLs ("http://127.0.0.1:port"),
// one per replica; they stay valid across kills and restarts.
func (s *Shop) Endpoints() map[string][]string {
	out := map[string][]string{}
	for name, rs := range s.services {
		for _, r := range rs {
			out[name] = append(out[name], r.URL())
		}
	}
	return out
}

// Replicas returns a service's replicas (ServiceCatalog has
// Options.CatalogReplicas, every other service one), so that process
// faults can kill any service; nil for an unknown service. Killing a
// service's only replica is an outage of it.
func (s *Shop) Replicas(service string) []*Replica {
	return slices.Clone(s.services[service])
}

// CatalogReplicas returns how many catalog replicas the shop runs.
func (s *Shop) CatalogReplicas() int { return len(s.services[ServiceCatalog]) }

// Catalog returns catalog replica i, 0-based; it panics when i is out of
// range, as indexing a slice does.
func (s *Shop) Catalog(i int) *Replica { return s.services[ServiceCatalog][i] }

// Processor returns the payment processor's fault switches.
func (s *Shop) Processor() *Processor { return s.processor }

// Popular returns the body of GET /popular: the best-rated products, the
// static answer that may stand in for recommendations.
func (s *Shop) Popular() []byte { return slices.Clone(s.data.popular) }

// Replica is one replica of a service, a process that can crash and
// restart.
type Replica struct {
	service string
	index   int
	srv     *server
}

// Kill stops the replica as a crash does: its port refuses new
// connections, and every open connection, in flight or idle, is reset.
// Killing a dead replica does nothing. Kill returns once no request of
// the replica is being handled.
func (r *Replica) Kill() { r.srv.kill() }

// Restart starts a killed replica again on the same port; restarting a
// running replica does nothing. It fails when the port has been taken
// meanwhile.
func (r *Replica) Restart() error { return r.srv.start() }

// Alive reports whether the replica accepts connections.
func (r *Replica) Alive() bool { return r.srv.isRunning() }

// URL is the replica's base URL.
func (r *Replica) URL() string { return r.srv.url() }

// Index is the replica's number within its service, 0-based.
func (r *Replica) Index() int { return r.index }

// Service is the name of the replica's service.
func (r *Replica) Service() string { return r.service }
