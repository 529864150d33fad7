package gateway

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"syscall"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/relia-dev/relia/internal/rawio"
	"github.com/relia-dev/relia/resilience"
)

// The gateway talks HTTP/1.1 to its targets over connections of its own
// rather than through fasthttp.HostClient, for two reasons measured on the
// hot path. HostClient's StreamResponseBody, which the gateway needs so
// that server-sent events and other responses without a length pass
// through unbuffered, allocates three objects for every response, even
// one of known length read whole; and HostClient cannot abort a request in
// flight, which a hedge's losing attempt must be. Here a response of known
// length is read into the (pooled) fasthttp.Response, allocating nothing,
// and only one without a length is handed on as a stream that owns the
// connection until the client has it all. fasthttp still parses and
// writes every message.

// upstreamConn is a kept-alive connection to a target.
type upstreamConn struct {
	c  net.Conn
	br *bufio.Reader
	bw *bufio.Writer
}

// Buffer sizes of upstream connections: responses' headers must fit in
// the reader's, as fasthttp.HostClient's ReadBufferSize had it.
const (
	upstreamReadBuffer  = 16 << 10
	upstreamWriteBuffer = 4 << 10
)

// maxIdleConns bounds the idle connections a target keeps.
const maxIdleConns = 256

// errStaleConn marks a failure on a kept connection that the target had
// closed before the request reached it; the request is sent again on a
// new one.
var errStaleConn = errors.New("kept-alive connection closed by the target")

// errConnectionsExhausted is the sentinel of the rejection an attempt gets
// when every connection the gateway may open to a target stayed busy
// until the attempt's deadline: the gateway's own limit, which says
// nothing about the target's health, so breakers and outlier detection
// ignore it (it matches resilience.ErrRejected).
var errConnectionsExhausted = errors.New("every connection to the target is busy")

// acquire returns an idle connection, unless fresh is set, or dials one
// within the connect timeout and the request's deadline; reused says
// which. With maxConns open it waits, until the deadline, for one to be
// released or closed: a burst (a cold start, a client opening thousands
// of connections) queues for the target's connections instead of failing.
func (t *target) acquire(ctx context.Context, deadline time.Time, fresh bool) (uc *upstreamConn, reused bool, err error) {
	idle := t.idle
	if fresh {
		idle = nil // a nil channel is never ready
	}
	// Kept connections first, then a new one, then the wait (a select
	// with several ready cases picks at random).
	select {
	case uc := <-idle:
		return uc, true, nil
	default:
	}
	select {
	case t.slots <- struct{}{}:
	default:
		wait := deadline.Sub(t.clock.Now())
		if wait <= 0 {
			return nil, false, t.connectionsExhausted()
		}
		t.waiting.Add(1)
		defer t.waiting.Add(-1)
		timer := t.clock.NewTimer(wait)
		defer timer.Stop()
		select {
		case uc := <-idle:
			return uc, true, nil
		case t.slots <- struct{}{}:
		case <-timer.C():
			return nil, false, t.connectionsExhausted()
		case <-ctx.Done():
			return nil, false, ctx.Err()
		}
	}
	d := net.Dialer{Timeout: t.dialTimeout, Deadline: deadline}
	c, err := d.DialContext(ctx, "tcp", t.addr)
	if err != nil {
		<-t.slots
		return nil, false, err
	}
	c = rawio.Wrap(c) // raw syscalls: internal/rawio says why
	return &upstreamConn{c: c, br: bufio.NewReaderSize(c, upstreamReadBuffer), bw: bufio.NewWriterSize(c, upstreamWriteBuffer)}, false, nil
}

func (t *target) connectionsExhausted() error {
	return &resilience.RejectedError{Policy: "upstream", Name: t.addr, Reason: ReasonConnectionsExhausted, Sentinel: errConnectionsExhausted}
}

// release keeps uc for the next request, or closes it when enough are
// kept already.
func (t *target) release(uc *upstreamConn) {
	select {
	case t.idle <- uc:
	default:
		t.discard(uc)
	}
}

