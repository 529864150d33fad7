package gateway

import (
	"crypto/tls"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"golang.org/x/net/http2"

	"github.com/relia-dev/relia/clock"
	"github.com/relia-dev/relia/gateway/upstream"
	"github.com/relia-dev/relia/internal/h1"
)

// newListenerServer prepares the serving of one listener: TLS with ALPN
// h2 and http/1.1 when it has a certificate, Go's HTTP/2 server for the
// connections that speak HTTP/2, relia's codec for the others.
func (g *Gateway) newListenerServer(l Listener, srv Server) (*listenerServer, error) {
	name := l.Name
	if name == "" {
		name = l.Address
	}
	ls := &listenerServer{g: g, name: name, h2c: l.H2C, srv: srv, lim: h1.Limits{HeadBytes: int(srv.MaxHeaderBytes), Headers: h1.DefaultLimits.Headers}}
	if l.TLS != nil {
		cert, err := tls.LoadX509KeyPair(l.TLS.CertFile, l.TLS.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("listener %s: loading its certificate: %w", name, err)
		}
		ls.tls = &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{http2.NextProtoTLS, "http/1.1"}, MinVersion: tls.VersionTLS12}
	}
	ls.h2base = &http.Server{
		Handler:           http.HandlerFunc(ls.serveHTTP2),
		ReadHeaderTimeout: srv.ReadHeaderTimeout,
		IdleTimeout:       srv.IdleTimeout,
		MaxHeaderBytes:    int(srv.MaxHeaderBytes),
	}
	ls.h2 = &http2.Server{IdleTimeout: srv.IdleTimeout, MaxReadFrameSize: 1 << 20}
	if err := http2.ConfigureServer(ls.h2base, ls.h2); err != nil {
		return nil, fmt.Errorf("listener %s: %w", name, err)
	}
	return ls, nil
}

// serveH2 serves an HTTP/2 connection with Go's server, behind the guard
// that bounds stream resets.
func (c *conn) serveH2(nc net.Conn) {
	c.state.Store(connActive)
	guard := newH2Guard(nc, c.g.clock)
	var served net.Conn = guard
	if tc, ok := nc.(*tls.Conn); ok {
		served = tlsH2Guard{guard, tc}
	}
	c.s.h2.ServeConn(served, &http2.ServeConnOpts{BaseConfig: c.s.h2base, Handler: c.s.h2base.Handler})
	if guard.tripped() {
		c.g.log.Warn("http/2 connection sent too many stream resets; sent GOAWAY and closed it", "client", c.peer.String(), "limit_per_second", h2ResetRate)
		c.g.metrics.obs.Observe(rejectedEvent("server", "", ReasonTooManyResets))
	}
}

// ReasonTooManyResets: an HTTP/2 connection reset streams faster than
// h2ResetRate allows (the rapid-reset attack, CVE-2023-44487); it gets
// GOAWAY and is closed.
const ReasonTooManyResets = "too_many_resets"

// serveHTTP2 serves one HTTP/2 request: converted into the gateway's
// request type, body streamed, and through the same pipeline as HTTP/1.1.
// A stream the client resets cancels the request's context, which ends
// its upstream attempt.
func (ls *listenerServer) serveHTTP2(w http.ResponseWriter, r *http.Request) {
	g := ls.g
	x := newExchange(g)
	defer putExchange(x)
	req := &x.req
	req.method, req.minor, req.h2, req.ctx = bs(r.Method), 1, true, r.Context()
	req.target = bs(r.RequestURI)
	if len(req.target) == 0 {
		req.target = bs(r.URL.RequestURI())
	}
	req.host = bs(r.Host)
	req.tls = r.TLS != nil || ls.tls != nil
	if ap, err := netip.ParseAddrPort(r.RemoteAddr); err == nil {
		req.peer = ap.Addr().Unmap()
	}
	for k, vs := range r.Header {
		name := bs(k)
		if h1.HopByHop(name) || h1.EqualFold(name, "Host") || h1.EqualFold(name, "Content-Length") || h1.EqualFold(name, "Expect") {
			continue
		}
		for _, v := range vs {
			req.fields = append(req.fields, h1.Header{Name: name, Value: bs(v)})
		}
	}
	if r.Body != nil && r.Body != http.NoBody && r.ContentLength != 0 {
		req.framing, req.length = h1.Chunked, -1
		if r.ContentLength > 0 {
			req.framing, req.length = h1.Length, r.ContentLength
		}
		req.src = upstream.NewReaderSource(r.Body, make([]byte, 16<<10))
	}
	x.h2w, x.h2r = w, r
	g.serveExchange(x)
	if !x.grpcHandled && x.ai == nil {
		writeHTTP2(w, x)
	}
	g.finish(x)
	if x.abortStream {
		panic(http.ErrAbortHandler) // a fault broke the answer off: reset the stream
	}
}

