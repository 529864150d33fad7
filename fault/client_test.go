package fault

import (
	"context"
	"errors"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/relia-dev/relia/clock"
)

func TestFaultHoldRenewsUntilDoneOrRefused(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		results []error // what each renewal returns, in order
		cancel  bool    // cancel after the renewals
		want    error
	}{
		{"renews until cancelled", []error{nil, nil, nil}, true, context.Canceled},
		{"a lost fault ends the hold", []error{nil, ErrToxicNotFound}, false, ErrToxicNotFound},
		{"an unreachable server is tried again", []error{errors.New("connection refused"), nil}, true, context.Canceled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			fc := clock.NewFake(time.Unix(0, 0))
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var calls atomic.Int32
			renewed := make(chan struct{})
			done := make(chan error, 1)
			go func() {
				done <- Hold(ctx, fc, time.Second, func(context.Context) error {
					i := calls.Add(1) - 1
					defer func() { renewed <- struct{}{} }()
					return tt.results[i]
				})
			}()
			for range tt.results {
				// Nothing renews before a full interval has passed.
				fc.BlockUntil(1)
				fc.Advance(999 * time.Millisecond)
				if fc.Waiters() != 1 {
					t.Fatal("renewed before the interval had passed")
				}
				fc.Advance(time.Millisecond)
				<-renewed
			}
			if tt.cancel {
				cancel()
			}
			if err := <-done; !errors.Is(err, tt.want) {
				t.Fatalf("Hold = %v, want %v", err, tt.want)
			}
			if n := calls.Load(); n != int32(len(tt.results)) {
				t.Fatalf("%d renewals, want %d", n, len(tt.results))
			}
		})
	}
	if err := Hold(context.Background(), nil, 0, nil); err == nil {
		t.Fatal("Hold accepted a zero interval")
	}
}

func TestFaultClientAgainstServer(t *testing.T) {
	t.Parallel()
	s, fc, _ := newTestServer(t, 21)
	addProxy(t, s, "p", startUpstream(t, echo))
	api := httptest.NewServer(s.Handler(HandlerOptions{Token: "tok"}))
	defer api.Close()
	ctx := context.Background()
	if _, err := NewClient("localhost:8474", "", nil); err == nil {
		t.Fatal("a base without scheme was accepted")
	}
	anon, _ := NewClient(api.URL, "", nil)
	if _, err := anon.Proxies(ctx); !errors.Is(err, ErrUnauthorized) {
		t.Fatalf("without the token: %v, want ErrUnauthorized", err)
	}
	c, _ := NewClient(api.URL+"/", "tok", nil)
	st, err := c.Status(ctx)
	if err != nil || st.Seed != 21 {
		t.Fatalf("status %+v, %v", st, err)
	}
	tox, err := c.AddToxic(ctx, "p", ToxicRequest{Type: "latency", LeaseTTL: "10s", Attributes: map[string]any{"latency": 5}})
	if err != nil || tox.Name != "latency_downstream" || tox.Lease.TTL != "10s" {
		t.Fatalf("add: %+v, %v", tox, err)
	}
	if _, err := c.AddToxic(ctx, "p", ToxicRequest{Type: "latency"}); !errors.Is(err, ErrToxicAlreadyExists) {
		t.Fatalf("second add: %v, want ErrToxicAlreadyExists", err)
	}
	fc.Advance(5 * time.Second)
	tox, err = c.RenewToxic(ctx, "p", "latency_downstream", 20*time.Second)
	if err != nil || !tox.Lease.ExpiresAt.Equal(fc.Now().Add(20*time.Second)) {
		t.Fatalf("renew: %+v, %v", tox.Lease, err)
	}
	ps, err := c.Proxies(ctx)
	if err != nil || len(ps) != 1 || len(ps[0].Toxics) != 1 {
		t.Fatalf("proxies %+v, %v", ps, err)
	}
	if err := c.RemoveToxic(ctx, "p", "latency_downstream"); err != nil {
		t.Fatal(err)
	}
	if err := c.RemoveToxic(ctx, "p", "latency_downstream"); !errors.Is(err, ErrToxicNotFound) {
		t.Fatalf("second remove: %v, want ErrToxicNotFound", err)
	}
	if err := c.Reset(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := c.ProcessFaults(ctx); !errors.Is(err, ErrProcessFaultsDisabled) {
		t.Fatalf("process faults on a server without them: %v", err)
	}
}
