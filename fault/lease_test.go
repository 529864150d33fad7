package fault

import (
	"io"
	"net/http"
	"net/http/httptest"
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
			tx := addToxic(t, s, "p", `{"name":"t","type":"timeout","lease_ttl":"1m"}`)
			if tx.Lease.TTL != "1m0s" || !tx.Lease.ExpiresAt.Equal(fc.Now().Add(time.Minute)) {
				t.Fatalf("lease %+v, want a minute", tx.Lease)
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
	for _, o := range []Options{{DefaultTTL: -time.Second}, {DefaultTTL: 48 * time.Hour}, {DialTimeout: -1}, {MaxProxies: -1}} {
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

// TestFaultToxicWithoutLeaseStays drives the plain HTTP API as a
// Toxiproxy suite does: a toxic created without lease_ttl stays however
// long the suite runs (on a21340e it expired after a 60 s default lease),
// and one that asks for a lease expires by itself.
func TestFaultToxicWithoutLeaseStays(t *testing.T) {
	t.Parallel()
	s, fc, audit := newTestServer(t, 1)
	addProxy(t, s, "p", startUpstream(t, echo))
	api := httptest.NewServer(s.Handler(HandlerOptions{}))
	defer api.Close()
	post := func(path, body string, want int) string {
		t.Helper()
		resp, err := http.Post(api.URL+path, "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != want {
			t.Fatalf("POST %s %s: %d %s, want %d", path, body, resp.StatusCode, b, want)
		}
		return string(b)
	}
	if out := post("/proxies/p/toxics", `{"name":"plain","type":"latency","attributes":{"latency":5}}`, 200); strings.Contains(out, `"lease"`) {
		t.Fatalf("a toxic without lease_ttl shows a lease: %s", out)
	}
	post("/proxies/p/toxics", `{"name":"leased","type":"latency","lease_ttl":"30s"}`, 200)
	if started := audit.records(t, "fault started"); len(started) != 2 || started[0]["ttl"] != NoLease || started[1]["ttl"] != "30s" {
		t.Fatalf("audit starts %v", started)
	}
	// Renewing a toxic that has no lease is refused unless it asks for
	// one; an update keeps it without.
	if out := post("/proxies/p/toxics/plain/renew", ``, 409); !strings.Contains(out, `toxic has no lease: \"plain\" on proxy \"p\" stays until removed`) {
		t.Fatalf("renew without a lease: %s", out)
	}
	if out := post("/proxies/p/toxics/plain", `{"attributes":{"latency":6}}`, 200); strings.Contains(out, `"lease"`) {
		t.Fatalf("an update gave the toxic a lease: %s", out)
	}
	fc.Advance(DefaultLeaseTTL + 30*time.Second)
	waitGone(t, s, "p", "leased")
	fc.Advance(MaxLeaseTTL)
	if _, err := s.Toxic("p", "plain"); err != nil {
		t.Fatalf("the toxic without a lease went away: %v", err)
	}
	// Asked for, a lease is given and runs out.
	post("/proxies/p/toxics/plain/renew", `{"lease_ttl":"10s"}`, 200)
	fc.Advance(10 * time.Second)
	waitGone(t, s, "p", "plain")
}

// TestFaultServerDefaultLease: a server given a default lease (relia fault
// serve --default-ttl) leases the toxics that name none, and lease_ttl
// "none" still asks for a toxic that stays.
func TestFaultServerDefaultLease(t *testing.T) {
	t.Parallel()
	s, fc, _ := newTestServerWith(t, Options{DefaultTTL: 20 * time.Second})
	addProxy(t, s, "p", startUpstream(t, echo))
	if tx := addToxic(t, s, "p", `{"name":"d","type":"latency"}`); tx.Lease == nil || tx.Lease.TTL != "20s" {
		t.Fatalf("lease %+v, want the server's 20s", tx.Lease)
	}
	if tx := addToxic(t, s, "p", `{"name":"n","type":"latency","lease_ttl":"none"}`); tx.Lease != nil {
		t.Fatalf("lease_ttl none gave lease %+v", tx.Lease)
	}
	fc.Advance(20 * time.Second)
	waitGone(t, s, "p", "d")
	if _, err := s.Toxic("p", "n"); err != nil {
		t.Fatalf("the toxic that asked for no lease went away: %v", err)
	}
}
