//go:build linux && !386

package gateway

import (
	"cmp"
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"go.opentelemetry.io/otel/trace"

	"github.com/relia-dev/relia/clock"
	"github.com/relia-dev/relia/gateway/upstream"
	"github.com/relia-dev/relia/internal/h1"
	"github.com/relia-dev/relia/internal/rawio"
	"github.com/relia-dev/relia/resilience"
)

// The eventloop engine (listeners[].engine: eventloop) serves a plain
// HTTP/1.1 listener's connections on GOMAXPROCS loops, each a goroutine
// with an epoll instance of its own. A loop reads a socket only when its
// epoll said it is readable, edge-triggered: a read that returns less
// than it asked for has emptied the socket, so no read returns EAGAIN,
// and no goroutine parks per request. The common request runs whole in
// the loop, through the same pipeline as the goroutine engine's, split at
// the wait for the target (routeRequest, admit, proxyBegin, startAttempt
// before it; attemptDone, proxyAfter, prepareResponse, respond after).
// Whatever the loop does not do (a body not yet whole, a route with
// policies that wait, an upgrade, a retry, every connection to the target
// busy, an answer larger than the target connection's buffer) hands the
// connection, with the bytes already read, to a goroutine of its own
// that goes on as the goroutine engine would: the sockets stay Go's
// (net.Conn), so handing on is taking them out of the loop's epoll.
//
// A loop waits, when its epoll has nothing ready, on Go's own poller for
// its epoll descriptor to become readable, until its nearest deadline
// (engine_loop_wheel_linux.go): the loop shares the runtime's threads with
// every other goroutine, timers and the admin API included. A new
// connection to a target is connected without waiting (a non-blocking
// connect the loop's epoll reports the end of), so a slow target holds up
// only the requests waiting for it.

const eventLoopSupported = true

// loopSweep is how often a loop looks for connections a drain ended and
// for target connections that goroutines wait for or a reload retired,
// besides the wakes that ask for them at once (wakeLoops, targetWaits);
// timeouts have deadlines of their own.
const loopSweep = 100 * time.Millisecond

// errWouldBlock is a loop socket's read when epoll has not said it is
// readable since the read that emptied it.
var errWouldBlock = errors.New("nothing to read until the socket is ready")

// loopSrc reads a socket for an h1.Reader on a loop: once per readiness,
// without waiting.
type loopSrc struct {
	fd    int
	ready bool
}

func (s *loopSrc) Read(p []byte) (int, error) {
	if !s.ready || len(p) == 0 {
		return 0, errWouldBlock
	}
	// recvfrom(2), not read(2): a socket's own call skips the file
	// layer's checks and bookkeeping that read(2) goes through.
	r, _, errno := syscall.RawSyscall6(syscall.SYS_RECVFROM, uintptr(s.fd), uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)), 0, 0, 0)
	switch {
	case errno == syscall.EAGAIN:
		s.ready = false
		return 0, errWouldBlock
	case errno != 0:
		return 0, errno
	case r == 0:
		return 0, io.EOF
	}
	if int(r) < len(p) {
		// Less than asked for: the socket is empty until its next edge.
		s.ready = false
	}
	return int(r), nil
}

// loopConn is a client connection's state on its loop.
type loopConn struct {
	l   *loop
	c   *conn
	src loopSrc
	// timer is the connection's place in the loop's wheel, at deadline
	// or, while a connect is under way, at the connect's own.
	timer timerLinks
	// first: no request was served yet; headWait: part of a head is in.
	first    bool
	headWait bool
	// deadline ends the wait under way: for a request (head or idle
	// timeout) or for the target's answer.
	deadline time.Time
	// The request waiting for its target, and its attempt.
	x        *exchange
	up       *loopUp
	t        *target
	bp       resilience.BreakerPermit
	now      time.Time
	span     trace.Span
	resp     *upstream.Response
	reused   bool
	fresh    bool
	headRead bool
	// unsent is what the client's socket had no room for: the loop never
	// waits for a client to read, so the connection goes to a goroutine
	// that writes it first.
	unsent []byte
}

// write writes p to the client without waiting; what does not fit is
// kept in unsent, after which every write is kept, in order.
func (lc *loopConn) write(p []byte) error {
	if len(lc.unsent) == 0 {
		n, err := writeNow(lc.src.fd, p)
		if err != nil {
			return err
		}
		p = p[n:]
	}
	if len(p) > 0 {
		lc.unsent = append(lc.unsent, p...)
	}
	return nil
}

// writeNow writes what of p fits in fd's socket buffer, without waiting:
// by sendto(2), which skips the file layer that write(2) goes through,
// with MSG_NOSIGNAL, so that a peer that has gone makes it fail with
// EPIPE and no signal.
func writeNow(fd int, p []byte) (int, error) {
	n := 0
	for n < len(p) {
		r, _, errno := syscall.RawSyscall6(syscall.SYS_SENDTO, uintptr(fd), uintptr(unsafe.Pointer(&p[n])), uintptr(len(p)-n), syscall.MSG_NOSIGNAL, 0, 0)
		switch errno {
		case 0:
			n += int(r)
		case syscall.EINTR:
		case syscall.EAGAIN:
			return n, nil
		default:
			return n, errno
		}
	}
	return n, nil
}

