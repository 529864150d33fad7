package fault

import (
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/relia-dev/relia/clock"
	"github.com/relia-dev/relia/internal/rawio"
)

var errLinkClosed = errors.New("connection closed by a toxic")

// toxicState is one toxic on one connection in one direction. Only that
// direction's pump goroutine uses rng and passed; attach and detach run
// under the link's mutex.
type toxicState struct {
	entry   *toxicEntry
	impl    toxicImpl
	link    *link
	rng     *rand.Rand
	enabled bool
	passed  int64
	detach  func()
}

func (s *toxicState) clock() clock.Clock { return s.link.p.srv.clock }

// wait waits d on the server's clock, or until the connection ends.
func (s *toxicState) wait(d time.Duration) error {
	if d <= 0 {
		return nil
	}
	t := s.clock().NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C():
		return nil
	case <-s.link.done:
		return errLinkClosed
	}
}

// link is one proxied connection: two pumps, one per direction, each
// passing chunks through the toxics enabled for it.
type link struct {
	p    *proxyEntry
	seq  uint64
	done chan struct{}

	connMu     sync.Mutex
	client     net.Conn
	upstream   net.Conn
	closed     bool
	closeOnce  sync.Once
	mu         sync.Mutex // guards states
	states     [2]map[*toxicEntry]*toxicState
	active     [2]atomic.Pointer[[]*toxicState]
	refused    bool
	pumpsAlive sync.WaitGroup
}

func newLink(p *proxyEntry, seq uint64, client net.Conn) *link {
	l := &link{p: p, seq: seq, client: client, done: make(chan struct{})}
	empty := []*toxicState{}
	for d := range l.active {
		l.states[d] = map[*toxicEntry]*toxicState{}
		l.active[d].Store(&empty)
	}
	return l
}

// setChain makes entries (in order, all of direction dir) the link's
// toxics, keeping the state of those it already has.
func (l *link) setChain(dir Direction, entries []*toxicEntry) {
	l.mu.Lock()
	defer l.mu.Unlock()
	old := l.states[dir]
	states := make(map[*toxicEntry]*toxicState, len(entries))
	active := make([]*toxicState, 0, len(entries))
	for _, e := range entries {
		s, ok := old[e]
		if !ok {
			s = &toxicState{entry: e, impl: e.spec.impl, link: l, rng: newStream(e.key, l.seq, dir)}
			// The first draw of the stream decides whether the toxic acts
			// on this connection (Toxiproxy's per-connection toxicity).
			s.enabled = s.rng.Float64() < e.spec.toxicity
			if a, ok := s.impl.(attacher); ok && s.enabled {
				s.detach = a.attach(s)
			}
		}
		states[e] = s
		if s.enabled {
			active = append(active, s)
		}
	}
	for e, s := range old {
		if _, kept := states[e]; !kept && s.detach != nil {
			s.detach()
		}
	}
	l.states[dir] = states
	l.active[dir].Store(&active)
}

// detachAll ends every toxic's hold on the link (its timers).
func (l *link) detachAll() {
	l.mu.Lock()
	defer l.mu.Unlock()
	for d := range l.states {
		for _, s := range l.states[d] {
			if s.detach != nil {
				s.detach()
			}
		}
		l.states[d] = map[*toxicEntry]*toxicState{}
	}
}

// refusing reports whether an enabled toxic refuses the connection.
func (l *link) refusing() bool {
	for d := range l.active {
		for _, s := range *l.active[d].Load() {
			if r, ok := s.impl.(refuser); ok && r.refuses() {
				return true
			}
		}
	}
	return false
}

// setUpstream records the upstream connection; it reports false (and
// closes c) when the link ended meanwhile.
func (l *link) setUpstream(c net.Conn) bool {
	l.connMu.Lock()
	defer l.connMu.Unlock()
	if l.closed {
		c.Close()
		return false
	}
	l.upstream = c
	return true
}

// longAgo is a deadline that has passed.
var longAgo = time.Unix(1, 0)

// close ends the link at once, both directions. A pump that waits to read
// one socket may hold the other (inqReader), and a Close waits for a
// socket's holders, so every wait is ended first.
func (l *link) close() {
	l.closeOnce.Do(func() {
		l.connMu.Lock()
		l.closed = true
		conns := []net.Conn{l.client, l.upstream}
		for _, c := range conns {
			if c != nil {
				c.SetDeadline(longAgo)
			}
		}
		for _, c := range conns {
			if c != nil {
				c.Close()
			}
		}
		l.connMu.Unlock()
		close(l.done)
	})
}

// reset ends the link with a TCP RST to the client, as reset_peer does.
func (l *link) reset() {
	if tc, ok := l.client.(*net.TCPConn); ok {
		tc.SetLinger(0)
	}
	l.close()
}

// send passes p through the toxics in ts and then writes it with write.
func (l *link) send(ts []*toxicState, write func([]byte) error, p []byte) error {
	if len(ts) == 0 {
		return write(p)
	}
	return ts[0].impl.pipe(ts[0], p, func(q []byte) error { return l.send(ts[1:], write, q) })
}

// pump copies src to dst through the toxics of dir until src ends. Its
// owner is run; it returns when src ends or the link closes.
func (l *link) pump(dir Direction, src, dst net.Conn) {
	defer l.pumpsAlive.Done()
	buf := make([]byte, 32<<10)
	// Raw syscalls on Linux TCP sockets (internal/rawio says why).
	read := func() (int, error) { return src.Read(buf) }
	if rc := rawio.New(src); rc != nil {
		read = func() (int, error) { return rc.Read(buf) }
	}
	write := func(p []byte) error { _, err := dst.Write(p); return err }
	if rc := rawio.New(dst); rc != nil {
		write = rc.Write
	}
	// While this direction has no toxics, the reader forwards by itself
	// (inq_linux.go says how and why).
	if r := newInqReader(src, dst, buf, &l.active[dir], write); r != nil {
		read = r.read
	}
	for {
		n, err := read()
		if n > 0 {
			if werr := l.send(*l.active[dir].Load(), write, buf[:n]); werr != nil {
				l.close()
				return
			}
		}
		if err != nil {
			if !errors.Is(err, io.EOF) {
				l.close()
				return
			}
			break
		}
	}
	for _, s := range *l.active[dir].Load() {
		if cd, ok := s.impl.(closeDelayer); ok {
			if s.wait(cd.closeDelay()) != nil {
				return
			}
		}
	}
	// Pass the end on as a half-close, so the other direction can finish
	// its answer (Toxiproxy closes both at once and cuts it short).
	if cw, ok := dst.(interface{ CloseWrite() error }); ok {
		if cw.CloseWrite() == nil {
			return
		}
	}
	l.close()
}

// run proxies the link until both directions end.
func (l *link) run() {
	l.pumpsAlive.Add(2)
	go l.pump(Upstream, l.client, l.upstream)
	go l.pump(Downstream, l.upstream, l.client)
	l.pumpsAlive.Wait()
	l.close()
}
