package resilience

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/relia-dev/relia/clock"
)

// bodyCounter is a base transport over a real http.Transport that counts
// response bodies opened and closed, and records each attempt's context.
type bodyCounter struct {
	base           http.RoundTripper
	opened, closed atomic.Int64
	opens, closes  chan struct{} // one value per body opened, and closed

	mu   sync.Mutex
	ctxs []context.Context
}

func newBodyCounter(t *testing.T) *bodyCounter {
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	return &bodyCounter{base: tr, opens: make(chan struct{}, 16), closes: make(chan struct{}, 16)}
}

func (c *bodyCounter) RoundTrip(r *http.Request) (*http.Response, error) {
	c.mu.Lock()
	c.ctxs = append(c.ctxs, r.Context())
	c.mu.Unlock()
	resp, err := c.base.RoundTrip(r)
	if err != nil {
		return nil, err
	}
	c.opened.Add(1)
	c.opens <- struct{}{}
	resp.Body = &countedBody{ReadCloser: resp.Body, c: c}
	return resp, nil
}

// attemptCtx returns the context of attempt i (from 0).
func (c *bodyCounter) attemptCtx(i int) context.Context {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ctxs[i]
}

func (c *bodyCounter) open() int64 { return c.opened.Load() - c.closed.Load() }

type countedBody struct {
	io.ReadCloser
	c    *bodyCounter
	once sync.Once
}

func (b *countedBody) Close() error {
	b.once.Do(func() {
		b.c.closed.Add(1)
		b.c.closes <- struct{}{}
	})
	return b.ReadCloser.Close()
}

// scriptedServer answers its n-th request (from 0) with statuses[n], the
// last status repeating, and records each request's body.
type scriptedServer struct {
	*httptest.Server
	mu       sync.Mutex
	statuses []int
	bodies   []string
	header   http.Header // added to every failing response
}

func newScriptedServer(t *testing.T, statuses ...int) *scriptedServer {
	s := &scriptedServer{statuses: statuses, header: http.Header{}}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		s.mu.Lock()
		n := len(s.bodies)
		s.bodies = append(s.bodies, string(body))
		status := s.statuses[min(n, len(s.statuses)-1)]
		s.mu.Unlock()
		if status >= 400 {
			for k, v := range s.header {
				w.Header()[k] = v
			}
		}
		w.WriteHeader(status)
		fmt.Fprintf(w, "answer %d", n+1)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *scriptedServer) received() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.bodies)
}

