//go:build linux && !386

package gateway

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/relia-dev/relia/clock"
)

// loopCounts sums what the event loops of g's first listener did.
func loopCounts(g *Gateway) (served, handedOn int64) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, l := range (*g.servers.Load())[0].loops {
		served += l.served.Load()
		handedOn += l.handedOn.Load()
	}
	return served, handedOn
}

// echoBackend answers each request with its path and body.
func echoBackend(t *testing.T) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "%s:%s", r.URL.Path, b)
	}))
	t.Cleanup(srv.Close)
	return srv.Listener.Addr().String()
}

// TestEventLoopServesTheCommonRequestItself: on the eventloop engine a
// proxied request of the benchmark's config (breaker, retry budget) is
// answered by the loop, pipelined requests in order, with no connection
// handed to a goroutine.
func TestEventLoopServesTheCommonRequestItself(t *testing.T) {
	t.Parallel()
	g, _ := startGateway(t, fmt.Sprintf(`  listeners: [{name: main, address: "127.0.0.1:0", engine: eventloop}]
  upstreams:
    - name: b
      targets: [{address: %q}]
      breaker: {consecutiveFailures: 5, openDuration: 10s}
  routes: [{name: r, upstream: b, timeout: 5s, retry: {attempts: 2, budget: {ratio: 20%%}}}]
`, echoBackend(t)), Options{})
	c, br := dialFor(t, g.Addr("main"))
	for round := range 3 {
		io.WriteString(c, "GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\nPOST /c HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi")
		for _, want := range []string{"/a:", "/b:", "/c:hi"} {
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatalf("round %d: reading the answer for %s: %v", round, want, err)
			}
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != 200 || string(body) != want {
				t.Fatalf("round %d: %d %q, want 200 %q", round, resp.StatusCode, body, want)
			}
		}
	}
	served, handedOn := loopCounts(g)
	if served != 9 || handedOn != 0 {
		t.Errorf("the loops served %d answers and handed on %d connections, want 9 and 0", served, handedOn)
	}
}

// TestEventLoopHandsOnWithoutLosingBytes: a request the loop does not
// serve (a body still to come, a route whose policy may wait) pipelined
// right behind one it served goes to a goroutine with every byte already
// read, and the request behind it is answered after it, in order.
func TestEventLoopHandsOnWithoutLosingBytes(t *testing.T) {
	t.Parallel()
	g, _ := startGateway(t, fmt.Sprintf(`  listeners: [{name: main, address: "127.0.0.1:0", engine: eventloop}]
  upstreams: [{name: b, targets: [{address: %q}]}]
  routes:
    - {name: held, upstream: b, match: {path: {prefix: /held}}, bulkhead: {maxConcurrent: 4}}
    - {name: r, upstream: b}
`, echoBackend(t)), Options{})
	cases := []struct{ name, second, want string }{
		{"a route with a bulkhead", "POST /held HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello", "/held:hello"},
		{"a chunked body", "POST /chunked HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", "/chunked:hello"},
	}
	for i, tc := range cases {
		c, err := net.Dial("tcp", g.Addr("main"))
		if err != nil {
			t.Fatal(err)
		}
		br := bufio.NewReader(c)
		io.WriteString(c, "GET /first HTTP/1.1\r\nHost: x\r\n\r\n"+tc.second+"GET /third HTTP/1.1\r\nHost: x\r\n\r\n")
		for _, want := range []string{"/first:", tc.want, "/third:"} {
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatalf("%s: reading the answer for %s: %v", tc.name, want, err)
			}
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != 200 || string(body) != want {
				t.Fatalf("%s: %d %q, want 200 %q", tc.name, resp.StatusCode, body, want)
			}
		}
		c.Close()
		if _, handedOn := loopCounts(g); handedOn != int64(i+1) {
			t.Errorf("%s: %d connections handed on, want %d", tc.name, handedOn, i+1)
		}
	}
}

