package gateway

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestShutdownDrainsTakenConnections checks the connections the gateway
// takes over from its server: Shutdown waits for a stream to an HTTP/1.0
// client to finish, and when its deadline passes it closes an upgraded
// connection that is still open.
func TestShutdownDrainsTakenConnections(t *testing.T) {
	t.Parallel()
	ws, stream := newBackend(t, "ws"), newBackend(t, "stream")
	echoWebSocket(ws)
	release := make(chan struct{})
	var once sync.Once
	free := func() { once.Do(func() { close(release) }) }
	t.Cleanup(free) // before the backend's Close, which waits for its handler
	stream.handle(func(w http.ResponseWriter, r *http.Request) bool {
		io.WriteString(w, "first, ")
		w.(http.Flusher).Flush()
		<-release
		io.WriteString(w, "last")
		return true
	})
	g, _ := startGateway(t, fmt.Sprintf(`
  upstreams: [{name: ws, targets: [{address: %s}]}, {name: stream, targets: [{address: %s}]}]
  routes:
    - {name: ws, upstream: ws, match: {path: {prefix: /chat}}, upgrades: [websocket]}
    - {name: stream, upstream: stream}
`, ws.addr(), stream.addr()), Options{})
	// An upgraded connection, echoing.
	wc, wbr := upgradeThrough(t, g.Addr("main"))
	// A stream to an HTTP/1.0 client, its first part read.
	sc, err := net.Dial("tcp", g.Addr("main"))
	if err != nil {
		t.Fatal(err)
	}
	defer sc.Close()
	sc.SetDeadline(time.Now().Add(10 * time.Second))
	sbr := bufio.NewReader(sc)
	io.WriteString(sc, "GET /events HTTP/1.0\r\n\r\n")
	head, err := sbr.ReadString('\n')
	if err != nil || !strings.HasPrefix(head, "HTTP/1.1 200") {
		t.Fatalf("stream: %q %v", head, err)
	}
	for {
		line, err := sbr.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		if line == "\r\n" {
			break
		}
	}
	first := make([]byte, len("first, "))
	if _, err := io.ReadFull(sbr, first); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	shutdown := make(chan error, 1)
	go func() { shutdown <- g.Shutdown(ctx) }()
	// The stream's target still holds its last part back, so a Shutdown
	// that returned now would not have waited for it.
	select {
	case err := <-shutdown:
		t.Fatalf("Shutdown returned (%v) with a stream still open", err)
	case <-time.After(100 * time.Millisecond):
	}
	free()
	rest, err := io.ReadAll(sbr)
	if err != nil || string(rest) != "last" {
		t.Fatalf("stream's end: %q %v", rest, err)
	}
	tunnelEchoesUntilTheDeadline(t, wc, wbr, cancel, shutdown)
}

// tunnelEchoesUntilTheDeadline checks an upgraded connection to an echoing
// target during a drain: it still echoes, and once cancel ends the
// drain's deadline and Shutdown returned, it is closed.
func tunnelEchoesUntilTheDeadline(t *testing.T, wc net.Conn, wbr *bufio.Reader, cancel context.CancelFunc, shutdown <-chan error) {
	t.Helper()
	io.WriteString(wc, "ping")
	buf := make([]byte, 4)
	if _, err := io.ReadFull(wbr, buf); err != nil || string(buf) != "ping" {
		t.Fatalf("echo while draining: %q %v", buf, err)
	}
	cancel()
	if err := <-shutdown; err != nil {
		t.Logf("Shutdown: %v", err)
	}
	if n, err := wbr.Read(buf); err == nil {
		t.Fatalf("the upgraded connection is still open after Shutdown (read %q)", buf[:n])
	}
}

