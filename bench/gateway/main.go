// Command gateway compares relia's gateway with nginx, haproxy and caddy as
// reverse proxies to the same nginx backend (nginx three times: in a
// process of its own like every other proxy, once as configured out of the
// box and once asked for the fields and the access log the gateway writes
// unasked, and inside the backend's worker), pinned
// the way docs/benchmarks.md describes, 50 connections, a 3-byte body, in
// one of two topologies: shared-core (the default: wrk on CPU 0, the proxy
// under test and the backend on CPU 1) or own-core (wrk and the backend on
// CPU 0, the proxy alone on CPU 1, so that the proxy, not preemption by
// its backend, sets the figure). Besides req/s and the proxy's CPU per
// request, each proxy's row gives the backend's CPU per request behind it
// and how busy each CPU was: the one near 100% saturated first.
//
//	cd bench && go run ./gateway -duration 5s -rounds 3
//	cd bench && go run ./gateway -duration 5s -rounds 3 -topology own-core
//	cd bench && go run ./gateway -topology own-core -pairs 30 -duration 2s
//
// -baseline PATH adds an earlier relia binary on the event loop with the
// same config, so that a change's effect is read within one run; with
// -pairs, each pair becomes a set of three and the gateway is also read
// against the baseline, with its interval.
//
// The gateway runs as a real user would run it: metrics on the admin
// listener, the JSON access log written to a file, a breaker per target and
// a retry budget on the route, once on each listener engine ("relia
// gateway": engine: auto, the default, which is the event loop on Linux;
// "relia gateway (goroutines)": engine: goroutines). Each round measures every proxy once, in an
// order that rotates between rounds; figures are medians. Then, at half the
// gateway's measured maximum, the latency the gateway adds: hey sends a
// constant rate (-q per connection) directly to nginx and through the
// gateway, and relia load's open model does the same with at most as many
// requests in flight as there are connections, round by round, and through
// nginx as a proxy for reference; the p99 difference is the latency the
// gateway adds. Beside the peers run floors (gateway/floor):
// featureless Go proxies on fasthttp and on an epoll loop, which show what
// the HTTP engine costs by itself, and the epoll loop doing the config's
// per-request work (request id, forwarding headers, breaker, budget,
// histograms, access log), an estimate of the gateway on an event loop.
// Each proxy's CPU time per request is read from /proc. A peer that is not
// installed is skipped and named. It is run on demand, never by go test.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/relia-dev/relia/bench/internal/harness"
	"github.com/relia-dev/relia/bench/internal/proc"
	"github.com/relia-dev/relia/load"
	"github.com/relia-dev/relia/outcome"
)

func main() {
	duration := flag.Duration("duration", 5*time.Second, "length of each wrk run")
	rounds := flag.Int("rounds", 3, "rounds; each measures every proxy once")
	conns := flag.Int("connections", 50, "connections")
	tolerate := flag.Bool("tolerate-errors", false, "report wrk's socket errors and non-2xx answers per proxy instead of stopping, and skip the latency runs (for runs with many connections, where some peers time out)")
	baseline := flag.String("baseline", "", "a relia binary (an earlier build) to measure too, on the event loop with the same config, as \"relia (loop, baseline)\": a change's effect read in one run")
	topology := flag.String("topology", "shared", "shared: wrk on CPU 0, proxy and backend on CPU 1; own-core: wrk and backend on CPU 0, the proxy alone on CPU 1")
	flag.IntVar(&pairs, "pairs", 0, "instead of the rounds, this many pairs of -duration runs of nginx as a proxy and the gateway, alternated, and the medians of their ratios (own-core reads CPU 1 as the proxy's whole cost)")
	flag.Parse()
	if *rounds < 1 || *duration < time.Second || *conns < 1 || (*topology != "shared" && *topology != "own-core") {
		fmt.Fprintln(os.Stderr, "bench/gateway: -rounds, -duration (>= 1s) and -connections must be positive; -topology is shared or own-core")
		os.Exit(2)
	}
	backendCPU = "1"
	if *topology == "own-core" {
		backendCPU = "0"
	}
	if err := run(*duration, *rounds, *conns, *tolerate, *baseline); err != nil {
		fmt.Fprintln(os.Stderr, "bench/gateway:", err)
		os.Exit(1)
	}
}

