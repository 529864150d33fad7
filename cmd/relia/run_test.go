package main

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/relia-dev/relia/experiment"
	"github.com/relia-dev/relia/fault"
)

// cliEnv makes the test binary behave as the relia binary, so that tests
// can signal a real relia process.
const cliEnv = "RELIA_CLI_TEST_MAIN"

// hogEnv makes the test binary burn CPU until the time it names (Unix
// seconds): the busy neighbour of TestDemoUnderACPUHogIsInconclusive.
const hogEnv = "RELIA_CLI_TEST_HOG_UNTIL"

func TestMain(m *testing.M) {
	if until := os.Getenv(hogEnv); until != "" {
		hog(until)
	}
	if os.Getenv(cliEnv) != "" {
		os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
	}
	code := m.Run()
	removeTestBinaries()
	os.Exit(code)
}

// hog spins until the Unix time until, or for a minute at most.
func hog(until string) {
	secs, err := strconv.ParseInt(until, 10, 64)
	end := time.Unix(secs, 0)
	if err != nil || time.Until(end) > time.Minute {
		end = time.Now().Add(time.Minute)
	}
	for n := 0; time.Now().Before(end); n++ {
		for range 1 << 16 {
			n ^= n << 1
		}
	}
	os.Exit(0)
}

// runExperimentYAML is an experiment through the test's fault server:
// two seconds of baseline, then ten of a broken target. Its generator
// tolerates lateness of up to a second: the tests that run it judge the
// service and relia's outputs, and run beside the whole suite's other
// packages under -race on two cores, where a 10 req/s schedule was seen
// to slip by 1.6s (the generator's own judgement has tests of its own:
// TestDemoUnderACPUHogIsInconclusive).
const runExperimentYAML = `kind: Experiment
version: relia/v1
metadata: {name: cli-run}
spec:
  seed: 9
  generator: {lateAfter: 1s}
  target: {url: "http://PROXY/"}
  faultServer: "FAULTS"
  faultLease: 3s
  slos: [{id: api-availability}]
  phases:
    - {name: baseline, duration: 2s, load: {rate: 10}}
    - name: broken
      duration: 10s
      load: {rate: 10}
      faults:
        - name: api-503
          toxic: {proxy: api, type: http, attributes: {abort_status: 503}}
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

// runFixture starts a backend and a fault server with proxy api in front
// of it, and writes the experiment against them.
func runFixture(t *testing.T) (srv *fault.Server, path string) {
	t.Helper()
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "ok") }))
	t.Cleanup(backend.Close)
	srv, err := fault.NewServer(fault.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	info, err := srv.CreateProxy(fault.ProxyConfig{Name: "api", Listen: "127.0.0.1:0", Upstream: backend.Listener.Addr().String(), Mode: "http"})
	if err != nil {
		t.Fatal(err)
	}
	api := httptest.NewServer(srv.Handler(fault.HandlerOptions{}))
	t.Cleanup(api.Close)
	path = filepath.Join(t.TempDir(), "experiment.yaml")
	yaml := strings.NewReplacer("PROXY", info.Listen, "FAULTS", api.URL).Replace(runExperimentYAML)
	if err := os.WriteFile(path, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	return srv, path
}

func TestRunDryRunPrintsThePlan(t *testing.T) {
	t.Parallel()
	_, path := runFixture(t)
	code, out, errOut := runCLI(t, "run", path, "--dry-run", "--seed", "77")
	if code != exitPass {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, want := range []string{"experiment cli-run: 12s in 2 phases, seed 77 (option)", "api-503", "api-availability"} {
		if !strings.Contains(out, want) {
			t.Errorf("plan lacks %q:\n%s", want, out)
		}
	}
}

func TestRunBadExperimentExitsTwo(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "bad.yaml")
	bad := strings.Replace(runExperimentYAML, "slos: [{id: api-availability}]", "slos: [{id: api-latency}]", 1)
	if err := os.WriteFile(path, []byte(bad), 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, errOut := runCLI(t, "run", path)
	if code != exitBadInput || !strings.Contains(errOut, "bad.yaml:") || !strings.Contains(errOut, "api-latency") {
		t.Fatalf("exit %d, stderr %q: want exit 2 naming the file and the missing SLO", code, errOut)
	}
	if code, out, _ := runCLI(t, "validate", path); code != exitBadInput {
		t.Errorf("relia validate: exit %d, %s", code, out)
	}
}

// TestRunSIGTERMRollsBack runs relia as a process and sends it SIGTERM
// once the fault is on: the run must roll the fault back, write its
// journal and exit 3.
func TestRunSIGTERMRollsBack(t *testing.T) {
	t.Parallel()
	srv, path := runFixture(t)
	out := filepath.Join(t.TempDir(), "out")
	cmd := exec.Command(os.Args[0], "run", path, "--out", out)
	cmd.Env = append(os.Environ(), cliEnv+"=1")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		if toxics, _ := srv.Toxics("api"); len(toxics) > 0 {
			break
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			t.Fatalf("the fault never started; stderr:\n%s", stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	err := cmd.Wait()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != exitAborted {
		t.Fatalf("relia run ended with %v, want exit %d; stderr:\n%s", err, exitAborted, stderr.String())
	}
	if toxics, _ := srv.Toxics("api"); len(toxics) != 0 {
		t.Fatalf("the fault server still holds %+v", toxics)
	}
	j := readJournal(t, out)
	if len(j.Faults) != 1 || j.Faults[0].EndReason != experiment.EndRolledBackSignal || j.ExitCode != exitAborted {
		t.Errorf("journal faults %+v, exit %d", j.Faults, j.ExitCode)
	}
	if !strings.Contains(stdout.String(), "cli-run: ABORTED") || !strings.Contains(stdout.String(), "report: ") {
		t.Errorf("stdout:\n%s", stdout.String())
	}
	// The fault's recovery was cut short by the signal: not observed, not
	// NOT RECOVERED; and the run's length reads rounded ("ran 3.42s").
	if !strings.Contains(stdout.String(), "api-availability not observed (the run ended first)") || strings.Contains(stdout.String(), "NOT RECOVERED") ||
		!regexp.MustCompile(`\nseed 9, ran \d+(\.\d+)?s of 12s,`).MatchString(stdout.String()) {
		t.Errorf("stdout:\n%s", stdout.String())
	}
}

// readJournal reads the journal a run wrote into dir.
func readJournal(t *testing.T, dir string) *experiment.Journal {
	t.Helper()
	f, err := os.Open(filepath.Join(dir, experiment.JournalFile))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	j, err := experiment.DecodeJournal(f)
	if err != nil {
		t.Fatal(err)
	}
	return j
}
