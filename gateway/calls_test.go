package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/relia-dev/relia/callstore"
	"github.com/relia-dev/relia/gateway/auth"
)

// TestGatewayKeepsEveryCallAndManagesAPIs runs a gateway with a call
// store and kind: API documents: every answer it gives, proxied,
// retried, served from the cache or a fallback, rejected or unmatched,
// is one call record telling its story; a draft API
// answers 404, a retired one 410, a deprecated one carries Deprecation
// and Sunset; an API that needs a subscription answers 403
// subscription_pending until an admin approves; the audit log and the
// calls are on the admin API.
func TestGatewayKeepsEveryCallAndManagesAPIs(t *testing.T) {
	t.Parallel()
	be := newBackend(t, "svc")
	be.handle(func(w http.ResponseWriter, r *http.Request) bool {
		switch {
		case strings.HasPrefix(r.URL.Path, "/flaky"):
			w.WriteHeader(503)
			return true
		case strings.HasPrefix(r.URL.Path, "/cached"):
			w.Header().Set("Cache-Control", "max-age=600")
			io.WriteString(w, "cacheable")
			return true
		}
		return false
	})
	acmeKey := auth.NewKey()
	keys := writeFile(t, "keys.yaml", fmt.Sprintf("kind: APIKeys\nversion: relia/v1\nspec:\n  keys:\n    - {id: acme-web, tenant: acme, routes: ['*'], sha256: %s}\n", auth.HashKey(acmeKey)))
	db := filepath.Join(t.TempDir(), "calls.db")
	doc := fmt.Sprintf(`kind: Gateway
version: relia/v1
metadata: {name: gw-test}
spec:
  listeners: [{name: main, address: 127.0.0.1:0}]
  admin: {address: 127.0.0.1:0}
  calls: {store: %s, flushInterval: 10ms}
  auth: {keysFile: %s, keyHeader: X-Consumer-Key}
  upstreams: [{name: svc, targets: [{address: %q}]}]
  routes:
    - {name: orders, match: {path: {prefix: /orders}}, upstream: svc, capture: {headers: true}}
    - {name: users, match: {path: {prefix: /users}}, upstream: svc}
    - {name: legacy, match: {path: {prefix: /legacy}}, upstream: svc}
    - {name: next, match: {path: {prefix: /next}}, upstream: svc}
    - {name: flaky, match: {path: {prefix: /flaky}}, upstream: svc, retry: {attempts: 2, retryOn: [5xx]}}
    - {name: cached, match: {path: {prefix: /cached}}, upstream: svc, cache: {maxSize: 1MiB}}
    - {name: static, match: {path: {prefix: /static}}, fallback: {status: 200, body: fixed}}
---
kind: API
version: relia/v1
metadata: {name: orders}
spec: {version: v1, routes: [orders], access: {subscription: required}}
---
kind: API
version: relia/v1
metadata: {name: users}
spec: {version: v1, routes: [users], state: deprecated, successor: users-v2,
       deprecation: {since: "2027-01-01T00:00:00Z", sunset: "2027-06-30T00:00:00Z", successorLink: /v2/users}}
---
kind: API
version: relia/v1
metadata: {name: legacy}
spec: {version: v0, routes: [legacy], state: retired, successor: orders}
---
kind: API
version: relia/v1
metadata: {name: next}
spec: {version: v2, routes: [next], state: draft}
`, db, keys, be.addr())
	cfg, err := Parse(filepath.Join(t.TempDir(), "gw.yaml"), []byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	g, err := New(cfg, Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), AccessLog: io.Discard, Registry: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Start(); err != nil {
		t.Fatal(err)
	}
	base, admin := "http://"+g.Addr("main"), "http://"+g.AdminAddr()
	key := map[string]string{"X-Consumer-Key": acmeKey}
	sent := 0
	call := func(path string, hdr map[string]string) (int, string, http.Header) {
		sent++
		return get(t, "GET", base+path, hdr)
	}
	adminPost := func(path, body string) int {
		resp, err := http.Post(admin+path, "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}

	if st, body, _ := call("/orders/1", key); st != 403 || !strings.Contains(body, "subscription_required") {
		t.Fatalf("before subscribing: %d %s", st, body)
	}
	if st := adminPost("/subscriptions", `{"tenant":"acme","api":"orders"}`); st != 200 {
		t.Fatalf("subscribe: %d", st)
	}
	if st, body, _ := call("/orders/1", key); st != 403 || !strings.Contains(body, "subscription_pending") {
		t.Fatalf("pending: %d %s", st, body)
	}
	if st := adminPost("/subscriptions/approve", `{"tenant":"acme","api":"orders"}`); st != 200 {
		t.Fatalf("approve: %d", st)
	}
	if st, body, _ := call("/orders/1", key); st != 200 {
		t.Fatalf("approved: %d %s", st, body)
	}
	st, _, h := call("/users/7", key)
	if st != 200 || h.Get("Deprecation") != "@1798761600" || h.Get("Sunset") != "Wed, 30 Jun 2027 00:00:00 GMT" || strings.Join(h.Values("Link"), ",") != `</v2/users>; rel="successor-version"` {
		t.Errorf("deprecated: %d %v", st, h)
	}
	if st, body, _ := call("/legacy/x", key); st != 410 || !strings.Contains(body, "api_retired") || !strings.Contains(body, "use orders") {
		t.Errorf("retired: %d %s", st, body)
	}
	if st, body, _ := call("/next/x", key); st != 404 || !strings.Contains(body, "api_draft") {
		t.Errorf("draft: %d %s", st, body)
	}
	if st, _, _ := call("/flaky/x", key); st != 503 {
		t.Errorf("flaky: %d", st)
	}
	for range 2 { // the second from the cache
		if st, _, _ := call("/cached/1", key); st != 200 {
			t.Errorf("cached: %d", st)
		}
	}
	if st, body, _ := call("/static/x", key); st != 200 || body != "fixed" {
		t.Errorf("fallback: %d %q", st, body)
	}
	if st, _, _ := call("/nowhere", nil); st != 404 {
		t.Errorf("unmatched: %d", st)
	}
	if st, _, _ := call("/orders/2", nil); st != 401 {
		t.Errorf("no key: %d", st)
	}

	// The calls are on the admin API as they are written.
	c := callstore.NewClient(admin, nil)
	ctx := context.Background()
	var calls []callstore.Record
	deadline := time.Now().Add(30 * time.Second)
	for len(calls) < sent && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
		calls, _ = c.Calls(ctx, callstore.Query{Limit: 100})
	}
	if len(calls) != sent {
		t.Fatalf("%d calls on the admin API, %d sent", len(calls), sent)
	}
	byPath := map[string]callstore.Record{}
	for _, r := range calls {
		byPath[r.Path+" "+fmt.Sprint(r.Status)] = r
	}
	if r := byPath["/orders/1 200"]; r.API != "orders" || r.Tenant != "acme" || r.KeyID != "acme-web" || r.Gateway != "gw-test" || r.Attempts != 1 || r.Target != be.addr() || len(r.Steps) != 1 || r.PathTemplate != "/orders" {
		t.Errorf("the approved call: %+v", r)
	}
	// The route captures headers; the key, in the header the config
	// names, is redacted, and appears in no record.
	if r := byPath["/orders/1 200"]; !hasHeader(r.RequestHeaders, "X-Consumer-Key", callstore.Redacted) {
		t.Errorf("captured headers keep the key or lack it: %+v", r.RequestHeaders)
	}
	if all, _ := json.Marshal(calls); bytes.Contains(all, []byte(acmeKey)) {
		t.Error("a call record holds the API key")
	}
	if r := byPath["/orders/1 403"]; r.Reason != "subscription_pending" && r.Reason != "subscription_required" {
		t.Errorf("the refused call: %+v", r)
	}
	if r := byPath["/flaky/x 503"]; r.Attempts != 2 || len(r.Steps) != 2 || r.Steps[1].Status != 503 || r.Outcome != "status" {
		t.Errorf("the retried call: %+v", r)
	}
	var fromTarget, fromCache int
	for _, r := range calls {
		if r.Path != "/cached/1" {
			continue
		}
		switch {
		case len(r.Steps) == 1 && r.Steps[0].Kind == callstore.StepAttempt:
			fromTarget++
		case len(r.Steps) == 1 && r.Steps[0].Kind == callstore.StepCache && r.Status == 200:
			fromCache++
		}
	}
	if fromTarget != 1 || fromCache != 1 {
		t.Errorf("the cached route: %d calls from the target, %d from the cache; want 1 and 1", fromTarget, fromCache)
	}
	if r := byPath["/static/x 200"]; r.Route != "static" || len(r.Steps) != 1 || r.Steps[0].Kind != callstore.StepFallback {
		t.Errorf("the fallback call: %+v", r)
	}
	if r := byPath["/nowhere 404"]; r.Route != "" || r.Reason == "" {
		t.Errorf("the unmatched call: %+v", r)
	}
	story, err := c.Call(ctx, byPath["/flaky/x 503"].RequestID)
	if err != nil || len(story) != 1 {
		t.Fatalf("story by request id: %+v %v", story, err)
	}
	audit, err := c.Audit(ctx, callstore.AuditQuery{})
	if err != nil {
		t.Fatal(err)
	}
	var actions []string
	for _, e := range audit {
		actions = append(actions, e.Action)
	}
	if got := strings.Join(actions, ","); got != "subscription.request,subscription.approve" {
		t.Errorf("audit log: %s", got)
	}
	resp, err := http.Get(admin + "/portal?tenant=acme")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !bytes.Contains(page, []byte("APIs for acme")) {
		t.Errorf("portal: %d", resp.StatusCode)
	}

	// Shutdown flushes; the store holds exactly the calls sent.
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := g.Shutdown(sctx); err != nil {
		t.Fatal(err)
	}
	s, err := callstore.Open(ctx, db, callstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if n, err := s.Count(ctx, callstore.Query{}); err != nil || n != int64(sent) {
		t.Fatalf("store holds %d calls (%v), %d were sent", n, err, sent)
	}
}

func hasHeader(hs []callstore.Header, name, value string) bool {
	for _, h := range hs {
		if strings.EqualFold(h.Name, name) && h.Value == value {
			return true
		}
	}
	return false
}
