package load

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/relia-dev/relia/outcome"
)

// scriptServer answers every request it reads on 127.0.0.1 with the
// next canned response, and closes the connection after one when
// closeAfter is set. It counts connections and keeps the request heads.
type scriptServer struct {
	ln         net.Listener
	responses  []string
	closeAfter bool
	accepted   atomic.Int32
	mu         sync.Mutex
	next       int
	requests   []string
	closed     chan struct{} // one per connection the server closed
	wg         sync.WaitGroup
}

func newScriptServer(t *testing.T, closeAfter bool, responses ...string) *scriptServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &scriptServer{ln: ln, responses: responses, closeAfter: closeAfter, closed: make(chan struct{}, 64)}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.accepted.Add(1)
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				s.serve(c)
				c.Close()
				s.closed <- struct{}{}
			}()
		}
	}()
	t.Cleanup(func() { ln.Close(); s.wg.Wait() })
	return s
}

func (s *scriptServer) serve(c net.Conn) {
	br := bufio.NewReader(c)
	for {
		req, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		body, _ := io.ReadAll(req.Body)
		var head bytes.Buffer
		_ = req.Header.Write(&head)
		s.mu.Lock()
		s.requests = append(s.requests, req.Method+" "+req.RequestURI+" host="+req.Host+" body="+string(body)+"\n"+head.String())
		resp := s.responses[s.next%len(s.responses)]
		s.next++
		s.mu.Unlock()
		if _, err := io.WriteString(c, resp); err != nil || s.closeAfter {
			return
		}
	}
}

func (s *scriptServer) url() string { return "http://" + s.ln.Addr().String() }

func wireSend(t *testing.T, tr transport, method, url string, keepBody bool) (wireReply, error) {
	t.Helper()
	var rep wireReply
	err := tr.session().do(&wireRequest{method: method, url: []byte(url)}, keepBody, &rep)
	return rep, err
}

