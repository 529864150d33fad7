// Command ai compares relia's AI gateway with Portkey's open-source
// gateway (npm @portkey-ai/gateway) in front of the same simulated
// provider (relia ai mock answering at once), in the topology of
// docs/benchmarks.md where the proxy under test is alone on its core:
// wrk, the simulator and the streaming clients on CPU 0, the gateways
// on CPU 1 (GOMAXPROCS=1 for relia unless -gomaxprocs says otherwise;
// Node is single-threaded).
//
//	cd bench && go run ./ai -duration 10s -rounds 3
//
// It measures, for non-streaming chat completions and for streaming ones
// of 100 tokens:
//
//   - throughput (wrk, 50 connections) through relia ai serve, through
//     relia gateway with an ai: route (the AI gateway on the gateway's
//     edge), through Portkey, and through relia gateway as a plain
//     reverse proxy to the same simulator (the "plain proxy path"), with
//     each process's CPU time per request from /proc; relia's added CPU
//     per call is its AI route's minus the plain proxy's;
//   - the time to first token added by relia at half its maximum
//     streaming rate (each run at half its target's max measured right
//     before it, and measured again when the max after the run says the
//     machine's speed moved during it): an open-model client
//     (rawclient.go) sends streams at that rate straight to the
//     simulator, through relia ai serve and through relia gateway's AI
//     route, and the p99 of time to first token is compared; and, from
//     the loopback packets as the kernel stamped them (wire_linux.go,
//     needs CAP_NET_RAW), relia's own part of each
//     stream's time to first token, which no delay of the client or the
//     simulator lengthens; nginx in front of the same simulator, at the
//     direct runs' rate, is measured the same way for reference: what
//     this machine gives a proxy that only passes the stream on;
//   - the resident memory of relia ai serve and of relia gateway with an
//     ai: route, each with -streams streams open at once (the simulator
//     pacing them slowly so they stay open; the provider's
//     maxConnections raised to -streams).
//
// -only memory runs the last step alone, and -only ttft the time to
// first token, each run at half its target's max as in a full run, or at
// the rate -ttft-rate gives:
//
//	cd bench && go run ./ai -only memory -streams 10000
//	cd bench && go run ./ai -only ttft -duration 5s
//	cd bench && go run ./ai -only ttft -ttft-rate 700 -duration 5s
//	cd bench && go run ./ai -only ttft -ttft-rate 700 -duration 5s -gomaxprocs 2
//
// -relia PATH measures a given binary instead of one built from this tree
// (an earlier build, for a before and after). The harness runs itself on
// CPU 0 (it starts itself again under taskset), so its streaming clients
// stay off the gateways' core; the simulator runs with its collector off
// below 2 GiB, so that its pauses do not clump the streams it sends.
//
// Goals (issue 23): at least 10x Portkey's throughput on one core, at
// most 25 µs of CPU added per non-streaming call, at most 1 ms added to
// the p99 of time to first token, 10,000 open streams in at most 200 MB.
// A peer that cannot run (npm missing, Portkey failing on this Node) is
// skipped and named. It is run on demand, never by go test.
package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/relia-dev/relia/bench/internal/harness"
	"github.com/relia-dev/relia/bench/internal/proc"
	"golang.org/x/sys/unix"
)

func main() {
	duration := flag.Duration("duration", 10*time.Second, "length of each wrk run")
	rounds := flag.Int("rounds", 3, "rounds; each measures every gateway once")
	conns := flag.Int("connections", 50, "wrk connections")
	streams := flag.Int("streams", 10000, "streams held open at once for the memory figure (0 skips it)")
	only := flag.String("only", "", `run one step alone: "memory" (the resident memory with -streams streams open) or "ttft" (time to first token, at half each target's max or at -ttft-rate)`)
	flag.DurationVar(&memoryHold, "hold", 0, "keep the memory step's streams open this long after its figure, to profile the process holding them")
	ttftRate := flag.Float64("ttft-rate", 0, "streams a second for -only ttft; without it, each run is at half its target's max measured right before it, as in a full run")
	flag.StringVar(&reliaBinary, "relia", "", "a relia binary to measure instead of one built from this tree (an earlier build, for a before and after)")
	procs := flag.Int("gomaxprocs", 1, "GOMAXPROCS of the relia processes on CPU 1 (2 lets an idle processor poll the network while the other runs: go run ./ai/netpollwait)")
	flag.Parse()
	if *rounds < 1 || *duration < time.Second || *conns < 1 || *streams < 0 || (*only != "" && *only != "memory" && *only != "ttft") ||
		(*only == "memory" && *streams == 0) || (*only != "ttft" && *ttftRate > 0) || *procs < 1 {
		fmt.Fprintln(os.Stderr, "bench/ai: -rounds, -duration (>= 1s), -connections must be positive, -streams not negative (positive with -only memory), -only empty, memory or ttft (-ttft-rate only with ttft), -gomaxprocs positive")
		os.Exit(2)
	}
	pinToCPU0()
	ttftOnlyRate = *ttftRate
	goMaxProcs = fmt.Sprintf("GOMAXPROCS=%d", *procs)
	if err := run(*duration, *rounds, *conns, *streams, *only); err != nil {
		fmt.Fprintln(os.Stderr, "bench/ai:", err)
		os.Exit(1)
	}
}

// gateway is one gateway under test.
type gateway struct {
	name    string
	port    int
	pid     int
	headers map[string]string
	rps     map[string][]float64 // by workload
	cpu     map[string][]float64 // µs per request, by workload
	busy    map[string][]float64 // share of its core the gateway used, by workload
}

// The two workloads: request bodies and the simulator's answer length.
var workloads = []struct{ name, body string }{
	{"chat", `{"model":"gpt-4o-mini","max_tokens":16,"messages":[{"role":"user","content":"Summarize the error budget policy in one line."}]}`},
	{"stream-100", `{"model":"gpt-4o-mini","stream":true,"max_tokens":100,"messages":[{"role":"user","content":"Summarize the error budget policy in one line."}]}`},
}

