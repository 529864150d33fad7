package experiment_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/relia-dev/relia/experiment"
	"github.com/relia-dev/relia/fault"
)

// serviceEnv makes the test binary a small HTTP service on $PORT: the
// command service of the runner's tests.
const serviceEnv = "RELIA_EXPERIMENT_TEST_SERVICE"

func TestMain(m *testing.M) {
	if os.Getenv(serviceEnv) != "" {
		serveForever()
	}
	os.Exit(m.Run())
}

// serveForever answers every request with 200 on $PORT until killed.
func serveForever() {
	srv := &http.Server{Addr: "127.0.0.1:" + os.Getenv("PORT"), ReadHeaderTimeout: 5 * time.Second,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "replica", os.Getenv("RELIA_REPLICA")) })}
	fmt.Fprintln(os.Stderr, srv.ListenAndServe())
	os.Exit(1)
}

// backend is an HTTP service that counts the requests it answers.
func backend(t *testing.T) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		fmt.Fprintln(w, "ok")
	}))
	t.Cleanup(srv.Close)
	return srv, &n
}

// freeAddr returns a loopback address nobody listens on now.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// planFrom writes an experiment into a temp dir, with ADDR placeholders
// replaced, and resolves it.
func planFrom(t *testing.T, yaml string, repl ...string) *experiment.Plan {
	t.Helper()
	path := filepath.Join(t.TempDir(), "experiment.yaml")
	if err := os.WriteFile(path, []byte(strings.NewReplacer(repl...).Replace(yaml)), 0o644); err != nil {
		t.Fatal(err)
	}
	p, err := experiment.ReadFile(path, experiment.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

const availabilitySLO = `
---
kind: SLO
version: relia/v1
metadata: {name: availability}
spec:
  service: api
  objective: 99%
  sli:
    availability: {goodClasses: [ok]}
`

// urlExperiment sends load through a fault proxy in HTTP mode that
// fails every request while its fault is active.
const urlExperiment = `kind: Experiment
version: relia/v1
metadata: {name: url-run}
spec:
  seed: 11
  target: {url: "http://PROXY/"}
  proxies:
    - {name: api, listen: "PROXY", upstream: "BACKEND", mode: http}
  slos: [{id: api-availability}]
  # The test is about the service's verdict: the generator may be a second
  # late on a loaded CI machine and still count as on time.
  generator: {lateAfter: 1s}
  phases:
    - {name: baseline, duration: 2s, load: {rate: 20}}
    - name: broken
      duration: 2s
      load: {rate: 20}
      faults:
        - name: api-503
          toxic: {proxy: api, type: http, attributes: {abort_status: 503}}
    - {name: recovery, duration: 2s, load: {rate: 20}}
` + availabilitySLO

func TestRunURLTargetThroughAFaultProxy(t *testing.T) {
	t.Parallel()
	srv, served := backend(t)
	proxy := freeAddr(t)
	p := planFrom(t, urlExperiment, "PROXY", proxy, "BACKEND", srv.Listener.Addr().String())
	out := t.TempDir()
	var summary strings.Builder
	res, err := experiment.Run(context.Background(), p, experiment.RunOptions{OutDir: out, Stdout: &summary})
	if err != nil {
		t.Fatal(err)
	}
	// Every request of the broken phase fails: 40 of 120 miss a 99% SLO.
	if res.ExitCode != experiment.ExitFail || res.Verdict.Passed {
		t.Fatalf("exit code %d, passed %v: want a failed verdict\n%s", res.ExitCode, res.Verdict.Passed, summary.String())
	}
	j := res.Journal
	if j.Seed != 11 || j.Plan.Seed != 11 {
		t.Errorf("journal seed %d, plan seed %d, want 11", j.Seed, j.Plan.Seed)
	}
	if names := phaseNames(j.Phases); !slices.Equal(names, []string{"baseline", "broken", "recovery"}) {
		t.Errorf("phases %v", names)
	}
	if len(j.Faults) != 1 || j.Faults[0].Start.IsZero() || !j.Faults[0].End.After(j.Faults[0].Start) || j.Faults[0].EndReason != experiment.EndStopped {
		t.Fatalf("faults %+v, want api-503 started and stopped on schedule", j.Faults)
	}
	if d := j.Faults[0].End.Sub(j.Faults[0].Start); d < 1500*time.Millisecond || d > 2500*time.Millisecond {
		t.Errorf("the fault was active %v, want about the phase's 2s", d)
	}
	v := res.Verdict
	if len(v.Phases) != 3 || len(v.Faults) != 1 || !slices.Contains(v.Faults[0].Breached, "api-availability") {
		t.Fatalf("verdict phases %d, faults %+v", len(v.Phases), v.Faults)
	}
	broken := v.Phases[1]
	if broken.Stats.Requests < 35 || broken.Stats.ErrorRate < 0.9 || broken.Comparison == nil || !broken.Comparison.ErrorRate.Significant {
		t.Errorf("broken phase %+v, comparison %+v: want ~40 requests nearly all failed, significantly worse than the baseline", broken.Stats, broken.Comparison)
	}
	if base := v.Phases[0]; base.Stats.Errors != 0 || !base.SLOsMet() {
		t.Errorf("baseline %+v failed", base.Stats)
	}
	if served.Load() < 70 {
		t.Errorf("the backend answered %d requests, want the ~80 of the healthy phases", served.Load())
	}
	for _, name := range []string{experiment.JournalFile, experiment.ReportFile} {
		if !slices.Contains(res.Files, filepath.Join(out, name)) {
			t.Errorf("files %v lack %s", res.Files, name)
		}
	}
	f, err := os.Open(filepath.Join(out, experiment.JournalFile))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	decoded, err := experiment.DecodeJournal(f)
	if err != nil {
		t.Fatal(err)
	}
	if decoded.Verdict == nil || decoded.Scorecard == nil || len(decoded.Series) < 5 || decoded.ExitCode != experiment.ExitFail {
		t.Errorf("journal.json: verdict %v, scorecard %v, %d seconds, exit %d", decoded.Verdict != nil, decoded.Scorecard != nil, len(decoded.Series), decoded.ExitCode)
	}
	if !strings.Contains(summary.String(), "url-run: FAILED") {
		t.Errorf("summary:\n%s", summary.String())
	}
	// spec.generator reached every phase's load.
	if g := v.Generator; g == nil || g.LateAfter != time.Second || g.MinOnTime != 0.9 || g.Sent < 100 || len(g.Phases) != 3 {
		t.Errorf("generator verdict %+v: want lateAfter 1s from the spec over the three phases", g)
	}
}

func phaseNames(prs []experiment.PhaseRecord) []string {
	var names []string
	for _, pr := range prs {
		names = append(names, pr.Name)
	}
	return names
}

// externalFaults starts a fault server the test owns, with proxy api in
// HTTP mode in front of upstream, so the test can see what the run left
// on it.
func externalFaults(t *testing.T, upstream string) (*fault.Server, string, string) {
	t.Helper()
	srv, err := fault.NewServer(fault.Options{Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	info, err := srv.CreateProxy(fault.ProxyConfig{Name: "api", Listen: "127.0.0.1:0", Upstream: upstream, Mode: "http"})
	if err != nil {
		t.Fatal(err)
	}
	api := httptest.NewServer(srv.Handler(fault.HandlerOptions{}))
	t.Cleanup(api.Close)
	return srv, api.URL, info.Listen
}

// abortExperiment breaks the target in its second phase; ABORT is
// replaced by abort conditions or nothing.
const abortExperiment = `kind: Experiment
version: relia/v1
metadata: {name: abort-run}
spec:
  seed: 5
  target: {url: "http://PROXY/"}
  faultServer: "FAULTS"
  faultLease: 3s
  slos: [{id: api-availability}]
  phases:
    - {name: baseline, duration: 2s, load: {rate: 20}}
    - name: broken
      duration: 4s
      load: {rate: 20}
      faults:
        - name: api-503
          toxic: {proxy: api, type: http, attributes: {abort_status: 503}}
    - {name: after, duration: 2s, load: {rate: 20}}
ABORT` + availabilitySLO

func TestRunAbortRollsBackEveryFault(t *testing.T) {
	t.Parallel()
	srv, _ := backend(t)
	faults, api, proxy := externalFaults(t, srv.Listener.Addr().String())
	p := planFrom(t, abortExperiment, "PROXY", proxy, "FAULTS", api, "ABORT", `  abort:
    - burnRate: {slo: api-availability, above: 10}
      window: 2s
      minEvents: 5
`)
	res, err := experiment.Run(context.Background(), p, experiment.RunOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if res.ExitCode != experiment.ExitAborted || !res.Verdict.Aborted || res.Verdict.Abort == nil {
		t.Fatalf("exit code %d, aborted %v: want the abort condition to end the run", res.ExitCode, res.Verdict.Aborted)
	}
	if toxics, _ := faults.Toxics("api"); len(toxics) != 0 {
		t.Fatalf("the fault server still holds %+v after the run", toxics)
	}
	j := res.Journal
	if f := j.Faults[0]; f.EndReason != experiment.EndRolledBackAbort || f.End.IsZero() {
		t.Errorf("fault %+v, want rolled back on abort", f)
	}
	if names := phaseNames(j.Phases); slices.Contains(names, "after") {
		t.Errorf("phases %v: the run went on after the abort", names)
	}
	if j.End.Sub(j.Start) >= p.Total {
		t.Errorf("the aborted run lasted %v, its plan %v", j.End.Sub(j.Start), p.Total)
	}
}

// TestRunFaultThatCannotStartIsAnError: a fault server that refuses the
// fault breaks the run; the summary's headline, the verdict and the
// journal all say so with exit 4, not a verdict on the service.
func TestRunFaultThatCannotStartIsAnError(t *testing.T) {
	t.Parallel()
	srv, _ := backend(t)
	faults, err := fault.NewServer(fault.Options{Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { faults.Close() })
	info, err := faults.CreateProxy(fault.ProxyConfig{Name: "api", Listen: "127.0.0.1:0", Upstream: srv.Listener.Addr().String(), Mode: "http"})
	if err != nil {
		t.Fatal(err)
	}
	// The server answers what the run checks beforehand, then refuses
	// the fault itself.
	api := faults.Handler(fault.HandlerOptions{})
	refusing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			http.Error(w, "toxics are refused here", http.StatusInternalServerError)
			return
		}
		api.ServeHTTP(w, r)
	}))
	t.Cleanup(refusing.Close)
	p := planFrom(t, abortExperiment, "PROXY", info.Listen, "FAULTS", refusing.URL, "ABORT", "")
	var summary strings.Builder
	res, err := experiment.Run(context.Background(), p, experiment.RunOptions{Stdout: &summary})
	if err == nil || !strings.Contains(err.Error(), "starting fault api-503") {
		t.Fatalf("error %v, want the fault that did not start", err)
	}
	if res.ExitCode != experiment.ExitRuntime || res.Verdict == nil || res.Verdict.ExitCode != experiment.ExitRuntime ||
		!strings.Contains(res.Verdict.Error, "starting fault api-503") || res.Journal.ExitCode != experiment.ExitRuntime {
		t.Fatalf("exit %d, verdict %+v: want exit 4 everywhere with the error", res.ExitCode, res.Verdict)
	}
	for _, want := range []string{"abort-run: ERROR, grade", "(exit 4)", "the run broke: starting fault api-503"} {
		if !strings.Contains(summary.String(), want) {
			t.Errorf("summary lacks %q:\n%s", want, summary.String())
		}
	}
}

func TestRunCancelRollsBackEveryFault(t *testing.T) {
	t.Parallel()
	srv, _ := backend(t)
	faults, api, proxy := externalFaults(t, srv.Listener.Addr().String())
	p := planFrom(t, abortExperiment, "PROXY", proxy, "FAULTS", api, "ABORT", "")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { // the Ctrl-C: once the fault is on
		for ctx.Err() == nil {
			if toxics, _ := faults.Toxics("api"); len(toxics) > 0 {
				cancel()
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()
	res, err := experiment.Run(ctx, p, experiment.RunOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if res.ExitCode != experiment.ExitAborted {
		t.Fatalf("exit code %d, want %d for an interrupted run", res.ExitCode, experiment.ExitAborted)
	}
	if toxics, _ := faults.Toxics("api"); len(toxics) != 0 {
		t.Fatalf("the fault server still holds %+v after the run", toxics)
	}
	if f := res.Journal.Faults[0]; f.EndReason != experiment.EndRolledBackSignal || f.Start.IsZero() {
		t.Errorf("fault %+v, want started and rolled back on the signal", f)
	}
	if a := res.Journal.Abort; a == nil || a.Kind != "signal" {
		t.Errorf("journal abort %+v, want the interruption", a)
	}
}

func TestRunBadInputSendsNothing(t *testing.T) {
	t.Parallel()
	srv, served := backend(t)
	closed := freeAddr(t)
	cases := map[string]struct {
		yaml string
		want string
	}{
		"unreachable target":             {strings.ReplaceAll(urlExperiment, "BACKEND", closed), "upstream " + closed + " is unreachable"},
		"fault server without the proxy": {strings.NewReplacer("toxic: {proxy: api", "toxic: {proxy: db", "ABORT", "").Replace(abortExperiment), `has no proxy "db"`},
		"service that never gets healthy": {`kind: Experiment
version: relia/v1
metadata: {name: sick}
spec:
  target:
    services:
      - name: api
        command: [/bin/sh, -c, "exit 3"]
        port: PORT
        health: {timeout: 2s}
  slos: [{id: api-availability}]
  phases:
    - {name: only, duration: 1s, load: {rate: 10}}
` + availabilitySLO, "exited before its health check"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			_, api, proxy := externalFaults(t, srv.Listener.Addr().String())
			_, port, _ := net.SplitHostPort(freeAddr(t))
			p := planFrom(t, c.yaml, "PROXY", proxy, "FAULTS", api, "BACKEND", srv.Listener.Addr().String(), "PORT", port)
			res, err := experiment.Run(context.Background(), p, experiment.RunOptions{})
			var input *experiment.InputError
			if !errors.As(err, &input) || res.ExitCode != experiment.ExitBadArgs {
				t.Fatalf("err %v, exit %d: want an input error and exit 2", err, res.ExitCode)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %q lacks %q", err, c.want)
			}
		})
	}
	t.Cleanup(func() {
		if n := served.Load(); n != 0 {
			t.Errorf("the target answered %d requests: bad input must send nothing", n)
		}
	})
}

// commandExperiment starts two replicas of a command service (this test
// binary) and kills replica 0, which takes the load, for a second; the
// crash phase goes on two seconds more, time for the replica (a -race
// test binary on a busy machine) to start again before the recovery
// phase judges it.
const commandExperiment = `kind: Experiment
version: relia/v1
metadata: {name: command-run}
spec:
  seed: 3
  target:
    services:
      - name: api
        command: [BINARY, "-test.run=^$"]
        env: {ENVKEY: "1"}
        replicas: 2
        port: PORT
        health: {path: /, timeout: 10s}
  slos: [{id: api-availability}]
  phases:
    - {name: baseline, duration: 1s, load: {rate: 20}}
    - name: crash
      duration: 3s
      load: {rate: 20}
      faults:
        - name: kill-api
          duration: 1s
          process: {action: kill, service: api, replica: 0}
    - {name: recovery, duration: 2s, load: {rate: 20}}
` + availabilitySLO

func TestRunCommandServiceKilledAndRestarted(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	second, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port+1))
	if err != nil {
		t.Skipf("port %d, the second replica's, is taken: %v", port+1, err)
	}
	second.Close()
	p := planFrom(t, commandExperiment, "BINARY", os.Args[0], "ENVKEY", serviceEnv, "PORT", strconv.Itoa(port))
	out := t.TempDir()
	res, err := experiment.Run(context.Background(), p, experiment.RunOptions{OutDir: out})
	if err != nil {
		t.Fatal(err)
	}
	v := res.Verdict
	crash, recovery := v.Phases[1].Stats, v.Phases[2].Stats
	if crash.Errors < 10 || crash.Classes["refused"]+crash.Classes["reset"] == 0 {
		t.Errorf("crash phase %+v: want refused connections while replica 0 was down", crash)
	}
	if recovery.Errors != 0 || recovery.Requests < 35 {
		t.Errorf("recovery phase %+v: want replica 0 restarted and answering", recovery)
	}
	if f := res.Journal.Faults[0]; f.EndReason != experiment.EndStopped || f.Replica != 0 || f.Error != "" {
		t.Errorf("fault %+v", f)
	}
	if _, err := os.Stat(filepath.Join(out, "api-1.log")); err != nil {
		t.Errorf("the replica's log: %v", err)
	}
}
