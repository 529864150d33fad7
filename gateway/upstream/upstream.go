package upstream

import (
	"cmp"
	"context"
	"errors"
	"io"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/relia-dev/relia/clock"
	"github.com/relia-dev/relia/internal/h1"
	"github.com/relia-dev/relia/internal/rawio"
)

// Buffer sizes of a connection: a response head must fit in the read
// buffer (h1.DefaultLimits), and a request head in the write buffer or it
// grows.
const (
	readBuffer  = 16 << 10
	writeBuffer = 4 << 10
	// inlineBody is the largest held body written in the same write as
	// its head.
	inlineBody = 16 << 10
)

// Limits bound a target's response heads and trailer sections.
var Limits = h1.DefaultLimits

// Errors a Do can end with, besides the network's own.
var (
	// ErrConnectionsExhausted: every connection the target may have stayed
	// busy until the request's deadline. It says nothing about the target.
	ErrConnectionsExhausted = errors.New("every connection to the target is busy")
	// ErrInvalidResponse: the target's answer could be framed two ways,
	// or is not HTTP/1.x at all.
	ErrInvalidResponse = errors.New("the target's response is malformed")
	// ErrClientBody: reading the request body from the client failed; the
	// target is not to blame.
	ErrClientBody = errors.New("reading the request body from the client failed")
	// errStale marks a failure on a kept connection the target had closed
	// before the request reached it.
	errStale = errors.New("kept-alive connection closed by the target")
)

// Settings configure a Target.
type Settings struct {
	// Addr is host:port.
	Addr string
	// MaxConns bounds the connections open at once; requests beyond wait
	// for one until their deadline.
	MaxConns int
	// MaxIdle bounds the connections kept for later requests.
	MaxIdle int
	// DialTimeout bounds a connect.
	DialTimeout time.Duration
	// Clock bounds waits for a connection; nil means the real clock.
	Clock clock.Clock
	// Open, when set, lists every connection the target opens until it
	// closes, so that a shutdown past its deadline can end them.
	Open *Open
	// OnWait, when set, is called each time a request begins to wait for
	// a connection (every one it may have is busy), so that a holder of
	// idle connections kept outside the pool (an event loop's) can give
	// them back to it at once.
	OnWait func()
	// ReadBuffer is the size a connection's read buffer starts at
	// (default 16 KiB): it grows only when a head does not fit, and a
	// body streams through it whatever its size. A caller holding many
	// connections that each read small messages (thousands of streams)
	// saves memory with a smaller one.
	ReadBuffer int
	// WriteBuffer is the capacity a connection's write buffer starts at
	// (default 4 KiB): it holds a request's head (and a small body) and
	// grows when one does not fit. It lives as long as the connection,
	// so a caller holding thousands saves memory with a smaller one.
	WriteBuffer int
}

// Target is one address's connections: opened on demand, kept alive
// between requests, bounded in number.
type Target struct {
	addr        string
	idle        chan *Conn
	slots       chan struct{}
	waiting     atomic.Int64
	dialTimeout time.Duration
	clock       clock.Clock
	open        *Open
	readBuffer  int
	writeBuffer int
	// rbufs and wbufs hold read buffers of readBuffer bytes and write
	// buffers that connections lent while their bodies waited
	// (ParkReadBuffer, DropWriteBuffer), for them and for new ones.
	rbufs, wbufs sync.Pool
	// retired is set once the target's owner replaced it (a reload) or
	// shut down: connections given back after that close instead of
	// waiting idle in a pool nobody will take them from.
	retired atomic.Bool
	onWait  func()
}

// New returns a Target; it opens nothing yet.
func New(s Settings) *Target {
	if s.MaxConns <= 0 {
		s.MaxConns = 1024
	}
	if s.MaxIdle <= 0 {
		s.MaxIdle = 256
	}
	t := &Target{
		addr:        s.Addr,
		idle:        make(chan *Conn, min(s.MaxConns, s.MaxIdle)),
		slots:       make(chan struct{}, s.MaxConns),
		dialTimeout: s.DialTimeout,
		clock:       clock.OrReal(s.Clock),
		open:        s.Open,
		readBuffer:  cmp.Or(s.ReadBuffer, readBuffer),
		writeBuffer: cmp.Or(s.WriteBuffer, writeBuffer),
		onWait:      s.OnWait,
	}
	t.rbufs.New = func() any {
		b := make([]byte, t.readBuffer)
		return &b
	}
	t.wbufs.New = func() any {
		b := make([]byte, 0, t.writeBuffer)
		return &b
	}
	return t
}

