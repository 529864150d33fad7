//go:build linux

package promtest

import (
	"bytes"
	"encoding/json"
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

// Tool returns the path of a program of Debian's prometheus package
// (prometheus, promtool), skipping the test where it is not installed,
// except in CI (CI set), where a missing tool fails the test.
func Tool(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s is not installed (make test-deps installs Debian's prometheus package)", name)
		}
		t.Skipf("%s is not installed; make test-deps installs it", name)
	}
	return p
}

// Start runs Debian's prometheus on a free loopback port with config (a
// prometheus.yml), storage of its own and the extra flags args
// (--web.enable-remote-write-receiver, ...), waits until it is ready and
// returns its URL. It stops when the test ends; the kernel kills it if the
// test binary dies first. Its log is shown when the test failed.
func Start(t testing.TB, config string, args ...string) string {
	t.Helper()
	return StartOn(t, config, filepath.Join(t.TempDir(), "data"), args...)
}

// StartOn is Start on the TSDB in data, which may hold blocks written
// beforehand (promtool tsdb create-blocks-from ...).
func StartOn(t testing.TB, config, data string, args ...string) string {
	t.Helper()
	bin := Tool(t, "prometheus")
	dir := t.TempDir()
	cfg := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfg, []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	var logs bytes.Buffer
	cmd := exec.Command(bin, append([]string{"--config.file=" + cfg, "--storage.tsdb.path=" + data,
		"--web.listen-address=" + addr, "--log.level=warn"}, args...)...)
	cmd.Stdout, cmd.Stderr = &logs, &logs
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("prometheus's log:\n%s", logs.String())
		}
	})
	url := "http://" + addr
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(url + "/-/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return url
			}
		}
		select {
		case <-exited:
			t.Fatalf("prometheus exited: %s", logs.String())
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("prometheus not ready in 30s: %s", logs.String())
		}
	}
}

// Query runs the instant query q against the Prometheus at base (a URL)
// and returns the value of its one result; ok is false when the query
// failed or did not return exactly one series.
func Query(base, q string) (v float64, ok bool) {
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
	if json.NewDecoder(resp.Body).Decode(&out) != nil || len(out.Data.Result) != 1 {
		return 0, false
	}
	s, _ := out.Data.Result[0].Value[1].(string)
	v, err = strconv.ParseFloat(s, 64)
	return v, err == nil
}
