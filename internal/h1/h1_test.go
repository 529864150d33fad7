package h1

import (
	"bufio"
	"bytes"
	"errors"
	"net/http"
	"strings"
	"testing"
)

func TestParseRequest(t *testing.T) {
	tests := []struct {
		name, in string
		status   int // 0: accepted
		framing  Framing
		length   int64
		close    bool
		upgrade  bool
	}{
		{name: "get", in: "GET /a?b=c HTTP/1.1\r\nHost: x\r\n\r\n"},
		{name: "post with length", in: "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello", framing: Length, length: 5},
		{name: "zero length", in: "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n"},
		{name: "repeated equal lengths", in: "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n", status: 400},
		{name: "absolute form without Host", in: "GET http://x/a HTTP/1.1\r\n\r\n"},
		{name: "chunked", in: "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: Chunked\r\n\r\n", framing: Chunked, length: -1},
		{name: "close", in: "GET / HTTP/1.1\r\nHost: x\r\nConnection: keep-alive, close\r\n\r\n", close: true},
		{name: "1.0 closes", in: "GET / HTTP/1.0\r\n\r\n", close: true},
		{name: "1.0 keep-alive", in: "GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n"},
		{name: "upgrade", in: "GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n", upgrade: true},
		{name: "tabs and spaces around the value", in: "GET / HTTP/1.1\r\nHost:\t x \t\r\n\r\n"},
		{name: "tab and obs-text inside a value", in: "GET / HTTP/1.1\r\nHost: x\r\nX-A: a\tb\x80\xff\r\n\r\n"},

		{name: "conflicting lengths", in: "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n", status: 400},
		{name: "signed length", in: "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: +5\r\n\r\n", status: 400},
		{name: "length list", in: "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5, 5\r\n\r\n", status: 400},
		{name: "TE and length", in: "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n", status: 400},
		{name: "TE not ending in chunked", in: "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", status: 400},
		{name: "a coding before chunked", in: "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", status: 400},
		{name: "TE twice", in: "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", status: 400},
		{name: "TE identity", in: "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: identity\r\n\r\n", status: 400},
		{name: "obs-fold smuggling TE", in: "POST / HTTP/1.1\r\nHost: x\r\nX-Foo: bar\r\n Transfer-Encoding: chunked\r\n\r\n", status: 400},
		{name: "space inside a name", in: "POST / HTTP/1.1\r\nHost: x\r\nTransfer Encoding: chunked\r\n\r\n", status: 400},
		{name: "line without a colon", in: "GET / HTTP/1.1\r\nHost: x\r\nX-No-Colon\r\n\r\n", status: 400},
		{name: "Host twice", in: "GET / HTTP/1.1\r\nHost: x\r\nhost: y\r\n\r\n", status: 400},
		{name: "TE in 1.0", in: "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", status: 400},
		{name: "space before colon", in: "GET / HTTP/1.1\r\nHost : x\r\n\r\n", status: 400},
		{name: "line folding", in: "GET / HTTP/1.1\r\nHost: x\r\nX-A: a\r\n b\r\n\r\n", status: 400},
		{name: "bare LF", in: "GET / HTTP/1.1\nHost: x\n\n", status: 400},
		{name: "bare CR in a value", in: "GET / HTTP/1.1\r\nHost: x\rEvil: 1\r\n\r\n", status: 400},
		{name: "NUL in a value", in: "GET / HTTP/1.1\r\nHost: x\x00\r\n\r\n", status: 400},
		{name: "DEL in a value", in: "GET / HTTP/1.1\r\nHost: x\r\nX-A: a\x7fb\r\n\r\n", status: 400},
		{name: "escape in a value", in: "GET / HTTP/1.1\r\nHost: x\r\nX-A: a\x1bb\r\n\r\n", status: 400},
		{name: "no Host in 1.1", in: "GET / HTTP/1.1\r\n\r\n", status: 400},
		{name: "bad method", in: "G(T / HTTP/1.1\r\nHost: x\r\n\r\n", status: 400},
		{name: "space in target", in: "GET /a b HTTP/1.1\r\nHost: x\r\n\r\n", status: 400},
		{name: "HTTP/2 line", in: "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", status: 505},
		{name: "empty field name", in: "GET / HTTP/1.1\r\nHost: x\r\n: v\r\n\r\n", status: 400},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var r Request
			n, err := ParseRequest([]byte(tc.in), DefaultLimits, &r)
			if tc.status != 0 {
				var he *Error
				if !errors.As(err, &he) || he.Status != tc.status {
					t.Fatalf("got n=%d err=%v, want a %d", n, err, tc.status)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if want := strings.Index(tc.in, "\r\n\r\n") + 4; n != want {
				t.Errorf("head length %d, want %d", n, want)
			}
			if r.Framing != tc.framing || r.ContentLength != tc.length || r.Close != tc.close || r.Upgrade != tc.upgrade {
				t.Errorf("framing %v length %d close %v upgrade %v, want %v %d %v %v", r.Framing, r.ContentLength, r.Close, r.Upgrade, tc.framing, tc.length, tc.close, tc.upgrade)
			}
		})
	}
}

