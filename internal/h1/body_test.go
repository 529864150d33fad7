package h1

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httputil"
	"strings"
	"testing"
	"testing/iotest"
)

func TestParseChunkLine(t *testing.T) {
	for _, tc := range []struct {
		in   string
		size int64
		bad  bool
	}{
		{in: "5\r\n", size: 5},
		{in: "1aF\r\n", size: 0x1af},
		{in: "0\r\n", size: 0},
		{in: "5;name\r\n", size: 5},
		{in: "5 ; name = value\r\n", size: 5},
		{in: "5;a=\"q \\\" d\";b=t\r\n", size: 5},
		{in: "0x5\r\n", bad: true},
		{in: "+5\r\n", bad: true},
		{in: "-5\r\n", bad: true},
		{in: "\r\n", bad: true},
		{in: " 5\r\n", bad: true},
		{in: "5 \r\n", bad: true},
		{in: "5\n", bad: true},
		{in: "5;\r\n", bad: true},
		{in: "5;a=\r\n", bad: true},
		{in: "5;a=\"open\r\n", bad: true},
		{in: "5;a b\r\n", bad: true},
		{in: "1000000000000000\r\n", bad: true}, // 16 digits
		{in: "fffffffffffffff\r\n", size: 0xfffffffffffffff},
	} {
		size, n, err := ParseChunkLine([]byte(tc.in + "rest"))
		if tc.bad {
			var he *Error
			if !errors.As(err, &he) || he.Kind != KindFraming {
				t.Errorf("%q: size %d err %v, want a framing error", tc.in, size, err)
			}
			continue
		}
		if err != nil || size != tc.size || n != len(tc.in) {
			t.Errorf("%q: size %d n %d err %v, want %d %d", tc.in, size, n, err, tc.size, len(tc.in))
		}
	}
	if _, _, err := ParseChunkLine([]byte("5;ext")); err != ErrIncomplete {
		t.Errorf("a partial line: %v, want ErrIncomplete", err)
	}
	var he *Error
	if _, _, err := ParseChunkLine([]byte("5;" + strings.Repeat("a", MaxChunkLine))); !errors.As(err, &he) || he.Status != 431 {
		t.Errorf("an endless extension: %v, want 431", err)
	}
}

// readBody reads a body framed as given from in, one byte per read from
// the source, and returns it with what stays in the reader.
func readBody(t *testing.T, in string, framing Framing, length int64, size int) (body, rest string, trailers []Header, err error) {
	t.Helper()
	r := &Reader{Src: iotest.OneByteReader(strings.NewReader(in)), Buf: make([]byte, size), Max: 64 << 10}
	var b Body
	b.Reset(r, framing, length, DefaultLimits)
	got, err := io.ReadAll(&b)
	for len(r.Buffered()) > 0 || r.Fill() == nil {
		rest += string(r.Buffered())
		r.Consume(len(r.Buffered()))
	}
	return string(got), rest, b.Trailers, err
}

func TestBody(t *testing.T) {
	for _, tc := range []struct {
		name, in   string
		framing    Framing
		length     int64
		body, rest string
		trailers   int
		bad        bool
	}{
		{name: "length", in: "hello, next", framing: Length, length: 5, body: "hello", rest: ", next"},
		{name: "chunked", in: "5\r\nhello\r\n1;x=y\r\n!\r\n0\r\n\r\nnext", framing: Chunked, body: "hello!", rest: "next"},
		{name: "trailers", in: "3\r\nabc\r\n0\r\nX-A: 1\r\nX-B: 2\r\n\r\nnext", framing: Chunked, body: "abc", rest: "next", trailers: 2},
		{name: "until close", in: "all of it", framing: UntilClose, body: "all of it"},
		{name: "no body", in: "next", framing: NoBody, rest: "next"},
		{name: "0x size", in: "0x5\r\nhello\r\n0\r\n\r\n", framing: Chunked, bad: true},
		{name: "data longer than its size", in: "3\r\nabcd\r\n0\r\n\r\n", framing: Chunked, bad: true},
		{name: "folded trailer", in: "0\r\nX-A: 1\r\n folded\r\n\r\n", framing: Chunked, bad: true},
		{name: "short length", in: "abc", framing: Length, length: 5, bad: true},
		{name: "cut chunk", in: "5\r\nab", framing: Chunked, bad: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, size := range []int{16, 4096} {
				body, rest, trailers, err := readBody(t, tc.in, tc.framing, tc.length, size)
				if tc.bad {
					if err == nil {
						t.Fatalf("buffer %d: read %q, want an error", size, body)
					}
					continue
				}
				if err != nil || body != tc.body || rest != tc.rest || len(trailers) != tc.trailers {
					t.Fatalf("buffer %d: body %q rest %q trailers %d err %v, want %q %q %d", size, body, rest, len(trailers), err, tc.body, tc.rest, tc.trailers)
				}
			}
		})
	}
}

