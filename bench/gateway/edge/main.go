// Command edge holds connections against a relia gateway process the way
// an attacker would to exhaust its memory: each sends only the head of a
// POST announcing a 10 MB body, then nothing. It reports the gateway's
// resident memory with them open and the latency of normal requests sent
// meanwhile, and fails (exit 1) when the memory is 100 MB or more or a
// normal request's p99 is 10 ms or more: the gateway's memory follows the
// bytes it received, not the lengths announced.
//
//	cd bench && go run ./gateway/edge -connections 1000
//
// It is run on demand, never by go test: a test cannot time latency on a
// shared machine.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/relia-dev/relia/bench/internal/harness"
)

func main() {
	conns := flag.Int("connections", 1000, "connections that announce a body and send none")
	requests := flag.Int("requests", 500, "normal requests timed while they are open")
	reliaBin := flag.String("relia", "", "the relia binary to run (default: built from the repository)")
	flag.Parse()
	if err := run(*conns, *requests, *reliaBin); err != nil {
		fmt.Fprintln(os.Stderr, "bench/gateway/edge:", err)
		os.Exit(1)
	}
}

func run(conns, requests int, reliaBin string) error {
	// Every connection is a descriptor here and one in the gateway, which
	// inherits this limit.
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err == nil && lim.Cur < lim.Max {
		lim.Cur = lim.Max
		syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim)
	}
	out, err := filepath.Abs(filepath.Join("out", "edge"))
	if err != nil {
		return err
	}
	os.RemoveAll(out)
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	backend, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	defer backend.Close()
	go http.Serve(backend, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		io.WriteString(w, "ok\n")
	}))

	relia, err := harness.Relia(out, reliaBin)
	if err != nil {
		return err
	}
	port := harness.FreePort()
	cfg := fmt.Sprintf(`kind: Gateway
version: relia/v1
spec:
  listeners: [{address: "127.0.0.1:%d"}]
  admin: {address: "off"}
  server: {readHeaderTimeout: 60s}
  accessLog: {path: %q}
  upstreams: [{name: b, targets: [{address: %q}]}]
  routes: [{name: all, upstream: b}]
`, port, filepath.Join(out, "access.log"), backend.Addr().String())
	if err := os.WriteFile(filepath.Join(out, "gateway.yaml"), []byte(cfg), 0o644); err != nil {
		return err
	}
	gw := exec.Command(relia, "gateway", "--watch", "0", "--config", filepath.Join(out, "gateway.yaml"))
	gw.Stdout, gw.Stderr = os.Stderr, os.Stderr
	gw.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := gw.Start(); err != nil {
		return err
	}
	defer func() {
		gw.Process.Signal(syscall.SIGTERM)
		gw.Wait()
	}()
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	if err := waitPort(addr); err != nil {
		return err
	}
	idle := rss(gw.Process.Pid)

	held := make([]net.Conn, 0, conns)
	defer func() {
		for _, c := range held {
			c.Close()
		}
	}()
	for range conns {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			return fmt.Errorf("after %d connections: %w", len(held), err)
		}
		held = append(held, c)
		if _, err := io.WriteString(c, "POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 10000000\r\n\r\n"); err != nil {
			return err
		}
	}
	time.Sleep(time.Second) // every head read
	loaded := rss(gw.Process.Pid)

	c, err := net.Dial("tcp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	br := bufio.NewReader(c)
	lat := make([]time.Duration, 0, requests)
	for range requests {
		start := time.Now()
		if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
			return err
		}
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			return err
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			return fmt.Errorf("a normal request got %d", resp.StatusCode)
		}
		lat = append(lat, time.Since(start))
	}
	slices.Sort(lat)
	p50, p99, worst := lat[len(lat)/2], lat[len(lat)*99/100], lat[len(lat)-1]
	fmt.Printf("gateway RSS: %.1f MB idle, %.1f MB with %d connections each announcing 10 MB and sending nothing\n", idle/1e6, loaded/1e6, conns)
	fmt.Printf("normal requests meanwhile (%d, one connection): p50 %v, p99 %v, max %v\n", requests, p50, p99, worst)
	if loaded >= 100e6 || p99 >= 10*time.Millisecond {
		return fmt.Errorf("over the bound: RSS %.1f MB (limit 100), p99 %v (limit 10ms)", loaded/1e6, p99)
	}
	return nil
}

// rss returns a process's resident memory in bytes, from /proc.
func rss(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			f := strings.Fields(v)
			kb, _ := strconv.ParseFloat(f[0], 64)
			return kb * 1024
		}
	}
	return 0
}

func waitPort(addr string) error {
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("%s never opened", addr)
}
