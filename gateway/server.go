package gateway

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/net/http2"

	"github.com/relia-dev/relia/internal/h1"
	"github.com/relia-dev/relia/internal/rawio"
)

// The gateway serves HTTP/1.1 itself: a goroutine per connection on the
// runtime's network poller, reading and writing with raw syscalls where
// the connection is plain TCP (internal/rawio), every head and body read
// and written by relia's codec (internal/h1). HTTP/2 (ALPN h2 after a
// TLS handshake, or the h2c preface on a listener that allows it) goes to
// Go's HTTP/2 server, whose requests are converted into the same request
// type (h2.go). A listener with engine: eventloop hands its connections
// to event loops instead (engine_loop_linux.go), which serve the common
// request and hand the rest back to this engine.

// listenerServer serves one listener.
type listenerServer struct {
	g    *Gateway
	name string
	ln   net.Listener
	tls  *tls.Config // nil: plain TCP
	h2c  bool
	h2   *http2.Server
	// h2base is the http.Server the HTTP/2 connections report to, whose
	// shutdown sends them GOAWAY; it never listens.
	h2base *http.Server
	srv    Server
	lim    h1.Limits
	// loops, when set, serve the listener's connections (the eventloop
	// engine, engine_loop_linux.go); next picks the loop of the next one.
	loops []*loop
	next  int
}

// serve accepts connections until the listener closes.
func (s *listenerServer) serve() {
	var delay time.Duration
	for {
		nc, err := s.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of descriptors or the like: back off, as net/http does.
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			s.g.log.Error("accepting a connection", "listener", s.name, "error", err)
			time.Sleep(delay)
			continue
		}
		delay = 0
		c := &conn{s: s, g: s.g, nc: nc}
		if !s.g.conns.add(c) {
			nc.Close()
			continue
		}
		if s.loops != nil {
			s.loops[s.next%len(s.loops)].adopt(c)
			s.next++
			continue
		}
		go c.serve() // ends when the connection closes
	}
}

// Connection states, for shutdown: an idle connection waits for its next
// request and may be closed at once; an active one is serving one.
const (
	connActive int32 = iota
	connIdle
	connClosed
)

// conn is one client connection.
type conn struct {
	s     *listenerServer
	g     *Gateway
	nc    net.Conn
	c     net.Conn // nc with raw syscalls (internal/rawio), or its TLS session
	rd    h1.Reader
	hreq  h1.Request
	body  h1.Body
	wbuf  []byte
	peer  netip.Addr
	tls   bool
	state atomic.Int32
	// peerText is peer written out, once a connection rather than twice a
	// request (X-Forwarded-For, the access log): peerLen bytes of it, the
	// longest IPv6 address (a peer has no zone) fitting.
	peerText [len("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff")]byte
	peerLen  uint8
	// tunnel, when set, is the target connection an upgrade spliced this
	// one to, ended with it.
	tunnel atomic.Pointer[net.Conn]
	// pend is what passOn has gathered to write; flushFn is flushPending,
	// made once.
	pend    []byte
	pendErr error
	flushFn func()
	// rdl is the read deadline last set; headWait says the next read is
	// for more of a head or a body, and must come within the head
	// timeout. Deadlines are set only where a read is to wait, and the
	// idle one is moved only when it has drifted by more than idleSlack:
	// each move is a timer operation in the runtime, and a request that
	// arrives whole in one read needs none (docs/benchmarks.md).
	rdl      time.Time
	headWait bool
	// wdl bounds the writes of the response under way; it is set on the
	// socket only if a write must wait (rawio.WriteBy).
	wdl time.Time
	// relaying is the exchange whose AI stream goes on from c's next
	// goroutine, once the one that served it up to its first token ended
	// (done).
	relaying *exchange
	// ended: end was called, and its deadlines stand.
	ended atomic.Bool
	// lp is the connection's state on an event loop; nil on a goroutine
	// of its own (and once a loop handed it to one).
	lp *loopConn
}

// Read reads from the client, within the head timeout when more of a
// head or a body is awaited.
func (c *conn) Read(p []byte) (int, error) {
	if c.headWait {
		c.headWait = false
		c.setReadDeadline(time.Now().Add(c.s.srv.ReadHeaderTimeout))
	}
	return c.c.Read(p)
}

