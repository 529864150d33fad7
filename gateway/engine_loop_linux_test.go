package gateway

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// loopCounts sums what the event loops of g's first listener did.
func loopCounts(g *Gateway) (served, handedOn int64) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, l := range g.servers[0].loops {
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
	c, err := net.Dial("tcp", g.Addr("main"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	br := bufio.NewReader(c)
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
	n := len(g.servers[0].loops)
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