func newWire(t *testing.T, o ClientOptions) *wireTransport {
	t.Helper()
	if o.Timeout == 0 {
		o.Timeout = 5 * time.Second
	}
	tr, err := newTransport(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(tr.close)
	return tr.(*wireTransport)
}

func TestWireClientFraming(t *testing.T) {
	for _, tt := range []struct {
		name, method, response string
		status                 int
		body                   string
		reuse                  bool // the connection carries a second request
	}{
		{"content length", "GET", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", 200, "hello", true},
		{"chunked with extension and trailer", "GET", "HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n3;x=y\r\nhel\r\n2\r\nlo\r\n0\r\nX-Trailer: 1\r\n\r\n", 201, "hello", true},
		{"interim response first", "POST", "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", 200, "ok", true},
		{"no body on 204", "GET", "HTTP/1.1 204 No Content\r\n\r\n", 204, "", true},
		{"no body on HEAD", "HEAD", "HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\n", 200, "", true},
		{"connection close", "GET", "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok", 200, "ok", false},
		{"HTTP/1.0 keep-alive", "GET", "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nok", 200, "ok", true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			srv := newScriptServer(t, !tt.reuse, tt.response)
			tr := newWire(t, ClientOptions{})
			for range 2 {
				rep, err := wireSend(t, tr, tt.method, srv.url()+"/x", true)
				if err != nil {
					t.Fatal(err)
				}
				if rep.status != tt.status || string(rep.body) != tt.body {
					t.Fatalf("status %d body %q, want %d %q", rep.status, rep.body, tt.status, tt.body)
				}
				if rep.bytesIn != int64(len(tt.response)) {
					t.Fatalf("bytes in %d, want %d", rep.bytesIn, len(tt.response))
				}
			}
			want := int32(1)
			if !tt.reuse {
				want = 2
			}
			if got := srv.accepted.Load(); got != want {
				t.Fatalf("%d connections, want %d", got, want)
			}
		})
	}
}

func TestWireClientBodyToEndOfStream(t *testing.T) {
	srv := newScriptServer(t, true, "HTTP/1.0 200 OK\r\n\r\nall of it")
	tr := newWire(t, ClientOptions{MaxBodyBytes: 6})
	rep, err := wireSend(t, tr, "GET", srv.url(), true)
	if err != nil {
		t.Fatal(err)
	}
	if string(rep.body) != "all of" { // cut at MaxBodyBytes, the rest read and dropped
		t.Fatalf("body %q", rep.body)
	}
	rep, err = wireSend(t, tr, "GET", srv.url(), false)
	if err != nil || len(rep.body) != 0 || rep.bytesIn != int64(len("HTTP/1.0 200 OK\r\n\r\nall of it")) {
		t.Fatalf("unkept body: %v %q %d", err, rep.body, rep.bytesIn)
	}
}

func TestWireClientReadsLargeBodies(t *testing.T) {
	body := strings.Repeat("0123456789abcdef", 1<<16) // 1 MiB
	response := "HTTP/1.1 200 OK\r\nContent-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + body
	srv := newScriptServer(t, false, response)
	tr := newWire(t, ClientOptions{MaxBodyBytes: 100})
	for _, keep := range []bool{false, true, false} {
		rep, err := wireSend(t, tr, "GET", srv.url(), keep)
		if err != nil {
			t.Fatal(err)
		}
		if rep.bytesIn != int64(len(response)) {
			t.Fatalf("bytes in %d, want %d", rep.bytesIn, len(response))
		}
		if keep && string(rep.body) != body[:100] || !keep && len(rep.body) != 0 {
			t.Fatalf("keep %v: body of %d bytes", keep, len(rep.body))
		}
	}
	if got := srv.accepted.Load(); got != 1 {
		t.Fatalf("%d connections, want 1: the body was not read to its end", got)
	}
}

func TestWireClientRejectsMalformedResponses(t *testing.T) {
	for _, tt := range []struct {
		name, response, want string
		class                outcome.Class
	}{
		{"status line", "HTTP/1.1 2x0 OK\r\n\r\n", "malformed status line", outcome.ClassProtocol},
		{"not http", "SSH-2.0-OpenSSH\r\n\r\n", "malformed status line", outcome.ClassProtocol},
		{"header line", "HTTP/1.1 200 OK\r\nno colon here\r\n\r\n", "malformed header line", outcome.ClassProtocol},
		{"bare line feeds", "HTTP/1.1 200 OK\nContent-Length: 2\n\nok", "malformed header line", outcome.ClassProtocol},
		{"chunk size 0x", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0x2\r\nok\r\n0\r\n\r\n", "bad chunk size", outcome.ClassProtocol},
		{"content length", "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", "bad Content-Length", outcome.ClassProtocol},
		{"two content lengths", "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab", "bad Content-Length", outcome.ClassProtocol},
		{"chunk size", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", "bad chunk size", outcome.ClassProtocol},
		{"short body", "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", "unexpected EOF", outcome.ClassReset},
		{"cut head", "HTTP/1.1 200 OK\r\nContent-Le", "unexpected EOF", outcome.ClassReset},
		{"nothing", "", "closed before a response", outcome.ClassReset},
		{"not http, then closed", "SSH-2.0-OpenSSH_9.6\r\n", "not HTTP/1.x", outcome.ClassProtocol},
		{"huge head", "HTTP/1.1 200 OK\r\nX-Big: " + strings.Repeat("a", maxResponseHead) + "\r\n\r\n", "response head larger than", outcome.ClassProtocol},
	} {
		t.Run(tt.name, func(t *testing.T) {
			srv := newScriptServer(t, true, tt.response)
			tr := newWire(t, ClientOptions{})
			_, err := wireSend(t, tr, "GET", srv.url(), false)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want %q", err, tt.want)
			}
			if got := outcome.Classify(err); got != tt.class {
				t.Fatalf("classified %v, want %v", got, tt.class)
			}
		})
	}
}

// A server that closes keep-alive connections it considers idle (Node's
// 5 s default, say) must not fail the client's next request: an idle
// connection is probed before reuse and replaced when closed.
func TestWireClientReplacesConnectionsTheServerClosed(t *testing.T) {
	srv := newScriptServer(t, true, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok") // no Connection: close
	tr := newWire(t, ClientOptions{})
	tr.staleAfter = 0 // every reuse is probed
	for i := range 3 {
		if _, err := wireSend(t, tr, "GET", srv.url(), false); err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		<-srv.closed // the FIN is on its way back over loopback
	}
	if got := srv.accepted.Load(); got != 3 {
		t.Fatalf("%d connections, want 3", got)
	}
}

func TestWireClientBoundsConnections(t *testing.T) {
	release := make(chan struct{})
	var inFlight, most atomic.Int32
	srv := newLoopbackHTTP(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := inFlight.Add(1)
		for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
		}
		<-release
		inFlight.Add(-1)
	}))
	tr := newWire(t, ClientOptions{MaxConns: 2, Timeout: 10 * time.Second})
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for range 4 {
		wg.Go(func() {
			_, err := wireSend(t, tr, "GET", srv, false)
			errs <- err
		})
	}
	for inFlight.Load() < 2 {
		time.Sleep(time.Millisecond)
	}
	close(release)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if most.Load() != 2 {
		t.Fatalf("at most %d requests in flight, want 2 (MaxConns)", most.Load())
	}

	// With every connection busy past the timeout, the wait ends in an error.
	stuck := make(chan struct{})
	defer close(stuck)
	entered := make(chan struct{}, 1)
	slow := newLoopbackHTTP(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { entered <- struct{}{}; <-stuck }))
	one := newWire(t, ClientOptions{MaxConns: 1, Timeout: 200 * time.Millisecond})
	go wireSend(t, one, "GET", slow, false) //nolint:errcheck // holds the one connection
	<-entered
	_, err := wireSend(t, one, "GET", slow, false)
	if !errors.Is(err, errNoConn) && !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("busy pool gave %v", err)
	}
}