func (c *conn) setReadDeadline(t time.Time) {
	c.rdl = t
	c.c.SetReadDeadline(t)
}

// idleSlack is the share of the idle timeout by which an idle
// connection's deadline may drift later before it is moved: an idle
// connection closes between IdleTimeout and IdleTimeout*(1+1/16) after
// its last request.
const idleSlack = 16

// waitIdle sets the read deadline for the wait for the next request,
// unless the one set is within the slack.
func (c *conn) waitIdle() {
	wait := c.s.srv.IdleTimeout
	want := time.Now().Add(wait)
	if c.rdl.Before(want) || c.rdl.After(want.Add(wait/idleSlack)) {
		c.setReadDeadline(want.Add(wait / idleSlack))
	}
}

// write writes p whole to the client, within whatever write deadline the
// caller set.
func (c *conn) write(p []byte) error {
	_, err := c.c.Write(p)
	return err
}

// send writes p whole to the client within the response's deadline wdl.
func (c *conn) send(p []byte) error {
	if c.lp != nil {
		return c.lp.write(p) // an event loop never waits for a client
	}
	err := rawio.WriteBy(c.c, p, c.wdl)
	if err != nil && isTimeout(err) && !c.ended.Load() && time.Now().Before(c.wdl) {
		// A write deadline that another writer left (rawio.WriteBy sets
		// one per write where the connection is not raw: TLS, the AI
		// gateway's writes among them) had passed before anything was
		// written: this response has a deadline of its own.
		c.c.SetWriteDeadline(c.wdl)
		err = c.write(p)
		c.c.SetWriteDeadline(time.Time{})
	}
	return err
}

// end makes every read and write on the connection fail from now on, and
// on the target connection an upgrade spliced it to.
func (c *conn) end() {
	c.ended.Store(true)
	c.nc.SetDeadline(time.Unix(1, 0))
	if t := c.tunnel.Load(); t != nil {
		(*t).SetDeadline(time.Unix(1, 0))
	}
}

func (c *conn) serve() {
	if c.open() {
		c.serveH1(true)
	}
	c.done()
}

// open readies a new connection: its peer, its TLS session, and either
// serves HTTP/2 when ALPN chose it (and reports false) or readies
// HTTP/1.1.
func (c *conn) open() bool {
	c.setPeer()
	c.c = c.nc
	if c.s.tls != nil {
		tc := tls.Server(c.nc, c.s.tls)
		c.nc.SetDeadline(time.Now().Add(c.s.srv.ReadHeaderTimeout))
		if err := tc.Handshake(); err != nil {
			return false
		}
		c.nc.SetDeadline(time.Time{}) // each protocol sets its own from here
		c.c, c.tls = tc, true
		if tc.ConnectionState().NegotiatedProtocol == http2.NextProtoTLS {
			c.serveH2(tc)
			return false
		}
	} else {
		c.c = rawio.Wrap(c.nc)
	}
	c.setupH1()
	return true
}

// done ends the goroutine that serves c: it closes c, or, when c's last
// request is an AI stream the AI service handed off (ai.go, serveAI),
// starts the goroutine that relays the stream (relay).
func (c *conn) done() {
	if x := c.relaying; x != nil {
		c.relaying = nil
		x.ai.resume = func() { c.relay(x) }
		go c.relay(x)
		return
	}
	c.g.conns.remove(c)
	c.nc.Close()
}

// relay relays x's handed-off AI stream, then serves c from there. It
// runs on a goroutine of its own, with the frames of the one that served
// the request up to the first token gone; and where the stream waits
// for its provider with no goroutine (ai.Relay), it ends then, and a
// new one calls relay again once the stream goes on (TestAIStreamMemory).
func (c *conn) relay(x *exchange) {
	growStack()
	if c.g.relayAI(x) {
		c.serveFrom(func() bool { return c.respond(x) }, x)
	}
}

// relayStackFrame is the frame growStack takes: with the frames below it
// and the runtime's guard, a stack of 8 KiB.
const relayStackFrame = 6 << 10

// growStack grows a relaying goroutine's stack, at its start, to the size
// its stream's relay reaches: a goroutine starts on 2 KiB, and a relay
// grew it twice (reading an event, then decoding the last event's usage
// with encoding/json), each time copying the stack and adjusting each of
// its frames, about 4% of a stream's CPU; a stream that waits for its
// provider with no goroutine did that again at each of its events. Grown
// here, with two frames on it, the copy costs nearly nothing.
//
//go:noinline
func growStack() byte {
	var frame [relayStackFrame]byte
	return firstByte(&frame)
}

