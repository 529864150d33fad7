package gateway

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/relia-dev/relia/clock"
	"github.com/relia-dev/relia/resilience"
)

// rawBackend answers every request on a connection with the reply that
// reply returns for its index (counting over all connections), then keeps
// the connection or closes it as the reply's close says. It counts the
// connections it accepted.
type rawBackend struct {
	ln    net.Listener
	mu    sync.Mutex
	conns int
	n     int
	open  []net.Conn
}

// dropAll closes every connection the backend has accepted, as a
// restarted target would have.
func (rb *rawBackend) dropAll() {
	rb.mu.Lock()
	defer rb.mu.Unlock()
	for _, c := range rb.open {
		c.Close()
	}
	rb.open = nil
}

func newRawBackend(t *testing.T, reply func(n int) (msg string, close bool)) *rawBackend {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	rb := &rawBackend{ln: ln}
	t.Cleanup(func() { ln.Close() })
	go func() { // ends when the listener closes
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			rb.mu.Lock()
			rb.conns++
			rb.open = append(rb.open, c)
			rb.mu.Unlock()
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				for {
					req, err := http.ReadRequest(br)
					if err != nil {
						return
					}
					io.Copy(io.Discard, req.Body)
					rb.mu.Lock()
					n := rb.n
					rb.n++
					rb.mu.Unlock()
					msg, closeIt := reply(n)
					io.WriteString(c, msg)
					if closeIt {
						return
					}
				}
			}()
		}
	}()
	return rb
}

func (rb *rawBackend) connCount() int {
	rb.mu.Lock()
	defer rb.mu.Unlock()
	return rb.conns
}

