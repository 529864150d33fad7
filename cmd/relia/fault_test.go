package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/relia-dev/relia/fault"
)

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func TestFaultCLIAgainstServer(t *testing.T) {
	t.Parallel()
	up, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer up.Close()
	go func() {
		for {
			c, err := up.Accept()
			if err != nil {
				return
			}
			go func() { io.Copy(c, c); c.Close() }()
		}
	}()
	cfg := filepath.Join(t.TempDir(), "proxies.json")
	os.WriteFile(cfg, []byte(`[{"name":"shop","listen":"127.0.0.1:0","upstream":"`+up.Addr().String()+`"}]`), 0o600)

	// The latencies to replay come from a load run, as users make them.
	results, request := loadResults(t, 30*time.Millisecond)

	ctx, cancel := context.WithCancel(context.Background())
	stderr := &lockedBuffer{}
	ready := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- serveFault(ctx, faultServeOptions{listen: "127.0.0.1:0", config: cfg, seed: 77, seedSet: true, defaultTTL: fault.DefaultLeaseTTL}, stderr, ready)
	}()
	var api string
	select {
	case api = <-ready:
	case err := <-done:
		t.Fatalf("serve ended: %v", err)
	}
	srv := "--server=http://" + api

	steps := []struct {
		args []string
		code int
		want string
	}{
		{[]string{"fault", "add", "shop", srv, "-t", "latency", "-a", "latency=5", "-a", "jitter=1", "--ttl", "30s"}, exitPass, "added latency_downstream (latency, downstream, toxicity 1) to shop, lease 30s"},
		{[]string{"fault", "add", "shop", srv, "-t", "slicer", "-n", "s", "--toxicity", "0.5", "-a", "average_size=10"}, exitPass, "lease 1m0s"},
		{[]string{"fault", "add", "shop", srv, "-t", "nope"}, exitBadInput, "invalid toxic type"},
		{[]string{"fault", "add", "shop", srv, "-t", "latency", "-n", "x", "--toxicity", "3"}, exitBadInput, "toxicity must be within [0, 1]"},
		{[]string{"fault", "add", "shop", srv, "-t", "latency", "-a", "oops"}, exitBadInput, "must be key=value"},
		{[]string{"fault", "add", "nope", srv, "-t", "latency"}, exitBadInput, `proxy not found: "nope"`},
		{[]string{"fault", "add", "shop", srv, "-t", "latency", "-n", "x", "-a", "latency=100ms"}, exitBadInput,
			`toxic "x": attribute "latency": want a whole number of milliseconds, got "100ms"`},
		{[]string{"fault", "add", "shop", srv, "-t", "latency", "-n", "x", "-a", "latncy=100"}, exitBadInput,
			`toxic "x": unknown attribute "latncy" (known: latency, jitter, distribution, samples)`},
		{[]string{"fault", "add", "shop", srv, "-t", "latency", "-n", "stays", "--ttl", "0"}, exitPass, "added stays (latency, downstream, toxicity 1) to shop, no lease, it stays until removed"},
		{[]string{"fault", "list", srv}, exitPass, "never (no lease)"},
		{[]string{"fault", "add", "shop", srv, "-t", "latency", "-n", "x", "--ttl", "0", "--hold"}, exitBadInput, "--hold renews a lease"},
		{[]string{"fault", "renew", "shop", "stays", srv}, exitBadInput, `toxic has no lease: "stays" on proxy "shop" stays until removed`},
		{[]string{"fault", "remove", "shop", "stays", srv}, exitPass, "removed stays from shop"},
		{[]string{"fault", "create", "web", srv, "--upstream", up.Addr().String(), "--mode", "http"}, exitPass, "created proxy web (http mode), listening on 127.0.0.1:"},
		{[]string{"fault", "create", "web", srv, "--upstream", up.Addr().String()}, exitBadInput, `proxy already exists: "web"`},
		{[]string{"fault", "create", "../etc", srv, "--upstream", up.Addr().String()}, exitBadInput, `proxy name "../etc" must start with a letter or digit`},
		{[]string{"fault", "create", "x", srv, "--upstream", up.Addr().String(), "--mode", "udp"}, exitBadInput, `mode must be tcp or http, got "udp"`},
		{[]string{"fault", "create", "x", srv}, exitBadInput, `required flag(s) "upstream" not set`},
		{[]string{"fault", "create", "idle", srv, "--upstream", up.Addr().String(), "--disabled"}, exitPass, "created proxy idle (tcp mode), disabled"},
		{[]string{"fault", "list", srv}, exitPass, "web    http"},
		{[]string{"fault", "add", "web", srv, "-t", "latency"}, exitBadInput, "latency toxics do not apply to a proxy in http mode"},
		// -a sets the model API faults' scalar attributes, numbers where
		// they parse (json_equals=4 compares with a member's JSON text).
		{[]string{"fault", "add", "web", srv, "-t", "http", "-n", "ai", "-a", "json_field=max_tokens", "-a", "json_equals=4", "-a", "nth_request=2",
			"-a", "first_byte_delay=100", "-a", "events_per_second=2.5", "-a", "stall_after_events=3"}, exitPass, "added ai (http, downstream, toxicity 1) to web"},
		{[]string{"fault", "add", "web", srv, "-t", "http", "-n", "ai2", "-a", "abort_status=429", "-a", "error_format=openai", "-a", "retry_after=2"}, exitPass, "added ai2 (http"},
		{[]string{"fault", "add", "web", srv, "-t", "http", "-n", "x", "-a", "error_after_events=2"}, exitBadInput, "error_after_events needs error_format"},
		{[]string{"fault", "delete", "web", srv}, exitPass, "deleted proxy web"},
		{[]string{"fault", "delete", "idle", srv}, exitPass, "deleted proxy idle"},
		{[]string{"fault", "delete", "web", srv}, exitBadInput, `proxy not found: "web"`},
		{[]string{"fault", "list", srv}, exitPass, "latency_downstream"},
		{[]string{"fault", "list", srv}, exitPass, "seed 77"},
		{[]string{"fault", "renew", "shop", "s", srv, "--ttl", "5m"}, exitPass, "renewed s on shop"},
		{[]string{"fault", "remove", "shop", "s", srv}, exitPass, "removed s from shop"},
		{[]string{"fault", "remove", "shop", "s", srv}, exitBadInput, "toxic not found"},
		{[]string{"fault", "list", srv, "-o", "yaml"}, exitBadInput, "-o must be table or json"},
		{[]string{"fault", "add", "shop", srv, "-t", "latency", "-n", "replay", "--latency-from", results, "--samples", "50"}, exitPass, "added replay (latency"},
		{[]string{"fault", "add", "shop", srv, "-t", "latency", "-n", "r2", "--latency-from", results, "--request", "nope"}, exitBadInput, `has no request "nope" (it has ` + request + `)`},
		{[]string{"fault", "add", "shop", srv, "-t", "latency", "-n", "r2", "--request", request}, exitBadInput, "--request picks the latencies of --latency-from"},
		{[]string{"fault", "add", "shop", srv, "-t", "latency", "-n", "r2", "--latency-from", results, "--request", request}, exitPass, "added r2 (latency"},
		{[]string{"fault", "remove", "shop", "r2", srv}, exitPass, "removed r2"},
		{[]string{"fault", "add", "shop", srv, "-t", "slicer", "--latency-from", results}, exitBadInput, "--latency-from needs --type latency"},
		{[]string{"fault", "add", "shop", srv, "-t", "latency", "-a", "jitter=5", "--latency-from", results}, exitBadInput, "-a jitter cannot go with it"},
		{[]string{"fault", "add", "shop", srv, "-t", "latency", "--latency-from", cfg}, exitBadInput, "reading latencies to replay"},
		{[]string{"fault", "add", "shop", srv, "-t", "latency", "--latency-from", results, "--samples", "0"}, exitBadInput, "samples must be within"},
		{[]string{"fault", "list", "--server=http://127.0.0.1:1"}, exitRuntime, "connection refused"},
		{[]string{"fault", "list", "--server=ftp://x"}, exitBadInput, "must be an http(s) URL"},
	}
	for _, st := range steps {
		code, out, errOut := runCLI(t, st.args...)
		if code != st.code || !strings.Contains(out+errOut, st.want) {
			t.Fatalf("%v: code %d, out %q, err %q; want %d and %q", st.args, code, out, errOut, st.code, st.want)
		}
	}
	code, out, _ := runCLI(t, "fault", "list", srv, "-o", "json")
	var ps []fault.ProxyInfo
	if code != exitPass || json.Unmarshal([]byte(out), &ps) != nil || len(ps) != 1 || len(ps[0].Toxics) != 2 {
		t.Fatalf("list -o json: %d %q", code, out)
	}
	// The replayed latencies are the load run's: each at least the 30 ms
	// the backend slept.
	replay := ps[0].Toxics[1].Attributes.(map[string]any)
	samples := replay["samples"].([]any)
	if replay["distribution"] != "empirical" || len(samples) != 50 || samples[0].(float64) < 29.9 || samples[49].(float64) < samples[0].(float64) {
		t.Fatalf("replay toxic %v", replay)
	}
	if code, _, errOut := runCLI(t, "fault", "remove", "shop", "replay", srv); code != exitPass {
		t.Fatalf("removing replay: %s", errOut)
	}

	// A held fault lives until its holder stops, and then goes.
	c, err := fault.NewClient("http://"+api, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	holdCtx, stopHold := context.WithCancel(context.Background())
	held := make(chan error, 1)
	holdOut := &lockedBuffer{}
	go func() {
		held <- addFault(holdCtx, c, "shop", fault.ToxicRequest{Name: "h", Type: "timeout", LeaseTTL: "30s"}, true, holdOut)
	}()
	for !strings.Contains(holdOut.String(), "holding h, renewing every 10s") {
		select {
		case err := <-held:
			t.Fatalf("hold ended early: %v\n%s", err, holdOut)
		case <-time.After(5 * time.Millisecond):
		}
	}
	stopHold()
	if err := <-held; err != nil || !strings.Contains(holdOut.String(), "removed h from shop") {
		t.Fatalf("hold: %v\n%s", err, holdOut)
	}
	if ps, err := c.Proxies(context.Background()); err != nil || len(ps[0].Toxics) != 1 {
		t.Fatalf("after the hold: %+v, %v", ps, err)
	}

	// Stopping the server ends the fault left, as a shutdown.
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	log := stderr.String()
	if !strings.Contains(log, "seed 77") || !strings.Contains(log, `"reason":"shutdown"`) {
		t.Fatalf("server log lacks the seed or the shutdown end:\n%s", log)
	}
	if code, _, _ := runCLI(t, "fault", "reset", srv); code != exitRuntime {
		t.Fatalf("reset against a stopped server: code %d", code)
	}
}