// TestEventLoopNeverWaitsForAClientToRead: a client that pipelines
// requests and reads none of the answers fills its socket; the loop hands
// it to a goroutine rather than wait, so the loop's other connections
// (one per loop here, the listener deals connections out in turn) are
// still answered.
func TestEventLoopNeverWaitsForAClientToRead(t *testing.T) {
	t.Parallel()
	big := strings.Repeat("x", 8<<10)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", fmt.Sprint(len(big))) // not chunked: the loop passes it on
		io.WriteString(w, big)
	}))
	t.Cleanup(srv.Close)
	g, _ := startGateway(t, fmt.Sprintf(`  listeners: [{name: main, address: "127.0.0.1:0", engine: eventloop}]
  upstreams: [{name: b, targets: [{address: %q}]}]
  routes: [{name: r, upstream: b}]
`, srv.Listener.Addr().String()), Options{})
	staller, err := net.Dial("tcp", g.Addr("main"))
	if err != nil {
		t.Fatal(err)
	}
	defer staller.Close()
	go func() { // ends when the test closes the connection
		req := []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
		for range 4000 { // 32 MiB of answers, far past the sockets' buffers
			if _, err := staller.Write(req); err != nil {
				return
			}
		}
	}()
	for end := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
		if _, handedOn := loopCounts(g); handedOn > 0 {
			break
		}
		if time.Now().After(end) {
			t.Fatal("the stalled connection is still on its loop after 10 s")
		}
	}
	g.mu.Lock()
	n := len((*g.servers.Load())[0].loops)
	g.mu.Unlock()
	for i := range n {
		c, err := net.Dial("tcp", g.Addr("main"))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second)) // the write timeout is 60 s
		resp, body := exchangeOn(t, c, bufio.NewReader(c), "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
		if resp.StatusCode != 200 || len(body) != len(big) {
			t.Fatalf("connection %d: %d, %d bytes", i, resp.StatusCode, len(body))
		}
	}
}

// TestEventLoopReloadsAndDrains: on either engine a reload applies to the next
// request of a kept connection, and a shutdown closes idle connections at
// once while the request a loop waits on its target for finishes.
func TestEventLoopReloadsAndDrains(t *testing.T) {
	t.Parallel()
	onEngines(t, func(t *testing.T) {
		t.Parallel()
		release := make(chan struct{})
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/hold" {
				<-release
			}
			fmt.Fprintf(w, "%s gen=%s", r.URL.Path, r.Header.Get("X-Gen"))
		}))
		t.Cleanup(srv.Close)
		spec := func(gen int) string {
			return fmt.Sprintf(`kind: Gateway
version: relia/v1
spec:
  listeners: [{name: main, address: "127.0.0.1:0", engine: %s}]
  admin: {address: "off"}
  upstreams: [{name: b, targets: [{address: %q}]}]
  routes: [{name: r, upstream: b, requestHeaders: {set: {X-Gen: "%d"}}}]
`, subtestEngine(t), srv.Listener.Addr().String(), gen)
		}
		cfg, err := Parse("loop.yaml", []byte(spec(1)))
		if err != nil {
			t.Fatal(err)
		}
		g, err := New(cfg, Options{AccessLog: io.Discard, Logger: quietLogger()})
		if err != nil {
			t.Fatal(err)
		}
		if err := g.Start(); err != nil {
			t.Fatal(err)
		}
		idle, err := net.Dial("tcp", g.Addr("main"))
		if err != nil {
			t.Fatal(err)
		}
		defer idle.Close()
		br := bufio.NewReader(idle)
		if _, body := exchangeOn(t, idle, br, "GET /a HTTP/1.1\r\nHost: x\r\n\r\n"); body != "/a gen=1" {
			t.Fatalf("before the reload: %q", body)
		}
		next, err := Parse("loop.yaml", []byte(spec(2)))
		if err != nil {
			t.Fatal(err)
		}
		if err := g.Reload(next); err != nil {
			t.Fatal(err)
		}
		if _, body := exchangeOn(t, idle, br, "GET /b HTTP/1.1\r\nHost: x\r\n\r\n"); body != "/b gen=2" {
			t.Fatalf("the kept connection's next request after the reload: %q", body)
		}

		busy, err := net.Dial("tcp", g.Addr("main"))
		if err != nil {
			t.Fatal(err)
		}
		defer busy.Close()
		io.WriteString(busy, "GET /hold HTTP/1.1\r\nHost: x\r\n\r\n")
		for end := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
			var inflight int64
			for _, u := range g.Upstreams() {
				for _, ts := range u.Targets {
					inflight += ts.InFlight
				}
			}
			if inflight == 1 {
				break
			}
			if time.Now().After(end) {
				t.Fatal("the held request did not reach the target")
			}
		}
		done := make(chan error, 1)
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			done <- g.Shutdown(ctx)
		}()
		idle.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := br.ReadByte(); err != io.EOF {
			t.Fatalf("the idle connection during the drain: %v, want it closed", err)
		}
		close(release)
		bb := bufio.NewReader(busy)
		resp, err := http.ReadResponse(bb, nil)
		if err != nil {
			t.Fatalf("the request in flight during the drain: %v", err)
		}
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 || string(body) != "/hold gen=2" || !resp.Close {
			t.Fatalf("the request in flight during the drain: %d %q, closing %v", resp.StatusCode, body, resp.Close)
		}
		busy.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := bb.ReadByte(); err != io.EOF {
			t.Fatalf("the drained connection after its answer: %v, want it closed", err)
		}
		if err := <-done; err != nil {
			t.Fatalf("shutdown: %v", err)
		}
	})
}