func run(d time.Duration, rounds, conns, streams int, only string) error {
	for _, bin := range []string{"wrk", "taskset"} {
		if _, err := exec.LookPath(bin); err != nil {
			return fmt.Errorf("%s is required: %w", bin, err)
		}
	}
	raiseFileLimit()
	out, err := filepath.Abs(filepath.Join("out", "ai"))
	if err != nil {
		return err
	}
	os.MkdirAll(out, 0o755)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var procs []*exec.Cmd
	defer func() {
		for _, p := range procs {
			p.Process.Signal(syscall.SIGTERM)
			p.Wait()
		}
	}()
	// stopProc ends one process that start started, before the run ends.
	stopProc := func(pid int) error {
		for i, p := range procs {
			if p.Process.Pid == pid {
				p.Process.Signal(syscall.SIGTERM)
				p.Wait()
				procs = slices.Delete(procs, i, i+1)
				return nil
			}
		}
		return fmt.Errorf("no process %d was started", pid)
	}
	start := func(cpu, log string, args ...string) (int, error) {
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
		return cmd.Process.Pid, nil
	}

	relia, err := harness.Relia(out, reliaBinary)
	if err != nil {
		return err
	}
	mockPort, aiPort, adminPort, gwPort, gwAdmin, pkPort := harness.FreePort(), harness.FreePort(), harness.FreePort(), harness.FreePort(), harness.FreePort(), harness.FreePort()
	gwAIPort, gwAIAdmin := harness.FreePort(), harness.FreePort()
	mockURL := fmt.Sprintf("http://127.0.0.1:%d", mockPort)
	// The simulator collects no garbage until it holds 2 GiB: on its
	// small heap the collector ran several times a second, and each run
	// held its answers back and sent them on in a clump, which the time
	// to first token step then measured as relia's queueing. Its log
	// lists each collection it made (gctrace).
	startMock := func(log string) (int, error) {
		pid, err := start("0", log, "env", "GOGC=off", "GOMEMLIMIT=2GiB", "GODEBUG=gctrace=1", relia, "ai", "mock", "--listen", fmt.Sprintf("127.0.0.1:%d", mockPort), "--output-tokens", "100")
		if err == nil {
			err = harness.WaitPort(mockPort, 30*time.Second)
		}
		return pid, err
	}
	mockPID, err := startMock("mock.log")
	if err != nil {
		return err
	}
	// newMock replaces the simulator with a new one on the same port,
	// for each run of the time-to-first-token step. The steps before
	// allocated gigabytes in the simulator, and with its collector held
	// off until 2 GiB, one collection swept all of them at once: on CPU
	// 0, at real-time priority, for 50-70 ms, during which the step's
	// client sent nothing and then sent 60-100 streams within a
	// millisecond. A new simulator starts each run with an empty heap,
	// and a run's streams stay below the limit; relia replaces its kept
	// connections to the old one as it finds them closed.
	ttftMocks := 0
	newMock := func() (pid int, log string, err error) {
		if err := stopProc(mockPID); err != nil {
			return 0, "", err
		}
		ttftMocks++
		log = fmt.Sprintf("mock-ttft-%d.log", ttftMocks)
		mockPID, err = startMock(log)
		return mockPID, filepath.Join(out, log), err
	}
	aiCfg := fmt.Sprintf(`kind: AIGateway
version: relia/v1
metadata: {name: bench}
spec:
  providers:
    - {name: mock, type: openai, url: "%s/v1", keys: [{value: sk-bench}]}
  routes:
    - model: gpt-4o-mini
      targets: [{provider: mock}]
      timeouts: {firstToken: 10s, idle: 10s, total: 300s}
`, mockURL)
	if only == "memory" {
		return memoryStep(relia, aiCfg, mockURL, out, streams, start)
	}
	os.WriteFile(filepath.Join(out, "ai.yaml"), []byte(aiCfg), 0o644)
	// relia's processes log each collection (gctrace), which the time to
	// first token step reads beside its slow streams.
	aiGC := &gcLog{path: filepath.Join(out, "ai.log"), started: time.Now()}
	aiPID, err := start("1", "ai.log", "env", goMaxProcs, "GODEBUG=gctrace=1", relia, "ai", "serve", "--config", filepath.Join(out, "ai.yaml"),
		"--listen", fmt.Sprintf("127.0.0.1:%d", aiPort), "--admin-addr", fmt.Sprintf("127.0.0.1:%d", adminPort))
	if err != nil {
		return err
	}
	// The same AI gateway on relia gateway's edge: a route with ai:.
	gwAIGC := &gcLog{path: filepath.Join(out, "gateway-ai.log")}
	startGatewayAI := func() (int, error) {
		os.WriteFile(filepath.Join(out, "gateway-ai.yaml"), []byte(gatewayAICfg(gwAIPort, gwAIAdmin, aiCfg)), 0o644)
		gwAIGC.started = time.Now()
		return start("1", "gateway-ai.log", "env", goMaxProcs, "GODEBUG=gctrace=1", relia, "gateway", "--watch", "0", "--config", filepath.Join(out, "gateway-ai.yaml"))
	}
	// maxStreamRate measures the stream rate the relia process at port
	// serves now: wrk for calibrateFor with the throughput step's stream
	// workload.
	maxStreamRate := func(port int) (float64, error) {
		script := filepath.Join(out, fmt.Sprintf("wrk-max-stream-100-%d.lua", port))
		if err := os.WriteFile(script, []byte(wrkScript(workloads[1].body, nil)), 0o644); err != nil {
			return 0, err
		}
		rps, err := wrk(fmt.Sprintf("http://127.0.0.1:%d/v1/chat/completions", port), script, conns, calibrateFor)
		// wrk leaves with streams in flight; they end within milliseconds.
		// Replacing the simulator before they have would fail them as the
		// provider's errors and open relia's breaker for the next run.
		time.Sleep(250 * time.Millisecond)
		return rps, err
	}
	if only == "ttft" {
		gwAIPID, err := startGatewayAI()
		if err != nil {
			return err
		}
		targets := []ttftTarget{{name: "relia ai serve", port: aiPort, pid: aiPID, gc: aiGC}, {name: "relia gateway (ai route)", port: gwAIPort, pid: gwAIPID, gc: gwAIGC}}
		targets = withReference(targets, out, mockPort, start)
		for _, t := range targets {
			if err := harness.WaitPort(t.port, 30*time.Second); err != nil {
				return fmt.Errorf("%s: %w", t.name, err)
			}
		}
		if ttftOnlyRate > 0 {
			return ttftStep(mockURL, newMock, targets, ttftOnlyRate, nil, rounds, d)
		}
		return ttftStep(mockURL, newMock, targets, 0, maxStreamRate, rounds, d)
	}
	gwCfg := fmt.Sprintf(`kind: Gateway
version: relia/v1
spec:
  listeners: [{address: "127.0.0.1:%d"}]
  admin: {address: "127.0.0.1:%d"}
  accessLog: {disabled: true}
  upstreams: [{name: mock, targets: [{address: "127.0.0.1:%d"}]}]
  routes: [{name: all, upstream: mock, timeout: 300s}]
`, gwPort, gwAdmin, mockPort)
	os.WriteFile(filepath.Join(out, "gateway.yaml"), []byte(gwCfg), 0o644)
	gwPID, err := start("1", "gateway.log", "env", goMaxProcs, relia, "gateway", "--watch", "0", "--config", filepath.Join(out, "gateway.yaml"))
	if err != nil {
		return err
	}
	gwAIPID, err := startGatewayAI()
	if err != nil {
		return err
	}
	gateways := []*gateway{
		{name: "relia ai serve", port: aiPort, pid: aiPID},
		{name: "relia gateway (ai route)", port: gwAIPort, pid: gwAIPID},
		{name: "relia gateway (plain proxy)", port: gwPort, pid: gwPID},
	}
	var skipped []string
	if pk, err := startPortkey(out, pkPort, start); err != nil {
		skipped = append(skipped, "Portkey: "+err.Error())
	} else {
		gateways = append(gateways, &gateway{name: "Portkey", port: pkPort, pid: pk, headers: map[string]string{
			"x-portkey-provider": "openai", "x-portkey-custom-host": mockURL + "/v1",
		}})
	}
	for _, g := range gateways {
		if err := harness.WaitPort(g.port, 30*time.Second); err != nil {
			return fmt.Errorf("%s: %w", g.name, err)
		}
		g.rps, g.cpu, g.busy = map[string][]float64{}, map[string][]float64{}, map[string][]float64{}
	}
	for _, g := range gateways { // every gateway answers both workloads before timing starts
		for _, w := range workloads {
			if err := probe(g, w.body); err != nil {
				if g.name == "Portkey" {
					skipped = append(skipped, fmt.Sprintf("Portkey %s: %v", w.name, err))
					g.rps[w.name] = nil
					continue
				}
				return fmt.Errorf("%s %s: %w", g.name, w.name, err)
			}
		}
	}

	fmt.Printf("bench/ai: medians over %d rounds of %v, wrk -t1 -c%d and the simulator on CPU 0, gateways on CPU 1\n", rounds, d, conns)
	for _, s := range skipped {
		fmt.Println("skipped:", s)
	}
	for r := range rounds {
		for i := range gateways {
			g := gateways[(i+r)%len(gateways)]
			for _, w := range workloads {
				if v, ok := g.rps[w.name]; ok && v == nil {
					continue
				}
				script := filepath.Join(out, fmt.Sprintf("wrk-%s-%d.lua", w.name, g.port))
				os.WriteFile(script, []byte(wrkScript(w.body, g.headers)), 0o644)
				before := proc.CPUTime(g.pid)
				rps, err := wrk(fmt.Sprintf("http://127.0.0.1:%d/v1/chat/completions", g.port), script, conns, d)
				if err != nil {
					return fmt.Errorf("%s %s: %w", g.name, w.name, err)
				}
				g.rps[w.name] = append(g.rps[w.name], rps)
				used := proc.CPUTime(g.pid) - before
				g.cpu[w.name] = append(g.cpu[w.name], float64(used)/float64(time.Microsecond)/(rps*d.Seconds()))
				g.busy[w.name] = append(g.busy[w.name], float64(used)/float64(d))
			}
		}
	}
	ours, edge, plain := gateways[0], gateways[1], gateways[2]
	var portkey *gateway
	if len(gateways) > 3 {
		portkey = gateways[3]
	}
	fmt.Printf("\n%-30s %-11s %10s %14s %10s %14s\n", "gateway", "workload", "req/s", "CPU/request", "core busy", "relia / this")
	for _, g := range gateways {
		for _, w := range workloads {
			if len(g.rps[w.name]) == 0 {
				fmt.Printf("%-30s %-11s %10s %14s %10s %14s\n", g.name, w.name, "-", "-", "-", "-")
				continue
			}
			fmt.Printf("%-30s %-11s %10.0f %11.1f µs %9.0f%% %14.2f\n", g.name, w.name, harness.Median(g.rps[w.name]), harness.Median(g.cpu[w.name]),
				100*harness.Median(g.busy[w.name]), harness.Median(ours.rps[w.name])/harness.Median(g.rps[w.name]))
		}
	}
	added := harness.Median(ours.cpu["chat"]) - harness.Median(plain.cpu["chat"])
	fmt.Printf("\nCPU relia's AI route adds to a non-streaming call beyond the plain proxy path: %.1f µs by relia ai serve, %.1f µs on relia gateway's edge (goal <= 25 µs)\n",
		added, harness.Median(edge.cpu["chat"])-harness.Median(plain.cpu["chat"]))
	if portkey != nil && len(portkey.rps["chat"]) > 0 {
		fmt.Printf("throughput against Portkey on one core: %.1fx non-streaming", harness.Median(ours.rps["chat"])/harness.Median(portkey.rps["chat"]))
		if len(portkey.rps["stream-100"]) > 0 {
			fmt.Printf(", %.1fx streaming", harness.Median(ours.rps["stream-100"])/harness.Median(portkey.rps["stream-100"]))
		}
		fmt.Println(" (goal >= 10x)")
		// Where relia's core was not saturated, wrk and the simulator on
		// CPU 0 were the limit, and the req/s ratio measures them: the
		// requests one core serves is then 1 / CPU per request.
		fmt.Printf("requests one core serves (1 / CPU per request) against Portkey: %.1fx by relia ai serve, %.1fx on relia gateway's edge (relia's core %.0f%% and %.0f%% busy, Portkey's %.0f%%)\n",
			harness.Median(portkey.cpu["chat"])/harness.Median(ours.cpu["chat"]), harness.Median(portkey.cpu["chat"])/harness.Median(edge.cpu["chat"]),
			100*harness.Median(ours.busy["chat"]), 100*harness.Median(edge.busy["chat"]), 100*harness.Median(portkey.busy["chat"]))
	}

	targets := []ttftTarget{{name: ours.name, port: ours.port, pid: ours.pid, gc: aiGC}, {name: edge.name, port: edge.port, pid: edge.pid, gc: gwAIGC}}
	targets = withReference(targets, out, mockPort, start)
	// Each run's rate is half of its target's max measured right before
	// it: this machine's speed drifts by a third from one minute to the
	// next, and half of a max measured minutes earlier loaded relia's core
	// by 80-93% in a slow minute, a different load from the one the goal
	// names.
	if err := ttftStep(mockURL, newMock, targets, harness.Median(ours.rps["stream-100"])/2, maxStreamRate, rounds, d); err != nil {
		return err
	}

	if streams > 0 {
		return memoryStep(relia, aiCfg, mockURL, out, streams, start)
	}
	return nil
}