func TestParseRequestNeedsTheWholeHead(t *testing.T) {
	in := []byte("GET /a HTTP/1.1\r\nHost: x\r\nX-Long: " + strings.Repeat("v", 100) + "\r\n\r\n")
	var r Request
	for i := range len(in) - 1 {
		if _, err := ParseRequest(in[:i], DefaultLimits, &r); err != ErrIncomplete {
			t.Fatalf("prefix of %d bytes: %v, want ErrIncomplete", i, err)
		}
	}
	if _, err := ParseRequest(in, DefaultLimits, &r); err != nil {
		t.Fatal(err)
	}
	if v, _ := r.Get("x-long"); len(v) != 100 || string(r.Target) != "/a" || string(r.Method) != "GET" {
		t.Errorf("parsed %q %q, X-Long of %d bytes", r.Method, r.Target, len(v))
	}
}

func TestLimits(t *testing.T) {
	lim := Limits{HeadBytes: 64, Headers: 2}
	var r Request
	big := "GET / HTTP/1.1\r\nHost: x\r\nX: " + strings.Repeat("v", 64) + "\r\n\r\n"
	for _, in := range []string{big, big[:64]} {
		var he *Error
		if _, err := ParseRequest([]byte(in), lim, &r); !errors.As(err, &he) || he.Status != 431 {
			t.Errorf("%d bytes over a 64-byte limit: %v, want 431", len(in), err)
		}
	}
	var he *Error
	if _, err := ParseRequest([]byte("GET / HTTP/1.1\r\nHost: x\r\nA: 1\r\nB: 2\r\n\r\n"), lim, &r); !errors.As(err, &he) || he.Status != 431 {
		t.Errorf("three fields over a limit of two: %v, want 431", err)
	}
}