// Addr returns the target's address.
func (t *Target) Addr() string { return t.addr }

// Conns returns the connections open, in use or idle.
func (t *Target) Conns() int { return len(t.slots) }

// Waiting returns the requests waiting for a connection.
func (t *Target) Waiting() int64 { return t.waiting.Load() }

// Conn is one connection to a target.
type Conn struct {
	t      *Target
	pooled bool // it holds one of the target's slots
	c      net.Conn
	raw    *rawio.Conn
	rd     h1.Reader
	wbuf   []byte
	// wdl bounds the writes of the exchange under way; it is set on the
	// socket only if a write must wait (rawio.WriteBy).
	wdl time.Time
	// home, when set, takes the connection back on Release instead of
	// the target's pool; now is home as a NowWriter, when it is one.
	home Home
	now  NowWriter
	// rbox carries the read buffer to and from the target's rbufs
	// (ParkReadBuffer), so that parking allocates nothing; rheld holds
	// the few bytes of framing left unconsumed meanwhile (a chunk's CRLF).
	rbox   *[]byte
	rheld  [8]byte
	rheldN uint8
}

// Home takes a connection back when its response is released, instead of
// the target's pool: an event loop keeps the connections it watches.
// keep says the connection may serve another request; Return must give
// one it does not keep to Discard.
type Home interface {
	Return(uc *Conn, keep bool)
}

// NowWriter is a Home that also writes the connection's requests while
// it has the connection: an event loop writes what fits in the socket's
// buffer with one system call of its own, skipping the runtime's poller;
// whatever does not fit is then written as any write is.
type NowWriter interface {
	// WriteNow writes as much of p as fits without waiting and returns
	// how much it wrote.
	WriteNow(p []byte) (int, error)
}

// SetHome makes h take uc back on Release; nil gives it back to the
// target's pool again.
func (c *Conn) SetHome(h Home) {
	c.home = h
	c.now, _ = h.(NowWriter)
}

// Discard closes a connection of the target's pool and frees its place.
func (c *Conn) Discard() { c.t.discard(c) }

// Keep gives a connection back to the target's pool (or closes it when
// the pool is full or retired).
func (c *Conn) Keep() { c.t.release(c) }

// Target returns the target the connection belongs to.
func (c *Conn) Target() *Target { return c.t }

// Retired reports whether Retire was called: connections given back
// should close.
func (t *Target) Retired() bool { return t.retired.Load() }

// Net returns the connection itself.
func (c *Conn) Net() net.Conn { return c.c }

// Reader returns the connection's read side, where what the target sent
// and was not consumed is buffered.
func (c *Conn) Reader() *h1.Reader { return &c.rd }

// Write writes p whole.
func (c *Conn) Write(p []byte) error {
	_, err := c.c.Write(p)
	return err
}

// send writes p whole within the exchange's deadline.
func (c *Conn) send(p []byte) error {
	if c.now != nil && len(p) > 0 {
		n, err := c.now.WriteNow(p)
		if err != nil {
			return err
		}
		if p = p[n:]; len(p) == 0 {
			return nil
		}
	}
	return rawio.WriteBy(c.c, p, c.wdl)
}

// Read reads from the connection.
func (c *Conn) Read(p []byte) (int, error) { return c.c.Read(p) }

// acquire returns an idle connection, unless fresh is set, or dials one
// within the connect timeout and the deadline; reused says which. With
// every connection busy it waits, until the deadline, for one to be
// released or closed.
func (t *Target) acquire(ctx context.Context, deadline time.Time, fresh bool) (uc *Conn, reused bool, err error) {
	idle := t.idle
	if fresh {
		idle = nil // a nil channel is never ready
	}
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
			return nil, false, ErrConnectionsExhausted
		}
		t.waiting.Add(1)
		defer t.waiting.Add(-1)
		if t.onWait != nil {
			t.onWait()
		}
		timer := t.clock.NewTimer(wait)
		defer timer.Stop()
		select {
		case uc := <-idle:
			return uc, true, nil
		case t.slots <- struct{}{}:
		case <-timer.C():
			return nil, false, ErrConnectionsExhausted
		case <-ctx.Done():
			return nil, false, ctx.Err()
		}
	}
	c, err := t.dialPooled(ctx, deadline)
	return c, false, err
}