// memoryStep measures the resident memory of relia ai serve and of relia
// gateway with an ai: route, each with streams streams open at once: a
// slow simulator keeps every stream open (100 tokens at 1 a second), and
// the provider's maxConnections lets every stream have its connection.
// The route's timeouts are long: opening thousands of streams queues
// their first tokens for seconds on one core. The two processes are
// measured one after the other, each alone on CPU 1.
func memoryStep(relia, aiCfg, mockURL, out string, streams int, start func(cpu, log string, args ...string) (int, error)) error {
	slowPort := harness.FreePort()
	if _, err := start("0", "mock-slow.log", relia, "ai", "mock", "--listen", fmt.Sprintf("127.0.0.1:%d", slowPort), "--output-tokens", "100", "--tps", "1"); err != nil {
		return err
	}
	harness.WaitPort(slowPort, 30*time.Second)
	slowCfg := strings.Replace(aiCfg, mockURL, fmt.Sprintf("http://127.0.0.1:%d", slowPort), 1)
	slowCfg = strings.Replace(slowCfg, "keys: [{value: sk-bench}]}", fmt.Sprintf("keys: [{value: sk-bench}], maxConnections: %d, breaker: {consecutiveFailures: 1000}}", streams), 1)
	slowCfg = strings.Replace(slowCfg, "timeouts: {firstToken: 10s, idle: 10s, total: 300s}", "timeouts: {firstToken: 120s, idle: 120s, total: 600s}", 1)
	os.WriteFile(filepath.Join(out, "ai-slow.yaml"), []byte(slowCfg), 0o644)
	slowAI, slowAdmin := harness.FreePort(), harness.FreePort()
	gwPort, gwAdmin := harness.FreePort(), harness.FreePort()
	os.WriteFile(filepath.Join(out, "gateway-ai-slow.yaml"), []byte(gatewayAICfg(gwPort, gwAdmin, slowCfg)), 0o644)
	servers := []struct {
		name string
		port int
		args []string
	}{
		{"relia ai serve", slowAI, []string{"ai", "serve", "--config", filepath.Join(out, "ai-slow.yaml"),
			"--listen", fmt.Sprintf("127.0.0.1:%d", slowAI), "--admin-addr", fmt.Sprintf("127.0.0.1:%d", slowAdmin)}},
		{"relia gateway (ai route)", gwPort, []string{"gateway", "--watch", "0", "--config", filepath.Join(out, "gateway-ai-slow.yaml")}},
	}
	var failed error
	for _, srv := range servers {
		pid, err := start("1", "memory-"+strings.Fields(srv.name)[1]+".log", append([]string{"env", goMaxProcs, relia}, srv.args...)...)
		if err != nil {
			return err
		}
		if err := harness.WaitPort(srv.port, 30*time.Second); err != nil {
			return fmt.Errorf("%s: %w", srv.name, err)
		}
		idle := residentBytes(pid)
		rss, opened, err := holdStreams(fmt.Sprintf("http://127.0.0.1:%d/v1/chat/completions", srv.port), streams, pid)
		perStream := 0.0
		if opened > 0 {
			perStream = float64(rss.total-idle.total) / float64(opened) / 1e3
		}
		fmt.Printf("%s: %d streams open at once: %.0f MB resident, %.1f KB a stream above its %.0f MB idle (goal <= 200 MB for 10,000); its own memory %.0f MB (%.0f MB idle), its binary's and other files' pages %.0f MB (%.0f MB idle)\n",
			srv.name, opened, float64(rss.total)/1e6, perStream, float64(idle.total)/1e6, float64(rss.anon)/1e6, float64(idle.anon)/1e6, float64(rss.file)/1e6, float64(idle.file)/1e6)
		if err != nil && failed == nil {
			failed = fmt.Errorf("%s: %w", srv.name, err)
		}
		syscall.Kill(pid, syscall.SIGTERM) // the other server's figure is taken without this one's memory beside it
	}
	return failed
}

