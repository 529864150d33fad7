// Package pgtest runs a real PostgreSQL server for tests: Debian's
// postgres binaries, on a free loopback port of its own, in a temporary
// directory, with fsync off because a test's data only has to outlive
// the server's process, not the machine. Tests of relia's call store use
// it so that they exercise PostgreSQL itself rather than a mock of its
// protocol.
//
//	srv := pgtest.Start(t)             // skips when PostgreSQL is missing, outside CI
//	dsn := srv.NewDatabase(t)          // an empty database of the test's own
//	srv.Stop()                         // the server goes away mid-test...
//	srv.Restart()                      // ...and comes back on the same port, data kept
//
// initdb takes seconds, so a package whose tests all need a server
// shares one: its TestMain calls Main, and each test calls Shared(t) and
// then NewDatabase(t) for a database of its own.
//
// The binaries are found on PATH or in /usr/lib/postgresql/*/bin (where
// Debian's postgresql package puts them). PostgreSQL refuses to run as
// root, so under root the server runs as the postgres user (or nobody).
// Under CI=true missing binaries fail the test instead of skipping it, so
// that CI cannot go green by testing nothing.
package pgtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// startTimeout bounds how long Start and Restart wait for the server to
// accept connections.
const startTimeout = 60 * time.Second

// Server is one PostgreSQL server owned by a test (or by a package's
// tests, through Shared).
type Server struct {
	bin  string // the folder holding initdb and postgres
	dir  string // owns the data folder; removed at cleanup
	port int
	cred *syscall.Credential

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
	out  *lockedBuffer

	dbs atomic.Int64
}

// Binaries returns the folder holding PostgreSQL's initdb and postgres,
// or "" when they are not installed.
func Binaries() string {
	if p, err := exec.LookPath("initdb"); err == nil {
		if real, err := filepath.EvalSymlinks(p); err == nil {
			p = real
		}
		dir := filepath.Dir(p)
		if _, err := os.Stat(filepath.Join(dir, "postgres")); err == nil {
			return dir
		}
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	// The highest version first: "9" sorts after "15" as text, so by
	// number.
	slices.SortFunc(dirs, func(a, b string) int {
		va, _ := strconv.Atoi(filepath.Base(filepath.Dir(a)))
		vb, _ := strconv.Atoi(filepath.Base(filepath.Dir(b)))
		return vb - va
	})
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			return d
		}
	}
	return ""
}

// require returns the binaries' folder, skipping or failing t without.
func require(t testing.TB) string {
	t.Helper()
	bin := Binaries()
	if bin == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("PostgreSQL is required under CI: initdb and postgres not found (install the Debian package postgresql)")
		}
		t.Skip("PostgreSQL not found (install the Debian package postgresql)")
	}
	return bin
}

// Start initialises a database cluster and starts a server on a free
// loopback port, stopped and removed when the test ends. It skips the
// test when PostgreSQL is not installed and CI is not "true"; under CI
// it fails.
func Start(t testing.TB) *Server {
	t.Helper()
	s, err := start(require(t))
	if err != nil {
		t.Fatalf("starting PostgreSQL: %v", err)
	}
	t.Cleanup(s.close)
	return s
}

func start(bin string) (*Server, error) {
	s := &Server{bin: bin}
	var err error
	if s.cred, err = credential(); err != nil {
		return nil, err
	}
	if s.dir, err = os.MkdirTemp("", "relia-pgtest-"); err != nil {
		return nil, err
	}
	if err := s.initdb(); err != nil {
		s.close()
		return nil, err
	}
	// A free port can be taken by someone else between our probe and the
	// server's bind; a few tries make that race harmless.
	for try := 0; ; try++ {
		if s.port, err = freePort(); err == nil {
			if err = s.start(); err == nil {
				return s, nil
			}
		}
		if try == 4 {
			s.close()
			return nil, err
		}
	}
}

// credential is the user the server runs as: the postgres user (or
// nobody) when we are root, which PostgreSQL refuses to run as; nil,
// ourselves, otherwise.
func credential() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	for _, name := range []string{"postgres", "nobody"} {
		u, err := user.Lookup(name)
		if err != nil {
			continue
		}
		uid, _ := strconv.ParseUint(u.Uid, 10, 32)
		gid, _ := strconv.ParseUint(u.Gid, 10, 32)
		return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), NoSetGroups: true}, nil
	}
	return nil, errors.New("running as root, and neither a postgres nor a nobody user exists to run PostgreSQL as")
}

func (s *Server) command(name string, args ...string) *exec.Cmd {
	cmd := exec.Command(filepath.Join(s.bin, name), args...)
	if s.cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: s.cred}
	}
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	return cmd
}

func (s *Server) data() string { return filepath.Join(s.dir, "data") }

