package fault

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/relia-dev/relia/clock"
)

// safety bounds a blocking read in a test so a bug fails the test instead
// of hanging it; no assertion depends on it.
const safety = 10 * time.Second

// syncBuffer is a bytes.Buffer safe for the audit log's concurrent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// records returns the audit records whose msg is msg.
func (s *syncBuffer) records(t *testing.T, msg string) []map[string]any {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(s.b.String()), "\n") {
		if line == "" {
			continue
		}
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("audit line %q: %v", line, err)
		}
		if rec["msg"] == msg {
			out = append(out, rec)
		}
	}
	return out
}

// newTestServer returns a server on a fake clock with its audit log.
func newTestServer(t *testing.T, seed uint64) (*Server, *clock.Fake, *syncBuffer) {
	return newTestServerWith(t, Options{Seed: seed})
}

// newTestServerWith returns a server with opts on a fake clock, with its
// audit log.
func newTestServerWith(t *testing.T, opts Options) (*Server, *clock.Fake, *syncBuffer) {
	t.Helper()
	fc := clock.NewFake(time.Unix(1_700_000_000, 0))
	audit := &syncBuffer{}
	opts.Clock, opts.Audit = fc, slog.New(slog.NewJSONHandler(audit, &slog.HandlerOptions{Level: slog.LevelDebug}))
	s, err := NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, fc, audit
}

// startUpstream listens on loopback and runs handle for every connection,
// which it ends after safety.
func startUpstream(t *testing.T, handle func(net.Conn)) string {
	t.Helper()
	return startUpstreamFor(t, handle, safety)
}

// startUpstreamFor is startUpstream ending each connection after limit;
// 0 leaves them open until the test ends.
func startUpstreamFor(t *testing.T, handle func(net.Conn), limit time.Duration) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				if limit > 0 {
					c.SetDeadline(time.Now().Add(limit))
				}
				handle(c)
			}()
		}
	}()
	return ln.Addr().String()
}

// echo answers what it reads and half-closes at the end.
func echo(c net.Conn) {
	io.Copy(c, c)
	c.(*net.TCPConn).CloseWrite()
}

// sink reads until EOF and sends what it read to got.
func sink(got chan<- []byte) func(net.Conn) {
	return func(c net.Conn) {
		b, _ := io.ReadAll(c)
		got <- b
	}
}

func addProxy(t *testing.T, s *Server, name, upstream string) string {
	t.Helper()
	info, err := s.CreateProxy(ProxyConfig{Name: name, Listen: "127.0.0.1:0", Upstream: upstream})
	if err != nil {
		t.Fatal(err)
	}
	return info.Listen
}

func addToxic(t *testing.T, s *Server, proxy, body string) Toxic {
	t.Helper()
	tx, err := s.AddToxic(proxy, strings.NewReader(body))
	if err != nil {
		t.Fatalf("adding toxic %s: %v", body, err)
	}
	return tx
}

func dial(t *testing.T, addr string) *net.TCPConn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(safety))
	t.Cleanup(func() { c.Close() })
	return c.(*net.TCPConn)
}

func readN(t *testing.T, c net.Conn, n int) string {
	t.Helper()
	buf := make([]byte, n)
	if _, err := io.ReadFull(c, buf); err != nil {
		t.Fatalf("reading %d bytes: %v", n, err)
	}
	return string(buf)
}

// nextWait waits until n timers are pending and returns how far away the
// earliest is.
func nextWait(fc *clock.Fake, n int) time.Duration {
	fc.BlockUntil(n)
	d, _ := fc.NextDeadline()
	return d.Sub(fc.Now())
}
