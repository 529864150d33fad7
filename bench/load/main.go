// Command load compares relia's load generator with wrk, hey and k6 against
// one nginx, pinned the way docs/benchmarks.md describes: the generator on
// CPU 0, nginx on CPU 1, 50 connections, a 3-byte body, the same duration.
//
//	cd bench && go run ./load -duration 10s
//
// It measures, in order:
//
//  1. maximum throughput: wrk -t1 -c50, hey -c 50, k6 with 50 VUs (when
//     installed: k6 on PATH, or -k6 PATH; `make bench-deps` builds one into
//     .tools/bin, outside the main module) and relia load
//     --vus 50, which records every request in full (HDR histograms per
//     second, per request name, status codes); each tool is run -rounds
//     times in rotating order and the median reported, with relia's ratio
//     to each peer;
//  2. the open model at -rate (20,000) requests per second for 10 s: the
//     achieved rate against the target and the scheduling lag p99;
//  3. the RSS of -vus (10,000) closed-model VUs thinking 1 s between
//     requests for 15 s.
//
// A peer that is not installed is skipped and named. It is run on demand,
// never by go test.
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"syscall"
	"time"

	"github.com/relia-dev/relia/bench/internal/harness"
	"github.com/relia-dev/relia/load"
	"github.com/relia-dev/relia/outcome"
)

func main() {
	duration := flag.Duration("duration", 10*time.Second, "length of each throughput run")
	rounds := flag.Int("rounds", 3, "throughput rounds; each runs every tool once")
	rate := flag.Float64("rate", 20000, "open-model target rate")
	vus := flag.Int("vus", 10000, "closed-model VUs for the memory run")
	k6 := flag.String("k6", "", "k6 binary (default: k6 on PATH)")
	flag.Parse()
	if *rounds < 1 || *duration < time.Second || *rate <= 0 || *vus < 1 {
		fmt.Fprintln(os.Stderr, "bench/load: -rounds, -duration (>= 1s), -rate and -vus must be positive")
		os.Exit(2)
	}
	if err := run(*duration, *rounds, *rate, *vus, *k6); err != nil {
		fmt.Fprintln(os.Stderr, "bench/load:", err)
		os.Exit(1)
	}
}

const conns = 50

type tool struct {
	name string
	run  func(url string, d time.Duration) (float64, error)
	rps  []float64
}