// gatewayAICfg is a relia gateway config that serves the AI gateway of
// aiCfg (its AIGateway document, named bench) on a route with ai:.
func gatewayAICfg(port, admin int, aiCfg string) string {
	return fmt.Sprintf(`kind: Gateway
version: relia/v1
spec:
  listeners: [{address: "127.0.0.1:%d"}]
  admin: {address: "127.0.0.1:%d"}
  accessLog: {disabled: true}
  routes: [{name: ai, ai: bench}]
---
`, port, admin) + aiCfg
}

// startPortkey installs Portkey's gateway from npm into out/portkey (once)
// and starts it on CPU 1.
func startPortkey(out string, port int, start func(cpu, log string, args ...string) (int, error)) (int, error) {
	if _, err := exec.LookPath("node"); err != nil {
		return 0, errors.New("node is not installed")
	}
	dir := filepath.Join(out, "portkey")
	script := filepath.Join(dir, "node_modules", "@portkey-ai", "gateway", "build", "start-server.js")
	if _, err := os.Stat(script); err != nil {
		if _, err := exec.LookPath("npm"); err != nil {
			return 0, errors.New("npm is not installed")
		}
		install := exec.Command("npm", "install", "--prefix", dir, "--no-audit", "--no-fund", "@portkey-ai/gateway@1.15.2")
		if b, err := install.CombinedOutput(); err != nil {
			return 0, fmt.Errorf("npm install @portkey-ai/gateway: %v: %s", err, b)
		}
	}
	return start("1", "portkey.log", "env", "NODE_ENV=production", "node", script, fmt.Sprintf("--port=%d", port), "--headless")
}

// probe checks that a gateway answers a workload's request well.
func probe(g *gateway, body string) error {
	req, _ := http.NewRequest(http.MethodPost, fmt.Sprintf("http://127.0.0.1:%d/v1/chat/completions", g.port), strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer sk-bench")
	for k, v := range g.headers {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || (!bytes.Contains(b, []byte(`"usage"`)) && !bytes.Contains(b, []byte("[DONE]"))) {
		return fmt.Errorf("answered %d: %.200s", resp.StatusCode, b)
	}
	return nil
}

func wrkScript(body string, headers map[string]string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "wrk.method = \"POST\"\nwrk.body = %q\nwrk.headers[\"Content-Type\"] = \"application/json\"\nwrk.headers[\"Authorization\"] = \"Bearer sk-bench\"\n", body)
	for k, v := range headers {
		fmt.Fprintf(&b, "wrk.headers[%q] = %q\n", k, v)
	}
	return b.String()
}

var (
	wrkRPS    = regexp.MustCompile(`Requests/sec:\s+([0-9.]+)`)
	wrkErrors = regexp.MustCompile(`(Socket errors|Non-2xx or 3xx responses)`)
)

func wrk(url, script string, conns int, d time.Duration) (float64, error) {
	out, err := exec.Command("taskset", "-c", "0", "wrk", "-t1", "--timeout", "30s", fmt.Sprintf("-c%d", conns), fmt.Sprintf("-d%ds", int(d.Seconds())), "-s", script, url).CombinedOutput()
	if err != nil {
		return 0, fmt.Errorf("wrk: %w: %s", err, out)
	}
	if wrkErrors.Match(out) {
		return 0, fmt.Errorf("wrk saw errors: %s", out)
	}
	m := wrkRPS.FindSubmatch(out)
	if m == nil {
		return 0, fmt.Errorf("no Requests/sec in wrk's output: %s", out)
	}
	return strconv.ParseFloat(string(m[1]), 64)
}

// memoryHold is -hold.
var memoryHold time.Duration

// reliaBinary is -relia: the binary to measure, or "" to build one.
var reliaBinary string

// ttftOnlyRate is -ttft-rate, for -only ttft.
var ttftOnlyRate float64

// goMaxProcs is -gomaxprocs, as the environment of the relia processes.
var goMaxProcs = "GOMAXPROCS=1"

// ttftTarget is a process whose time to first token is measured: relia,
// or nginx for reference.
type ttftTarget struct {
	name      string
	port, pid int
	// awake: the target's core is kept from idling while it is measured
	// (keepAwake).
	awake bool
	// reference: a proxy that only passes the stream on (nginx), measured
	// at the direct runs' rate (half relia ai serve's max), not at half
	// its own: what this machine's core and loopback give any proxy's
	// first token at relia's rate.
	reference bool
	// gc is the target's log of its collections (relia's; nil for nginx).
	gc *gcLog
}

// withReference adds nginx as the step's reference target, or says why
// it cannot.
func withReference(targets []ttftTarget, out string, mockPort int, start func(cpu, log string, args ...string) (int, error)) []ttftTarget {
	pid, port, err := startReferenceProxy(out, mockPort, start)
	if err != nil {
		fmt.Printf("  no nginx for reference in the time-to-first-token step: %v\n", err)
		return targets
	}
	return append(targets, ttftTarget{name: "nginx (reference)", port: port, pid: pid, reference: true})
}

// startReferenceProxy starts nginx on CPU 1 as a streaming reverse proxy
// to the simulator at mockPort (no buffering, kept upstream connections):
// the time-to-first-token step's reference. It returns the master's pid
// (its worker is its child, counted by proc.CPUTime) and nginx's port.
func startReferenceProxy(out string, mockPort int, start func(cpu, log string, args ...string) (int, error)) (pid, port int, err error) {
	if _, err := exec.LookPath("nginx"); err != nil {
		return 0, 0, err
	}
	dir := filepath.Join(out, "nginx-ttft")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return 0, 0, err
	}
	port = harness.FreePort()
	// Connections enough for the bursts a starved client sends: short of
	// them, nginx closes kept client connections to make room, which the
	// client then finds closed (EOF), and logs that only as a warning.
	conf := fmt.Sprintf(`worker_processes 1;
worker_rlimit_nofile 19000;
daemon off;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log warn;
events { worker_connections 16384; }
http {
  access_log off;
  keepalive_requests 1000000;
  client_body_temp_path %[1]s; proxy_temp_path %[1]s; fastcgi_temp_path %[1]s; uwsgi_temp_path %[1]s; scgi_temp_path %[1]s;
  upstream simulator { server 127.0.0.1:%[2]d; keepalive 64; keepalive_requests 1000000; }
  server {
    listen 127.0.0.1:%[3]d;
    location / {
      proxy_pass http://simulator; proxy_http_version 1.1; proxy_set_header Connection "";
      proxy_buffering off;
    }
  }
}
`, dir, mockPort, port)
	path := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		return 0, 0, err
	}
	pid, err = start("1", "nginx-ttft.log", "nginx", "-c", path, "-p", dir)
	if err == nil {
		err = harness.WaitPort(port, 30*time.Second)
	}
	return pid, port, err
}

