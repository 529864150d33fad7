package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// TestPrometheusScrapesGateway runs Debian's prometheus on its own
// loopback port against the admin API's /metrics: after a known number of
// requests, a PromQL query over the scraped series returns that count.
func TestPrometheusScrapesGateway(t *testing.T) {
	bin, err := exec.LookPath("prometheus")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("prometheus is not installed (make test installs Debian's prometheus package)")
		}
		t.Skip("prometheus is not installed; make test installs it")
	}
	b := newBackend(t, "b")
	g, gw := startGateway(t, fmt.Sprintf(`
  upstreams: [{name: b, targets: [{address: %s}]}]
  routes: [{name: counted, upstream: b}]
`, b.addr()), Options{})
	const n = 37
	for range n {
		if status, _, _ := get(t, "GET", gw+"/", nil); status != 200 {
			t.Fatal(status)
		}
	}
	dir := t.TempDir()
	cfg := fmt.Sprintf("global: {scrape_interval: 1s}\nscrape_configs:\n  - job_name: gateway\n    static_configs: [{targets: [%q]}]\n", g.AdminAddr())
	os.WriteFile(filepath.Join(dir, "prometheus.yml"), []byte(cfg), 0o644)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	var logs bytes.Buffer
	cmd := exec.Command(bin, "--config.file="+filepath.Join(dir, "prometheus.yml"), "--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr, "--log.level=warn")
	cmd.Stdout, cmd.Stderr = &logs, &logs
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("prometheus's log:\n%s", logs.String())
		}
	})
	q := `sum(http_server_request_duration_seconds_count{http_route="counted",http_response_status_code="200"})`
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for {
		if v, ok := promQuery("http://"+addr, q); ok && v == n {
			return
		} else if ctx.Err() != nil {
			t.Fatalf("query %s: got %v (ok %v), want %d", q, v, ok, n)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func promQuery(base, q string) (float64, bool) {
	resp, err := http.Get(base + "/api/v1/query?query=" + url.QueryEscape(q))
	if err != nil {
		return 0, false
	}
	defer resp.Body.Close()
	var out struct {
		Data struct {
			Result []struct {
				Value [2]any `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	if json.NewDecoder(resp.Body).Decode(&out) != nil || len(out.Data.Result) == 0 {
		return 0, false
	}
	s, _ := out.Data.Result[0].Value[1].(string)
	v, err := strconv.ParseFloat(s, 64)
	return v, err == nil
}