// backendCPU is the CPU the nginx backend runs on: "1" beside the proxy
// (shared-core) or "0" beside wrk (own-core).
var backendCPU = "1"

// pairs is -pairs.
var pairs int

type proxy struct {
	name       string
	port       int
	pid        int // for CPU per request
	rps        []float64
	cpuPerReq  []float64
	backendReq []float64 // the backend's CPU per request behind this proxy
	busy       [2][]float64
	errs       int64 // wrk's socket errors and non-2xx answers, with -tolerate-errors
}

func run(d time.Duration, rounds, conns int, tolerate bool, baseline string) error {
	for _, bin := range []string{"nginx", "wrk", "taskset"} {
		if _, err := exec.LookPath(bin); err != nil {
			return fmt.Errorf("%s is required: %w", bin, err)
		}
	}
	out, err := filepath.Abs(filepath.Join("out", "gateway"))
	if err != nil {
		return err
	}
	os.RemoveAll(out)
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var procs []*exec.Cmd
	defer func() {
		for _, p := range procs {
			p.Process.Signal(syscall.SIGTERM)
			p.Wait()
		}
	}()
	startOn := func(cpu, log string, args ...string) (int, error) {
		cmd := exec.CommandContext(ctx, "taskset", append([]string{"-c", cpu}, args...)...)
		f, err := os.Create(filepath.Join(out, log))
		if err != nil {
			return 0, err
		}
		cmd.Stdout, cmd.Stderr = f, f
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		if err := cmd.Start(); err != nil {
			return 0, fmt.Errorf("starting %s: %w", args[0], err)
		}
		procs = append(procs, cmd)
		return cmd.Process.Pid, nil // taskset and env exec, so this is the proxy's pid
	}
	start := func(log string, args ...string) (int, error) { return startOn("1", log, args...) }

	backend, nginxProxy, nginxShared, haproxyPort, caddyPort, gwPort, adminPort := harness.FreePort(), harness.FreePort(), harness.FreePort(), harness.FreePort(), harness.FreePort(), harness.FreePort(), harness.FreePort()
	nginxFields := harness.FreePort()
	upstream := fmt.Sprintf("127.0.0.1:%d", backend)
	// Two nginx instances: the backend (which also serves a proxy in its
	// own worker, "in backend": no process switch between proxy and
	// backend, which no other proxy here gets) and nginx as a reverse proxy
	// in a process of its own, set up as every other proxy is.
	// nginx keeps at most keepalive idle upstream connections and closes
	// the rest after each request: as many as there are client
	// connections, so it reuses them as every other proxy here does.
	keepalive := max(64, conns)
	nginxConf := func(name, servers string) (string, error) {
		dir := filepath.Join(out, name)
		if err := os.MkdirAll(filepath.Join(dir, "tmp"), 0o755); err != nil {
			return "", err
		}
		conf := fmt.Sprintf(`worker_processes 1;
daemon off;
pid %[1]s/nginx.pid;
error_log %[1]s/nginx-error.log;
events { worker_connections %[5]d; }
http {
  access_log off;
  client_body_temp_path %[1]s/tmp; proxy_temp_path %[1]s/tmp; fastcgi_temp_path %[1]s/tmp; uwsgi_temp_path %[1]s/tmp; scgi_temp_path %[1]s/tmp;
  upstream backend { server %[2]s; keepalive %[4]d; }
%[3]s}
`, dir, upstream, servers, keepalive, max(4096, 4*conns))
		path := filepath.Join(dir, "nginx.conf")
		return path, os.WriteFile(path, []byte(conf), 0o644)
	}
	proxyServer := func(port int) string {
		return fmt.Sprintf("  server { listen 127.0.0.1:%d; location / { proxy_pass http://backend; proxy_http_version 1.1; proxy_set_header Connection \"\"; } }\n", port)
	}
	// nginx asked for what the gateway does unasked, so that wrk and the
	// backend read the same fields behind both: the client's Host, a
	// request id sent on and echoed, a traceparent, X-Forwarded-For and
	// -Proto; and a JSON access line per request to a file, buffered and
	// flushed as the gateway's is (64 KiB or 200 ms). nginx cannot make a
	// span id without a tracing module: its traceparent carries the
	// request id as the trace id and a fixed parent id (the same bytes,
	// not the same meaning).
	fieldsServer := func(port int) string {
		return fmt.Sprintf(`  log_format relia escape=json '{"time":"$time_iso8601","level":"INFO","msg":"request","request_id":"$request_id","route":"all","upstream":"$upstream_addr","method":"$request_method","path":"$uri","client_ip":"$remote_addr","status":$status,"latency_ms":$request_time,"bytes_in":$request_length,"bytes_out":$bytes_sent}';
  server {
    listen 127.0.0.1:%d;
    access_log %s relia buffer=64k flush=200ms;
    location / {
      proxy_pass http://backend; proxy_http_version 1.1; proxy_set_header Connection "";
      proxy_set_header Host $http_host;
      proxy_set_header X-Request-Id $request_id;
      proxy_set_header Traceparent 00-$request_id-0000000000000001-01;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      proxy_set_header X-Forwarded-Proto $scheme;
      add_header X-Request-Id $request_id always;
    }
  }
`, port, filepath.Join(out, "nginx-fields-access.log"))
	}
	backendConf, err := nginxConf("nginx-backend", fmt.Sprintf("  server { listen 127.0.0.1:%d; location / { return 200 \"ok\\n\"; } }\n", backend)+proxyServer(nginxShared))
	if err != nil {
		return err
	}
	proxyConf, err := nginxConf("nginx-proxy", proxyServer(nginxProxy))
	if err != nil {
		return err
	}
	fieldsConf, err := nginxConf("nginx-fields", fieldsServer(nginxFields))
	if err != nil {
		return err
	}
	backendPID, err := startOn(backendCPU, "nginx-backend.log", "nginx", "-c", backendConf, "-p", filepath.Dir(backendConf))
	if err != nil {
		return err
	}
	nginxPID, err := start("nginx-proxy.log", "nginx", "-c", proxyConf, "-p", filepath.Dir(proxyConf))
	if err != nil {
		return err
	}
	fieldsPID, err := start("nginx-fields.log", "nginx", "-c", fieldsConf, "-p", filepath.Dir(fieldsConf))
	if err != nil {
		return err
	}
	// "in backend" shares its process with the backend, so its CPU cannot
	// be told apart and is not shown.
	proxies := []*proxy{{name: "nginx (proxy)", port: nginxProxy, pid: nginxPID}, {name: "nginx (relia's fields)", port: nginxFields, pid: fieldsPID}}
	var skipped []string
	if backendCPU == "1" {
		// Beside wrk on CPU 0 it would not be a proxy on its own core.
		proxies = append(proxies, &proxy{name: "nginx (in backend)", port: nginxShared})
	} else {
		skipped = append(skipped, "nginx (in backend): its proxy shares the backend's CPU 0 with wrk in this topology")
	}

	if _, err := exec.LookPath("haproxy"); err == nil {
		cfg := fmt.Sprintf("global\n  nbthread 1\ndefaults\n  mode http\n  timeout connect 5s\n  timeout client 30s\n  timeout server 30s\n  http-reuse always\nfrontend f\n  bind 127.0.0.1:%d\n  default_backend b\nbackend b\n  server s1 %s\n", haproxyPort, upstream)
		os.WriteFile(filepath.Join(out, "haproxy.cfg"), []byte(cfg), 0o644)
		pid, err := start("haproxy.log", "haproxy", "-db", "-f", filepath.Join(out, "haproxy.cfg"))
		if err != nil {
			return err
		}
		proxies = append(proxies, &proxy{name: "haproxy", port: haproxyPort, pid: pid})
	} else {
		skipped = append(skipped, "haproxy (not installed)")
	}
	if _, err := exec.LookPath("caddy"); err == nil {
		cfg := fmt.Sprintf("{\n  admin off\n  auto_https off\n}\nhttp://127.0.0.1:%d {\n  reverse_proxy %s\n}\n", caddyPort, upstream)
		os.WriteFile(filepath.Join(out, "Caddyfile"), []byte(cfg), 0o644)
		pid, err := start("caddy.log", "env", "GOMAXPROCS=1", "caddy", "run", "--config", filepath.Join(out, "Caddyfile"), "--adapter", "caddyfile")
		if err != nil {
			return err
		}
		proxies = append(proxies, &proxy{name: "caddy", port: caddyPort, pid: pid})
	} else {
		skipped = append(skipped, "caddy (not installed)")
	}

	relia, err := harness.Relia(out, "")
	if err != nil {
		return err
	}
	// The gateway twice, the same config on each listener engine: the
	// default (auto: the event loop on Linux) and the goroutine engine.
	var gateway, base *proxy
	engines := []struct{ name, engine, suffix, bin string }{
		{"relia gateway", "auto", "", relia},
		{"relia gateway (goroutines)", "goroutines", "-goroutines", relia},
	}
	if baseline != "" {
		engines = append(engines, struct{ name, engine, suffix, bin string }{"relia (loop, baseline)", "eventloop", "-baseline", baseline})
	}
	for _, e := range engines {
		port, admin := gwPort, adminPort
		if e.suffix != "" {
			port, admin = harness.FreePort(), harness.FreePort()
		}
		gw := fmt.Sprintf(`kind: Gateway
version: relia/v1
spec:
  listeners: [{address: "127.0.0.1:%d", engine: %s}]
  admin: {address: "127.0.0.1:%d"}
  accessLog: {path: %q}
  upstreams:
    - name: nginx
      targets: [{address: %q}]
      breaker: {consecutiveFailures: 5, openDuration: 10s}
  routes:
    - name: all
      upstream: nginx
      timeout: 5s
      retry: {attempts: 2, budget: {ratio: 20%%}}
`, port, e.engine, admin, filepath.Join(out, "access"+e.suffix+".log"), upstream)
		config := filepath.Join(out, "gateway"+e.suffix+".yaml")
		os.WriteFile(config, []byte(gw), 0o644)
		pid, err := start("gateway"+e.suffix+".log", "env", "GOMAXPROCS=1", e.bin, "gateway", "--watch", "0", "--config", config)
		if err != nil {
			return err
		}
		p := &proxy{name: e.name, port: port, pid: pid}
		if gateway == nil {
			gateway = p // the ratios are against the default engine
		}
		if e.suffix == "-baseline" {
			base = p
		}
		proxies = append(proxies, p)
	}

	// Floors (gateway/floor): Go reverse proxies with none of the
	// gateway's features, one on the gateway's engine (fasthttp) and one an
	// epoll loop, to tell what the engine costs from what the features do;
	// and the epoll loop doing this config's per-request work, an estimate
	// of the gateway on an event-loop engine.
	floor := filepath.Join(out, "floor")
	build := exec.Command("go", "build", "-o", floor, "./gateway/floor")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		return fmt.Errorf("building the floor proxies: %w", err)
	}
	for _, engine := range []string{"fasthttp", "epoll", "epoll+features", "epoll+parsed", "epoll+h1"} {
		port := harness.FreePort()
		pid, err := start("floor-"+engine+".log", "env", "GOMAXPROCS=1", floor, "-engine", engine,
			"-listen", fmt.Sprintf("127.0.0.1:%d", port), "-upstream", upstream,
			"-access-log", filepath.Join(out, "floor-access.log"))
		if err != nil {
			return err
		}
		proxies = append(proxies, &proxy{name: "floor: " + engine, port: port, pid: pid})
	}
	for _, p := range append([]*proxy{{port: backend}}, proxies...) {
		if err := harness.WaitPort(p.port, 10*time.Second); err != nil {
			return err
		}
	}

	if backendCPU == "1" {
		fmt.Printf("medians over %d rounds of %v, shared-core: wrk -t1 -c%d on CPU 0, proxies and the nginx backend on CPU 1\n", rounds, d, conns)
	} else {
		fmt.Printf("medians over %d rounds of %v, own-core: wrk -t1 -c%d and the nginx backend on CPU 0, each proxy alone on CPU 1\n", rounds, d, conns)
	}
	for _, s := range skipped {
		fmt.Printf("skipped: %s\n", s)
	}
	if pairs > 0 {
		return runPairs(pairs, d, conns, gateway, proxies[0], base, backendPID)
	}
	for r := range rounds {
		for i := range proxies {
			p := proxies[(i+r)%len(proxies)]
			before, backendBefore := proc.CPUTime(p.pid), proc.CPUTime(backendPID)
			busyBefore, totalBefore := proc.CPUTimes()
			rps, errs, err := wrk(fmt.Sprintf("http://127.0.0.1:%d/", p.port), conns, d, tolerate)
			if err != nil {
				return fmt.Errorf("%s: %w", p.name, err)
			}
			busyAfter, totalAfter := proc.CPUTimes()
			p.rps = append(p.rps, rps)
			p.errs += errs
			requests := rps * d.Seconds()
			if p.pid != 0 {
				p.cpuPerReq = append(p.cpuPerReq, float64(proc.CPUTime(p.pid)-before)/float64(time.Microsecond)/requests)
			}
			p.backendReq = append(p.backendReq, float64(proc.CPUTime(backendPID)-backendBefore)/float64(time.Microsecond)/requests)
			for cpu := range 2 {
				if cpu < len(busyAfter) && cpu < len(busyBefore) {
					p.busy[cpu] = append(p.busy[cpu], float64(busyAfter[cpu]-busyBefore[cpu])/float64(totalAfter[cpu]-totalBefore[cpu]))
				}
			}
		}
	}
	gwRPS := harness.Median(gateway.rps)
	fmt.Printf("\n%-24s %10s %16s %18s %18s %9s %9s", "proxy", "req/s", "gateway / proxy", "CPU per request", "backend CPU/req", "CPU 0", "CPU 1")
	if tolerate {
		fmt.Printf(" %14s", "errors (all)")
	}
	fmt.Println()
	for _, p := range proxies {
		cpu := "-"
		if p.pid != 0 {
			cpu = fmt.Sprintf("%.1f µs", harness.Median(p.cpuPerReq))
		}
		fmt.Printf("%-24s %10.0f %16.2f %18s %15.1f µs %8.0f%% %8.0f%%", p.name, harness.Median(p.rps), gwRPS/harness.Median(p.rps), cpu,
			harness.Median(p.backendReq), 100*harness.Median(p.busy[0]), 100*harness.Median(p.busy[1]))
		if tolerate {
			fmt.Printf(" %14d", p.errs)
		}
		fmt.Println()
	}
	if tolerate {
		fmt.Println("\nlatency: skipped with -tolerate-errors")
		return nil
	}

	rate := gwRPS / 2
	if _, err := exec.LookPath("hey"); err != nil {
		fmt.Println("\nlatency (hey): skipped (hey not installed)")
	} else {
		perConn := max(1, int(rate)/conns)
		direct, err := heyP99(fmt.Sprintf("http://127.0.0.1:%d/", backend), conns, perConn, d)
		if err != nil {
			return err
		}
		via, err := heyP99(fmt.Sprintf("http://127.0.0.1:%d/", gwPort), conns, perConn, d)
		if err != nil {
			return err
		}
		fmt.Printf("\nat %d req/s (half the gateway's max; hey -c %d -q %d): p99 direct %.2f ms, through the gateway %.2f ms, added %.2f ms\n",
			perConn*conns, conns, perConn, direct*1000, via*1000, (via-direct)*1000)
	}

	// The same question asked with relia's open model: requests sent on
	// schedule, latency from the scheduled time (no coordinated omission),
	// recorded to the microsecond, at most conns in flight (so at most
	// conns connections, as above; arrivals beyond are dropped and
	// counted); direct and through the gateway in turn, each round,
	// medians. hey's own p99 at this rate on one core is 1-3 ms, which
	// hides most of what the gateway adds.
	// nginx as a proxy is measured the same way, so the gateway's figure
	// can be read against a peer's.
	targets := []struct {
		name string
		port int
		p99  []float64
	}{{name: "direct", port: backend}, {name: "through the gateway", port: gwPort}, {name: "through nginx", port: nginxProxy}}
	var dropped int64
	for r := range rounds {
		for i := range targets {
			tg := &targets[(i+r)%len(targets)]
			p99, drops, err := reliaP99(out, relia, fmt.Sprintf("http://127.0.0.1:%d/", tg.port), rate, conns, d)
			if err != nil {
				return err
			}
			tg.p99 = append(tg.p99, p99)
			dropped += drops
		}
	}
	fmt.Printf("at %.0f req/s (relia load --rate --max-in-flight %d, open model, medians of %d; %d arrivals dropped at the in-flight cap over all runs):\n",
		rate, conns, rounds, dropped)
	direct := targets[0].p99
	fmt.Printf("  p99 direct %.3f ms\n", harness.Median(direct))
	for _, tg := range targets[1:] {
		fmt.Printf("  p99 %s %.3f ms, added %.3f ms (per round: %s)\n", tg.name, harness.Median(tg.p99), harness.Median(tg.p99)-harness.Median(direct), addedPerRound(direct, tg.p99))
	}
	return nil
}