// discard closes uc and frees its place for a new connection.
func (t *target) discard(uc *upstreamConn) {
	uc.c.Close()
	<-t.slots
}

// closeIdle closes the target's idle connections (on reload, when its
// pool is replaced, and at shutdown); those in use close when their
// requests end.
func (t *target) closeIdle() {
	for {
		select {
		case uc := <-t.idle:
			t.discard(uc)
		default:
			return
		}
	}
}

// do sends req to the target and reads its answer into resp before
// deadline. A response of known length up to streamAbove is read whole;
// with stream set, any other (larger, chunked, or ending with the
// connection) becomes resp's body stream, which keeps the connection until
// it is closed. Cancelling ctx aborts the exchange; a context that cannot
// be cancelled costs nothing. A kept connection the target had closed is
// replaced once, by a new one: the other kept ones are likely closed too
// (the target restarted), and are dropped.
func (t *target) do(ctx context.Context, req *fasthttp.Request, resp *fasthttp.Response, deadline time.Time, stream bool) error {
	for try := 0; ; try++ {
		uc, reused, err := t.acquire(ctx, deadline, try > 0)
		if err != nil {
			return err
		}
		after, err := t.exchange(ctx, uc, req, resp, deadline, stream, reused)
		switch {
		case err == nil:
			switch after {
			case connKeep:
				t.release(uc)
			case connClose:
				t.discard(uc)
			}
			return nil
		case errors.Is(err, errStaleConn) && try == 0:
			t.discard(uc)
			t.closeIdle()
			resp.Reset()
			continue
		}
		t.discard(uc)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return err
	}
}

// What becomes of a connection after an exchange.
const (
	connKeep   = iota // it may serve the next request
	connClose         // it must be closed
	connStream        // the response's body stream owns it
)

