// Command fault compares relia's fault proxy with Toxiproxy, pinned to
// cores the way docs/benchmarks.md describes: wrk on CPU 0, the proxy and
// nginx on CPU 1, one run each.
//
//	cd bench && go run ./fault -duration 10s
//
// It measures wrk -> nginx directly, through Toxiproxy (TCP, no toxic),
// through relia (TCP, no toxic), through relia with a latency=0 toxic, and
// through relia in HTTP mode with a 0% HTTP fault, then prints throughput
// ratios and the p50 latency relia's latency=0 toxic adds (measured with one
// connection so queueing does not hide it). Missing tools are installed:
// nginx-light and wrk with apt-get (-install), toxiproxy-server with
// go install. It is run on demand, never by go test.
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"
)

const toxiproxyServerModule = "github.com/Shopify/toxiproxy/v2/cmd/server@v2.5.0"

func main() {
	duration := flag.Duration("duration", 10*time.Second, "length of each wrk run")
	conns := flag.Int("connections", 50, "wrk connections for throughput")
	install := flag.Bool("install", true, "apt-get install nginx-light and wrk when missing")
	flag.Parse()
	if err := run(*duration, *conns, *install); err != nil {
		fmt.Fprintln(os.Stderr, "bench/fault:", err)
		os.Exit(1)
	}
}

type result struct {
	name    string
	rps     float64
	p50     time.Duration
	p50one  time.Duration // with one connection
	comment string
}

func run(d time.Duration, conns int, install bool) error {
	out, err := filepath.Abs("out/fault")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return fmt.Errorf("making %s: %w", out, err)
	}
	if err := ensureTools(install, out); err != nil {
		return err
	}
	relia := filepath.Join(out, "relia")
	if err := runCmd("..", "go", "build", "-o", relia, "./cmd/relia"); err != nil {
		return fmt.Errorf("building relia: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	defer stopAll()

	nginxPort, reliaAPI, reliaTCP, reliaHTTP, toxAPI, toxTCP := freePort(), freePort(), freePort(), freePort(), freePort(), freePort()
	if err := startNginx(ctx, out, nginxPort); err != nil {
		return err
	}
	upstream := fmt.Sprintf("127.0.0.1:%d", nginxPort)
	cfg := filepath.Join(out, "proxies.json")
	os.WriteFile(cfg, []byte(fmt.Sprintf(`[{"name":"tcp","listen":"127.0.0.1:%d","upstream":"%s"},{"name":"web","listen":"127.0.0.1:%d","upstream":"%s","mode":"http"}]`,
		reliaTCP, upstream, reliaHTTP, upstream)), 0o644)
	if err := startPinned(ctx, "1", filepath.Join(out, "relia.log"), relia, "fault", "serve", "--listen", fmt.Sprintf("127.0.0.1:%d", reliaAPI),
		"--config", cfg, "--seed", "1", "--default-ttl", "1h"); err != nil {
		return err
	}
	if err := startPinned(ctx, "1", filepath.Join(out, "toxiproxy.log"), filepath.Join(out, "toxiproxy-server"),
		"-host", "127.0.0.1", "-port", strconv.Itoa(toxAPI)); err != nil {
		return err
	}
	reliaURL, toxURL := fmt.Sprintf("http://127.0.0.1:%d", reliaAPI), fmt.Sprintf("http://127.0.0.1:%d", toxAPI)
	for _, u := range []string{reliaURL + "/version", toxURL + "/version", fmt.Sprintf("http://%s/", upstream)} {
		if err := waitHTTP(u); err != nil {
			return err
		}
	}
	if err := post(toxURL+"/proxies", fmt.Sprintf(`{"name":"tcp","listen":"127.0.0.1:%d","upstream":"%s"}`, toxTCP, upstream), 201); err != nil {
		return err
	}
	// The HTTP-mode proxy gets a rule that matches every request and
	// fires on none, so the filter's decision is on the measured path.
	if err := post(reliaURL+"/proxies/web/toxics", `{"name":"none","type":"http","toxicity":0,"attributes":{"abort_status":503}}`, 200); err != nil {
		return err
	}

	measure := func(name string, port int) (result, error) {
		url := fmt.Sprintf("http://127.0.0.1:%d/", port)
		r := result{name: name}
		var err error
		if r.rps, r.p50, err = wrk(url, conns, d); err != nil {
			return r, err
		}
		_, r.p50one, err = wrk(url, 1, d/2)
		return r, err
	}
	var results []result
	for _, m := range []struct {
		name string
		port int
		pre  func() error
	}{
		{"wrk -> nginx (direct)", nginxPort, nil},
		{"wrk -> toxiproxy (tcp, no toxic) -> nginx", toxTCP, nil},
		{"wrk -> relia (tcp, no toxic) -> nginx", reliaTCP, nil},
		{"wrk -> relia (tcp, latency=0 toxic) -> nginx", reliaTCP, func() error {
			return post(reliaURL+"/proxies/tcp/toxics", `{"type":"latency","attributes":{"latency":0}}`, 200)
		}},
		{"wrk -> relia (http mode, 0% fault) -> nginx", reliaHTTP, nil},
	} {
		if m.pre != nil {
			if err := m.pre(); err != nil {
				return err
			}
		}
		r, err := measure(m.name, m.port)
		if err != nil {
			return fmt.Errorf("%s: %w", m.name, err)
		}
		results = append(results, r)
		fmt.Fprintf(os.Stderr, "%-48s %10.0f req/s  p50 %v  p50 (1 conn) %v\n", r.name, r.rps, r.p50, r.p50one)
	}
	direct, tox, tcp, lat0 := results[0], results[1], results[2], results[3]
	fmt.Printf("| path | req/s | ratio to direct | p50 (%d conns) | p50 (1 conn) |\n|---|---|---|---|---|\n", conns)
	for _, r := range results {
		fmt.Printf("| %s | %.0f | %.2f | %v | %v |\n", r.name, r.rps, r.rps/direct.rps, r.p50, r.p50one)
	}
	added := lat0.p50one - direct.p50one
	fmt.Printf("\nrelia tcp / toxiproxy throughput: %.2fx (goal >= 1.5x)\n", tcp.rps/tox.rps)
	fmt.Printf("p50 added by relia with a latency=0 toxic (1 conn, vs direct): %v (goal <= 50us)\n", added)
	return nil
}

// ensureTools installs what is missing.
func ensureTools(install bool, out string) error {
	var missing []string
	for bin, pkg := range map[string]string{"nginx": "nginx-light", "wrk": "wrk"} {
		if _, err := exec.LookPath(bin); err != nil {
			missing = append(missing, pkg)
		}
	}
	if len(missing) > 0 {
		if !install {
			return fmt.Errorf("missing %v; apt-get install -y %s", missing, strings.Join(missing, " "))
		}
		if err := runCmd("", "apt-get", append([]string{"install", "-y"}, missing...)...); err != nil {
			if err := runCmd("", "apt-get", "update"); err != nil {
				return fmt.Errorf("apt-get update: %w", err)
			}
			if err := runCmd("", "apt-get", append([]string{"install", "-y"}, missing...)...); err != nil {
				return fmt.Errorf("installing %v: %w", missing, err)
			}
		}
	}
	if _, err := exec.LookPath("taskset"); err != nil {
		return errors.New("taskset is missing (util-linux)")
	}
	tox := filepath.Join(out, "toxiproxy-server")
	if _, err := os.Stat(tox); err != nil {
		cmd := exec.Command("go", "install", toxiproxyServerModule)
		cmd.Env = append(os.Environ(), "GOBIN="+out, "GOFLAGS=-mod=mod")
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("go install %s: %w", toxiproxyServerModule, err)
		}
		if err := os.Rename(filepath.Join(out, "server"), tox); err != nil {
			return err
		}
	}
	return nil
}

