//go:build unix

package fault

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/relia-dev/relia/clock"
)

func newProcessFaults(t *testing.T) (*ProcessFaults, *clock.Fake, *syncBuffer) {
	t.Helper()
	fc := clock.NewFake(time.Unix(1_700_000_000, 0))
	audit := &syncBuffer{}
	m := NewProcessFaults(fc, slog.New(slog.NewJSONHandler(audit, nil)))
	t.Cleanup(func() { m.Close() })
	return m, fc, audit
}

// waitFor polls cond, a state of the OS that changes outside the test's
// control; it fails after the safety bound.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(safety)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func TestFaultDiskFillCleanedUpAfterLease(t *testing.T) {
	t.Parallel()
	m, fc, audit := newProcessFaults(t)
	path := filepath.Join(t.TempDir(), "fill")
	if err := m.Start(ProcessFault{Name: "fill", Type: ProcDiskFill, Path: path, Bytes: 3<<20 + 5, TTL: 5 * time.Second}); err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(path); err != nil || st.Size() != 3<<20+5 {
		t.Fatalf("disk fill file: %v %v", st, err)
	}
	// A second fill must not clobber the first file.
	if err := m.Start(ProcessFault{Name: "again", Type: ProcDiskFill, Path: path, Bytes: 1}); err == nil {
		t.Fatal("a disk fill overwrote an existing file")
	}
	fc.Advance(5 * time.Second)
	waitFor(t, "the disk fill to go", func() bool { _, err := os.Stat(path); return os.IsNotExist(err) })
	waitFor(t, "the audit end", func() bool { return len(audit.records(t, "fault ended")) == 1 })
	if rec := audit.records(t, "fault ended")[0]; rec["reason"] != EndExpired || rec["fault"] != "fill" {
		t.Fatalf("audit %v", rec)
	}
}

func procState(pid int) string {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return ""
	}
	// The state follows the command name in parentheses.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 || i+2 >= len(s) {
		return ""
	}
	return s[i+2 : i+3]
}

func TestFaultPauseResumesAtLeaseEnd(t *testing.T) {
	t.Parallel()
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("needs /proc to read process states")
	}
	for _, byName := range []bool{false, true} {
		m, fc, _ := newProcessFaults(t)
		pid, err := m.Launch("sleeper", "sleep", "30")
		if err != nil {
			t.Fatal(err)
		}
		f := ProcessFault{Name: "pause", Type: ProcPause, PID: pid, TTL: time.Second}
		if byName {
			f.PID, f.Launched = 0, "sleeper"
		}
		if err := m.Start(f); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "the process to stop", func() bool { return procState(pid) == "T" })
		fc.Advance(time.Second)
		waitFor(t, "the process to resume", func() bool { return procState(pid) == "S" || procState(pid) == "R" })
	}
}

func TestFaultKillByPID(t *testing.T) {
	t.Parallel()
	m, fc, audit := newProcessFaults(t)
	cmd := exec.Command("sleep", "30")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	if err := m.Start(ProcessFault{Name: "k", Type: ProcKill, PID: cmd.Process.Pid, TTL: time.Second}); err != nil {
		t.Fatal(err)
	}
	err := cmd.Wait()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("the target ended with %v, want killed by SIGKILL", err)
	}
	// A process relia did not start is not brought back; the lease
	// records the fault's window and ends it.
	fc.Advance(time.Second)
	// The lease leaves Active before its end is audited (the revert runs
	// outside the lock), so the record is what to wait for.
	waitFor(t, "the audit end", func() bool { return len(audit.records(t, "fault ended")) == 1 })
	if rec := audit.records(t, "fault ended"); rec[0]["reason"] != EndExpired {
		t.Fatalf("audit %v", rec)
	}
	if active := m.Active(); len(active) != 0 {
		t.Fatalf("still active after its end was audited: %v", active)
	}
}

func TestFaultRestartLaunchedProcess(t *testing.T) {
	t.Parallel()
	m, _, _ := newProcessFaults(t)
	pid, err := m.Launch("svc", "sleep", "30")
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Start(ProcessFault{Name: "r", Type: ProcRestart, Launched: "svc"}); err != nil {
		t.Fatal(err)
	}
	// Restarted at once, not at the lease's end.
	now, _ := m.LaunchedPID("svc")
	if now == pid || m.Launched()["svc"] != now {
		t.Fatalf("pid %d after restart (was %d); Launched %v", now, pid, m.Launched())
	}
	if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Fatalf("the old process is still there: %v", err)
	}
	if err := syscall.Kill(now, 0); err != nil {
		t.Fatalf("the new process is not running: %v", err)
	}
}

