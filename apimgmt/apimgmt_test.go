package apimgmt

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/relia-dev/relia/callstore"
	"github.com/relia-dev/relia/clock"
	"github.com/relia-dev/relia/report/reporttest"
)

var t0 = time.Date(2027, 3, 1, 10, 0, 0, 0, time.UTC)

const apisYAML = `kind: API
version: relia/v1
metadata: {name: orders}
spec:
  version: v1
  owner: team-orders
  description: Place and read orders.
  openapi: orders-openapi.yaml
  routes: [orders]
  access: {subscription: required}
---
kind: API
version: relia/v1
metadata: {name: users-v1}
spec:
  version: v1
  routes: [users-old]
  state: deprecated
  successor: users-v2
  deprecation: {since: 2027-01-01T00:00:00Z, sunset: 2027-06-30T00:00:00Z, link: "https://docs.example/users-v1-sunset", successorLink: "https://docs.example/users-v2"}
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
---
kind: API
version: relia/v1
metadata: {name: partners}
spec: {version: v1, routes: [partners], access: {tenants: [globex]}}
`

func loadAPIs(t *testing.T) []*API {
	t.Helper()
	dir := t.TempDir()
	data, _ := os.ReadFile("../examples/api-management/orders-openapi.yaml")
	os.WriteFile(filepath.Join(dir, "orders-openapi.yaml"), data, 0o644)
	path := filepath.Join(dir, "apis.yaml")
	os.WriteFile(path, []byte(apisYAML), 0o644)
	apis, err := ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return apis
}