// exchange writes req on uc and reads the response.
func (t *target) exchange(ctx context.Context, uc *upstreamConn, req *fasthttp.Request, resp *fasthttp.Response, deadline time.Time, stream, reused bool) (after int, err error) {
	uc.c.SetDeadline(deadline)
	if ctx.Done() != nil {
		stop := context.AfterFunc(ctx, func() { uc.c.SetDeadline(time.Unix(1, 0)) })
		defer stop()
	}
	if len(req.Header.Host()) == 0 {
		// An HTTP/1.0 client may send no Host. The target is then named by
		// its address, as nginx's proxy_pass names it; a retry to another
		// target names that one.
		req.Header.SetHost(t.addr)
		defer req.Header.SetHost("")
	}
	if h := &req.Header; !h.IsHTTP11() || h.ConnectionClose() {
		// Upstream connections are the gateway's own: every request goes
		// up as HTTP/1.1 and leaves its connection open, whatever the
		// client's version or Connection options, as nginx does with
		// proxy_http_version 1.1. Otherwise each HTTP/1.0 or closing client
		// would cost a fresh upstream connect. The client's own connection
		// is kept or closed by the server, which read the client's choice
		// before the handler ran; the request is put back as it came.
		var saved [16]byte
		proto := append(saved[:0], h.Protocol()...)
		closing := h.ConnectionClose()
		h.ResetConnectionClose()
		h.SetProtocolBytes(http11)
		defer func() {
			h.SetProtocolBytes(proto)
			if closing {
				h.SetConnectionClose()
			}
		}()
	}
	if err := req.Write(uc.bw); err != nil {
		return connClose, staleIf(reused, err)
	}
	if err := uc.bw.Flush(); err != nil {
		return connClose, staleIf(reused, err)
	}
	resp.Reset()
	resp.SkipBody = req.Header.IsHead()
	if err := readResponseHead(uc.br, &resp.Header); err != nil {
		return connClose, staleIf(reused && uc.br.Buffered() == 0, err)
	}
	// Interim responses (100 Continue, 102, 103 Early Hints) precede the
	// final one and are dropped: the client gets the final response, which
	// is what it waits for. 101 ends the exchange; upgrade.go handles it.
	for code := resp.Header.StatusCode(); code >= 100 && code < 200 && code != fasthttp.StatusSwitchingProtocols; code = resp.Header.StatusCode() {
		if err := readResponseHead(uc.br, &resp.Header); err != nil {
			return connClose, err
		}
	}
	status := resp.StatusCode()
	keep := !resp.ConnectionClose()
	after = connClose
	if keep {
		after = connKeep
	}
	if cl := resp.Header.ContentLength(); status == fasthttp.StatusNoContent && (cl > 0 || cl == -1) {
		// A 204 has no body whatever its head says (RFC 9110, 15.3.5).
		// Bytes the target sent as one would be read as the next
		// response, so the connection is not kept; and the client gets
		// no Content-Length, which a 204 must not carry.
		resp.Header.Del(fasthttp.HeaderContentLength)
		after = connClose
	}
	if resp.SkipBody || status < 200 || status == fasthttp.StatusNoContent || status == fasthttp.StatusNotModified {
		return after, nil
	}
	cl := resp.Header.ContentLength()
	if (cl >= 0 && cl <= streamAbove) || !stream {
		// A known length small enough to hold, or a caller that wants
		// the body whole.
		if err := resp.ReadBody(uc.br, 0); err != nil {
			return connClose, err
		}
		if cl < 0 {
			if cl == -1 {
				if err := resp.Header.ReadTrailer(uc.br); err != nil && err != io.EOF {
					return connClose, err
				}
			} else {
				after = connClose // the body ended with the connection
			}
			resp.Header.SetContentLength(len(resp.Body()))
		}
		return after, nil
	}
	bs := bodyStreamPool.Get().(*bodyStream)
	*bs = bodyStream{t: t, uc: uc, chunked: cl == -1, keep: keep && cl != -2, next: -1, left: int64(cl)}
	t.streams.add(bs)
	if cl >= 0 {
		resp.SetBodyStream(bs, cl)
	} else {
		resp.SetBodyStream(bs, -1)
	}
	return connStream, nil
}

// http11 is the version every request goes upstream with.
var http11 = []byte("HTTP/1.1")

// streamAbove is the largest body of known length read whole; a larger
// one is passed on as it arrives, so that a download does not sit in the
// gateway's memory.
const streamAbove = 1 << 20

// staleIf marks err as a stale connection's when the connection was a
// kept one and the failure says the target had closed it.
func staleIf(reused bool, err error) error {
	if reused && (errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)) {
		return errStaleConn
	}
	return err
}

// bodyStream is the body of an upstream response passed on as it
// arrives: one of a large known length, one with the chunked coding
// removed, or one read until the target closes. It owns the connection until Close, which keeps it for
// another request when the body was read to its end.
type bodyStream struct {
	t       *target
	uc      *upstreamConn
	chunked bool
	keep    bool  // the connection may be kept once the body is read
	next    int64 // bytes left in the current chunk; -1 before a size line
	left    int64 // bytes left of a body of known length; negative without one
	done    bool
	err     error
}

var bodyStreamPool = sync.Pool{New: func() any { return new(bodyStream) }}

var errBadChunk = errors.New("malformed chunked encoding from upstream")

