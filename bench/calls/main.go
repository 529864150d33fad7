// Command calls measures relia's call store: SQLite ingest with batching,
// a day's per-route aggregates over millions of stored calls, and the
// gateway's throughput with the store on against the same run with it
// off, counting the calls the store lost (also through a store outage).
//
//	GOMAXPROCS=1 taskset -c 0 go run ./calls ingest -n 1000000
//	go run ./calls aggregate -n 10000000
//	go run ./calls gateway -duration 20s -vus 50 -rounds 5
//	go run ./calls gateway -duration 20s -vus 50 -fail 10s
//
// Figures vary with the machine; run on a quiet one (docs/benchmarks.md).
package main

import (
	"bufio"
	"context"
	"database/sql"
	"errors"
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
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
	"github.com/relia-dev/relia/callstore"
	"github.com/relia-dev/relia/load"
)

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	var err error
	switch os.Args[1] {
	case "ingest":
		err = ingest(os.Args[2:])
	case "aggregate":
		err = aggregate(os.Args[2:])
	case "gateway":
		err = gatewayRun(os.Args[2:])
	default:
		usage()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench/calls:", err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: go run ./calls ingest|aggregate|gateway [flags]")
	os.Exit(2)
}

// cpuTime is the process's user and system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// records makes n calls from start, every spacing, over 20 routes, 10
// tenants and 50 keys, with random ids and log-normal latencies.
func records(n int, start time.Time, spacing time.Duration, seed uint64) []callstore.Record {
	rng := rand.New(rand.NewPCG(seed, 1))
	out := make([]callstore.Record, n)
	for i := range out {
		route := i % 20
		median := time.Duration(5+5*route) * time.Millisecond
		r := callstore.Record{
			Time: start.Add(time.Duration(i) * spacing), Gateway: "bench",
			RequestID: fmt.Sprintf("%016x%016x", rng.Uint64(), rng.Uint64()), TraceID: fmt.Sprintf("%016x%016x", rng.Uint64(), rng.Uint64()),
			Route: fmt.Sprintf("route-%d", route), API: "api", APIVersion: "v1", Tenant: fmt.Sprintf("tenant-%d", i%10), KeyID: fmt.Sprintf("key-%d", i%50),
			Method: "GET", PathTemplate: "/orders", Path: fmt.Sprintf("/orders/%d", rng.IntN(1_000_000)), Status: 200, Outcome: "ok",
			Latency: time.Duration(float64(median) * math.Exp(0.5*rng.NormFloat64())), Target: "10.0.0.7:8080", Attempts: 1, BytesIn: 120, BytesOut: 900,
		}
		if i%100 == 0 {
			r.Status, r.Outcome, r.Reason = 503, "status", "upstream_5xx"
		}
		out[i] = r
	}
	return out
}

func ingest(args []string) error {
	fs := flag.NewFlagSet("ingest", flag.ExitOnError)
	n := fs.Int("n", 1_000_000, "calls to write")
	batch := fs.Int("batch", 2000, "calls per batch")
	fs.Parse(args)
	dir, err := os.MkdirTemp("", "relia-bench-calls")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	ctx := context.Background()
	s, err := callstore.Open(ctx, filepath.Join(dir, "calls.db"), callstore.Options{})
	if err != nil {
		return err
	}
	defer s.Close()
	recs := records(min(*n, 200_000), time.Now().Add(-time.Hour), time.Millisecond, 1)
	start, cpu := time.Now(), cpuTime()
	for done := 0; done < *n; done += *batch {
		k := min(*batch, *n-done)
		off := done % len(recs)
		if off+k > len(recs) {
			off = 0
		}
		if err := s.Write(ctx, recs[off:off+k]); err != nil {
			return err
		}
	}
	wall, used := time.Since(start), cpuTime()-cpu
	got, err := s.Count(ctx, callstore.Query{})
	if err != nil {
		return err
	}
	fmt.Printf("ingest: %d calls in batches of %d: %.0f calls/s, %.2f µs CPU per call (%.0f calls per CPU-second); %d stored\n",
		*n, *batch, float64(*n)/wall.Seconds(), float64(used.Microseconds())/float64(*n), float64(*n)/used.Seconds(), got)
	if got != int64(*n) {
		return fmt.Errorf("stored %d calls of %d", got, *n)
	}
	return nil
}

