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
	"os"
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
		return &stdTransport{c: &http.Client{Transport: tr, Timeout: o.Timeout}, maxBody: o.MaxBodyBytes}, nil
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

func (t *stdTransport) session() session { return &stdSession{t: t} }

func (t *stdTransport) close() { t.c.CloseIdleConnections() }

type stdSession struct {
	t   *stdTransport
	buf bytes.Buffer
}

func (s *stdSession) do(r *wireRequest, keepBody bool, rep *wireReply) error {
	var body io.Reader
	if len(r.body) > 0 {
		body = bytes.NewReader(r.body)
	}
	req, err := http.NewRequestWithContext(context.Background(), r.method, string(r.url), body)
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