// calibrateFor is how long the time-to-first-token step measures a relia
// target's max stream rate, before and after each of its runs.
const calibrateFor = 3 * time.Second

// ttftStep compares the p99 of time to first token straight to the
// simulator and through each target at rate streams a second, rounds
// times, direct and through each target in turn. With maxNow, each
// run's rate is instead half of its target's max stream rate, which
// maxNow measures right before the run, and rate (when not 0) is the one
// the throughput step's median gave, reported beside it. The direct run
// goes at half the first target's max. maxNow measures the target again
// after each run: when its max moved so far during the run that the run
// was not at about half of it (outside 45-55%), the run is measured again
// at half the later max (machineDrifted).
//
// The step's client (this process) and the simulator share CPU 0, and
// each delayed the other: a client late to send sent several requests at
// once, a simulator late to answer sent several first tokens at once,
// and relia's queue then measured the clumps. For the step both run at
// a real-time priority (SCHED_FIFO), so that each runs when its work
// comes; relia stays an ordinary process on CPU 1.
//
// Each target is measured twice a round: with its core kept from idling
// (keepAwake), and with the core let idle, as the machine leaves it.
func ttftStep(mockURL string, newMock func() (pid int, log string, err error), targets []ttftTarget, rate float64, maxNow func(port int) (float64, error), rounds int, d time.Duration) error {
	if restore, err := realTime(os.Getpid()); err != nil {
		fmt.Printf("  the step's client runs at its usual priority: %v\n", err)
	} else {
		defer restore()
	}
	var measured []int
	for _, t := range targets {
		measured = append(measured, t.pid)
	}
	if restore, moved, err := shieldCore(1, measured...); err != nil {
		fmt.Printf("  other threads may run on relia's core: %v\n", err)
	} else {
		fmt.Printf("  %d threads of other processes are kept off CPU 1 for the step\n", moved)
		defer restore()
	}
	// A new simulator serves each run, started after the run's
	// calibration: the calibrations' streams would otherwise fill its heap
	// and set its collector off during the run. gcInRuns counts the
	// collections the simulators made during the runs themselves.
	var mockLogs []string
	gcInRuns := 0
	freshMock := func() (log string, err error) {
		pid, log, err := newMock()
		if err != nil {
			return "", fmt.Errorf("starting a new simulator: %w", err)
		}
		mockLogs = append(mockLogs, log)
		if _, err := realTime(pid); err != nil {
			fmt.Printf("  the simulator runs at its usual priority: %v\n", err)
		}
		return log, nil
	}
	var rows []ttftTarget
	for _, t := range targets {
		t.awake = true
		rows = append(rows, t)
		t.awake, t.name = false, t.name+", its core let idle"
		rows = append(rows, t)
	}
	targets = rows
	var direct []float64
	via := make([][]float64, len(targets))
	wire := make([][]wireResult, len(targets))
	// busy is the share of its core each target used in each round, and
	// perStream its CPU a stream: half the max rate loads the core by
	// more than half when a stream costs more there than at the max.
	busy := make([][]float64, len(targets))
	perStream := make([][]float64, len(targets))
	// behind is how late the client started its streams in each run and
	// how busy CPU 0 was (the client, the simulator and the packet capture
	// share it): a generator short of CPU starts streams late and in
	// clumps, and relia's queue then holds the clump.
	// steal is the time the host kept each CPU from running during the
	// run (CPU 0, CPU 1): a tail that came with it is the machine's.
	type generator struct {
		p50, p99, busy float64
		steal          [2]time.Duration
	}
	behind := make([][]generator, len(targets))
	var directGen []generator
	measureGen := func(run ttftRun, busyBefore, totalBefore, stealBefore []time.Duration) generator {
		busyAfter, totalAfter := proc.CPUTimes()
		stealAfter := proc.StealTimes()
		g := generator{p50: quantile(run.late, 0.5), p99: quantile(run.late, 0.99)}
		if len(busyAfter) > 0 && len(busyBefore) > 0 && totalAfter[0] > totalBefore[0] {
			g.busy = float64(busyAfter[0]-busyBefore[0]) / float64(totalAfter[0]-totalBefore[0])
		}
		for cpu := range g.steal {
			if cpu < len(stealBefore) && cpu < len(stealAfter) {
				g.steal[cpu] = stealAfter[cpu] - stealBefore[cpu]
			}
		}
		return g
	}
	stepRate := rate
	var directRates []float64                   // each round's
	runRates := make([][]float64, len(targets)) // each run's, by target
	shares := make([][]float64, len(targets))   // each run's rate over its target's max measured after it
	var wireUnavailable error
	starvedRuns, driftedRuns, referenceFailed := 0, 0, 0
	u, err := url.Parse(mockURL)
	if err != nil {
		return err
	}
	mockPort, err := strconv.Atoi(u.Port())
	if err != nil {
		return fmt.Errorf("the simulator's port in %s: %w", mockURL, err)
	}
	for range rounds {
		round := len(directRates) + 1
		if maxNow != nil {
			m, err := maxNow(targets[0].port)
			if err != nil {
				return fmt.Errorf("%s's max stream rate before round %d: %w", targets[0].name, round, err)
			}
			rate = m / 2
		}
		directRates = append(directRates, rate)
		mockLog, err := freshMock()
		if err != nil {
			return err
		}
		genBusy, genTotal := proc.CPUTimes()
		genSteal := proc.StealTimes()
		run, err := ttftP99(mockURL+"/v1/chat/completions", rate, d)
		if err != nil {
			return fmt.Errorf("time to first token, direct: %w", err)
		}
		gcInRuns += collections(mockLog)
		direct = append(direct, run.p99)
		directGen = append(directGen, measureGen(run, genBusy, genTotal, genSteal))
		for i, t := range targets {
			rate := rate
			if maxNow != nil && !t.reference {
				m, err := maxNow(t.port)
				if err != nil {
					return fmt.Errorf("%s's max stream rate in round %d: %w", t.name, round, err)
				}
				rate = m / 2
			}
			for attempt := 1; ; attempt++ {
				streams := float64(max(int(rate*d.Seconds()), 10) + warmStreams)
				mockLog, err := freshMock()
				if err != nil {
					return err
				}
				capture, cerr := startWireCapture(t.port, mockPort)
				if cerr != nil && wireUnavailable == nil {
					wireUnavailable = cerr
				}
				wake := func() {}
				if t.awake {
					if wake, err = keepAwake(1); err != nil {
						return fmt.Errorf("keeping CPU 1 awake: %w", err)
					}
				}
				cpuBefore, wallBefore := proc.CPUTime(t.pid), time.Now()
				genBusy, genTotal = proc.CPUTimes()
				genSteal = proc.StealTimes()
				run, err = ttftP99(fmt.Sprintf("http://127.0.0.1:%d/v1/chat/completions", t.port), rate, d)
				used, wall := proc.CPUTime(t.pid)-cpuBefore, time.Since(wallBefore)
				runEnd := time.Now()
				wake()
				gcInRuns += collections(mockLog)
				if err != nil {
					if capture != nil {
						capture.finish()
					}
					if t.reference {
						// The reference is there to read relia's runs by, not
						// to be judged: its failed run is left out, said so.
						fmt.Printf("  round %d, %s: %v; the run is left out\n", round, t.name, err)
						referenceFailed++
						break
					}
					return fmt.Errorf("time to first token, through %s: %w", t.name, err)
				}
				var r wireResult
				if capture != nil {
					if r, err = capture.finish(); err != nil {
						return fmt.Errorf("capturing %s's packets: %w", t.name, err)
					}
					if starved(r, rate) && attempt <= starvedRetries {
						fmt.Printf("  round %d, %s: the step's client fell behind its schedule (%d requests arrived within a millisecond, after %.1f ms without one), so relia's queue measured the client's burst (p99 %.3f ms): measured again\n",
							round, t.name, r.densest, r.maxGap*1000, quantile(r.added, 0.99)*1000)
						starvedRuns++
						continue
					}
				}
				share := math.NaN() // of the max measured after the run
				if maxNow != nil && !t.reference {
					after, err := maxNow(t.port)
					if err != nil {
						return fmt.Errorf("%s's max stream rate after a run in round %d: %w", t.name, round, err)
					}
					share = rate / after
					if machineDrifted(rate, after) && attempt <= starvedRetries {
						fmt.Printf("  round %d, %s: its max moved during the run (%.0f streams/s before it, %.0f after), so the run at %.0f streams/s was at %.0f%% of the later max, not half (p99 %.3f ms): measured again at %.0f streams/s\n",
							round, t.name, 2*rate, after, rate, 100*rate/after, run.p99*1000, after/2)
						driftedRuns++
						rate = after / 2
						continue
					}
				}
				if capture != nil {
					r.rate = rate
					if t.gc != nil {
						r.collections = t.gc.collections(wallBefore, runEnd)
					}
					wire[i] = append(wire[i], r)
				}
				runRates[i] = append(runRates[i], rate)
				shares[i] = append(shares[i], share)
				busy[i] = append(busy[i], float64(used)/float64(wall))
				perStream[i] = append(perStream[i], float64(used)/float64(time.Microsecond)/streams)
				via[i] = append(via[i], run.p99)
				behind[i] = append(behind[i], measureGen(run, genBusy, genTotal, genSteal))
				break
			}
		}
	}
	for r, g := range directGen {
		fmt.Printf("  round %d, direct: the client started its streams p50 %.3f ms and p99 %.3f ms behind their schedule, CPU 0 (the client and the simulator) %.0f%% busy%s\n",
			r+1, g.p50*1000, g.p99*1000, 100*g.busy, stolen(g.steal))
	}
	if maxNow != nil {
		fmt.Printf("  each run at half its target's max measured (%v of wrk, as in the throughput step) right before it; the direct runs at half %s's: %s streams/s",
			calibrateFor, targets[0].name, joinRates(directRates))
		if stepRate > 0 {
			fmt.Printf("; half the throughput step's median: %.0f streams/s", stepRate)
		}
		fmt.Println()
	}
	for i, t := range targets {
		which, procs := "half its max; the runs' median", ", "+goMaxProcs
		if t.reference {
			which, procs = "the direct runs' rate, half relia ai serve's max; their median", ""
		}
		fmt.Printf("at %.0f streams/s (%s)%s: p99 time to first token direct %.3f ms, through %s %.3f ms, added %.3f ms (the difference of two tails)\n",
			harness.Median(runRates[i]), which, procs, harness.Median(direct)*1000, t.name, harness.Median(via[i])*1000, (harness.Median(via[i])-harness.Median(direct))*1000)
		for r := range busy[i] {
			g := behind[i][r]
			load := ""
			if !math.IsNaN(shares[i][r]) {
				load = fmt.Sprintf(" (%.0f%% of its max measured after the run)", 100*shares[i][r])
			}
			fmt.Printf("  round %d, %.0f streams/s%s: %s's core %.0f%% busy, %.0f µs of its CPU a stream, p99 time to first token %.3f ms; the client started its streams p50 %.3f ms and p99 %.3f ms behind their schedule, CPU 0 (the client, the simulator and the packet capture) %.0f%% busy%s\n",
				r+1, runRates[i][r], load, t.name, 100*busy[i][r], perStream[i][r], via[i][r]*1000, g.p50*1000, g.p99*1000, 100*g.busy, stolen(g.steal))
		}
		for _, r := range wire[i] {
			ms := func(v []float64, q float64) float64 { return quantile(v, q) * 1000 }
			fmt.Printf("  %s's own time to first token on the wire (request in to first token out, less the provider's request in to first token out): p50 %.3f ms, p99 %.3f ms, max %.3f ms over %d streams (%d seen in part, %d of %d packets dropped) (goal p99 <= 1 ms); request in to out p50 %.3f p99 %.3f ms, first token in to out p50 %.3f p99 %.3f ms; the simulator's own request in to first token out p50 %.3f p99 %.3f ms; requests arrived at most %.2f ms apart and at most %d within a millisecond (the schedule: %.2f ms apart, %.1f a millisecond)\n",
				t.name, ms(r.added, 0.5), ms(r.added, 0.99), ms(r.added, 1), len(r.added), r.partial, r.drops, r.packets, ms(r.ask, 0.5), ms(r.ask, 0.99), ms(r.answer, 0.5), ms(r.answer, 0.99), ms(r.provider, 0.5), ms(r.provider, 0.99),
				r.maxGap*1000, r.densest, 1000/r.rate, r.rate/1000)
			if t.gc != nil {
				near := r.slowNear(r.collections, gcWindow)
				fmt.Printf("    %s's streams over 1 ms: %d, of which %d arrived within %v of the start of one of its %d collections in the run (those windows: %.1f%% of the run)\n",
					t.name, len(r.slowAt), near, gcWindow, len(r.collections), 100*float64(len(r.collections))*gcWindow.Seconds()/d.Seconds())
			}
		}
	}
	// The goal's reading, a line a target: in how many runs relia's own
	// p99 on the wire was at most 1 ms.
	for i, t := range targets {
		if len(wire[i]) == 0 {
			continue
		}
		under := 0
		for _, r := range wire[i] {
			if quantile(r.added, 0.99) <= 0.001 {
				under++
			}
		}
		fmt.Printf("  %s: own p99 to first token on the wire at most 1 ms in %d of %d runs\n", t.name, under, len(wire[i]))
	}
	if gcInRuns == 0 {
		fmt.Println("  the simulators (a new one each run) collected no garbage during the runs")
	} else {
		fmt.Printf("  the simulators (a new one each run) collected garbage %d times during the runs: each collection holds their answers back (their logs: %s)\n", gcInRuns, strings.Join(mockLogs, ", "))
	}
	if wireUnavailable != nil {
		fmt.Printf("  no packet capture, so relia's own time to first token was not taken: %v\n", wireUnavailable)
	}
	if starvedRuns > 0 {
		fmt.Printf("  %d runs were measured again because the step's client fell behind its schedule (above)\n", starvedRuns)
	}
	if driftedRuns > 0 {
		fmt.Printf("  %d runs were measured again because their target's max moved during the run (above)\n", driftedRuns)
	}
	if referenceFailed > 0 {
		fmt.Printf("  %d runs of the reference were left out because streams through it failed (above)\n", referenceFailed)
	}
	return nil
}