// dialPooled dials a connection into the slot the caller took, and
// frees the slot if the dial fails.
func (t *Target) dialPooled(ctx context.Context, deadline time.Time) (*Conn, error) {
	c, err := t.Dial(ctx, deadline)
	if err != nil {
		t.Unreserve()
		return nil, err
	}
	c.pooled = true
	return c, nil
}

// Errors of TryAcquire.
var (
	// ErrWouldWait: every connection the target may have is busy now.
	ErrWouldWait = errors.New("every connection to the target is busy now")
	// ErrMustDial: no connection is idle, and the caller now holds the
	// place of a new one, which it opens (DialPooled, or a connect of its
	// own given to Adopt) or gives back (Unreserve).
	ErrMustDial = errors.New("no connection to the target is idle")
)

// TryAcquire is acquire for a caller that must wait neither for a
// connection to be released nor for a connect (an event loop): it
// returns an idle connection (unless fresh is set), ErrMustDial with the
// place of a new connection held, or ErrWouldWait.
func (t *Target) TryAcquire(fresh bool) (*Conn, error) {
	if !fresh {
		select {
		case uc := <-t.idle:
			return uc, nil
		default:
		}
	}
	select {
	case t.slots <- struct{}{}:
		return nil, ErrMustDial
	default:
		return nil, ErrWouldWait
	}
}

// DialPooled dials the connection whose place TryAcquire held; a failed
// dial gives the place back.
func (t *Target) DialPooled(ctx context.Context, deadline time.Time) (*Conn, error) {
	return t.dialPooled(ctx, deadline)
}

// Adopt makes nc, connected by the caller, the connection whose place
// TryAcquire held.
func (t *Target) Adopt(nc net.Conn) *Conn {
	uc := t.wrap(nc)
	uc.pooled = true
	return uc
}

// Unreserve gives back the place TryAcquire held for a connection that
// was not opened.
func (t *Target) Unreserve() { <-t.slots }

// DialTimeout returns the bound of a connect.
func (t *Target) DialTimeout() time.Duration { return t.dialTimeout }

// Dial opens a connection of the target's own, outside its pool (an
// upgrade's, which leaves it); Close closes it.
func (t *Target) Dial(ctx context.Context, deadline time.Time) (*Conn, error) {
	d := net.Dialer{Timeout: t.dialTimeout, Deadline: deadline}
	c, err := d.DialContext(ctx, "tcp", t.addr)
	if err != nil {
		return nil, err
	}
	return t.wrap(c), nil
}

// wrap makes nc a connection of the target's, listed as open. Its
// buffers are ones that streaming connections lent, if any
// (ParkReadBuffer, DropWriteBuffer); the write buffer is taken at the
// first write.
func (t *Target) wrap(nc net.Conn) *Conn {
	uc := &Conn{t: t, c: rawio.Wrap(nc)}
	uc.rd = h1.Reader{Src: uc}
	uc.takeReadBuffer()
	t.open.add(uc)
	return uc
}

// Close closes a connection from Dial.
func (c *Conn) Close() error {
	c.t.open.remove(c)
	return c.c.Close()
}

// release keeps uc for the next request, or closes it when enough are
// kept already.
func (t *Target) release(uc *Conn) {
	if t.retired.Load() {
		t.discard(uc)
		return
	}
	select {
	case t.idle <- uc:
		// Retire may have emptied the pool between the check and the
		// send: empty it again so uc does not stay behind.
		if t.retired.Load() {
			t.CloseIdle()
		}
	default:
		t.discard(uc)
	}
}

// discard closes uc and frees its place for a new connection.
func (t *Target) discard(uc *Conn) {
	uc.Close()
	if uc.pooled {
		<-t.slots
	}
}

// Retire closes the idle connections and makes those in use close when
// their requests end, not return to the pool: for a target its owner no
// longer uses (a pool replaced by a reload, a shutdown). The target still
// serves a request that comes after, on a connection of its own.
func (t *Target) Retire() {
	t.retired.Store(true)
	t.CloseIdle()
}

// CloseIdle closes the idle connections; the target stays in use and
// keeps the connections that come back from their requests.
func (t *Target) CloseIdle() {
	for {
		select {
		case uc := <-t.idle:
			t.discard(uc)
		default:
			return
		}
	}
}

// BodySource is a request body streamed from the client: h1.Body is one.
type BodySource interface {
	Next() ([]byte, error)
}

// ReaderSource gives an io.Reader's bytes (an HTTP/2 request body, a
// net/http one) as a BodySource, read into buf a piece at a time.
type ReaderSource struct {
	r   io.Reader
	buf []byte
	err error
}

