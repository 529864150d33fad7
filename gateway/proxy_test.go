package gateway

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/relia-dev/relia/clock"
)

func TestProxyRoutesAndHeaders(t *testing.T) {
	t.Parallel()
	users := newBackend(t, "users")
	orders := newBackend(t, "orders")
	logs := new(syncBuffer)
	g, url := startGateway(t, fmt.Sprintf(`
  trustedProxies: ["127.0.0.1"]
  upstreams:
    - name: users
      targets: [{address: %s}]
    - name: orders
      targets: [{address: %s}]
  routes:
    - name: orders-admin
      match: {path: {prefix: /orders}, methods: [DELETE]}
      fallback: {status: 403, body: '{"reason":"no"}'}
    - name: orders
      match: {hosts: ["*.example.com"], path: {prefix: /orders}}
      upstream: orders
      rewrite: {prefix: /v2/orders}
      requestHeaders: {set: {X-Env: test}, remove: [X-Secret]}
      responseHeaders: {set: {X-Route: orders}, remove: [X-Backend]}
    - name: users
      match: {path: {regex: "/users/[0-9]+"}, headers: {X-Tenant: "*"}}
      upstream: users
`, users.addr(), orders.addr()), Options{AccessLog: logs})

	tests := []struct {
		name       string
		method     string
		path       string
		hdr        map[string]string
		wantStatus int
		wantBody   string
	}{
		{"prefix and host", "GET", "/orders/42", map[string]string{"Host": "shop.example.com"}, 200, "orders"},
		{"host mismatch", "GET", "/orders/42", map[string]string{"Host": "example.org"}, 404, `"no_route"`},
		{"method first", "DELETE", "/orders/42", nil, 403, `{"reason":"no"}`},
		{"regex with header", "GET", "/users/7", map[string]string{"X-Tenant": "a"}, 200, "users"},
		{"regex without header", "GET", "/users/7", nil, 404, `"no_route"`},
		{"regex is anchored", "GET", "/users/7/x", map[string]string{"X-Tenant": "a"}, 404, `"no_route"`},
		{"prefix at segment", "GET", "/ordersX", map[string]string{"Host": "a.example.com"}, 404, `"no_route"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			status, body, _ := get(t, tc.method, url+tc.path, tc.hdr)
			if status != tc.wantStatus || !strings.Contains(body, tc.wantBody) {
				t.Errorf("got %d %q, want %d containing %q", status, body, tc.wantStatus, tc.wantBody)
			}
		})
	}

	status, _, h := get(t, "GET", url+"/orders/42?x=1", map[string]string{
		"Host": "shop.example.com", "X-Secret": "s", "X-Forwarded-For": "203.0.113.9", "X-Request-ID": "abc-123",
		"Traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
	})
	if status != 200 {
		t.Fatalf("status %d", status)
	}
	r := orders.lastRequest()
	if r.URL.Path != "/v2/orders/42" || r.URL.RawQuery != "x=1" {
		t.Errorf("upstream got %s?%s, want /v2/orders/42?x=1", r.URL.Path, r.URL.RawQuery)
	}
	if r.Header.Get("X-Env") != "test" || r.Header.Get("X-Secret") != "" {
		t.Errorf("request headers not applied: %v", r.Header)
	}
	if got := r.Header.Get("X-Forwarded-For"); got != "203.0.113.9, 127.0.0.1" {
		t.Errorf("X-Forwarded-For = %q (trusted peer appends)", got)
	}
	if r.Header.Get("X-Request-Id") != "abc-123" || h.Get("X-Request-Id") != "abc-123" {
		t.Errorf("request id not propagated: up %q down %q", r.Header.Get("X-Request-Id"), h.Get("X-Request-Id"))
	}
	tp := r.Header.Get("Traceparent")
	if !strings.HasPrefix(tp, "00-4bf92f3577b34da6a3ce929d0e0e4736-") || strings.Contains(tp, "00f067aa0ba902b7") || !strings.HasSuffix(tp, "-01") {
		t.Errorf("traceparent = %q, want same trace, new parent, sampled", tp)
	}
	if h.Get("X-Route") != "orders" || h.Get("X-Backend") != "" {
		t.Errorf("response headers not applied: %v", h)
	}
	// The access line names as the client the address the trusted peer
	// forwarded for, not the peer the connection came from.
	if err := g.Shutdown(t.Context()); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
	if !strings.Contains(lines[len(lines)-1], `"client_ip":"203.0.113.9"`) {
		t.Errorf("access line %s, want client_ip 203.0.113.9", lines[len(lines)-1])
	}
}

func TestProxyUntrustedForwardedFor(t *testing.T) {
	t.Parallel()
	b := newBackend(t, "b")
	_, url := startGateway(t, fmt.Sprintf(`
  upstreams: [{name: b, targets: [{address: %s}]}]
  routes: [{name: all, upstream: b}]
`, b.addr()), Options{})
	status, _, h := get(t, "GET", url+"/", map[string]string{"X-Forwarded-For": "1.2.3.4", "X-Forwarded-Proto": "https", "Connection": "keep-alive, X-Hop", "Keep-Alive": "timeout=5"})
	if status != 200 {
		t.Fatal(status)
	}
	r := b.lastRequest()
	if got := r.Header.Get("X-Forwarded-For"); got != "127.0.0.1" {
		t.Errorf("X-Forwarded-For = %q, want the peer only", got)
	}
	if got := r.Header.Get("X-Forwarded-Proto"); got != "http" {
		t.Errorf("X-Forwarded-Proto = %q, want http", got)
	}
	if r.Header.Get("Keep-Alive") != "" {
		t.Errorf("hop-by-hop Keep-Alive forwarded")
	}
	if len(h.Get("X-Request-Id")) != 32 {
		t.Errorf("generated request id %q", h.Get("X-Request-Id"))
	}
}

func TestRetryMovesToAnotherTarget(t *testing.T) {
	t.Parallel()
	bad := newBackend(t, "bad")
	bad.handle(func(w http.ResponseWriter, r *http.Request) bool { w.WriteHeader(503); return true })
	good := newBackend(t, "good")
	_, url := startGateway(t, fmt.Sprintf(`
  upstreams:
    - name: p
      targets: [{address: %s}, {address: %s}]
      breaker: {disabled: true}
  routes:
    - name: r
      upstream: p
      retry: {attempts: 2, base: 1ms, cap: 2ms, on: [5xx]}
`, bad.addr(), good.addr()), Options{})
	for i := range 10 {
		status, body, _ := get(t, "GET", url+"/", nil)
		if status != 200 || body != "good" {
			t.Fatalf("request %d: %d %q", i, status, body)
		}
	}
	// POST is not idempotent: no retry, so some requests see the 503.
	saw503 := false
	for range 10 {
		if status, _, _ := get(t, "POST", url+"/", nil); status == 503 {
			saw503 = true
		}
	}
	if !saw503 {
		t.Error("POST was retried")
	}
}

func TestBreakerOpensAndFallbackServes(t *testing.T) {
	t.Parallel()
	hang := newBackend(t, "hang")
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	hang.handle(func(w http.ResponseWriter, r *http.Request) bool {
		select {
		case <-release:
		case <-r.Context().Done():
		}
		return true
	})
	_, url := startGateway(t, fmt.Sprintf(`
  upstreams:
    - name: slow
      targets: [{address: %s}]
      breaker: {consecutiveFailures: 2, openDuration: 1m}
  routes:
    - name: r
      upstream: slow
      timeout: 100ms
      fallback: {status: 200, body: '{"items":[]}'}
`, hang.addr()), Options{})
	for range 2 {
		status, body, _ := get(t, "GET", url+"/", nil)
		if status != 504 || !strings.Contains(body, ReasonUpstreamTimeout) {
			t.Fatalf("hung upstream: %d %s, want 504 upstream_timeout", status, body)
		}
	}
	start := time.Now()
	status, body, h := get(t, "GET", url+"/", nil)
	if status != 200 || body != `{"items":[]}` || h.Get("X-Relia-Fallback") != "r" {
		t.Fatalf("after the breaker opened: %d %q %v, want the fallback", status, body, h)
	}
	if d := time.Since(start); d > 90*time.Millisecond {
		t.Errorf("fallback took %v; an open breaker answers without waiting", d)
	}
}

func TestRejectionsExplainThemselves(t *testing.T) {
	t.Parallel()
	b := newBackend(t, "b")
	_, url := startGateway(t, fmt.Sprintf(`
  upstreams: [{name: b, targets: [{address: %s}]}]
  routes:
    - name: limited
      match: {path: {prefix: /limited}}
      upstream: b
      rateLimit: {rate: 1, burst: 1, key: header, header: X-Client}
    - name: small
      match: {path: {prefix: /small}}
      upstream: b
      maxBodySize: 4B
    - name: faulty
      match: {path: {prefix: /faulty}}
      upstream: b
      faults: [{name: boom, abortStatus: 503, headers: {X-Chaos: "1"}}]
`, b.addr()), Options{})
	hdr := map[string]string{"X-Client": "alice"}
	if status, _, _ := get(t, "GET", url+"/limited", hdr); status != 200 {
		t.Fatalf("first request: %d", status)
	}
	status, body, h := get(t, "GET", url+"/limited", hdr)
	var rej rejectionBody
	if err := json.Unmarshal([]byte(body), &rej); err != nil {
		t.Fatalf("429 body %q: %v", body, err)
	}
	if status != 429 || rej.Reason != "rate_limited" || rej.Policy != "ratelimit" || h.Get("Retry-After") != "1" {
		t.Errorf("rate limited: %d %+v Retry-After %q", status, rej, h.Get("Retry-After"))
	}
	if status, _, _ := get(t, "GET", url+"/limited", map[string]string{"X-Client": "bob"}); status != 200 {
		t.Errorf("another key was limited: %d", status)
	}

	req, _ := http.NewRequest("POST", url+"/small", strings.NewReader("12345"))
	resp, err := testClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 413 {
		t.Errorf("oversized body: %d, want 413", resp.StatusCode)
	}

	if status, _, _ := get(t, "GET", url+"/faulty", nil); status != 200 {
		t.Errorf("fault without its header: %d", status)
	}
	if status, _, _ := get(t, "GET", url+"/faulty", map[string]string{"X-Chaos": "1"}); status != 503 {
		t.Errorf("fault with its header: %d, want 503", status)
	}
}

// TestOpenBreakerAnswersForItsTarget: a pool whose only target is out
// because its breaker is open answers breaker_open with the breaker's own
// Retry-After, and the target gets its probe once the open time is over.
func TestOpenBreakerAnswersForItsTarget(t *testing.T) {
	t.Parallel()
	clk := clock.NewFake(time.Now())
	b := newBackend(t, "b")
	b.handle(func(w http.ResponseWriter, r *http.Request) bool {
		if r.URL.Path == "/fail" {
			w.WriteHeader(500)
			return true
		}
		return false
	})
	_, url := startGateway(t, fmt.Sprintf(`
  upstreams:
    - name: b
      targets: [{address: %s}]
      breaker: {consecutiveFailures: 1, openDuration: 30s}
  routes: [{name: r, upstream: b}]
`, b.addr()), Options{Clock: clk})
	if status, _, _ := get(t, "GET", url+"/fail", nil); status != 500 {
		t.Fatalf("failing call: %d, want the upstream's 500", status)
	}
	status, body, h := get(t, "GET", url+"/", nil)
	if status != 503 || !strings.Contains(body, `"reason":"breaker_open"`) || !strings.Contains(body, `"policy":"breaker"`) || h.Get("Retry-After") != "30" {
		t.Fatalf("with the breaker open: %d %s (Retry-After %q), want 503 breaker_open with Retry-After 30", status, body, h.Get("Retry-After"))
	}
	status, body, _ = get(t, "GET", url+"/ws", map[string]string{"Connection": "Upgrade", "Upgrade": "websocket"})
	if status != 503 || !strings.Contains(body, `"reason":"breaker_open"`) {
		t.Fatalf("upgrade with the breaker open: %d %s, want 503 breaker_open", status, body)
	}
	clk.Advance(30 * time.Second)
	if status, body, _ := get(t, "GET", url+"/", nil); status != 200 || body != "b" {
		t.Fatalf("after the open time: %d %q, want the probe answered by the target", status, body)
	}
}

// TestProxyDoesNotInventAContentType: a body sent without Content-Type
// reaches the target without one, as the client sent it.
func TestProxyDoesNotInventAContentType(t *testing.T) {
	t.Parallel()
	b := newBackend(t, "b")
	_, url := startGateway(t, fmt.Sprintf(`
  upstreams: [{name: b, targets: [{address: %s}]}]
  routes: [{name: r, upstream: b}]
`, b.addr()), Options{})
	req, err := http.NewRequest("POST", url+"/p", strings.NewReader("abc"))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := testClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if ct, ok := b.lastRequest().Header["Content-Type"]; ok {
		t.Errorf("the target got Content-Type %q for a body sent without one", ct)
	}
	req, _ = http.NewRequest("POST", url+"/p", strings.NewReader("{}"))
	req.Header.Set("Content-Type", "application/json")
	if resp, err = testClient.Do(req); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if ct := b.lastRequest().Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("the target got Content-Type %q, want the client's application/json", ct)
	}
}

// TestProxyIdentityFieldsOnceEach: the request id, traceparent and
// forwarding fields reach the target once each, whether the client sent
// none, one or several of them (the first of a repeated one is the one
// read), and in any case of their names.
func TestProxyIdentityFieldsOnceEach(t *testing.T) {
	t.Parallel()
	b := newBackend(t, "b")
	g, _ := startGateway(t, fmt.Sprintf(`
  upstreams: [{name: b, targets: [{address: %s}]}]
  routes: [{name: all, upstream: b}]
`, b.addr()), Options{})
	const trace = "4bf92f3577b34da6a3ce929d0e0e4736"
	for _, tc := range []struct {
		name, fields, wantID string
	}{
		{"none", "", ""},
		{"one each", "x-request-id: req-1\r\ntraceparent: 00-" + trace + "-00f067aa0ba902b7-01\r\nX-FORWARDED-FOR: 1.2.3.4\r\nx-forwarded-proto: https\r\n", "req-1"},
		{"repeated", "X-Request-Id: req-1\r\nX-Request-Id: req-2\r\nTraceparent: 00-" + trace + "-00f067aa0ba902b7-01\r\nTraceparent: 00-11111111111111111111111111111111-00f067aa0ba902b7-01\r\nX-Forwarded-For: 1.2.3.4\r\nX-Forwarded-For: 5.6.7.8\r\nX-Forwarded-Proto: https\r\nX-Forwarded-Proto: ftp\r\n", "req-1"},
	} {
		c, br := dialFor(t, g.Addr("main"))
		fmt.Fprintf(c, "GET /%s HTTP/1.1\r\nHost: x\r\n%sConnection: close\r\n\r\n", strings.ReplaceAll(tc.name, " ", "-"), tc.fields)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		resp.Body.Close()
		h := b.lastRequest().Header
		for _, name := range []string{"X-Request-Id", "Traceparent", "X-Forwarded-For", "X-Forwarded-Proto"} {
			if n := len(h.Values(name)); n != 1 {
				t.Errorf("%s: the target got %s %d times (%q), want once", tc.name, name, n, h.Values(name))
			}
		}
		if id := h.Get("X-Request-Id"); tc.wantID != "" && id != tc.wantID || tc.wantID == "" && len(id) != 32 || resp.Header.Get("X-Request-Id") != id {
			t.Errorf("%s: request id %q to the target, %q to the client, want %q", tc.name, id, resp.Header.Get("X-Request-Id"), tc.wantID)
		}
		if tp := h.Get("Traceparent"); tc.fields != "" && !strings.HasPrefix(tp, "00-"+trace+"-") {
			t.Errorf("%s: traceparent %q, want the client's trace %s", tc.name, tp, trace)
		}
		if xff, proto := h.Get("X-Forwarded-For"), h.Get("X-Forwarded-Proto"); xff != "127.0.0.1" || proto != "http" {
			t.Errorf("%s: X-Forwarded-For %q and -Proto %q from an untrusted peer, want 127.0.0.1 and http", tc.name, xff, proto)
		}
	}
}