// loopUp is a target connection a loop watches; it is the connection's
// upstream.Home while the loop has it.
type loopUp struct {
	l   *loop
	uc  *upstream.Conn
	src loopSrc
	c   *conn // the client whose answer it carries; nil while idle
	// dialing: the connection is being opened for c, and uc is nil; the
	// loop watches src.fd (-1 while a goroutine dials a name) for the
	// connect's end. abandoned: c no longer waits for it.
	dialing, abandoned bool
}

var _ upstream.NowWriter = (*loopUp)(nil)

// WriteNow writes a request on the target connection (upstream.NowWriter)
// with the loop's own system call; what does not fit waits on Go's
// poller, as every target write does.
func (u *loopUp) WriteNow(p []byte) (int, error) {
	n, err := writeNow(u.src.fd, p)
	if err != nil {
		nc := u.uc.Net()
		err = &net.OpError{Op: "write", Net: "tcp", Source: nc.LocalAddr(), Addr: nc.RemoteAddr(), Err: err}
	}
	return n, err
}

// fdTable finds a loop's connections by descriptor: descriptors are small
// and reused lowest first, so a slice indexed by them finds one with a
// bounds check where a map would hash, once or twice a request.
type fdTable[T any] struct {
	s []*T
	n int // how many are set
}

func (t *fdTable[T]) get(fd int) *T {
	if uint(fd) < uint(len(t.s)) {
		return t.s[fd]
	}
	return nil
}

// put sets fd's entry; fd is not negative.
func (t *fdTable[T]) put(fd int, v *T) {
	if fd >= len(t.s) {
		t.s = append(t.s, make([]*T, fd+1-len(t.s))...)
	}
	if t.s[fd] == nil {
		t.n++
	}
	t.s[fd] = v
}

func (t *fdTable[T]) del(fd int) {
	if uint(fd) < uint(len(t.s)) && t.s[fd] != nil {
		t.s[fd] = nil
		t.n--
	}
}

// loop is one event loop of a listener.
type loop struct {
	g    *Gateway
	s    *listenerServer
	epfd int
	ep   *os.File
	rc   syscall.RawConn
	mu   sync.Mutex
	// clients and stopped are shared with the accepting goroutine (adopt);
	// the rest is the loop's own.
	clients fdTable[conn]
	stopped bool
	ups     fdTable[loopUp]
	idle    map[*upstream.Target][]*loopUp
	events  [128]syscall.EpollEvent
	n       int
	pollFn  func(uintptr) bool // sets n; made once
	swept   []*conn            // sweep's scratch
	// spare are exchanges the loop's requests ended with, for its next
	// ones: the loop's own, so taking and giving one back costs no
	// sync.Pool round.
	spare []*exchange
	// wheel holds the deadlines of the loop's connections; fired is
	// expire's scratch.
	wheel     wheel
	fired     []*loopConn
	waitDl    time.Time
	nextSweep time.Time
	// sweepEvery is loopSweep, or what a test set (Gateway.loopSweep).
	sweepEvery time.Duration
	// owed says requests on goroutines began to wait for target
	// connections since the loop last gave its idle ones back
	// (Gateway.targetWaits).
	owed atomic.Bool
	// now is when the loop last woke: the time its timeouts start from,
	// read once a wake rather than once a request, from clk (nil: the
	// real clock; tests set it through Gateway.loopClock).
	now time.Time
	clk clock.Clock
	// wakefd, an eventfd in the loop's epoll, wakes the loop for what
	// other goroutines hand it under mu: connections accepted (adopted)
	// and connections goroutines dialled (dialed).
	wakefd  int
	adopted []*conn
	dialed  []loopDialed
	// wakes counts the wakes wakefd had, once each is handled (a test's
	// count more than one).
	wakes atomic.Int64
	// served counts the answers the loop wrote, handedOn the connections
	// it handed to goroutines.
	served, handedOn atomic.Int64
}

// newLoops opens GOMAXPROCS loops for s.
func (g *Gateway) newLoops(s *listenerServer) error {
	for range runtime.GOMAXPROCS(0) {
		l, err := newLoop(g, s)
		if err != nil {
			s.closeLoops()
			return err
		}
		s.loops = append(s.loops, l)
	}
	return nil
}

// wakeLoops wakes s's loops that still run, so that they sweep now: a
// drain that began or reached its deadline closes their connections at
// once rather than at the next sweep.
func (s *listenerServer) wakeLoops() {
	for _, l := range s.loops {
		l.mu.Lock()
		if !l.stopped {
			l.wake()
		}
		l.mu.Unlock()
	}
}

// targetWaits runs as a request on a goroutine begins to wait for a
// target's connection: every loop gives back the target connections it
// keeps idle for which requests wait, now rather than at its next sweep.
func (g *Gateway) targetWaits() {
	servers := g.servers.Load()
	if servers == nil {
		return
	}
	for _, s := range *servers {
		for _, l := range s.loops {
			l.mu.Lock()
			if !l.stopped && !l.owed.Swap(true) {
				l.wake()
			}
			l.mu.Unlock()
		}
	}
}

// closeLoops closes loops that never started (a start that failed).
func (s *listenerServer) closeLoops() {
	for _, l := range s.loops {
		l.ep.Close()
		syscall.Close(l.wakefd)
	}
	s.loops = nil
}

// startLoops starts s's loops, owned by g.bg: they end once the gateway
// drains and their connections are gone.
func (g *Gateway) startLoops(s *listenerServer) {
	for _, l := range s.loops {
		g.bg.Add(1)
		go func() {
			defer g.bg.Done()
			l.run()
		}()
	}
}