// joinRates writes rates as "4100, 4250, ..." for the step's report.
func joinRates(rates []float64) string {
	s := make([]string, len(rates))
	for i, r := range rates {
		s[i] = strconv.FormatFloat(r, 'f', 0, 64)
	}
	return strings.Join(s, ", ")
}

// starvedRetries is how many times a target's run is measured again in a
// round when the step's client fell behind its schedule or the target's
// max moved during the run.
const starvedRetries = 2

// machineDrifted reports whether a run at rate, half its target's max
// measured right before it, was not at about half the max measured right
// after it (45-55%): this machine's speed moves by a third within a
// minute, and a run in a slow stretch loads relia's core by far more than
// half, a fast one by less. Two measures of the same max agree within a
// few percent, so a 10% band rejects only runs whose load was not the
// one the goal names.
func machineDrifted(rate, maxAfter float64) bool {
	share := rate / maxAfter
	return share > 0.55 || share < 0.45
}

// starved reports whether the step's client fell behind its schedule in
// a run: at least ten times the schedule's requests arrived within one
// millisecond, the burst a client held off its core sends once it runs
// again (rounds where it kept up had 3-25 at 3,000 a second; those
// behind a client held off for 12-32 ms had 35-86). relia's queue then
// measures the client: a generator that could not keep its schedule is
// not reported as the service's tail.
func starved(r wireResult, rate float64) bool {
	return float64(r.densest) >= 10*rate/1000
}