// reliaP99 runs relia load's open model at rate, at most inFlight at a
// time, against url from CPU 0 and returns the p99 latency in
// milliseconds and the arrivals dropped at the cap.
func reliaP99(out, relia, url string, rate float64, inFlight int, d time.Duration) (float64, int64, error) {
	file := filepath.Join(out, "latency.json")
	cmd := exec.Command("taskset", "-c", "0", relia, "load", url, "--rate", strconv.FormatFloat(rate, 'f', 0, 64),
		"--max-in-flight", strconv.Itoa(inFlight), "--duration", d.String(), "--out", file)
	// Exit code 1 is a failed threshold (the open model's arrivals on
	// time): still a measurement, and latency counts from the schedule.
	var ee *exec.ExitError
	if b, err := cmd.CombinedOutput(); err != nil && !(errors.As(err, &ee) && ee.ExitCode() == 1) {
		return 0, 0, fmt.Errorf("relia load: %w: %s", err, b)
	}
	res, err := load.ReadResult(file)
	if err != nil {
		return 0, 0, err
	}
	sum := res.Requests.Total()
	drops := sum.ByClass[outcome.ClassDropped]
	if failed := sum.Total - sum.ByClass[outcome.ClassOK] - drops; failed > 0 {
		var classes []string
		for c, n := range sum.ByClass {
			if n > 0 && outcome.Class(c) != outcome.ClassOK && outcome.Class(c) != outcome.ClassDropped {
				classes = append(classes, fmt.Sprintf("%s %d", outcome.Class(c), n))
			}
		}
		return 0, 0, fmt.Errorf("relia load against %s: %d of %d requests failed (%s)", url, failed, sum.Total, strings.Join(classes, ", "))
	}
	return float64(sum.Latency.Quantile(0.99)) / float64(time.Millisecond), int64(drops), nil
}

