package fault

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/relia-dev/relia/gateway/upstream"
	"github.com/relia-dev/relia/internal/h1"
	"github.com/relia-dev/relia/internal/rawio"
)

// The HTTP mode reads and writes every message with relia's codec
// (internal/h1), as the gateway does: requests from clients, the requests
// it forwards and the answers it passes back. The fault filter sees each
// request as an http.Request and answers, delays or alters it through an
// http.ResponseWriter; a request it lets through is forwarded over
// gateway/upstream's kept-alive connections.

// httpHeadTimeout bounds how long a client may take over a request head.
const httpHeadTimeout = 30 * time.Second

// httpProxy is the HTTP-mode server of one proxy: the filter in front of
// a forwarder to the upstream.
type httpProxy struct {
	p       *proxyEntry
	target  *upstream.Target
	handler http.Handler
	open    upstream.Open

	mu     sync.Mutex
	ln     net.Listener
	conns  map[net.Conn]struct{}
	closed bool

	h2State // HTTP/2 clients' streams (grpc.go)
}

// newHTTPServer returns the HTTP-mode server of p: its fault filter in
// front of a forwarder to the upstream.
func (p *proxyEntry) newHTTPServer() *httpProxy {
	hp := &httpProxy{p: p, conns: map[net.Conn]struct{}{}}
	hp.target = upstream.New(upstream.Settings{Addr: p.upstream, MaxConns: 1024, DialTimeout: 10 * time.Second, Open: &hp.open})
	hp.handler = p.filter.Wrap(http.HandlerFunc(hp.forward))
	// Stopping the proxy closes its kept-alive upstream connections too.
	p.httpTransport = hp
	return hp
}

// Serve accepts connections on ln until Close.
func (hp *httpProxy) Serve(ln net.Listener) error {
	hp.mu.Lock()
	hp.ln = ln
	hp.mu.Unlock()
	for {
		c, err := ln.Accept()
		if err != nil {
			return err
		}
		hp.mu.Lock()
		if hp.closed {
			hp.mu.Unlock()
			c.Close()
			continue
		}
		hp.conns[c] = struct{}{}
		hp.mu.Unlock()
		go hp.serveConn(c) // ends when the connection closes
	}
}

// Close stops the server and ends every connection, its upstream ones
// included.
func (hp *httpProxy) Close() error {
	hp.mu.Lock()
	defer hp.mu.Unlock()
	hp.closed = true
	if hp.ln != nil {
		hp.ln.Close()
	}
	for c := range hp.conns {
		c.Close()
	}
	hp.open.EndAll()
	hp.closeH2()
	return nil
}

// CloseIdleConnections closes the kept-alive upstream connections.
func (hp *httpProxy) CloseIdleConnections() { hp.target.CloseIdle() }

// serveConn serves one client's requests in turn.
func (hp *httpProxy) serveConn(nc net.Conn) {
	defer func() {
		hp.mu.Lock()
		delete(hp.conns, nc)
		hp.mu.Unlock()
		nc.Close()
	}()
	c := rawio.Wrap(nc)
	rd := &h1.Reader{Src: c, Buf: make([]byte, 4096), Max: h1.DefaultLimits.HeadBytes + 4096}
	if hp.sniffH2(nc, rd) {
		return
	}
	var head h1.Request
	var body h1.Body
	for {
		nc.SetReadDeadline(time.Now().Add(httpHeadTimeout))
		if err := rd.ReadRequest(h1.DefaultLimits, &head); err != nil {
			var he *h1.Error
			if errors.As(err, &he) {
				w := &codecWriter{c: c, header: http.Header{}, minor: 1, closing: true}
				writeJSON(w, he.Status, map[string]string{"reason": "bad_request", "error": he.Reason})
				w.finish()
			}
			return
		}
		nc.SetReadDeadline(time.Time{})
		rd.KeepHead()
		body.Reset(rd, head.Framing, head.ContentLength, h1.DefaultLimits)
		if !hp.serveRequest(c, &head, &body) {
			return
		}
		rd.Release()
	}
}

