package ai

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/relia-dev/relia/ai/wire"
	"github.com/relia-dev/relia/gateway/upstream"
	"github.com/relia-dev/relia/internal/callctx"
	"github.com/relia-dev/relia/internal/h1"
)

// maxExchange bounds one provider exchange when its context sets no
// deadline: the connection's deadline, not a timeout of the call (the
// route's total timeout cancels the context well before).
const maxExchange = time.Hour

// UpstreamTransport sends the AI gateway's calls to providers over the
// gateway's own HTTP/1.1 client (gateway/upstream): connections kept per
// provider address and bounded in number, every answer framed by relia's
// codec (internal/h1), so a provider's bytes are read as strictly as a
// target's. Providers at https:// addresses go through TLS, which
// gateway/upstream does not speak: they go through TLS.
type UpstreamTransport struct {
	// MaxConns bounds the connections to one provider address (default
	// 1024) unless SetMaxConns set the address's own bound.
	MaxConns int
	// DialTimeout bounds a connect (default 5s).
	DialTimeout time.Duration
	// ReadBuffer is the size each connection's read buffer starts at
	// (default gateway/upstream's, 16 KiB).
	ReadBuffer int
	// WriteBuffer is the capacity each connection's write buffer starts
	// at (default gateway/upstream's, 4 KiB); it grows to the largest
	// request head written on it.
	WriteBuffer int
	// TLS sends the calls to https:// providers; nil means a net/http
	// transport of its own.
	TLS http.RoundTripper

	once    sync.Once
	mu      sync.Mutex
	targets map[string]*upstream.Target
	// limits are the bounds SetMaxConns set, by address.
	limits map[string]int
	// tls are the https transports of each address when TLS was nil,
	// each bounded by its address's limit.
	tls map[string]*http.Transport
}

func (u *UpstreamTransport) init() {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.targets = map[string]*upstream.Target{}
	if u.limits == nil {
		u.limits = map[string]int{}
	}
	if u.TLS == nil {
		u.tls = map[string]*http.Transport{}
	}
}

// SetMaxConns bounds the connections to addr (host:port) to n (n <= 0:
// MaxConns). The calls already holding a connection keep it; a changed
// bound applies to the calls that start after.
func (u *UpstreamTransport) SetMaxConns(addr string, n int) {
	u.once.Do(u.init)
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.limits[addr] == n {
		return
	}
	u.limits[addr] = n
	if t := u.targets[addr]; t != nil {
		delete(u.targets, addr)
		t.Retire()
	}
	if t := u.tls[addr]; t != nil {
		delete(u.tls, addr)
		t.CloseIdleConnections()
	}
}

func (u *UpstreamTransport) maxConns(addr string) int {
	if n := u.limits[addr]; n > 0 {
		return n
	}
	return orDefault(u.MaxConns, DefaultMaxConnections)
}

func (u *UpstreamTransport) target(addr string) *upstream.Target {
	u.mu.Lock()
	defer u.mu.Unlock()
	t := u.targets[addr]
	if t == nil {
		t = upstream.New(upstream.Settings{Addr: addr, MaxConns: u.maxConns(addr), DialTimeout: orDefault(u.DialTimeout, 5*time.Second), ReadBuffer: u.ReadBuffer, WriteBuffer: u.WriteBuffer})
		u.targets[addr] = t
	}
	return t
}

