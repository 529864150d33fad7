package fault

import (
	"log/slog"
	"net/http/httptest"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"
)

// TestFaultLeaseHolderKilled runs on the real clock: the point is that a
// real runner killed with SIGKILL leaves no fault behind for longer than
// its lease plus a second.
func TestFaultLeaseHolderKilled(t *testing.T) {
	t.Parallel()
	audit := &syncBuffer{}
	s, err := NewServer(Options{Seed: 1, Audit: slog.New(slog.NewJSONHandler(audit, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	addProxy(t, s, "p", startUpstream(t, echo))
	api := httptest.NewServer(s.Handler(HandlerOptions{}))
	defer api.Close()

	holder := exec.Command(os.Args[0], "-test.run=^$")
	holder.Env = append(os.Environ(), leaseHolderEnv+"="+api.URL)
	holder.Stderr = os.Stderr
	if err := holder.Start(); err != nil {
		t.Fatal(err)
	}
	defer holder.Process.Kill()

	// Wait until the holder has added the fault and renewed it at least
	// twice, so the lease is known to be alive through renewal.
	deadline := time.Now().Add(safety)
	for len(audit.records(t, "fault renewed")) < 2 {
		if time.Now().After(deadline) {
			t.Fatal("the lease holder never renewed its fault")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := holder.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	holder.Wait()
	for {
		if _, err := s.Toxic("p", "held"); err != nil {
			break
		}
		if time.Since(killed) > 2*time.Second {
			t.Fatal("the fault outlived its 1s lease plus 1s after its holder was killed")
		}
		time.Sleep(10 * time.Millisecond)
	}
	ended := audit.records(t, "fault ended")
	if len(ended) != 1 || ended[0]["reason"] != EndExpired {
		t.Fatalf("audit ends %v, want one expired", ended)
	}
}