func aggregate(args []string) error {
	fs := flag.NewFlagSet("aggregate", flag.ExitOnError)
	n := fs.Int("n", 10_000_000, "calls spread over one day")
	fs.Parse(args)
	dir, err := os.MkdirTemp("", "relia-bench-calls")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	ctx := context.Background()
	day := time.Date(2027, 3, 1, 0, 0, 0, 0, time.UTC)
	s, err := callstore.Open(ctx, filepath.Join(dir, "calls.db"), callstore.Options{})
	if err != nil {
		return err
	}
	defer s.Close()
	spacing := 24 * time.Hour / time.Duration(*n)
	const chunk = 100_000
	start := time.Now()
	for done := 0; done < *n; done += chunk {
		recs := records(min(chunk, *n-done), day.Add(time.Duration(done)*spacing), spacing, uint64(done))
		for i := 0; i < len(recs); i += 2000 {
			if err := s.Write(ctx, recs[i:min(i+2000, len(recs))]); err != nil {
				return err
			}
		}
	}
	fmt.Printf("aggregate: wrote %d calls over one day in %s\n", *n, time.Since(start).Round(time.Second))
	t := time.Now()
	merged, err := s.Compact(ctx, time.Time{})
	if err != nil {
		return err
	}
	fmt.Printf("aggregate: compacted the rollups (%d rows merged) in %s\n", merged, time.Since(t).Round(time.Millisecond))
	for range 3 {
		t = time.Now()
		aggs, err := s.Aggregate(ctx, callstore.AggregateQuery{From: day, To: day.Add(24 * time.Hour), By: []callstore.Dimension{callstore.ByRoute}})
		if err != nil {
			return err
		}
		took := time.Since(t)
		var total int64
		for _, a := range aggs {
			total += a.Calls
		}
		fmt.Printf("aggregate: a day's per-route aggregates (%d routes, %d calls, p99 of %s %s) in %s\n", len(aggs), total, aggs[0].Key.Route, aggs[0].Latency.Quantile(0.99), took)
		if total != int64(*n) {
			return fmt.Errorf("the aggregates count %d calls of %d", total, *n)
		}
	}
	return nil
}

// gatewayRun runs the relia gateway in front of an in-process backend,
// under relia load, with the call store off and on in each round; it
// prints throughput, the ratio, and how many calls the store lost. With
// -fail it runs once, store on, with the store locked for that long in
// the middle of the run, and fails unless the store refused writes and
// still ended up holding every call the load generator was answered.
func gatewayRun(args []string) error {
	fs := flag.NewFlagSet("gateway", flag.ExitOnError)
	dur := fs.Duration("duration", 20*time.Second, "length of each load run")
	vus := fs.Int("vus", 50, "closed-model virtual users")
	rounds := fs.Int("rounds", 5, "rounds, each with the store off and on (in alternating order)")
	fail := fs.Duration("fail", 0, "run once with the store on, its SQLite file locked for this long in the middle of the run")
	fs.Parse(args)
	if *fail > 0 && *dur < *fail+4*time.Second {
		return fmt.Errorf("-duration %s leaves no time around a %s outage: give at least %s", *dur, *fail, *fail+4*time.Second)
	}
	dir, err := os.MkdirTemp("", "relia-bench-calls")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	bin := filepath.Join(dir, "relia")
	build := exec.Command("go", "build", "-o", bin, "./cmd/relia")
	build.Dir = ".." // relia's own module
	if out, err := build.CombinedOutput(); err != nil {
		return fmt.Errorf("building relia: %v\n%s", err, out)
	}
	backend, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	go http.Serve(backend, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("ok\n")) })) // ends with the process
	if *fail > 0 {
		return outageRun(dir, bin, backend.Addr().String(), *dur, *vus, *fail)
	}
	// Each round runs the store off and on back to back, the order
	// alternating from round to round, so that a drift of the machine
	// over the rounds (another process, the CPU's clock) weighs on both
	// states alike; the figure is the median of the rounds' ratios, with
	// their spread beside it.
	var ratios []float64
	var lost int64
	for round := 1; round <= *rounds; round++ {
		order := []bool{false, true}
		if round%2 == 0 {
			order = []bool{true, false}
		}
		var rps [2]float64 // off, on
		for _, on := range order {
			r, err := gatewayOnce(dir, bin, backend.Addr().String(), on, *dur, *vus, 0)
			if err != nil {
				return err
			}
			state := "off"
			if on {
				rps[1] = r.rps
				lost += r.answered - r.stored
				state = fmt.Sprintf("on: %d answered, %d stored, %d lost", r.answered, r.stored, r.answered-r.stored)
			} else {
				rps[0] = r.rps
			}
			fmt.Printf("gateway round %d, store %s: %.0f req/s, gateway CPU %.2f µs/call\n", round, state, r.rps, float64(r.cpuPerCall)/float64(time.Microsecond))
		}
		ratios = append(ratios, rps[1]/rps[0])
		fmt.Printf("gateway round %d: store on / off = %.3f\n", round, rps[1]/rps[0])
	}
	fmt.Printf("gateway: store on / off median %.3f over %d rounds (min %.3f, max %.3f); %d calls lost\n",
		harness.Median(ratios), len(ratios), slices.Min(ratios), slices.Max(ratios), lost)
	return nil
}

