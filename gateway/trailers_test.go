package gateway

import (
	"fmt"
	"net/http"
	"testing"
)

// TestRequestTrailersDoNotBecomeHeaders sends chunked requests whose
// trailer sections carry fields, and checks that none of them chooses a
// route or reaches the target as a header, while the head's fields of the
// same names do (RFC 9110, 6.5.1).
func TestRequestTrailersDoNotBecomeHeaders(t *testing.T) {
	t.Parallel()
	plain, special := newBackend(t, "plain"), newBackend(t, "special")
	_, base := startGateway(t, fmt.Sprintf(`
  upstreams: [{name: plain, targets: [{address: %s}]}, {name: special, targets: [{address: %s}]}]
  routes:
    - {name: special, upstream: special, match: {headers: {X-Route: special}}}
    - {name: rest, upstream: plain}
`, plain.addr(), special.addr()), Options{})
	for _, tc := range []struct {
		name, raw, body string
	}{
		{"after a body", "POST /x HTTP/1.1\r\nHost: a\r\nX-Kept: head\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nX-Route: special\r\nX-Kept: trailer\r\nX-Sneaked: 1\r\n\r\n", "hello"},
		{"after an empty body", "POST /x HTTP/1.1\r\nHost: a\r\nX-Kept: head\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX-Route: special\r\nX-Kept: trailer\r\nX-Sneaked: 1\r\n\r\n", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, _ := rawExchange(t, base, tc.raw)
			if got := resp.Header.Get("X-Backend"); resp.StatusCode != 200 || got != "plain" {
				t.Fatalf("status %d from %q: a trailer field chose the route", resp.StatusCode, got)
			}
			got := plain.lastRequest()
			if v := got.Header.Values("X-Kept"); len(v) != 1 || v[0] != "head" {
				t.Errorf("X-Kept reached the target as %q, want only the head's value", v)
			}
			for _, name := range []string{"X-Sneaked", "X-Route"} {
				if v, ok := got.Header[http.CanonicalHeaderKey(name)]; ok {
					t.Errorf("the trailer field %s reached the target as a header: %q", name, v)
				}
			}
			if got.ContentLength != int64(len(tc.body)) {
				t.Errorf("the target got Content-Length %d, want %d", got.ContentLength, len(tc.body))
			}
		})
	}
}
