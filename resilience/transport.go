package resilience

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/relia-dev/relia/clock"
)

// DefaultMaxBufferedBody is the largest request body without GetBody that
// a Transport buffers so it can send it again, when
// TransportSettings.MaxBufferedBody is left zero.
const DefaultMaxBufferedBody = 1 << 20

// discardDrainLimit is how much of a superseded response body is read
// before it is closed: enough to let an HTTP/1.1 connection that carried a
// short error page go back to the pool, little enough that a large body is
// cut off rather than downloaded for nothing.
const discardDrainLimit = 4 << 10

// TransportSettings configures a Transport. Zero values mean the
// documented defaults; invalid values make NewTransport return an error.
type TransportSettings struct {
	// Policies run every request, outermost first, as in a Pipeline of
	// *http.Response: a Fallback among them must be a
	// Fallback[*http.Response].
	Policies []Policy
	// MaxBufferedBody is the largest request body that is read into memory
	// so that it can be sent again, for requests whose GetBody is nil
	// (requests built by http.NewRequest from a bytes.Buffer, bytes.Reader
	// or strings.Reader have one and are never buffered). A larger body is
	// streamed to a single attempt. Zero means DefaultMaxBufferedBody (1
	// MiB); negative is an error.
	MaxBufferedBody int64
	// Clock is the source of the current time for Retry-After dates; nil
	// means real. Waits are the policies' business and use their own
	// clocks.
	Clock clock.Clock
}

// Transport is an http.RoundTripper that sends each request through a
// pipeline of policies, for use as an http.Client's Transport:
//
//	t, _ := resilience.NewTransport(nil, resilience.TransportSettings{
//		Policies: []resilience.Policy{retry, breaker, timeout},
//	})
//	client := &http.Client{Transport: t}
//
// A response with status 5xx or 429, and an error from the base
// transport, is a failure for the policies: a response is classified into
// a *StatusError, which carries the Retry-After hint so that Retry waits
// as the server asked. Responses superseded by a retry or a losing hedge
// have their bodies drained (up to 4 KiB) and closed.
//
// Only requests that can safely be sent twice are retried or hedged: those
// with method GET, HEAD, OPTIONS, TRACE, PUT or DELETE, or carrying an
// Idempotency-Key or X-Idempotency-Key header (the same rule as
// net/http's). Other requests run once through the policies, marked
// WithoutRetry, so a breaker or a limiter still applies to them. Each
// attempt gets a fresh copy of the body, from GetBody or from a buffer
// of up to MaxBufferedBody; a larger body without GetBody cannot be
// replayed and gets one attempt. Under a Hedge, GetBody is called by
// attempts running at once, so it must be safe for concurrent use (those
// http.NewRequest sets are).
//
// When the last attempt got a response, even a 503, RoundTrip returns
// that response and a nil error, as a plain transport would: the caller
// sees the upstream's own answer, headers and body. RoundTrip returns an
// error when there is no response to show: a rejection by a policy (an
// open breaker, a rate limit), a timeout, a transport error, or a caller
// that has gone.
//
// When a Hedge picked the response, the attempt's context stays alive
// until the response body is closed or read to the end, so the body can
// be read after RoundTrip returns; the loser's context is cancelled.
//
// A Transport is safe for concurrent use.
type Transport struct {
	base      http.RoundTripper
	pipe      *Pipeline[*http.Response]
	maxBuffer int64
	clock     clock.Clock
}

var _ http.RoundTripper = (*Transport)(nil)

// NewTransport returns a Transport sending through base, or through
// http.DefaultTransport when base is nil. It returns an error for an
// invalid setting or a Fallback of another result type than
// *http.Response.
func NewTransport(base http.RoundTripper, s TransportSettings) (*Transport, error) {
	switch {
	case s.MaxBufferedBody < 0:
		return nil, fmt.Errorf("transport: negative MaxBufferedBody %d", s.MaxBufferedBody)
	case s.MaxBufferedBody == 0:
		s.MaxBufferedBody = DefaultMaxBufferedBody
	}
	if base == nil {
		base = http.DefaultTransport
	}
	p, err := BuildPipeline[*http.Response](s.Policies...)
	if err != nil {
		return nil, fmt.Errorf("transport: %w", err)
	}
	t := &Transport{base: base, maxBuffer: s.MaxBufferedBody, clock: clock.OrReal(s.Clock)}
	t.pipe = p.WithClassifier(t.classify).WithDiscard(discardResponse)
	return t, nil
}

// RoundTrip sends req through the policies; see Transport for what it
// returns.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx := req.Context()
	body, err := t.replayBody(req)
	if err != nil {
		return nil, err
	}
	defer body.close()
	if !body.replayable || !idempotent(req) {
		ctx = WithoutRetry(ctx)
	}
	resp, cancel, err := t.pipe.get(ctx, func(ctx context.Context) (*http.Response, error) {
		r := req.WithContext(ctx)
		if err := body.attach(r); err != nil {
			return nil, err
		}
		return t.base.RoundTrip(r)
	})
	if err == nil && resp == nil {
		err = errors.New("no response")
	}
	if err != nil && (!upstreamAnswered(resp, err) || req.Context().Err() != nil) {
		discardResponse(resp)
		if cancel != nil {
			cancel()
		}
		return nil, err
	}
	if cancel != nil {
		if resp.Body == nil {
			cancel()
		} else {
			resp.Body = newCancelBody(resp.Body, cancel)
		}
	}
	return resp, nil
}

// CloseIdleConnections closes the base transport's idle connections, when
// it has such a method, so that http.Client.CloseIdleConnections reaches
// through the Transport.
func (t *Transport) CloseIdleConnections() {
	if c, ok := t.base.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}

