package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/relia-dev/relia/apimgmt"
	"github.com/relia-dev/relia/callstore"
	"github.com/relia-dev/relia/gateway"
	"github.com/relia-dev/relia/internal/pgtest"
)

// callsDB writes a day of calls into a SQLite store for the CLI to read.
func callsDB(t *testing.T) (string, time.Time) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "calls.db")
	ctx := context.Background()
	s, err := callstore.Open(ctx, path, callstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	start := time.Now().UTC().Truncate(time.Hour).Add(-3 * time.Hour)
	var recs []callstore.Record
	for i := range 300 {
		r := callstore.Record{Time: start.Add(time.Duration(i) * 30 * time.Second), RequestID: fmt.Sprintf("req-%03d", i), TraceID: fmt.Sprintf("%032x", i+1),
			Route: "orders", Tenant: "acme", Method: "GET", Path: fmt.Sprintf("/orders/%d", i), Status: 200, Outcome: "ok",
			Latency: time.Duration(5+i%10) * time.Millisecond, Attempts: 1}
		if i%30 == 0 {
			r.Status, r.Outcome, r.Reason, r.Attempts = 503, "status", "upstream_5xx", 2
			r.Steps = []callstore.Step{{Kind: callstore.StepAttempt, Target: "127.0.0.1:9002", Status: 503, Outcome: "status", Latency: time.Millisecond},
				{Kind: callstore.StepAttempt, Target: "127.0.0.1:9003", Status: 503, Outcome: "status", Latency: time.Millisecond}}
		}
		recs = append(recs, r)
	}
	if err := s.Write(ctx, recs); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AppendAudit(ctx, callstore.AuditEntry{Actor: "alice", Action: "subscription.approve", Tenant: "acme", API: "orders"}); err != nil {
		t.Fatal(err)
	}
	return path, start
}

func TestCallsCommand(t *testing.T) {
	t.Parallel()
	db, _ := callsDB(t)
	code, out, errOut := runCLI(t, "calls", "--db", db, "--since", "4h", "--status", "5xx")
	if code != exitPass || strings.Count(out, "upstream_5xx") != 10 || !strings.HasPrefix(out, "TIME") {
		t.Fatalf("code %d, stderr %s, out:\n%s", code, errOut, out)
	}
	code, out, _ = runCLI(t, "calls", "--db", db, "--since", "4h", "-q", "ORDERS/29", "-o", "json", "--limit", "3")
	var resp callstore.CallsResponse
	if code != exitPass || json.Unmarshal([]byte(out), &resp) != nil || resp.Schema != callstore.CallsSchema || len(resp.Calls) != 3 {
		t.Fatalf("json: code %d, out %s", code, out)
	}
	// One call's story, by request id and by trace id.
	for _, id := range []string{"req-030", fmt.Sprintf("%032x", 31)} {
		code, out, _ = runCLI(t, "calls", "--db", db, id)
		if code != exitPass || !strings.Contains(out, "step 2") || !strings.Contains(out, "attempt to 127.0.0.1:9003 503 status") || !strings.Contains(out, "upstream_5xx") {
			t.Errorf("story of %s: code %d:\n%s", id, code, out)
		}
	}
	if code, _, errOut = runCLI(t, "calls", "--db", db, "nope"); code != exitRuntime || !strings.Contains(errOut, `no call with request id or trace id "nope"`) {
		t.Errorf("unknown call: %d %s", code, errOut)
	}
	code, out, _ = runCLI(t, "calls", "--db", db, "--audit")
	if code != exitPass || !strings.Contains(out, "subscription.approve") || !strings.Contains(out, "alice") {
		t.Errorf("audit: %d\n%s", code, out)
	}
	for _, bad := range [][]string{
		{"calls", "--since", "1h"},
		{"calls", "--db", db, "--status", "5x"},
		{"calls", "--db", db, "--since", "soon"},
		{"calls", "--db", db, "--admin", "http://127.0.0.1:1"},
		{"calls", "--db", db, "-o", "yaml"},
		{"calls", "--db", db + ".typo"},
	} {
		if code, _, _ := runCLI(t, bad...); code != exitBadInput {
			t.Errorf("%v: exit %d, want %d", bad, code, exitBadInput)
		}
	}
	if _, err := os.Stat(db + ".typo"); err == nil {
		t.Error("a mistyped --db created a store")
	}
}