// serveRequest runs one request through the filter and reports whether
// the connection may carry another.
func (hp *httpProxy) serveRequest(c net.Conn, head *h1.Request, body *h1.Body) (keep bool) {
	r, err := hp.request(c, head, body)
	w := &codecWriter{c: c, header: http.Header{}, minor: head.Minor, head: string(head.Method) == "HEAD", closing: head.Close, body: body}
	if err != nil {
		w.closing = true
		writeJSON(w, http.StatusBadRequest, map[string]string{"reason": "bad_request", "error": err.Error()})
		w.finish()
		return false
	}
	defer func() {
		// The filter breaks a connection to truncate a response.
		if v := recover(); v != nil {
			if v != http.ErrAbortHandler {
				panic(v)
			}
			keep = false
		}
	}()
	hp.handler.ServeHTTP(w, r)
	read := body.Done()
	if !read && w.status == 0 {
		w.closing = true // where the next request starts is unknown
	}
	if !w.finish() || w.closing {
		return false
	}
	// A fault answered without reading the request's body: read what is
	// left of it, a bounded amount, so that the connection can carry the
	// client's next request (as net/http does).
	return read || drainBody(c, body)
}

// Bounds on reading a request body that nobody read: how much, and for how
// long.
const (
	maxDrain     = 256 << 10
	drainTimeout = 5 * time.Second
)

// drainBody reads and drops what is left of body, and reports whether it
// reached its end within maxDrain bytes and drainTimeout.
func drainBody(c net.Conn, body *h1.Body) bool {
	if body.Remaining() > maxDrain {
		return false
	}
	c.SetReadDeadline(time.Now().Add(drainTimeout))
	defer c.SetReadDeadline(time.Time{})
	for n := 0; n <= maxDrain; {
		p, err := body.Next()
		if err == io.EOF {
			return true
		}
		if err != nil {
			return false
		}
		n += len(p)
	}
	return false
}

// request is the net/http view of a request the filter matches on.
func (hp *httpProxy) request(c net.Conn, head *h1.Request, body *h1.Body) (*http.Request, error) {
	target := string(head.Target)
	u, err := url.ParseRequestURI(target)
	if err != nil || u.User != nil || u.Path == "" && u.Host == "" {
		return nil, errors.New("the request target must be a path or an absolute URL without userinfo")
	}
	r := &http.Request{
		Method: string(head.Method), URL: u, RequestURI: target, Proto: "HTTP/1." + strconv.Itoa(head.Minor),
		ProtoMajor: 1, ProtoMinor: head.Minor, Header: http.Header{}, RemoteAddr: c.RemoteAddr().String(),
		ContentLength: head.ContentLength, Body: http.NoBody,
	}
	if head.Framing == h1.Chunked {
		r.ContentLength = -1
	}
	if head.Framing != h1.NoBody {
		r.Body = io.NopCloser(body)
	}
	for _, f := range head.Headers {
		if h1.EqualFold(f.Name, "Host") {
			r.Host = string(f.Value)
			continue
		}
		if head.IsHopByHop(f.Name) || h1.EqualFold(f.Name, "Content-Length") {
			continue
		}
		r.Header.Add(string(f.Name), string(f.Value))
	}
	if u.Host != "" {
		r.Host = u.Host
	}
	return r.WithContext(context.Background()), nil
}

// forward sends a request the filter let through to the upstream and
// passes the answer back through w, body streamed both ways.
func (hp *httpProxy) forward(w http.ResponseWriter, r *http.Request) {
	req := upstream.Request{Method: []byte(r.Method), Target: []byte(r.URL.RequestURI()), Host: []byte(r.Host)}
	for k, vs := range r.Header {
		switch k {
		case "Forwarded", "X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto":
			continue // set below, as httputil.ReverseProxy's SetXForwarded does
		}
		for _, v := range vs {
			req.Fields = append(req.Fields, h1.Header{Name: []byte(k), Value: []byte(v)})
		}
	}
	if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		req.Fields = append(req.Fields, h1.Header{Name: []byte("X-Forwarded-For"), Value: []byte(host)})
	}
	req.Fields = append(req.Fields,
		h1.Header{Name: []byte("X-Forwarded-Host"), Value: []byte(r.Host)},
		h1.Header{Name: []byte("X-Forwarded-Proto"), Value: []byte("http")})
	if r.Body != http.NoBody {
		req.Stream, req.Length = upstream.NewReaderSource(r.Body, make([]byte, 32<<10)), r.ContentLength
	}
	var resp upstream.Response
	if err := hp.target.Do(r.Context(), &req, &resp, time.Now().Add(10*time.Minute)); err != nil {
		writeJSON(w, http.StatusBadGateway, map[string]string{"reason": "upstream_unreachable", "error": err.Error()})
		return
	}
	defer resp.Release()
	h := w.Header()
	for _, f := range resp.Headers {
		if resp.IsHopByHop(f.Name) || h1.EqualFold(f.Name, "Content-Length") {
			continue
		}
		h.Add(string(f.Name), string(f.Value))
	}
	switch {
	case resp.Framing == h1.Length:
		h.Set("Content-Length", strconv.FormatInt(resp.ContentLength, 10))
	case resp.LengthField >= 0:
		h.Set("Content-Length", strconv.FormatInt(resp.LengthField, 10))
	}
	w.WriteHeader(resp.Status)
	for {
		p, err := resp.Body.Next()
		if err != nil {
			if err != io.EOF {
				panic(http.ErrAbortHandler) // the client must not take a cut body for a whole
			}
			return
		}
		if _, err := w.Write(p); err != nil {
			return
		}
	}
}