// classify is the pipeline's classifier: 5xx and 429 responses are
// failures, with their Retry-After as the hint.
func (t *Transport) classify(resp *http.Response, err error) error {
	if err != nil || resp == nil {
		return err
	}
	if resp.StatusCode < 500 && resp.StatusCode != http.StatusTooManyRequests {
		return nil
	}
	se := &StatusError{StatusCode: resp.StatusCode, Status: resp.Status}
	if v := resp.Header.Get("Retry-After"); v != "" {
		se.RetryAfter, _ = ParseRetryAfter(v, t.clock.Now())
	}
	return se
}

// upstreamAnswered reports whether err is the classified failure of resp
// itself, rather than a rejection or error that came after it.
func upstreamAnswered(resp *http.Response, err error) bool {
	var se *StatusError
	return resp != nil && errors.As(err, &se) && se.StatusCode == resp.StatusCode
}

// idempotent reports whether req may be sent more than once.
func idempotent(req *http.Request) bool {
	switch req.Method {
	case "", http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace, http.MethodPut, http.MethodDelete:
		return true
	}
	return req.Header.Get("Idempotency-Key") != "" || req.Header.Get("X-Idempotency-Key") != ""
}

// discardResponse is the pipeline's discard hook.
func discardResponse(resp *http.Response) {
	if resp == nil || resp.Body == nil {
		return
	}
	_, _ = io.CopyN(io.Discard, resp.Body, discardDrainLimit)
	_ = resp.Body.Close()
}

// StatusError is the failure the Transport's policies see for a response
// with status 5xx or 429. It carries the response's Retry-After, so that
// Retry waits at least as long as the server asked.
type StatusError struct {
	// StatusCode is the response's status code.
	StatusCode int
	// Status is the response's status line, e.g. "503 Service Unavailable".
	Status string
	// RetryAfter is the wait the Retry-After header asked for; zero when
	// there was none or it could not be parsed.
	RetryAfter time.Duration
}

// Error names the status.
func (e *StatusError) Error() string {
	s := e.Status
	if s == "" {
		s = strconv.Itoa(e.StatusCode)
	}
	return "upstream answered " + s
}

// RetryHint returns the Retry-After wait, if the response had one.
func (e *StatusError) RetryHint() (time.Duration, bool) {
	return e.RetryAfter, e.RetryAfter > 0
}

// requestBody hands each attempt its own copy of a request's body.
type requestBody struct {
	// orig is the caller's body, closed when the call ends unless an
	// attempt took it over.
	orig io.ReadCloser
	// get returns a fresh copy of the body; nil when there is no body or
	// only the single stream.
	get func() (io.ReadCloser, error)
	// stream is the one-shot body of a request too large to buffer; taken
	// by the first attempt.
	stream     atomic.Pointer[io.ReadCloser]
	replayable bool
}

// replayBody prepares req's body for being sent by one or more attempts.
func (t *Transport) replayBody(req *http.Request) (*requestBody, error) {
	b := &requestBody{replayable: true}
	if req.Body == nil || req.Body == http.NoBody {
		return b, nil
	}
	b.orig = req.Body
	if req.GetBody != nil {
		b.get = req.GetBody
		return b, nil
	}
	var prefix []byte
	if req.ContentLength <= t.maxBuffer {
		var err error
		prefix, err = io.ReadAll(io.LimitReader(req.Body, t.maxBuffer+1))
		if err != nil {
			_ = req.Body.Close()
			return nil, fmt.Errorf("reading request body: %w", err)
		}
		if int64(len(prefix)) <= t.maxBuffer {
			b.get = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(prefix)), nil }
			return b, nil
		}
	}
	// Too large to keep: the bytes already read go first, then the rest of
	// the caller's stream, and the attempt that sends it closes it.
	var rc io.ReadCloser = struct {
		io.Reader
		io.Closer
	}{io.MultiReader(bytes.NewReader(prefix), req.Body), req.Body}
	b.stream.Store(&rc)
	b.replayable = false
	return b, nil
}

// attach gives the attempt's request r its copy of the body.
func (b *requestBody) attach(r *http.Request) error {
	switch {
	case b.get != nil:
		body, err := b.get()
		if err != nil {
			return fmt.Errorf("rewinding request body: %w", err)
		}
		r.Body, r.GetBody = body, b.get
	case b.orig != nil:
		s := b.stream.Swap(nil)
		if s == nil {
			return errors.New("request body already sent and cannot be replayed")
		}
		r.Body, r.GetBody = *s, nil
	}
	return nil
}

// close closes the caller's body unless an attempt took it over.
func (b *requestBody) close() {
	if b.orig == nil {
		return
	}
	if b.get != nil || b.stream.Swap(nil) != nil {
		_ = b.orig.Close()
	}
}

// cancelBody ends the winning attempt's context when the caller is done
// with the body: at Close, or when it has been read to the end.
type cancelBody struct {
	io.ReadCloser
	cancel context.CancelFunc
}

// cancelRWBody keeps a 101 Switching Protocols body writable.
type cancelRWBody struct {
	*cancelBody
	w io.Writer
}

func newCancelBody(body io.ReadCloser, cancel context.CancelFunc) io.ReadCloser {
	cb := &cancelBody{ReadCloser: body, cancel: cancel}
	if w, ok := body.(io.Writer); ok {
		return cancelRWBody{cb, w}
	}
	return cb
}

func (b *cancelBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err == io.EOF {
		b.cancel()
	}
	return n, err
}

func (b *cancelBody) Close() error {
	err := b.ReadCloser.Close()
	b.cancel()
	return err
}

func (b cancelRWBody) Write(p []byte) (int, error) { return b.w.Write(p) }