// threadStat returns the state (R, S, ...) and the user and system CPU
// time of one of this process's threads; ok is false once it is gone.
func threadStat(tid int) (state string, cpu time.Duration, ok bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/self/task/%d/stat", tid))
	if err != nil {
		return "", 0, false
	}
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	return f[0], time.Duration(utime+stime) * 10 * time.Millisecond, true
}

func TestFaultCPUBurnBurnsAndStops(t *testing.T) {
	t.Parallel()
	if _, err := os.Stat("/proc/self/task"); err != nil || threadID() == 0 {
		t.Skip("needs /proc/self/task to see the burning threads")
	}
	m, _, _ := newProcessFaults(t)
	if err := m.Start(ProcessFault{Name: "cpu", Type: ProcCPU, Cores: 1, Percent: 100}); err != nil {
		t.Fatal(err)
	}
	m.mu.Lock()
	burners := m.faults["cpu"].burners
	m.mu.Unlock()
	tid := <-burners
	// The burn runs on a thread of its own that accrues CPU time...
	waitFor(t, "the burning thread to use 100ms of CPU", func() bool { _, d, _ := threadStat(tid); return d >= 100*time.Millisecond })
	if err := m.Stop("cpu"); err != nil {
		t.Fatal(err)
	}
	// ...and stops once the fault ends: the thread exits with its
	// goroutine, or sleeps for good when it was the main thread, which
	// the runtime never ends. A thread burning at 100% never sleeps.
	waitFor(t, "the burning thread to stop", func() bool { st, _, ok := threadStat(tid); return !ok || st == "S" })
}

func TestFaultKillRestartsLaunchedProcess(t *testing.T) {
	t.Parallel()
	m, fc, _ := newProcessFaults(t)
	pid, err := m.Launch("svc", "sleep", "30")
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Start(ProcessFault{Name: "k", Type: ProcKill, Launched: "svc", TTL: 2 * time.Second}); err != nil {
		t.Fatal(err)
	}
	if err := m.Renew("k", 3*time.Second); err != nil {
		t.Fatal(err)
	}
	if a := m.Active(); len(a) != 1 || a[0].Lease.TTL != "3s" || !a[0].Lease.ExpiresAt.Equal(fc.Now().Add(3*time.Second)) {
		t.Fatalf("active after renewal: %+v", a)
	}
	fc.Advance(2 * time.Second)
	if p, _ := m.LaunchedPID("svc"); p != pid {
		t.Fatal("restarted before the renewed lease ended")
	}
	fc.Advance(time.Second)
	waitFor(t, "the restart", func() bool { p, _ := m.LaunchedPID("svc"); return p != pid })
}

