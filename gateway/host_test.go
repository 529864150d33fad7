package gateway

import (
	"fmt"
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
		{"target without a slash", "GET x HTTP/1.1\r\nHost: good.example\r\n\r\n", 400, "", ""},
		{"asterisk target", "OPTIONS * HTTP/1.1\r\nHost: good.example\r\n\r\n", 400, "", ""},
		{"asterisk target on GET", "GET * HTTP/1.1\r\nHost: good.example\r\n\r\n", 400, "", ""},
		{"connect", "CONNECT evil.example:443 HTTP/1.1\r\nHost: evil.example:443\r\n\r\n", 405, "", ""},
		{"transfer-encoding twice", "POST /x HTTP/1.1\r\nHost: good.example\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n\r\n0\r\n\r\n", 400, "", ""},
		{"transfer-encoding and content-length", "POST /x HTTP/1.1\r\nHost: good.example\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400, "", ""},
		{"transfer-encoding identity", "POST /x HTTP/1.1\r\nHost: good.example\r\nTransfer-Encoding: identity\r\nContent-Length: 1\r\n\r\nx", 400, "", ""},
		{"header: space before the colon", "POST /x HTTP/1.1\r\nHost: good.example\r\nTransfer-Encoding : chunked\r\nContent-Length: 1\r\n\r\nx", 400, "", ""},
		{"target with a space", "GET /a b HTTP/1.1\r\nHost: good.example\r\n\r\n", 400, "", ""},
		{"absolute target with a space", "GET http://good.example/a b HTTP/1.1\r\n\r\n", 400, "", ""},
		{"version: HTTP/2.0 as text", "GET /x HTTP/2.0\r\nHost: good.example\r\n\r\n", 505, "", ""},
		{"version: HTTP/0.9", "GET /x HTTP/0.9\r\nHost: good.example\r\n\r\n", 505, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := good.count() + evil.count()
			resp, body := rawExchange(t, base, tc.raw)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d (%s), want %d", resp.StatusCode, body, tc.status)
			}
			if tc.status >= 400 {
				reason := map[int]string{400: ReasonInvalidHost, 405: ReasonTunnelRefused, 505: ReasonUnsupportedVersion}[tc.status]
				switch {
				case strings.HasPrefix(tc.name, "transfer-encoding"):
					reason = ReasonInvalidFraming
				case strings.HasPrefix(tc.name, "header"):
					reason = ReasonInvalidHeader
				case strings.Contains(tc.name, "target"):
					reason = ReasonInvalidTarget
				}
				if closes := reason == ReasonInvalidFraming || reason == ReasonInvalidHeader || tc.status == 505; closes && !resp.Close {
					t.Error("the connection is kept open; where the next request starts is in doubt")
				}
				if !strings.Contains(string(body), `"reason":"`+reason+`"`) {
					t.Errorf("body %s, want reason %s", body, reason)
				}
				if tc.status == 405 && !strings.Contains(resp.Header.Get("Allow"), "GET") {
					t.Errorf("405 with Allow %q", resp.Header.Get("Allow"))
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

// TestConnectionListedFieldsStayOnTheirHop checks that fields a Connection
// header names are removed in both directions, and that a client cannot
// use one to remove the fields the gateway adds.
func TestConnectionListedFieldsStayOnTheirHop(t *testing.T) {
	t.Parallel()
	b := newBackend(t, "b")
	b.handle(func(w http.ResponseWriter, r *http.Request) bool {
		w.Header().Set("Connection", "X-Internal, keep-alive")
		w.Header().Set("X-Internal", "for the gateway only")
		w.Header().Set("X-Public", "kept")
		return false
	})
	_, base := startGateway(t, fmt.Sprintf(`
  upstreams: [{name: b, targets: [{address: %s}]}]
  routes: [{name: r, upstream: b}]
`, b.addr()), Options{})
	resp, _ := rawExchange(t, base, "GET /x HTTP/1.1\r\nHost: a\r\nConnection: X-Secret, X-Forwarded-For, x-request-id, Traceparent\r\n"+
		"X-Secret: 1\r\nX-Forwarded-For: 203.0.113.9\r\nX-Other: 2\r\n\r\n")
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	got := b.lastRequest().Header
	if v := got.Get("X-Secret"); v != "" {
		t.Errorf("the target got X-Secret %q, which the client's Connection header named", v)
	}
	if v := got.Get("Connection"); v != "" {
		t.Errorf("the target got the client's Connection %q", v)
	}
	if got.Get("X-Other") != "2" {
		t.Error("a field the Connection header did not name was removed")
	}
	if v := got.Get("X-Forwarded-For"); v != "127.0.0.1" {
		t.Errorf("the target got X-Forwarded-For %q, want the gateway's own 127.0.0.1", v)
	}
	if got.Get("X-Request-Id") == "" || got.Get("Traceparent") == "" {
		t.Errorf("the gateway's X-Request-Id %q or traceparent %q was removed", got.Get("X-Request-Id"), got.Get("Traceparent"))
	}
	if v := resp.Header.Get("X-Internal"); v != "" {
		t.Errorf("the client got X-Internal %q, which the target's Connection header named", v)
	}
	if v := resp.Header.Values("Connection"); len(v) != 0 {
		t.Errorf("the client got the target's Connection %q", v)
	}
	if resp.Header.Get("X-Public") != "kept" {
		t.Error("a response field the Connection header did not name was removed")
	}
}