// outageRun is the outage step: one run with the store on, locked for
// fail in the middle.
func outageRun(dir, bin, backend string, dur time.Duration, vus int, fail time.Duration) error {
	r, err := gatewayOnce(dir, bin, backend, true, dur, vus, fail)
	if err != nil {
		return err
	}
	fmt.Printf("gateway, store locked for %s of a %s run: %.0f req/s; %d answered, %d stored, %d lost; "+
		"%d failed writes, %d calls spooled, %d dropped\n",
		r.locked.Round(time.Millisecond), dur, r.rps, r.answered, r.stored, r.answered-r.stored, r.failures, r.spooled, r.dropped)
	switch {
	case r.failures == 0:
		return errors.New("the store never refused a write: the outage did not happen")
	case r.answered != r.stored || r.dropped != 0:
		return fmt.Errorf("%d calls lost", r.answered-r.stored)
	}
	return nil
}

type gatewayResult struct {
	rps              float64
	answered, stored int64
	// cpuPerCall is the gateway process's CPU time (user and system,
	// start to exit) per answered call: on a busy machine the steadier
	// figure.
	cpuPerCall time.Duration
	// With an outage: how long the store was locked, and what the
	// gateway's writer counted (relia_calls_*).
	locked                     time.Duration
	failures, spooled, dropped int64
}

// pinned runs the command on cpu when taskset is there.
func pinned(ctx context.Context, cpu string, name string, args ...string) *exec.Cmd {
	if _, err := exec.LookPath("taskset"); err == nil {
		return exec.CommandContext(ctx, "taskset", append([]string{"-c", cpu, name}, args...)...)
	}
	return exec.CommandContext(ctx, name, args...)
}

