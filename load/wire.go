package load

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/relia-dev/relia/internal/h1"
	"github.com/relia-dev/relia/internal/rawio"
	"github.com/relia-dev/relia/outcome"
)

// wireTransport is HTTP/1.1 over plain TCP, written and parsed by relia
// itself: the request is rendered into one buffer and written with one
// syscall, the response read straight into a pooled buffer and parsed for
// what a load test needs (status, framing, the body when a check or an
// extraction reads it). Compared with a general client it skips header
// maps, URI objects, per-request deadlines in each direction and most
// clock reads, which is most of the client's own CPU per request
// (docs/benchmarks.md). https URLs take the same path over crypto/tls:
// responses are read by relia's codec (internal/h1) either way.
type wireTransport struct {
	timeout  time.Duration
	maxBody  int
	maxConns int
	// staleAfter is how long a connection may sit idle before it is
	// probed for a close from the server before reuse.
	staleAfter time.Duration
	dialer     net.Dialer
	tlsConf    *tls.Config

	mu       sync.Mutex
	hosts    map[string]*hostPool
	tlsHosts map[string]*hostPool
	closed   atomic.Bool
}

// hostPool holds one host's connections: idle ones in a channel (a
// lock-free hand-off between the workers that share them), and a count of
// all open ones bounded by maxConns.
type hostPool struct {
	t    *wireTransport
	addr string      // host:port to dial
	tls  *tls.Config // nil: plain TCP
	idle chan *wireConn
	open atomic.Int64
}

type wireConn struct {
	nc     net.Conn
	raw    *rawio.Conn // nil off Linux
	readFn func([]byte) (int, error)
	usedAt time.Time
}

func (c *wireConn) write(p []byte) error {
	if c.raw != nil {
		return c.raw.Write(p)
	}
	_, err := c.nc.Write(p)
	return err
}

func (c *wireConn) read(p []byte) (int, error) {
	if c.raw != nil {
		return c.raw.Read(p)
	}
	return c.nc.Read(p)
}

// bodyReadBytes is the piece size for bodies larger than the session's
// first 4 KiB buffer.
const bodyReadBytes = 64 << 10

// Response heads larger than this are refused (nginx's largest default
// header buffers are 4 x 8 KiB; 64 KiB leaves room).
const maxResponseHead = 64 << 10

func newWireTransport(o ClientOptions, maxConns int, tlsConf *tls.Config) *wireTransport {
	return &wireTransport{
		timeout:    o.Timeout,
		maxBody:    o.MaxBodyBytes,
		maxConns:   maxConns,
		staleAfter: time.Second,
		dialer:     net.Dialer{KeepAlive: -1},
		tlsConf:    tlsConf,
		hosts:      map[string]*hostPool{},
		tlsHosts:   map[string]*hostPool{},
	}
}

func (t *wireTransport) session() session {
	return &wireSession{t: t, rr: newRespReader(4<<10, maxResponseHead)}
}

func (t *wireTransport) close() {
	t.closed.Store(true)
	t.mu.Lock()
	hosts, tlsHosts := t.hosts, t.tlsHosts
	t.hosts, t.tlsHosts = map[string]*hostPool{}, map[string]*hostPool{}
	t.mu.Unlock()
	for _, p := range hosts {
		p.drain()
	}
	for _, p := range tlsHosts {
		p.drain()
	}
}

// pool returns the pool of connections to addr, over TLS when secure.
func (t *wireTransport) pool(addr []byte, secure bool) *hostPool {
	t.mu.Lock()
	defer t.mu.Unlock()
	hosts := t.hosts
	if secure {
		hosts = t.tlsHosts
	}
	p := hosts[string(addr)] // no allocation for the lookup
	if p == nil {
		p = &hostPool{t: t, addr: string(addr), idle: make(chan *wireConn, t.maxConns)}
		if secure {
			p.tls = t.tlsConf.Clone()
			if host, _, err := net.SplitHostPort(p.addr); err == nil {
				p.tls.ServerName = host
			}
			p.tls.NextProtos = []string{"http/1.1"}
		}
		hosts[p.addr] = p
	}
	return p
}

