package fault

import (
	"bytes"
	"io"
	"net"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestFaultPassThroughEndsWithTheData: an upstream that writes its answer
// and closes at once often has the data and the FIN arrive together, which
// raises one readiness edge; the proxy must still pass all the data and
// then the end, every time (a pump that waits after the data without
// learning of the FIN would hang the client).
func TestFaultPassThroughEndsWithTheData(t *testing.T) {
	t.Parallel()
	s, _, _ := newTestServer(t, 1)
	answer := []byte(strings.Repeat("x", 3000))
	addr := addProxy(t, s, "p", startUpstream(t, func(c net.Conn) { c.Write(answer) }))
	var wg sync.WaitGroup
	for range 40 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Error(err)
				return
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(safety))
			got, err := io.ReadAll(c)
			if err != nil || !bytes.Equal(got, answer) {
				t.Errorf("read %d bytes, %v; want the %d bytes of the answer and its end", len(got), err, len(answer))
			}
		}()
	}
	wg.Wait()
	// The other way: what a client sends just before its half-close all
	// reaches the upstream, and then its end does.
	got := make(chan []byte, 1)
	addr = addProxy(t, s, "q", startUpstream(t, sink(got)))
	c := dial(t, addr)
	c.Write(answer)
	c.CloseWrite()
	if b := <-got; !bytes.Equal(b, answer) {
		t.Fatalf("the upstream got %d bytes, want %d", len(b), len(answer))
	}
}

// TestFaultToxicJoinsAndLeavesAnOpenConnection: a connection that passes
// data untouched takes a toxic added while it is open from its next
// chunk on, and goes back to passing data untouched once it is removed.
func TestFaultToxicJoinsAndLeavesAnOpenConnection(t *testing.T) {
	t.Parallel()
	s, fc, _ := newTestServer(t, 1)
	addr := addProxy(t, s, "p", startUpstream(t, echo))
	c := dial(t, addr)
	ping := func(msg string) {
		t.Helper()
		c.Write([]byte(msg))
		if got := readN(t, c, len(msg)); got != msg {
			t.Fatalf("got %q, want %q", got, msg)
		}
	}
	ping("before")
	addToxic(t, s, "p", `{"name":"slow","type":"latency","attributes":{"latency":700}}`)
	c.Write([]byte("during"))
	if w := nextWait(fc, 1); w != 700*time.Millisecond {
		t.Fatalf("latency wait %v, want 700ms", w)
	}
	fc.Advance(700 * time.Millisecond)
	if got := readN(t, c, 6); got != "during" {
		t.Fatalf("got %q", got)
	}
	if err := s.RemoveToxic("p", "slow"); err != nil {
		t.Fatal(err)
	}
	ping("after")
	if n := fc.Waiters(); n != 0 {
		t.Fatalf("%d timers after the toxic went", n)
	}
}

// TestFaultDeleteProxyEndsBusyLinks: deleting a proxy ends its open
// connections at once, whichever socket their pumps wait on, and returns.
func TestFaultDeleteProxyEndsBusyLinks(t *testing.T) {
	t.Parallel()
	s, _, _ := newTestServer(t, 1)
	// An upstream that never ends a connection by itself, so only the
	// proxy can end these links.
	addr := addProxy(t, s, "p", startUpstreamFor(t, func(c net.Conn) { io.Copy(c, c) }, 0))
	var conns []net.Conn
	for range 20 {
		c := dial(t, addr)
		c.Write([]byte("hi"))
		readN(t, c, 2)
		conns = append(conns, c)
	}
	deleted := make(chan error, 1)
	go func() { deleted <- s.DeleteProxy("p") }()
	select {
	case err := <-deleted:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(safety):
		t.Fatal("deleting the proxy did not return: a pump holds a socket its Close waits for")
	}
	for _, c := range conns {
		if _, err := c.Read(make([]byte, 1)); err == nil {
			t.Fatal("a connection outlived its proxy")
		}
	}
}

func TestFaultPumpsForwardWithoutToxicsOnLinux(t *testing.T) {
	t.Parallel()
	if runtime.GOOS != "linux" {
		t.Skip("TCP_INQ is Linux's")
	}
	up := startUpstream(t, echo)
	a, b := dial(t, up), dial(t, up)
	var chain atomic.Pointer[[]*toxicState]
	if r := newInqReader(a, b, make([]byte, 16), &chain, nil); r == nil {
		t.Fatal("no forwarding reader for TCP sockets on Linux")
	}
}
