package shop

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/relia-dev/relia/clock"
	"github.com/relia-dev/relia/outcome"
)

func TestKillResetsInFlightAndRefusesNew(t *testing.T) {
	t.Parallel()
	// With latency on a fake clock, a request stays in flight until the
	// test advances the clock, which it never does.
	fc := clock.NewFake(time.Time{})
	s := startShop(t, Options{CatalogReplicas: 2, Latency: true, Clock: fc})
	r := s.Catalog(0)
	c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	idle := testClient(t)

	// An idle keep-alive connection, open before the kill.
	fc2 := mustCallAdvancing(t, fc, idle, r.URL()+"/products/1")
	if fc2.status != 200 {
		t.Fatalf("before the kill: %d", fc2.status)
	}

	inFlight := callAsync(context.Background(), c, "GET", r.URL()+"/products?page=2", "")
	fc.BlockUntil(1) // the request is in its handler
	r.Kill()
	if err := (<-inFlight).err; outcome.Classify(err) != outcome.ClassReset {
		t.Errorf("in-flight request at the kill: %v (%s), want a reset", err, outcome.Classify(err))
	}
	if r.Alive() {
		t.Error("alive after Kill")
	}
	_, err := call(context.Background(), c, "GET", r.URL()+"/healthz", "")
	if outcome.Classify(err) != outcome.ClassRefused {
		t.Errorf("new connection to a killed replica: %v, want refused", err)
	}
	// The idle connection was reset too; the transport finds out on use
	// and, the request being idempotent, dials again: refused.
	if _, err := call(context.Background(), idle, "GET", r.URL()+"/healthz", ""); err == nil {
		t.Error("the kept-alive connection still answers")
	}
	r.Kill() // killing a dead replica does nothing

	// The other replica is untouched.
	if a := mustCall(t, c, "GET", s.Catalog(1).URL()+"/healthz", ""); a.status != 200 {
		t.Errorf("replica 1 after replica 0's kill: %d", a.status)
	}

	url := r.URL()
	if err := r.Restart(); err != nil {
		t.Fatalf("restart: %v", err)
	}
	if err := r.Restart(); err != nil {
		t.Fatalf("restarting a running replica: %v", err)
	}
	if r.URL() != url || !r.Alive() {
		t.Errorf("after restart: %s alive %v, want %s alive", r.URL(), r.Alive(), url)
	}
	if a := mustCallAdvancing(t, fc, c, url+"/products/3"); a.status != 200 {
		t.Errorf("after restart: %d %s", a.status, a.body)
	}
}

// mustCallAdvancing sends a request to a shop on a fake clock with
// latency on: it waits until the handler sleeps, then advances the clock
// past any service time.
func mustCallAdvancing(t *testing.T, fc *clock.Fake, c *http.Client, url string) answer {
	t.Helper()
	before := fc.Waiters()
	done := callAsync(context.Background(), c, "GET", url, "")
	fc.BlockUntil(before + 1)
	fc.Advance(time.Minute)
	r := <-done
	if r.err != nil {
		t.Fatalf("GET %s: %v", url, r.err)
	}
	return r.a
}

func TestKillManyTimes(t *testing.T) {
	t.Parallel()
	s := startShop(t, Options{CatalogReplicas: 1})
	c := testClient(t)
	r := s.Catalog(0)
	for i := range 5 {
		r.Kill()
		if err := r.Restart(); err != nil {
			t.Fatalf("restart %d: %v", i, err)
		}
		if a := mustCall(t, c, "GET", r.URL()+"/products/1", ""); a.status != 200 {
			t.Fatalf("after restart %d: %d", i, a.status)
		}
	}
}

