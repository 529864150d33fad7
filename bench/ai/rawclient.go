package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"sync"

	"github.com/relia-dev/relia/internal/h1"
)

// rawClient is the time-to-first-token step's client: HTTP/1.1 over kept
// connections, written from bytes made once and read by relia's codec,
// with no transport goroutines. The step runs it on CPU 0 beside the
// simulator; net/http's client cost enough there that, at half relia's
// max stream rate, the two saturated the core and the streams reached
// relia in clumps.
type rawClient struct {
	addr, path string // host:port, and the request target
	mu         sync.Mutex
	idle       []*rawConn
}

type rawConn struct {
	c    net.Conn
	rd   h1.Reader
	resp h1.Response
	body h1.Body
}

func newRawClient(rawURL string) (*rawClient, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, err
	}
	return &rawClient{addr: u.Host, path: u.RequestURI()}, nil
}

// request is a POST of body with the bench's key.
func (c *rawClient) request(body string) []byte {
	return fmt.Appendf(nil, "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nAuthorization: Bearer sk-bench\r\nContent-Length: %d\r\n\r\n%s",
		c.path, c.addr, len(body), body)
}

func (c *rawClient) conn() (*rawConn, error) {
	c.mu.Lock()
	if n := len(c.idle); n > 0 {
		rc := c.idle[n-1]
		c.idle = c.idle[:n-1]
		c.mu.Unlock()
		return rc, nil
	}
	c.mu.Unlock()
	return c.dial()
}

// dial opens a connection.
func (c *rawClient) dial() (*rawConn, error) {
	nc, err := net.Dial("tcp", c.addr)
	if err != nil {
		return nil, err
	}
	rc := &rawConn{c: nc}
	rc.rd = h1.Reader{Src: nc, Buf: make([]byte, 16<<10), Max: 64 << 10}
	return rc, nil
}

// stream sends req and reads the answer to its end, calling first once
// when the first content token arrived; the connection is kept for the
// next stream.
func (c *rawClient) stream(req []byte, first func()) error {
	rc, err := c.conn()
	if err != nil {
		return err
	}
	err = rc.exchange(req, first)
	if err != nil {
		rc.c.Close()
		return err
	}
	c.mu.Lock()
	c.idle = append(c.idle, rc)
	c.mu.Unlock()
	return nil
}

// warm opens n connections and sends req on each, all at once, and keeps
// them for the streams that follow.
func (c *rawClient) warm(n int, req []byte) error {
	conns := make([]*rawConn, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range conns {
		wg.Go(func() {
			rc, err := c.dial()
			if err != nil {
				errs[i] = err
				return
			}
			if errs[i] = rc.exchange(req, func() {}); errs[i] != nil {
				rc.c.Close()
				return
			}
			conns[i] = rc
		})
	}
	wg.Wait()
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, rc := range conns {
		if rc != nil {
			c.idle = append(c.idle, rc)
		}
	}
	return errors.Join(errs...)
}

// close closes the kept connections, so that the next measurement starts
// with none left over on the simulator or relia.
func (c *rawClient) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, rc := range c.idle {
		rc.c.Close()
	}
	c.idle = nil
}

func (rc *rawConn) exchange(req []byte, first func()) error {
	if _, err := rc.c.Write(req); err != nil {
		return err
	}
	if err := rc.rd.ReadResponse(h1.DefaultLimits, false, &rc.resp); err != nil {
		return err
	}
	if rc.resp.Status != 200 {
		return fmt.Errorf("status %d", rc.resp.Status)
	}
	rc.body.Reset(&rc.rd, rc.resp.Framing, rc.resp.ContentLength, h1.DefaultLimits)
	var start []byte // the answer up to its first token, which may span pieces
	seen := false
	for {
		p, err := rc.body.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		if !seen {
			start = append(start, p...)
			if bytes.Contains(start, contentToken) {
				seen = true
				first()
			}
		}
	}
	if !seen {
		return errors.New("the stream ended with no content token")
	}
	return nil
}