func newLoop(g *Gateway, s *listenerServer) (*loop, error) {
	epfd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		return nil, os.NewSyscallError("epoll_create1", err)
	}
	// Non-blocking, so that Go's poller takes it: the loop parks on it.
	if err := syscall.SetNonblock(epfd, true); err != nil {
		syscall.Close(epfd)
		return nil, os.NewSyscallError("fcntl", err)
	}
	ep := os.NewFile(uintptr(epfd), "epoll")
	rc, err := ep.SyscallConn()
	if err != nil {
		ep.Close()
		return nil, err
	}
	l := &loop{g: g, s: s, epfd: epfd, ep: ep, rc: rc, clk: g.loopClock,
		idle: map[*upstream.Target][]*loopUp{}}
	l.now = l.clockNow()
	l.sweepEvery = cmp.Or(g.loopSweep, loopSweep)
	l.nextSweep = l.now.Add(l.sweepEvery)
	l.wheel = newWheel(l.now)
	l.pollFn = func(uintptr) bool {
		l.n = l.pollNow()
		return l.n > 0
	}
	efd, _, errno := syscall.RawSyscall(syscall.SYS_EVENTFD2, 0, syscall.O_NONBLOCK|syscall.O_CLOEXEC, 0)
	if errno != 0 {
		ep.Close()
		return nil, os.NewSyscallError("eventfd2", errno)
	}
	l.wakefd = int(efd)
	if err := l.watch(l.wakefd); err != nil {
		ep.Close()
		syscall.Close(l.wakefd)
		return nil, os.NewSyscallError("epoll_ctl", err)
	}
	return l, nil
}

// wokeAt returns the loop's wake time as a reading of g's clock, for a
// request's start or its answer's arrival: the wake that found either is
// when the gateway learned of it, as close as a reading taken while the
// loop works through the wake's other events, at no clock read of the
// request's own. Zero (the request reads the clock) when the loop's clock
// is not the gateway's.
func (l *loop) wokeAt(g *Gateway) time.Time {
	if l.clk != nil || !g.realClock {
		return time.Time{}
	}
	return l.now
}

// clockNow reads the loop's clock.
func (l *loop) clockNow() time.Time {
	if l.clk != nil {
		return l.clk.Now()
	}
	return time.Now()
}

// wake makes the loop look at what it was handed; the caller holds mu,
// and the loop has not stopped.
func (l *loop) wake() { l.wakeBy(1) }

// wakeBy wakes the loop, adding n to the count its wakes add to wakes.
func (l *loop) wakeBy(n uint64) {
	syscall.RawSyscall(syscall.SYS_WRITE, uintptr(l.wakefd), uintptr(unsafe.Pointer(&n)), 8)
}

// woken takes what other goroutines handed the loop, and returns the
// count of the wakes it had.
func (l *loop) woken() uint64 {
	var n uint64
	syscall.RawSyscall(syscall.SYS_READ, uintptr(l.wakefd), uintptr(unsafe.Pointer(&n)), 8)
	l.mu.Lock()
	adopted, dialed := l.adopted, l.dialed
	l.adopted, l.dialed = nil, nil
	l.mu.Unlock()
	for _, c := range adopted {
		// A connection that sent nothing yet waits within the head timeout
		// from its accept; one the loop served already has its deadline.
		if lc := c.lp; lc != nil && lc.c == c && lc.timer.level == 0 && lc.x == nil {
			l.wheel.set(lc, lc.deadline)
		}
	}
	for _, d := range dialed {
		l.dialDone(d)
	}
	return n
}

// fdOf returns a connection's descriptor.
func fdOf(nc net.Conn) int {
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return -1
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return -1
	}
	fd := -1
	rc.Control(func(f uintptr) { fd = int(f) })
	return fd
}

const loopEvents = syscall.EPOLLIN | syscall.EPOLLRDHUP | -syscall.EPOLLET

// watch adds fd to the loop's epoll, edge-triggered.
func (l *loop) watch(fd int) error {
	ev := syscall.EpollEvent{Events: uint32(loopEvents), Fd: int32(fd)}
	return syscall.EpollCtl(l.epfd, syscall.EPOLL_CTL_ADD, fd, &ev)
}

func (l *loop) unwatch(fd int) {
	syscall.EpollCtl(l.epfd, syscall.EPOLL_CTL_DEL, fd, nil)
}

// adopt takes a connection the listener accepted; the accepting
// goroutine calls it.
func (l *loop) adopt(c *conn) {
	c.setPeer()
	c.c = rawio.Wrap(c.nc)
	c.setupH1()
	fd := fdOf(c.nc)
	lc := &loopConn{l: l, c: c, src: loopSrc{fd: fd}, first: true}
	lc.deadline = l.clockNow().Add(c.s.srv.ReadHeaderTimeout)
	c.lp = lc
	c.rd.Src = &lc.src
	c.state.Store(connIdle)
	l.mu.Lock()
	if l.stopped || fd < 0 {
		// Accepted just before the drain began, after the loop ended.
		l.mu.Unlock()
		c.nc.Close()
		c.g.conns.remove(c)
		return
	}
	l.clients.put(fd, c)
	// The loop sets the head timeout's deadline in its wheel: woken for
	// the first of a burst of connections, it takes them all.
	if len(l.adopted) == 0 {
		l.wake()
	}
	l.adopted = append(l.adopted, c)
	l.mu.Unlock()
	if l.watch(fd) != nil {
		l.mu.Lock()
		l.clients.del(fd)
		l.mu.Unlock()
		c.nc.Close()
		c.g.conns.remove(c)
	}
}

