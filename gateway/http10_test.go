package gateway

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestUpstreamConnectionsIgnoreTheClientsOptions sends HTTP/1.0 requests
// and requests that ask to close, and checks that the target gets HTTP/1.1
// requests that keep their connection, so all of them share one upstream
// connection, while each client connection is kept or closed as its
// client asked.
func TestUpstreamConnectionsIgnoreTheClientsOptions(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var conns, closed int
	var seen []string
	up := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, fmt.Sprintf("%s close=%v", r.Proto, r.Close))
		mu.Unlock()
		io.WriteString(w, "ok")
	}))
	up.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		mu.Lock()
		defer mu.Unlock()
		switch s {
		case http.StateNew:
			conns++
		case http.StateClosed, http.StateHijacked:
			closed++
		}
	}
	up.Start()
	t.Cleanup(up.Close)
	_, base := startGateway(t, fmt.Sprintf(`
  upstreams: [{name: up, targets: [{address: %s}]}]
  routes: [{name: all, upstream: up}]
`, strings.TrimPrefix(up.URL, "http://")), Options{})
	addr := strings.TrimPrefix(base, "http://")

	for _, tc := range []struct {
		name, raw string
		keep      bool // the client's connection stays open
	}{
		{"HTTP/1.0", "GET /a HTTP/1.0\r\n\r\n", false},
		{"HTTP/1.1 asking to close", "GET /b HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", false},
		{"HTTP/1.0 asking to keep", "GET /c HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", true},
		{"HTTP/1.1", "GET /d HTTP/1.1\r\nHost: x\r\n\r\n", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(10 * time.Second))
			br := bufio.NewReader(c)
			for i := range 2 {
				if _, err := io.WriteString(c, tc.raw); err != nil {
					t.Fatal(err)
				}
				resp, err := http.ReadResponse(br, nil)
				if err != nil {
					t.Fatalf("request %d: %v", i+1, err)
				}
				body, _ := io.ReadAll(resp.Body)
				if resp.StatusCode != 200 || string(body) != "ok" {
					t.Fatalf("request %d: %d %q", i+1, resp.StatusCode, body)
				}
				if tc.keep && strings.Contains(tc.raw, "HTTP/1.0") && resp.Header.Get("Connection") != "keep-alive" {
					t.Errorf("an HTTP/1.0 client kept alive without being told so: Connection %q", resp.Header.Get("Connection"))
				}
				if !tc.keep {
					// The gateway closes the client's connection after
					// the response, as the client asked.
					if n, err := br.Read(make([]byte, 1)); n != 0 || err != io.EOF {
						t.Fatalf("connection still open after the response (%d, %v)", n, err)
					}
					return
				}
			}
		})
	}
	mu.Lock()
	defer mu.Unlock()
	for _, s := range seen {
		if s != "HTTP/1.1 close=false" {
			t.Errorf("the target got %q, want every request as HTTP/1.1 keeping its connection (all: %q)", s, seen)
			break
		}
	}
	// The gateway may answer the client before it gives the upstream
	// connection back to its pool, so a client quick to send its next
	// request can make it open a second one; what must not happen is an
	// upstream connection closed because a client asked to close its own.
	if closed != 0 {
		t.Errorf("%d of %d upstream connections closed while the gateway ran, want none", closed, conns)
	}
	if conns == 0 || conns >= len(seen) {
		t.Errorf("%d upstream connections for %d sequential requests: none reused", conns, len(seen))
	}
}

// TestHTTP10ClientGetsAStreamedBodyUnchunked streams a body of unknown
// length from a target to an HTTP/1.0 client, which cannot read the
// chunked coding: the body must come unframed, ended by the connection's
// close. An HTTP/1.1 client gets it chunked, as before.
func TestHTTP10ClientGetsAStreamedBodyUnchunked(t *testing.T) {
	t.Parallel()
	b := newBackend(t, "stream")
	b.handle(func(w http.ResponseWriter, r *http.Request) bool {
		io.WriteString(w, "part one, ")
		w.(http.Flusher).Flush() // no Content-Length: the target sends it chunked
		io.WriteString(w, "part two")
		return true
	})
	_, base := startGateway(t, fmt.Sprintf(`
  upstreams: [{name: up, targets: [{address: %s}]}]
  routes: [{name: all, upstream: up}]
`, b.addr()), Options{})

	c, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(c, "GET /events HTTP/1.0\r\n\r\n")
	raw, err := io.ReadAll(c) // to the close that ends the body
	if err != nil {
		t.Fatal(err)
	}
	head, body, ok := strings.Cut(string(raw), "\r\n\r\n")
	if !ok {
		t.Fatalf("no end of header in %q", raw)
	}
	lower := strings.ToLower(head)
	if !strings.HasPrefix(head, "HTTP/1.1 200") || strings.Contains(lower, "transfer-encoding") || strings.Contains(lower, "content-length") || !strings.Contains(lower, "connection: close") {
		t.Errorf("header %q: want 200 with Connection: close and no framing", head)
	}
	if body != "part one, part two" {
		t.Errorf("body %q, want the target's bytes as sent", body)
	}

	if code, got, _ := get(t, "GET", base+"/events", nil); code != 200 || got != "part one, part two" {
		t.Errorf("HTTP/1.1 client: %d %q", code, got)
	}
}
