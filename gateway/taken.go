package gateway

import (
	"context"
	"net"
	"sync"
	"time"
)

// takenConns tracks the connections the gateway has taken over from its
// servers: upgrades spliced to a target, and streams to HTTP/1.0 clients.
// The servers' own graceful shutdown no longer sees those, so Shutdown
// gives them the rest of its deadline and then ends them.
type takenConns struct {
	mu      sync.Mutex
	ending  bool
	closers map[*func()]struct{}
	idle    chan struct{} // closed when the last one returns while drain waits
}

// serve runs fn, which uses a taken connection until it is done; end
// makes fn return soon when called from another goroutine (by ending the
// connections fn reads from). When the gateway is already shutting down,
// end is called at once.
func (t *takenConns) serve(end func(), fn func()) {
	t.mu.Lock()
	if t.closers == nil {
		t.closers = make(map[*func()]struct{})
	}
	t.closers[&end] = struct{}{}
	ending := t.ending
	t.mu.Unlock()
	defer func() {
		t.mu.Lock()
		delete(t.closers, &end)
		if len(t.closers) == 0 && t.idle != nil {
			close(t.idle)
			t.idle = nil
		}
		t.mu.Unlock()
	}()
	if ending {
		end()
	}
	fn()
}

// drain waits for the taken connections to finish until ctx ends, then
// ends those left and waits for them to return.
func (t *takenConns) drain(ctx context.Context) {
	t.mu.Lock()
	if len(t.closers) == 0 {
		t.mu.Unlock()
		return
	}
	if t.idle == nil {
		t.idle = make(chan struct{})
	}
	idle := t.idle
	t.mu.Unlock()
	select {
	case <-idle:
		return
	case <-ctx.Done():
	}
	t.mu.Lock()
	t.ending = true
	for end := range t.closers {
		(*end)()
	}
	t.mu.Unlock()
	<-idle
}

// endConn makes every read and write on c fail from now on, and closes
// it. The deadline is what counts: the connection the fast engine hands
// over ignores Close, which its server does itself once the handler
// returns.
func endConn(c net.Conn) {
	c.SetDeadline(time.Unix(1, 0))
	c.Close()
}

// liveConns tracks the connections the HTTP/1.1 servers have accepted and
// not yet closed. fasthttp's shutdown closes idle connections only and,
// past its deadline, leaves one whose response still streams from a
// target; Shutdown ends those with endAll.
type liveConns struct {
	mu    sync.Mutex
	conns map[*liveConn]struct{}
}

// listener returns ln with every accepted connection tracked until closed.
func (l *liveConns) listener(ln net.Listener) net.Listener {
	return &liveListener{Listener: ln, live: l}
}

// endAll ends every tracked connection (see endConn).
func (l *liveConns) endAll() {
	l.mu.Lock()
	defer l.mu.Unlock()
	for c := range l.conns {
		endConn(c.Conn)
	}
}

type liveListener struct {
	net.Listener
	live *liveConns
}

func (ln *liveListener) Accept() (net.Conn, error) {
	c, err := ln.Listener.Accept()
	if err != nil {
		return nil, err
	}
	lc := &liveConn{Conn: c, live: ln.live}
	ln.live.mu.Lock()
	if ln.live.conns == nil {
		ln.live.conns = make(map[*liveConn]struct{})
	}
	ln.live.conns[lc] = struct{}{}
	ln.live.mu.Unlock()
	return lc, nil
}

type liveConn struct {
	net.Conn
	live *liveConns
	once sync.Once
}

func (c *liveConn) Close() error {
	c.once.Do(func() {
		c.live.mu.Lock()
		delete(c.live.conns, c)
		c.live.mu.Unlock()
	})
	return c.Conn.Close()
}
