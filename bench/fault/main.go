// Command fault compares relia's fault proxy with Toxiproxy, pinned to
// cores the way docs/benchmarks.md describes, in two topologies: shared
// (wrk on CPU 0, the proxies and nginx on CPU 1, the historical one) and
// own (wrk and nginx on CPU 0, the proxy under test alone on CPU 1, so that
// the proxy, not preemption by nginx on its core, sets the figure).
//
//	cd bench && go run ./fault -duration 5s -rounds 5              # both topologies
//	cd bench && go run ./fault -duration 5s -rounds 5 -topology own
//
// It measures wrk -> nginx directly, through Toxiproxy (TCP, no toxic),
// through relia (TCP, no toxic), through relia with a latency=0 toxic, and
// through relia in HTTP mode with a 0% HTTP fault, and, where haproxy is
// installed, through haproxy in TCP mode: no fault proxy, but the speed of
// an event-loop TCP relay written in C on these cores, the ceiling against
// which the Toxiproxy ratio is read; and, where BPF programs can be loaded,
// through a relay that forwards in the kernel (fault/sockmap), which shows
// what moving the bytes out of user space would buy. Each round measures every
// path once, in an order that rotates from round to round, so a slow spell
// of a shared machine falls on all paths alike; the figures are medians over
// the rounds. Beside req/s it reads each proxy's and nginx's CPU time per
// request from /proc, which a busy neighbour disturbs far less than
// throughput, and how busy each of the two CPUs was (/proc/stat), to say
// which one saturated first and so set the throughput. The p50
// latency a latency=0 toxic adds is measured with one connection, so
// queueing does not hide it. Missing tools are installed: nginx-light and
// wrk with apt-get (-install), toxiproxy-server with go install. It is run
// on demand, never by go test.
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/relia-dev/relia/bench/internal/harness"
	"github.com/relia-dev/relia/bench/internal/proc"
)

const toxiproxyServerModule = "github.com/Shopify/toxiproxy/v2/cmd/server@v2.5.0"

func main() {
	duration := flag.Duration("duration", 5*time.Second, "length of each throughput run (latency runs take half)")
	rounds := flag.Int("rounds", 5, "rounds; each measures every path once")
	conns := flag.Int("connections", 50, "wrk connections for throughput")
	install := flag.Bool("install", true, "apt-get install nginx-light and wrk when missing")
	topo := flag.String("topology", "both", "shared (wrk on CPU 0; proxies and nginx on CPU 1), own (wrk and nginx on CPU 0; the proxy alone on CPU 1) or both")
	flag.Parse()
	topologies := map[string][]topology{"shared": {shared}, "own": {own}, "both": {shared, own}}[*topo]
	if *rounds < 1 || *duration < time.Second || *conns < 1 || topologies == nil {
		fmt.Fprintln(os.Stderr, "bench/fault: -rounds, -duration (>= 1s) and -connections must be positive, -topology shared, own or both")
		os.Exit(2)
	}
	if err := run(*duration, *rounds, *conns, *install, topologies); err != nil {
		fmt.Fprintln(os.Stderr, "bench/fault:", err)
		os.Exit(1)
	}
}

// topology says where nginx runs; wrk always runs on CPU 0 and the proxies
// on CPU 1.
type topology struct {
	name, nginxCPU, title string
}

var (
	shared = topology{"shared", "1", "shared core: wrk on CPU 0; the proxy and nginx on CPU 1"}
	own    = topology{"own", "0", "own core: wrk and nginx on CPU 0; the proxy alone on CPU 1"}
)

// path is one way from wrk to nginx and what it measured, one entry per
// round.
type path struct {
	name                        string
	port                        int
	pid                         int // the proxy's, for CPU per request; 0 for none
	rps, cpuPerReq, nginxPerReq []float64
	busy0, busy1                []float64 // how busy CPU 0 and CPU 1 were, 0 to 1
	p50, p50one                 []time.Duration
}