// firstByte keeps growStack's frame from being optimized away.
//
//go:noinline
func firstByte(b *[relayStackFrame]byte) byte { return b[0] }

// serveFrom serves c, on a goroutine of its own, from a request under
// way: rest serves it (x, when set) and reports whether the connection
// stays for another, which serveFrom then reads from the bytes already
// buffered on. It ends when the connection closes.
func (c *conn) serveFrom(rest func() bool, x *exchange) {
	if keep := rest(); c.relaying == nil {
		if x != nil {
			putExchange(x)
		}
		c.rd.Release()
		if keep {
			c.serveH1(false)
		}
	}
	c.done()
}

// setPeer takes the client's address from the connection.
func (c *conn) setPeer() {
	c.peerLen = 0
	if ta, ok := c.nc.RemoteAddr().(*net.TCPAddr); ok {
		a, _ := netip.AddrFromSlice(ta.IP)
		c.peer = a.Unmap()
		if n := len(c.peer.AppendTo(c.peerText[:0])); n <= len(c.peerText) {
			c.peerLen = uint8(n)
		}
	}
}

// appendAddr appends a as text: from the connection's peerText when a is
// its peer.
func (c *conn) appendAddr(b []byte, a netip.Addr) []byte {
	if c != nil && c.peerLen > 0 && a == c.peer {
		return append(b, c.peerText[:c.peerLen]...)
	}
	return a.AppendTo(b)
}

// setupH1 readies the connection for HTTP/1.1: its buffers.
func (c *conn) setupH1() {
	c.rd = h1.Reader{Src: c, Buf: readBuffer(), Max: c.s.lim.HeadBytes + 4096}
	c.wbuf = writeBuffer() // one an AI stream lent, if any (ai.go)
	c.flushFn = c.flushPending
}

// dropReadBuffer lets go of the connection's read buffer while a long
// answer (an AI stream) is written and nothing is to be read: the request
// was read whole and no byte follows it. The bytes of its head that x
// refers to for the rest of the exchange (the access log, the call
// record) are copied out first, each slice after the other (not the
// head whole: a stream whose route keeps no headers refers to its
// method and target only), and x's slices point at the copy; the next
// read makes a buffer anew (h1.Reader.Fill). It reports whether it let
// go: a slice of the body that it cannot move keeps the buffer.
func (c *conn) dropReadBuffer(x *exchange) bool {
	rd, r := &c.rd, &x.req
	if len(rd.Buf) == 0 || rd.R != rd.W || (r.src != nil && !r.bodyDone) {
		return false
	}
	n := rd.R // the head, and a body read whole
	if r.src != nil {
		n = rd.Low // the head ends where the body began (KeepHead)
	}
	old := rd.Buf
	base := uintptr(unsafe.Pointer(unsafe.SliceData(old)))
	// inHead says whether b lies in the read buffer; ok turns false for
	// one that lies there past the head.
	ok := true
	inHead := func(b []byte) bool {
		p := uintptr(unsafe.Pointer(unsafe.SliceData(b)))
		if b == nil || p < base || p >= base+uintptr(cap(old)) {
			return false
		}
		if int(p-base)+len(b) > n {
			ok = false
		}
		return true
	}
	others := [...]*[]byte{&r.method, &r.target, &r.path, &r.query, &r.host, &r.upgrade, &r.held, &r.pending}
	size := 0
	each := func(fn func(*[]byte)) {
		for i := range r.fields {
			fn(&r.fields[i].Name)
			fn(&r.fields[i].Value)
		}
		for _, b := range others {
			fn(b)
		}
	}
	each(func(b *[]byte) {
		if inHead(*b) {
			size += len(*b)
		}
	})
	if !ok {
		return false
	}
	keep := make([]byte, 0, size)
	each(func(b *[]byte) {
		if inHead(*b) {
			at := len(keep)
			keep = append(keep, *b...)
			*b = keep[at:len(keep):len(keep)]
		}
	})
	// What is not x's any more: the codec's parse of the head (its
	// fields array is lent, cleared, to the streams' pool, and the
	// stream's end takes one back: takeBuffers), and the slots past the
	// fields in use.
	clear(r.fields[len(r.fields):cap(r.fields)])
	lendFields(c.hreq.Headers)
	c.hreq.Headers, c.hreq.Method, c.hreq.Target = nil, nil, nil
	clear(c.body.Trailers[:cap(c.body.Trailers)])
	rd.Buf, rd.R, rd.W, rd.Low = nil, 0, 0, 0
	spareReadBufs.put(old)
	return true
}