// NewReaderSource returns r as a BodySource reading into buf.
func NewReaderSource(r io.Reader, buf []byte) *ReaderSource { return &ReaderSource{r: r, buf: buf} }

// Next returns the next piece read, io.EOF at the end.
func (rs *ReaderSource) Next() ([]byte, error) {
	for rs.err == nil {
		n, err := rs.r.Read(rs.buf)
		rs.err = err
		if n > 0 {
			return rs.buf[:n], nil
		}
	}
	return nil, rs.err
}

// Request is what Do sends.
type Request struct {
	Method []byte
	// Target is the origin-form target: path and query.
	Target []byte
	// Host is the Host field's value.
	Host []byte
	// Fields are the end-to-end fields, without Host and framing, which
	// Do writes.
	Fields []h1.Header
	// Body is the whole body, when the gateway holds it; a request sent
	// again sends it again.
	Body []byte
	// Stream is a body passed on as it arrives from the client, when Body
	// is nil; it can be sent once. Length is its length, or -1 when
	// unknown (it then goes chunked).
	Stream BodySource
	Length int64
	// streamed: Stream has been (partly) sent.
	streamed bool
}

// Streamed reports whether a streamed body has been sent, in part or
// whole: the request cannot be sent again.
func (r *Request) Streamed() bool { return r.streamed }

// Response is a target's answer. Its head's fields are slices of the
// connection's buffer, valid until the body is read; Body reads the body
// from the connection, which the Response holds until Release.
type Response struct {
	h1.Response
	Body h1.Body
	conn *Conn
	keep bool
	// LengthField is the Content-Length the target sent, for answers that
	// carry one without a body (to HEAD, 304); -1 without.
	LengthField int64
}

// Conn returns the connection the response holds; nil after Release.
func (r *Response) Conn() *Conn { return r.conn }

// Release gives the connection back: kept for another request when the
// body was read to its end (or what is left of it is already buffered),
// closed otherwise.
func (r *Response) Release() {
	uc := r.conn
	if uc == nil {
		return
	}
	r.conn = nil
	if !r.Body.Done() && r.keep {
		if left := r.Body.Remaining(); left < 0 || left > int64(len(uc.rd.Buffered())) || r.Body.Skip() != nil {
			r.keep = false
		}
	}
	if uc.home != nil {
		uc.home.Return(uc, r.keep && r.Body.Done() && uc.pooled)
		return
	}
	if r.keep && r.Body.Done() && uc.pooled {
		uc.t.release(uc)
	} else {
		uc.t.discard(uc)
	}
}