func run(d time.Duration, rounds int, rate float64, vus int, k6 string) error {
	for _, bin := range []string{"nginx", "wrk", "taskset"} {
		if _, err := exec.LookPath(bin); err != nil {
			return fmt.Errorf("%s is required: %w", bin, err)
		}
	}
	out, err := filepath.Abs(filepath.Join("out", "load"))
	if err != nil {
		return err
	}
	os.RemoveAll(out)
	if err := os.MkdirAll(filepath.Join(out, "tmp"), 0o755); err != nil {
		return err
	}
	port := harness.FreePort()
	conf := fmt.Sprintf(`worker_processes 1;
worker_rlimit_nofile 40000;
daemon off;
pid %[1]s/nginx.pid;
error_log %[1]s/nginx-error.log;
events { worker_connections 30000; }
http {
  access_log off;
  keepalive_requests 1000000;
  client_body_temp_path %[1]s/tmp; proxy_temp_path %[1]s/tmp; fastcgi_temp_path %[1]s/tmp; uwsgi_temp_path %[1]s/tmp; scgi_temp_path %[1]s/tmp;
  server { listen 127.0.0.1:%[2]d; location / { return 200 "ok\n"; } }
}
`, out, port)
	if err := os.WriteFile(filepath.Join(out, "nginx.conf"), []byte(conf), 0o644); err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	nginx := exec.CommandContext(ctx, "taskset", "-c", "1", "nginx", "-c", filepath.Join(out, "nginx.conf"), "-p", out)
	nginx.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := nginx.Start(); err != nil {
		return fmt.Errorf("starting nginx: %w", err)
	}
	defer func() { nginx.Process.Signal(syscall.SIGTERM); nginx.Wait() }()
	if err := harness.WaitPort(port, 5*time.Second); err != nil {
		return err
	}
	url := fmt.Sprintf("http://127.0.0.1:%d/", port)

	relia, err := harness.Relia(out, "")
	if err != nil {
		return err
	}

	reliaTool := &tool{name: "relia load", run: func(url string, d time.Duration) (float64, error) {
		res, _, err := reliaRun(out, relia, url, "--vus", strconv.Itoa(conns), "--duration", d.String())
		if err != nil {
			return 0, err
		}
		return float64(res.Requests.Total().Total) / res.End.Sub(res.Start).Seconds(), nil
	}}
	tools := []*tool{
		{name: "wrk", run: func(url string, d time.Duration) (float64, error) {
			return pinned(`Requests/sec:\s+([0-9.]+)`, "wrk", "-t1", "-c"+strconv.Itoa(conns), "-d"+d.String(), url)
		}},
		reliaTool,
	}
	var skipped []string
	if _, err := exec.LookPath("hey"); err == nil {
		tools = append(tools, &tool{name: "hey", run: func(url string, d time.Duration) (float64, error) {
			return pinned(`Requests/sec:\s+([0-9.]+)`, "hey", "-c", strconv.Itoa(conns), "-z", d.String(), url)
		}})
	} else {
		skipped = append(skipped, "hey (not installed)")
	}
	if k6 == "" {
		k6, _ = exec.LookPath("k6")
	}
	if k6 != "" {
		script := filepath.Join(out, "k6.js")
		os.WriteFile(script, []byte("import http from 'k6/http';\nexport default function () { http.get(__ENV.URL); }\n"), 0o644)
		tools = append(tools, &tool{name: "k6", run: func(url string, d time.Duration) (float64, error) {
			return pinned(`http_reqs[.:\s]+[0-9]+\s+([0-9.]+)/s`, k6, "run", "--quiet", "--vus", strconv.Itoa(conns), "--duration", d.String(), "-e", "URL="+url, script)
		}})
	} else {
		skipped = append(skipped, "k6 (not on PATH; make bench-deps installs it into .tools/bin)")
	}

	fmt.Printf("maximum throughput: medians over %d rounds of %s, %d connections, generator on CPU 0, nginx on CPU 1\n", rounds, d, conns)
	for _, s := range skipped {
		fmt.Printf("skipped: %s\n", s)
	}
	for r := range rounds {
		for i := range tools {
			t := tools[(i+r)%len(tools)]
			rps, err := t.run(url, d)
			if err != nil {
				return fmt.Errorf("%s: %w", t.name, err)
			}
			t.rps = append(t.rps, rps)
		}
	}
	reliaRPS := harness.Median(reliaTool.rps)
	fmt.Printf("\n%-12s %10s %14s\n", "tool", "req/s", "relia / tool")
	for _, t := range tools {
		fmt.Printf("%-12s %10.0f %14.2f\n", t.name, harness.Median(t.rps), reliaRPS/harness.Median(t.rps))
	}

	res, _, err := reliaRun(out, relia, url, "--rate", strconv.FormatFloat(rate, 'f', -1, 64), "--duration", "10s")
	if err != nil {
		return fmt.Errorf("open model: %w", err)
	}
	sum := res.Requests.Total()
	achieved := float64(res.Dispatched) / res.Duration.Seconds()
	lag := res.Lag.Total().Latency
	fmt.Printf("\nopen model: target %.0f req/s for 10s: %d of %d arrivals sent, %d dropped; achieved %.1f req/s (%.2f%% of target); scheduling lag p50 %s p99 %s; latency p99 %s\n",
		rate, res.Dispatched, res.Planned, res.Dropped, achieved, 100*achieved/rate, lag.Quantile(0.5), lag.Quantile(0.99), sum.Latency.Quantile(0.99))

	scenario := filepath.Join(out, "vus.yaml")
	os.WriteFile(scenario, fmt.Appendf(nil, `kind: Scenario
version: relia/v1
metadata: {name: think}
spec:
  baseURL: %s
  requests: [{path: /, think: 1s}]
  load: {vus: %d, duration: 15s}
`, url, vus), 0o644)
	res, rss, err := reliaRun(out, relia, scenario)
	if err != nil {
		return fmt.Errorf("memory: %w", err)
	}
	fmt.Printf("\nclosed model: %d VUs thinking 1s for 15s: max RSS %.1f MB, %.0f req/s, %d errors\n",
		vus, float64(rss)/1024, float64(res.Requests.Total().Total)/res.End.Sub(res.Start).Seconds(),
		res.Requests.Total().Total-res.Requests.Total().ByClass[outcome.ClassOK])
	return nil
}

// reliaRun runs relia load pinned to CPU 0 and reads its results file; it
// returns the process's maximum RSS in KB.
func reliaRun(out, relia string, args ...string) (*load.Result, int64, error) {
	file := filepath.Join(out, "result.json")
	cmd := exec.Command("taskset", append([]string{"-c", "0", relia, "load", "--out", file}, args...)...)
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = nil, &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	if err != nil && !(errors.As(err, &ee) && ee.ExitCode() == 1) { // a failed threshold still measured
		return nil, 0, fmt.Errorf("%v: %s", err, stderr.String())
	}
	res, err := load.ReadResult(file)
	if err != nil {
		return nil, 0, err
	}
	return res, cmd.ProcessState.SysUsage().(*syscall.Rusage).Maxrss, nil
}

// pinned runs a peer on CPU 0 and reads its req/s with re.
func pinned(re string, args ...string) (float64, error) {
	out, err := exec.Command("taskset", append([]string{"-c", "0"}, args...)...).CombinedOutput()
	if err != nil {
		return 0, fmt.Errorf("%v: %s", err, out)
	}
	m := regexp.MustCompile(re).FindSubmatch(out)
	if m == nil {
		return 0, fmt.Errorf("no req/s in the output:\n%s", out)
	}
	return strconv.ParseFloat(string(m[1]), 64)
}
