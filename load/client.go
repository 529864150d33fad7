package load

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"os"
	"sync/atomic"
	"syscall"
	"time"
)

// HTTPVersion is the protocol a scenario speaks.
type HTTPVersion string

// The HTTP versions relia's client speaks.
const (
	// HTTP1 is HTTP/1.1 over keep-alive connections (TLS for https URLs),
	// on relia's own client (wire.go), whose responses relia's codec
	// reads; a request is sent with no allocation: relia measures the
	// service, not its own overhead.
	HTTP1 HTTPVersion = "1.1"
	// HTTP2 is HTTP/2 over TLS, negotiated with ALPN.
	HTTP2 HTTPVersion = "2"
	// H2C is HTTP/2 over cleartext TCP with prior knowledge.
	H2C HTTPVersion = "h2c"
)

// ClientOptions configure how requests go out.
type ClientOptions struct {
	Version HTTPVersion
	// Timeout bounds one request from send to the last body byte.
	Timeout time.Duration
	// Insecure skips TLS certificate verification.
	Insecure bool
	// CAFile is a PEM bundle of extra roots to trust.
	CAFile string
	// MaxConns bounds the connections per host; it should be at least the
	// number of requests in flight, or requests queue inside the client.
	MaxConns int
	// MaxBodyBytes bounds a response body that checks read.
	MaxBodyBytes int
	// OwnRedirects answers redirects as they are on HTTP/2 too, as relia's
	// HTTP/1.1 client always does, so that a journey follows them itself:
	// by its own limit, with the user's cookies, each hop recorded.
	OwnRedirects bool
}

// wireRequest is one rendered request, ready to send.
type wireRequest struct {
	method  string
	url     []byte
	headers []headerPair
	body    []byte
}

type headerPair struct{ key, value []byte }

// wireReply is what the engine keeps of one response.
type wireReply struct {
	status            int
	body              []byte // only when the caller asked for it
	bytesIn, bytesOut int64
	phases            Phases
	// heads, when set, receives the response's Set-Cookie and Location
	// fields (a journey's cookie jar and redirects read them).
	heads *respHeads
}

// respHeads are the response fields a journey keeps: the cookies the
// response sets and where it redirects to, copied out of the read buffer.
type respHeads struct {
	setCookie [][]byte
	location  []byte
}

// reset empties h for the next response, keeping its buffers.
func (h *respHeads) reset() {
	h.setCookie = h.setCookie[:0]
	h.location = h.location[:0]
}

// add copies one response field in when it is one a journey keeps.
func (h *respHeads) add(name, value []byte) {
	switch {
	case asciiEqualFold(name, "set-cookie"):
		h.setCookie = append(h.setCookie, append([]byte(nil), value...))
	case asciiEqualFold(name, "location"):
		h.location = append(h.location[:0], value...)
	}
}

// transport sends requests; session is one worker's private handle on it,
// holding reusable buffers so that sending allocates nothing.
type transport interface {
	session() session
	close()
}

type session interface {
	do(req *wireRequest, keepBody bool, rep *wireReply) error
}

func newTransport(o ClientOptions) (transport, error) {
	tlsConf, err := o.tlsConfig()
	if err != nil {
		return nil, err
	}
	if o.Timeout <= 0 {
		return nil, fmt.Errorf("client timeout %s must be > 0", o.Timeout)
	}
	maxConns := o.MaxConns
	if maxConns <= 0 {
		maxConns = 1024
	}
	switch o.Version {
	case "", HTTP1:
		return newWireTransport(o, maxConns, tlsConf), nil
	case HTTP2, H2C:
		tr := &http.Transport{
			TLSClientConfig:     tlsConf,
			MaxConnsPerHost:     maxConns,
			MaxIdleConnsPerHost: maxConns,
			ForceAttemptHTTP2:   true,
			DisableCompression:  true,
		}
		var protos http.Protocols
		if o.Version == H2C {
			protos.SetUnencryptedHTTP2(true)
		} else {
			protos.SetHTTP2(true)
		}
		tr.Protocols = &protos
		c := &http.Client{Transport: tr, Timeout: o.Timeout}
		if o.OwnRedirects {
			c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
		}
		return &stdTransport{c: c, maxBody: o.MaxBodyBytes}, nil
	}
	return nil, fmt.Errorf("http version %q: want %q, %q or %q", o.Version, HTTP1, HTTP2, H2C)
}

