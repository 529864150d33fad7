package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/relia-dev/relia/gateway"
)

// TestCallsShowCapturedBodies sends raw requests through a gateway whose
// route keeps headers and bodies (a 64-byte cap, card.number redacted)
// and reads the calls back with `relia calls`: the story shows the
// redacted JSON both ways, the Authorization header redacted, and a body
// past the cap as its first 64 bytes with its whole size.
func TestCallsShowCapturedBodies(t *testing.T) {
	t.Parallel()
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if r.URL.Path == "/pay" {
			io.WriteString(w, `{"card":{"number":"4111111111111111"},"paid":true}`)
			return
		}
		w.Write(body)
	}))
	defer backend.Close()
	dir := t.TempDir()
	db := filepath.Join(dir, "calls.db")
	doc := fmt.Sprintf(`kind: Gateway
version: relia/v1
spec:
  listeners: [{name: main, address: 127.0.0.1:0}]
  admin: {address: 127.0.0.1:0}
  calls: {store: %q, flushInterval: 10ms}
  upstreams: [{name: shop, targets: [{address: %q}]}]
  routes:
    - name: shop
      upstream: shop
      capture: {headers: true, bodies: true, maxBodyBytes: 64B, redactJSONPaths: [card.number]}
`, db, strings.TrimPrefix(backend.URL, "http://"))
	cfg, err := gateway.Parse(filepath.Join(dir, "gw.yaml"), []byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	g, err := gateway.New(cfg, gateway.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), AccessLog: io.Discard, Registry: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Start(); err != nil {
		t.Fatal(err)
	}
	send := func(raw string) {
		t.Helper()
		c, err := net.Dial("tcp", g.Addr("main"))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		io.WriteString(c, raw)
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("status %d", resp.StatusCode)
		}
	}
	pay := `{"card":{"number":"4111111111111111"},"item":7}`
	send("POST /pay HTTP/1.1\r\nHost: shop\r\nX-Request-Id: pay-1\r\nAuthorization: Bearer s3cret\r\nTransfer-Encoding: chunked\r\n\r\n" +
		fmt.Sprintf("%x\r\n%s\r\n%x\r\n%s\r\n0\r\n\r\n", 20, pay[:20], len(pay)-20, pay[20:]))
	long := strings.Repeat("0123456789", 10_000)
	send(fmt.Sprintf("POST /echo HTTP/1.1\r\nHost: shop\r\nX-Request-Id: echo-1\r\nContent-Length: %d\r\n\r\n%s", len(long), long))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := g.Shutdown(ctx); err != nil { // flushes the calls
		t.Fatal(err)
	}

	// The story's columns are aligned with spaces; one will do here.
	oneSpace := func(s string) string { return regexp.MustCompile(` {2,}`).ReplaceAllString(s, " ") }
	code, out, errOut := runCLI(t, "calls", "--db", db, "pay-1")
	out = oneSpace(out)
	for _, want := range []string{
		`> Authorization [redacted]`,
		`> body {"card":{"number":"[redacted]"},"item":7}`,
		`< body {"card":{"number":"[redacted]"},"paid":true}`,
		`bytes 47 in, 50 out`,
	} {
		if code != exitPass || !strings.Contains(out, want) {
			t.Errorf("the story of pay-1 (exit %d, %s) lacks %q:\n%s", code, errOut, want, out)
		}
	}
	if strings.Contains(out, "4111") || strings.Contains(out, "s3cret") {
		t.Errorf("a secret is in the story:\n%s", out)
	}
	cut := long[:64] + "…[100000 bytes in all]"
	code, out, _ = runCLI(t, "calls", "--db", db, "echo-1")
	if out = oneSpace(out); code != exitPass || !strings.Contains(out, "> body "+cut) || !strings.Contains(out, "< body "+cut) || !strings.Contains(out, "< Content-Type text/plain") {
		t.Errorf("the story of echo-1:\n%s", out)
	}
	code, out, _ = runCLI(t, "calls", "--db", db, "--route", "shop", "-o", "json")
	if code != exitPass || !strings.Contains(out, `"request_body": "`+cut+`"`) {
		t.Errorf("JSON lacks the kept body:\n%s", out)
	}
}