// mustTransport returns a Transport, failing the test on an error.
func mustTransport(t *testing.T, base http.RoundTripper, s TransportSettings) *Transport {
	t.Helper()
	tr, err := NewTransport(base, s)
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

// getAsync sends a GET through tr from a goroutine of its own. The channel
// gets the response, or nil after an error that fails the test.
func getAsync(t *testing.T, tr http.RoundTripper, url string) <-chan *http.Response {
	done := make(chan *http.Response, 1)
	go func() {
		resp, err := (&http.Client{Transport: tr}).Get(url)
		if err != nil {
			t.Error(err)
		}
		done <- resp
	}()
	return done
}

func TestTransportSettingsInvalid(t *testing.T) {
	t.Parallel()
	if _, err := NewTransport(nil, TransportSettings{MaxBufferedBody: -1}); err == nil || !strings.Contains(err.Error(), "MaxBufferedBody") {
		t.Errorf("negative MaxBufferedBody: error %v", err)
	}
	fb, err := NewFallback(FallbackSettings[string]{Value: "x"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := NewTransport(nil, TransportSettings{Policies: []Policy{fb}}); err == nil {
		t.Error("a Fallback[string] was accepted in a transport of *http.Response")
	}
}

func TestTransportRetries(t *testing.T) {
	t.Parallel()
	const payload = "order=42&qty=1"
	tests := []struct {
		name     string
		method   string
		header   string // a header to set to "k1", if any
		getBody  bool   // build the body so the request has GetBody
		statuses []int
		want     int // the status the caller sees
		attempts int
	}{
		{name: "GET 503 then 200", method: "GET", statuses: []int{503, 200}, want: 200, attempts: 2},
		{name: "GET 429 then 200", method: "GET", statuses: []int{429, 200}, want: 200, attempts: 2},
		{name: "GET 404 is an answer", method: "GET", statuses: []int{404, 200}, want: 404, attempts: 1},
		{name: "GET 500 every time returns the last 500", method: "GET", statuses: []int{500}, want: 500, attempts: 3},
		{name: "PUT is idempotent", method: "PUT", getBody: true, statuses: []int{502, 200}, want: 200, attempts: 2},
		{name: "POST is not retried", method: "POST", statuses: []int{503, 200}, want: 503, attempts: 1},
		{name: "PATCH is not retried", method: "PATCH", getBody: true, statuses: []int{503, 200}, want: 503, attempts: 1},
		{name: "POST with Idempotency-Key", method: "POST", header: "Idempotency-Key", statuses: []int{503, 503, 200}, want: 200, attempts: 3},
		{name: "POST with X-Idempotency-Key and GetBody", method: "POST", header: "X-Idempotency-Key", getBody: true, statuses: []int{503, 200}, want: 200, attempts: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := newScriptedServer(t, tt.statuses...)
			retry, err := NewRetry(RetrySettings{MaxAttempts: 3, Clock: jumpClock{clock.NewFake(time.Time{})}})
			if err != nil {
				t.Fatal(err)
			}
			counter := newBodyCounter(t)
			tr := mustTransport(t, counter, TransportSettings{Policies: []Policy{retry}})
			var body io.Reader = io.NopCloser(strings.NewReader(payload)) // no GetBody
			if tt.getBody {
				body = strings.NewReader(payload)
			}
			if tt.method == "GET" {
				body = nil
			}
			req, err := http.NewRequest(tt.method, srv.URL, body)
			if err != nil {
				t.Fatal(err)
			}
			if tt.header != "" {
				req.Header.Set(tt.header, "k1")
			}
			resp, err := (&http.Client{Transport: tr}).Do(req)
			if err != nil {
				t.Fatalf("Do: %v", err)
			}
			got, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tt.want || string(got) != "answer "+strconv.Itoa(tt.attempts) {
				t.Errorf("got %d %q, want %d from attempt %d", resp.StatusCode, got, tt.want, tt.attempts)
			}
			received := srv.received()
			if len(received) != tt.attempts {
				t.Errorf("server saw %d attempts, want %d", len(received), tt.attempts)
			}
			for i, b := range received {
				if want := payload; tt.method != "GET" && b != want {
					t.Errorf("attempt %d sent body %q, want %q", i+1, b, want)
				}
			}
			if n := counter.open(); n != 0 {
				t.Errorf("%d response bodies left open", n)
			}
		})
	}
}

func TestTransportLargeBodyIsSentOnce(t *testing.T) {
	t.Parallel()
	payload := strings.Repeat("0123456789", 10)
	tests := []struct {
		name          string
		contentLength int64 // as the request declares it
	}{
		{"length unknown", -1},
		{"length declared", int64(len(payload))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := newScriptedServer(t, 503, 200)
			retry, err := NewRetry(RetrySettings{Clock: jumpClock{clock.NewFake(time.Time{})}})
			if err != nil {
				t.Fatal(err)
			}
			tr := mustTransport(t, newBodyCounter(t), TransportSettings{Policies: []Policy{retry}, MaxBufferedBody: 16})
			req, err := http.NewRequest("PUT", srv.URL, io.NopCloser(strings.NewReader(payload)))
			if err != nil {
				t.Fatal(err)
			}
			req.ContentLength = tt.contentLength
			resp, err := tr.RoundTrip(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != 503 {
				t.Errorf("status %d, want the single attempt's 503", resp.StatusCode)
			}
			if got := srv.received(); len(got) != 1 || got[0] != payload {
				t.Errorf("server received %q, want the whole body once", got)
			}
		})
	}
}

// closeRecorder is a request body that records whether it was closed.
type closeRecorder struct {
	io.Reader
	closed atomic.Bool
}

func (c *closeRecorder) Close() error { c.closed.Store(true); return nil }

func TestTransportClosesRequestBody(t *testing.T) {
	t.Parallel()
	open, err := NewBreaker(BreakerSettings{})
	if err != nil {
		t.Fatal(err)
	}
	open.ForceOpen()
	tests := []struct {
		name      string
		policies  []Policy
		getBody   bool
		maxBuffer int64
		wantErr   error
	}{
		{name: "buffered", policies: nil},
		{name: "with GetBody", getBody: true},
		{name: "streamed", maxBuffer: 1},
		{name: "rejected before sending", policies: []Policy{open}, wantErr: ErrBreakerOpen},
		{name: "streamed and rejected", policies: []Policy{open}, maxBuffer: 1, wantErr: ErrBreakerOpen},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := newScriptedServer(t, 200)
			tr := mustTransport(t, newBodyCounter(t), TransportSettings{Policies: tt.policies, MaxBufferedBody: tt.maxBuffer})
			body := &closeRecorder{Reader: strings.NewReader("hello")}
			req, err := http.NewRequest("PUT", srv.URL, body)
			if err != nil {
				t.Fatal(err)
			}
			if tt.getBody {
				req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader("hello")), nil }
			}
			resp, err := tr.RoundTrip(req)
			if !errors.Is(err, tt.wantErr) || (err == nil) != (tt.wantErr == nil) {
				t.Fatalf("RoundTrip error %v, want %v", err, tt.wantErr)
			}
			if resp != nil {
				resp.Body.Close()
			}
			// The base transport may close a streamed body from its own
			// goroutine after RoundTrip returns.
			waitFor(t, body.closed.Load)
		})
	}
}