// get returns a connection: an idle one that is still open, a new one
// while fewer than maxConns are open, or the first one another worker
// releases before the deadline. It sets ph's Blocked (the wait for
// another worker's connection), Connecting and TLSHandshaking, measured
// from start; an idle connection at hand costs no clock read.
func (p *hostPool) get(start, deadline time.Time, probe []byte, ph *Phases) (*wireConn, error) {
	now := start
	for {
		select {
		case c := <-p.idle:
			if p.usable(c, now, probe) {
				return c, nil
			}
			p.discard(c)
			continue
		default:
		}
		if p.open.Add(1) <= int64(p.t.maxConns) {
			c, err := p.dial(start, deadline, ph)
			if err != nil {
				p.open.Add(-1)
				return nil, err
			}
			return c, nil
		}
		p.open.Add(-1)
		wait := time.NewTimer(deadline.Sub(now))
		select {
		case c := <-p.idle:
			wait.Stop()
			now = time.Now()
			ph.Blocked = now.Sub(start)
			if p.usable(c, now, probe) {
				return c, nil
			}
			p.discard(c)
		case <-wait.C:
			ph.Blocked = time.Since(start)
			return nil, fmt.Errorf("%w: all %d connections to %s stayed busy", errNoConn, p.t.maxConns, p.addr)
		}
	}
}

// usable reports whether an idle connection can carry a request. One that
// sat idle past staleAfter is read once without waiting: a server that
// closed it (a keep-alive timeout) has sent a FIN, and reusing it would
// fail the request for the client's sake, not the server's.
func (p *hostPool) usable(c *wireConn, now time.Time, probe []byte) bool {
	if c.raw == nil || now.Sub(c.usedAt) < p.t.staleAfter {
		return true
	}
	_, ready, _ := c.raw.TryRead(probe)
	return !ready // anything there, data, end or error, makes it unusable
}

// dial opens a connection, setting ph's Connecting and TLSHandshaking;
// start is when the request began, Blocked the part of it spent waiting.
func (p *hostPool) dial(start, deadline time.Time, ph *Phases) (*wireConn, error) {
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	nc, err := p.t.dialer.DialContext(ctx, "tcp", p.addr)
	ph.Connecting = time.Since(start) - ph.Blocked
	if err != nil {
		return nil, err
	}
	if p.tls != nil {
		tc := tls.Client(nc, p.tls)
		err := tc.HandshakeContext(ctx)
		ph.TLSHandshaking = time.Since(start) - ph.Blocked - ph.Connecting
		if err != nil {
			nc.Close()
			return nil, err
		}
		c := &wireConn{nc: tc}
		c.readFn = c.read
		return c, nil
	}
	c := &wireConn{nc: nc, raw: rawio.New(nc)}
	c.readFn = c.read // made once: a method value per request would allocate
	return c, nil
}

func (p *hostPool) put(c *wireConn, now time.Time) {
	c.usedAt = now
	select {
	case p.idle <- c:
		if p.t.closed.Load() {
			p.drain() // closed meanwhile: close sees the pool gone from hosts
		}
	default:
		p.discard(c)
	}
}

func (p *hostPool) discard(c *wireConn) {
	c.nc.Close()
	p.open.Add(-1)
}

func (p *hostPool) drain() {
	for {
		select {
		case c := <-p.idle:
			p.discard(c)
		default:
			return
		}
	}
}

// wireSession is one worker's handle: its request buffer and response
// reader are reused from request to request.
type wireSession struct {
	t     *wireTransport
	last  *hostPool // the pool of the previous request: nearly always this one
	wbuf  []byte
	rr    respReader
	probe [1]byte
}