// readBufferBytes is the size of a connection's read buffer to begin
// with (h1.Reader grows it up to the head limit when a head needs more).
const readBufferBytes = 4096

// readBuffer is a read buffer for a new connection, or for one whose
// AI stream ended after it let go of its own (takeBuffers).
func readBuffer() []byte {
	if b := spareReadBufs.get(); b != nil {
		return b
	}
	return make([]byte, readBufferBytes)
}

// spareReadBufs keeps the read buffers that connections let go of while
// their AI answers stream (dropReadBuffer), for the next that needs one:
// at 3,000 streams a second each made one anew for its next request, a
// fifth of what a stream allocated. It keeps a few only, so that the
// buffers of 10,000 waiting streams are the collector's, not its.
//
// Only dropReadBuffer puts buffers here, after it moved every slice the
// exchange keeps out of them: a slice it missed would show another
// connection's bytes. The gateway's tests have a buffer overwritten as it
// comes in (poison), so that such a slice shows garbage there instead.
var spareReadBufs = spareBuffers{size: readBufferBytes, keep: 64}

// spareBuffers is a bounded stack of byte buffers of one size.
type spareBuffers struct {
	size, keep int
	// poison has each buffer put overwritten with 0xAB (tests).
	poison bool
	mu     sync.Mutex
	bufs   [][]byte
}

// get returns a spare buffer of s.size bytes, or nil if none is kept.
func (s *spareBuffers) get() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := len(s.bufs)
	if n == 0 {
		return nil
	}
	b := s.bufs[n-1]
	s.bufs[n-1] = nil
	s.bufs = s.bufs[:n-1]
	return b
}