// gatewayOnce runs the gateway under load once. Every wait is bounded: the
// load run by its duration plus a minute, the gateway's shutdown (which
// flushes the calls, the spooled ones included) by a minute.
func gatewayOnce(dir, bin, backend string, on bool, dur time.Duration, vus int, fail time.Duration) (gatewayResult, error) {
	var res gatewayResult
	addr := fmt.Sprintf("127.0.0.1:%d", harness.FreePort())
	admin := fmt.Sprintf("127.0.0.1:%d", harness.FreePort())
	db := filepath.Join(dir, fmt.Sprintf("calls-%d.db", time.Now().UnixNano()))
	calls := ""
	if on {
		calls = fmt.Sprintf("  calls: {store: %s}\n", db)
	}
	cfg := filepath.Join(dir, "gateway.yaml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf(`kind: Gateway
version: relia/v1
metadata: {name: bench}
spec:
  listeners: [{name: main, address: %s}]
  admin: {address: %s}
  accessLog: {disabled: true}
%s  upstreams: [{name: be, targets: [{address: %s}]}]
  routes: [{name: all, upstream: be}]
`, addr, admin, calls, backend)), 0o644); err != nil {
		return res, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), dur+2*time.Minute)
	defer cancel()
	gw := pinned(ctx, "1", bin, "gateway", "--config", cfg)
	gw.Stderr = os.Stderr
	if err := gw.Start(); err != nil {
		return res, err
	}
	exited := make(chan error, 1)
	go func() { exited <- gw.Wait() }()
	defer func() {
		gw.Process.Kill()
		<-exited
	}()
	if err := waitFor("http://" + admin + "/healthz"); err != nil {
		return res, err
	}
	locked := make(chan time.Duration, 1)
	if on && fail > 0 {
		// The outage sits in the middle of the run.
		go func() { locked <- lockFor(db, (dur-fail)/2, fail) }()
	} else {
		locked <- 0
	}
	out := filepath.Join(dir, "load.json")
	ld := pinned(ctx, "0", bin, "load", "http://"+addr+"/", "--vus", fmt.Sprint(vus), "--duration", dur.String(), "--out", out)
	if msg, err := ld.CombinedOutput(); err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 1 {
			return res, fmt.Errorf("relia load: %v\n%s", err, msg)
		}
	}
	r, err := load.ReadResult(out)
	if err != nil {
		return res, err
	}
	total := r.Requests.Total()
	// The calls the gateway answered are those that got a status.
	for _, n := range total.ByStatusClass[1:] {
		res.answered += n
	}
	res.rps = float64(res.answered) / r.End.Sub(r.Start).Seconds()
	res.locked = <-locked
	if on && fail > 0 {
		m, err := writerCounts("http://" + admin + "/metrics")
		if err != nil {
			return res, err
		}
		res.failures, res.spooled, res.dropped = m["relia_calls_write_failures_total"], m["relia_calls_spooled_total"], m["relia_calls_dropped_total"]
	}
	gw.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-exited:
		exited <- err // for the deferred wait
		// The gateway's whole CPU time, its store's final flush included.
		res.cpuPerCall = (gw.ProcessState.UserTime() + gw.ProcessState.SystemTime()) / time.Duration(max(res.answered, 1))
	case <-time.After(time.Minute):
		return res, errors.New("the gateway did not stop within a minute of SIGTERM")
	}
	if on {
		s, err := callstore.Open(context.Background(), db, callstore.Options{})
		if err != nil {
			return res, err
		}
		defer s.Close()
		if res.stored, err = s.Count(context.Background(), callstore.Query{}); err != nil {
			return res, err
		}
	}
	return res, nil
}

// writerCounts reads the call writer's counters from the gateway's
// metrics, summed over their labels.
func writerCounts(url string) (map[string]int64, error) {
	resp, err := http.Get(url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	m := map[string]int64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "relia_calls_") {
			continue
		}
		name, value, ok := strings.Cut(line, " ")
		if !ok {
			continue
		}
		name, _, _ = strings.Cut(name, "{")
		v, err := strconv.ParseFloat(value, 64)
		if err == nil {
			m[name] += int64(v)
		}
	}
	return m, sc.Err()
}

func waitFor(url string) error {
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if resp, err := http.Get(url); err == nil {
			resp.Body.Close()
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("%s did not answer", url)
}

// lockFor holds SQLite's write lock on db from another connection for d,
// after waiting, as a backup or a sqlite3 shell would, and returns how
// long it held it (0 when it could not take it).
func lockFor(db string, after, d time.Duration) time.Duration {
	time.Sleep(after)
	conn, err := sql.Open("sqlite", "file:"+db+"?_txlock=exclusive&_pragma=busy_timeout(10000)")
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench/calls: locking the store:", err)
		return 0
	}
	defer conn.Close()
	tx, err := conn.Begin()
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench/calls: locking the store:", err)
		return 0
	}
	start := time.Now()
	fmt.Fprintf(os.Stderr, "bench/calls: store locked for %s\n", d)
	time.Sleep(d)
	tx.Rollback()
	fmt.Fprintln(os.Stderr, "bench/calls: store unlocked")
	return time.Since(start)
}