// run serves until the gateway drains and the loop's connections are
// gone.
func (l *loop) run() {
	defer l.stop()
	for {
		n := l.wait()
		l.now = l.clockNow()
		woke := uint64(0)
		for i := range n {
			ev := &l.events[i]
			fd := int(ev.Fd)
			if fd == l.wakefd {
				woke += l.woken()
				continue
			}
			if u := l.ups.get(fd); u != nil {
				l.upReady(u)
				continue
			}
			l.mu.Lock()
			c := l.clients.get(fd)
			l.mu.Unlock()
			if c != nil && c.lp != nil {
				c.lp.src.ready = true
				if c.lp.x == nil {
					l.serveConn(c)
				}
			}
		}
		l.expire()
		// On a clock of a test's, which moves only when the test moves
		// it, every wake sweeps, so that a drain needs no time to pass;
		// so does a drain's (draining).
		if now := l.now; !now.Before(l.nextSweep) || l.clk != nil || l.draining(woke) {
			l.nextSweep = now.Add(l.sweepEvery)
			if l.sweep() {
				return
			}
		}
		if l.owed.Load() && l.owed.Swap(false) {
			l.giveIdleToWaiters()
		}
		if woke > 0 {
			l.wakes.Add(int64(woke))
		}
	}
}

// draining reports whether a drain began and the loop is to sweep now: it
// was woken (wakeLoops), or its last connection closed, so that it stops
// without waiting for its next sweep.
func (l *loop) draining(woke uint64) bool {
	if !l.g.conns.closing() {
		return false
	}
	if woke > 0 {
		return true
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.clients.n == 0
}

// expire ends the waits whose deadlines passed.
func (l *loop) expire() {
	l.fired = l.wheel.expire(l.now, l.fired[:0])
	for i, lc := range l.fired {
		l.fired[i] = nil
		if c := lc.c; c.lp == lc {
			l.timedOut(c)
		}
	}
}

// timedOut ends c's wait, which its deadline ended: the attempt under way
// fails, or the connection closes (with 408 for a head half in).
func (l *loop) timedOut(c *conn) {
	lc := c.lp
	if lc.x != nil {
		if u := lc.up; u != nil && u.dialing {
			l.abortDial(u)
			lc.up = nil
			if l.answered(c, nil, &net.OpError{Op: "dial", Net: "tcp", Addr: dialAddr(lc.t.up), Err: os.ErrDeadlineExceeded}) {
				l.serveConn(c)
			}
			return
		}
		if l.answered(c, lc.up, os.ErrDeadlineExceeded) {
			l.serveConn(c)
		}
		return
	}
	if lc.headWait {
		c.refuse(&c.hreq, os.ErrDeadlineExceeded)
	}
	l.close(c)
}

// wait returns the number of ready events, parking on Go's poller while
// there are none, until the nearest deadline or sweep.
func (l *loop) wait() int {
	if n := l.pollNow(); n > 0 {
		return n
	}
	dl := l.nextSweep
	if l.wheel.dueBefore(dl) {
		if w := l.wheel.wake(); !w.IsZero() && w.Before(dl) {
			dl = w
		}
	}
	// The poller's deadline moves only when the loop must wake earlier
	// than it would, or it passed: waking early for a deadline since
	// moved away costs one wake, moving the poller's deadline every
	// request would cost more.
	if dl.Before(l.waitDl) || !l.waitDl.After(l.now) || l.clk != nil {
		l.waitDl = dl
		if l.clk != nil {
			dl = time.Now().Add(dl.Sub(l.now)) // the poller waits in real time
		}
		l.ep.SetReadDeadline(dl)
	}
	l.n = 0
	l.rc.Read(l.pollFn)
	return l.n
}

// pollNow takes the ready events without waiting.
func (l *loop) pollNow() int {
	r, _, errno := syscall.RawSyscall6(syscall.SYS_EPOLL_PWAIT, uintptr(l.epfd), uintptr(unsafe.Pointer(&l.events[0])), uintptr(len(l.events)), 0, 0, 0)
	if errno != 0 {
		return 0
	}
	return int(r)
}

// serveConn serves the requests the client sent until one waits for its
// target, the client must send more, or the connection ends.
func (l *loop) serveConn(c *conn) {
	lc := c.lp
	for {
		if c.rd.R == c.rd.W {
			if c.g.conns.closing() {
				l.close(c)
				return
			}
			err := c.rd.Fill()
			if err == errWouldBlock {
				l.waitRequest(c)
				return
			}
			if err != nil {
				l.close(c)
				return
			}
		}
		if !c.state.CompareAndSwap(connIdle, connActive) && c.state.Load() != connActive {
			l.close(c) // a drain closed it, idle
			return
		}
		err := c.rd.ReadRequest(c.s.lim, &c.hreq)
		if err == errWouldBlock {
			if !lc.headWait {
				lc.headWait = true
				lc.deadline = l.now.Add(c.s.srv.ReadHeaderTimeout)
				l.wheel.set(lc, lc.deadline)
			}
			return
		}
		lc.headWait = false
		if err != nil {
			if err != io.EOF && !errors.Is(err, net.ErrClosed) {
				c.refuse(&c.hreq, err)
			}
			l.close(c)
			return
		}
		lc.first = false
		if !l.serveRequest(c) {
			return
		}
	}
}

// waitRequest readies c for the wait for its next request: the first
// within the head timeout, later ones within the idle timeout.
func (l *loop) waitRequest(c *conn) {
	lc := c.lp
	c.state.CompareAndSwap(connActive, connIdle)
	if !lc.first {
		lc.deadline = l.now.Add(c.s.srv.IdleTimeout)
	} else if lc.timer.level != 0 {
		return // the head timeout from the accept stands
	}
	l.wheel.set(lc, lc.deadline)
}

// loopable reports whether a matched request's route needs nothing the
// loop does not do: its policies answer at once, and the answer comes
// from a target over HTTP/1.1.
func (g *Gateway) loopable(x *exchange) bool {
	r := x.route
	return g.auth == nil && g.tracing == nil && x.req.upgrade == nil &&
		r.pool != nil && r.pool.cfg.GRPC == nil && r.cfg.AI == "" &&
		r.shared == nil && r.cache == nil && r.faults == nil && r.bulkhead == nil && r.limiter == nil && r.hedge == nil &&
		!(r.capture.KeepsBodies() && g.calls != nil && g.calls.rec != nil)
}

// serveRequest serves the request whose head c.hreq holds, as far as the
// loop can, and reports whether the loop is to read the next one now.
func (l *loop) serveRequest(c *conn) bool {
	g := c.g
	x := l.newExchange()
	c.intake(x)
	x.h1c = c
	if x.req.src != nil && (c.hreq.Framing != h1.Length || c.hreq.ContentLength > int64(len(c.rd.Buffered()))) {
		// The body is not all in: a goroutine reads it.
		l.handOn(c, func() bool {
			g.serveExchange(x)
			return c.respond(x)
		}, x)
		return false
	}
	if !g.routeRequest(x, l.wokeAt(g)) {
		g.prepareResponse(x)
		return l.respond(c, x)
	}
	if !g.loopable(x) {
		l.handOn(c, func() bool {
			g.handle(x.st, x)
			g.prepareResponse(x)
			return c.respond(x)
		}, x)
		return false
	}
	if !g.admit(x.st, x) {
		g.prepareResponse(x)
		return l.respond(c, x)
	}
	if _, ok := g.proxyBegin(x, &x.pc); !ok {
		g.prepareResponse(x)
		return l.respond(c, x)
	}
	return l.attempt(c, x)
}

// maxSpare bounds the exchanges a loop keeps for its next requests: past
// it they go back to the pool that every engine shares.
const maxSpare = 256

func (l *loop) newExchange() *exchange {
	if n := len(l.spare); n > 0 {
		x := l.spare[n-1]
		l.spare[n-1] = nil
		l.spare = l.spare[:n-1]
		return x.renew(l.g)
	}
	return newExchange(l.g)
}

func (l *loop) putExchange(x *exchange) {
	if len(l.spare) == maxSpare {
		putExchange(x)
		return
	}
	x.clear()
	l.spare = append(l.spare, x)
}

// respond writes x's answer and reports whether the connection stays.
func (l *loop) respond(c *conn, x *exchange) bool {
	l.served.Add(1) // before the answer goes, so that its reader sees it counted
	keep := c.respond(x)
	l.putExchange(x)
	if unsent := c.lp.unsent; len(unsent) > 0 {
		// The client does not read as fast as it asks: a goroutine
		// writes the rest, within the write timeout, and goes on.
		l.handOn(c, func() bool {
			c.wdl = time.Now().Add(c.s.srv.WriteTimeout)
			return c.send(unsent) == nil && keep
		}, nil)
		return false
	}
	if !keep {
		l.close(c)
	}
	return keep
}

// attempt starts the request's attempt: the target picked, its breaker
// asked, the request written on a connection the loop watches.
func (l *loop) attempt(c *conn, x *exchange) bool {
	g, lc, pc := c.g, c.lp, &x.pc
	pc.next(x)
	t, bp, now, try, out := g.startAttempt(x, pc.prev, pc.hashKey, pc.deadline, true)
	if out.answered {
		return l.after(c, x, out)
	}
	lc.x, lc.t, lc.bp, lc.now, lc.deadline = x, t, bp, now, try
	l.wheel.set(lc, try)
	lc.span = g.attemptSpan(x, t, now)
	lc.resp = upstreamResponses.Get().(*upstream.Response)
	lc.fresh = false
	t.inflight.Add(1)
	return l.send(c)
}

// send writes the request on an idle connection of the loop's, or one
// from the target's pool; with every connection busy the request waits on
// a goroutine.
func (l *loop) send(c *conn) bool {
	lc := c.lp
	x := lc.x
	up := lc.t.up
	var u *loopUp
	if !lc.fresh {
		u = l.popIdle(up)
	}
	lc.reused = u != nil
	if u == nil {
		uc, err := up.TryAcquire(lc.fresh)
		if err == upstream.ErrMustDial {
			return l.dial(c)
		}
		if err == upstream.ErrWouldWait {
			lc.x = nil
			l.handOn(c, func() bool {
				err := up.Do(x.req.ctx, &x.ureq, lc.resp, lc.deadline)
				a := c.g.attemptDone(x, lc.t, lc.bp, lc.now, time.Time{}, lc.span, lc.resp, err)
				c.g.proxyAttempts(x, &x.pc, &a)
				c.g.prepareResponse(x)
				return c.respond(x)
			}, x)
			return false
		}
		if u, err = l.take(uc); err != nil {
			uc.Discard()
			return l.answered(c, nil, err)
		}
		lc.reused = true
	}
	return l.sendOn(c, u)
}

// sendOn writes c's request on u.
func (l *loop) sendOn(c *conn, u *loopUp) bool {
	lc := c.lp
	u.c, lc.up, lc.headRead = c, u, false
	if err := u.uc.WriteRequest(&lc.x.ureq, lc.deadline, lc.reused); err != nil {
		return l.answered(c, u, err)
	}
	return false
}

// loopDialed is a connection a goroutine dialled for a loop, or why it
// could not.
type loopDialed struct {
	u   *loopUp
	uc  *upstream.Conn
	err error
}

// dial opens a new connection to c's target without waiting for it: a
// connect the loop's epoll reports the end of, within the target's
// connect timeout and the attempt's deadline. A target named by a host
// name is resolved and dialled on a goroutine, which hands the
// connection to the loop. c's request goes once the connection is up.
func (l *loop) dial(c *conn) bool {
	lc := c.lp
	up := lc.t.up
	u := &loopUp{l: l, c: c, src: loopSrc{fd: -1}, dialing: true}
	lc.up, lc.reused, lc.headRead = u, false, false
	by := lc.deadline
	if dt := up.DialTimeout(); dt > 0 {
		by = min64(by, l.now.Add(dt))
	}
	ap, err := netip.ParseAddrPort(up.Addr())
	if err != nil {
		l.wheel.set(lc, by)
		deadline := lc.deadline
		go func() { // ends with the dial, which the deadline bounds
			uc, err := up.DialPooled(context.Background(), deadline)
			l.mu.Lock()
			defer l.mu.Unlock()
			if l.stopped {
				if uc != nil {
					uc.Keep()
				}
				return
			}
			if len(l.dialed) == 0 && len(l.adopted) == 0 {
				l.wake()
			}
			l.dialed = append(l.dialed, loopDialed{u: u, uc: uc, err: err})
		}()
		return false
	}
	fd, err := connectNow(ap)
	if err == nil {
		// Connected at once (or pending): the end of the connect is
		// reported as the socket becoming writable.
		ev := syscall.EpollEvent{Events: uint32(syscall.EPOLLOUT | loopEvents), Fd: int32(fd)}
		if err = syscall.EpollCtl(l.epfd, syscall.EPOLL_CTL_ADD, fd, &ev); err != nil {
			syscall.Close(fd)
			err = os.NewSyscallError("epoll_ctl", err)
		}
	}
	if err != nil {
		up.Unreserve()
		lc.up = nil
		return l.answered(c, nil, &net.OpError{Op: "dial", Net: "tcp", Addr: net.TCPAddrFromAddrPort(ap), Err: err})
	}
	u.src.fd = fd
	l.ups.put(fd, u)
	l.wheel.set(lc, by)
	return false
}

// connectNow starts a non-blocking connect to ap.
func connectNow(ap netip.AddrPort) (int, error) {
	var sa syscall.Sockaddr
	family := syscall.AF_INET
	if a := ap.Addr(); a.Is4() || a.Is4In6() {
		sa = &syscall.SockaddrInet4{Port: int(ap.Port()), Addr: a.Unmap().As4()}
	} else {
		family = syscall.AF_INET6
		sa6 := &syscall.SockaddrInet6{Port: int(ap.Port()), Addr: a.As16()}
		if z := a.Zone(); z != "" {
			if ifi, err := net.InterfaceByName(z); err == nil {
				sa6.ZoneId = uint32(ifi.Index)
			}
		}
		sa = sa6
	}
	fd, err := syscall.Socket(family, syscall.SOCK_STREAM|syscall.SOCK_NONBLOCK|syscall.SOCK_CLOEXEC, syscall.IPPROTO_TCP)
	if err != nil {
		return -1, os.NewSyscallError("socket", err)
	}
	syscall.SetsockoptInt(fd, syscall.IPPROTO_TCP, syscall.TCP_NODELAY, 1)
	for {
		err = syscall.Connect(fd, sa)
		if err != syscall.EINTR {
			break
		}
	}
	switch err {
	case nil, syscall.EINPROGRESS, syscall.EALREADY:
		return fd, nil
	}
	syscall.Close(fd)
	return -1, os.NewSyscallError("connect", err)
}

// dialAddr is a target's address as a dial's error names it.
func dialAddr(t *upstream.Target) net.Addr {
	if ap, err := netip.ParseAddrPort(t.Addr()); err == nil {
		return net.TCPAddrFromAddrPort(ap)
	}
	return nil
}

// connected ends a connect the loop watched: c's request goes on the new
// connection, or the attempt fails as a dial's does.
func (l *loop) connected(u *loopUp) {
	fd := u.src.fd
	l.unwatch(fd)
	l.ups.del(fd)
	up := u.c.lp.t.up
	soErr, err := syscall.GetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_ERROR)
	if err == nil && soErr != 0 {
		err = syscall.Errno(soErr)
	}
	var nc net.Conn
	if err != nil {
		err = os.NewSyscallError("connect", err)
	} else {
		f := os.NewFile(uintptr(fd), "")
		nc, err = net.FileConn(f) // a duplicate of fd, on Go's poller
		f.Close()
		fd = -1
	}
	if fd >= 0 {
		syscall.Close(fd)
	}
	d := loopDialed{u: u, err: err}
	if err != nil {
		up.Unreserve()
		d.err = &net.OpError{Op: "dial", Net: "tcp", Addr: dialAddr(up), Err: err}
	} else {
		d.uc = up.Adopt(nc)
	}
	l.dialDone(d)
}

