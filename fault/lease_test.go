package fault

import (
	"strings"
	"testing"
	"time"
)

func TestFaultLeaseExpiresUnlessRenewed(t *testing.T) {
	t.Parallel()
	s, fc, audit := newTestServer(t, 5)
	addProxy(t, s, "p", startUpstream(t, echo))
	tx := addToxic(t, s, "p", `{"type":"latency","lease_ttl":"10s","attributes":{"latency":1}}`)
	if tx.Lease == nil || tx.Lease.TTL != "10s" || !tx.Lease.ExpiresAt.Equal(fc.Now().Add(10*time.Second)) {
		t.Fatalf("lease %+v, want 10s from now", tx.Lease)
	}
	fc.Advance(9 * time.Second)
	if _, err := s.RenewToxic("p", "latency_downstream", 0); err != nil {
		t.Fatal(err)
	}
	fc.Advance(9 * time.Second) // 18 s after the start, 9 after the renewal
	if _, err := s.Toxic("p", "latency_downstream"); err != nil {
		t.Fatalf("renewed fault gone early: %v", err)
	}
	fc.Advance(time.Second)
	waitGone(t, s, "p", "latency_downstream")
	ended := audit.records(t, "fault ended")
	if len(ended) != 1 || ended[0]["reason"] != EndExpired || ended[0]["fault"] != "latency_downstream" {
		t.Fatalf("audit ends %v, want one expired", ended)
	}
	started := audit.records(t, "fault started")
	if len(started) != 1 || started[0]["seed"] != float64(5) || started[0]["ttl"] != "10s" {
		t.Fatalf("audit starts %v", started)
	}
}

// waitGone waits until the lease goroutine (the fake clock runs AfterFunc
// in a goroutine of its own) has removed the toxic.
func waitGone(t *testing.T, s *Server, proxy, name string) {
	t.Helper()
	deadline := time.Now().Add(safety)
	for {
		if _, err := s.Toxic(proxy, name); err != nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("toxic %s still there after its lease", name)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestFaultLeaseDefaultsAndEndReasons(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		end    func(s *Server) error
		reason string
	}{
		{"removed", func(s *Server) error { return s.RemoveToxic("p", "t") }, EndRemoved},
		{"proxy deleted", func(s *Server) error { return s.DeleteProxy("p") }, EndRemoved},
		{"reset", func(s *Server) error { return s.Reset() }, EndReset},
		{"shutdown", func(s *Server) error { return s.Close() }, EndShutdown},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, fc, audit := newTestServer(t, 1)
			addProxy(t, s, "p", startUpstream(t, echo))
			tx := addToxic(t, s, "p", `{"name":"t","type":"timeout"}`)
			// A toxic created the Toxiproxy way, with no lease, gets the
			// default lease.
			if tx.Lease.TTL != DefaultLeaseTTL.String() || !tx.Lease.ExpiresAt.Equal(fc.Now().Add(DefaultLeaseTTL)) {
				t.Fatalf("lease %+v, want the default", tx.Lease)
			}
			if err := tt.end(s); err != nil {
				t.Fatal(err)
			}
			ended := audit.records(t, "fault ended")
			if len(ended) != 1 || ended[0]["reason"] != tt.reason {
				t.Fatalf("audit ends %v, want reason %s", ended, tt.reason)
			}
			// Its lease timer is gone with it.
			if n := fc.Waiters(); n != 0 {
				t.Fatalf("%d timers left after the fault ended", n)
			}
		})
	}
}

func TestFaultUpdateRenewsAndKeepsLease(t *testing.T) {
	t.Parallel()
	s, fc, _ := newTestServer(t, 1)
	addProxy(t, s, "p", startUpstream(t, echo))
	addToxic(t, s, "p", `{"name":"t","type":"latency","lease_ttl":"5s"}`)
	fc.Advance(4 * time.Second)
	tx, err := s.UpdateToxic("p", "t", strings.NewReader(`{"attributes":{"latency":7}}`))
	if err != nil {
		t.Fatal(err)
	}
	if tx.Lease.TTL != "5s" || !tx.Lease.ExpiresAt.Equal(fc.Now().Add(5*time.Second)) {
		t.Fatalf("lease after update %+v", tx.Lease)
	}
	fc.Advance(4 * time.Second)
	if _, err := s.Toxic("p", "t"); err != nil {
		t.Fatal("updated toxic expired on its old lease")
	}
}

func TestFaultServerOptionsValidated(t *testing.T) {
	t.Parallel()
	for _, o := range []Options{{DefaultTTL: -time.Second}, {DefaultTTL: 48 * time.Hour}, {DialTimeout: -1}} {
		if _, err := NewServer(o); err == nil {
			t.Errorf("NewServer(%+v) accepted an invalid option", o)
		}
	}
}

func TestFaultClosedServerRefusesProxies(t *testing.T) {
	t.Parallel()
	s, _, _ := newTestServer(t, 1)
	s.Close()
	if _, err := s.CreateProxy(ProxyConfig{Name: "p", Listen: "127.0.0.1:0", Upstream: "127.0.0.1:1"}); err == nil {
		t.Fatal("a closed server created a proxy")
	}
}