// keepAwake keeps core from idling until the returned function is
// called: a busy loop at the lowest priority there is (SCHED_IDLE), which
// any other thread preempts as it wakes, as the kernel's idle=poll keeps
// every core of a machine polling. This machine is a virtual one whose
// idle cores halt at once (its haltpoll driver polls for 0 ns): a halted
// core's next packet waits for the host to run it again. With relia's
// core kept busy so, relia's own p99 at the half rate was 0.35-0.84 ms
// in 8 rounds of 8, against 0.74-4.45 ms in 11 rounds with it let idle,
// and the kernel's default 200 µs of halt polling did not do what the
// loop does (docs/benchmarks.md, "A simulator that no longer stalls
// the step, and relia's core kept awake"). Measured in the same run, the
// two say how much of a tail is the idle core's. relia's CPU figures are
// its own process's and do not count the loop.
func keepAwake(core int) (stop func(), err error) {
	cmd := exec.Command("taskset", "-c", strconv.Itoa(core), "chrt", "--idle", "0", "sh", "-c", "while :; do :; done")
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	return func() {
		cmd.Process.Kill()
		cmd.Wait()
	}, nil
}

// stolen says how long the host kept CPU 0 and CPU 1 from running
// during a run (the steal time of /proc/stat, in steps of 10 ms), when
// it did: a tail that came with it measured the machine as well as the
// target.
func stolen(steal [2]time.Duration) string {
	if steal[0] <= 0 && steal[1] <= 0 {
		return ""
	}
	return fmt.Sprintf("; the host held CPU 0 for %v and CPU 1 for %v (steal)", steal[0], steal[1])
}

// gcLog is a Go program's log written with GODEBUG=gctrace=1 and the
// time the program was started: each collection's line gives its start
// as seconds since the program's runtime began ("gc 12 @8.231s ..."),
// a few milliseconds after started.
type gcLog struct {
	path    string
	started time.Time
}

// gcWindow is how long after a collection's start the step counts a
// slow stream as the collection's: its marking (6-10 ms at the half
// rate, one processor) and the queue the marking leaves, which streams
// timed against the collections' starts showed drained within 40 ms
// (docs/benchmarks.md).
const gcWindow = 50 * time.Millisecond

// collections returns the start of each collection that began between
// from and to.
func (g *gcLog) collections(from, to time.Time) []time.Time {
	var starts []time.Time
	for _, at := range gcStarts(g.path) {
		t := g.started.Add(at)
		if !t.Before(from) && !t.After(to) {
			starts = append(starts, t)
		}
	}
	return starts
}

// collections counts the garbage collections in a Go program's log
// written with GODEBUG=gctrace=1: a line each.
func collections(log string) int { return len(gcStarts(log)) }

// gcStarts returns when each collection a gctrace log lists began, from
// its line ("gc 12 @8.231s ..."): the time since the program's runtime
// began.
func gcStarts(log string) []time.Duration {
	b, _ := os.ReadFile(log)
	var starts []time.Duration
	for line := range bytes.Lines(b) {
		rest, ok := bytes.CutPrefix(line, []byte("gc "))
		if !ok {
			continue
		}
		_, at, ok := bytes.Cut(rest, []byte(" @"))
		if !ok {
			continue
		}
		secs, _, ok := bytes.Cut(at, []byte("s "))
		if !ok {
			continue
		}
		if v, err := strconv.ParseFloat(string(secs), 64); err == nil {
			starts = append(starts, time.Duration(v*float64(time.Second)))
		}
	}
	return starts
}

// realTime gives every thread of the processes SCHED_FIFO priority 10,
// and returns what gives them back the ordinary policy. It needs
// CAP_SYS_NICE.
func realTime(pids ...int) (restore func(), err error) {
	set := func(policy, priority string) error {
		for _, pid := range pids {
			if out, err := exec.Command("chrt", "-a", policy, "-p", priority, strconv.Itoa(pid)).CombinedOutput(); err != nil {
				return fmt.Errorf("chrt -a %s -p %s %d: %v: %s", policy, priority, pid, err, bytes.TrimSpace(out))
			}
		}
		return nil
	}
	if err := set("-f", "10"); err != nil {
		set("-o", "0")
		return nil, err
	}
	return func() { set("-o", "0") }, nil
}

// shieldCore keeps every thread that may run elsewhere off CPU core for
// the step, except those of the processes in keep (the relia processes
// measured there), and returns what gives each its mask back: a shield
// for the core, as `cset shield` or isolcpus make one. perf sched on CPU
// 1 during the step showed the machine's own threads running there: the
// kernel's memory monitor (kdamond) for 0.7-2.4 ms every half second, and
// a worker of the machine's init process (a Tokio runtime) for 3.8-7 ms
// about once a second, each time holding relia's thread off its core for
// that long. Threads bound to the core alone (per-CPU kernel threads)
// stay. It needs root.
func shieldCore(core int, keep ...int) (restore func(), moved int, err error) {
	procs, err := os.ReadDir("/proc")
	if err != nil {
		return func() {}, 0, err
	}
	kept := map[int]bool{}
	for _, pid := range keep {
		kept[pid] = true
	}
	var undo []func()
	restore = func() {
		for _, u := range undo {
			u()
		}
	}
	for _, p := range procs {
		pid, perr := strconv.Atoi(p.Name())
		if perr != nil || kept[pid] {
			continue
		}
		tasks, _ := os.ReadDir("/proc/" + p.Name() + "/task")
		for _, t := range tasks {
			tid, terr := strconv.Atoi(t.Name())
			if terr != nil {
				continue
			}
			var was unix.CPUSet
			if unix.SchedGetaffinity(tid, &was) != nil || !was.IsSet(core) || was.Count() == 1 {
				continue
			}
			away := was
			away.Clear(core)
			if unix.SchedSetaffinity(tid, &away) != nil {
				continue // a kernel thread that may not be moved, or one that just ended
			}
			undo = append(undo, func() { unix.SchedSetaffinity(tid, &was) })
			moved++
		}
	}
	return restore, moved, nil
}