// dialDone goes on with the request a connection was dialled for.
func (l *loop) dialDone(d loopDialed) {
	u := d.u
	if u.abandoned {
		if d.uc != nil {
			d.uc.Keep() // nobody waits for it: the pool's
		}
		return
	}
	c := u.c
	lc := c.lp
	lc.up = nil
	var keep bool
	if d.err != nil {
		keep = l.answered(c, nil, d.err)
	} else if nu, err := l.take(d.uc); err != nil {
		d.uc.Discard()
		keep = l.answered(c, nil, err)
	} else {
		l.wheel.set(lc, lc.deadline) // the answer's deadline
		keep = l.sendOn(c, nu)
	}
	if keep {
		l.serveConn(c)
	}
}

// abortDial ends a connect nobody waits for any more.
func (l *loop) abortDial(u *loopUp) {
	u.abandoned = true
	if fd := u.src.fd; fd >= 0 {
		l.unwatch(fd)
		l.ups.del(fd)
		syscall.Close(fd)
		u.c.lp.t.up.Unreserve()
	}
	// A goroutine's dial ends by its deadline, and hands over what it
	// opened anyway (dialDone).
}

// take makes a target connection the loop's: watched by its epoll, read
// once per readiness, given back to the loop on Release.
func (l *loop) take(uc *upstream.Conn) (*loopUp, error) {
	fd := fdOf(uc.Net())
	if fd < 0 {
		return nil, errors.New("a target connection without a descriptor")
	}
	u := &loopUp{l: l, uc: uc, src: loopSrc{fd: fd}}
	if err := l.watch(fd); err != nil {
		return nil, err
	}
	uc.Reader().Src = &u.src
	uc.SetHome(u)
	l.ups.put(fd, u)
	return u, nil
}

