package gateway

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/relia-dev/relia/internal/rawio"
)

// TestKeptConnectionsKeepTheirTimeouts checks the deadlines a kept-alive
// connection's later requests are read under, now that they are set only
// where a read waits: the rest of a head that did not come whole within
// the head timeout (not the far longer idle one), and an idle connection
// closed after the idle timeout.
func TestKeptConnectionsKeepTheirTimeouts(t *testing.T) {
	t.Parallel()
	onEngines(t, func(t *testing.T) {
		t.Parallel()
		b := newBackend(t, "b")
		_, base := startGateway(t, fmt.Sprintf(`
  server: {readHeaderTimeout: 300ms, idleTimeout: 1h}
  upstreams: [{name: b, targets: [{address: %s}]}]
  routes: [{name: r, upstream: b}]
`, b.addr()), Options{})
		_, idleBase := startGateway(t, fmt.Sprintf(`
  server: {idleTimeout: 200ms}
  upstreams: [{name: b, targets: [{address: %s}]}]
  routes: [{name: r, upstream: b}]
`, b.addr()), Options{})

		// dial sends one whole request on a new connection and reads its
		// answer.
		dial := func(base string) (net.Conn, *bufio.Reader) {
			c, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { c.Close() })
			c.SetDeadline(time.Now().Add(10 * time.Second))
			br := bufio.NewReader(c)
			io.WriteString(c, "GET /first HTTP/1.1\r\nHost: x\r\n\r\n")
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Fatalf("first request: %d", resp.StatusCode)
			}
			return c, br
		}

		t.Run("slow second head", func(t *testing.T) {
			c, br := dial(base)
			io.WriteString(c, "GET /second HTTP/1.1\r\nHost: x\r\nX-Slow: ")
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatalf("a head left unfinished on a kept connection got no answer: %v", err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusRequestTimeout {
				t.Errorf("a head left unfinished on a kept connection: %d, want 408 after the head timeout", resp.StatusCode)
			}
		})
		t.Run("idle", func(t *testing.T) {
			c, br := dial(idleBase)
			if _, err := br.ReadByte(); err != io.EOF {
				t.Errorf("an idle connection read %v, want it closed by the gateway (io.EOF) after the idle timeout", err)
			}
			c.Close()
		})
	})
}

// TestResponseOutlivesAnotherWritersDeadline checks that a response is
// written within its own deadline even where a writer before it (the AI
// gateway's sets one per write) left a write deadline that has passed,
// while a connection the gateway ended stays ended.
func TestResponseOutlivesAnotherWritersDeadline(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	nc, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	c := &conn{nc: nc, c: rawio.Wrap(nc)}
	c.c.SetWriteDeadline(time.Now().Add(-time.Second))
	c.wdl = time.Now().Add(time.Minute)
	if err := c.send([]byte("ok")); err != nil {
		t.Fatalf("a response after a passed deadline another writer set: %v, want it written", err)
	}
	buf := make([]byte, 2)
	if _, err := io.ReadFull(client, buf); err != nil || string(buf) != "ok" {
		t.Fatalf("read %q, %v", buf, err)
	}
	c.end()
	if err := c.send([]byte("no")); err == nil {
		t.Error("a write on a connection the gateway ended succeeded")
	}
}
