package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/relia-dev/relia/experiment"
)

func TestDemoExportWritesRunnableConfigs(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	code, out, errOut := runCLI(t, "demo", "--export", dir, "--seed", "7", "--duration", "30s")
	if code != exitPass || !strings.Contains(out, "relia run "+filepath.Join(dir, "black-friday.yaml")) {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	data, err := os.ReadFile(filepath.Join(dir, "black-friday.yaml"))
	if err != nil || !strings.Contains(string(data), "seed: 7") {
		t.Fatalf("exported experiment: %v\n%s", err, data)
	}
	code, out, errOut = runCLI(t, "run", filepath.Join(dir, "black-friday.yaml"), "--dry-run")
	if code != exitPass || !strings.Contains(out, "experiment black-friday: 30s in 5 phases, seed 7 (spec)") || !strings.Contains(out, "kill-catalog") {
		t.Errorf("relia run --dry-run on the export: exit %d\n%s%s", code, out, errOut)
	}
	if code, out, _ := runCLI(t, "validate", filepath.Join(dir, "black-friday.yaml"), filepath.Join(dir, "scenario.yaml")); code != exitPass {
		t.Errorf("relia validate on the export: exit %d\n%s", code, out)
	}
}

func TestDemoRejectsATooShortRun(t *testing.T) {
	t.Parallel()
	code, _, errOut := runCLI(t, "demo", "--duration", "2s")
	if code != exitBadInput || !strings.Contains(errOut, "at least 10s") {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
}

// TestDemoUnderACPUHogIsInconclusive runs relia demo pinned to one CPU
// with three busy processes pinned to the same CPU for the length of the
// run, so that it gets a quarter of the CPU at most: the load generator
// cannot keep its schedule, and the demo must say so (inconclusive, exit
// 5, with the reason) instead of failing the shop for relia's own
// starvation. On a21340e it ended FAILED, grade D. It
// does not run in parallel with this package's other tests, which the
// hog would slow down too, and the hogs end with the demo.
func TestDemoUnderACPUHogIsInconclusive(t *testing.T) {
	taskset, err := exec.LookPath("taskset")
	if err != nil {
		t.Fatalf("taskset (util-linux, make test-deps) is needed to pin the hog beside the demo: %v", err)
	}
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &set); err != nil {
		t.Fatal(err)
	}
	cpu := -1
	for i := 0; i < 1024 && cpu < 0; i++ {
		if set.IsSet(i) {
			cpu = i
		}
	}
	if cpu < 0 {
		t.Fatal("no CPU in this process's affinity")
	}
	pin := strconv.Itoa(cpu)
	until := strconv.FormatInt(time.Now().Add(time.Minute).Unix(), 10)
	var hogs []*exec.Cmd
	stopHogs := func() {
		for _, h := range hogs {
			_ = h.Process.Kill()
			_ = h.Wait()
		}
		hogs = nil
	}
	t.Cleanup(stopHogs)
	for range 3 {
		h := exec.Command(taskset, "-c", pin, os.Args[0])
		h.Env = append(os.Environ(), hogEnv+"="+until)
		if err := h.Start(); err != nil {
			t.Fatal(err)
		}
		hogs = append(hogs, h)
	}
	out := filepath.Join(t.TempDir(), "out")
	// Niced to 19 beside three hogs of nice 0, the demo's fair share of
	// the core is 15/(15+3*1024), half a percent, so it falls behind its
	// schedule however quiet the rest of the host is. At nice 10 (3.4%)
	// it had grown cheap enough to keep its schedule in some runs: 2 to
	// 7% of its arrivals late, under the 10% that makes a run
	// inconclusive.
	cmd := exec.Command(taskset, "-c", pin, "nice", "-n", "19", os.Args[0], "demo", "--duration", "10s", "--seed", "3", "--out-dir", out)
	cmd.Env = append(os.Environ(), cliEnv+"=1")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	done := make(chan error, 1)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { done <- cmd.Wait() }()
	select {
	case err = <-done:
	case <-time.After(2 * time.Minute):
		_ = cmd.Process.Kill()
		t.Fatalf("relia demo did not end; stderr:\n%s", stderr.String())
	}
	stopHogs()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != exitInconclusive {
		t.Fatalf("relia demo ended with %v, want exit %d\nstdout:\n%s\nstderr:\n%s", err, exitInconclusive, stdout.String(), stderr.String())
	}
	for _, want := range []string{"black-friday: INCONCLUSIVE, grade - (exit 5)", "inconclusive: the generator sent ", "of requests more than 50ms late",
		"the SLOs and thresholds below are reported, not judged."} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("stdout lacks %q:\n%s", want, stdout.String())
		}
	}
	if !strings.Contains(stderr.String(), "relia: inconclusive: the generator sent ") {
		t.Errorf("stderr:\n%s", stderr.String())
	}
	j := readJournal(t, out)
	v := j.Verdict
	if j.ExitCode != exitInconclusive || !v.Inconclusive || v.Generator == nil || v.Generator.Conclusive || j.Scorecard.Grade != experiment.GradeNone {
		t.Fatalf("journal: exit %d, verdict inconclusive %v, generator %+v, grade %s", j.ExitCode, v.Inconclusive, v.Generator, j.Scorecard.Grade)
	}
	page, err := os.ReadFile(filepath.Join(out, experiment.ReportFile))
	if err != nil || !bytes.Contains(page, []byte("INCONCLUSIVE")) || !bytes.Contains(page, []byte(fmt.Sprintf("%d of %d", v.Generator.Late, v.Generator.Sent))) {
		t.Errorf("report.html (%v) lacks the inconclusive verdict and the generator's figures", err)
	}
}