func (o ClientOptions) tlsConfig() (*tls.Config, error) {
	conf := &tls.Config{InsecureSkipVerify: o.Insecure} //nolint:gosec // opt-in for test environments
	if o.CAFile != "" {
		pem, err := os.ReadFile(o.CAFile)
		if err != nil {
			return nil, fmt.Errorf("tls ca file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("tls ca file %s: no PEM certificate found", o.CAFile)
		}
		conf.RootCAs = pool
	}
	return conf, nil
}

var (
	errConnReset error = resetError{}
	errNoConn          = errors.New("no free connection")
)

// resetError is a connection the server closed before answering; it
// classifies as a reset (outcome.ClassReset) like ECONNRESET.
type resetError struct{}

func (resetError) Error() string        { return "connection reset" }
func (resetError) Is(target error) bool { return target == syscall.ECONNRESET }

// stdTransport is HTTP/2 (and h2c) on net/http.
type stdTransport struct {
	c       *http.Client
	maxBody int
}

func (t *stdTransport) session() session {
	s := &stdSession{t: t}
	s.trace = s.marks.clientTrace()
	return s
}

func (t *stdTransport) close() { t.c.CloseIdleConnections() }

type stdSession struct {
	t     *stdTransport
	buf   bytes.Buffer
	marks traceMarks
	trace *httptrace.ClientTrace
}

// traceMarks are the moments of one request that net/http's client
// trace reports, in nanoseconds since the request began. They are atomic
// because the transport may call a hook from its own goroutines (a dial
// that goes on after the request was served by another connection).
type traceMarks struct {
	start                    time.Time
	gotConn                  atomic.Int64
	dnsStart                 atomic.Int64
	connectStart, connectEnd atomic.Int64
	tlsStart, tlsEnd         atomic.Int64
	wrote, firstByte         atomic.Int64
}

func (m *traceMarks) since() int64 { return int64(max(time.Since(m.start), 1)) }

func (m *traceMarks) reset() {
	m.start = time.Now()
	for _, a := range []*atomic.Int64{&m.gotConn, &m.dnsStart, &m.connectStart, &m.connectEnd, &m.tlsStart, &m.tlsEnd, &m.wrote, &m.firstByte} {
		a.Store(0)
	}
}

func (m *traceMarks) clientTrace() *httptrace.ClientTrace {
	mark := func(a *atomic.Int64) { a.CompareAndSwap(0, m.since()) }
	return &httptrace.ClientTrace{
		GotConn:              func(httptrace.GotConnInfo) { mark(&m.gotConn) },
		DNSStart:             func(httptrace.DNSStartInfo) { mark(&m.dnsStart) },
		ConnectStart:         func(string, string) { mark(&m.connectStart) },
		ConnectDone:          func(string, string, error) { mark(&m.connectEnd) },
		TLSHandshakeStart:    func() { mark(&m.tlsStart) },
		TLSHandshakeDone:     func(tls.ConnectionState, error) { mark(&m.tlsEnd) },
		WroteRequest:         func(httptrace.WroteRequestInfo) { mark(&m.wrote) },
		GotFirstResponseByte: func() { mark(&m.firstByte) },
	}
}

// phases turns the marks into a request's phases, the request having
// ended now; a moment the request never reached leaves its phase 0 and
// gives the time to the phase in which it ended.
func (m *traceMarks) phases() Phases {
	end := m.since()
	at := func(a *atomic.Int64) time.Duration { return time.Duration(a.Load()) }
	var ph Phases
	// Connecting holds the name lookup, as relia's own client's dial does.
	s := at(&m.connectStart)
	if d := at(&m.dnsStart); d > 0 && (s == 0 || d < s) {
		s = d
	}
	if e := at(&m.connectEnd); s > 0 && e >= s {
		ph.Connecting = e - s
	}
	if s, e := at(&m.tlsStart), at(&m.tlsEnd); s > 0 && e >= s {
		ph.TLSHandshaking = e - s
	}
	got, wrote, first, stop := at(&m.gotConn), at(&m.wrote), at(&m.firstByte), time.Duration(end)
	if got == 0 {
		ph.Blocked = max(stop-ph.Connecting-ph.TLSHandshaking, 0)
		return ph
	}
	ph.Blocked = max(got-ph.Connecting-ph.TLSHandshaking, 0)
	if wrote == 0 {
		ph.Sending = stop - got
		return ph
	}
	ph.Sending = max(wrote-got, 0)
	if first == 0 {
		ph.Waiting = stop - wrote
		return ph
	}
	ph.Waiting, ph.Receiving = max(first-wrote, 0), stop-first
	return ph
}

func (s *stdSession) do(r *wireRequest, keepBody bool, rep *wireReply) error {
	var body io.Reader
	if len(r.body) > 0 {
		body = bytes.NewReader(r.body)
	}
	s.marks.reset()
	defer func() { rep.phases = s.marks.phases() }()
	req, err := http.NewRequestWithContext(httptrace.WithClientTrace(context.Background(), s.trace), r.method, string(r.url), body)
	if err != nil {
		return err
	}
	for _, h := range r.headers {
		req.Header.Set(string(h.key), string(h.value))
	}
	rep.bytesOut = int64(len(r.method) + len(r.url) + len(r.body))
	for _, h := range r.headers {
		rep.bytesOut += int64(len(h.key) + len(h.value) + 4)
	}
	resp, err := s.t.c.Do(req)
	if err != nil {
		return unwrapURLError(err)
	}
	defer resp.Body.Close()
	rep.status = resp.StatusCode
	if h := rep.heads; h != nil {
		h.reset()
		for k, vs := range resp.Header {
			for _, v := range vs {
				h.add([]byte(k), []byte(v))
			}
		}
	}
	s.buf.Reset()
	var src io.Reader = resp.Body
	if s.t.maxBody > 0 {
		src = io.LimitReader(resp.Body, int64(s.t.maxBody))
	}
	n, err := s.buf.ReadFrom(src)
	if err != nil {
		return unwrapURLError(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	rep.bytesIn = n
	for k, vs := range resp.Header {
		for _, v := range vs {
			rep.bytesIn += int64(len(k) + len(v) + 4)
		}
	}
	if keepBody {
		rep.body = append(rep.body[:0], s.buf.Bytes()...)
	}
	return nil
}

// unwrapURLError drops net/http's *url.Error wrapper, whose message repeats
// the URL on every failure, keeping the cause for classification.
func unwrapURLError(err error) error {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return fmt.Errorf("%w: %w", context.DeadlineExceeded, err)
	}
	if u := errors.Unwrap(err); u != nil {
		return u
	}
	return err
}