func TestCallsThroughTheAdminAPI(t *testing.T) {
	t.Parallel()
	db, _ := callsDB(t)
	s, err := callstore.Open(context.Background(), db, callstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	srv := httptest.NewServer(callstore.Handler(s))
	defer srv.Close()
	_, fromDB, _ := runCLI(t, "calls", "--db", db, "--since", "4h", "--tenant", "acme", "--limit", "7")
	code, fromAPI, errOut := runCLI(t, "calls", "--admin", srv.URL, "--since", "4h", "--tenant", "acme", "--limit", "7")
	if code != exitPass || fromAPI != fromDB || strings.Count(fromAPI, "\n") != 8 {
		t.Fatalf("through the admin API (code %d, %s):\n%s\nfrom the database:\n%s", code, errOut, fromAPI, fromDB)
	}
}

func TestAnalyzeCommand(t *testing.T) {
	t.Parallel()
	db, _ := callsDB(t)
	html := filepath.Join(t.TempDir(), "a.html")
	code, out, errOut := runCLI(t, "analyze", "--db", db, "--since", "5h", "--html", html)
	if code != exitPass || !strings.Contains(out, "orders") || !strings.Contains(out, "3.33%") {
		t.Fatalf("code %d, %s:\n%s", code, errOut, out)
	}
	if b, err := os.ReadFile(html); err != nil || !strings.Contains(string(b), "Call analysis") {
		t.Errorf("html: %v", err)
	}
	code, out, _ = runCLI(t, "analyze", "--db", db, "--since", "5h", "-o", "json")
	var a struct {
		Schema string `json:"schema"`
		Total  struct {
			Calls int64 `json:"calls"`
		} `json:"total"`
	}
	if code != exitPass || json.Unmarshal([]byte(out), &a) != nil || a.Schema != "relia/analysis/v1" || a.Total.Calls != 300 {
		t.Fatalf("json: %d %s", code, out)
	}
	if code, _, _ := runCLI(t, "analyze", "--db", db, "--step", "30m"); code != exitBadInput {
		t.Errorf("--step 30m: exit %d", code)
	}
}

func TestAPICommand(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "apis.yaml")
	os.WriteFile(path, []byte("kind: API\nversion: relia/v1\nmetadata: {name: orders}\nspec: {version: v1, routes: [orders], access: {subscription: required}}\n"), 0o644)
	apis, err := apimgmt.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	m, err := apimgmt.NewManager(context.Background(), &apimgmt.MemoryStore{}, apis, apimgmt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(m.Handler("http://127.0.0.1:9901"))
	defer srv.Close()
	steps := []struct {
		args []string
		code int
		want string
	}{
		{[]string{"api", "catalog", "--admin", srv.URL, "--tenant", "acme"}, exitPass, "not_subscribed"},
		{[]string{"api", "subscribe", "--admin", srv.URL, "--tenant", "acme", "--api", "orders"}, exitPass, "acme orders: pending"},
		{[]string{"api", "approve", "--admin", srv.URL, "--tenant", "acme", "--api", "orders", "--as", "alice"}, exitPass, "acme orders: approved"},
		{[]string{"api", "subscriptions", "--admin", srv.URL}, exitPass, "alice"},
		{[]string{"api", "approve", "--admin", srv.URL, "--tenant", "acme", "--api", "nope"}, exitBadInput, ""},
		{[]string{"api", "validate", path}, exitPass, "ok: 1 APIs"},
		{[]string{"validate", path}, exitPass, "ok: API"},
		{[]string{"api", "subscribe", "--admin", "http://127.0.0.1:1", "--tenant", "a", "--api", "b"}, exitRuntime, ""},
	}
	for _, s := range steps {
		code, out, errOut := runCLI(t, s.args...)
		if code != s.code || !strings.Contains(out, s.want) {
			t.Errorf("%v: exit %d (want %d), stdout %q, stderr %q", s.args, code, s.code, out, errOut)
		}
	}
	if d := m.Check("orders", "acme"); !d.Allow {
		t.Errorf("after relia api approve: %+v", d)
	}
}

// TestCallsFromTwoGatewaysOnOnePostgres runs two gateways that keep
// their calls in one real PostgreSQL server, stops the server in the
// middle of their traffic and starts it again: no request waits for the
// store, and relia calls over the database shows every call of both
// gateways, none lost.
func TestCallsFromTwoGatewaysOnOnePostgres(t *testing.T) {
	t.Parallel()
	srv := pgtest.Start(t)
	dsn := srv.NewDatabase(t)
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	defer backend.Close()
	dir := t.TempDir()
	type gw struct {
		g   *gateway.Gateway
		reg *prometheus.Registry
	}
	var gws []gw
	for _, name := range []string{"gw-a", "gw-b"} {
		doc := fmt.Sprintf(`kind: Gateway
version: relia/v1
metadata: {name: %s}
spec:
  listeners: [{name: main, address: 127.0.0.1:0}]
  admin: {address: 127.0.0.1:0}
  calls: {store: %q, spool: %q, flushInterval: 10ms}
  upstreams: [{name: svc, targets: [{address: %q}]}]
  routes: [{name: orders, match: {path: {prefix: /orders}}, upstream: svc}]
`, name, dsn, filepath.Join(dir, name+".spool"), strings.TrimPrefix(backend.URL, "http://"))
		cfg, err := gateway.Parse(filepath.Join(dir, name+".yaml"), []byte(doc))
		if err != nil {
			t.Fatal(err)
		}
		reg := prometheus.NewRegistry()
		g, err := gateway.New(cfg, gateway.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), AccessLog: io.Discard, Registry: reg})
		if err != nil {
			t.Fatal(err)
		}
		if err := g.Start(); err != nil {
			t.Fatal(err)
		}
		gws = append(gws, gw{g, reg})
	}
	sent := map[string]int{}
	send := func(n int) {
		t.Helper()
		for i, x := range gws {
			for j := range n {
				resp, err := http.Get(fmt.Sprintf("http://%s/orders/%d", x.g.Addr("main"), j))
				if err != nil {
					t.Fatal(err)
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					t.Fatalf("gateway %d: status %d", i, resp.StatusCode)
				}
				sent[fmt.Sprintf("gw-%c", 'a'+i)]++
			}
		}
	}
	failures := func() (n float64) {
		for _, x := range gws {
			mfs, err := x.reg.Gather()
			if err != nil {
				t.Fatal(err)
			}
			for _, mf := range mfs {
				if mf.GetName() == "relia_calls_write_failures_total" {
					for _, m := range mf.GetMetric() {
						n += m.GetCounter().GetValue()
					}
				}
			}
		}
		return n
	}

	send(50)
	srv.Stop()
	// The gateways answer while the store is down, and find it down.
	deadline := time.Now().Add(30 * time.Second)
	for failures() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no failed write to the stopped store in 30s")
		}
		send(5)
	}
	send(50)
	if err := srv.Restart(); err != nil {
		t.Fatal(err)
	}
	send(20)
	for _, x := range gws {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		err := x.g.Shutdown(ctx)
		cancel()
		if err != nil {
			t.Fatalf("shutdown: %v", err)
		}
	}

	code, out, errOut := runCLI(t, "calls", "--db", dsn, "--since", "1h", "-o", "json", "--limit", "10000")
	var resp callstore.CallsResponse
	if code != exitPass || json.Unmarshal([]byte(out), &resp) != nil {
		t.Fatalf("relia calls: code %d, %s\n%.500s", code, errOut, out)
	}
	got := map[string]int{}
	for _, r := range resp.Calls {
		got[r.Gateway]++
	}
	if len(got) != 2 || got["gw-a"] != sent["gw-a"] || got["gw-b"] != sent["gw-b"] {
		t.Fatalf("relia calls shows %v, the gateways answered %v", got, sent)
	}
	code, out, _ = runCLI(t, "calls", "--db", dsn, "--since", "1h", "--limit", "10000")
	if code != exitPass || !strings.Contains(out, "gw-a") || !strings.Contains(out, "gw-b") {
		t.Errorf("the table does not name both gateways: code %d\n%.300s", code, out)
	}
	code, out, _ = runCLI(t, "calls", "--db", dsn, "--since", "1h", "--limit", "10000", "--gateway", "gw-b", "-o", "json")
	resp = callstore.CallsResponse{}
	if code != exitPass || json.Unmarshal([]byte(out), &resp) != nil || len(resp.Calls) != sent["gw-b"] || resp.Calls[0].Gateway != "gw-b" {
		t.Errorf("--gateway gw-b: code %d, %d calls, want %d", code, len(resp.Calls), sent["gw-b"])
	}
}