func (s *bodyStream) Read(p []byte) (int, error) {
	if s.err != nil {
		return 0, s.err
	}
	if s.done {
		return 0, io.EOF
	}
	br := s.uc.br
	if s.left >= 0 {
		if s.left == 0 {
			s.done = true
			return 0, io.EOF
		}
		n, err := s.readAtMost(p, &s.left)
		s.done = err == nil && s.left == 0
		return n, err
	}
	if !s.chunked {
		n, err := br.Read(p)
		if err == io.EOF {
			s.done = true
		} else if err != nil {
			s.err = err
		}
		return n, err
	}
	if s.next == 0 {
		// The CRLF that ends a chunk's data.
		if err := expectCRLF(br); err != nil {
			s.err = err
			return 0, err
		}
		s.next = -1
	}
	if s.next < 0 {
		size, err := readChunkSize(br)
		if err != nil {
			s.err = err
			return 0, err
		}
		if size == 0 {
			// The last chunk: skip the trailer section to its empty line.
			for {
				line, err := br.ReadSlice('\n')
				if err != nil {
					s.err = err
					return 0, err
				}
				if len(line) <= 2 {
					break
				}
			}
			s.done = true
			return 0, io.EOF
		}
		s.next = size
	}
	return s.readAtMost(p, &s.next)
}

// readAtMost reads at most *left bytes of a body whose length is known
// (the body's, or the current chunk's) and counts them off; the stream
// ending before them is an error the stream keeps.
func (s *bodyStream) readAtMost(p []byte, left *int64) (int, error) {
	if int64(len(p)) > *left {
		p = p[:*left]
	}
	n, err := s.uc.br.Read(p)
	*left -= int64(n)
	if err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		s.err = err
	}
	return n, err
}

// Close gives the connection back, kept when the body was read to its
// end, and the stream to its pool.
func (s *bodyStream) Close() error {
	if s.uc == nil {
		return nil
	}
	// Unlisted before the connection is handed on, so endAll never
	// touches one that serves another request.
	s.t.streams.remove(s)
	if s.done && s.keep {
		s.t.release(s.uc)
	} else {
		s.t.discard(s.uc)
	}
	*s = bodyStream{}
	bodyStreamPool.Put(s)
	return nil
}

func expectCRLF(br *bufio.Reader) error {
	c, err := br.ReadByte()
	if err == nil && c == '\r' {
		c, err = br.ReadByte()
	}
	if err != nil {
		return err
	}
	if c != '\n' {
		return errBadChunk
	}
	return nil
}

// readChunkSize reads a chunk-size line, ignoring chunk extensions.
func readChunkSize(br *bufio.Reader) (int64, error) {
	line, err := br.ReadSlice('\n')
	if err != nil {
		return 0, err
	}
	var n int64
	digits := 0
	for _, c := range line {
		var d byte
		switch {
		case c >= '0' && c <= '9':
			d = c - '0'
		case c >= 'a' && c <= 'f':
			d = c - 'a' + 10
		case c >= 'A' && c <= 'F':
			d = c - 'A' + 10
		default:
			if digits == 0 || (c != ';' && c != '\r' && c != '\n' && c != ' ' && c != '\t') {
				return 0, errBadChunk
			}
			return n, nil
		}
		if digits++; digits > 15 {
			return 0, errBadChunk
		}
		n = n<<4 | int64(d)
	}
	return 0, errBadChunk
}

// openStreams lists the response bodies being passed on as they arrive,
// each owning its upstream connection until closed, across every target
// of every config generation: what Shutdown past its deadline must
// interrupt. A nil list lists nothing.
type openStreams struct {
	mu sync.Mutex
	m  map[*bodyStream]struct{}
}

func (o *openStreams) add(s *bodyStream) {
	if o == nil {
		return
	}
	o.mu.Lock()
	if o.m == nil {
		o.m = make(map[*bodyStream]struct{})
	}
	o.m[s] = struct{}{}
	o.mu.Unlock()
}

func (o *openStreams) remove(s *bodyStream) {
	if o == nil {
		return
	}
	o.mu.Lock()
	delete(o.m, s)
	o.mu.Unlock()
}

// endAll makes every listed body fail its next read: its client is being
// ended, and the read could otherwise wait for the route's timeout. A
// connection whose body ended meanwhile is unharmed, since the next
// exchange on it sets its own deadline.
func (o *openStreams) endAll() {
	o.mu.Lock()
	defer o.mu.Unlock()
	for s := range o.m {
		s.uc.c.SetReadDeadline(time.Unix(1, 0))
	}
}