func startNginx(ctx context.Context, out string, port int) error {
	conf := filepath.Join(out, "nginx.conf")
	os.MkdirAll(filepath.Join(out, "nginx"), 0o755)
	text := fmt.Sprintf(`worker_processes 1;
daemon off;
pid %[1]s/nginx.pid;
error_log %[1]s/nginx-error.log;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path %[1]s/nginx;
  keepalive_requests 1000000;
  server {
    listen 127.0.0.1:%[2]d;
    location / { return 200 "ok\n"; }
  }
}
`, filepath.Join(out, "nginx"), port)
	if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
		return err
	}
	return startPinned(ctx, "1", filepath.Join(out, "nginx.log"), "nginx", "-c", conf, "-p", out)
}

// started holds what startPinned started, for stopAll.
var started []*exec.Cmd

// stopAll ends the started processes with SIGTERM (nginx's master then
// stops its worker; relia ends its faults) and waits for them.
func stopAll() {
	for _, cmd := range started {
		cmd.Process.Signal(syscall.SIGTERM)
	}
	for _, cmd := range started {
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	}
}

// startPinned starts a process pinned to cpu (taskset execs it, so the
// pid is the program's); stopAll ends it.
func startPinned(ctx context.Context, cpu, logPath, name string, args ...string) error {
	logf, err := os.Create(logPath)
	if err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, "taskset", append([]string{"-c", cpu, name}, args...)...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("starting %s: %w", name, err)
	}
	started = append(started, cmd)
	return nil
}

var (
	rpsRe = regexp.MustCompile(`Requests/sec:\s+([0-9.]+)`)
	p50Re = regexp.MustCompile(`\n\s+50%\s+([0-9.]+)(us|ms|s)`)
)

// wrk runs wrk pinned to CPU 0 and returns req/s and the p50 latency.
func wrk(url string, conns int, d time.Duration) (float64, time.Duration, error) {
	var buf bytes.Buffer
	cmd := exec.Command("taskset", "-c", "0", "wrk", "-t1", "-c"+strconv.Itoa(conns), fmt.Sprintf("-d%ds", max(1, int(d.Seconds()))), "--latency", url)
	cmd.Stdout, cmd.Stderr = &buf, &buf
	if err := cmd.Run(); err != nil {
		return 0, 0, fmt.Errorf("wrk: %w\n%s", err, buf.String())
	}
	m := rpsRe.FindStringSubmatch(buf.String())
	l := p50Re.FindStringSubmatch(buf.String())
	if m == nil || l == nil {
		return 0, 0, fmt.Errorf("reading wrk output:\n%s", buf.String())
	}
	if strings.Contains(buf.String(), "Non-2xx") || strings.Contains(buf.String(), "Socket errors") {
		fmt.Fprintf(os.Stderr, "warning: wrk saw errors:\n%s\n", buf.String())
	}
	rps, _ := strconv.ParseFloat(m[1], 64)
	v, _ := strconv.ParseFloat(l[1], 64)
	unit := map[string]time.Duration{"us": time.Microsecond, "ms": time.Millisecond, "s": time.Second}[l[2]]
	return rps, time.Duration(v * float64(unit)), nil
}

func freePort() int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func waitHTTP(url string) error {
	deadline := time.Now().Add(15 * time.Second)
	for {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s never answered: %w", url, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func post(url, body string, want int) error {
	resp, err := http.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		return fmt.Errorf("POST %s: %d %s", url, resp.StatusCode, b)
	}
	return nil
}

func runCmd(dir, name string, args ...string) error {
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	return cmd.Run()
}