func newLoopbackHTTP(t *testing.T, h http.Handler) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h}
	go srv.Serve(ln) //nolint:errcheck // ends with Close
	t.Cleanup(func() { srv.Close() })
	return "http://" + ln.Addr().String() + "/"
}

func TestWireRequestRendering(t *testing.T) {
	srv := newScriptServer(t, false, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
	tr := newWire(t, ClientOptions{})
	addr := srv.ln.Addr().String()
	var rep wireReply
	err := tr.session().do(&wireRequest{
		method: "POST",
		url:    []byte("http://user:pw@" + addr + "/pay?x=1#frag"),
		headers: []headerPair{
			{[]byte("X-Tenant"), []byte("acme")},
			{[]byte("Content-Length"), []byte("999")}, // relia writes the body's length
		},
		body: []byte("amount=5"),
	}, false, &rep)
	if err != nil {
		t.Fatal(err)
	}
	if err := tr.session().do(&wireRequest{method: "GET", url: []byte("http://" + addr),
		headers: []headerPair{{[]byte("Host"), []byte("shop.example")}, {[]byte("User-Agent"), []byte("probe")}}}, false, &rep); err != nil {
		t.Fatal(err)
	}
	srv.mu.Lock()
	defer srv.mu.Unlock()
	post, get := srv.requests[0], srv.requests[1]
	for _, want := range []string{"POST /pay?x=1 host=" + addr + " body=amount=5", "Authorization: Basic dXNlcjpwdw==", "X-Tenant: acme", "User-Agent: relia", "Content-Length: 8"} {
		if !strings.Contains(post, want) {
			t.Errorf("POST request lacks %q:\n%s", want, post)
		}
	}
	for _, want := range []string{"GET / host=shop.example", "User-Agent: probe"} {
		if !strings.Contains(get, want) {
			t.Errorf("GET request lacks %q:\n%s", want, get)
		}
	}
	if rep.bytesOut == 0 {
		t.Error("bytes out not counted")
	}

	for name, r := range map[string]*wireRequest{
		"header injection": {method: "GET", url: []byte("http://" + addr), headers: []headerPair{{[]byte("X"), []byte("a\r\nEvil: 1")}}},
		"space in path":    {method: "GET", url: []byte("http://" + addr + "/a b")},
		"no host":          {method: "GET", url: []byte("http:///path")},
		"not http":         {method: "GET", url: []byte("ftp://" + addr)},
	} {
		if err := tr.session().do(r, false, &rep); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestSplitURLPorts(t *testing.T) {
	for url, addr := range map[string]string{
		"http://example.test/a":       "example.test:80",
		"https://example.test":        "example.test:443",
		"http://[::1]:8080/x":         "[::1]:8080",
		"http://[::1]/x":              "[::1]:80",
		"http://u:p@127.0.0.1:9?q#f":  "127.0.0.1:9",
		"http://127.0.0.1:9#fragment": "127.0.0.1:9",
	} {
		u, err := splitURL([]byte(url))
		if err != nil || string(u.addr) != addr {
			t.Errorf("%s: addr %q err %v, want %q", url, u.addr, err, addr)
		}
	}
}

// FuzzResponseReader feeds arbitrary bytes to the response parser, in
// reads of varying size: it must return, never panic, and account for no
// more bytes than it was given.
func FuzzResponseReader(f *testing.F) {
	f.Add([]byte("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"), uint8(3), false)
	f.Add([]byte("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"), uint8(1), false)
	f.Add([]byte("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.0 204 No\r\n\r\n"), uint8(7), true)
	f.Add([]byte("HTTP/1.0 200 OK\r\n\r\nto the end"), uint8(255), false)
	f.Add([]byte("HTTP/1.1 303 See Other\r\nSet-Cookie: a=b; Path=/\r\nLocation: /x\r\nContent-Length: 0\r\n\r\n"), uint8(5), false)
	f.Fuzz(func(t *testing.T, data []byte, step uint8, head bool) {
		src := bytes.NewReader(data)
		n := int(step)%16 + 1
		rr := newRespReader(16, 256)
		rr.reset(func(p []byte) (int, error) { return src.Read(p[:min(len(p), n)]) }, time.Now())
		var heads respHeads
		rr.heads = &heads // a journey's cookies and redirect, copied out
		var body []byte
		_, _, err := rr.response(head, &body, 64)
		if rr.n > int64(len(data)) {
			t.Fatalf("read %d bytes of %d", rr.n, len(data))
		}
		kept := len(heads.location)
		for _, c := range heads.setCookie {
			kept += len(c)
		}
		if kept > len(data) {
			t.Fatalf("kept %d bytes of response fields from %d bytes", kept, len(data))
		}
		if len(body) > 64 {
			t.Fatalf("kept %d body bytes, limit 64", len(body))
		}
		_ = err
	})
}