// Do sends req to the target and reads the answer's head into resp before
// deadline; the body is then read through resp.Body, and resp.Release gives
// the connection back. Cancelling ctx aborts the exchange (a context that
// cannot be cancelled costs nothing). A kept connection the target had
// closed is replaced once by a new one, the other kept ones dropped (the
// target restarted), unless a streamed body had been sent on it.
// Interim answers (100, 102, 103) are skipped; a 101 is ErrInvalidResponse,
// since Do sends no upgrade (Send does).
func (t *Target) Do(ctx context.Context, req *Request, resp *Response, deadline time.Time) error {
	for try := 0; ; try++ {
		uc, reused, err := t.acquire(ctx, deadline, try > 0)
		if err != nil {
			return err
		}
		err = uc.exchange(ctx, req, resp, deadline, reused)
		if err == nil && resp.Status == 101 {
			// A switch nobody asked for: Do sends no upgrades (Send does).
			err = ErrInvalidResponse
		}
		if err == nil {
			resp.conn = uc
			return nil
		}
		t.discard(uc)
		if errors.Is(err, errStale) && try == 0 && !req.streamed {
			t.CloseIdle()
			continue
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return err
	}
}

// Send writes req on c, a connection from Dial, and reads the answer's
// head into resp, as Do does; Release closes c.
func (c *Conn) Send(ctx context.Context, req *Request, resp *Response, deadline time.Time) error {
	if err := c.exchange(ctx, req, resp, deadline, false); err != nil {
		return err
	}
	resp.conn = c
	return nil
}

// exchange writes req on uc and reads the response head.
func (uc *Conn) exchange(ctx context.Context, req *Request, resp *Response, deadline time.Time, reused bool) error {
	// The read deadline is set at once, since the answer is waited for;
	// the write deadline only if a write must wait for room.
	uc.c.SetReadDeadline(deadline)
	if ctx.Done() != nil {
		stop := context.AfterFunc(ctx, func() { uc.c.SetDeadline(time.Unix(1, 0)) })
		defer stop()
	}
	if err := uc.WriteRequest(req, deadline, reused); err != nil {
		return err
	}
	if uc.rd.R == uc.rd.W {
		// The answer cannot be in yet. Yielding lets the other runnable
		// goroutines go first, and by the time this one runs again the
		// answer has often arrived: the read below then finds it rather
		// than returning EAGAIN and parking until the poller wakes this
		// goroutine. With nothing else runnable it returns at once.
		// docs/benchmarks.md counts the reads it saves.
		runtime.Gosched()
	}
	return uc.ReadHead(req, resp, reused)
}

// WriteRequest writes req on uc, its writes bounded by deadline; reused
// says uc is a kept connection, whose failure may mean the target had
// closed it (the error then matches IsStale). An event loop calls it and
// then ReadHead once the connection is readable; Do calls both.
func (uc *Conn) WriteRequest(req *Request, deadline time.Time, reused bool) error {
	uc.wdl = deadline
	if err := uc.writeRequest(req); err != nil {
		if errors.Is(err, ErrClientBody) {
			return err
		}
		return staleIf(reused && !req.streamed, err)
	}
	return nil
}

// ReadHead reads the answer to req into resp, skipping interim answers.
// The reader's source's errors come back as they are, so a source that
// does not wait (an event loop's) makes ReadHead return its error with
// nothing consumed, to be called again when more has arrived; Attach then
// gives resp the connection.
func (uc *Conn) ReadHead(req *Request, resp *Response, reused bool) error {
	head := string(req.Method) == "HEAD"
	for {
		unread := uc.rd.R == uc.rd.W
		err := uc.rd.ReadResponse(Limits, head, &resp.Response)
		if err != nil {
			var he *h1.Error
			if errors.As(err, &he) {
				return ErrInvalidResponse
			}
			return staleIf(reused && unread && !req.streamed, err)
		}
		if s := resp.Status; s < 100 || s >= 200 || s == 101 {
			break
		}
		reused = false
	}
	resp.LengthField = -1
	if resp.Framing == h1.NoBody {
		if v, ok := resp.Get("Content-Length"); ok {
			resp.LengthField, _ = parseLength(v)
		}
	}
	resp.keep = !resp.Close && resp.Framing != h1.UntilClose
	if resp.Status == 204 || resp.Status == 101 {
		// A 204 has no body whatever its head says (RFC 9110, 15.3.5);
		// bytes it sent as one would be read as the next response.
		if _, ok := resp.Get("Content-Length"); ok {
			resp.keep = false
		}
		if _, ok := resp.Get("Transfer-Encoding"); ok {
			resp.keep = false
		}
		resp.LengthField = -1
	}
	resp.Body.Reset(&uc.rd, resp.Framing, resp.ContentLength, Limits)
	return nil
}

// Attach gives resp the connection its head was read from, which
// Release gives back.
func (resp *Response) Attach(uc *Conn) { resp.conn = uc }

// IsStale reports whether err says a kept connection had been closed by
// the target before the request reached it: the request may go again on
// a new connection.
func IsStale(err error) bool { return errors.Is(err, errStale) }

func parseLength(v []byte) (int64, bool) {
	var n int64
	for _, c := range v {
		n = n*10 + int64(c-'0')
	}
	return n, true
}

// ParkReadBuffer lends the connection's read buffer to its target's
// other connections while the body of its response is about to wait for
// bytes and at most a few are buffered (a chunk's CRLF), which it keeps:
// a long stream between two events (an AI stream's tokens) then holds no
// buffer. It reports whether it lent it; UnparkReadBuffer must then take
// one back before the connection is read again.
func (uc *Conn) ParkReadBuffer() bool {
	rd := &uc.rd
	if rd.W-rd.R > len(uc.rheld) || rd.Low != 0 || len(rd.Buf) != uc.t.readBuffer {
		return false
	}
	uc.rheldN = uint8(copy(uc.rheld[:], rd.Buf[rd.R:rd.W]))
	box := uc.rbox
	if box == nil {
		box = new([]byte)
	}
	*box, uc.rbox = rd.Buf, nil
	rd.Buf, rd.R, rd.W = nil, 0, 0
	uc.t.rbufs.Put(box)
	return true
}

// UnparkReadBuffer gives the connection a read buffer again after
// ParkReadBuffer lent its own.
func (uc *Conn) UnparkReadBuffer() {
	uc.takeReadBuffer()
	uc.rd.R, uc.rd.W = 0, copy(uc.rd.Buf, uc.rheld[:uc.rheldN])
}

// takeReadBuffer gives the connection a read buffer from its target's
// pool.
func (uc *Conn) takeReadBuffer() {
	box := uc.t.rbufs.Get().(*[]byte)
	uc.rd.Buf, uc.rbox = *box, box
	*box = nil
}

// DropWriteBuffer lends the connection's write buffer to its target's
// other connections while the body of its response streams for long and
// nothing is to be written (an AI stream): the next request on it takes
// one again.
func (uc *Conn) DropWriteBuffer() {
	if uc.wbuf != nil {
		b := uc.wbuf[:0]
		uc.wbuf = nil
		uc.t.wbufs.Put(&b)
	}
}

// writeRequest writes the head and the body.
func (uc *Conn) writeRequest(req *Request) error {
	if uc.wbuf == nil {
		uc.wbuf = (*uc.t.wbufs.Get().(*[]byte))[:0]
	}
	b := h1.AppendRequestLine(uc.wbuf[:0], req.Method, req.Target)
	b = append(b, "Host: "...)
	b = append(b, req.Host...)
	b = append(b, "\r\n"...)
	for i := range req.Fields {
		b = h1.AppendField(b, req.Fields[i].Name, req.Fields[i].Value)
	}
	switch {
	case req.Stream != nil && req.Length < 0:
		b = append(b, "Transfer-Encoding: chunked\r\n"...)
	case req.Stream != nil:
		b = h1.AppendContentLength(b, req.Length)
	case req.Body != nil || bodyMethod(req.Method):
		b = h1.AppendContentLength(b, int64(len(req.Body)))
	}
	b = append(b, "\r\n"...)
	if req.Stream == nil && len(req.Body) <= inlineBody {
		b = append(b, req.Body...)
		uc.wbuf = b[:0]
		return uc.send(b)
	}
	uc.wbuf = b[:0]
	if err := uc.send(b); err != nil {
		return err
	}
	if req.Stream == nil {
		return uc.send(req.Body)
	}
	return uc.writeStream(req)
}

// bodyMethod reports whether a request with this method and no body
// still says so with Content-Length: 0, as clients do for POST and PUT.
func bodyMethod(m []byte) bool {
	switch string(m) {
	case "POST", "PUT", "PATCH":
		return true
	}
	return false
}

// writeStream passes a streamed body on as it arrives, chunked when its
// length is unknown.
func (uc *Conn) writeStream(req *Request) error {
	req.streamed = true
	chunked := req.Length < 0
	for {
		p, err := req.Stream.Next()
		if err == io.EOF {
			if chunked {
				return uc.send([]byte("0\r\n\r\n"))
			}
			return nil
		}
		if err != nil {
			return errors.Join(ErrClientBody, err)
		}
		if chunked {
			if err := uc.send(h1.AppendChunkSize(uc.wbuf[:0], len(p))); err != nil {
				return err
			}
		}
		if err := uc.send(p); err != nil {
			return err
		}
		if chunked {
			if err := uc.send([]byte("\r\n")); err != nil {
				return err
			}
		}
	}
}

// staleIf marks err as a stale connection's when the connection was a
// kept one and the failure says the target had closed it.
func staleIf(reused bool, err error) error {
	if reused && (errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)) {
		return errStale
	}
	return err
}

// Open lists connections open to targets, across targets and config
// generations, so that a shutdown past its deadline can end them all.
// A nil *Open lists nothing.
type Open struct {
	mu sync.Mutex
	m  map[*Conn]struct{}
}

func (o *Open) add(c *Conn) {
	if o == nil {
		return
	}
	o.mu.Lock()
	if o.m == nil {
		o.m = make(map[*Conn]struct{})
	}
	o.m[c] = struct{}{}
	o.mu.Unlock()
}

func (o *Open) remove(c *Conn) {
	if o == nil {
		return
	}
	o.mu.Lock()
	delete(o.m, c)
	o.mu.Unlock()
}

// EndAll makes every read and write on every listed connection fail
// from now on.
func (o *Open) EndAll() {
	o.mu.Lock()
	defer o.mu.Unlock()
	for c := range o.m {
		c.c.SetDeadline(time.Unix(1, 0))
	}
}
