// Command grpc compares relia's gRPC load with ghz on one server, pinned
// the way docs/benchmarks.md describes: the generator on CPU 0, the
// server (examples/grpcserver, grpc-go's interoperability test service)
// on CPU 1, the same method, message, concurrency, connections and
// duration.
//
//	cd bench && go run ./grpc -duration 10s -rounds 3
//
// Each round runs every tool once, in rotating order: ghz with -c
// concurrent workers over -connections connections (ghz on PATH, or
// -ghz PATH; `make bench-deps` installs one into .tools/bin, outside the
// main module), then relia load with as many VUs over as many
// connections. It prints the median throughput of each, relia's ratio,
// and each tool's CPU time per call (user and system, from the kernel's
// accounting of the process) beside it, so that a generator that is
// faster only by burning more than its core shows. It is run on demand,
// never by go test.
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"syscall"
	"time"

	"github.com/relia-dev/relia/bench/internal/harness"
	"github.com/relia-dev/relia/load"
)

func main() {
	duration := flag.Duration("duration", 10*time.Second, "length of each run")
	rounds := flag.Int("rounds", 3, "rounds; each runs every tool once")
	conc := flag.Int("c", 50, "concurrent calls (ghz workers, relia VUs)")
	conns := flag.Int("connections", 1, "HTTP/2 connections to the server")
	size := flag.Int("size", 10, "bytes in each response's payload")
	ghz := flag.String("ghz", "", "ghz binary (default: ghz on PATH, then ../.tools/bin/ghz)")
	flag.Parse()
	if *rounds < 1 || *duration < time.Second || *conc < 1 || *conns < 1 || *size < 0 {
		fmt.Fprintln(os.Stderr, "bench/grpc: -rounds, -duration (>= 1s), -c and -connections must be positive")
		os.Exit(2)
	}
	if err := run(*duration, *rounds, *conc, *conns, *size, *ghz); err != nil {
		fmt.Fprintln(os.Stderr, "bench/grpc:", err)
		os.Exit(1)
	}
}

const method = "grpc.testing.TestService/UnaryCall"

// sample is one run of one tool.
type sample struct {
	rps     float64
	cpuCall time.Duration // CPU time per call
}

type tool struct {
	name    string
	run     func(d time.Duration) (sample, error)
	samples []sample
}