func run(d time.Duration, rounds, conns int, install bool, topologies []topology) error {
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

	nginxPort, reliaAPI, reliaTCP, reliaLat0, reliaHTTP, toxAPI, toxTCP := harness.FreePort(), harness.FreePort(), harness.FreePort(), harness.FreePort(), harness.FreePort(), harness.FreePort(), harness.FreePort()
	nginxPID, err := startNginx(ctx, out, nginxPort)
	if err != nil {
		return err
	}
	upstream := fmt.Sprintf("127.0.0.1:%d", nginxPort)
	cfg := filepath.Join(out, "proxies.json")
	os.WriteFile(cfg, []byte(fmt.Sprintf(`[{"name":"tcp","listen":"127.0.0.1:%[1]d","upstream":"%[4]s"},`+
		`{"name":"lat0","listen":"127.0.0.1:%[2]d","upstream":"%[4]s"},`+
		`{"name":"web","listen":"127.0.0.1:%[3]d","upstream":"%[4]s","mode":"http"}]`,
		reliaTCP, reliaLat0, reliaHTTP, upstream)), 0o644)
	reliaPID, err := startPinned(ctx, "1", filepath.Join(out, "relia.log"), relia, "fault", "serve", "--listen", fmt.Sprintf("127.0.0.1:%d", reliaAPI),
		"--config", cfg, "--seed", "1", "--default-ttl", "1h")
	if err != nil {
		return err
	}
	toxPID, err := startPinned(ctx, "1", filepath.Join(out, "toxiproxy.log"), filepath.Join(out, "toxiproxy-server"),
		"-host", "127.0.0.1", "-port", strconv.Itoa(toxAPI))
	if err != nil {
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
	if err := post(reliaURL+"/proxies/lat0/toxics", `{"type":"latency","attributes":{"latency":0}}`, 200); err != nil {
		return err
	}
	// The HTTP-mode proxy gets a rule that matches every request and
	// fires on none, so the filter's decision is on the measured path.
	if err := post(reliaURL+"/proxies/web/toxics", `{"name":"none","type":"http","toxicity":0,"attributes":{"abort_status":503}}`, 200); err != nil {
		return err
	}

	paths := []*path{
		{name: "wrk -> nginx (direct)", port: nginxPort},
		{name: "wrk -> toxiproxy (tcp, no toxic) -> nginx", port: toxTCP, pid: toxPID},
		{name: "wrk -> relia (tcp, no toxic) -> nginx", port: reliaTCP, pid: reliaPID},
		{name: "wrk -> relia (tcp, latency=0 toxic) -> nginx", port: reliaLat0, pid: reliaPID},
		{name: "wrk -> relia (http mode, 0% fault) -> nginx", port: reliaHTTP, pid: reliaPID},
	}
	// haproxy in TCP mode is no fault proxy; it is the reference for how
	// fast an event-loop TCP relay in C gets on these cores, which bounds
	// what any user-space fault proxy can reach against Toxiproxy.
	if _, err := exec.LookPath("haproxy"); err == nil {
		port := harness.FreePort()
		conf := filepath.Join(out, "haproxy.cfg")
		os.WriteFile(conf, []byte(fmt.Sprintf("global\n  nbthread 1\n  maxconn 4000\ndefaults\n  mode tcp\n  timeout connect 5s\n  timeout client 60s\n  timeout server 60s\n"+
			"listen relay\n  bind 127.0.0.1:%d\n  server nginx %s\n", port, upstream)), 0o644)
		pid, err := startPinned(ctx, "1", filepath.Join(out, "haproxy.log"), "haproxy", "-db", "-f", conf)
		if err != nil {
			return err
		}
		if err := waitHTTP(fmt.Sprintf("http://127.0.0.1:%d/", port)); err != nil {
			return err
		}
		paths = append(paths, &path{name: haproxyName, port: port, pid: pid})
	} else {
		fmt.Println("skipped: haproxy tcp-mode reference (haproxy not installed; make bench-deps installs it)")
	}
	// The same relay with the bytes moved out of user space: a BPF
	// sockhash and an sk_skb verdict program forward each segment in the
	// kernel. Its CPU is spent in softirqs and kernel workers, on both
	// cores, so it has no per-process CPU figure.
	sockmap := filepath.Join(out, "sockmap")
	if err := runCmd(".", "go", "build", "-o", sockmap, "./fault/sockmap"); err != nil {
		return fmt.Errorf("building the sockmap relay: %w", err)
	}
	if msg, err := exec.Command(sockmap, "-check").CombinedOutput(); err != nil {
		fmt.Printf("skipped: kernel-forwarding reference (%s)\n", strings.TrimSpace(string(msg)))
	} else {
		port := harness.FreePort()
		if _, err := startPinned(ctx, "1", filepath.Join(out, "sockmap.log"), sockmap,
			"-listen", fmt.Sprintf("127.0.0.1:%d", port), "-upstream", upstream); err != nil {
			return err
		}
		if err := waitHTTP(fmt.Sprintf("http://127.0.0.1:%d/", port)); err != nil {
			return err
		}
		paths = append(paths, &path{name: sockmapName, port: port})
	}
	for _, topo := range topologies {
		// nginx's master and its worker move to the topology's CPU; the
		// rest stay where they started.
		if err := pinTree(nginxPID, topo.nginxCPU); err != nil {
			return err
		}
		fresh := make([]*path, len(paths))
		for i, p := range paths {
			fresh[i] = &path{name: p.name, port: p.port, pid: p.pid}
		}
		if err := runTopology(topo, fresh, nginxPID, d, rounds, conns); err != nil {
			return err
		}
	}
	return nil
}

// runTopology measures every path in rounds and prints the table and the
// ratios of one topology.
func runTopology(topo topology, paths []*path, nginxPID int, d time.Duration, rounds, conns int) error {
	fmt.Printf("\n## %s\n\nload average before: %s\n", topo.title, loadAverage())
	for r := range rounds {
		for i := range paths {
			p := paths[(i+r)%len(paths)]
			if err := measure(p, nginxPID, conns, d); err != nil {
				return fmt.Errorf("%s: %w", p.name, err)
			}
			fmt.Fprintf(os.Stderr, "%s round %d  %-64s %8.0f req/s  CPU 0 %3.0f%%  CPU 1 %3.0f%%  p50 %v  p50 (1 conn) %v\n",
				topo.name, r+1, p.name, p.rps[r], 100*p.busy0[r], 100*p.busy1[r], p.p50[r], p.p50one[r])
		}
	}
	fmt.Printf("load average after:  %s\n\n", loadAverage())

	direct, tox, tcp, lat0 := paths[0], paths[1], paths[2], paths[3]
	fmt.Printf("medians over %d rounds of %v (wrk -t1 -c%d; latency runs -c1 for %v)\n\n", rounds, d, conns, d/2)
	fmt.Printf("| path | req/s (median) | req/s (min-max) | ratio to direct | p50, %d conns | p50, 1 conn | proxy CPU per request | nginx CPU per request | CPU 0 busy | CPU 1 busy | saturated first |\n|---|---|---|---|---|---|---|---|---|---|---|\n", conns)
	for _, p := range paths {
		cpu := "-"
		if p.pid != 0 {
			cpu = fmt.Sprintf("%.1f µs", median(p.cpuPerReq))
		}
		b0, b1 := median(p.busy0), median(p.busy1)
		fmt.Printf("| %s | %.0f | %.0f-%.0f | %.2f | %v | %v | %s | %.1f µs | %.0f%% | %.0f%% | %s |\n", p.name, median(p.rps), slices.Min(p.rps), slices.Max(p.rps),
			median(p.rps)/median(direct.rps), medianDur(p.p50), medianDur(p.p50one), cpu, median(p.nginxPerReq), 100*b0, 100*b1, saturated(b0, b1))
	}
	ratios := make([]float64, rounds)
	for r := range rounds {
		ratios[r] = tcp.rps[r] / tox.rps[r]
	}
	fmt.Printf("\nrelia tcp / toxiproxy throughput: %.2fx, median of rounds (each round's ratio: %s) (goal >= 1.5x)\n",
		median(ratios), formatRatios(ratios))
	fmt.Printf("toxiproxy / relia tcp CPU per request: %.2fx\n", median(tox.cpuPerReq)/median(tcp.cpuPerReq))
	if haproxyTCP := find(paths, haproxyName); haproxyTCP != nil {
		for r := range rounds {
			ratios[r] = haproxyTCP.rps[r] / tox.rps[r]
		}
		fmt.Printf("reference: haproxy tcp mode / toxiproxy throughput: %.2fx (each round: %s); relia tcp / haproxy: %.2fx\n",
			median(ratios), formatRatios(ratios), median(tcp.rps)/median(haproxyTCP.rps))
		for r := range rounds {
			ratios[r] = tcp.cpuPerReq[r] / haproxyTCP.cpuPerReq[r]
		}
		fmt.Printf("relia tcp / haproxy tcp mode CPU per request: %.2fx (%.1f vs %.1f µs; each round: %s) (goal <= 1.0x)\n",
			median(ratios), median(tcp.cpuPerReq), median(haproxyTCP.cpuPerReq), formatRatios(ratios))
	}
	if kernelRelay := find(paths, sockmapName); kernelRelay != nil {
		for r := range rounds {
			ratios[r] = kernelRelay.rps[r] / tox.rps[r]
		}
		fmt.Printf("reference: BPF sockmap relay / toxiproxy throughput: %.2fx (each round: %s); relia tcp / sockmap relay: %.2fx\n",
			median(ratios), formatRatios(ratios), median(tcp.rps)/median(kernelRelay.rps))
	}
	fmt.Printf("p50 added by relia with a latency=0 toxic (1 conn, vs direct): %v (goal <= 50us)\n",
		medianDur(lat0.p50one)-medianDur(direct.p50one))
	return nil
}

// The reference paths' names, by which the summary finds them.
const (
	haproxyName = "wrk -> haproxy (tcp mode, reference) -> nginx"
	sockmapName = "wrk -> BPF sockmap relay (kernel forwarding, reference) -> nginx"
)

func find(paths []*path, name string) *path {
	for _, p := range paths {
		if p.name == name {
			return p
		}
	}
	return nil
}

// saturated says which CPU ran out first: the busier one, when it was
// busy nearly all the time; a neighbour's load on the machine counts too.
func saturated(busy0, busy1 float64) string {
	const full = 0.95
	switch {
	case busy0 >= full && busy0 >= busy1:
		return "CPU 0"
	case busy1 >= full:
		return "CPU 1"
	}
	return "neither"
}

// measure runs one round on p: throughput with conns connections, then
// latency with one.
func measure(p *path, nginxPID, conns int, d time.Duration) error {
	url := fmt.Sprintf("http://127.0.0.1:%d/", p.port)
	before, nginxBefore, cpusBefore := proc.CPUTime(p.pid), proc.CPUTime(nginxPID), readCPUs()
	rps, p50, err := wrk(url, conns, d)
	if err != nil {
		return err
	}
	requests := rps * d.Seconds()
	perReq := func(t time.Duration) float64 { return float64(t/time.Microsecond) / requests }
	if p.pid != 0 {
		p.cpuPerReq = append(p.cpuPerReq, perReq(proc.CPUTime(p.pid)-before))
	}
	p.nginxPerReq = append(p.nginxPerReq, perReq(proc.CPUTime(nginxPID)-nginxBefore))
	cpusAfter := readCPUs()
	p.busy0 = append(p.busy0, busy(cpusBefore, cpusAfter, 0))
	p.busy1 = append(p.busy1, busy(cpusBefore, cpusAfter, 1))
	_, p50one, err := wrk(url, 1, d/2)
	if err != nil {
		return err
	}
	p.rps, p.p50, p.p50one = append(p.rps, rps), append(p.p50, p50), append(p.p50one, p50one)
	return nil
}

func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	return strings.Join(strings.Fields(string(b))[:3], " ")
}

func median(xs []float64) float64 {
	s := slices.Sorted(slices.Values(xs))
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func medianDur(ds []time.Duration) time.Duration {
	xs := make([]float64, len(ds))
	for i, d := range ds {
		xs[i] = float64(d)
	}
	return time.Duration(median(xs))
}

func formatRatios(xs []float64) string {
	parts := make([]string, len(xs))
	for i, x := range xs {
		parts[i] = fmt.Sprintf("%.2f", x)
	}
	return strings.Join(parts, " ")
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

func startNginx(ctx context.Context, out string, port int) (int, error) {
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
		return 0, err
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

// startPinned starts a process pinned to cpu and returns its pid (taskset
// execs it, so the pid is the program's); stopAll ends it.
func startPinned(ctx context.Context, cpu, logPath, name string, args ...string) (int, error) {
	logf, err := os.Create(logPath)
	if err != nil {
		return 0, err
	}
	cmd := exec.CommandContext(ctx, "taskset", append([]string{"-c", cpu, name}, args...)...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		return 0, fmt.Errorf("starting %s: %w", name, err)
	}
	started = append(started, cmd)
	return cmd.Process.Pid, nil
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
	return rps, time.Duration(v * float64(unit)).Round(time.Microsecond), nil
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