func TestTransportHonoursRetryAfter(t *testing.T) {
	t.Parallel()
	fc := clock.NewFake(time.Time{})
	tests := []struct {
		name       string
		retryAfter string
		want       time.Duration
	}{
		{"seconds", "7", 7 * time.Second},
		{"date", fc.Now().Add(45 * time.Second).Format(http.TimeFormat), 45 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			fc := clock.NewFake(time.Time{})
			srv := newScriptedServer(t, 503, 200)
			srv.header.Set("Retry-After", tt.retryAfter)
			retry, err := NewRetry(RetrySettings{Base: time.Millisecond, Jitter: JitterNone, Clock: fc})
			if err != nil {
				t.Fatal(err)
			}
			tr := mustTransport(t, newBodyCounter(t), TransportSettings{Policies: []Policy{retry}, Clock: fc})
			done := getAsync(t, tr, srv.URL)
			waitFor(t, func() bool { return fc.Waiters() > 0 })
			if at, _ := fc.NextDeadline(); at.Sub(fc.Now()) != tt.want {
				t.Errorf("retry waits %s, want the server's %s", at.Sub(fc.Now()), tt.want)
			}
			fc.Advance(tt.want)
			resp := <-done
			if resp == nil {
				return
			}
			resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Errorf("status %d, want 200 after the wait", resp.StatusCode)
			}
		})
	}
}

func TestTransportBreakerCounts429(t *testing.T) {
	t.Parallel()
	srv := newScriptedServer(t, 429)
	srv.header.Set("Retry-After", "30")
	breaker, err := NewBreaker(BreakerSettings{ConsecutiveFailures: 2, Clock: clock.NewFake(time.Time{})})
	if err != nil {
		t.Fatal(err)
	}
	tr := mustTransport(t, newBodyCounter(t), TransportSettings{Policies: []Policy{breaker}})
	client := &http.Client{Transport: tr}
	for i := range 2 {
		resp, err := client.Get(srv.URL)
		if err != nil {
			t.Fatalf("call %d: %v", i+1, err)
		}
		resp.Body.Close()
		if resp.StatusCode != 429 {
			t.Fatalf("call %d: status %d, want the upstream's 429", i+1, resp.StatusCode)
		}
	}
	_, err = client.Get(srv.URL)
	if !errors.Is(err, ErrBreakerOpen) {
		t.Errorf("third call: error %v, want the breaker open", err)
	}
	if n := len(srv.received()); n != 2 {
		t.Errorf("server saw %d requests, want 2", n)
	}
}