func (s *wireSession) do(r *wireRequest, keepBody bool, rep *wireReply) error {
	u, err := splitURL(r.url)
	if err != nil {
		return err
	}
	s.wbuf, err = appendRequest(s.wbuf[:0], r, u)
	if err != nil {
		return err
	}
	rep.bytesOut, rep.bytesIn, rep.status = int64(len(s.wbuf)), 0, 0
	rep.body = rep.body[:0]
	ph := &rep.phases
	*ph = Phases{}

	// The phases are durations since start, each read from the monotonic
	// clock alone (time.Since): three reads for a request on a kept-alive
	// connection, after write, at the first byte and at the end.
	start := time.Now()
	deadline := start.Add(s.t.timeout)
	pool := s.last
	if pool == nil || string(u.addr) != pool.addr || u.https != (pool.tls != nil) {
		pool = s.t.pool(u.addr, u.https)
		s.last = pool
	}
	c, err := pool.get(start, deadline, s.probe[:], ph)
	if err != nil {
		return wireError(err)
	}
	got := ph.Blocked + ph.Connecting + ph.TLSHandshaking
	// One deadline for both directions: a single timer update.
	if err := c.nc.SetDeadline(deadline); err != nil {
		pool.discard(c)
		return err
	}
	err = c.write(s.wbuf)
	wrote := time.Since(start)
	ph.Sending = wrote - got
	if err != nil {
		pool.discard(c)
		return wireError(err)
	}
	s.rr.reset(c.readFn, start)
	var body *[]byte
	if keepBody {
		body = &rep.body
	}
	s.rr.heads = rep.heads
	status, keepAlive, err := s.rr.response(r.method == "HEAD", body, s.t.maxBody)
	end := time.Since(start)
	if s.rr.first > 0 {
		ph.Waiting, ph.Receiving = s.rr.first-wrote, end-s.rr.first
	} else {
		ph.Waiting = end - wrote
	}
	rep.bytesIn = s.rr.n
	if err != nil {
		pool.discard(c)
		if errors.Is(err, errClosedBeforeResponse) {
			return fmt.Errorf("%w: %w", errConnReset, err)
		}
		return wireError(err)
	}
	rep.status = status
	if keepAlive && s.rr.buffered() == 0 {
		pool.put(c, start)
	} else {
		pool.discard(c)
	}
	return nil
}

// wireError marks deadline errors as timeouts for outcome classification.
func wireError(err error) error {
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return fmt.Errorf("%w: %w", context.DeadlineExceeded, err)
	}
	return err
}

// urlParts are the pieces of an absolute http URL a request needs.
type urlParts struct {
	https    bool
	addr     []byte // host:port to dial
	host     []byte // the Host header: the authority as written, less userinfo
	userinfo []byte
	target   []byte // path and query; "/" when the URL has none
}

// splitURL splits an absolute URL without allocating.
func splitURL(url []byte) (urlParts, error) {
	var u urlParts
	rest, ok := bytes.CutPrefix(url, []byte("http://"))
	if !ok {
		if rest, ok = bytes.CutPrefix(url, []byte("https://")); !ok {
			return u, fmt.Errorf("url %q: want an absolute http:// or https:// URL", url)
		}
		u.https = true
	}
	end := bytes.IndexAny(rest, "/?#")
	if end < 0 {
		end = len(rest)
	}
	authority := rest[:end]
	u.target = rest[end:]
	if i := bytes.IndexByte(u.target, '#'); i >= 0 {
		u.target = u.target[:i]
	}
	if i := bytes.LastIndexByte(authority, '@'); i >= 0 {
		u.userinfo, authority = authority[:i], authority[i+1:]
	}
	if len(authority) == 0 {
		return u, fmt.Errorf("url %q: no host", url)
	}
	u.host = authority
	u.addr = authority
	closeBracket := bytes.LastIndexByte(authority, ']')
	if colon := bytes.LastIndexByte(authority, ':'); colon < 0 || colon < closeBracket {
		port := ":80"
		if u.https {
			port = ":443"
		}
		// Rare (a URL without a port): this allocates.
		u.addr = append(append([]byte(nil), authority...), port...)
	}
	for _, c := range u.target {
		if c <= ' ' || c == 0x7f {
			return u, fmt.Errorf("url %q: the path holds a space or control character; percent-encode it", url)
		}
	}
	return u, nil
}

