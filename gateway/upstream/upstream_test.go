package upstream

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// server answers each request with reply after reading its body, and
// counts connections and the bodies it read.
func server(t *testing.T, reply string) (addr string, conns *atomic.Int64, bodies chan string) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	conns, bodies = new(atomic.Int64), make(chan string, 16)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns.Add(1)
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				for {
					req, err := http.ReadRequest(br)
					if err != nil {
						return
					}
					b, _ := io.ReadAll(req.Body)
					bodies <- string(b)
					io.WriteString(c, reply)
				}
			}()
		}
	}()
	return ln.Addr().String(), conns, bodies
}

func TestDoKeepsTheConnectionAndStreamsBodies(t *testing.T) {
	addr, conns, bodies := server(t, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n")
	tg := New(Settings{Addr: addr, MaxConns: 4})
	for i, body := range []string{"held", "streamed"} {
		req := Request{Method: []byte("POST"), Target: []byte("/p"), Host: []byte("h")}
		if i == 0 {
			req.Body = []byte(body)
		} else {
			req.Stream, req.Length = NewReaderSource(strings.NewReader(body), make([]byte, 3)), -1
		}
		var resp Response
		if err := tg.Do(context.Background(), &req, &resp, time.Now().Add(5*time.Second)); err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			// A long stream lets go of the write buffer; the next
			// request on the connection makes one.
			resp.Conn().DropWriteBuffer()
		}
		got, err := io.ReadAll(&resp.Body)
		resp.Release()
		if err != nil || string(got) != "ok" || resp.Status != 200 {
			t.Fatalf("answer %d %q %v", resp.Status, got, err)
		}
		if b := <-bodies; b != body {
			t.Errorf("the server read %q, want %q", b, body)
		}
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("%d connections for two requests, want 1", n)
	}
}

func TestDoRefusesASwitchNobodyAskedFor(t *testing.T) {
	addr, _, _ := server(t, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: x\r\n\r\n")
	tg := New(Settings{Addr: addr})
	var resp Response
	err := tg.Do(context.Background(), &Request{Method: []byte("GET"), Target: []byte("/"), Host: []byte("h")}, &resp, time.Now().Add(5*time.Second))
	if !errors.Is(err, ErrInvalidResponse) {
		t.Errorf("a 101 to a plain request: %v, want ErrInvalidResponse", err)
	}
}

// TestRetiredTargetClosesConnectionsGivenBack: a connection in use when
// its target is retired (a reload replaced the pool) closes when its
// request ends instead of waiting idle where nobody will take it.
func TestRetiredTargetClosesConnectionsGivenBack(t *testing.T) {
	addr, conns, bodies := server(t, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
	tg := New(Settings{Addr: addr, MaxConns: 4})
	do := func() {
		t.Helper()
		req := Request{Method: []byte("GET"), Target: []byte("/"), Host: []byte("h")}
		var resp Response
		if err := tg.Do(context.Background(), &req, &resp, time.Now().Add(5*time.Second)); err != nil {
			t.Fatal(err)
		}
		<-bodies
		if _, err := io.ReadAll(&resp.Body); err != nil {
			t.Fatal(err)
		}
		if resp.Status == 200 && len(tg.idle) == 0 {
			// Retire between the answer and its release, as a reload
			// does while the request is in flight.
			tg.Retire()
		}
		resp.Release()
	}
	do()
	if n := len(tg.idle); n != 0 {
		t.Fatalf("%d connections kept idle by a retired target, want 0", n)
	}
	if n := len(tg.slots); n != 0 {
		t.Fatalf("%d connection slots still taken, want 0", n)
	}
	// A request that still comes (one already routed to the old pool) is
	// served, on a connection of its own.
	do()
	if n := conns.Load(); n != 2 {
		t.Errorf("%d connections, want 2: the first closed when given back", n)
	}
}

// TestParkReadBufferKeepsTheBody: a body that waits between chunks lends
// its connection's read buffer (keeping the chunk's CRLF it had not
// consumed) and reads on after taking one back, which another
// connection of the target may have used meanwhile.
func TestParkReadBufferKeepsTheBody(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	next := make(chan struct{})
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		http.ReadRequest(bufio.NewReader(c))
		io.WriteString(c, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nfirst\r\n")
		<-next
		io.WriteString(c, "6\r\nsecond\r\n0\r\n\r\n")
	}()
	tg := New(Settings{Addr: ln.Addr().String(), ReadBuffer: 256})
	var resp Response
	if err := tg.Do(context.Background(), &Request{Method: []byte("GET"), Target: []byte("/"), Host: []byte("h")}, &resp, time.Now().Add(5*time.Second)); err != nil {
		t.Fatal(err)
	}
	defer resp.Release()
	var got []byte
	for len(got) < len("first") {
		p, err := resp.Body.Next()
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, p...)
	}
	uc := resp.Conn()
	if !uc.ParkReadBuffer() {
		t.Fatalf("a body waiting between chunks kept its buffer (%d bytes unconsumed)", len(uc.rd.Buffered()))
	}
	// Another connection's reads use the lent buffer meanwhile.
	other := tg.rbufs.Get().(*[]byte)
	copy(*other, bytes.Repeat([]byte("x"), len(*other)))
	tg.rbufs.Put(other)
	close(next)
	uc.UnparkReadBuffer()
	rest, err := io.ReadAll(&resp.Body)
	if got = append(got, rest...); err != nil || string(got) != "firstsecond" {
		t.Errorf("the body read %q, %v; want firstsecond", got, err)
	}
}