// codecWriter is an http.ResponseWriter that writes with relia's codec: a
// body of announced length as it is, any other chunked to an HTTP/1.1
// client and until the connection closes to an HTTP/1.0 one.
type codecWriter struct {
	c       net.Conn
	header  http.Header
	minor   int
	head    bool // the request was HEAD: no body
	closing bool
	status  int
	chunked bool
	left    int64 // bytes of an announced length still to write; -1: none announced
	buf     []byte
	err     error
	body    *h1.Body      // the request's body, read from c
	gone    chan struct{} // see ClientGone
}

// ClientGone returns a channel closed when the client's connection ends,
// once the request's body has been read (before, the connection's bytes
// are the body's); nil otherwise. It reads the connection from then on,
// so it is for a response that will not be followed by another on the
// connection: a stalled stream.
func (w *codecWriter) ClientGone() <-chan struct{} {
	if w.gone != nil || w.body == nil || !w.body.Done() {
		return w.gone
	}
	w.gone = make(chan struct{})
	// Ends when the connection does: the client's close, or the proxy's
	// once the response is given up.
	go func() {
		defer close(w.gone)
		var b [512]byte
		for {
			if _, err := w.c.Read(b[:]); err != nil {
				return
			}
		}
	}()
	return w.gone
}

func (w *codecWriter) Header() http.Header { return w.header }

func (w *codecWriter) WriteHeader(status int) {
	if w.status != 0 {
		return
	}
	w.status = status
	noBody := w.head || status == 204 || status == 304 || status < 200
	w.left = -1
	if v := w.header.Get("Content-Length"); v != "" {
		if n, err := strconv.ParseInt(v, 10, 64); err == nil && n >= 0 {
			w.left = n
		}
	}
	if w.left < 0 && !noBody {
		if w.minor == 1 {
			w.chunked = true
			w.header.Set("Transfer-Encoding", "chunked")
		} else {
			w.closing = true
		}
	}
	if w.closing {
		w.header.Set("Connection", "close")
	}
	b := h1.AppendStatusLine(w.buf[:0], status)
	// The fields go out sorted by name, so that the same answer is the
	// same bytes every time (a map's order is not); a response's fields
	// fit the array, which then costs no allocation.
	var arr [32]string
	names := arr[:0]
	for k := range w.header {
		names = append(names, k)
	}
	slices.Sort(names)
	for _, k := range names {
		for _, v := range w.header[k] {
			b = h1.AppendField(b, []byte(k), []byte(v))
		}
	}
	w.buf = append(b, "\r\n"...)
	if noBody {
		w.left = 0
	}
}

func (w *codecWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	if w.err != nil {
		return 0, w.err
	}
	if w.head || w.left == 0 && !w.chunked {
		return len(p), nil
	}
	if w.left > 0 {
		p = p[:min(int64(len(p)), w.left)]
		w.left -= int64(len(p))
	}
	if w.chunked {
		w.buf = h1.AppendChunkSize(w.buf, len(p))
	}
	w.buf = append(w.buf, p...)
	if w.chunked {
		w.buf = append(w.buf, "\r\n"...)
	}
	w.Flush()
	return len(p), w.err
}

// Flush writes what is gathered.
func (w *codecWriter) Flush() {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	if len(w.buf) > 0 && w.err == nil {
		_, w.err = w.c.Write(w.buf)
	}
	w.buf = w.buf[:0]
}

// finish ends the response and reports whether it was written whole.
func (w *codecWriter) finish() bool {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	if w.chunked {
		w.buf = append(w.buf, "0\r\n\r\n"...)
	}
	w.Flush()
	if w.left > 0 {
		w.closing = true // shorter than announced
	}
	return w.err == nil
}