// appendRequest renders r as an HTTP/1.1 request.
func appendRequest(b []byte, r *wireRequest, u urlParts) ([]byte, error) {
	b = append(b, r.method...)
	b = append(b, ' ')
	if len(u.target) == 0 || u.target[0] != '/' {
		b = append(b, '/')
	}
	b = append(b, u.target...)
	b = append(b, " HTTP/1.1\r\n"...)
	var hasHost, hasAgent, hasAuth bool
	for _, h := range r.headers {
		if bytes.IndexAny(h.key, "\r\n: ") >= 0 || len(h.key) == 0 || bytes.IndexAny(h.value, "\r\n") >= 0 {
			return b, fmt.Errorf("header %q: a name must be a non-empty token and a value must not hold a line break", h.key)
		}
		switch {
		case asciiEqualFold(h.key, "Content-Length"), asciiEqualFold(h.key, "Transfer-Encoding"):
			continue // the body's length is relia's to write
		case asciiEqualFold(h.key, "Host"):
			hasHost = true
		case asciiEqualFold(h.key, "User-Agent"):
			hasAgent = true
		case asciiEqualFold(h.key, "Authorization"):
			hasAuth = true
		}
		b = append(b, h.key...)
		b = append(b, ": "...)
		b = append(b, h.value...)
		b = append(b, "\r\n"...)
	}
	if !hasHost {
		b = append(b, "Host: "...)
		b = append(b, u.host...)
		b = append(b, "\r\n"...)
	}
	if !hasAgent {
		b = append(b, "User-Agent: relia\r\n"...)
	}
	if !hasAuth && len(u.userinfo) > 0 {
		b = append(b, "Authorization: Basic "...)
		b = base64.StdEncoding.AppendEncode(b, u.userinfo)
		b = append(b, "\r\n"...)
	}
	if len(r.body) > 0 || r.method == "POST" || r.method == "PUT" || r.method == "PATCH" {
		b = append(b, "Content-Length: "...)
		b = strconv.AppendInt(b, int64(len(r.body)), 10)
		b = append(b, "\r\n"...)
	}
	b = append(b, "\r\n"...)
	return append(b, r.body...), nil
}

func asciiEqualFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range b {
		x, y := b[i], s[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

var errClosedBeforeResponse = errors.New("connection closed before a response")

// respReader reads HTTP/1.1 responses from a byte stream with relia's
// codec (internal/h1): the head, then the body by Content-Length, chunks,
// or the end of the stream, counting the bytes it reads.
type respReader struct {
	rd   h1.Reader
	resp h1.Response
	body h1.Body
	lim  h1.Limits
	src  func([]byte) (int, error)
	n    int64 // bytes read for the current response
	// base is when the request began; first is when the response's first
	// byte arrived, since base (0 until then).
	base  time.Time
	first time.Duration
	// heads, when set, gets the final response's Set-Cookie and Location
	// fields, copied before the body's bytes may reuse the buffer.
	heads *respHeads
}

// newRespReader returns a reader that starts with a buffer of size bytes
// and refuses heads larger than limit.
func newRespReader(size, limit int) respReader {
	return respReader{rd: h1.Reader{Buf: make([]byte, size), Max: max(limit, bodyReadBytes)}, lim: h1.Limits{HeadBytes: limit, Headers: 256}}
}

// Read reads from the source, counting, and notes when the first byte
// came.
func (rr *respReader) Read(p []byte) (int, error) {
	n, err := rr.src(p)
	if rr.n == 0 && n > 0 {
		rr.first = max(time.Since(rr.base), 1)
	}
	rr.n += int64(n)
	return n, err
}

// reset starts a response to the request that began at base.
func (rr *respReader) reset(src func([]byte) (int, error), base time.Time) {
	rr.src, rr.n, rr.base, rr.first = src, 0, base, 0
	rr.rd.Reset(rr)
}

func (rr *respReader) buffered() int { return len(rr.rd.Buffered()) }

// response reads one response: interim (1xx) responses are skipped, the
// body is appended to body (when not nil) up to maxBody bytes (0: all)
// and the rest read and dropped. keepAlive reports whether the
// connection may carry another request.
func (rr *respReader) response(head bool, body *[]byte, maxBody int) (status int, keepAlive bool, err error) {
	for {
		if err := rr.rd.ReadResponse(rr.lim, head, &rr.resp); err != nil {
			if err == io.EOF && rr.n == 0 {
				return 0, false, errClosedBeforeResponse
			}
			return 0, false, rr.error(err)
		}
		status = rr.resp.Status
		switch {
		case status == 101:
			return status, false, nil // the connection is no longer HTTP
		case status < 200:
			continue
		}
		keepAlive = !rr.resp.Close && rr.resp.Framing != h1.UntilClose
		if h := rr.heads; h != nil {
			h.reset()
			for i := range rr.resp.Headers {
				h.add(rr.resp.Headers[i].Name, rr.resp.Headers[i].Value)
			}
		}
		rr.body.Reset(&rr.rd, rr.resp.Framing, rr.resp.ContentLength, rr.lim)
		if l := rr.resp.ContentLength; rr.resp.Framing != h1.NoBody && (l < 0 || l > int64(len(rr.rd.Buf))) {
			// A large body: read it in fewer, larger pieces. The buffer
			// stays with the session, so this happens once.
			rr.rd.Grow(bodyReadBytes)
		}
		for {
			p, err := rr.body.Next()
			if err == io.EOF {
				return status, keepAlive, nil
			}
			if err != nil {
				return 0, false, rr.error(err)
			}
			keep(body, p, maxBody)
		}
	}
}

// error names what was wrong with a response in the words of a load
// test's report. An answer relia's codec refuses, or bytes that do not
// begin like an HTTP/1.x response before the peer closed, are the peer
// breaking HTTP (outcome.ErrProtocol), not a reset.
func (rr *respReader) error(err error) error {
	var he *h1.Error
	if !errors.As(err, &he) {
		if got := rr.rd.Buffered(); len(got) > 0 && !looksLikeStatusLine(got) {
			return fmt.Errorf("%w: the answer is not HTTP/1.x (it begins %q)", outcome.ErrProtocol, got[:min(len(got), 16)])
		}
		return unexpectedEOF(err)
	}
	switch he.Kind {
	case h1.KindRequestLine, h1.KindVersion:
		return fmt.Errorf("%w: malformed status line: %s", outcome.ErrProtocol, he.Reason)
	case h1.KindHeader:
		return fmt.Errorf("%w: malformed header line: %s", outcome.ErrProtocol, he.Reason)
	case h1.KindTooLarge:
		return fmt.Errorf("%w: response head larger than %d bytes: %s", outcome.ErrProtocol, rr.lim.HeadBytes, he.Reason)
	}
	return fmt.Errorf("%w: %s", outcome.ErrProtocol, he.Reason)
}

// looksLikeStatusLine reports whether b could be the start of an HTTP/1.x
// status line: a prefix of "HTTP/1.", or longer text beginning with it.
func looksLikeStatusLine(b []byte) bool {
	const prefix = "HTTP/1."
	n := min(len(b), len(prefix))
	return string(b[:n]) == prefix[:n]
}

func keep(body *[]byte, p []byte, maxBody int) {
	if body == nil {
		return
	}
	if maxBody > 0 {
		p = p[:min(len(p), max(0, maxBody-len(*body)))]
	}
	*body = append(*body, p...)
}

func unexpectedEOF(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}