// tlsFor returns the transport of calls to an https address.
func (u *UpstreamTransport) tlsFor(addr string) http.RoundTripper {
	if u.TLS != nil {
		return u.TLS
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	t := u.tls[addr]
	if t == nil {
		t = http.DefaultTransport.(*http.Transport).Clone()
		// Calls to one provider are many and concurrent: keep their
		// connections rather than dial one per call past the second.
		t.MaxConnsPerHost = u.maxConns(addr)
		t.MaxIdleConnsPerHost = t.MaxConnsPerHost
		t.DisableCompression = true // streams are read as they come
		u.tls[addr] = t
	}
	return t
}

// CloseIdle closes the connections kept idle to every provider.
func (u *UpstreamTransport) CloseIdle() {
	u.once.Do(u.init)
	u.mu.Lock()
	defer u.mu.Unlock()
	for _, t := range u.targets {
		t.CloseIdle()
	}
	for _, t := range u.tls {
		t.CloseIdleConnections()
	}
}

// RoundTrip sends req and returns the provider's answer, its body read
// from the connection as the caller reads it. Cancelling the request's
// context ends the exchange and any read of the body.
func (u *UpstreamTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	u.once.Do(u.init)
	if req.URL.Scheme != "http" && req.URL.Scheme != "https" {
		closeBody(req)
		return nil, fmt.Errorf("send to %s: scheme %q (want http or https)", req.URL.Redacted(), req.URL.Scheme)
	}
	addr := hostPort(req.URL)
	if req.URL.Scheme == "https" {
		return roundTripTLS(u.tlsFor(addr), req)
	}
	var body []byte
	if rb, ok := req.Body.(*requestBody); ok {
		body, ok = rb.unread()
		if !ok {
			body, _ = io.ReadAll(rb) // what is left of it: a bytes.Reader's read does not fail
		}
	} else if req.Body != nil {
		var err error
		body, err = io.ReadAll(req.Body)
		req.Body.Close()
		if err != nil {
			return nil, fmt.Errorf("read the request body: %w", err)
		}
	}
	host := req.Host
	if host == "" {
		host = req.URL.Host
	}
	ur := upstream.Request{Body: body}
	ur.Method, ur.Target, ur.Host, ur.Fields = requestHead(req, host)
	ctx := req.Context()
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(maxExchange)
	}
	b := &upstreamBody{}
	fields := headFields.Get().(*[]h1.Header)
	b.resp.Headers = (*fields)[:0]
	err := u.target(addr).Do(ctx, &ur, &b.resp, deadline)
	if err != nil {
		putHeadFields(fields, b.resp.Headers)
		return nil, err
	}
	resp := &http.Response{
		Status:        statusText(b.resp.Status, b.resp.Reason),
		StatusCode:    b.resp.Status,
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    b.resp.Minor,
		Header:        responseHeader(&b.resp),
		ContentLength: -1,
		Request:       req,
		Body:          b,
	}
	if b.resp.Minor != 1 {
		resp.Proto = "HTTP/1." + strconv.Itoa(b.resp.Minor)
	}
	putHeadFields(fields, b.resp.Headers)
	b.resp.Headers = nil
	if b.resp.Framing == h1.Length {
		resp.ContentLength = b.resp.ContentLength
	}
	// The exchange's own watch of ctx ended with the head; the body's
	// reads are ended by the same cancellation, through the connection's
	// deadline, until Close gives the connection back. The body is the
	// hook of a call's context itself (callctx), or watches another
	// through context.AfterFunc.
	if b.hooked = callctx.AddHook(ctx, b); b.hooked == nil {
		b.stop = context.AfterFunc(ctx, func() { b.ContextEnded(nil) })
	}
	return resp, nil
}

// requestHead is req's head as the codec writes it: its method, target,
// host and fields but the hop-by-hop ones, Host and Content-Length, all
// copied into one buffer.
func requestHead(req *http.Request, host string) (method, target, hostField []byte, fields []h1.Header) {
	uri := req.URL.RequestURI()
	size, n := len(req.Method)+len(uri)+len(host), 0
	for name, values := range req.Header {
		for _, v := range values {
			size += len(name) + len(v)
			n++
		}
	}
	buf := make([]byte, 0, size)
	take := func(s string) []byte {
		at := len(buf)
		buf = append(buf, s...)
		return buf[at:len(buf):len(buf)]
	}
	method, target, hostField = take(req.Method), take(uri), take(host)
	fields = make([]h1.Header, 0, n)
	for name, values := range req.Header {
		if h1.HopByHop([]byte(name)) || name == "Host" || name == "Content-Length" {
			continue
		}
		for _, v := range values {
			fields = append(fields, h1.Header{Name: take(name), Value: take(v)})
		}
	}
	return method, target, hostField, fields
}

// headFields holds the field arrays that providers' answer heads are
// parsed into, each until RoundTrip copied its fields into the answer's
// http.Header: a head's fields grown from none cost about as much as
// the copy.
var headFields = sync.Pool{New: func() any {
	f := make([]h1.Header, 0, 16)
	return &f
}}

// putHeadFields gives the field array fields (now f, as parsing grew it)
// back to headFields, emptied; one grown past 64 fields is dropped.
func putHeadFields(box *[]h1.Header, f []h1.Header) {
	if cap(f) > 64 {
		return
	}
	clear(f[:cap(f)])
	*box = f[:0]
	headFields.Put(box)
}

// statusText is an answer's Status as net/http gives it ("200 OK").
func statusText(code int, reason []byte) string {
	if code == http.StatusOK && string(reason) == "OK" {
		return "200 OK"
	}
	return strconv.Itoa(code) + " " + string(reason)
}