// release gives a target connection back to the target's pool: out of
// the loop's epoll, read by goroutines again.
func (l *loop) release(u *loopUp) {
	l.forgetUp(u)
	u.uc.Keep()
}

func (l *loop) forgetUp(u *loopUp) {
	l.unwatch(u.src.fd)
	l.ups.del(u.src.fd)
	u.uc.Reader().Src = u.uc
	u.uc.SetHome(nil)
	u.c = nil
}

// drop closes a target connection of the loop's.
func (l *loop) drop(u *loopUp) {
	if u.dialing {
		l.abortDial(u)
		return
	}
	l.forgetUp(u)
	u.uc.Discard()
}

func (l *loop) popIdle(t *upstream.Target) *loopUp {
	us := l.idle[t]
	if len(us) == 0 {
		return nil
	}
	u := us[len(us)-1]
	l.idle[t] = us[:len(us)-1]
	return u
}

// Return takes back a target connection whose response was released
// (upstream.Home); the loop calls it, from the answer's release.
func (u *loopUp) Return(uc *upstream.Conn, keep bool) {
	l := u.l
	if l.ups.get(u.src.fd) != u {
		if keep {
			uc.Keep()
		} else {
			uc.Discard()
		}
		return
	}
	u.c = nil
	if !keep || uc.Target().Retired() {
		l.drop(u)
		return
	}
	uc.Reader().Release()
	if uc.Target().Waiting() > 0 {
		// A request on a goroutine waits for a connection: it gets this.
		l.release(u)
		return
	}
	l.idle[uc.Target()] = append(l.idle[uc.Target()], u)
}