func TestEveryServiceCanCrash(t *testing.T) {
	t.Parallel()
	s := startShop(t, Options{NoProcessorErrors: true})
	c := testClient(t)
	for _, name := range Services {
		rs := s.Replicas(name)
		if want := map[bool]int{true: DefaultCatalogReplicas, false: 1}[name == ServiceCatalog]; len(rs) != want {
			t.Fatalf("%s: %d replicas, want %d", name, len(rs), want)
		}
		r := rs[len(rs)-1]
		if r.Service() != name || r.URL() != s.Endpoints()[name][len(rs)-1] {
			t.Errorf("%s: replica of %s at %s", name, r.Service(), r.URL())
		}
		r.Kill()
		if _, err := call(context.Background(), c, "GET", r.URL()+"/healthz", ""); outcome.Classify(err) != outcome.ClassRefused {
			t.Errorf("%s killed: %v, want refused", name, err)
		}
		if err := r.Restart(); err != nil {
			t.Fatal(err)
		}
		if a := mustCall(t, c, "GET", r.URL()+"/healthz", ""); a.status != 200 {
			t.Errorf("%s restarted: %d", name, a.status)
		}
	}
	if s.Replicas("inventory") != nil {
		t.Error("replicas of an unknown service")
	}
	// With the processor down, payments fail fast with 502 and keep no
	// verdict.
	s.Replicas(ServiceProcessor)[0].Kill()
	if a := payer(t, c, s, 3)("down", 100); a.status != 502 {
		t.Errorf("payment with the processor down: %d %s", a.status, a.body)
	}
}

func TestReplicasOfEveryService(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		o    Options
		want map[string]int
	}{
		{"defaults", Options{}, map[string]int{ServiceCatalog: 3, ServiceUsers: 1, ServiceProcessor: 1, ServicePayments: 1, ServiceRecommendations: 1}},
		{"catalog replicas alone", Options{CatalogReplicas: 2}, map[string]int{ServiceCatalog: 2, ServiceUsers: 1, ServiceProcessor: 1, ServicePayments: 1, ServiceRecommendations: 1}},
		{"two of each", Options{Replicas: map[string]int{ServiceCatalog: 2, ServiceUsers: 2, ServicePayments: 2, ServiceRecommendations: 2}},
			map[string]int{ServiceCatalog: 2, ServiceUsers: 2, ServiceProcessor: 1, ServicePayments: 2, ServiceRecommendations: 2}},
		{"zero means the default", Options{Replicas: map[string]int{ServiceCatalog: 0, ServiceUsers: 0, ServiceProcessor: 1, ServiceRecommendations: 3}},
			map[string]int{ServiceCatalog: 3, ServiceUsers: 1, ServiceProcessor: 1, ServicePayments: 1, ServiceRecommendations: 3}},
		{"agreeing catalog counts", Options{CatalogReplicas: 4, Replicas: map[string]int{ServiceCatalog: 4}},
			map[string]int{ServiceCatalog: 4, ServiceUsers: 1, ServiceProcessor: 1, ServicePayments: 1, ServiceRecommendations: 1}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := startShop(t, tc.o)
			c := testClient(t)
			for _, name := range Services {
				rs := s.Replicas(name)
				if len(rs) != tc.want[name] || len(s.Endpoints()[name]) != tc.want[name] {
					t.Fatalf("%s: %d replicas, %d endpoints, want %d", name, len(rs), len(s.Endpoints()[name]), tc.want[name])
				}
				for i, r := range rs {
					if r.Index() != i || r.Service() != name || r.URL() != s.Endpoints()[name][i] {
						t.Errorf("%s replica %d: index %d of %s at %s", name, i, r.Index(), r.Service(), r.URL())
					}
					a := mustCall(t, c, "GET", r.URL()+"/healthz", "")
					if a.status != 200 || a.header.Get("X-Shop-Replica") != strconv.Itoa(i) {
						t.Errorf("%s replica %d: %d from replica %q", name, i, a.status, a.header.Get("X-Shop-Replica"))
					}
				}
			}
			if s.CatalogReplicas() != tc.want[ServiceCatalog] {
				t.Errorf("CatalogReplicas() = %d, want %d", s.CatalogReplicas(), tc.want[ServiceCatalog])
			}
		})
	}
}