func (s *Server) initdb() error {
	if s.cred != nil {
		if err := os.Chown(s.dir, int(s.cred.Uid), int(s.cred.Gid)); err != nil {
			return err
		}
	}
	cmd := s.command("initdb", "-D", s.data(), "-U", "relia", "--auth=trust", "-E", "UTF8", "--no-sync", "--no-instructions")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("initdb: %w\n%s", err, out)
	}
	return nil
}

// DSN returns the URL of database db on the server, as user relia.
func (s *Server) DSN(db string) string {
	return fmt.Sprintf("postgres://relia@%s/%s?sslmode=disable", s.Addr(), db)
}

// Addr returns the server's "127.0.0.1:port".
func (s *Server) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port)) }

// NewDatabase creates an empty database for the test and returns its
// URL; it is dropped when the test ends, if the server still runs.
func (s *Server) NewDatabase(t testing.TB) string {
	t.Helper()
	name := fmt.Sprintf("t%d_%d", os.Getpid(), s.dbs.Add(1))
	if err := s.exec("CREATE DATABASE " + name); err != nil {
		t.Fatalf("creating database: %v", err)
	}
	t.Cleanup(func() { s.exec("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)") })
	return s.DSN(name)
}

// exec runs one statement in the postgres database.
func (s *Server) exec(stmt string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, s.DSN("postgres"))
	if err != nil {
		return err
	}
	defer c.Close(ctx)
	_, err = c.Exec(ctx, stmt)
	return err
}

// Stop kills the server (SIGKILL, as a crash would) and waits for it to
// exit: connections to it fail from then on. Stopping a stopped server
// does nothing.
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

// Restart starts the server again on the same port after Stop; its data
// is kept (it recovers as after a crash).
func (s *Server) Restart() error {
	if err := s.start(); err != nil {
		return fmt.Errorf("restarting PostgreSQL: %w", err)
	}
	return nil
}

func (s *Server) start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		return errors.New("already running")
	}
	// A server killed by Stop leaves its pid file; the new one would
	// refuse to start while the pid is taken by another process.
	os.Remove(filepath.Join(s.data(), "postmaster.pid"))
	cmd := s.command("postgres", "-D", s.data(), "-p", strconv.Itoa(s.port),
		"-c", "listen_addresses=127.0.0.1", "-c", "unix_socket_directories=",
		"-c", "fsync=off", "-c", "full_page_writes=off",
		"-c", "max_connections=50", "-c", "shared_buffers=32MB")
	out := &lockedBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		return err
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }() // exits when the process does
	if err := waitReady(s.DSN("postgres"), done); err != nil {
		cmd.Process.Kill()
		<-done
		return fmt.Errorf("%w; output:\n%s", err, out.String())
	}
	s.cmd, s.done, s.out = cmd, done, out
	return nil
}

// close stops the server and removes its files.
func (s *Server) close() {
	s.Stop()
	if s.dir != "" {
		os.RemoveAll(s.dir)
	}
}

// waitReady connects to dsn until it answers, the process exits, or
// startTimeout passes.
func waitReady(dsn string, exited <-chan struct{}) error {
	deadline := time.Now().Add(startTimeout)
	for {
		select {
		case <-exited:
			return errors.New("postgres exited")
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		c, err := pgx.Connect(ctx, dsn)
		if err == nil {
			c.Close(ctx)
			cancel()
			return nil
		}
		cancel()
		if time.Now().After(deadline) {
			return fmt.Errorf("postgres did not accept connections within %s: %w", startTimeout, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// freePort returns a loopback TCP port that was free a moment ago.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("finding a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

var shared struct {
	mu  sync.Mutex
	srv *Server
	err error
}

// Shared returns the server shared by the tests of this test binary,
// starting it on first use; Main stops it when the tests are done. It
// skips or fails t as Start does when PostgreSQL is missing. Tests must
// not Stop it: those that take the server down Start one of their own.
func Shared(t testing.TB) *Server {
	t.Helper()
	bin := require(t)
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if shared.srv == nil && shared.err == nil {
		shared.srv, shared.err = start(bin)
	}
	if shared.err != nil {
		t.Fatalf("starting PostgreSQL: %v", shared.err)
	}
	return shared.srv
}

// Main runs the tests and then stops the shared server, if one was
// started; a package whose tests call Shared uses it in its TestMain:
//
//	func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }
func Main(m *testing.M) int {
	code := m.Run()
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if shared.srv != nil {
		shared.srv.close()
		shared.srv = nil
	}
	return code
}

// Log returns what the server printed, for a failing test's message.
func (s *Server) Log() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.out == nil {
		return ""
	}
	return strings.TrimSpace(s.out.String())
}

// lockedBuffer is what the server prints, written by exec's copying
// goroutine and read by Log.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