// pinToCPU0 runs the harness itself on CPU 0, beside wrk and the
// simulator, by starting itself again under taskset: its streaming
// clients (the time-to-first-token step) must not take the gateways'
// CPU 1, or the step measures them competing for it. The processes it
// starts name their own CPU.
func pinToCPU0() {
	const pinned = "RELIA_BENCH_AI_ON_CPU0"
	if os.Getenv(pinned) != "" {
		return
	}
	exe, err := os.Executable()
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench/ai:", err)
		os.Exit(1)
	}
	cmd := exec.Command("taskset", append([]string{"-c", "0", exe}, os.Args[1:]...)...)
	cmd.Env = append(os.Environ(), pinned+"=1")
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	if err := cmd.Run(); err != nil {
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			os.Exit(exit.ExitCode())
		}
		fmt.Fprintln(os.Stderr, "bench/ai:", err)
		os.Exit(1)
	}
	os.Exit(0)
}

// warmStreams is how many streams the step sends at once before it
// measures, so that the client's connections and relia's to the
// provider are open before the first measured stream: opened during the
// measurement, each new connection pair cost relia an accept and a dial
// in the middle of the burst that needed it, and made that burst longer
// (a runtime trace of one slow run of streams: 38 dials and 33 new client
// connections within 50 ms). A service at its steady state has them open.
const warmStreams = 64

// ttftRun is what one run of the time-to-first-token step's client saw.
type ttftRun struct {
	// p99 is the p99 of the streams' time to first content token,
	// measured from each stream's scheduled start, in seconds.
	p99 float64
	// late is how long after its scheduled time each stream was started,
	// sorted, in seconds.
	late []float64
}

// ttftP99 sends streams at rate (open model, on schedule) for d and
// returns the p99 of their time to first content token, measured from
// each stream's scheduled start, and how late each request was started.
func ttftP99(url string, rate float64, d time.Duration) (ttftRun, error) {
	client, err := newRawClient(url)
	if err != nil {
		return ttftRun{}, err
	}
	defer client.close()
	if err := client.warm(warmStreams, client.request(workloads[1].body)); err != nil {
		return ttftRun{}, fmt.Errorf("warming %d connections: %w", warmStreams, err)
	}
	n := int(rate * d.Seconds())
	if n < 10 {
		n = 10
	}
	// Each stream is named in its "user" field, for the packet capture.
	// The requests are made before the run, so that the loop that keeps
	// the schedule does little else.
	reqs := make([][]byte, n)
	for i := range reqs {
		reqs[i] = client.request(strings.Replace(workloads[1].body, "{", fmt.Sprintf(`{%s%07d",`, ttftMarker, i), 1))
	}
	gap := time.Duration(float64(time.Second) / rate)
	var mu sync.Mutex
	var ttfts []float64
	var failed atomic.Int64
	var firstErr error // under mu
	fail := func(err error) {
		failed.Add(1)
		mu.Lock()
		if firstErr == nil {
			firstErr = err
		}
		mu.Unlock()
	}
	late := make([]float64, n)
	var readers sync.WaitGroup
	start := time.Now()
	for i, req := range reqs {
		at := start.Add(time.Duration(i) * gap)
		time.Sleep(time.Until(at))
		late[i] = time.Since(at).Seconds()
		readers.Go(func() {
			err := client.stream(req, func() {
				took := time.Since(at).Seconds()
				mu.Lock()
				ttfts = append(ttfts, took)
				mu.Unlock()
			})
			if err != nil {
				fail(err)
			}
		})
	}
	readers.Wait()
	if f := failed.Load(); f > 0 {
		return ttftRun{}, fmt.Errorf("%d of %d streams failed (the first: %v)", f, n, firstErr)
	}
	slices.Sort(ttfts)
	slices.Sort(late)
	return ttftRun{p99: ttfts[int(float64(len(ttfts)-1)*0.99)], late: late}, nil
}

// holdStreams opens n streams, waits for each one's first token, reads
// the gateway's resident memory, and closes them.
func holdStreams(url string, n, pid int) (rss resident, opened int, err error) {
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: n, DisableCompression: true}}
	var ready sync.WaitGroup
	var failed atomic.Int64
	// why keeps each distinct reason a stream failed to open, so that the
	// report says what failed, not only how many.
	var whyMu sync.Mutex
	why := map[string]int{}
	fail := func(err error) {
		failed.Add(1)
		whyMu.Lock()
		why[err.Error()]++
		whyMu.Unlock()
		ready.Done()
	}
	release := make(chan struct{})
	var done sync.WaitGroup
	for range n {
		ready.Add(1)
		done.Add(1)
		go func() {
			defer done.Done()
			req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(workloads[1].body))
			req.Header.Set("Authorization", "Bearer sk-bench")
			resp, err := client.Do(req)
			if err != nil {
				fail(err)
				return
			}
			defer resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				body, _ := io.ReadAll(io.LimitReader(resp.Body, 300))
				fail(fmt.Errorf("status %d: %s", resp.StatusCode, bytes.TrimSpace(body)))
				return
			}
			br := bufio.NewReader(resp.Body)
			for {
				line, err := br.ReadBytes('\n')
				if err != nil {
					fail(fmt.Errorf("reading the stream: %w", err))
					return
				}
				if bytes.Contains(line, []byte(`"content":" `)) {
					break
				}
			}
			ready.Done()
			<-release
		}()
		time.Sleep(500 * time.Microsecond) // do not overrun the listen backlogs
	}
	ready.Wait()
	rss = residentBytes(pid)
	if memoryHold > 0 {
		fmt.Fprintf(os.Stderr, "bench/ai: holding the streams open for %v: pid %d\n", memoryHold, pid)
		time.Sleep(memoryHold)
	}
	close(release)
	done.Wait()
	if f := failed.Load(); f > 0 {
		var reasons []string
		for r, k := range why {
			reasons = append(reasons, fmt.Sprintf("%d: %s", k, r))
		}
		slices.Sort(reasons)
		return rss, n - int(f), fmt.Errorf("%d of %d streams failed to open (%s)", f, n, strings.Join(reasons, "; "))
	}
	return rss, n, nil
}

func residentBytes(pid int) resident {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return resident{}
	}
	field := func(name string) int64 {
		m := regexp.MustCompile(name + `:\s+(\d+) kB`).FindSubmatch(b)
		if m == nil {
			return 0
		}
		kb, _ := strconv.ParseInt(string(m[1]), 10, 64)
		return kb * 1024
	}
	return resident{total: field("VmRSS"), anon: field("RssAnon"), file: field("RssFile") + field("RssShmem")}
}

// resident is a process's resident memory: in all (the goal's figure),
// its own (anonymous: heap, stacks, the runtime's), and the pages of its
// binary and other files it maps. The file pages vary with the page
// cache: the same binary started twice, once from a file just written and
// once from a copy, kept 28 and 39 MB of its file resident, with the same
// 6 MB of its own.
type resident struct{ total, anon, file int64 }

// raiseFileLimit lifts the open-file limit, for this process and the
// gateways it starts: 10,000 streams are 20,000 sockets in the gateway,
// besides its listeners and files, which a hard limit of 20,000 (this
// machine's) does not hold: a few streams then failed to open with 502,
// the gateway's dial to the provider refused for too many open files. So
// the hard limit is raised to 65,536 where the process may (with
// CAP_SYS_RESOURCE), else the soft one to the hard one; the streams that
// still fail are reported with their reason.
func raiseFileLimit() {
	var l syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l) != nil {
		return
	}
	if l.Max < 65536 {
		raised := syscall.Rlimit{Cur: 65536, Max: 65536}
		if syscall.Setrlimit(syscall.RLIMIT_NOFILE, &raised) == nil {
			return
		}
	}
	l.Cur = l.Max
	syscall.Setrlimit(syscall.RLIMIT_NOFILE, &l)
}