// settle returns once each of g's loops has woken, read its clock and
// handled whatever was due: after it, a loop's reaction to what the test
// did before (a request answered, a clock moved) is done. The wake adds
// far more to a loop's count than any accept does, so a count past it
// means this wake was handled.
func settle(t *testing.T, g *Gateway) {
	t.Helper()
	const mark = 1 << 20
	g.mu.Lock()
	loops := (*g.servers.Load())[0].loops
	g.mu.Unlock()
	for _, l := range loops {
		before := l.wakes.Load()
		l.mu.Lock()
		l.wakeBy(mark)
		l.mu.Unlock()
		for end := time.Now().Add(10 * time.Second); l.wakes.Load() < before+mark; time.Sleep(100 * time.Microsecond) {
			if time.Now().After(end) {
				t.Fatal("a loop did not handle its wake within 10 s")
			}
		}
	}
}

// silent reports whether c has nothing to read: no answer, not closed.
func silent(c net.Conn) bool {
	c.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
	defer c.SetReadDeadline(time.Now().Add(20 * time.Second))
	var b [1]byte
	_, err := c.Read(b[:])
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// hangingBackend accepts connections and reads requests without ever
// answering; reached gets a value for each request's first bytes.
func hangingBackend(t *testing.T) (addr string, reached <-chan struct{}) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	ch := make(chan struct{}, 16)
	go func() { // ends when the listener closes
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			t.Cleanup(func() { c.Close() })
			go func() { // ends when the connection closes
				var b [4096]byte
				for {
					if _, err := c.Read(b[:]); err != nil {
						return
					}
					ch <- struct{}{}
				}
			}()
		}
	}()
	return ln.Addr().String(), ch
}