func TestTransportClassify(t *testing.T) {
	t.Parallel()
	tr := mustTransport(t, nil, TransportSettings{Clock: clock.NewFake(time.Time{})})
	transportErr := errors.New("connection refused")
	tests := []struct {
		status     int
		retryAfter string
		err        error
		want       error
		wantHint   time.Duration
	}{
		{status: 200},
		{status: 404},
		{status: 499},
		{status: 500, want: &StatusError{StatusCode: 500, Status: "500 Internal Server Error"}},
		{status: 503, retryAfter: "12", want: &StatusError{StatusCode: 503, Status: "503 Service Unavailable", RetryAfter: 12 * time.Second}, wantHint: 12 * time.Second},
		{status: 429, retryAfter: "soon", want: &StatusError{StatusCode: 429, Status: "429 Too Many Requests"}},
		{err: transportErr, want: transportErr},
	}
	for _, tt := range tests {
		var resp *http.Response
		if tt.err == nil {
			resp = &http.Response{StatusCode: tt.status, Status: fmt.Sprintf("%d %s", tt.status, http.StatusText(tt.status)), Header: http.Header{}}
			if tt.retryAfter != "" {
				resp.Header.Set("Retry-After", tt.retryAfter)
			}
		}
		got := tr.classify(resp, tt.err)
		if fmt.Sprint(got) != fmt.Sprint(tt.want) {
			t.Errorf("status %d, error %v: classified as %v, want %v", tt.status, tt.err, got, tt.want)
		}
		if hint, ok := RetryHintOf(got); hint != tt.wantHint || ok != (tt.wantHint > 0) {
			t.Errorf("status %d: hint %s %v, want %s", tt.status, hint, ok, tt.wantHint)
		}
	}
}

// TestTransportHedge sends a GET whose first attempt hangs and whose hedge
// answers, and reads the winner's body after RoundTrip has returned.
func TestTransportHedge(t *testing.T) {
	t.Parallel()
	fc := clock.NewFake(time.Time{})
	firstArrived, loserCancelled := make(chan struct{}), make(chan struct{})
	more := make(chan struct{})
	half := bytes.Repeat([]byte("w"), 64<<10)
	var requests atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if requests.Add(1) == 1 {
			close(firstArrived)
			<-r.Context().Done()
			close(loserCancelled)
			return
		}
		w.Write(half)
		w.(http.Flusher).Flush()
		// The rest is sent only once the test holds the response: a
		// cancelled context would make it unreadable.
		<-more
		w.Write(half)
	}))
	t.Cleanup(srv.Close)
	defer close(more)
	hedge, err := NewHedge(HedgeSettings{Delay: 50 * time.Millisecond, Clock: fc})
	if err != nil {
		t.Fatal(err)
	}
	counter := newBodyCounter(t)
	tr := mustTransport(t, counter, TransportSettings{Policies: []Policy{hedge}})
	done := getAsync(t, tr, srv.URL)
	<-firstArrived
	waitFor(t, func() bool { return fc.Waiters() > 0 })
	fc.Advance(50 * time.Millisecond)
	resp := <-done
	if resp == nil {
		return
	}
	<-loserCancelled
	winner := counter.attemptCtx(1)
	if winner.Err() != nil {
		t.Fatalf("the winner's context ended when RoundTrip returned: %v", winner.Err())
	}
	more <- struct{}{}
	body, err := io.ReadAll(resp.Body)
	if err != nil || len(body) != 2*len(half) {
		t.Errorf("read %d bytes, %v; want the whole %d-byte body", len(body), err, 2*len(half))
	}
	resp.Body.Close()
	if winner.Err() == nil {
		t.Error("the winner's context outlived its body")
	}
	if !errors.Is(counter.attemptCtx(0).Err(), context.Canceled) {
		t.Errorf("loser's context: %v, want cancelled", counter.attemptCtx(0).Err())
	}
	if n := counter.open(); n != 0 {
		t.Errorf("%d bodies left open", n)
	}
}