// pieceSource returns one of its pieces a read and counts the reads.
type pieceSource struct {
	pieces []string
	reads  int
}

func (s *pieceSource) Read(p []byte) (int, error) {
	s.reads++
	if len(s.pieces) == 0 {
		return 0, io.EOF
	}
	n := copy(p, s.pieces[0])
	s.pieces[0] = s.pieces[0][n:]
	if s.pieces[0] == "" {
		s.pieces = s.pieces[1:]
	}
	return n, nil
}

// TestBodyWaits: Waits says true only when the next Next reads from the
// source, and says it with a chunk's CRLF (or part of it) buffered, as
// a stream's chunks arrive with theirs.
func TestBodyWaits(t *testing.T) {
	for _, tc := range []struct {
		name    string
		pieces  []string
		framing Framing
		length  int64
		// waits are Waits before each Next, to the one that returns the
		// body's end or an error.
		waits []bool
	}{
		{name: "chunks with their CRLF", pieces: []string{"5\r\nhello\r\n", "1\r\n!\r\n", "0\r\n\r\n"}, framing: Chunked,
			waits: []bool{true, true, true}},
		{name: "CRLF split", pieces: []string{"5\r\nhello\r", "\n1\r\n!", "\r\n0\r\n\r\n"}, framing: Chunked,
			waits: []bool{true, true, true}},
		{name: "two chunks in one read", pieces: []string{"1\r\na\r\n1\r\nb\r\n", "0\r\n\r\n"}, framing: Chunked,
			waits: []bool{true, false, true}},
		{name: "bad CRLF", pieces: []string{"1\r\naXY"}, framing: Chunked, waits: []bool{true, false}},
		{name: "length", pieces: []string{"ab", "c"}, framing: Length, length: 3, waits: []bool{true, true, false}},
		{name: "until close", pieces: []string{"ab"}, framing: UntilClose, waits: []bool{true, true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := &pieceSource{pieces: append([]string(nil), tc.pieces...)}
			r := &Reader{Src: src, Buf: make([]byte, 64)}
			var b Body
			b.Reset(r, tc.framing, tc.length, Limits{})
			var got []bool
			for {
				w := b.Waits()
				got = append(got, w)
				before := src.reads
				_, err := b.Next()
				if w && src.reads == before {
					t.Errorf("Next %d: Waits said true and Next did not read", len(got))
				}
				if err != nil {
					break
				}
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.waits) {
				t.Errorf("Waits before each Next: %v, want %v", got, tc.waits)
			}
			if !b.Done() && tc.name != "bad CRLF" || b.Waits() {
				t.Errorf("at the end: done %v, waits %v", b.Done(), b.Waits())
			}
		})
	}
}

// TestBodyMemoryFollowsBytesReceived announces a large body and sends a
// little of it: the reader's buffer stays its first size.
func TestBodyMemoryFollowsBytesReceived(t *testing.T) {
	r := &Reader{Src: strings.NewReader("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10000000\r\n\r\nabc"), Buf: make([]byte, 512), Max: 16 << 10}
	var req Request
	if err := r.ReadRequest(DefaultLimits, &req); err != nil {
		t.Fatal(err)
	}
	var b Body
	b.Reset(r, req.Framing, req.ContentLength, DefaultLimits)
	got, err := io.ReadAll(&b)
	if string(got) != "abc" || err != io.ErrUnexpectedEOF {
		t.Errorf("read %q %v, want abc and an unexpected end", got, err)
	}
	if len(r.Buf) != 512 {
		t.Errorf("the buffer grew to %d bytes for 3 bytes of body", len(r.Buf))
	}
}

func TestReaderKeepsTheHead(t *testing.T) {
	in := "POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: 40\r\n\r\n" + strings.Repeat("b", 40)
	r := &Reader{Src: iotest.OneByteReader(strings.NewReader(in)), Buf: make([]byte, 64), Max: 128}
	var req Request
	if err := r.ReadRequest(DefaultLimits, &req); err != nil {
		t.Fatal(err)
	}
	r.KeepHead()
	var b Body
	b.Reset(r, req.Framing, req.ContentLength, DefaultLimits)
	if got, err := io.ReadAll(&b); err != nil || len(got) != 40 {
		t.Fatalf("body %d bytes, %v", len(got), err)
	}
	if host, _ := req.Get("Host"); string(req.Target) != "/p" || string(host) != "x" {
		t.Errorf("the head moved while its body was read: %q %q", req.Target, host)
	}
}