// put keeps b if it is of s.size bytes and fewer than s.keep are kept.
func (s *spareBuffers) put(b []byte) {
	if cap(b) != s.size {
		return
	}
	b = b[:s.size]
	if s.poison {
		for i := range b {
			b[i] = 0xAB
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.bufs) < s.keep {
		s.bufs = append(s.bufs, b)
	}
}

// h2Preface is what an HTTP/2 client with prior knowledge sends first.
const h2Preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

// serveH1 serves HTTP/1.1 requests one after another until the client
// or the gateway closes the connection; first says none was served yet
// (an event loop hands on connections that served some).
func (c *conn) serveH1(first bool) {
	for {
		// Wait for the next request: the first (its whole head) within the
		// head timeout, later ones within the idle timeout and the rest of
		// their heads, if they did not come whole, within the head
		// timeout; none once shutting down.
		if c.rd.R == c.rd.W {
			if !c.state.CompareAndSwap(connActive, connIdle) || c.g.conns.closing() {
				return
			}
			c.headWait = false
			if first {
				c.setReadDeadline(time.Now().Add(c.s.srv.ReadHeaderTimeout))
			} else {
				c.waitIdle()
			}
			err := c.rd.Fill()
			if !c.state.CompareAndSwap(connIdle, connActive) {
				return // the gateway closed it, idle
			}
			if err != nil {
				return // the client closed it, or sent nothing in time
			}
		}
		c.headWait = !first
		err := c.rd.ReadRequest(c.s.lim, &c.hreq)
		c.headWait = false // a body sets its own (connBody)
		if err != nil {
			if first && c.s.h2c && c.h2Preface() {
				return
			}
			if err == io.EOF || errors.Is(err, net.ErrClosed) {
				return
			}
			c.refuse(&c.hreq, err)
			return
		}
		first = false
		if !c.serveRequest() {
			return
		}
	}
}

// h2Preface reports, on a listener that allows h2c, whether the client
// sent HTTP/2's preface (prior knowledge), and serves HTTP/2 if it did.
func (c *conn) h2Preface() bool {
	for {
		b := c.rd.Buffered()
		n := min(len(b), len(h2Preface))
		if !bytes.Equal(b[:n], []byte(h2Preface[:n])) {
			return false
		}
		if n == len(h2Preface) {
			break
		}
		if c.rd.Fill() != nil {
			return false
		}
	}
	c.setReadDeadline(time.Time{})
	c.serveH2(&replayConn{Conn: c.c, pending: c.rd.Buffered()})
	return true
}

// replayConn reads what was already read from the connection first.
type replayConn struct {
	net.Conn
	pending []byte
}

func (r *replayConn) Read(p []byte) (int, error) {
	if len(r.pending) > 0 {
		n := copy(p, r.pending)
		r.pending = r.pending[n:]
		return n, nil
	}
	return r.Conn.Read(p)
}

func isTimeout(err error) bool { return errors.Is(err, os.ErrDeadlineExceeded) }

// serveRequest serves the request whose head c.hreq holds and reports
// whether the connection stays open for another.
func (c *conn) serveRequest() bool {
	g := c.g
	x := newExchange(g)
	c.intake(x)
	x.h1c = c
	g.serveExchange(x)
	keep := c.respond(x)
	if c.relaying != x {
		putExchange(x)
	}
	return keep
}

// respond writes x's answer, records the request and reports whether
// the connection stays open for another.
func (c *conn) respond(x *exchange) bool {
	g := c.g
	if x.ai != nil { // the AI gateway wrote its answer (ai.go)
		if x.ai.relay != nil {
			// Its stream goes on from the next goroutine (done).
			c.relaying = x
			return false
		}
		keep := x.ai.w.keep()
		g.finish(x)
		c.rd.Release()
		return keep
	}
	if x.upgraded != nil {
		c.writeResponse(x)
		g.finish(x)
		c.splice(x)
		return false
	}
	keep := c.writeResponse(x)
	g.finish(x)
	c.rd.Release()
	return keep
}

// intake fills x's request from the parsed head.
func (c *conn) intake(x *exchange) {
	h := &c.hreq
	r := &x.req
	r.method, r.target, r.minor = h.Method, h.Target, h.Minor
	r.closing, r.tls, r.peer, r.ctx = h.Close, c.tls, c.peer, context.Background()
	var connection [4][]byte
	nconn := 0
	for i := range h.Headers {
		if h1.EqualFold(h.Headers[i].Name, "Connection") && nconn < len(connection) {
			connection[nconn] = h.Headers[i].Value
			nconn++
		}
	}
	for _, f := range h.Headers {
		switch {
		case h1.EqualFold(f.Name, "Host"):
			r.host = f.Value
			continue
		case h1.EqualFold(f.Name, "Content-Length"):
			continue
		case h1.EqualFold(f.Name, "Expect"):
			r.expect = h1.EqualFold(f.Value, "100-continue") && h.Minor == 1
			continue
		case h1.EqualFold(f.Name, "Upgrade"):
			if h.Upgrade {
				r.upgrade = f.Value
			}
			continue
		case h1.HopByHop(f.Name), listed(connection[:nconn], f.Name):
			continue
		}
		r.fields = append(r.fields, f)
	}
	r.framing, r.length = h.Framing, h.ContentLength
	if h.Framing == h1.NoBody {
		r.length = 0
	}
	if h.Framing != h1.NoBody {
		c.body.Reset(&c.rd, h.Framing, h.ContentLength, c.s.lim)
		c.rd.KeepHead()
		r.src = (*connBody)(c)
		r.continuer = c
	}
}

// listed reports whether a Connection value lists name.
func listed(values [][]byte, name []byte) bool {
	for _, v := range values {
		for tok := range h1.Tokens(v) {
			if bytes.EqualFold(tok, name) {
				return true
			}
		}
	}
	return false
}

// connBody is the client's body, read within the head timeout per piece.
type connBody conn

func (b *connBody) Next() ([]byte, error) {
	c := (*conn)(b)
	if c.rd.R == c.rd.W && !c.body.Done() {
		c.headWait = true
	}
	return c.body.Next()
}

// sendContinue answers Expect: 100-continue before the body is read.
func (c *conn) sendContinue() {
	c.wdl = time.Now().Add(c.s.srv.WriteTimeout)
	c.send([]byte("HTTP/1.1 100 Continue\r\n\r\n"))
}

// refuse answers a request the HTTP layer could not read (its head
// malformed, too large or late) with the gateway's JSON rejection, and the
// connection closes: where the next request would start is unknown.
func (c *conn) refuse(h *h1.Request, err error) {
	g := c.g
	x := newExchange(g)
	defer putExchange(x)
	x.req.peer, x.req.tls, x.req.ctx = c.peer, c.tls, context.Background()
	x.req.closing = true
	if h != nil && len(h.Method) > 0 {
		x.req.method = h.Method
	}
	g.identify(x)
	status, reason, message := refusal(err)
	x.message = message
	g.reject(x, status, "server", reason, 0)
	x.resp.closing = true
	c.writeResponse(x)
	g.finish(x)
}

// refusal names the answer to an error reading a request.
func refusal(err error) (status int, reason, message string) {
	var he *h1.Error
	if !errors.As(err, &he) {
		if isTimeout(err) {
			return http.StatusRequestTimeout, ReasonRequestTimeout, "the request was not received in time"
		}
		return http.StatusBadRequest, ReasonInvalidRequest, "the request could not be read"
	}
	reason = ReasonInvalidRequest
	switch he.Kind {
	case h1.KindTarget:
		reason = ReasonInvalidTarget
	case h1.KindVersion:
		reason = ReasonUnsupportedVersion
	case h1.KindHeader:
		reason = ReasonInvalidHeader
	case h1.KindHost:
		reason = ReasonInvalidHost
	case h1.KindFraming:
		reason = ReasonInvalidFraming
	case h1.KindTooLarge:
		reason = ReasonHeadTooLarge
	}
	return he.Status, reason, he.Reason
}

// writeResponse writes x's response and reports whether the connection
// stays open. A body of known length goes as it is; one whose length is
// known only at its end goes chunked to an HTTP/1.1 client (the target's
// trailer fields after it) and until the connection closes to an
// HTTP/1.0 one, which cannot read chunks (RFC 9112, 6.3).
func (c *conn) writeResponse(x *exchange) bool {
	r, req := &x.resp, &x.req
	defer r.release()
	closing := r.closing || req.closing || c.g.conns.closing()
	if req.src != nil && !req.bodyDone {
		// The body was not read to its end, so where the next request
		// starts is unknown.
		closing = true
	}
	length := r.bodyLength()
	noBody := string(req.method) == "HEAD" || r.status == 204 || r.status == 304 || (r.status >= 100 && r.status < 200)
	chunked := false
	if length < 0 && !noBody {
		if req.minor == 1 {
			chunked = true
		} else {
			closing = true
		}
	}
	b := h1.AppendStatusLine(c.wbuf[:0], r.status)
	for i := range r.fields {
		b = h1.AppendField(b, r.fields[i].Name, r.fields[i].Value)
	}
	switch {
	case r.status == 101:
		b = append(b, "Connection: Upgrade\r\nUpgrade: "...)
		b = append(append(b, x.req.upgrade...), "\r\n"...)
		closing = false
	case r.status == 204 || (r.status >= 100 && r.status < 200):
	case noBody && r.up != nil:
		if r.lengthField >= 0 {
			b = h1.AppendContentLength(b, r.lengthField)
		}
	case chunked:
		b = append(b, "Transfer-Encoding: chunked\r\n"...)
	case length >= 0:
		b = h1.AppendContentLength(b, length)
	}
	switch {
	case closing && r.status != 101:
		b = append(b, "Connection: close\r\n"...)
	case req.minor == 0 && !closing:
		// An HTTP/1.0 client keeps its connection only when told so.
		b = append(b, "Connection: keep-alive\r\n"...)
	}
	b = append(b, "\r\n"...)
	// Yielding before the write lets the other connections whose answers
	// are in finish theirs too, so responses go out back to back, as an
	// event loop's do: a client waiting on another core is then woken
	// once for several writes rather than once each (each wake of an idle
	// core is an inter-processor interrupt, dear in a VM). With nothing
	// else runnable this returns at once. docs/benchmarks.md measures it.
	if c.lp == nil {
		// An event loop writes its answers back to back by itself, and
		// never waits to write (what does not fit goes on to a goroutine,
		// which sets its own deadline), so it reads no clock here.
		runtime.Gosched()
		c.wdl = time.Now().Add(c.s.srv.WriteTimeout)
	}
	var err error
	switch {
	case noBody:
		err = c.send(b)
	case r.up == nil:
		x.bytesOut = int64(len(r.body))
		if len(b)+len(r.body) <= cap(b) || len(r.body) < 4096 {
			b = append(b, r.body...)
			err = c.send(b)
		} else if err = c.send(b); err == nil {
			err = c.send(r.body)
		}
	default:
		err = c.passOn(x, b, chunked)
		return err == nil && !closing
	}
	c.wbuf = b[:0]
	return err == nil && !closing
}

// passOn writes the head in b and then the target's body as it arrives:
// what has arrived is gathered and written just before the next read from
// the target, which may wait, so the head goes with the first piece and
// the last piece with the body's end.
func (c *conn) passOn(x *exchange, b []byte, chunked bool) error {
	up := x.resp.up
	body := &up.Body
	rd := up.Conn().Reader()
	c.pend, c.pendErr = b, nil
	rd.BeforeRead = c.flushFn
	defer func() {
		rd.BeforeRead = nil
		c.wbuf = c.pend[:0]
	}()
	for {
		p, err := body.Next()
		if c.pendErr != nil {
			return c.pendErr
		}
		if err == io.EOF {
			if chunked {
				c.pend = h1.AppendLastChunk(c.pend, trailers(body.Trailers))
			}
			c.flushPending()
			return c.pendErr
		}
		if err != nil {
			// The target failed mid-body: the client must not take what
			// it got for the whole, so the connection ends without the
			// body's end.
			c.flushPending()
			return err
		}
		x.bytesOut += int64(len(p))
		x.tapResponse(p)
		if chunked {
			c.pend = h1.AppendChunkSize(c.pend, len(p))
		}
		if len(c.pend)+len(p) > cap(c.pend) {
			c.flushPending()
			if c.pendErr == nil {
				c.pendErr = c.send(p)
			}
		} else {
			c.pend = append(c.pend, p...)
		}
		if chunked {
			c.pend = append(c.pend, "\r\n"...)
		}
	}
}

// flushPending writes what passOn gathered.
func (c *conn) flushPending() {
	if len(c.pend) > 0 && c.pendErr == nil {
		c.pendErr = c.send(c.pend)
	}
	c.pend = c.pend[:0]
}

// trailers drops from a target's trailer section the fields that may not
// be trailers (framing, routing, hop-by-hop), in place.
func trailers(fields []h1.Header) []h1.Header {
	out := fields[:0]
	for _, f := range fields {
		if h1.HopByHop(f.Name) || h1.EqualFold(f.Name, "Content-Length") || h1.EqualFold(f.Name, "Host") {
			continue
		}
		out = append(out, f)
	}
	return out
}

// connSet tracks the connections being served, for shutdown.
type connSet struct {
	mu      sync.Mutex
	m       map[*conn]struct{}
	ending  atomic.Bool
	emptied chan struct{} // closed when the last connection goes while a drain waits
}

func (s *connSet) closing() bool { return s.ending.Load() }

// add tracks c; false once shutting down.
func (s *connSet) add(c *conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ending.Load() {
		return false
	}
	if s.m == nil {
		s.m = make(map[*conn]struct{})
	}
	s.m[c] = struct{}{}
	return true
}

func (s *connSet) remove(c *conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.m, c)
	if len(s.m) == 0 && s.emptied != nil {
		close(s.emptied)
		s.emptied = nil
	}
}

// drain stops new connections, closes the idle ones, and waits for the
// others to finish until ctx ends; then it ends those left and waits for
// them to go.
func (s *connSet) drain(ctx context.Context, endUpstream, wakeLoops func()) {
	s.mu.Lock()
	s.ending.Store(true)
	for c := range s.m {
		if c.state.CompareAndSwap(connIdle, connClosed) {
			c.end()
		}
	}
	if len(s.m) == 0 {
		s.mu.Unlock()
		wakeLoops() // to stop
		return
	}
	if s.emptied == nil {
		s.emptied = make(chan struct{})
	}
	emptied := s.emptied
	s.mu.Unlock()
	wakeLoops() // their idle connections close now, not at the next sweep
	select {
	case <-emptied:
		return
	case <-ctx.Done():
	}
	s.mu.Lock()
	for c := range s.m {
		c.end()
	}
	s.mu.Unlock()
	wakeLoops()
	endUpstream()
	<-emptied
}