func TestFaultServeBadInput(t *testing.T) {
	t.Parallel()
	bad := filepath.Join(t.TempDir(), "bad.json")
	os.WriteFile(bad, []byte(`[{"name":"x","upstrem":"y"}]`), 0o600)
	missing := filepath.Join(t.TempDir(), "missing.json")
	os.WriteFile(missing, []byte(`[{"name":"x"}]`), 0o600)
	badName := filepath.Join(t.TempDir(), "name.json")
	os.WriteFile(badName, []byte(`[{"name":"../x","upstream":"127.0.0.1:1"}]`), 0o600)
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"fault", "serve", "--listen", "0.0.0.0:0"}, "needs --token"},
		{[]string{"fault", "serve", "--listen", "127.0.0.1:0", "--config", bad}, `unknown field "upstrem" (known: name, listen, upstream, enabled, mode, max_triggered, toxics)`},
		{[]string{"fault", "serve", "--listen", "127.0.0.1:0", "--config", missing}, "missing required field: upstream at proxy 1"},
		{[]string{"fault", "serve", "--listen", "127.0.0.1:0", "--config", badName}, `proxy name "../x" must start with a letter or digit`},
		{[]string{"fault", "serve", "--listen", "127.0.0.1:0", "--config", "/no/such/file"}, "no such file"},
		{[]string{"fault", "serve", "--listen", "127.0.0.1:0", "--default-ttl", "-1s"}, "default lease ttl must be within"},
		{[]string{"fault", "serve", "--listen", "127.0.0.1:0", "--max-proxies", "-1"}, "max proxies must not be negative"},
		{[]string{"fault", "serve", "--listen", "127.0.0.1:0", "--launch", "svc=sleep 30"}, "--launch needs --allow-process-faults"},
		{[]string{"fault", "serve", "--listen", "127.0.0.1:0", "--allow-process-faults", "--launch", "svc"}, "must be NAME=COMMAND"},
		{[]string{"fault", "serve", "--listen", "127.0.0.1:0", "--allow-process-faults", "--launch", "svc= "}, "must be NAME=COMMAND"},
		{[]string{"fault", "serve", "--listen", "127.0.0.1:0", "--audit-log", "/no/such/dir/audit.log"}, "opening the audit log"},
	} {
		if code, _, errOut := runCLI(t, tt.args...); code != exitBadInput || !strings.Contains(errOut, tt.want) || strings.Contains(errOut, "json: unknown") || strings.Contains(errOut, "Go struct") {
			t.Errorf("%v: code %d (%s), want %d and %q", tt.args, code, errOut, exitBadInput, tt.want)
		}
	}
}