func addedPerRound(direct, via []float64) string {
	var b []byte
	for i := range direct {
		if i > 0 {
			b = append(b, ", "...)
		}
		b = fmt.Appendf(b, "%+.3f", via[i]-direct[i])
	}
	return string(b) + " ms"
}

var wrkRPS = regexp.MustCompile(`Requests/sec:\s+([0-9.]+)`)

var (
	wrkSocketErrors = regexp.MustCompile(`Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)`)
	wrkNon2xx       = regexp.MustCompile(`Non-2xx or 3xx responses: (\d+)`)
)

// wrk runs wrk against url from CPU 0 and returns its req/s and, with
// tolerate, how many socket errors and non-2xx answers it saw; without
// tolerate any of them is an error.
func wrk(url string, conns int, d time.Duration, tolerate bool) (float64, int64, error) {
	out, err := exec.Command("taskset", "-c", "0", "wrk", "-t1", fmt.Sprintf("-c%d", conns), fmt.Sprintf("-d%ds", int(d.Seconds())), url).CombinedOutput()
	if err != nil {
		return 0, 0, fmt.Errorf("wrk: %w: %s", err, out)
	}
	var errs int64
	for _, re := range []*regexp.Regexp{wrkSocketErrors, wrkNon2xx} {
		if m := re.FindSubmatch(out); m != nil {
			for _, n := range m[1:] {
				v, _ := strconv.ParseInt(string(n), 10, 64)
				errs += v
			}
		}
	}
	if errs > 0 && !tolerate {
		return 0, 0, fmt.Errorf("wrk saw errors: %s", out)
	}
	m := wrkRPS.FindSubmatch(out)
	if m == nil {
		return 0, 0, fmt.Errorf("no Requests/sec in wrk's output: %s", out)
	}
	rps, err := strconv.ParseFloat(string(m[1]), 64)
	return rps, errs, err
}

