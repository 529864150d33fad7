package gateway

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/relia-dev/relia/internal/h1"
)

// recordingBackend answers every request with 200 and keeps the bytes of
// each request it received, head and body as they came on the wire.
type recordingBackend struct {
	ln   net.Listener
	mu   sync.Mutex
	seen [][]byte
}

func newRecordingBackend(t testing.TB) *recordingBackend {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	rb := &recordingBackend{ln: ln}
	t.Cleanup(func() { ln.Close() })
	go func() { // ends when the listener closes
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go rb.serve(c)
		}
	}()
	return rb
}

// serve reads requests with the codec and keeps their bytes; a request the
// codec refuses is kept too (the fuzz target then reports it).
func (rb *recordingBackend) serve(c net.Conn) {
	defer c.Close()
	tee := &teeReader{r: c}
	rd := &h1.Reader{Src: tee, Buf: make([]byte, 4096), Max: 1 << 20}
	consumed := func() int { return len(tee.all) - (rd.W - rd.R) }
	var req h1.Request
	var body h1.Body
	for {
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		start := consumed()
		if err := rd.ReadRequest(h1.DefaultLimits, &req); err != nil {
			if err != io.EOF && len(tee.all) > start {
				rb.keep(tee.all[start:])
			}
			return
		}
		rd.KeepHead()
		body.Reset(rd, req.Framing, req.ContentLength, h1.DefaultLimits)
		if err := body.Skip(); err != nil {
			rb.keep(tee.all[start:])
			return
		}
		rb.keep(tee.all[start:consumed()])
		rd.Release()
		if _, err := io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"); err != nil {
			return
		}
	}
}

// teeReader keeps every byte it reads.
type teeReader struct {
	r   io.Reader
	all []byte
}

func (t *teeReader) Read(p []byte) (int, error) {
	n, err := t.r.Read(p)
	t.all = append(t.all, p[:n]...)
	return n, err
}

func (rb *recordingBackend) keep(b []byte) {
	rb.mu.Lock()
	rb.seen = append(rb.seen, bytes.Clone(b))
	rb.mu.Unlock()
}

func (rb *recordingBackend) take() [][]byte {
	rb.mu.Lock()
	defer rb.mu.Unlock()
	seen := rb.seen
	rb.seen = nil
	return seen
}

// FuzzGatewayEndToEnd sends arbitrary bytes to a gateway and checks what
// its target receives: every request net/http reads exactly as relia's
// codec framed it (the same method, target and body length, no byte left
// over), so no input can make the target see a request another server
// would frame differently.
func FuzzGatewayEndToEnd(f *testing.F) {
	for _, s := range []string{
		"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
		"POST /p HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhelloGET /x HTTP/1.1\r\nHost: a\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nX-T: 1\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: a\r\nX: y\r\n Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade, X-A\r\nUpgrade: websocket\r\nX-A: 1\r\n\r\nGET /admin HTTP/1.1\r\nHost: a\r\n\r\n",
		"GET http://u:p@a/x HTTP/1.1\r\nHost: a\r\n\r\n",
		"GET / HTTP/1.0\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0x5\r\nhello\r\n0\r\n\r\n",
	} {
		f.Add([]byte(s))
	}
	rb := newRecordingBackend(f)
	g, _ := startGateway(f, fmt.Sprintf(`
  server: {readHeaderTimeout: 1s}
  upstreams: [{name: b, targets: [{address: %s}], breaker: {disabled: true}}]
  routes: [{name: r, upstream: b, upgrades: [websocket]}]
`, rb.ln.Addr().String()), Options{})
	addr := g.Addr("main")
	f.Fuzz(func(t *testing.T, in []byte) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(5 * time.Second))
		c.Write(in)
		c.(*net.TCPConn).CloseWrite()
		io.Copy(io.Discard, c) // until the gateway closes
		c.Close()
		for _, msg := range rb.take() {
			var req h1.Request
			n, err := h1.ParseRequest(msg, h1.DefaultLimits, &req)
			if err != nil {
				t.Fatalf("the target got a request relia's codec refuses (%v): %q (input %q)", err, msg, in)
			}
			std, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(msg)))
			if err != nil {
				t.Fatalf("the target got a request net/http refuses (%v): %q (input %q)", err, msg, in)
			}
			body, err := io.ReadAll(std.Body)
			if err != nil {
				t.Fatalf("net/http cannot read the body the target got (%v): %q", err, msg)
			}
			if std.Method != string(req.Method) || std.RequestURI != string(req.Target) {
				t.Fatalf("request line: relia %q %q, net/http %q %q", req.Method, req.Target, std.Method, std.RequestURI)
			}
			wantBody := len(msg) - n
			if req.Framing == h1.Chunked {
				wantBody = -1
			}
			if wantBody >= 0 && len(body) != wantBody {
				t.Fatalf("net/http reads a body of %d bytes, relia framed %d: %q", len(body), wantBody, msg)
			}
			if std.ContentLength >= 0 && req.Framing == h1.Chunked || std.ContentLength < 0 && req.Framing != h1.Chunked {
				t.Fatalf("net/http reads length %d, relia framing %v: %q", std.ContentLength, req.Framing, msg)
			}
		}
	})
}