// TestEventLoopTimeoutsFireOnTime: on the loop's clock (a fake one here),
// a head timeout, an idle timeout and the target's answer's timeout each
// end their wait at the first wake at or after their deadline, less than
// a millisecond (the wheel's tick) past it, and not a moment before: the
// half-sent head gets 408, the request waiting for a silent target 504,
// the idle connection and the one that never sent a byte are closed.
func TestEventLoopTimeoutsFireOnTime(t *testing.T) {
	t.Parallel()
	fc := clock.NewFake(time.Time{})
	hang, reached := hangingBackend(t)
	g, _ := startGatewayThen(t, fmt.Sprintf(`  listeners: [{name: main, address: "127.0.0.1:0", engine: eventloop}]
  server: {readHeaderTimeout: 10s, idleTimeout: 60s}
  upstreams:
    - {name: ok, targets: [{address: %q}]}
    - {name: hang, targets: [{address: %q}]}
  routes:
    - {name: hang, upstream: hang, match: {path: {prefix: /hang}}, timeout: 30s}
    - {name: ok, upstream: ok}
`, echoBackend(t), hang), Options{Clock: fc}, func(g *Gateway) { g.loopClock = fc })
	dial := func() (net.Conn, *bufio.Reader) { return dialFor(t, g.Addr("main")) }
	// Deadlines off the wheel's ticks: each fires up to a tick past.
	fc.Advance(300 * time.Microsecond)
	start := fc.Now()

	idle, idleR := dial()
	if resp, _ := exchangeOn(t, idle, idleR, "GET /a HTTP/1.1\r\nHost: x\r\n\r\n"); resp.StatusCode != 200 {
		t.Fatalf("the idle connection's request: %d", resp.StatusCode)
	}
	head, headR := dial()
	if resp, _ := exchangeOn(t, head, headR, "GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\n"); resp.StatusCode != 200 {
		t.Fatalf("the request before the half head: %d", resp.StatusCode)
	}
	mute, _ := dial()
	slow, slowR := dial()
	io.WriteString(slow, "GET /hang HTTP/1.1\r\nHost: x\r\n\r\n")
	select {
	case <-reached:
	case <-time.After(10 * time.Second):
		t.Fatal("the request for the silent target did not reach it")
	}
	settle(t, g)

	step := func(to time.Duration) {
		t.Helper()
		fc.Set(start.Add(to))
		settle(t, g)
	}
	// The head timeout: the half head's and the mute connection's.
	step(10*time.Second - 100*time.Microsecond)
	if !silent(head) || !silent(mute) {
		t.Fatal("a head timeout fired before its deadline")
	}
	step(10*time.Second + 900*time.Microsecond)
	head.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(headR, nil)
	if err != nil {
		t.Fatalf("the half head a tick past its timeout: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 408 || !strings.Contains(string(body), "request_timeout") {
		t.Fatalf("the half head: %d %s, want 408 request_timeout", resp.StatusCode, body)
	}
	mute.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := mute.Read(make([]byte, 1)); n != 0 || err != io.EOF {
		t.Fatalf("the connection that sent nothing: %d bytes, %v, want it closed", n, err)
	}
	// The target's answer's.
	step(30*time.Second - 100*time.Microsecond)
	if !silent(slow) {
		t.Fatal("the target's timeout fired before its deadline")
	}
	step(30*time.Second + 900*time.Microsecond)
	slow.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err = http.ReadResponse(slowR, nil)
	if err != nil {
		t.Fatalf("the request a tick past its timeout: %v", err)
	}
	body, _ = io.ReadAll(resp.Body)
	if resp.StatusCode != 504 || !strings.Contains(string(body), "upstream_timeout") {
		t.Fatalf("the request for the silent target: %d %s, want 504 upstream_timeout", resp.StatusCode, body)
	}
	// The idle timeout, from the answer on the idle connection.
	step(60*time.Second - 100*time.Microsecond)
	if !silent(idle) {
		t.Fatal("the idle timeout fired before its deadline")
	}
	step(60*time.Second + 900*time.Microsecond)
	idle.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := idleR.ReadByte(); err != io.EOF {
		t.Fatalf("the idle connection a tick past its timeout: %v, want it closed", err)
	}
}

// fullBacklog returns the address of a listener that never accepts and
// whose accept queue is full: a connect to it waits for an answer to its
// SYN that does not come, as one to a host that drops packets does.
func fullBacklog(t *testing.T) string {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Close(fd) })
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Listen(fd, 0); err != nil {
		t.Fatal(err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", sa.(*syscall.SockaddrInet4).Port)
	// Fill the queue: the first connects complete, unaccepted; once one
	// times out, the next ones will.
	for range 64 {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err != nil {
			return addr
		}
		t.Cleanup(func() { c.Close() })
	}
	t.Skip("this kernel completes every connect to a listener that does not accept")
	return ""
}

// TestTargetConnectsDoNotHoldTheLoop: a request whose target never
// completes the handshake waits for its connect off the loop's path: the
// other connections of its loop are served meanwhile, and it gets the
// answer the goroutine engine gives at the connect timeout (504
// upstream_timeout). A target that refuses gets 503
// upstream_connect_failed on either engine, and one named by a host name
// is dialled and served.
func TestTargetConnectsDoNotHoldTheLoop(t *testing.T) {
	t.Parallel()
	onEngines(t, func(t *testing.T) {
		t.Parallel()
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		refused := ln.Addr().String()
		ln.Close()
		echo := echoBackend(t)
		_, port, _ := net.SplitHostPort(echo)
		g, _ := startGateway(t, fmt.Sprintf(`  listeners: [{name: main, address: "127.0.0.1:0", engine: %s}]
  upstreams:
    - {name: black, targets: [{address: %q}], connectTimeout: 1s}
    - {name: refused, targets: [{address: %q}]}
    - {name: named, targets: [{address: "localhost:%s"}]}
    - {name: ok, targets: [{address: %q}]}
  routes:
    - {name: black, upstream: black, match: {path: {prefix: /black}}, timeout: 10s}
    - {name: refused, upstream: refused, match: {path: {prefix: /refused}}}
    - {name: named, upstream: named, match: {path: {prefix: /named}}}
    - {name: ok, upstream: ok}
`, subtestEngine(t), fullBacklog(t), refused, port, echo), Options{})
		get := func(path string) (int, string) {
			c, err := net.Dial("tcp", g.Addr("main"))
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(10 * time.Second))
			resp, body := exchangeOn(t, c, bufio.NewReader(c), "GET "+path+" HTTP/1.1\r\nHost: x\r\n\r\n")
			return resp.StatusCode, body
		}
		if code, body := get("/refused"); code != 503 || !strings.Contains(body, "upstream_connect_failed") {
			t.Errorf("a target that refuses: %d %s, want 503 upstream_connect_failed", code, body)
		}
		if code, body := get("/named"); code != 200 || body != "/named:" {
			t.Errorf("a target named by a host name: %d %q", code, body)
		}

		slow, err := net.Dial("tcp", g.Addr("main"))
		if err != nil {
			t.Fatal(err)
		}
		defer slow.Close()
		began := time.Now()
		io.WriteString(slow, "GET /black HTTP/1.1\r\nHost: x\r\n\r\n")
		for end := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Microsecond) {
			var inflight int64
			for _, u := range g.Upstreams() {
				if u.Name == "black" {
					inflight = u.Targets[0].InFlight
				}
			}
			if inflight == 1 {
				break
			}
			if time.Now().After(end) {
				t.Fatal("the request for the unreachable target did not start")
			}
		}
		// Connections are dealt to the loops in turn: as many more as there
		// are loops puts one on each, the slow request's included.
		loops := 1
		if subtestEngine(t) == EngineEventLoop {
			g.mu.Lock()
			loops = len((*g.servers.Load())[0].loops)
			g.mu.Unlock()
		}
		for i := range loops {
			if code, body := get(fmt.Sprintf("/other%d", i)); code != 200 || body != fmt.Sprintf("/other%d:", i) {
				t.Fatalf("connection %d while a connect waits: %d %q", i, code, body)
			}
		}
		served := time.Since(began)
		slow.SetReadDeadline(time.Now().Add(10 * time.Second))
		resp, body := exchangeOn(t, slow, bufio.NewReader(slow), "")
		waited := time.Since(began)
		if resp.StatusCode != 504 || !strings.Contains(body, "upstream_timeout") {
			t.Fatalf("the request for the unreachable target: %d %s, want 504 upstream_timeout", resp.StatusCode, body)
		}
		if served > 500*time.Millisecond || waited < 900*time.Millisecond {
			t.Fatalf("the others were served %v after the request began, which was answered after %v: want them well before its 1s connect timeout, and it at that timeout", served, waited)
		}
	})
}