// responseHeader copies resp's fields but the hop-by-hop ones into an
// http.Header: the fields are slices of the connection's buffer. Their
// names and values share one string, and the values one array.
func responseHeader(resp *upstream.Response) http.Header {
	// Which fields go, found once: IsHopByHop reads the Connection field.
	var keepSpace [32]bool
	keep := keepSpace[:0]
	size, n := 0, 0
	for _, f := range resp.Headers {
		k := !resp.IsHopByHop(f.Name)
		keep = append(keep, k)
		if k {
			size += len(f.Name) + len(f.Value)
			n++
		}
	}
	h := make(http.Header, n)
	if n == 0 {
		return h
	}
	buf := make([]byte, 0, size)
	for i, f := range resp.Headers {
		if keep[i] {
			buf = append(buf, f.Name...)
			buf = append(buf, f.Value...)
		}
	}
	all := string(buf)
	values := make([]string, n)
	at, v := 0, 0
	for i, f := range resp.Headers {
		if !keep[i] {
			continue
		}
		name := http.CanonicalHeaderKey(all[at : at+len(f.Name)])
		at += len(f.Name)
		values[v] = all[at : at+len(f.Value)]
		at += len(f.Value)
		if vs, ok := h[name]; ok {
			h[name] = append(vs, values[v])
		} else {
			h[name] = values[v : v+1 : v+1]
		}
		v++
	}
	return h
}

// ContextEnded ends the body's reads once its exchange's context ended
// (callctx.Hook), unless the stream read its last event: what is left is
// the body's end, read within drainWait (Close).
func (b *upstreamBody) ContextEnded(error) {
	if b.ended.Load() {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.closed {
		b.resp.Conn().Net().SetReadDeadline(time.Unix(1, 0))
	}
	b.cancelled.Store(true)
	if b.waker != nil {
		b.waker.wake() // a stream that waits with no goroutine reads on, and finds the deadline
	}
}

// upstreamBody is a provider answer's body read from its connection.
type upstreamBody struct {
	resp upstream.Response
	// hooked holds the body among its hooks, or stop unhooks it from a
	// context of another kind.
	hooked *callctx.Context
	stop   func() bool
	mu     sync.Mutex
	closed bool
	// rc, peekFn and peek are waitReadable's (wait_linux.go), made at
	// its first wait.
	rc     syscall.RawConn
	peekFn func(uintptr) bool
	peek   [1]byte
	// cancelled says the exchange's context ended; waker, set while a
	// handed-off stream may wait with no goroutine (Relay), is told so.
	cancelled atomic.Bool
	waker     interface{ wake() }
	// ended says the stream read its last event (finishAtHand).
	ended atomic.Bool
	// pieces counts the decoder's takes of new bytes, by Next or Read
	// (Bedrock's event stream reads): the stream's bytes came that many
	// times (openStream.touch).
	pieces uint64
}

func (b *upstreamBody) Read(p []byte) (int, error) {
	n, err := b.resp.Body.Read(p)
	b.pieces++
	return n, bodyErr(err)
}

// Next returns the body's next piece as a slice of the connection's read
// buffer, valid until the next call (wire.Pieces): the SSE reader reads
// a stream in place rather than through a buffer of its own.
func (b *upstreamBody) Next() ([]byte, error) {
	p, err := b.resp.Body.Next()
	b.pieces++
	return p, bodyErr(err)
}

// finishAtHand reads the body's framing to its end once the stream said
// it ended ("data: [DONE]"), if that end is at hand: buffered already,
// or waiting in the socket (one read, which then does not wait). The
// provider's connection then serves the next call. An end not at hand
// yet is read after the stream, on a goroutine of its own (Close,
// drain): a body left before its last chunk closes its connection, and
// then every stream makes a new connection, leaves a socket in
// TIME_WAIT, and adds a round trip to the next stream's first token.
func (b *upstreamBody) finishAtHand() {
	b.ended.Store(true)
	body := &b.resp.Body
	if body.SkipBuffered() || !b.socketReadable() || body.ReadMore() != nil {
		return
	}
	body.SkipBuffered()
}

// bodyErr is what a read of the body returns for the codec's err: a
// malformed body is an invalid response.
func bodyErr(err error) error {
	if err != nil && !errors.Is(err, io.EOF) {
		var he *h1.Error
		if errors.As(err, &he) {
			return upstream.ErrInvalidResponse
		}
	}
	return err
}

var _ wire.Pieces = (*upstreamBody)(nil)

// streaming lets go of what the body of an open stream, which may wait
// for long, does not need: its connection's write buffer (the request
// is written) and the fields and reason of the answer's head (the
// response has them), which would hold its read buffer (waitReadable
// lends it out).
func (b *upstreamBody) streaming() {
	b.resp.Headers, b.resp.Reason = nil, nil
	b.resp.Conn().DropWriteBuffer()
}

// Close gives the connection back: kept when the body was read to its
// end, closed otherwise. A stream that ended before its body did has
// the body's end read first, on a goroutine of its own (drain); the
// call's context no longer reaches the connection.
func (b *upstreamBody) Close() error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil
	}
	b.closed = true
	b.mu.Unlock()
	if b.hooked != nil {
		b.hooked.RemoveHook(b)
	} else {
		b.stop()
	}
	if b.ended.Load() && !b.cancelled.Load() && !b.resp.Body.Done() && b.resp.Body.Err() == nil {
		go b.drain()
		return nil
	}
	b.resp.Release()
	return nil
}