// FuzzChunked checks the chunked decoder against net/http's: whatever
// relia decodes, net/http decodes to the same bytes. (relia refuses some
// bodies net/http reads, on purpose.)
func FuzzChunked(f *testing.F) {
	for _, s := range []string{"5\r\nhello\r\n0\r\n\r\n", "1;a=b\r\nx\r\n0\r\nT: v\r\n\r\n", "0x5\r\nhello\r\n0\r\n\r\n", "a\r\n0123456789\r\n0\r\n\r\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		r := &Reader{Src: bytes.NewReader(in), Buf: make([]byte, 64), Max: 64 << 10}
		var b Body
		b.Reset(r, Chunked, -1, DefaultLimits)
		got, err := io.ReadAll(&b)
		if err != nil {
			return
		}
		std, serr := io.ReadAll(httputil.NewChunkedReader(bytes.NewReader(in)))
		if serr != nil {
			t.Fatalf("relia decoded %q, net/http refuses (%v): %q", got, serr, in)
		}
		if !bytes.Equal(got, std) {
			t.Fatalf("relia decoded %q, net/http %q: %q", got, std, in)
		}
	})
}

// FuzzParseResponse checks the response parser against net/http's:
// whatever relia accepts, net/http reads with the same status and body
// framing.
func FuzzParseResponse(f *testing.F) {
	for _, s := range []string{
		"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok\n",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
		"HTTP/1.1 204 No Content\r\n\r\n",
		"HTTP/1.0 200 OK\r\n\r\nbody",
		"HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n",
	} {
		f.Add([]byte(s), false)
	}
	f.Fuzz(func(t *testing.T, in []byte, head bool) {
		var r Response
		n, err := ParseResponse(in, DefaultLimits, head, &r)
		if err != nil {
			return
		}
		if n > len(in) || r.Status < 100 || r.Status > 599 {
			t.Fatalf("n %d of %d, status %d", n, len(in), r.Status)
		}
		req := &http.Request{Method: "GET"}
		if head {
			req.Method = "HEAD"
		}
		std, serr := http.ReadResponse(bufio.NewReader(bytes.NewReader(in[:n])), req)
		if serr != nil {
			t.Fatalf("relia accepted what net/http refuses (%v): %q", serr, in[:n])
		}
		if std.StatusCode != r.Status {
			t.Fatalf("status: relia %d, net/http %d", r.Status, std.StatusCode)
		}
		want := int64(-1)
		switch r.Framing {
		case NoBody:
			want = 0
		case Length:
			want = r.ContentLength
		}
		got := std.ContentLength
		if r.Framing == NoBody && head {
			got = 0 // net/http reports the length a HEAD's answer announces
		}
		if r.Framing == NoBody && (r.Status == 304 || r.Status == 204 || r.Status < 200) {
			got = 0
		}
		if got != want {
			t.Fatalf("body length: relia %d (framing %v), net/http %d: %q", want, r.Framing, std.ContentLength, in[:n])
		}
		if r.Framing == Chunked && (len(std.TransferEncoding) != 1 || std.TransferEncoding[0] != "chunked") {
			t.Fatalf("relia reads chunked, net/http %q: %q", std.TransferEncoding, in[:n])
		}
	})
}

// TestBodySkipBuffered reads a body's end from what is buffered, never
// from the source: the last chunk that came with the data ends the body;
// one not here yet leaves it open, with nothing read, and ReadMore then
// brings it.
func TestBodySkipBuffered(t *testing.T) {
	for _, tc := range []struct {
		name   string
		pieces []string
		// done is SkipBuffered's answer after the first piece is read.
		done bool
	}{
		{name: "last chunk with the data", pieces: []string{"5\r\nhello\r\n0\r\n\r\n"}, done: true},
		{name: "last chunk later", pieces: []string{"5\r\nhello\r\n", "0\r\n\r\n"}},
		{name: "last chunk split", pieces: []string{"5\r\nhello\r\n0\r", "\n\r\n"}},
		{name: "a trailer", pieces: []string{"5\r\nhello\r\n0\r\nX-A: 1\r\n\r\n"}, done: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := &pieceSource{pieces: append([]string(nil), tc.pieces...)}
			r := &Reader{Src: src, Buf: make([]byte, 64)}
			var b Body
			b.Reset(r, Chunked, 0, DefaultLimits)
			if p, err := b.Next(); err != nil || string(p) != "hello" {
				t.Fatalf("Next: %q %v", p, err)
			}
			reads := src.reads
			if got := b.SkipBuffered(); got != tc.done || b.Done() != tc.done {
				t.Fatalf("SkipBuffered %v (Done %v), want %v", got, b.Done(), tc.done)
			}
			if src.reads != reads || b.Err() != nil {
				t.Fatalf("SkipBuffered read from the source (%d reads) or failed the body (%v)", src.reads-reads, b.Err())
			}
			if tc.done {
				return
			}
			if err := b.ReadMore(); err != nil {
				t.Fatal(err)
			}
			if !b.SkipBuffered() {
				t.Errorf("after ReadMore the body did not end")
			}
		})
	}
}