func TestParseResponse(t *testing.T) {
	tests := []struct {
		name, in string
		head     bool
		bad      bool
		status   int
		framing  Framing
		length   int64
	}{
		{name: "length", in: "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok\n", status: 200, framing: Length, length: 3},
		{name: "zero length", in: "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", status: 200, framing: Length},
		{name: "chunked", in: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", status: 200, framing: Chunked, length: -1},
		{name: "until close", in: "HTTP/1.1 200 OK\r\n\r\n", status: 200, framing: UntilClose, length: -1},
		{name: "no reason", in: "HTTP/1.1 204\r\n\r\n", status: 204},
		{name: "304 keeps its length field", in: "HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n", status: 304},
		{name: "to HEAD", in: "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n", head: true, status: 200},
		{name: "continue", in: "HTTP/1.1 100 Continue\r\n\r\n", status: 100},
		{name: "bad code", in: "HTTP/1.1 2x0 OK\r\n\r\n", bad: true},
		{name: "short line", in: "HTTP/1.1 200\r\n\r\n", status: 200, framing: UntilClose, length: -1},
		{name: "TE and length", in: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n", bad: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var r Response
			_, err := ParseResponse([]byte(tc.in), DefaultLimits, tc.head, &r)
			if tc.bad {
				if err == nil {
					t.Fatal("accepted")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if r.Status != tc.status || r.Framing != tc.framing || r.ContentLength != tc.length {
				t.Errorf("status %d framing %v length %d, want %d %v %d", r.Status, r.Framing, r.ContentLength, tc.status, tc.framing, tc.length)
			}
		})
	}
}

func TestAppendFieldsDropsHopByHop(t *testing.T) {
	in := "GET / HTTP/1.1\r\nHost: x\r\nConnection: close, X-Secret\r\nKeep-Alive: 5\r\nX-Secret: s\r\nTE: trailers\r\nAccept: */*\r\n\r\n"
	var r Request
	if _, err := ParseRequest([]byte(in), DefaultLimits, &r); err != nil {
		t.Fatal(err)
	}
	got := string(r.AppendFields(nil, r.IsHopByHop))
	if want := "Host: x\r\nAccept: */*\r\n"; got != want {
		t.Errorf("end-to-end fields %q, want %q", got, want)
	}
}

func TestHopByHop(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"Connection", "keep-alive", "PROXY-CONNECTION", "Proxy-Authenticate", "proxy-authorization", "TE", "te", "Trailer", "Transfer-Encoding", "upgrade"} {
		if !HopByHop([]byte(name)) {
			t.Errorf("HopByHop(%q) false, want true", name)
		}
	}
	for _, name := range []string{"", "T", "TF", "Trailers", "Upgrades", "Connectio", "Keep-Alivf", "Content-Length", "Proxy-Connections", "Transfer_Encoding", "Host"} {
		if HopByHop([]byte(name)) {
			t.Errorf("HopByHop(%q) true, want false", name)
		}
	}
}

// TestNamesFields checks NamesFields' promise: when it reports false,
// HopByHop answers as IsHopByHop does for every field of the head.
func TestNamesFields(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		conn  string
		names bool
	}{
		{"", false},
		{"Connection: keep-alive\r\n", false},
		{"Connection: Keep-Alive, TE\r\n", false},
		{"Connection: close\r\n", true},
		{"Connection: keep-alive, X-Secret\r\n", true},
		{"Connection: keep-alive\r\nConnection: x-secret\r\n", true},
	} {
		in := "HTTP/1.1 200 OK\r\n" + tc.conn + "Keep-Alive: 5\r\nX-Secret: s\r\nClose: c\r\nTE: trailers\r\nContent-Length: 0\r\n\r\n"
		var r Response
		if _, err := ParseResponse([]byte(in), DefaultLimits, false, &r); err != nil {
			t.Fatalf("%q: %v", tc.conn, err)
		}
		if got := r.NamesFields(); got != tc.names {
			t.Errorf("%q: NamesFields %v, want %v", tc.conn, got, tc.names)
		}
		if tc.names {
			continue
		}
		for _, f := range r.Headers {
			if HopByHop(f.Name) != r.IsHopByHop(f.Name) {
				t.Errorf("%q: field %s: HopByHop %v, IsHopByHop %v", tc.conn, f.Name, HopByHop(f.Name), r.IsHopByHop(f.Name))
			}
		}
	}
}

// FuzzParseRequest checks the parser against net/http's: whatever relia
// accepts, net/http accepts too and reads the same method, target, fields
// and body length. (The reverse does not hold: relia refuses some heads
// net/http reads, on purpose.)
func FuzzParseRequest(f *testing.F) {
	for _, s := range []string{
		"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
		"POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc",
		"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
		"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nz",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		var r Request
		n, err := ParseRequest(in, DefaultLimits, &r)
		if err != nil {
			return
		}
		if n > len(in) || !bytes.HasSuffix(in[:n], []byte("\r\n\r\n")) {
			t.Fatalf("head length %d of %d bytes", n, len(in))
		}
		std, serr := http.ReadRequest(bufio.NewReader(bytes.NewReader(in[:n])))
		if serr != nil {
			t.Fatalf("relia accepted what net/http refuses (%v): %q", serr, in[:n])
		}
		if std.Method != string(r.Method) || std.RequestURI != string(r.Target) {
			t.Fatalf("request line: relia %q %q, net/http %q %q", r.Method, r.Target, std.Method, std.RequestURI)
		}
		wantLength := int64(0)
		switch r.Framing {
		case Length:
			wantLength = r.ContentLength
		case Chunked:
			wantLength = -1
		}
		if std.ContentLength != wantLength {
			t.Fatalf("body length: relia %d (framing %v), net/http %d: %q", wantLength, r.Framing, std.ContentLength, in[:n])
		}
		if std.Close != r.Close {
			t.Fatalf("close: relia %v, net/http %v: %q", r.Close, std.Close, in[:n])
		}
	})
}
