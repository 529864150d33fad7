package gateway

import (
	"bufio"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"testing/iotest"
)

// TestTransportRefusesResponsesFramedTwoWays has a target answer with
// heads that two readers could frame differently, and checks that the
// client gets 502 upstream_invalid_response instead of one reading, and
// that the connection is not used again: the target's next response could
// start anywhere in it.
func TestTransportRefusesResponsesFramedTwoWays(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ name, reply string }{
		{"content-length twice", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 4\r\n\r\nokok"},
		{"content-length twice, same value", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\ncontent-length: 2\r\n\r\nok"},
		{"content-length and transfer-encoding", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n"},
		{"transfer-encoding twice", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n"},
		{"space before a colon", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding : chunked\r\n\r\nok"},
		{"status of four digits", "HTTP/1.1 2000 OK\r\nContent-Length: 2\r\n\r\nok"},
		{"after a blank line", "\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nok"},
		{"in an interim response", "HTTP/1.1 103 Early Hints\r\nLink : </a.css>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			rb := newRawBackend(t, func(int) (string, bool) { return tc.reply, false })
			_, url := startGateway(t, fmt.Sprintf(`  upstreams: [{name: b, targets: [{address: %q}], breaker: {disabled: true}}]
  routes: [{name: r, upstream: b}]
`, rb.ln.Addr().String()), Options{})
			for i := range 2 {
				code, body, _ := get(t, "GET", url+"/", nil)
				if code != 502 || !strings.Contains(body, `"reason":"`+ReasonUpstreamInvalid+`"`) {
					t.Fatalf("request %d: %d %q, want 502 %s", i, code, body, ReasonUpstreamInvalid)
				}
			}
			if n := rb.connCount(); n != 2 {
				t.Errorf("the gateway used %d connections for two requests, want 2: it kept one after a malformed response", n)
			}
		})
	}
}

// TestTransportDropsA204sBody checks that a 204 that announces a body
// reaches the client without Content-Length and that the bytes sent as
// its body are not read as the next response.
func TestTransportDropsA204sBody(t *testing.T) {
	t.Parallel()
	rb := newRawBackend(t, func(int) (string, bool) {
		return "HTTP/1.1 204 No Content\r\nContent-Length: 25\r\n\r\nHTTP/1.1 200 OK\r\n\r\nfake", false
	})
	_, url := startGateway(t, fmt.Sprintf(`  upstreams: [{name: b, targets: [{address: %q}], breaker: {disabled: true}}]
  routes: [{name: r, upstream: b}]
`, rb.ln.Addr().String()), Options{})
	for i := range 2 {
		resp, err := http.Get(url + "/")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 204 {
			t.Fatalf("request %d: status %d, want 204", i, resp.StatusCode)
		}
		if v, ok := resp.Header["Content-Length"]; ok {
			t.Errorf("request %d: a 204 reached the client with Content-Length %q", i, v)
		}
	}
	if n := rb.connCount(); n != 2 {
		t.Errorf("the gateway used %d connections for two requests, want 2", n)
	}
}

func TestBufferedHead(t *testing.T) {
	t.Parallel()
	const head = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n"
	for _, tc := range []struct {
		name, in, want string
		size           int
	}{
		{"whole", head + "ok", head, 64},
		{"bare line feeds", "HTTP/1.1 200 OK\nContent-Length: 2\n\nok", "HTTP/1.1 200 OK\nContent-Length: 2\n\n", 64},
		{"larger than the buffer", head, "", 16},
		{"cut short", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n", "", 64},
		{"after blank lines", "\r\n\n" + head + "ok", "\r\n\n" + head, 64},
		{"blank lines only", "\r\n\r\n", "", 64},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// One byte a read: the head arrives in as many pieces as it can.
			br := bufio.NewReaderSize(iotest.OneByteReader(strings.NewReader(tc.in)), tc.size)
			if got := string(bufferedHead(br)); got != tc.want {
				t.Errorf("bufferedHead = %q, want %q", got, tc.want)
			}
		})
	}
}

// FuzzResponseHead checks that a head is found the same way whole or a
// byte at a time, that it ends at its blank line, and that checking one
// never fails otherwise than with errInvalidResponse.
func FuzzResponseHead(f *testing.F) {
	f.Add("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
	f.Add("HTTP/1.1 200 OK\nTransfer-Encoding : chunked\n\n")
	f.Add("HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n")
	f.Add("\r\n\n\r\n")
	f.Fuzz(func(t *testing.T, in string) {
		end := headEnd([]byte(in))
		if end < 0 || end > len(in) {
			t.Fatalf("headEnd = %d for %d bytes", end, len(in))
		}
		if end > 0 && !strings.HasSuffix(in[:end], "\n\n") && !strings.HasSuffix(in[:end], "\n\r\n") {
			t.Fatalf("head %q does not end with a blank line", in[:end])
		}
		br := bufio.NewReaderSize(iotest.OneByteReader(strings.NewReader(in)), 4096)
		got := bufferedHead(br)
		if len(in) <= 4096 && string(got) != in[:end] {
			t.Fatalf("bufferedHead = %q, headEnd says %q", got, in[:end])
		}
		if err := checkResponseHead([]byte(in[:end])); err != nil && err != errInvalidResponse {
			t.Fatal(err)
		}
	})
}