func run(d time.Duration, rounds, conc, conns, size int, ghz string) error {
	if _, err := exec.LookPath("taskset"); err != nil {
		return fmt.Errorf("taskset is required: %w", err)
	}
	if ghz == "" {
		if p, err := exec.LookPath("ghz"); err == nil {
			ghz = p
		} else if p, err := filepath.Abs(filepath.Join("..", ".tools", "bin", "ghz")); err == nil {
			if _, err := os.Stat(p); err == nil {
				ghz = p
			}
		}
	}
	if ghz == "" {
		return errors.New("ghz is required: make bench-deps installs it into .tools/bin, or give -ghz")
	}
	out, err := filepath.Abs(filepath.Join("out", "grpc"))
	if err != nil {
		return err
	}
	os.RemoveAll(out)
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	for _, b := range []struct{ name, pkg string }{{"relia", "./cmd/relia"}, {"grpcserver", "./examples/grpcserver"}} {
		build := exec.Command("go", "build", "-o", filepath.Join(out, b.name), b.pkg)
		build.Dir = ".." // the main module
		build.Stdout, build.Stderr = os.Stderr, os.Stderr
		if err := build.Run(); err != nil {
			return fmt.Errorf("building %s: %w", b.pkg, err)
		}
	}
	port := harness.FreePort()
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	proto := filepath.Join(out, "testservice.proto")
	server := exec.Command("taskset", "-c", "1", filepath.Join(out, "grpcserver"), "-addr", addr, "-proto-out", proto)
	server.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := server.Start(); err != nil {
		return fmt.Errorf("starting the server: %w", err)
	}
	defer func() { server.Process.Signal(syscall.SIGTERM); server.Wait() }()
	if err := harness.WaitPort(port, 5*time.Second); err != nil {
		return err
	}
	msg := fmt.Sprintf(`{"response_size": %d}`, size)

	relia := &tool{name: "relia load", run: func(d time.Duration) (sample, error) {
		file := filepath.Join(out, "result.json")
		scenario := filepath.Join(out, "grpc.yaml")
		os.WriteFile(scenario, fmt.Appendf(nil, `kind: Scenario
version: relia/v1
metadata: {name: bench}
spec:
  baseURL: grpc://%s
  grpc: {protoFiles: [testservice.proto], connections: %d}
  requests: [{path: /%s, body: '%s'}]
  load: {vus: %d, duration: %s}
`, addr, conns, method, msg, conc, d), 0o644)
		usage, err := pinned(filepath.Join(out, "relia"), "load", scenario, "--out", file)
		if err != nil {
			return sample{}, err
		}
		res, err := load.ReadResult(file)
		if err != nil {
			return sample{}, err
		}
		sum := res.Requests.Total()
		if failed := sum.Total - sum.ByClass[0]; failed > 0 {
			return sample{}, fmt.Errorf("relia: %d of %d calls failed", failed, sum.Total)
		}
		return sample{rps: float64(sum.Total) / res.End.Sub(res.Start).Seconds(), cpuCall: usage / time.Duration(max(sum.Total, 1))}, nil
	}}
	tools := []*tool{
		{name: "ghz", run: func(d time.Duration) (sample, error) {
			file := filepath.Join(out, "ghz.json")
			usage, err := pinned(ghz, "--insecure", "--proto", proto, "--call", method, "-d", msg,
				"-c", strconv.Itoa(conc), "--connections", strconv.Itoa(conns), "-z", d.String(),
				"--format", "json", "-o", file, addr)
			if err != nil {
				return sample{}, err
			}
			data, err := os.ReadFile(file)
			if err != nil {
				return sample{}, err
			}
			var rep struct {
				Count        int64            `json:"count"`
				RPS          float64          `json:"rps"`
				StatusCounts map[string]int64 `json:"statusCodeDistribution"`
			}
			if err := json.Unmarshal(data, &rep); err != nil {
				return sample{}, fmt.Errorf("reading ghz's report: %w", err)
			}
			// ghz ends the calls in flight when its duration is up, as
			// CANCELLED or UNAVAILABLE; only the calls that succeeded count.
			ok := rep.StatusCounts["OK"]
			if ok == 0 || float64(rep.Count-ok) > 0.01*float64(rep.Count) {
				return sample{}, fmt.Errorf("ghz: statuses %v of %d calls", rep.StatusCounts, rep.Count)
			}
			return sample{rps: rep.RPS * float64(ok) / float64(rep.Count), cpuCall: usage / time.Duration(ok)}, nil
		}},
		relia,
	}
	fmt.Printf("unary %s, %d-byte responses: medians over %d rounds of %s, %d concurrent calls over %d connection(s), generator on CPU 0, server on CPU 1\n",
		method, size, rounds, d, conc, conns)
	for r := range rounds {
		for i := range tools {
			t := tools[(i+r)%len(tools)]
			s, err := t.run(d)
			if err != nil {
				return fmt.Errorf("%s: %w", t.name, err)
			}
			t.samples = append(t.samples, s)
		}
	}
	reliaRPS := median(relia.samples, func(s sample) float64 { return s.rps })
	fmt.Printf("\n%-12s %10s %14s %16s\n", "tool", "calls/s", "relia / tool", "CPU µs per call")
	for _, t := range tools {
		rps := median(t.samples, func(s sample) float64 { return s.rps })
		cpu := median(t.samples, func(s sample) float64 { return float64(s.cpuCall) / float64(time.Microsecond) })
		fmt.Printf("%-12s %10.0f %14.2f %16.1f\n", t.name, rps, reliaRPS/rps, cpu)
	}
	return nil
}

// pinned runs a generator on CPU 0 and returns the CPU time it used.
func pinned(args ...string) (time.Duration, error) {
	cmd := exec.Command("taskset", append([]string{"-c", "0"}, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	if err != nil && !(errors.As(err, &ee) && ee.ExitCode() == 1) { // a failed threshold still measured
		return 0, fmt.Errorf("%v: %s", err, stderr.String())
	}
	ru := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), nil
}

func median(xs []sample, f func(sample) float64) float64 {
	v := make([]float64, len(xs))
	for i, x := range xs {
		v[i] = f(x)
	}
	slices.Sort(v)
	return v[len(v)/2]
}