// TestShutdownEndsAStreamWaitingOnItsTarget checks that Shutdown past its
// deadline ends a stream to an HTTP/1.0 client whose target sends nothing
// more, rather than waiting for the route's timeout.
func TestShutdownEndsAStreamWaitingOnItsTarget(t *testing.T) {
	t.Parallel()
	stream := newBackend(t, "stream")
	release := make(chan struct{})
	stream.handle(func(w http.ResponseWriter, r *http.Request) bool {
		io.WriteString(w, "first")
		w.(http.Flusher).Flush()
		<-release
		return true
	})
	g, _ := startGateway(t, fmt.Sprintf(`
  upstreams: [{name: stream, targets: [{address: %s}]}]
  routes: [{name: stream, upstream: stream, timeout: 10m}]
`, stream.addr()), Options{})
	// Before the gateway's and the backend's cleanups, which wait for the
	// stream and for its handler.
	t.Cleanup(func() { close(release) })
	sc, err := net.Dial("tcp", g.Addr("main"))
	if err != nil {
		t.Fatal(err)
	}
	defer sc.Close()
	sc.SetDeadline(time.Now().Add(time.Minute))
	io.WriteString(sc, "GET /events HTTP/1.0\r\n\r\n")
	sbr := bufio.NewReader(sc)
	if line, err := sbr.ReadString('\n'); err != nil || !strings.HasPrefix(line, "HTTP/1.1 200") {
		t.Fatalf("stream: %q %v", line, err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel() // the drain's deadline has passed
	shutdown := make(chan error, 1)
	go func() { shutdown <- g.Shutdown(ctx) }()
	select {
	case <-shutdown:
	case <-time.After(30 * time.Second): // a hang, not a slow run: the route's timeout is 10m
		t.Fatal("Shutdown still waits on a stream whose target sends nothing")
	}
	if _, err := io.ReadAll(sbr); err != nil {
		t.Logf("the client's read ended with %v", err)
	}
}

// TestShutdownEndsAResponseStillStreaming checks that Shutdown past its
// deadline ends an HTTP/1.1 response still streaming from its target:
// fasthttp's own shutdown closes only idle connections.
func TestShutdownEndsAResponseStillStreaming(t *testing.T) {
	t.Parallel()
	stream := newBackend(t, "stream")
	release, gone := make(chan struct{}), make(chan struct{})
	stream.handle(func(w http.ResponseWriter, r *http.Request) bool {
		io.WriteString(w, "first")
		w.(http.Flusher).Flush()
		select {
		case <-release:
		case <-r.Context().Done(): // the gateway closed its connection
			close(gone)
		}
		return true
	})
	g, _ := startGateway(t, fmt.Sprintf(`
  upstreams: [{name: stream, targets: [{address: %s}]}]
  routes: [{name: stream, upstream: stream, timeout: 10m}]
`, stream.addr()), Options{})
	t.Cleanup(func() { close(release) }) // before the cleanups that wait for the stream
	sc, err := net.Dial("tcp", g.Addr("main"))
	if err != nil {
		t.Fatal(err)
	}
	defer sc.Close()
	sc.SetDeadline(time.Now().Add(time.Minute))
	io.WriteString(sc, "GET /events HTTP/1.1\r\nHost: a\r\n\r\n")
	sbr := bufio.NewReader(sc)
	resp, err := http.ReadResponse(sbr, nil)
	if err != nil {
		t.Fatal(err)
	}
	first := make([]byte, len("first"))
	if _, err := io.ReadFull(resp.Body, first); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel() // the drain's deadline has passed
	shutdown := make(chan error, 1)
	go func() { shutdown <- g.Shutdown(ctx) }()
	ended := make(chan error, 1)
	go func() {
		_, err := io.ReadAll(resp.Body)
		ended <- err
	}()
	select {
	case <-ended:
	case <-time.After(30 * time.Second): // a hang, not a slow run: the route's timeout is 10m
		t.Fatal("the response still streams after Shutdown's deadline")
	}
	<-shutdown
	select {
	case <-gone:
	case <-time.After(30 * time.Second):
		t.Fatal("the gateway still reads the stream from its target after Shutdown")
	}
}

// TestTunnelOpeningAsShutdownBeginsRunsUntilTheDeadline opens a tunnel
// just after Shutdown began: the drain lets it run until Shutdown's
// deadline, as it does a tunnel opened before, and ends it then. (The
// tunnel used to end itself at once when it found a drain begun, whatever
// the deadline.)
func TestTunnelOpeningAsShutdownBeginsRunsUntilTheDeadline(t *testing.T) {
	t.Parallel()
	ws := newBackend(t, "ws")
	echoWebSocket(ws)
	g, _ := startGateway(t, fmt.Sprintf(`
  upstreams: [{name: ws, targets: [{address: %s}]}]
  routes: [{name: ws, upstream: ws, upgrades: [websocket]}]
`, ws.addr()), Options{})
	draining := make(chan struct{})
	opening := func() { <-draining }
	g.tunnelOpening.Store(&opening)
	wc, wbr := upgradeThrough(t, g.Addr("main")) // its 101 read, its tunnel held at opening
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	shutdown := make(chan error, 1)
	go func() { shutdown <- g.Shutdown(ctx) }()
	for !g.conns.closing() {
		time.Sleep(time.Millisecond)
	}
	close(draining)
	tunnelEchoesUntilTheDeadline(t, wc, wbr, cancel, shutdown)
}