// TestReplicasShareTheirService checks that the replicas of a service are
// one service: a token from one users replica works on another, and a
// payment retried on another payments replica is not charged twice.
func TestReplicasShareTheirService(t *testing.T) {
	t.Parallel()
	s := startShop(t, Options{NoProcessorErrors: true, Replicas: map[string]int{ServiceUsers: 2, ServicePayments: 2, ServiceRecommendations: 2}})
	c := testClient(t)
	token := login(t, c, s, 5) // from users replica 0
	users := s.Replicas(ServiceUsers)
	if a := mustCall(t, c, "GET", users[1].URL()+"/users/5", "", "Authorization", "Bearer "+token); a.status != 200 {
		t.Errorf("replica 1 with replica 0's token: %d %s", a.status, a.body)
	}
	pay := func(r *Replica) answer {
		return mustCall(t, c, "POST", r.URL()+"/payments", `{"amountCents": 700, "currency": "EUR"}`,
			"Authorization", "Bearer "+token, "Idempotency-Key", "shared")
	}
	ps := s.Replicas(ServicePayments)
	first, again := pay(ps[0]), pay(ps[1])
	if (first.status != 201 && first.status != 402) || again.body != first.body || again.header.Get("Idempotent-Replayed") != "true" {
		t.Errorf("the same key on two replicas: %d %s, then %d %s (replayed %q)",
			first.status, first.body, again.status, again.body, again.header.Get("Idempotent-Replayed"))
	}
	for _, r := range s.Replicas(ServiceRecommendations) {
		if a := mustCall(t, c, "GET", r.URL()+"/recommendations/5", ""); a.status != 200 {
			t.Errorf("recommendations replica %d: %d %s", r.Index(), a.status, a.body)
		}
	}
}

// shortClient gives up on a request after a moment: long enough for a
// running replica on loopback, far too short for a paused one, which
// never answers.
func shortClient(t testing.TB) *http.Client {
	c := testClient(t)
	c.Timeout = 200 * time.Millisecond
	return c
}

func TestPausedReplicaAnswersNothingUntilResumed(t *testing.T) {
	t.Parallel()
	s := startShop(t, Options{CatalogReplicas: 2})
	r := s.Catalog(0)
	c := testClient(t)

	r.Pause()
	r.Pause() // pausing a paused replica does nothing
	if !r.Alive() || !r.Paused() {
		t.Fatalf("paused: alive %v, paused %v; want both", r.Alive(), r.Paused())
	}
	// New requests and health checks get no answer before the client's
	// timeout, and the replica lets go of them when the client leaves.
	for _, path := range []string{"/products/1", "/healthz"} {
		_, err := call(context.Background(), shortClient(t), "GET", r.URL()+path, "")
		if outcome.Classify(err) != outcome.ClassTimeout {
			t.Errorf("GET %s from a paused replica: %v, want a client timeout", path, err)
		}
		r.srv.gate.waitHeld(0)
	}
	// The other replica is untouched.
	if a := mustCall(t, shortClient(t), "GET", s.Catalog(1).URL()+"/products/1", ""); a.status != 200 {
		t.Errorf("replica 1 while replica 0 is paused: %d", a.status)
	}

	// A request sent while paused is held, and answered on Resume.
	held := callAsync(context.Background(), c, "GET", r.URL()+"/products/2", "")
	r.srv.gate.waitHeld(1)
	r.Resume()
	r.Resume() // resuming a running replica does nothing
	if res := <-held; res.err != nil || res.a.status != 200 || !strings.Contains(res.a.body, `"id":2,`) {
		t.Errorf("held request after Resume: %v %d %s", res.err, res.a.status, res.a.body)
	}
	if r.Paused() || !r.Alive() {
		t.Errorf("resumed: paused %v, alive %v", r.Paused(), r.Alive())
	}
	if a := mustCall(t, shortClient(t), "GET", r.URL()+"/healthz", ""); a.status != 200 {
		t.Errorf("health after Resume: %d", a.status)
	}
}