func TestFaultCPUAndMemoryRevertOnStopAndClose(t *testing.T) {
	t.Parallel()
	m, _, audit := newProcessFaults(t)
	if err := m.Start(ProcessFault{Name: "cpu", Type: ProcCPU, Cores: 1, Percent: 10}); err != nil {
		t.Fatal(err)
	}
	if err := m.Start(ProcessFault{Name: "mem", Type: ProcMemory, Bytes: 8 << 20}); err != nil {
		t.Fatal(err)
	}
	if err := m.Stop("cpu"); err != nil {
		t.Fatal(err)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	reasons := map[string]any{}
	for _, r := range audit.records(t, "fault ended") {
		reasons[r["fault"].(string)] = r["reason"]
	}
	if reasons["cpu"] != EndRemoved || reasons["mem"] != EndShutdown || len(m.Active()) != 0 {
		t.Fatalf("ends %v, active %v", reasons, m.Active())
	}
	if err := m.Start(ProcessFault{Name: "late", Type: ProcMemory, Bytes: 1}); err == nil {
		t.Fatal("started a fault after Close")
	}
}

func TestFaultProcessFaultsValidated(t *testing.T) {
	t.Parallel()
	m, _, _ := newProcessFaults(t)
	for _, f := range []ProcessFault{
		{Type: ProcMemory, Bytes: 1},
		{Name: "../x", Type: ProcMemory, Bytes: 1},
		{Name: strings.Repeat("x", MaxNameLength+1), Type: ProcMemory, Bytes: 1},
		{Name: "x", Type: "explode"},
		{Name: "x", Type: ProcKill},
		{Name: "x", Type: ProcKill, PID: 1, Launched: "a"},
		{Name: "x", Type: ProcPause, PID: os.Getpid()},
		{Name: "x", Type: ProcCPU, Cores: 0, Percent: 50},
		{Name: "x", Type: ProcCPU, Cores: 1, Percent: 101},
		{Name: "x", Type: ProcMemory, Bytes: -1},
		{Name: "x", Type: ProcDiskFill, Bytes: 10},
		{Name: "x", Type: ProcMemory, Bytes: 1, TTL: -time.Second},
		{Name: "x", Type: ProcKill, Launched: "nobody"},
		{Name: "x", Type: ProcRestart, PID: 1},
		{Name: "x", Type: ProcRestart, Launched: "nobody"},
		{Name: "x", Type: ProcPause, Launched: "nobody"},
		{Name: "x", Type: ProcCPU, Cores: runtime.GOMAXPROCS(0) + 1, Percent: 50},
		{Name: "x", Type: ProcMemory, Bytes: 1 << 62},
		{Name: "x", Type: ProcDiskFill, Path: "relative/fill", Bytes: 10},
		{Name: "x", Type: ProcDiskFill, Path: filepath.Join(t.TempDir(), "fill"), Bytes: 1 << 62},
		{Name: "x", Type: ProcDiskFill, Path: "/no/such/dir/fill", Bytes: 10},
	} {
		if err := m.Start(f); err == nil {
			t.Errorf("accepted %+v", f)
		}
	}
}

func TestFaultProcessAPI(t *testing.T) {
	t.Parallel()
	fc := clock.NewFake(time.Unix(1_700_000_000, 0))
	s, err := NewServer(Options{Clock: fc, AllowProcessFaults: true, DefaultTTL: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	h := s.Handler(HandlerOptions{})
	path := filepath.Join(t.TempDir(), "fill")
	steps := []struct {
		method, url, body string
		status            int
		want              string
	}{
		{"GET", "/relia/process-faults", "", 200, `[]`},
		{"POST", "/relia/process-faults", `{"name":"f","type":"disk_fill","path":"` + path + `","bytes":4096,"lease_ttl":"2s"}`, 200, `"lease":{"ttl":"2s"`},
		{"POST", "/relia/process-faults", `{"name":"f","type":"disk_fill","path":"` + path + `x","bytes":1}`, 409, `process fault already exists`},
		{"POST", "/relia/process-faults", `{"name":"g","type":"melt"}`, 400, `unknown process fault type`},
		{"POST", "/relia/process-faults", `{"name":"g","type":"memory","bytez":1}`, 400, `unknown field`},
		{"POST", "/relia/process-faults", `{"name":"m","type":"memory","bytes":4096}`, 200, `"ttl":"30s"`},
		{"GET", "/relia/process-faults", "", 200, `"name":"f"`},
		{"POST", "/relia/process-faults/f/renew", `{"lease_ttl":"3s"}`, 200, `"ttl":"3s"`},
		{"POST", "/relia/process-faults/nope/renew", ``, 404, `process fault not found`},
		{"DELETE", "/relia/process-faults/m", "", 204, ``},
		{"DELETE", "/relia/process-faults/m", "", 404, `process fault not found`},
	}
	for _, st := range steps {
		if code, body := apiDo(t, h, st.method, st.url, st.body); code != st.status || !strings.Contains(body, st.want) {
			t.Fatalf("%s %s %s: %d %s", st.method, st.url, st.body, code, body)
		}
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatal(err)
	}
	fc.Advance(3 * time.Second)
	waitFor(t, "the disk fill to go", func() bool { _, err := os.Stat(path); return os.IsNotExist(err) })

	off, _, _ := newTestServer(t, 1)
	if code, body := apiDo(t, off.Handler(HandlerOptions{}), "GET", "/relia/process-faults", ""); code != 403 || !strings.Contains(body, "disabled") {
		t.Fatalf("process faults on a server that does not allow them: %d %s", code, body)
	}
}

func TestFaultServerCloseRevertsProcessFaults(t *testing.T) {
	t.Parallel()
	s, _, audit := newTestServer(t, 1)
	path := filepath.Join(t.TempDir(), "fill")
	if err := s.ProcessFaults().Start(ProcessFault{Name: "f", Type: ProcDiskFill, Path: path, Bytes: 10}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatalf("disk fill left after Close: %v", err)
	}
	if ended := audit.records(t, "fault ended"); len(ended) != 1 || ended[0]["reason"] != EndShutdown {
		t.Fatalf("audit %v", ended)
	}
}