// TestTransportClosesSupersededBodies counts response bodies: every one
// but the caller's is closed by the transport, and the caller's when the
// caller closes it.
func TestTransportClosesSupersededBodies(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		hedged     bool
		wantOpened int64
	}{
		{name: "retried 503s", wantOpened: 3},
		// The first attempt hangs; one hedge gets a 503, the other a 200,
		// which is sent only once the 503 has reached the client, so that
		// the 503 is not cancelled before it has a body to close. Whether
		// the 503 reaches the Hedge before the 200 or after it (and is
		// closed by the Hedge or by the losing attempt) may vary.
		{name: "hedged 503 and 200", hedged: true, wantOpened: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			fc := clock.NewFake(time.Time{})
			counter := newBodyCounter(t)
			var n atomic.Int32
			firstArrived := make(chan struct{})
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				i := n.Add(1)
				switch {
				case tt.hedged && i == 1:
					close(firstArrived)
					<-r.Context().Done()
				case i < 3:
					w.WriteHeader(503)
					fmt.Fprint(w, "busy")
				default:
					if tt.hedged {
						<-counter.opens
					}
					fmt.Fprint(w, "ok")
				}
			}))
			t.Cleanup(srv.Close)
			var policy Policy
			var err error
			if tt.hedged {
				policy, err = NewHedge(HedgeSettings{Delay: time.Second, MaxHedges: 2, Clock: fc})
			} else {
				policy, err = NewRetry(RetrySettings{Clock: jumpClock{fc}})
			}
			if err != nil {
				t.Fatal(err)
			}
			tr := mustTransport(t, counter, TransportSettings{Policies: []Policy{policy}})
			done := getAsync(t, tr, srv.URL)
			if tt.hedged {
				// Which hedge gets the 503 and which the 200 may vary;
				// the counts do not.
				<-firstArrived
				for range 2 {
					waitFor(t, func() bool { return fc.Waiters() > 0 })
					fc.Advance(time.Second)
				}
			}
			resp := <-done
			if resp == nil {
				return
			}
			for range tt.wantOpened - 1 {
				<-counter.closes
			}
			if got := counter.opened.Load(); got != tt.wantOpened {
				t.Errorf("%d bodies opened, want %d", got, tt.wantOpened)
			}
			if got := counter.open(); got != 1 {
				t.Errorf("%d bodies open, want only the caller's", got)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if string(b) != "ok" || counter.open() != 0 {
				t.Errorf("caller read %q and left %d bodies open; want ok and none", b, counter.open())
			}
		})
	}
}

// TestTransportHedgesOnlyIdempotentRequests checks that a request that may
// not be sent twice runs unhedged: the Hedge arms no timer for it.
func TestTransportHedgesOnlyIdempotentRequests(t *testing.T) {
	t.Parallel()
	tests := []struct {
		method, key string
		wantTimers  int
	}{
		{"GET", "", 1},
		{"DELETE", "", 1},
		{"POST", "", 0},
		{"POST", "k1", 1},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.key, func(t *testing.T) {
			t.Parallel()
			fc := clock.NewFake(time.Time{})
			timers := make(chan int, 1)
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				timers <- fc.Waiters()
			}))
			t.Cleanup(srv.Close)
			hedge, err := NewHedge(HedgeSettings{Delay: time.Second, Clock: fc})
			if err != nil {
				t.Fatal(err)
			}
			tr := mustTransport(t, newBodyCounter(t), TransportSettings{Policies: []Policy{hedge}})
			req, err := http.NewRequest(tt.method, srv.URL, strings.NewReader("x"))
			if err != nil {
				t.Fatal(err)
			}
			if tt.key != "" {
				req.Header.Set("Idempotency-Key", tt.key)
			}
			resp, err := tr.RoundTrip(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if got := <-timers; got != tt.wantTimers {
				t.Errorf("%d hedge timers pending during the attempt, want %d", got, tt.wantTimers)
			}
		})
	}
}
