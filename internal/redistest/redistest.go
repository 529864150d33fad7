// Package redistest runs a real redis-server for tests: on a free loopback
// port of its own, in a temporary directory, with persistence off, stopped
// when the test ends. Tests of relia's shared rate limits and of the
// gateway use it so that they exercise Redis itself rather than a mock of
// its protocol.
//
//	srv := redistest.Start(t)          // skips when redis-server is missing, outside CI
//	client := srv.Client(t)            // a go-redis client, closed at cleanup
//	srv.Stop()                         // Redis goes away mid-test...
//	srv.Restart()                      // ...and comes back on the same port
//
// Under CI=true a missing redis-server fails the test instead of skipping
// it, so that CI cannot go green by testing nothing.
package redistest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// startTimeout bounds how long Start and Restart wait for redis-server to
// answer PING; it starts in milliseconds, so this only matters on a
// machine so loaded that the test would fail anyway.
const startTimeout = 10 * time.Second

// Server is one redis-server process owned by a test.
type Server struct {
	t    testing.TB
	bin  string
	dir  string
	port int

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
}

// Start starts redis-server on a free loopback port and registers its
// stop with t.Cleanup. It skips the test when redis-server is not on PATH
// and the CI environment variable is not "true"; under CI it fails.
func Start(t testing.TB) *Server {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("redis-server is required under CI: %v", err)
		}
		t.Skipf("redis-server not found (install the Debian package redis-server): %v", err)
	}
	s := &Server{t: t, bin: bin, dir: t.TempDir()}
	t.Cleanup(s.Stop)
	// A free port can be taken by someone else between our probe and
	// redis-server's bind; a few tries make that race harmless.
	for try := 0; ; try++ {
		s.port = freePort(t)
		err := s.start()
		if err == nil {
			return s
		}
		if try == 4 {
			t.Fatalf("starting redis-server: %v", err)
		}
	}
}

// Addr returns the server's "127.0.0.1:port".
func (s *Server) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port)) }

// Client returns a go-redis client of the server, closed when the test
// ends. Each call returns a client of its own, with its own connections,
// as separate gateway replicas would have. Its calls honour their
// context's deadline (ContextTimeoutEnabled), as relia's limiters
// require.
func (s *Server) Client(t testing.TB) *redis.Client {
	c := redis.NewClient(&redis.Options{Addr: s.Addr(), ContextTimeoutEnabled: true})
	t.Cleanup(func() { c.Close() })
	return c
}

// Stop kills the server and waits for it to exit. Connections to it fail
// from then on, as they would when Redis crashes. Stopping a stopped
// server does nothing.
func (s *Server) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return
	}
	s.cmd.Process.Kill()
	<-s.done
	s.cmd = nil
}

// Restart starts the server again on the same port, with an empty
// dataset (persistence is off), after Stop.
func (s *Server) Restart() {
	s.t.Helper()
	if err := s.start(); err != nil {
		s.t.Fatalf("restarting redis-server: %v", err)
	}
}

func (s *Server) start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		return errors.New("already running")
	}
	cmd := exec.Command(s.bin,
		"--port", strconv.Itoa(s.port),
		"--bind", "127.0.0.1",
		"--save", "",
		"--appendonly", "no",
		"--dir", s.dir,
		"--protected-mode", "yes",
	)
	out := &bytes.Buffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		return err
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }() // exits when the process does
	if err := waitReady(s.Addr(), done); err != nil {
		cmd.Process.Kill()
		<-done
		return fmt.Errorf("%w; output:\n%s", err, out.String())
	}
	s.cmd, s.done = cmd, done
	return nil
}

// waitReady polls addr with PING until it answers, the process exits, or
// startTimeout passes.
func waitReady(addr string, exited <-chan struct{}) error {
	c := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
	defer c.Close()
	deadline := time.Now().Add(startTimeout)
	for {
		select {
		case <-exited:
			return errors.New("redis-server exited")
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		err := c.Ping(ctx).Err()
		cancel()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("redis-server did not answer PING within %s: %w", startTimeout, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// freePort returns a loopback TCP port that was free a moment ago.
func freePort(t testing.TB) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("finding a free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