// TestFaultServeHelpDocumentsModes: serve --help tells what HTTP mode is
// and how leases behave, since a proxy's mode is chosen there (or on
// create).
func TestFaultServeHelpDocumentsModes(t *testing.T) {
	t.Parallel()
	code, out, _ := runCLI(t, "fault", "serve", "--help")
	for _, want := range []string{`"mode": "http"`, "toxics are of type http and act\nper request", "X-Relia-Fault", "--default-ttl", "--max-proxies", "stay until removed"} {
		if code != exitPass || !strings.Contains(out, want) {
			t.Errorf("serve --help lacks %q:\n%s", want, out)
		}
	}
	if _, out, _ := runCLI(t, "fault", "create", "--help"); !strings.Contains(out, "--mode") || !strings.Contains(out, "http mode") {
		t.Errorf("create --help lacks the modes:\n%s", out)
	}
}

func TestFaultCLIProcessFaults(t *testing.T) {
	t.Parallel()
	for _, allow := range []bool{true, false} {
		ctx, cancel := context.WithCancel(context.Background())
		ready := make(chan string, 1)
		done := make(chan error, 1)
		auditLog := filepath.Join(t.TempDir(), "audit.log")
		stderr := &lockedBuffer{}
		go func() {
			done <- serveFault(ctx, faultServeOptions{listen: "127.0.0.1:0", seedSet: true, defaultTTL: fault.DefaultLeaseTTL, allowProc: allow,
				launch: launchIf(allow, "svc=sleep 30"), auditLog: auditLog}, stderr, ready)
		}()
		srv := "--server=http://" + <-ready
		fill := filepath.Join(t.TempDir(), "fill")
		if !allow {
			if code, _, errOut := runCLI(t, "fault", "process", "list", srv); code != exitBadInput || !strings.Contains(errOut, "process faults are disabled") {
				t.Fatalf("disabled: code %d %q", code, errOut)
			}
			cancel()
			<-done
			continue
		}
		steps := []struct {
			args []string
			code int
			want string
		}{
			{[]string{"fault", "process", "add", "fill", srv, "-t", "disk_fill", "--path", fill, "--bytes", "1000", "--ttl", "1m"}, exitPass, "started fill (disk_fill), lease 1m0s"},
			{[]string{"fault", "process", "add", "x", srv, "-t", "disk_fill", "--bytes", "1"}, exitBadInput, "disk_fill needs a path"},
			{[]string{"fault", "process", "list", srv}, exitPass, fill},
			{[]string{"fault", "process", "renew", "fill", srv, "--ttl", "2m"}, exitPass, "renewed fill"},
			{[]string{"fault", "process", "remove", "fill", srv}, exitPass, "removed fill"},
			{[]string{"fault", "process", "remove", "fill", srv}, exitBadInput, "process fault not found"},
			{[]string{"fault", "process", "add", "bounce", srv, "-t", "restart", "--launched", "svc"}, exitPass, "started bounce (restart)"},
			{[]string{"fault", "process", "list", srv}, exitPass, "bounce  restart  svc"},
			{[]string{"fault", "process", "add", "x", srv, "-t", "restart", "--launched", "nobody"}, exitBadInput, `no launched process "nobody"`},
		}
		for _, st := range steps {
			code, out, errOut := runCLI(t, st.args...)
			if code != st.code || !strings.Contains(out+errOut, st.want) {
				t.Fatalf("%v: code %d, out %q, err %q", st.args, code, out, errOut)
			}
		}
		if _, err := os.Stat(fill); !os.IsNotExist(err) {
			t.Fatalf("disk fill left after remove: %v", err)
		}
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		// The audit log went to its file, the lines for people to stderr.
		log, err := os.ReadFile(auditLog)
		if err != nil || !strings.Contains(string(log), `"msg":"fault ended","fault":"fill","type":"disk_fill","reason":"removed"`) {
			t.Fatalf("audit log %q: %v", log, err)
		}
		if out := stderr.String(); !strings.Contains(out, "launched svc as pid") || strings.Contains(out, `"msg"`) {
			t.Fatalf("stderr %q", out)
		}
	}
}