var heyP99Re = regexp.MustCompile(`99% in ([0-9.]+) secs`)

func heyP99(url string, conns, qps int, d time.Duration) (float64, error) {
	out, err := exec.Command("taskset", "-c", "0", "hey", "-z", d.String(), "-c", strconv.Itoa(conns), "-q", strconv.Itoa(qps), url).CombinedOutput()
	if err != nil {
		return 0, fmt.Errorf("hey: %w: %s", err, out)
	}
	m := heyP99Re.FindSubmatch(out)
	if m == nil {
		return 0, fmt.Errorf("no p99 in hey's output: %s", out)
	}
	return strconv.ParseFloat(string(m[1]), 64)
}

// runPairs measures nginx as a proxy (ng) and the gateway (gw) n times
// each, alternating which goes first, and prints the medians of the
// per-pair ratios, gateway / nginx: one run against the other varies by
// ±20% on a small shared machine, more than the difference measured, so
// only many pairs taken close together resolve it. CPU 1 busy per request
// is the proxy's whole cost when the proxy is alone on CPU 1 (own-core):
// it counts the kernel's work for its sockets that /proc charges to other
// processes. With a baseline (-baseline), each pair is a set of three in
// a rotating order, and the gateway is also read against the baseline:
// a change's effect with its own interval.
func runPairs(n int, d time.Duration, conns int, gw, ng, base *proxy, backendPID int) error {
	type run struct{ core, process, backend, rps float64 }
	measure := func(p *proxy) (run, error) {
		before, backendBefore := proc.CPUTime(p.pid), proc.CPUTime(backendPID)
		busyBefore, _ := proc.CPUTimes()
		rps, _, err := wrk(fmt.Sprintf("http://127.0.0.1:%d/", p.port), conns, d, false)
		if err != nil {
			return run{}, fmt.Errorf("%s: %w", p.name, err)
		}
		busyAfter, _ := proc.CPUTimes()
		requests := rps * d.Seconds()
		us := func(t time.Duration) float64 { return float64(t) / float64(time.Microsecond) / requests }
		r := run{process: us(proc.CPUTime(p.pid) - before), backend: us(proc.CPUTime(backendPID) - backendBefore), rps: rps}
		if len(busyAfter) > 1 && len(busyBefore) > 1 {
			r.core = us(busyAfter[1] - busyBefore[1])
		}
		return r, nil
	}
	// ratios holds one comparison's per-pair ratios.
	type ratios struct {
		of, to                      *proxy
		core, process, backend, rps []float64
		below                       int
	}
	add := func(r *ratios, got map[*proxy]run) {
		a, b := got[r.of], got[r.to]
		r.core = append(r.core, a.core/b.core)
		r.process = append(r.process, a.process/b.process)
		r.backend = append(r.backend, a.backend/b.backend)
		r.rps = append(r.rps, a.rps/b.rps)
		if a.core < b.core {
			r.below++
		}
	}
	members := []*proxy{ng, gw}
	comparisons := []*ratios{{of: gw, to: ng}}
	if base != nil {
		members = append(members, base)
		comparisons = append(comparisons, &ratios{of: base, to: ng}, &ratios{of: gw, to: base})
	}
	for i := range n {
		got := map[*proxy]run{}
		for k := range members {
			p := members[(i+k)%len(members)]
			r, err := measure(p)
			if err != nil {
				return err
			}
			got[p] = r
		}
		for _, c := range comparisons {
			add(c, got)
		}
		fmt.Printf("pair %2d: CPU 1 busy per request", i+1)
		for _, p := range members {
			fmt.Printf(" %s %.2f µs (process %.2f, backend %.2f, %.0f req/s);", p.name, got[p].core, got[p].process, got[p].backend, got[p].rps)
		}
		fmt.Println()
	}
	// The ratios' spread from pair to pair is wide; the interval says
	// whether the median is above or below 1.0 by more than chance.
	interval := func(v []float64) string {
		lo, hi, ok := harness.MedianInterval(v)
		if !ok {
			return "too few pairs"
		}
		return fmt.Sprintf("%.3f-%.3f", lo, hi)
	}
	for _, c := range comparisons {
		fmt.Printf("\nmedians of %d pairs, %s / %s: CPU 1 busy per request %.3fx, the process's CPU per request %.3fx, throughput %.3fx, the backend's CPU per request %.3fx; %s's CPU 1 busy per request below %s's in %d of %d pairs",
			n, c.of.name, c.to.name, harness.Median(c.core), harness.Median(c.process), harness.Median(c.rps), harness.Median(c.backend), c.of.name, c.to.name, c.below, n)
		if c.to == ng {
			fmt.Print(" (goals: CPU <= 1.0x, throughput >= 1.0x, backend <= 1.0x)")
		}
		fmt.Printf("\n95%% confidence intervals of those medians (sign test): CPU 1 busy per request %s, the process's CPU per request %s, throughput %s, the backend's CPU per request %s\n",
			interval(c.core), interval(c.process), interval(c.rps), interval(c.backend))
	}
	return nil
}