// writeHTTP2 writes x's response on an HTTP/2 stream; the target's
// trailer fields follow its body.
func writeHTTP2(w http.ResponseWriter, x *exchange) {
	defer x.resp.release()
	writeHTTP(w, &x.resp, string(x.req.method) == "HEAD", x)
}

// writeHTTP writes r on w, an HTTP/2 stream or a fault's writer
// (faults_stream.go), the target's body as it arrives and its trailer
// fields after it. x, when set, counts the bytes and captures the body.
func writeHTTP(w http.ResponseWriter, r *response, head bool, x *exchange) {
	h := w.Header()
	for _, f := range r.fields {
		h.Add(string(f.Name), string(f.Value))
	}
	if _, ok := h["Content-Type"]; !ok {
		h["Content-Type"] = nil // no sniffing: the target sent none
	}
	noBody := head || r.status == 204 || r.status == 304
	switch length := r.bodyLength(); {
	case noBody && r.lengthField >= 0:
		h.Set("Content-Length", strconv.FormatInt(r.lengthField, 10))
	case !noBody && length >= 0 && r.status != 204:
		h.Set("Content-Length", strconv.FormatInt(length, 10))
	}
	w.WriteHeader(r.status)
	if noBody {
		return
	}
	if r.up == nil {
		if x != nil {
			x.bytesOut = int64(len(r.body))
		}
		w.Write(r.body)
		return
	}
	body := &r.up.Body
	if f, ok := w.(http.Flusher); ok {
		// What has arrived goes to the client before the next read from
		// the target, which may wait.
		rd := r.up.Conn().Reader()
		rd.BeforeRead = f.Flush
		defer func() { rd.BeforeRead = nil }()
	}
	for {
		p, err := body.Next()
		if err != nil {
			if err == io.EOF {
				for _, t := range trailers(body.Trailers) {
					h.Add(http.TrailerPrefix+string(t.Name), string(t.Value))
				}
			}
			return
		}
		if x != nil {
			x.bytesOut += int64(len(p))
			x.tapResponse(p)
		}
		if _, err := w.Write(p); err != nil {
			return
		}
	}
}

// h2ResetRate and h2ResetBurst bound the streams an HTTP/2 client may
// reset: past them the connection gets GOAWAY (ENHANCE_YOUR_CALM) and
// closes, as current HTTP/2 servers answer the rapid-reset pattern
// (CVE-2023-44487). A browser resets a few streams when a user navigates
// away; an attacker resets thousands a second, each costing the server
// a request it starts and throws away.
const (
	h2ResetRate  = 100 // per second, on average
	h2ResetBurst = 200
)

// h2Guard watches the frames a client sends on an HTTP/2 connection and
// ends the connection when it resets streams past the limit. It reads
// frame headers only, as they pass to the server; it tracks the frames
// the server writes so that its GOAWAY goes between two of them.
type h2Guard struct {
	net.Conn
	clock clock.Clock

	// Read side, used by the server's reading goroutine only.
	preface int // bytes of the client preface still to pass
	in      frameScan
	tokens  float64
	last    time.Time
	maxID   uint32 // the highest stream the client opened

	// Write side.
	wmu     sync.Mutex
	out     frameScan
	pending bool // a GOAWAY waits for a frame boundary
	closed  bool
	trip    bool
}

// frameScan follows the frame boundaries of an HTTP/2 byte stream.
type frameScan struct {
	hdr  [9]byte // the frame header being read
	hn   int
	skip int // payload bytes of the current frame left to pass
}