// TestCallsFollow runs relia calls --follow as a process: it prints the
// latest calls, then each call stored after it started, oldest first,
// and exits 0 on SIGINT.
func TestCallsFollow(t *testing.T) {
	t.Parallel()
	db, _ := callsDB(t)
	cmd := exec.Command(os.Args[0], "calls", "--db", db, "--follow", "-o", "json", "--interval", "20ms")
	cmd.Env = append(os.Environ(), cliEnv+"=1")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	lines := make(chan string)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	timeout := time.After(30 * time.Second)
	next := func() callstore.Record {
		t.Helper()
		select {
		case l, ok := <-lines:
			var r callstore.Record
			if !ok || json.Unmarshal([]byte(l), &r) != nil {
				t.Fatalf("not a call: %q (stderr %s)", l, stderr.String())
			}
			return r
		case <-timeout:
			t.Fatalf("no call printed in 30s (stderr %s)", stderr.String())
		}
		return callstore.Record{}
	}
	// The latest 20, oldest first.
	for i := 280; i < 300; i++ {
		if r := next(); r.RequestID != fmt.Sprintf("req-%03d", i) {
			t.Fatalf("call %d of the latest: %s", i, r.RequestID)
		}
	}
	s, err := callstore.Open(context.Background(), db, callstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var recs []callstore.Record
	for i := range 3 {
		recs = append(recs, callstore.Record{Time: time.Now(), RequestID: fmt.Sprintf("new-%d", i), Route: "orders", Method: "GET", Path: "/orders/new", Status: 200, Outcome: "ok"})
	}
	if err := s.Write(context.Background(), recs); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if r := next(); r.RequestID != fmt.Sprintf("new-%d", i) {
			t.Fatalf("followed call %d: %s", i, r.RequestID)
		}
	}
	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	for range lines {
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("relia calls --follow after SIGINT: %v (stderr %s)", err, stderr.String())
	}
}
