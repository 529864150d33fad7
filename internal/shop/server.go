package shop

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/relia-dev/relia/clock"
	"github.com/relia-dev/relia/internal/semconv"
	"github.com/relia-dev/relia/outcome"
)

// shutdownGrace bounds how long Close waits for a service's connections to
// finish once their handlers have been told to stop; after it they are cut.
const shutdownGrace = 5 * time.Second

// server is one listening service process: a listener, an http.Server and
// the connections it accepted. Kill and restart act on it as a crash and a
// restart of that process would, keeping its port.
type server struct {
	name    string // the service, as in Endpoints and Options.Recorders
	handler http.Handler

	mu      sync.Mutex
	addr    string // host:port, fixed by the first listen
	srv     *http.Server
	stop    context.CancelFunc // ends the current life's request contexts
	served  chan struct{}      // closed when the current life's Serve returns
	conns   map[net.Conn]struct{}
	running bool
	closed  bool // by close: no restart after it

	inflight inflight
	gate     gate
}

// newServer instruments h: its requests are timed on clk, counted in a
// Prometheus registry of the server's own (served at /metrics with
// /healthz beside it) and recorded in rec when rec is not nil. Every
// answer carries X-Shop-Replica: replica, so a client behind a balancer
// sees which replica answered.
func newServer(name string, h http.Handler, clk clock.Clock, rec *outcome.Recorder, health func() []byte, replica string) *server {
	s := &server{name: name, conns: map[net.Conn]struct{}{}}
	reg := prometheus.NewRegistry()
	m := newMetrics(reg)
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		writeRaw(w, http.StatusOK, health())
	})
	mux.Handle("/", instrument(h, clk, m, rec))
	tagged := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Shop-Replica", replica)
		mux.ServeHTTP(w, r)
	})
	s.handler = s.inflight.wrap(s.gate.wrap(tagged))
	return s
}

// start listens (on the server's port once it has one, on a free loopback
// port the first time) and serves in a goroutine that ends with the life.
func (s *server) start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return fmt.Errorf("starting %s: %w", s.name, ErrClosed)
	}
	if s.running {
		return nil
	}
	addr := s.addr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listening for %s on %s: %w", s.name, addr, err)
	}
	s.addr = ln.Addr().String()
	ctx, stop := context.WithCancel(context.Background())
	srv := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 10 * time.Second,
		BaseContext:       func(net.Listener) context.Context { return ctx },
		ConnState:         s.track,
		// A killed replica's resets and a closing shop's refusals are the
		// point of the demo, not news.
		ErrorLog: log.New(io.Discard, "", 0),
	}
	served := make(chan struct{})
	s.srv, s.stop, s.served, s.running = srv, stop, served, true
	go func() {
		defer close(served)
		srv.Serve(ln)
	}()
	return nil
}

// track keeps the set of open connections, so that kill can reset them.
func (s *server) track(c net.Conn, st http.ConnState) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch st {
	case http.StateNew:
		s.conns[c] = struct{}{}
	case http.StateClosed, http.StateHijacked:
		delete(s.conns, c)
	}
}

// kill stops the server as a crash does: the port refuses connections and
// every open connection, idle or in flight, is reset (RST, not FIN), so
// clients see ECONNRESET rather than a clean close. It returns once no
// handler of the dead life runs.
func (s *server) kill() {
	s.mu.Lock()
	if !s.running {
		s.mu.Unlock()
		return
	}
	srv, stop, served := s.srv, s.stop, s.served
	s.running = false
	for c := range s.conns {
		if tc, ok := c.(*net.TCPConn); ok {
			// Linger 0 makes the close that follows send a reset.
			tc.SetLinger(0)
		}
	}
	s.mu.Unlock()
	// The connections go first, so no handler stopped below can answer.
	srv.Close() // the listener, then the (lingerless) connections
	stop()
	// A killed process is no longer stopped: its held requests end with
	// their connections, and the next life starts running.
	s.gate.resume()
	<-served
	s.inflight.wait()
}

// close stops the server politely: handlers are told to stop (those that
// wait answer 503), answers in progress are let out, then the connections
// close.
func (s *server) close() error {
	s.mu.Lock()
	s.closed = true
	if !s.running {
		s.mu.Unlock()
		return nil
	}
	srv, stop, served := s.srv, s.stop, s.served
	s.running = false
	s.mu.Unlock()
	// A paused server is let go first, so that what it holds is answered
	// and nothing hangs the shutdown.
	s.gate.resume()
	stop()
	ctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	err := srv.Shutdown(ctx)
	if err != nil {
		srv.Close()
		err = fmt.Errorf("stopping %s: %w", s.name, err)
	}
	<-served
	s.inflight.wait()
	return err
}

// pause holds the server's requests as SIGSTOP would hold the process's;
// it does nothing to a server that is not running.
func (s *server) pause() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.running {
		s.gate.pause()
	}
}

// resume lets the requests a pause holds go on.
func (s *server) resume() { s.gate.resume() }

// isRunning reports whether the server accepts connections.
func (s *server) isRunning() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.running
}

// url is the server's base URL, stable across restarts.
func (s *server) url() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return "http://" + s.addr
}

// inflight counts running handlers, so that kill and close return only
// when none is left. A WaitGroup does not fit: handlers of connections
// accepted just before the stop may begin while a wait is under way.
type inflight struct {
	mu   sync.Mutex
	n    int
	zero *sync.Cond
}

func (f *inflight) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		f.n++
		f.mu.Unlock()
		defer f.done()
		h.ServeHTTP(w, r)
	})
}

func (f *inflight) done() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.n--
	if f.n == 0 && f.zero != nil {
		f.zero.Broadcast()
	}
}