// feed passes b through, calling onFrame with each frame header that
// completes; it stops when onFrame returns true, and reports it.
func (f *frameScan) feed(b []byte, onFrame func(typ byte, stream uint32) bool) bool {
	for len(b) > 0 {
		if f.skip > 0 {
			k := min(f.skip, len(b))
			f.skip -= k
			b = b[k:]
			continue
		}
		k := copy(f.hdr[f.hn:], b)
		f.hn += k
		b = b[k:]
		if f.hn == len(f.hdr) {
			f.hn = 0
			f.skip = int(f.hdr[0])<<16 | int(f.hdr[1])<<8 | int(f.hdr[2])
			if onFrame != nil && onFrame(f.hdr[3], binary.BigEndian.Uint32(f.hdr[5:9])&0x7fffffff) {
				return true
			}
		}
	}
	return false
}

// atBoundary reports whether the stream is between two frames.
func (f *frameScan) atBoundary() bool { return f.hn == 0 && f.skip == 0 }

func newH2Guard(c net.Conn, clk clock.Clock) *h2Guard {
	return &h2Guard{Conn: c, clock: clock.OrReal(clk), preface: len(h2Preface), tokens: h2ResetBurst}
}

// tlsH2Guard is the guard of a TLS connection: the HTTP/2 server sees
// the TLS session below it. (A guard of a plain one must not look like
// TLS, which the server would refuse as too weak.)
type tlsH2Guard struct {
	*h2Guard
	tc *tls.Conn
}

func (g tlsH2Guard) ConnectionState() tls.ConnectionState { return g.tc.ConnectionState() }

func (g *h2Guard) tripped() bool {
	g.wmu.Lock()
	defer g.wmu.Unlock()
	return g.trip
}

func (g *h2Guard) Read(p []byte) (int, error) {
	n, err := g.Conn.Read(p)
	b := p[:n]
	if g.preface > 0 {
		k := min(g.preface, len(b))
		g.preface -= k
		b = b[k:]
	}
	if g.in.feed(b, g.frame) {
		return 0, errTooManyResets
	}
	return n, err
}

var errTooManyResets = fmt.Errorf("http/2 client reset streams past %d a second", h2ResetRate)

// frame notes one frame from the client and reports whether the
// connection must end.
func (g *h2Guard) frame(typ byte, stream uint32) bool {
	const (
		frameHeaders   = 0x1
		frameRSTStream = 0x3
	)
	switch typ {
	case frameHeaders:
		g.maxID = max(g.maxID, stream)
	case frameRSTStream:
		now := g.clock.Now()
		if !g.last.IsZero() {
			g.tokens = min(h2ResetBurst, g.tokens+now.Sub(g.last).Seconds()*h2ResetRate)
		}
		g.last = now
		g.tokens--
		if g.tokens < 0 {
			g.goAway()
			return true
		}
	}
	return false
}

// goAway sends GOAWAY (ENHANCE_YOUR_CALM) at the next frame boundary of
// what the server writes, and closes the connection.
func (g *h2Guard) goAway() {
	g.wmu.Lock()
	defer g.wmu.Unlock()
	g.trip = true
	if g.out.atBoundary() {
		g.sendGoAwayLocked()
		return
	}
	g.pending = true
	// A server stuck mid-frame must not keep the connection: close it
	// soon whatever it writes.
	time.AfterFunc(time.Second, func() { g.Conn.Close() })
}

func (g *h2Guard) sendGoAwayLocked() {
	if g.closed {
		return
	}
	const enhanceYourCalm = 0xb
	var f [17]byte
	f[2] = 8   // payload length
	f[3] = 0x7 // GOAWAY
	binary.BigEndian.PutUint32(f[9:13], g.maxID)
	binary.BigEndian.PutUint32(f[13:17], enhanceYourCalm)
	g.Conn.SetWriteDeadline(time.Now().Add(time.Second))
	g.Conn.Write(f[:])
	g.closed = true
	g.Conn.Close()
}

func (g *h2Guard) Write(p []byte) (int, error) {
	g.wmu.Lock()
	defer g.wmu.Unlock()
	if g.closed {
		return 0, net.ErrClosed
	}
	n, err := g.Conn.Write(p)
	g.out.feed(p[:n], nil)
	if g.pending && g.out.atBoundary() {
		g.sendGoAwayLocked()
	}
	return n, err
}

// Close closes the connection once.
func (g *h2Guard) Close() error {
	g.wmu.Lock()
	defer g.wmu.Unlock()
	if g.closed {
		return nil
	}
	g.closed = true
	return g.Conn.Close()
}
