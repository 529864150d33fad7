package shop

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math"
	"net/http"
	"slices"
	"strconv"
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

// DefaultCatalogReplicas is the number of catalog replicas when neither
// Options.Replicas nor Options.CatalogReplicas sets one: enough that a
// killed replica leaves a pool to balance over.
const DefaultCatalogReplicas = 3

// DefaultReplicas is the number of replicas of every service but the
// catalog when Options.Replicas does not set one.
const DefaultReplicas = 1

// maxReplicas bounds the replicas of one service.
const maxReplicas = 64

// Options configure a Shop. The zero value is a valid shop: three catalog
// replicas, one of every other service, no artificial latency, the
// processor's default error rate, no in-process resilience, seed 0.
type Options struct {
	// Seed seeds the data (products, users), the latency draws and every
	// fault decision: the same seed and the same traffic give the same
	// answers.
	Seed uint64
	// Replicas is how many replicas each service runs, by service name
	// (ServiceCatalog, ...), 1 to 64. A missing or zero count means the
	// default: DefaultCatalogReplicas for the catalog (or CatalogReplicas
	// when set), DefaultReplicas for the others. The processor stands for
	// a provider outside the shop and always runs one; a count above 1 is
	// an error, as are unknown names and negative counts. Replicas of a
	// service share its state (payments' idempotency keys, as a shared
	// database would) and its recorder.
	Replicas map[string]int
	// CatalogReplicas is how many catalog replicas run, 1 to 64, where
	// Replicas does not say; zero means DefaultCatalogReplicas. It may not
	// contradict Replicas[ServiceCatalog].
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

// replicas is how many replicas of service run, defaults applied.
func (o Options) replicas(service string) int {
	if n := o.Replicas[service]; n > 0 {
		return n
	}
	if service != ServiceCatalog {
		return DefaultReplicas
	}
	if o.CatalogReplicas > 0 {
		return o.CatalogReplicas
	}
	return DefaultCatalogReplicas
}

func (o Options) validate() error {
	var errs []error
	if o.CatalogReplicas < 0 || o.CatalogReplicas > maxReplicas {
		errs = append(errs, fmt.Errorf("catalog replicas %d not in [1, %d]", o.CatalogReplicas, maxReplicas))
	}
	for _, name := range slices.Sorted(maps.Keys(o.Replicas)) {
		n := o.Replicas[name]
		switch {
		case !slices.Contains(Services, name):
			errs = append(errs, fmt.Errorf("replicas of unknown service %q (services: %v)", name, Services))
		case n < 0 || n > maxReplicas:
			errs = append(errs, fmt.Errorf("%s replicas %d not in [1, %d]", name, n, maxReplicas))
		case name == ServiceProcessor && n > 1:
			errs = append(errs, fmt.Errorf("processor replicas %d: the processor runs one", n))
		case name == ServiceCatalog && n != 0 && o.CatalogReplicas != 0 && n != o.CatalogReplicas:
			errs = append(errs, fmt.Errorf("catalog replicas %d contradict CatalogReplicas %d", n, o.CatalogReplicas))
		}
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
	// serve starts every replica of a service; handler(i) serves
	// replica i.
	serve := func(service string, handler func(i int) http.Handler) error {
		for i := range o.replicas(service) {
			r := &Replica{service: service, index: i}
			r.srv = newServer(service, handler(i), clk, o.Recorders[service], healthBody(service, i), strconv.Itoa(i))
			s.services[service] = append(s.services[service], r)
			if err := r.srv.start(); err != nil {
				return err
			}
		}
		return nil
	}
	// shared serves one handler from every replica of a service.
	shared := func(h http.Handler) func(int) http.Handler {
		return func(int) http.Handler { return h }
	}
	fail := func(err error) (*Shop, error) {
		s.Close()
		return nil, fmt.Errorf("starting the shop: %w", err)
	}

	err = serve(ServiceCatalog, func(i int) http.Handler { return catalogHandler(data, pace, o.Seed, i) })
	if err != nil {
		return fail(err)
	}
	var catalog []string
	for _, r := range s.services[ServiceCatalog] {
		catalog = append(catalog, r.URL())
	}
	if err := serve(ServiceUsers, shared(usersHandler(o.Seed, tok, pace))); err != nil {
		return fail(err)
	}
	filter, err := fault.NewHTTPFilter(nil, fault.HTTPFilterOptions{Seed: streamKey(o.Seed, "processor/faults"), Clock: clk})
	if err != nil {
		return fail(err)
	}
	err = serve(ServiceProcessor, shared(processorHandler(o.Seed, pace, errorRate, filter)))
	s.processor = &Processor{srv: s.services[ServiceProcessor][0].srv, filter: filter}
	if err != nil {
		return fail(err)
	}
	pay, err := newPayments(o.Seed, tok, pace, client, s.processor.base)
	if err != nil {
		return fail(err)
	}
	if err := serve(ServicePayments, shared(pay.handler())); err != nil {
		return fail(err)
	}
	recs, err := newRecommender(o.Seed, data, pace, client, catalog, o.Resilient)
	if err != nil {
		return fail(err)
	}
	if err := serve(ServiceRecommendations, shared(recs.handler())); err != nil {
		return fail(err)
	}
	s.stopWatch = context.AfterFunc(ctx, func() { s.Close() })
	return s, nil
}

func healthBody(service string, replica int) func() []byte {
	b := fmt.Appendf(nil, `{"status":"ok","service":%q,"replica":%d}`, service, replica)
	return func() []byte { return b }
}

// Close stops every service (callers before the services they call),
// resumes paused replicas and lets answers in progress (held ones
// included) finish, and closes the connections between services.
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

// Replicas returns every replica of a service, in index order (as many
// as Options.Replicas asked for, defaults applied), so that process
// faults can kill or pause any of them; nil for an unknown service.
// Killing a service's only replica is an outage of it.
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
// Killing a dead replica does nothing; killing a paused one kills it, and
// it restarts running. Kill returns once no request of the replica is
// being handled. Like every method of Replica, it is safe to call from any
// goroutine, concurrently with the others.
func (r *Replica) Kill() { r.srv.kill() }

// Restart starts a killed replica again on the same port; restarting a
// running replica, paused or not, does nothing. It fails when the port
// has been taken meanwhile, or with ErrClosed once the shop is closed.
func (r *Replica) Restart() error { return r.srv.start() }

// Pause stops the replica as SIGSTOP stops a process: its port still
// accepts connections and requests are still sent, but nothing is
// answered. Requests in flight stop where they are (an answer they have
// written is held, not sent) and new ones wait, until Resume, when they
// are answered, or until their client gives up. Health checks hang too,
// which is how a balancer finds out. Pausing a paused or dead replica
// does nothing. Shop.Close resumes paused replicas, so nothing hangs at
// shutdown.
func (r *Replica) Pause() { r.srv.pause() }

// Resume lets a paused replica go on, as SIGCONT does: every request it
// held is answered. Resuming a replica that is not paused does nothing.
func (r *Replica) Resume() { r.srv.resume() }

// Paused reports whether the replica is paused.
func (r *Replica) Paused() bool { return r.srv.gate.paused() }

// Alive reports whether the replica's process is up, that is whether its
// port accepts connections: false after Kill, until Restart. A paused
// replica is alive (its port accepts, as a stopped process's does) though
// it answers nothing; Paused tells the two apart.
func (r *Replica) Alive() bool { return r.srv.isRunning() }

// URL is the replica's base URL.
func (r *Replica) URL() string { return r.srv.url() }

// Index is the replica's number within its service, 0-based.
func (r *Replica) Index() int { return r.index }

// Service is the name of the replica's service.
func (r *Replica) Service() string { return r.service }