func TestTransportReadsEveryBodyFraming(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, reply, want string
		wantConns         int // after two requests
	}{
		{"content-length", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", "hello", 1},
		{"chunked with extension and trailer", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n", "hello world", 1},
		{"empty chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", "", 1},
		{"no content", "HTTP/1.1 204 No Content\r\n\r\n", "", 1},
		{"large content-length, streamed", "HTTP/1.1 200 OK\r\nContent-Length: 2097152\r\n\r\n" + strings.Repeat("x", 2<<20), strings.Repeat("x", 2<<20), 1},
		{"connection close", "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok", "ok", 2},
		{"early hints before the response", "HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", "ok", 1},
		{"continue and processing before the response", "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 102 Processing\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", "ok", 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			rb := newRawBackend(t, func(int) (string, bool) { return tc.reply, strings.Contains(tc.reply, "Connection: close") })
			g, _ := startGateway(t, fmt.Sprintf(`  upstreams: [{name: b, targets: [{address: %q}], breaker: {disabled: true}}]
  routes: [{name: r, upstream: b}]
`, rb.ln.Addr().String()), Options{})
			// Both requests on one client connection: a client's own pool
			// may not have the first connection back in time for the
			// second request, which would then reach the gateway on a
			// connection (and an event loop) of its own.
			c, br := dialFor(t, g.Addr("main"))
			for i := range 2 {
				io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
				resp, err := http.ReadResponse(br, nil)
				if err != nil {
					t.Fatalf("request %d: %v", i, err)
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				wantCode := 200
				if strings.Contains(tc.reply, "204") {
					wantCode = 204
				}
				if resp.StatusCode != wantCode || string(body) != tc.want {
					t.Fatalf("request %d: %d %q, want %d %q", i, resp.StatusCode, body, wantCode, tc.want)
				}
			}
			if n := rb.connCount(); n != tc.wantConns {
				t.Errorf("the gateway opened %d connections for two requests, want %d", n, tc.wantConns)
			}
		})
	}
}

func TestTransportReplacesAClosedKeptConnection(t *testing.T) {
	t.Parallel()
	// The target answers as if it kept the connection alive, then drops
	// it: the gateway's next request on it must go out again on a new one.
	rb := newRawBackend(t, func(int) (string, bool) { return "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", true })
	_, url := startGateway(t, fmt.Sprintf(`  upstreams: [{name: b, targets: [{address: %q}]}]
  routes: [{name: r, upstream: b}]
`, rb.ln.Addr().String()), Options{})
	for i := range 3 {
		if code, body, _ := get(t, "POST", url+"/", nil); code != 200 || body != "ok" {
			t.Fatalf("request %d: %d %q", i, code, body)
		}
	}
	if n := rb.connCount(); n != 3 {
		t.Errorf("%d connections for three requests on a target that closes each", n)
	}
}

func TestTransportSurvivesATargetDroppingEveryKeptConnection(t *testing.T) {
	t.Parallel()
	rb := newRawBackend(t, func(int) (string, bool) { return "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", false })
	_, url := startGateway(t, fmt.Sprintf(`  upstreams: [{name: b, targets: [{address: %q}]}]
  routes: [{name: r, upstream: b}]
`, rb.ln.Addr().String()), Options{})
	var wg sync.WaitGroup
	for range 6 { // several kept connections
		wg.Add(1)
		go func() {
			defer wg.Done()
			get(t, "GET", url+"/", nil)
		}()
	}
	wg.Wait()
	rb.dropAll()
	for i := range 6 {
		if code, body, _ := get(t, "GET", url+"/", nil); code != 200 || body != "ok" {
			t.Fatalf("request %d after the target dropped its connections: %d %q", i, code, body)
		}
	}
}

func TestTransportRejectsBadChunks(t *testing.T) {
	t.Parallel()
	rb := newRawBackend(t, func(int) (string, bool) {
		return "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n", true
	})
	_, url := startGateway(t, fmt.Sprintf(`  upstreams: [{name: b, targets: [{address: %q}]}]
  routes: [{name: r, upstream: b}]
`, rb.ln.Addr().String()), Options{})
	req, _ := http.NewRequest("GET", url+"/", nil)
	resp, err := testClient.Do(req)
	if err == nil {
		body, rerr := io.ReadAll(resp.Body)
		resp.Body.Close()
		if rerr == nil && string(body) == "hello" {
			t.Errorf("a malformed chunk size passed as %q", body)
		}
	}
}

// TestConnectionLimitQueuesAndDoesNotBlameTheTarget: with every connection
// a target may have busy, a request waits for one rather than failing; one
// that waits past its attempt's deadline gets a 503 naming the limit, and
// neither the breaker nor outlier detection holds that against the target.
func TestConnectionLimitQueuesAndDoesNotBlameTheTarget(t *testing.T) {
	t.Parallel()
	clk := clock.NewFake(time.Now())
	be := newBackend(t, "a")
	arrived, release, done := make(chan struct{}, 4), make(chan struct{}, 4), make(chan struct{})
	t.Cleanup(func() { close(done) }) // before the backend's Close, which waits for handlers
	be.handle(func(w http.ResponseWriter, r *http.Request) bool {
		if r.URL.Path == "/hold" {
			arrived <- struct{}{}
			select {
			case <-release:
			case <-done:
			}
		}
		return false
	})
	g, url := startGateway(t, fmt.Sprintf(`  upstreams:
    - name: svc
      targets: [{address: %q}]
      maxConnections: 1
      breaker: {consecutiveFailures: 1, openDuration: 1m}
      health: {passive: {consecutive5xx: 1, consecutiveConnectErrors: 1}}
  routes: [{name: r, upstream: svc, timeout: 2m, perTryTimeout: 30s}]
`, be.addr()), Options{Clock: clk})

	type answer struct {
		code int
		body string
		hdr  http.Header
	}
	send := func(path string) chan answer {
		ch := make(chan answer, 1)
		go func() {
			code, body, hdr := get(t, "GET", url+path, nil)
			ch <- answer{code, body, hdr}
		}()
		return ch
	}

	// waiting returns once the request on ch waits on the clock for a
	// connection, and fails the test if it was answered instead.
	waiting := func(ch chan answer, base int) {
		t.Helper()
		for clk.Waiters() <= base {
			select {
			case a := <-ch:
				t.Fatalf("answered without waiting for a connection: %d %q", a.code, a.body)
			case <-time.After(time.Millisecond):
			}
		}
	}

	// The second request waits for the held connection and gets it.
	held := send("/hold")
	<-arrived
	base := clk.Waiters()
	queued := send("/next")
	waiting(queued, base)
	_, m, _ := get(t, "GET", "http://"+g.AdminAddr()+"/metrics", nil)
	for _, want := range []string{
		fmt.Sprintf(`relia_gateway_target_connections{target=%q,upstream="svc"} 1`, be.addr()),
		fmt.Sprintf(`relia_gateway_target_connection_waiting{target=%q,upstream="svc"} 1`, be.addr()),
	} {
		if !strings.Contains(m, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	release <- struct{}{}
	if a := <-held; a.code != 200 {
		t.Fatalf("held request: %d %q", a.code, a.body)
	}
	if a := <-queued; a.code != 200 || a.body != "a" {
		t.Fatalf("queued request: %d %q, want 200 once the connection was free", a.code, a.body)
	}

	// One that waits past its attempt's deadline is refused by the
	// gateway, not failed by the target.
	held = send("/hold")
	<-arrived
	base = clk.Waiters()
	late := send("/late")
	waiting(late, base)
	clk.Advance(30 * time.Second)
	a := <-late
	if a.code != 503 || !strings.Contains(a.body, `"reason":"`+ReasonConnectionsExhausted+`"`) || a.hdr.Get("Retry-After") == "" {
		t.Fatalf("request past its deadline: %d %q (Retry-After %q), want 503 %s", a.code, a.body, a.hdr.Get("Retry-After"), ReasonConnectionsExhausted)
	}
	release <- struct{}{}
	if a := <-held; a.code != 200 {
		t.Fatalf("held request: %d %q", a.code, a.body)
	}
	tg := g.state.Load().routes[0].pool.targets[0]
	if st := tg.breaker.State(); st != resilience.StateClosed {
		t.Errorf("breaker %v after the gateway's own refusal, want closed", st)
	}
	if !tg.available(clk.Now) {
		t.Error("target ejected after the gateway's own refusal")
	}
	if code, body, _ := get(t, "GET", url+"/after", nil); code != 200 {
		t.Errorf("next request: %d %q, want 200", code, body)
	}
}

// TestResponseWithoutContentTypeKeepsNone: the gateway adds no
// Content-Type to a response the target sent without one, on the
// HTTP/1.1 engine and on the net/http listeners (h2c here) alike.
func TestResponseWithoutContentTypeKeepsNone(t *testing.T) {
	t.Parallel()
	rb := newRawBackend(t, func(int) (string, bool) { return "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", false })
	g, url := startGateway(t, fmt.Sprintf(`  listeners:
    - {name: main, address: 127.0.0.1:0}
    - {name: h2c, address: 127.0.0.1:0, h2c: true}
  upstreams: [{name: b, targets: [{address: %q}]}]
  routes: [{name: r, upstream: b}]
`, rb.ln.Addr().String()), Options{})
	for _, u := range []string{url, "http://" + g.Addr("h2c")} {
		resp, err := testClient.Get(u + "/")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if ct, ok := resp.Header["Content-Type"]; ok || string(body) != "hello" {
			t.Errorf("%s: Content-Type %q, body %q; want none and hello", u, ct, body)
		}
	}
}
