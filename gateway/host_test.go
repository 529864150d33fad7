package gateway

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
)

// TestRouteAndTargetAgreeOnTheHost sends requests whose host is named
// twice, or not at all, and checks that the route chosen by host and the
// Host the target receives are the same one, or that the request is
// refused (RFC 9112, section 3.2).
func TestRouteAndTargetAgreeOnTheHost(t *testing.T) {
	t.Parallel()
	good, evil := newBackend(t, "good"), newBackend(t, "evil")
	_, base := startGateway(t, fmt.Sprintf(`
  upstreams: [{name: good, targets: [{address: %s}]}, {name: evil, targets: [{address: %s}]}]
  routes:
    - {name: good, upstream: good, match: {hosts: [good.example]}}
    - {name: evil, upstream: evil, match: {hosts: [evil.example]}}
    - {name: rest, upstream: good}
`, good.addr(), evil.addr()), Options{})
	backends := map[string]*backend{"good": good, "evil": evil}
	for _, tc := range []struct {
		name, raw         string
		status            int
		backend, wantHost string
	}{
		{"absolute form wins over Host", "GET http://evil.example/x HTTP/1.1\r\nHost: good.example\r\n\r\n", 200, "evil", "evil.example"},
		{"absolute form wins, other way", "GET http://good.example/x HTTP/1.1\r\nHost: evil.example\r\n\r\n", 200, "good", "good.example"},
		{"absolute form without Host", "GET http://evil.example/x HTTP/1.1\r\n\r\n", 200, "evil", "evil.example"},
		{"two Host headers", "GET /x HTTP/1.1\r\nHost: good.example\r\nHost: evil.example\r\n\r\n", 400, "", ""},
		{"two Host headers, other case", "GET /x HTTP/1.1\r\nHost: good.example\r\nhOST: evil.example\r\n\r\n", 400, "", ""},
		{"HTTP/1.1 without Host", "GET /x HTTP/1.1\r\n\r\n", 400, "", ""},
		{"HTTP/1.0 without Host", "GET /x HTTP/1.0\r\n\r\n", 200, "good", good.addr()},
		{"origin form", "GET /x HTTP/1.1\r\nHost: evil.example\r\n\r\n", 200, "evil", "evil.example"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			before := good.count() + evil.count()
			io.WriteString(c, tc.raw)
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d (%s), want %d", resp.StatusCode, body, tc.status)
			}
			if tc.status == 400 {
				if !strings.Contains(string(body), `"reason":"`+ReasonInvalidHost+`"`) {
					t.Errorf("body %s, want reason %s", body, ReasonInvalidHost)
				}
				if after := good.count() + evil.count(); after != before {
					t.Error("a refused request reached a target")
				}
				return
			}
			if got := resp.Header.Get("X-Backend"); got != tc.backend {
				t.Fatalf("served by %q, want %q", got, tc.backend)
			}
			if tc.wantHost != "" {
				if got := backends[tc.backend].lastRequest().Host; got != tc.wantHost {
					t.Errorf("the target got Host %q; the route was chosen for %q", got, tc.wantHost)
				}
			}
		})
	}
}

// TestRouteSetsTheHostTheTargetGets checks that a route's
// requestHeaders.set can name the target's virtual host.
func TestRouteSetsTheHostTheTargetGets(t *testing.T) {
	t.Parallel()
	b := newBackend(t, "b")
	_, base := startGateway(t, fmt.Sprintf(`
  upstreams: [{name: b, targets: [{address: %s}]}]
  routes:
    - {name: internal, upstream: b, match: {path: {prefix: /internal}}, requestHeaders: {set: {Host: internal.svc}}}
    - {name: rest, upstream: b}
`, b.addr()), Options{})
	if status, _, _ := get(t, "GET", base+"/internal/x", map[string]string{"Host": "api.example"}); status != 200 {
		t.Fatalf("status %d", status)
	}
	if got := b.lastRequest().Host; got != "internal.svc" {
		t.Errorf("the target got Host %q, want the route's internal.svc", got)
	}
	if status, _, _ := get(t, "GET", base+"/x", map[string]string{"Host": "api.example"}); status != 200 {
		t.Fatalf("status %d", status)
	}
	if got := b.lastRequest().Host; got != "api.example" {
		t.Errorf("the target got Host %q, want the client's api.example", got)
	}
}

func TestHostFields(t *testing.T) {
	t.Parallel()
	for raw, want := range map[string]int{
		"Host: a\r\n":                          1,
		"Host: a\r\nHOST: b\r\n":               2,
		"X-Host: a\r\nHostname: b\r\nhost:c\n": 1,
		"":                                     0,
	} {
		if got := hostFields([]byte(raw)); got != want {
			t.Errorf("hostFields(%q) = %d, want %d", raw, got, want)
		}
	}
}
