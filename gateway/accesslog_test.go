package gateway

import (
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
)

func TestAccessLogLineIsJSON(t *testing.T) {
	t.Parallel()
	var logs syncBuffer
	be := newBackend(t, "svc")
	g, url := startGateway(t, `  upstreams: [{name: svc, targets: [{address: "`+be.addr()+`"}]}]
  routes: [{name: r, upstream: svc}]
`, Options{AccessLog: &logs})
	get(t, "GET", url+"/a%22b%5Cc%0A%E2%80%A8%FF?secret=1", map[string]string{"X-Request-Id": "req-1", "Authorization": "Bearer hush"})
	if err := g.Shutdown(t.Context()); err != nil {
		t.Fatal(err)
	}
	line := strings.TrimSpace(logs.String())
	var e map[string]any
	if err := json.Unmarshal([]byte(line), &e); err != nil {
		t.Fatalf("access log line %q: %v", line, err)
	}
	want := map[string]any{
		"level": "INFO", "msg": "request", "request_id": "req-1", "route": "r", "upstream": be.addr(),
		"method": "GET", "path": "/a\"b\\c\n\u2028\ufffd", "client_ip": "127.0.0.1", "status": 200.0, "attempts": 1.0,
		"bytes_in": 0.0, "bytes_out": 3.0, "reason": "", "policy": "", "tenant": "",
	}
	for k, v := range want {
		if e[k] != v {
			t.Errorf("%s = %#v, want %#v", k, e[k], v)
		}
	}
	for _, k := range []string{"time", "trace_id", "latency_ms"} {
		if _, ok := e[k]; !ok {
			t.Errorf("no %s in %s", k, line)
		}
	}
	if strings.Contains(line, "hush") || strings.Contains(line, "secret") {
		t.Errorf("the line leaks a header or the query: %s", line)
	}
}

func FuzzAppendJSONString(f *testing.F) {
	for _, s := range []string{"", "plain", "a\"b\\c", "\x00\x1f\n\t", "\u2028\u2029", "\xff\xfe", "héllo wörld", "<&>"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		out := appendJSONStr(nil, s)
		var got string
		if err := json.Unmarshal(out, &got); err != nil {
			t.Fatalf("%q encodes as invalid JSON %s: %v", s, out, err)
		}
		ref, _ := json.Marshal(s)
		var want string
		json.Unmarshal(ref, &want)
		if got != want {
			t.Errorf("%q decodes as %q, encoding/json's as %q", s, got, want)
		}
	})
}

func TestAccessLogKeepsEveryLineAtShutdown(t *testing.T) {
	t.Parallel()
	var logs syncBuffer
	be := newBackend(t, "svc")
	g, url := startGateway(t, `  upstreams: [{name: svc, targets: [{address: "`+be.addr()+`"}]}]
  routes: [{name: r, upstream: svc}]
`, Options{AccessLog: &logs})
	const n = 300
	var wg sync.WaitGroup
	for w := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range n / 6 {
				get(t, "GET", fmt.Sprintf("%s/%d/%d", url, w, i), nil)
			}
		}()
	}
	wg.Wait()
	if err := g.Shutdown(t.Context()); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(logs.String(), "\n"), "\n")
	if len(lines) != n {
		t.Fatalf("%d access log lines after a graceful shutdown, want %d", len(lines), n)
	}
	for _, l := range lines {
		if !json.Valid([]byte(l)) {
			t.Fatalf("line %q is not JSON", l)
		}
	}
}