// drain reads what is left of a stream's body, at most drainMax bytes
// within drainWait, and gives the connection back: kept if the body
// ended, closed otherwise.
func (b *upstreamBody) drain() {
	nc := b.resp.Conn().Net()
	nc.SetReadDeadline(time.Now().Add(drainWait))
	read := 0
	for read <= drainMax {
		p, err := b.resp.Body.Next()
		if err != nil {
			break
		}
		read += len(p)
	}
	nc.SetReadDeadline(time.Time{})
	b.resp.Release()
	drained()
}

// hostPort is a provider URL's address, with the scheme's port when it
// names none.
func hostPort(u *url.URL) string {
	if u.Port() != "" {
		return u.Host
	}
	if u.Scheme == "https" {
		return u.Host + ":443"
	}
	return u.Host + ":80"
}

func closeBody(req *http.Request) {
	if req.Body != nil {
		req.Body.Close()
	}
}

// drainWait bounds how long a stream's connection is read for its
// body's end after the stream ended, and drainMax how much: a provider
// sends the end right after the last event, so the bounds only keep a
// provider that does not from holding a connection and a goroutine.
const (
	drainWait = 2 * time.Second
	drainMax  = 64 << 10
)

// roundTripTLS sends req to an https provider through rt (net/http's
// transport, which keeps a connection for the next call only once its
// answer's body was read to the end). A stream ends at its last event,
// before the chunked body's last chunk: its body (tlsBody), once the
// stream said so and the caller closed it, reads that end on its own
// goroutine, so that the next stream to the provider skips a TLS
// handshake, and the client's stream waits for nothing. The exchange
// runs under a context of its own that the call's context ends, except
// while that read, bounded by drainWait, goes on.
func roundTripTLS(rt http.RoundTripper, req *http.Request) (*http.Response, error) {
	ctx, cancel := context.WithCancel(context.WithoutCancel(req.Context()))
	b := &tlsBody{cancel: cancel}
	b.stop = context.AfterFunc(req.Context(), func() {
		if !b.ended.Load() {
			cancel()
		}
	})
	resp, err := rt.RoundTrip(req.WithContext(ctx))
	if err != nil {
		b.stop()
		cancel()
		return nil, err
	}
	b.ReadCloser = resp.Body
	resp.Body = b
	return resp, nil
}

// tlsBody is an https provider's answer body.
type tlsBody struct {
	io.ReadCloser
	cancel context.CancelFunc
	stop   func() bool
	// ended says the stream read its last event (finishAtHand); closed
	// that Close ran.
	ended, closed atomic.Bool
}

func (b *tlsBody) finishAtHand() { b.ended.Store(true) }

// Close ends the exchange; a stream that ended has its body's end read
// first, on a goroutine of its own.
func (b *tlsBody) Close() error {
	if !b.closed.CompareAndSwap(false, true) {
		return nil
	}
	if !b.ended.Load() {
		err := b.ReadCloser.Close()
		b.stop()
		b.cancel()
		return err
	}
	go b.drain() // ends within drainWait
	return nil
}

func (b *tlsBody) drain() {
	t := time.AfterFunc(drainWait, b.cancel)
	io.Copy(io.Discard, io.LimitReader(b.ReadCloser, drainMax))
	t.Stop()
	b.ReadCloser.Close()
	b.stop()
	b.cancel()
	drained()
}

// afterDrain, if set, runs as a drain ends; a test waits on it.
var afterDrain atomic.Pointer[func()]

// drained tells afterDrain that a drain ended.
func drained() {
	if f := afterDrain.Load(); f != nil {
		(*f)()
	}
}
