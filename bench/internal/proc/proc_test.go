package proc

import (
	"os"
	"os/exec"
	"testing"
	"time"
)

func TestCPUTimeCountsChildren(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("no /proc")
	}
	// A shell whose child burns CPU: the shell itself uses almost none.
	cmd := exec.Command("sh", "-c", "timeout 2 sh -c 'while :; do :; done'; true")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	defer cmd.Process.Kill()
	deadline := time.Now().Add(10 * time.Second)
	for CPUTime(cmd.Process.Pid) < 200*time.Millisecond {
		if time.Now().After(deadline) {
			t.Fatalf("CPUTime = %v after 10s of a busy child; the child is not counted", CPUTime(cmd.Process.Pid))
		}
		time.Sleep(50 * time.Millisecond)
	}
	if own := ownCPUTime(cmd.Process.Pid); own >= 200*time.Millisecond {
		t.Fatalf("the shell itself used %v; the test cannot tell its own time from its child's", own)
	}
}

func TestCPUTimeOfNoProcess(t *testing.T) {
	if got := CPUTime(0); got != 0 {
		t.Fatalf("CPUTime(0) = %v", got)
	}
}