// TestShutdownWakesTheLoops: a drain closes a loop's idle kept-alive
// connection as it begins, not at the loop's next sweep. The sweep is an
// hour apart here, so a Shutdown that left it to the sweep would run to
// its deadline with the connection still open.
func TestShutdownWakesTheLoops(t *testing.T) {
	t.Parallel()
	cfg, err := Parse("gw.yaml", []byte(fmt.Sprintf(`kind: Gateway
version: relia/v1
spec:
  listeners: [{name: main, address: "127.0.0.1:0", engine: eventloop}]
  upstreams: [{name: ok, targets: [{address: %q}]}]
  routes: [{name: ok, upstream: ok}]
`, echoBackend(t))))
	if err != nil {
		t.Fatal(err)
	}
	g, err := New(cfg, Options{Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	g.loopSweep = time.Hour
	if err := g.Start(); err != nil {
		t.Fatal(err)
	}
	c, r := dialFor(t, g.Addr("main"))
	if resp, _ := exchangeOn(t, c, r, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"); resp.StatusCode != 200 {
		t.Fatalf("the request before the drain: %d", resp.StatusCode)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	done := make(chan struct{})
	go func() {
		defer close(done)
		g.Shutdown(ctx)
	}()
	select {
	case <-done:
	case <-time.After(15 * time.Second): // its deadline passed and it still waits for the sweep
		t.Fatal("Shutdown did not return: the loop keeps the idle connection until its next sweep")
	}
	if ctx.Err() != nil {
		t.Fatal("Shutdown ran to its deadline: the loop kept the idle connection until a sweep")
	}
	if n, err := r.Read(make([]byte, 1)); n != 0 || err != io.EOF {
		t.Fatalf("the idle connection after Shutdown: %d bytes, %v, want it closed", n, err)
	}
}

// TestLoopGivesIdleConnectionsToWaitersAtOnce: a request on a goroutine
// (its chunked body hands it there) that finds the target's only
// connection idle in a loop gets it as it begins to wait, not at the
// loop's next sweep, which is an hour apart here: without the hand-back
// it would wait until its timeout and get 503.
func TestLoopGivesIdleConnectionsToWaitersAtOnce(t *testing.T) {
	t.Parallel()
	g, _ := startGatewayThen(t, fmt.Sprintf(`  listeners: [{name: main, address: "127.0.0.1:0", engine: eventloop}]
  upstreams: [{name: ok, maxConnections: 1, targets: [{address: %q}]}]
  routes: [{name: ok, upstream: ok, timeout: 5s}]
`, echoBackend(t)), Options{}, func(g *Gateway) { g.loopSweep = time.Hour })
	dial := func() (net.Conn, *bufio.Reader) { return dialFor(t, g.Addr("main")) }
	first, firstR := dial()
	if resp, _ := exchangeOn(t, first, firstR, "GET /a HTTP/1.1\r\nHost: x\r\n\r\n"); resp.StatusCode != 200 {
		t.Fatalf("the loop's request: %d", resp.StatusCode)
	}
	chunked, chunkedR := dial()
	resp, body := exchangeOn(t, chunked, chunkedR, "POST /b HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n")
	if resp.StatusCode != 200 {
		t.Fatalf("the request on a goroutine: %d %s, want 200 on the connection the loop kept idle", resp.StatusCode, body)
	}
}

// TestEventLoopTimesARequestByItsWakes: with the real clock, a request the
// loop serves starts at the wake that found it and its attempt ends at
// the wake that found the answer (no clock reads of its own), so the
// access log's span lies within what the client measured around the
// exchange and ends after the target was let answer.
func TestEventLoopTimesARequestByItsWakes(t *testing.T) {
	t.Parallel()
	const hold = 20 * time.Millisecond
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-release
		io.WriteString(w, "ok")
	}))
	t.Cleanup(srv.Close)
	logs := new(syncBuffer)
	g, _ := startGateway(t, fmt.Sprintf(`  listeners: [{name: main, address: "127.0.0.1:0", engine: eventloop}]
  upstreams: [{name: b, targets: [{address: %q}]}]
  routes: [{name: r, upstream: b, timeout: 5s}]
`, srv.Listener.Addr().String()), Options{AccessLog: logs})
	c, br := dialFor(t, g.Addr("main"))
	for round := range 3 {
		// A pause, so that a start taken from an earlier wake than the
		// request's would fall before sent.
		time.Sleep(2 * time.Millisecond)
		sent := time.Now()
		io.WriteString(c, "GET /a HTTP/1.1\r\nHost: x\r\n\r\n")
		time.Sleep(hold)       // the target holds its answer this long at least
		released := time.Now() // the answer is written after this
		release <- struct{}{}
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		io.ReadAll(resp.Body)
		got := time.Now()
		// The line is written after the answer went.
		var lines []string
		for wait := time.Now().Add(5 * time.Second); len(lines) <= round && time.Now().Before(wait); time.Sleep(time.Millisecond) {
			lines = strings.FieldsFunc(logs.String(), func(r rune) bool { return r == '\n' })
		}
		if len(lines) != round+1 {
			t.Fatalf("round %d: %d access lines", round, len(lines))
		}
		var e struct {
			Time      time.Time `json:"time"`
			LatencyMS float64   `json:"latency_ms"`
		}
		if err := json.Unmarshal([]byte(lines[round]), &e); err != nil {
			t.Fatal(err)
		}
		// The request starts no earlier than the client sent it, and ends
		// after the target was let answer and before the client had the
		// answer; within 10 µs for the rounding of the line's
		// milliseconds.
		const slack = 10 * time.Microsecond
		lat := time.Duration(e.LatencyMS * float64(time.Millisecond))
		start := e.Time.Add(-lat)
		if start.Before(sent.Add(-slack)) || e.Time.Before(released.Add(-slack)) || e.Time.After(got.Add(slack)) {
			t.Errorf("round %d: the gateway's request ran %v to %v (%v), want it to start after %v and end between %v and %v", round, start, e.Time, lat, sent, released, got)
		}
	}
	if served, handedOn := loopCounts(g); served != 3 || handedOn != 0 {
		t.Errorf("the loops served %d answers and handed on %d connections, want 3 and 0", served, handedOn)
	}
}