func launchIf(ok bool, spec string) []string {
	if !ok {
		return nil
	}
	return []string{spec}
}

func FuzzFaultParseAttrs(f *testing.F) {
	for _, seed := range []string{"latency=100", "rate=0.5", "path=/pay/**", "a=b=c", "=1", "novalue", "x=", "n=9223372036854775808", "r=NaN", "r=-Inf", "r=1e400"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, kv string) {
		m, err := parseAttrs([]string{kv})
		if err != nil {
			return
		}
		k, v, _ := strings.Cut(kv, "=")
		got, ok := m[k]
		if !ok || len(m) != 1 {
			t.Fatalf("%q parsed to %v", kv, m)
		}
		// Whatever the value became, it reads back as what was written,
		// so the server sees the number or the string the user meant.
		if s, isStr := got.(string); isStr && s != v {
			t.Fatalf("%q: string %q", kv, s)
		}
		if _, err := json.Marshal(m); err != nil {
			t.Fatalf("%q: attributes the client cannot send: %v", kv, err)
		}
	})
}

// loadResults runs relia load against a backend that answers GET /slow
// after sleep and returns the path of the results file it wrote and the
// name of its request.
func loadResults(t *testing.T, sleep time.Duration) (path, request string) {
	t.Helper()
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { time.Sleep(sleep) }))
	defer backend.Close()
	out := filepath.Join(t.TempDir(), "results.json")
	if code, stdout, stderr := runCLI(t, "load", backend.URL+"/slow", "--vus", "2", "--duration", "500ms", "--out", out); code != exitPass {
		t.Fatalf("relia load: code %d\n%s%s", code, stdout, stderr)
	}
	return out, "GET " + backend.URL + "/slow"
}
