package gateway

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
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
