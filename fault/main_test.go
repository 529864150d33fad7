package fault

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"
)

// The test binary acts as a lease holder when leaseHolderEnv names a
// server: a runner that adds a toxic and a disk fill (at the path in
// leaseFillEnv) and renews both until it is killed.
const (
	leaseHolderEnv = "RELIA_FAULT_TEST_LEASE_HOLDER"
	leaseFillEnv   = "RELIA_FAULT_TEST_LEASE_FILL"
)

func TestMain(m *testing.M) {
	if url := os.Getenv(leaseHolderEnv); url != "" {
		if err := holdLease(url, os.Getenv(leaseFillEnv)); err != nil {
			fmt.Fprintln(os.Stderr, "lease holder:", err)
		}
		os.Exit(1)
	}
	os.Exit(m.Run())
}

// holdLease adds the faults with 1 s leases and holds them, renewing every
// 200 ms through Client and Hold as a runner does; it returns only when a
// renewal is refused.
func holdLease(url, fill string) error {
	ctx := context.Background()
	c, err := NewClient(url, "", nil)
	if err != nil {
		return err
	}
	if _, err := c.AddToxic(ctx, "p", ToxicRequest{Name: "held", Type: "latency", LeaseTTL: "1s", Attributes: map[string]any{"latency": 10}}); err != nil {
		return err
	}
	if _, err := c.StartProcessFault(ctx, ProcessFault{Name: "fill", Type: ProcDiskFill, Path: fill, Bytes: 1 << 20, TTL: time.Second}); err != nil {
		return err
	}
	return Hold(ctx, nil, 200*time.Millisecond, func(ctx context.Context) error {
		if _, err := c.RenewToxic(ctx, "p", "held", 0); err != nil {
			return err
		}
		_, err := c.RenewProcessFault(ctx, "fill", 0)
		return err
	})
}