func (f *inflight) wait() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.zero == nil {
		f.zero = sync.NewCond(&f.mu)
	}
	for f.n > 0 {
		f.zero.Wait()
	}
}

// gate is a server's SIGSTOP: while it is shut, the listener still
// accepts (the kernel would) and requests are read, but no handler starts
// and no handler's answer leaves, until it opens again or the request's
// context ends (its client gave up, or the server was killed).
type gate struct {
	mu   sync.Mutex
	shut chan struct{} // non-nil while paused; closed when it opens
	held int           // requests waiting at the gate
	cond *sync.Cond    // signalled when held changes, for waitHeld
}

func (g *gate) pause() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.shut == nil {
		g.shut = make(chan struct{})
	}
}

func (g *gate) resume() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.shut != nil {
		close(g.shut)
		g.shut = nil
	}
}

func (g *gate) paused() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.shut != nil
}

// wait returns once the gate is open, or ctx's error when ctx ends first.
func (g *gate) wait(ctx context.Context) error {
	g.mu.Lock()
	shut := g.shut
	if shut == nil {
		g.mu.Unlock()
		return nil
	}
	g.addHeld(1)
	g.mu.Unlock()
	defer func() {
		g.mu.Lock()
		g.addHeld(-1)
		g.mu.Unlock()
	}()
	select {
	case <-shut:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// addHeld changes the count of held requests; g.mu is held.
func (g *gate) addHeld(d int) {
	g.held += d
	if g.cond != nil {
		g.cond.Broadcast()
	}
}

// waitHeld blocks until exactly n requests wait at the gate, so that
// tests know a request is held without sleeping.
func (g *gate) waitHeld(n int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.cond == nil {
		g.cond = sync.NewCond(&g.mu)
	}
	for g.held != n {
		g.cond.Wait()
	}
}

// wrap holds h's requests at the gate: before h starts, at each write of
// its answer, and after it returns, since an answer shorter than the
// write buffer leaves the process only then.
func (g *gate) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		if g.wait(ctx) != nil {
			return
		}
		h.ServeHTTP(&gatedWriter{ResponseWriter: w, g: g, ctx: ctx}, r)
		g.wait(ctx)
	})
}

// gatedWriter holds an answer's writes while the gate is shut.
type gatedWriter struct {
	http.ResponseWriter
	g   *gate
	ctx context.Context
}

func (w *gatedWriter) WriteHeader(code int) {
	if w.g.wait(w.ctx) == nil {
		w.ResponseWriter.WriteHeader(code)
	}
}

func (w *gatedWriter) Write(p []byte) (int, error) {
	if err := w.g.wait(w.ctx); err != nil {
		return 0, fmt.Errorf("writing while paused: %w", err)
	}
	return w.ResponseWriter.Write(p)
}

// Unwrap lets http.ResponseController reach the connection.
func (w *gatedWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// metrics are a service process's Prometheus instruments, named after the
// OpenTelemetry HTTP semantic conventions.
type metrics struct {
	duration *prometheus.HistogramVec
}

func newMetrics(reg *prometheus.Registry) *metrics {
	m := &metrics{duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: semconv.HTTPServerRequestDuration,
		Help: "Duration of HTTP server requests.",
		// relia's default latency buckets, which hold the demo SLO's 200 ms.
		Buckets: semconv.DurationBuckets(),
	}, []string{"http_route", "http_request_method", "http_response_status_code"})}
	reg.MustRegister(m.duration)
	return m
}

// instrument times each request on clk and records it as a metric and,
// when rec is set, as an outcome named after its route. A handler that
// returns without answering (its request ended by a kill or a close) is
// answered 503 and recorded as cancelled with no status, since the client
// got no answer the service meant to give.
func instrument(h http.Handler, clk clock.Clock, m *metrics, rec *outcome.Recorder) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := clk.Now()
		sw := &statusWriter{ResponseWriter: w}
		h.ServeHTTP(sw, r)
		status, class := sw.status, outcome.ClassOK
		if status == 0 {
			status, class = 0, outcome.ClassCanceled
			writeJSON(sw, http.StatusServiceUnavailable, reason("shutting_down"))
		} else {
			class = outcome.ClassifyResponse(status, nil)
		}
		latency := clk.Since(start)
		route := routeOf(r)
		code := "0"
		if status != 0 {
			code = statusText(status)
		}
		m.duration.WithLabelValues(route, r.Method, code).Observe(latency.Seconds())
		if rec != nil {
			in := r.ContentLength
			rec.Record(outcome.Outcome{
				Start: start, Latency: latency, Status: status, Class: class,
				BytesIn: in, BytesOut: sw.bytes, Name: route, Attempt: 1,
			})
		}
	})
}

// routeOf is the route template the mux matched ("/products/{id}"), the
// low-cardinality http_route of the semantic conventions; empty when no
// route matched.
func routeOf(r *http.Request) string {
	p := r.Pattern
	if i := strings.IndexByte(p, ' '); i >= 0 {
		p = p[i+1:]
	}
	return p
}

// statusText avoids an allocation for the statuses the shop answers.
func statusText(code int) string {
	switch code {
	case 200:
		return "200"
	case 201:
		return "201"
	case 400:
		return "400"
	case 401:
		return "401"
	case 402:
		return "402"
	case 404:
		return "404"
	case 500:
		return "500"
	case 502:
		return "502"
	case 503:
		return "503"
	case 504:
		return "504"
	}
	return fmt.Sprint(code)
}

// statusWriter remembers the status and counts the body bytes.
type statusWriter struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(p)
	w.bytes += int64(n)
	return n, err
}

// Unwrap lets http.ResponseController reach the connection.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// ErrClosed is returned by Replica.Restart once the shop is closed.
var ErrClosed = errors.New("shop closed")