func newManager(t *testing.T, store Store) (*Manager, *clock.Fake) {
	t.Helper()
	clk := clock.NewFake(t0)
	m, err := NewManager(context.Background(), store, loadAPIs(t), Options{Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	return m, clk
}

func sqliteStore(t *testing.T, clk clock.Clock) *callstore.DB {
	t.Helper()
	s, err := callstore.Open(context.Background(), filepath.Join(t.TempDir(), "calls.db"), callstore.Options{Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestConfigErrorsNameTheField(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ doc, want string }{
		{"spec: {version: v1, routes: [a], state: gone}", "api.yaml:4:41: spec.state: unknown state \"gone\""},
		{"spec: {version: v1, routes: [a], colour: red}", "spec.colour: unknown field"},
		{"spec: {version: v1, routes: [a], state: deprecated}", "spec.deprecation.since: a deprecated API needs"},
		{"spec: {version: v1, routes: [a], access: {subscription: maybe}}", "spec.access.subscription: \"maybe\""},
		{"spec: {version: v1, routes: [a], openapi: missing.yaml}", "spec.openapi: reading the OpenAPI document"},
		{"spec: {routes: [a]}", "version"},
		{"spec: {version: v1, routes: [a], state: deprecated, deprecation: {since: yesterday}}", "spec.deprecation.since: \"yesterday\" is not an RFC 3339 time"},
		{"spec: {version: v1, routes: [a], successor: b, deprecation: {successorLink: b}}", "api.yaml:4:77: spec.deprecation.successorLink: \"b\" is not a URL"},
	} {
		_, err := Parse("api.yaml", []byte("kind: API\nversion: relia/v1\nmetadata: {name: a}\n"+c.doc+"\n"))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want %q", c.doc, err, c.want)
		}
	}
	two := "kind: API\nversion: relia/v1\nmetadata: {name: a}\nspec: {version: v1, routes: [r]}\n---\nkind: API\nversion: relia/v1\nmetadata: {name: b}\nspec: {version: v1, routes: [r]}\n"
	if _, err := Parse("api.yaml", []byte(two)); err == nil || !strings.Contains(err.Error(), `route "r" already belongs to API "a"`) {
		t.Errorf("a route in two APIs: %v", err)
	}
}

func TestLifecycleStates(t *testing.T) {
	t.Parallel()
	m, _ := newManager(t, &MemoryStore{})
	for _, c := range []struct {
		route  string
		status int
		reason string
		msg    string
	}{
		{"next", 404, "api_draft", "draft"},
		{"legacy", 410, "api_retired", "use orders"},
		{"unmanaged", 0, "", ""},
		{"partners", 0, "", ""},
	} {
		d := m.Check(c.route, "acme")
		if d.Status != c.status || d.Reason != c.reason || !strings.Contains(d.Message, c.msg) || d.Allow != (c.status == 0) {
			t.Errorf("%s: %+v", c.route, d)
		}
	}
	d := m.Check("users-old", "acme")
	want := [][2]string{
		{"Deprecation", "@1798761600"},
		{"Sunset", "Wed, 30 Jun 2027 00:00:00 GMT"},
		{"Link", `<https://docs.example/users-v1-sunset>; rel="deprecation"; type="text/html"`},
		{"Link", `<https://docs.example/users-v2>; rel="successor-version"`},
	}
	if !d.Allow || d.API != "users-v1" || !reflect.DeepEqual(d.Headers, want) {
		t.Errorf("deprecated: %+v", d)
	}
}

func TestCheckDoesNotAllocate(t *testing.T) {
	m, _ := newManager(t, &MemoryStore{})
	m.Subscribe(context.Background(), "acme", "orders", "acme", "")
	for _, route := range []string{"users-old", "orders", "legacy", "unmanaged"} {
		if n := testing.AllocsPerRun(100, func() { m.Check(route, "acme") }); n != 0 {
			t.Errorf("Check(%s) allocates %v times", route, n)
		}
	}
}

func TestSubscriptionApprovalAndAudit(t *testing.T) {
	t.Parallel()
	clk := clock.NewFake(t0)
	store := sqliteStore(t, clk)
	m, err := NewManager(context.Background(), store, loadAPIs(t), Options{Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	check := func(want string) {
		t.Helper()
		d := m.Check("orders", "acme")
		if d.Reason != want || d.Allow != (want == "") {
			t.Fatalf("call: %+v, want reason %q", d, want)
		}
	}
	check("subscription_required")
	if d := m.Check("orders", ""); d.Status != 401 {
		t.Fatalf("anonymous call: %+v", d)
	}
	if _, err := m.Subscribe(ctx, "acme", "orders", "acme", "for the checkout"); err != nil {
		t.Fatal(err)
	}
	check("subscription_pending")
	if d := m.Check("orders", "acme"); d.Status != 403 {
		t.Fatalf("pending: status %d, want 403", d.Status)
	}
	clk.Advance(time.Hour)
	if _, err := m.Approve(ctx, "acme", "orders", "alice", "ok"); err != nil {
		t.Fatal(err)
	}
	check("")
	if _, err := m.Revoke(ctx, "acme", "orders", "bob", "abuse"); err != nil {
		t.Fatal(err)
	}
	check("subscription_revoked")
	if _, err := m.Approve(ctx, "globex", "orders", "alice", ""); err == nil {
		t.Error("approved a subscription nobody asked for")
	}
	if _, err := m.Subscribe(ctx, "acme", "partners", "acme", ""); err == nil {
		t.Error("subscribed to an API not offered to the tenant")
	}
	// Another gateway on the same database sees the same subscriptions.
	other, err := NewManager(ctx, store, loadAPIs(t), Options{Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	if d := other.Check("orders", "acme"); d.Reason != "subscription_revoked" {
		t.Errorf("the other gateway: %+v", d)
	}
	entries, err := store.Audit(ctx, callstore.AuditQuery{Action: "subscription."})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range entries {
		got = append(got, e.Actor+" "+e.Action+" "+e.Tenant+" "+e.API)
	}
	want := []string{"acme subscription.request acme orders", "alice subscription.approve acme orders", "bob subscription.revoke acme orders"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("audit log:\n%v\nwant\n%v", got, want)
	}
	// A config reload that moves an API on is audited too.
	apis := loadAPIs(t)
	apis[0].Spec.State = StateDeprecated
	apis[0].Spec.Deprecation.since = t0
	if err := m.SetAPIs(ctx, apis[:4], "gateway"); err != nil {
		t.Fatal(err)
	}
	entries, _ = store.Audit(ctx, callstore.AuditQuery{Action: "config."})
	if len(entries) != 2 || entries[0].Detail != "orders v1 published -> v1 deprecated" || entries[1].Action != "config.api_removed" {
		t.Errorf("config entries: %+v", entries)
	}
}

func TestCatalogAndAdminAPI(t *testing.T) {
	t.Parallel()
	m, _ := newManager(t, &MemoryStore{})
	srv := httptest.NewServer(m.Handler("http://127.0.0.1:9901"))
	defer srv.Close()
	c := NewClient(srv.URL, "alice", srv.Client())
	ctx := context.Background()

	cat, err := c.Catalog(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range cat.APIs {
		names = append(names, e.Name+":"+e.Subscription)
	}
	// Drafts are hidden, and partners is offered to globex only.
	if want := []string{"legacy:none", "orders:not_subscribed", "users-v1:none"}; !reflect.DeepEqual(names, want) {
		t.Fatalf("acme's catalog: %v, want %v", names, want)
	}
	if ops := cat.APIs[1].Operations; len(ops) != 2 || ops[0].Method != "GET" || ops[0].Path != "/orders/{id}" {
		t.Errorf("operations from the OpenAPI document: %+v", ops)
	}
	if cat, _ := c.Catalog(ctx, "globex"); len(cat.APIs) != 4 {
		t.Errorf("globex sees %d APIs, want 4", len(cat.APIs))
	}
	if _, err := c.Change(ctx, "subscribe", SubscriptionRequest{Tenant: "acme", API: "orders", Note: "please"}); err != nil {
		t.Fatal(err)
	}
	if m.Check("orders", "acme").Reason != "subscription_pending" {
		t.Fatal("a subscription through the admin API is not pending")
	}
	sub, err := c.Change(ctx, "approve", SubscriptionRequest{Tenant: "acme", API: "orders"})
	if err != nil || sub.State != callstore.SubscriptionApproved || sub.DecidedBy != "alice" {
		t.Fatalf("approve: %+v, %v", sub, err)
	}
	if _, err := c.Change(ctx, "approve", SubscriptionRequest{Tenant: "acme", API: "nope"}); err == nil {
		t.Error("approved a subscription to an unknown API")
	}
	resp, err := srv.Client().Post(srv.URL+"/subscriptions", "application/json", strings.NewReader(`{"tenant":"acme"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("a request without an API: %d", resp.StatusCode)
	}
	subs, err := c.Subscriptions(ctx)
	if err != nil || len(subs) != 1 || subs[0].State != "approved" {
		t.Fatalf("subscriptions: %+v, %v", subs, err)
	}
}

func TestPortalInChromium(t *testing.T) {
	t.Parallel()
	reporttest.RequireChromium(t)
	m, _ := newManager(t, &MemoryStore{})
	path := filepath.Join(t.TempDir(), "portal.html")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Portal("acme", "http://127.0.0.1:9901").WriteHTML(f); err != nil {
		t.Fatal(err)
	}
	f.Close()
	res := reporttest.OpenInChromium(t, path)
	if len(res.ConsoleErrors)+len(res.FailedRequests) > 0 || len(res.Requests) != 1 {
		t.Fatalf("console errors %v, failed requests %v, requests %v", res.ConsoleErrors, res.FailedRequests, res.Requests)
	}
	var text string
	res.Eval(t, `document.body.innerText`, &text)
	for _, want := range []string{"orders v1", "Read an order", "/orders/{id}", "relia api subscribe --admin http://127.0.0.1:9901 --tenant acme --api orders", "Retired", "Use orders", "stops answering at 2027-06-30"} {
		if !strings.Contains(text, want) {
			t.Errorf("the portal does not say %q", want)
		}
	}
	if strings.Contains(text, "next") || strings.Contains(text, "partners") {
		t.Error("the portal shows a draft or another tenant's API")
	}
	reporttest.SaveArtifact(t, "portal.png", res.ScreenshotPNG)
}
