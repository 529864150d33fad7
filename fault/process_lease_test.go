//go:build unix

package fault

import (
	"log/slog"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// TestFaultLeaseHolderKilled runs on the real clock: the point is that a
// real runner killed with SIGKILL leaves no fault behind, neither a toxic
// nor a disk fill, for longer than its lease plus a second.
func TestFaultLeaseHolderKilled(t *testing.T) {
	t.Parallel()
	audit := &syncBuffer{}
	s, err := NewServer(Options{Seed: 1, AllowProcessFaults: true, Audit: slog.New(slog.NewJSONHandler(audit, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	addProxy(t, s, "p", startUpstream(t, echo))
	api := httptest.NewServer(s.Handler(HandlerOptions{}))
	defer api.Close()
	fill := filepath.Join(t.TempDir(), "fill")

	holder := exec.Command(os.Args[0], "-test.run=^$")
	holder.Env = append(os.Environ(), leaseHolderEnv+"="+api.URL, leaseFillEnv+"="+fill)
	holder.Stderr = os.Stderr
	if err := holder.Start(); err != nil {
		t.Fatal(err)
	}
	defer holder.Process.Kill()

	// Wait until the holder has renewed both faults at least twice each,
	// so the leases are known to be alive through renewal.
	deadline := time.Now().Add(safety)
	for len(audit.records(t, "fault renewed")) < 4 {
		if time.Now().After(deadline) {
			t.Fatal("the lease holder never renewed its faults")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if _, err := os.Stat(fill); err != nil {
		t.Fatalf("the held disk fill is missing: %v", err)
	}
	if err := holder.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	holder.Wait()
	for {
		_, toxicErr := s.Toxic("p", "held")
		_, fillErr := os.Stat(fill)
		// The audit line follows the revert, so wait for it as well.
		if toxicErr != nil && os.IsNotExist(fillErr) && len(audit.records(t, "fault ended")) == 2 {
			break
		}
		if time.Since(killed) > 2*time.Second {
			t.Fatalf("faults outlived their 1s lease plus 1s after the holder was killed: toxic %v, fill %v", toxicErr, fillErr)
		}
		time.Sleep(10 * time.Millisecond)
	}
	ended := map[string]any{}
	for _, rec := range audit.records(t, "fault ended") {
		ended[rec["fault"].(string)] = rec["reason"]
	}
	if len(ended) != 2 || ended["held"] != EndExpired || ended["fill"] != EndExpired {
		t.Fatalf("audit ends %v, want held and fill expired", ended)
	}
}
