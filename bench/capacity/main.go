// Command capacity checks relia's capacity model on a real service: it
// pins examples/backend to CPU 1 (CPU-bound requests, ?work=N rounds of
// SHA-256), pins itself (the load generator) to CPU 0, measures the
// backend at each concurrency with relia capacity's stepped load, and for
// each concurrency left out of the Universal Scalability Law fit compares
// the throughput the fit of the others predicts there with the measured
// one. The bar is 10% at the left-out concurrency (-leave-out,
// default 12); the table gives every one.
//
//	cd bench && go run ./capacity -step 10s
//
// It needs a quiet machine with two cores: anything else running on CPU 1
// is measured as the service's contention. It is run on demand, never by
// go test.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"math"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/relia-dev/relia/capacity"
	"github.com/relia-dev/relia/load"
)

func main() {
	step := flag.Duration("step", 10*time.Second, "length of each step")
	work := flag.Int("work", 200, "SHA-256 rounds over 1 KiB per request (CPU per request)")
	levels := flag.String("concurrency", "1,2,3,4,6,8,12,16,24,32", "concurrency of the steps")
	leave := flag.Float64("leave-out", 12, "the concurrency left out of the fit and predicted")
	flag.Parse()
	var ns []int
	for _, s := range strings.Split(*levels, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 {
			fmt.Fprintf(os.Stderr, "bench/capacity: -concurrency %q: want counts >= 1\n", *levels)
			os.Exit(2)
		}
		ns = append(ns, n)
	}
	if err := run(*step, *work, ns, *leave); err != nil {
		fmt.Fprintln(os.Stderr, "bench/capacity:", err)
		os.Exit(1)
	}
}

func run(step time.Duration, work int, ns []int, leave float64) error {
	if _, err := exec.LookPath("taskset"); err != nil {
		return errors.New("taskset is missing (util-linux)")
	}
	var self unix.CPUSet
	self.Set(0)
	if err := unix.SchedSetaffinity(0, &self); err != nil {
		return fmt.Errorf("pinning the generator to CPU 0: %w", err)
	}
	dir, err := os.MkdirTemp("", "relia-bench-capacity")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	bin := filepath.Join(dir, "backend")
	if out, err := exec.Command("go", "build", "-o", bin, "../examples/backend").CombinedOutput(); err != nil {
		return fmt.Errorf("building examples/backend: %v\n%s", err, out)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	addr := ln.Addr().String()
	ln.Close()
	cmd := exec.Command("taskset", "-c", "1", bin, "-addr", addr)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return err
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	for i := 0; ; i++ {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
			break
		}
		if i > 100 {
			return fmt.Errorf("the backend did not listen on %s", addr)
		}
		time.Sleep(50 * time.Millisecond)
	}
	url := fmt.Sprintf("http://%s/?work=%d", addr, work)
	sc := &load.Scenario{Metadata: load.Metadata{Name: "bench-capacity"}, Spec: load.ScenarioSpec{Requests: []load.RequestSpec{{Path: url}}}}
	sampler, err := capacity.NewProcessSampler(cmd.Process.Pid) // taskset execs the backend: same pid
	if err != nil {
		return err
	}
	fmt.Printf("examples/backend on CPU 1, %d SHA-256 rounds a request; generator on CPU 0; %s steps\n\n", work, step)
	m, err := capacity.Measure(context.Background(), sc, url, capacity.MeasureOptions{Concurrency: ns, StepDuration: step, StopAfter: -1, Process: sampler,
		Progress: func(s capacity.Step) {
			fmt.Printf("  N=%-3s %9.1f req/s  p99 %-10s cpu %.3f ms/request  X·R %.2f\n", strconv.FormatFloat(s.Concurrency, 'f', -1, 64), s.Throughput, s.P99, 1000*s.CPUPerRequest, s.Little)
		}})
	if err != nil {
		return err
	}
	if m.Fit == nil {
		return fmt.Errorf("no fit: %s", m.FitError)
	}
	f := m.Fit
	fmt.Printf("\nUSL over all steps: λ %.1f [%.1f, %.1f]  σ %.4f [%.4f, %.4f]  κ %.5f [%.5f, %.5f]  R² %.4f\n",
		f.Model.Lambda, f.Lambda.Low, f.Lambda.High, f.Model.Sigma, f.Sigma.Low, f.Sigma.High, f.Model.Kappa, f.Kappa.Low, f.Kappa.High, f.R2)
	fmt.Println(f.Verdict)
	fmt.Printf("\n%-6s %10s %10s %8s\n", "left", "measured", "predicted", "error")
	var verdict error = fmt.Errorf("concurrency %v was not measured", leave)
	for _, p := range f.LeaveOneOut {
		mark := ""
		if p.N == leave {
			mark = "  <- the bar: within 10%"
			verdict = nil
			if math.Abs(p.Error) > 0.10 {
				verdict = fmt.Errorf("at concurrency %v the fit of the other steps predicts %.1f req/s, %.1f%% off the measured %.1f", p.N, p.Predicted, 100*p.Error, p.X)
			}
		}
		fmt.Printf("%-6s %10.1f %10.1f %+7.1f%%%s\n", strconv.FormatFloat(p.N, 'f', -1, 64), p.X, p.Predicted, 100*p.Error, mark)
	}
	if !slices.ContainsFunc(f.LeaveOneOut, func(p capacity.Prediction) bool { return p.N == leave }) {
		return verdict
	}
	if verdict != nil {
		return verdict
	}
	fmt.Printf("\npass: the prediction at concurrency %v is within 10%% of the measurement\n", leave)
	return nil
}