// upReady reads a target connection's answer.
func (l *loop) upReady(u *loopUp) {
	if u.dialing {
		l.connected(u)
		return
	}
	u.src.ready = true
	c := u.c
	if c == nil {
		// An idle connection is readable: the target closed it, or sent
		// what nobody asked for.
		l.dropIdle(u)
		return
	}
	lc := c.lp
	x := lc.x
	rd := u.uc.Reader()
	if !lc.headRead {
		err := u.uc.ReadHead(&x.ureq, lc.resp, lc.reused)
		if err == errWouldBlock {
			return
		}
		if err == nil && lc.resp.Status == 101 {
			err = upstream.ErrInvalidResponse // Do's rule: no upgrade was asked for
		}
		if err != nil {
			if upstream.IsStale(err) && !lc.fresh {
				// The target had closed the kept connection: once more on
				// a new one, as Do does.
				l.drop(u)
				lc.t.up.CloseIdle()
				l.closeIdle(lc.t.up)
				lc.fresh = true
				if l.send(c) {
					l.serveConn(c)
				}
				return
			}
			if l.answered(c, u, err) {
				l.serveConn(c)
			}
			return
		}
		lc.headRead = true
		rd.KeepHead() // the head's slices stay where they are
	}
	// The body: whole in the buffer, or the goroutine engine passes it on.
	for {
		left := lc.resp.Body.Remaining()
		if lc.resp.Framing == h1.NoBody || (lc.resp.Framing == h1.Length && left <= int64(len(rd.Buffered()))) {
			break
		}
		if lc.resp.Framing != h1.Length || rd.W == len(rd.Buf) {
			l.handOnAnswer(c, u)
			return
		}
		err := rd.Fill()
		if err == errWouldBlock {
			return
		}
		if err != nil {
			l.handOnAnswer(c, u)
			return
		}
	}
	if l.answered(c, u, nil) {
		l.serveConn(c)
	}
}