// TestPauseHoldsAnswersInFlight pauses a replica while a request sleeps
// its service time: the answer, once written, is held until Resume.
func TestPauseHoldsAnswersInFlight(t *testing.T) {
	t.Parallel()
	fc := clock.NewFake(time.Time{})
	s := startShop(t, Options{CatalogReplicas: 1, Latency: true, Clock: fc})
	r := s.Catalog(0)

	ctx, giveUp := context.WithCancel(context.Background())
	defer giveUp()
	abandoned := callAsync(ctx, testClient(t), "GET", r.URL()+"/products/3", "")
	answered := callAsync(context.Background(), testClient(t), "GET", r.URL()+"/products/4", "")
	fc.BlockUntil(2) // both requests are in their handlers
	r.Pause()
	fc.Advance(time.Minute) // their service times pass; their answers are held
	r.srv.gate.waitHeld(2)
	// A client that gives up is let go of.
	giveUp()
	if res := <-abandoned; outcome.Classify(res.err) != outcome.ClassCanceled {
		t.Errorf("abandoned while held: %v %d, want canceled", res.err, res.a.status)
	}
	r.srv.gate.waitHeld(1)
	r.Resume()
	if res := <-answered; res.err != nil || res.a.status != 200 || !strings.Contains(res.a.body, `"id":4,`) {
		t.Errorf("in flight at the pause, after Resume: %v %d %s", res.err, res.a.status, res.a.body)
	}
}

func TestKillAPausedReplica(t *testing.T) {
	t.Parallel()
	s := startShop(t, Options{CatalogReplicas: 1})
	r := s.Catalog(0)
	r.Pause()
	held := callAsync(context.Background(), testClient(t), "GET", r.URL()+"/products/1", "")
	r.srv.gate.waitHeld(1)
	r.Kill() // returns: the held request ends with its connection
	if res := <-held; outcome.Classify(res.err) != outcome.ClassReset {
		t.Errorf("held request at the kill: %v, want a reset", res.err)
	}
	if r.Alive() || r.Paused() {
		t.Errorf("killed: alive %v, paused %v", r.Alive(), r.Paused())
	}
	r.Pause() // pausing a dead replica does nothing
	if r.Paused() {
		t.Error("a dead replica paused")
	}
	if err := r.Restart(); err != nil {
		t.Fatal(err)
	}
	if a := mustCall(t, shortClient(t), "GET", r.URL()+"/products/1", ""); a.status != 200 {
		t.Errorf("restarted after a kill while paused: %d", a.status)
	}
}

func TestCloseResumesPausedReplicas(t *testing.T) {
	t.Parallel()
	s := startShop(t, Options{Replicas: map[string]int{ServiceUsers: 2}})
	var held []<-chan result
	for _, name := range Services {
		r := s.Replicas(name)[0]
		r.Pause()
		held = append(held, callAsync(context.Background(), testClient(t), "GET", r.URL()+"/healthz", ""))
		r.srv.gate.waitHeld(1)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	for i, h := range held {
		if res := <-h; res.err != nil || res.a.status != 200 {
			t.Errorf("%s: held health check at close: %v %d", Services[i], res.err, res.a.status)
		}
	}
}

// TestReplicaControlsFromManyGoroutines races every control of a replica
// against the others and against traffic; -race checks the rest.
func TestReplicaControlsFromManyGoroutines(t *testing.T) {
	t.Parallel()
	s := startShop(t, Options{CatalogReplicas: 1})
	r := s.Catalog(0)
	ops := []func(){r.Kill, func() { r.Restart() }, r.Pause, r.Resume, func() { r.Alive(); r.Paused() }}
	var wg sync.WaitGroup
	for g := range 6 {
		wg.Go(func() {
			for i := range 40 {
				ops[(g+i)%len(ops)]()
			}
		})
	}
	wg.Go(func() {
		for range 5 {
			// Any outcome will do; the request must not hang for ever.
			call(context.Background(), shortClient(t), "GET", r.URL()+"/products/1", "")
		}
	})
	wg.Wait()
	r.Resume()
	if err := r.Restart(); err != nil {
		t.Fatal(err)
	}
	if a := mustCall(t, shortClient(t), "GET", r.URL()+"/products/1", ""); a.status != 200 || r.Paused() || !r.Alive() {
		t.Errorf("after the storm: %d, paused %v, alive %v", a.status, r.Paused(), r.Alive())
	}
}