// answered ends the attempt under way: with the target's answer (err
// nil) or its failure; the request then ends, or goes again on a
// goroutine. It reports whether the loop is to read the next request.
func (l *loop) answered(c *conn, u *loopUp, err error) bool {
	lc := c.lp
	x := lc.x
	lc.x, lc.up = nil, nil
	if err == nil {
		u.c = nil
		lc.resp.Attach(u.uc)
	} else if u != nil {
		l.drop(u)
	}
	a := c.g.attemptDone(x, lc.t, lc.bp, lc.now, l.wokeAt(c.g), lc.span, lc.resp, err)
	lc.span, lc.resp, lc.t = nil, nil, nil
	return l.after(c, x, a)
}

// after judges an attempt's outcome: the answer goes out, or the request
// goes again on a goroutine. It reports whether the loop is to read the
// connection's next request.
func (l *loop) after(c *conn, x *exchange, a attemptOutcome) bool {
	g := c.g
	_, again, wait := g.proxyAfter(x, &x.pc, a)
	if again {
		l.handOn(c, func() bool {
			if wait > 0 && clock.Sleep(x.req.ctx, g.clock, wait) != nil {
				g.prepareResponse(x)
				return c.respond(x)
			}
			g.proxyAttempts(x, &x.pc, nil)
			g.prepareResponse(x)
			return c.respond(x)
		}, x)
		return false
	}
	g.prepareResponse(x)
	return l.respond(c, x)
}

// handOnAnswer hands the client connection on with an answer whose body
// is not all in: a goroutine passes it on.
func (l *loop) handOnAnswer(c *conn, u *loopUp) {
	lc := c.lp
	x := lc.x
	lc.x, lc.up = nil, nil
	lc.resp.Attach(u.uc)
	u.uc.Reader().Release()
	l.forgetUp(u)
	t, bp, now, span, resp := lc.t, lc.bp, lc.now, lc.span, lc.resp
	l.handOn(c, func() bool {
		a := c.g.attemptDone(x, t, bp, now, time.Time{}, span, resp, nil)
		c.g.proxyAttempts(x, &x.pc, &a)
		c.g.prepareResponse(x)
		return c.respond(x)
	}, x)
}

// handOn takes c out of the loop and serves it on a goroutine of its own
// from here: rest serves the request under way (x, when set) and reports
// whether the connection stays for another, which the goroutine engine
// then reads from the bytes already buffered on.
func (l *loop) handOn(c *conn, rest func() bool, x *exchange) {
	l.forget(c)
	l.handedOn.Add(1)
	c.state.Store(connActive)
	go c.serveFrom(rest, x) // ends when the connection closes
}

// forget takes c out of the loop: its reads wait on Go's poller again.
func (l *loop) forget(c *conn) {
	fd := c.lp.src.fd
	l.mu.Lock()
	l.clients.del(fd)
	l.mu.Unlock()
	l.unwatch(fd)
	l.wheel.remove(c.lp)
	c.rd.Src = c
	c.lp = nil
}

// close ends a client connection served by the loop.
func (l *loop) close(c *conn) {
	lc := c.lp
	if lc == nil {
		return
	}
	if x := lc.x; x != nil {
		// Its request was waiting for the target: the attempt ends.
		if lc.up != nil {
			l.drop(lc.up)
		}
		lc.t.inflight.Add(-1)
		lc.bp.Done(nil)
		upstreamResponses.Put(lc.resp)
		lc.x = nil
		l.putExchange(x)
	}
	l.forget(c)
	c.state.Store(connClosed)
	c.nc.Close()
	c.g.conns.remove(c)
}

func (l *loop) dropIdle(u *loopUp) {
	t := u.uc.Target()
	us := l.idle[t]
	for i, v := range us {
		if v == u {
			l.idle[t] = append(us[:i], us[i+1:]...)
			break
		}
	}
	l.drop(u)
}

func (l *loop) closeIdle(t *upstream.Target) {
	for _, u := range l.idle[t] {
		l.drop(u)
	}
	delete(l.idle, t)
}

// sweep ends what a drain ended, hands target connections to requests
// that wait for them on goroutines, and reports whether the loop is to
// stop (the gateway drains and nothing is left).
func (l *loop) sweep() bool {
	l.mu.Lock()
	cs := l.swept[:0]
	for _, c := range l.clients.s {
		if c != nil {
			cs = append(cs, c)
		}
	}
	l.mu.Unlock()
	defer func() {
		clear(cs)
		l.swept = cs[:0]
	}()
	closing := l.g.conns.closing()
	for _, c := range cs {
		lc := c.lp
		switch {
		case lc == nil:
		case c.ended.Load() || c.state.Load() == connClosed:
			l.close(c)
		case closing && lc.x == nil && c.state.Load() == connIdle:
			l.close(c)
		}
	}
	for t, us := range l.idle {
		if t.Retired() {
			for _, u := range us {
				l.drop(u)
			}
			delete(l.idle, t)
		}
	}
	l.giveIdleToWaiters()
	if !closing {
		return false
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.stopped = l.clients.n == 0
	return l.stopped
}

// giveIdleToWaiters gives the pool the loop's idle connections to targets
// that requests on goroutines wait for.
func (l *loop) giveIdleToWaiters() {
	for t, us := range l.idle {
		if t.Waiting() > 0 {
			for _, u := range us {
				l.release(u)
			}
			delete(l.idle, t)
		}
	}
}

// stop closes the loop's idle target connections, its epoll and its
// eventfd.
func (l *loop) stop() {
	for t := range l.idle {
		l.closeIdle(t)
	}
	l.ep.Close()
	l.mu.Lock()
	syscall.Close(l.wakefd) // stopped: nobody wakes it any more
	l.mu.Unlock()
}
