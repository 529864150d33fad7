package shop

import (
	"context"
	"io"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/relia-dev/relia/gateway"
	"github.com/relia-dev/relia/load"
	"github.com/relia-dev/relia/outcome"
)

// startGateway puts the shop behind relia's gateway with the shop's own
// config and returns the gateway's base URL.
func startGateway(t *testing.T, s *Shop) string {
	t.Helper()
	cfg, err := gateway.Parse("shop-gateway.yaml", s.GatewayConfig())
	if err != nil {
		t.Fatalf("the shop's gateway config: %v\n%s", err, s.GatewayConfig())
	}
	g, err := gateway.New(cfg, gateway.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), AccessLog: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Shutdown(context.Background()) })
	return "http://" + g.Addr("public")
}

func TestGatewayConfig(t *testing.T) {
	t.Parallel()
	two := map[string]int{ServiceCatalog: 2, ServiceUsers: 2, ServicePayments: 2, ServiceRecommendations: 2}
	for _, resilient := range []bool{false, true} {
		t.Run(map[bool]string{false: "plain", true: "resilient"}[resilient], func(t *testing.T) {
			t.Parallel()
			s := startShop(t, Options{Resilient: resilient, Replicas: two})
			cfg, err := gateway.Parse("shop.yaml", s.GatewayConfig())
			if err != nil {
				t.Fatalf("%v\n%s", err, s.GatewayConfig())
			}
			var names []string
			for _, r := range cfg.Spec.Routes {
				names = append(names, r.Name)
				if r.Timeout <= 0 {
					t.Errorf("route %s: no overall timeout", r.Name)
				}
				if !resilient {
					if r.Retry != nil || r.PerTryTimeout != 0 || r.Fallback != nil {
						t.Errorf("plain route %s: retry %+v, per try %v, fallback %v", r.Name, r.Retry, r.PerTryTimeout, r.Fallback != nil)
					}
					continue
				}
				if r.PerTryTimeout <= 0 || r.PerTryTimeout >= r.Timeout {
					t.Errorf("route %s: per try %v, overall %v; want a try shorter than the request", r.Name, r.PerTryTimeout, r.Timeout)
				}
				if r.Retry == nil || r.Retry.Attempts < 2 || r.Retry.Budget.Ratio <= 0 {
					t.Errorf("route %s: retry %+v, want attempts on a budget", r.Name, r.Retry)
				}
				wantFallback := r.Name == RouteRecommendations || r.Name == RoutePopular
				if got := r.Fallback != nil && r.Fallback.Body == string(s.Popular()); got != wantFallback {
					t.Errorf("route %s: popular fallback %v, want %v", r.Name, got, wantFallback)
				}
			}
			want := []string{RouteProducts, RouteLogin, RouteUsers, RoutePayments, RouteRecommendations, RoutePopular, RouteCart, RouteCheckout, RouteReceipts}
			if !slices.Equal(names, want) {
				t.Errorf("routes %v, want %v", names, want)
			}
			var pools []string
			for _, u := range cfg.Spec.Upstreams {
				pools = append(pools, u.Name)
				var targets []string
				for _, tg := range u.Targets {
					targets = append(targets, "http://"+tg.Address)
				}
				if !slices.Equal(targets, s.Endpoints()[u.Name]) || len(targets) != 2 {
					t.Errorf("%s targets %v, want every replica: %v", u.Name, targets, s.Endpoints()[u.Name])
				}
				breaker := u.Breaker != nil && !u.Breaker.Disabled
				health := u.Health.Active != nil && u.Health.Passive != nil
				if breaker != resilient || health != resilient {
					t.Errorf("%s: breaker %v, active and passive health %v; want both %v", u.Name, breaker, health, resilient)
				}
			}
			if want := []string{ServiceCatalog, ServiceUsers, ServicePayments, ServiceRecommendations}; !slices.Equal(pools, want) {
				t.Errorf("upstreams %v, want %v", pools, want)
			}
		})
	}
}

// failedGets sends n GETs of catalog products through the gateway at gw
// and counts those that did not come back 200.
func failedGets(t *testing.T, gw string, n int) int {
	t.Helper()
	c := testClient(t)
	failed := 0
	for i := range n {
		a, err := call(context.Background(), c, "GET", gw+"/api/products/"+strconv.Itoa(1+i%NumProducts), "")
		if err != nil || a.status != 200 {
			failed++
		}
	}
	return failed
}

// TestKilledReplicaBehindTheGateway is what the demo shows: with one of
// three catalog replicas dead, the resilient gateway hides the loss, the
// plain one passes it on to the clients.
func TestKilledReplicaBehindTheGateway(t *testing.T) {
	t.Parallel()
	const gets = 200
	for _, resilient := range []bool{true, false} {
		t.Run(map[bool]string{false: "plain", true: "resilient"}[resilient], func(t *testing.T) {
			t.Parallel()
			s := startShop(t, Options{Seed: 3, Resilient: resilient, CatalogReplicas: 3})
			gw := startGateway(t, s)
			s.Catalog(1).Kill()
			failed := failedGets(t, gw, gets)
			t.Logf("%d of %d GETs failed", failed, gets)
			if resilient && failed > gets/100 {
				t.Errorf("resilient: %d of %d GETs failed with one replica dead, want at most 1%%", failed, gets)
			}
			if !resilient && failed <= gets*5/100 {
				t.Errorf("plain: %d of %d GETs failed with one replica dead, want more than 5%%", failed, gets)
			}
		})
	}
}

// TestPausedReplicaBehindTheResilientGateway: a replica that hangs costs
// a try, not the request; it is ejected and its health check fails.
func TestPausedReplicaBehindTheResilientGateway(t *testing.T) {
	t.Parallel()
	s := startShop(t, Options{Seed: 4, Resilient: true, CatalogReplicas: 3})
	gw := startGateway(t, s)
	s.Catalog(0).Pause()
	const gets = 50
	if failed := failedGets(t, gw, gets); failed > 1 {
		t.Errorf("%d of %d GETs failed with one replica paused", failed, gets)
	}
}

// TestGatewayFallsBackWhenRecommendationsAreDown: the fallback is the
// gateway's answer once no recommendations replica may be tried (their
// breakers open), not its answer to one failure.
func TestGatewayFallsBackWhenRecommendationsAreDown(t *testing.T) {
	t.Parallel()
	s := startShop(t, Options{Seed: 5, Resilient: true, Replicas: map[string]int{ServiceRecommendations: 2}})
	gw := startGateway(t, s)
	c := testClient(t)
	if a := mustCall(t, c, "GET", gw+"/api/recommendations/3", ""); a.status != 200 || a.header.Get("X-Relia-Fallback") != "" {
		t.Fatalf("recommendations up: %d, fallback %q", a.status, a.header.Get("X-Relia-Fallback"))
	}
	for _, r := range s.Replicas(ServiceRecommendations) {
		r.Kill()
	}
	var fallbacks, failures int
	const n = 20
	for i := range n {
		a := mustCall(t, c, "GET", gw+"/api/recommendations/3", "")
		switch {
		case a.status == 200 && a.header.Get("X-Relia-Fallback") == RouteRecommendations &&
			a.header.Get("X-Shop-Fallback") == "popular" && a.body == string(s.Popular()):
			fallbacks++
		case a.status >= 500:
			failures++
			if fallbacks > 0 {
				t.Errorf("request %d failed (%d %s) after the fallback took over", i, a.status, a.body)
			}
		default:
			t.Errorf("request %d: %d %s", i, a.status, a.body)
		}
	}
	// Each request tries both replicas; three failures in a row open a
	// replica's breaker.
	if failures == 0 || failures > 3 || fallbacks != n-failures {
		t.Errorf("%d failures then %d fallbacks of %d, want the breakers to open within three requests", failures, fallbacks, n)
	}
}

func TestThroughResilientGateway(t *testing.T) {
	t.Parallel()
	s := startShop(t, Options{Seed: 8, Resilient: true, NoProcessorErrors: true})
	gw := startGateway(t, s)
	c := testClient(t)
	token := login(t, c, s, 12)

	get := func(path string) answer { return mustCall(t, c, "GET", gw+path, "") }
	if a := get("/api/products?page=2"); a.status != 200 || !strings.Contains(a.body, `"page":2`) {
		t.Errorf("products page: %d %s", a.status, a.body)
	}
	if a := get("/api/products/9"); a.status != 200 || !strings.Contains(a.body, `"id":9,`) {
		t.Errorf("product: %d %s", a.status, a.body)
	}
	if a := mustCall(t, c, "GET", gw+"/api/users/12", "", "Authorization", "Bearer "+token); a.status != 200 {
		t.Errorf("user: %d %s", a.status, a.body)
	}
	if a := mustCall(t, c, "POST", gw+"/api/login", `{"userId": 12, "password": "demo"}`); a.status != 200 || !strings.Contains(a.body, token) {
		t.Errorf("login: %d %s", a.status, a.body)
	}
	if a := get("/api/popular"); a.body != string(s.Popular()) {
		t.Errorf("popular: %d %s", a.status, a.body)
	}

	// A killed replica costs no request: connect failures and resets are
	// retried on another target.
	s.Catalog(0).Kill()
	for i := range 12 {
		if a := get("/api/products/1"); a.status != 200 || a.header.Get("X-Shop-Replica") == "0" {
			t.Fatalf("request %d with replica 0 down: %d from replica %q", i, a.status, a.header.Get("X-Shop-Replica"))
		}
	}

	// A third of the charges fail; the gateway retries the payments (they
	// carry an Idempotency-Key), so nearly all succeed.
	if err := s.Processor().SetFaults(ProcessorFaults{ErrorRate: 0.3}); err != nil {
		t.Fatal(err)
	}
	good := 0
	const payments = 30
	for i := range payments {
		a := mustCall(t, c, "POST", gw+"/api/payments", `{"amountCents": 1500, "currency": "EUR"}`,
			"Authorization", "Bearer "+token, "Idempotency-Key", "gw-"+strconv.Itoa(i))
		if a.status == 201 || a.status == 402 {
			good++
		}
	}
	if good < payments*9/10 {
		t.Errorf("%d of %d payments went through with retries, want most", good, payments)
	}

	// With the whole catalog down, recommendations still answer: the
	// service falls back to the popular items.
	for i := range s.CatalogReplicas() {
		s.Catalog(i).Kill()
	}
	if a := get("/api/recommendations/3"); a.status != 200 || a.header.Get("X-Shop-Fallback") != "popular" {
		t.Errorf("recommendations without a catalog: %d %s", a.status, a.body)
	}
}

func TestThroughPlainGateway(t *testing.T) {
	t.Parallel()
	s := startShop(t, Options{CatalogReplicas: 2, NoProcessorErrors: true})
	gw := startGateway(t, s)
	c := testClient(t)
	s.Catalog(0).Kill()
	statuses := map[int]int{}
	for range 10 {
		a := mustCall(t, c, "GET", gw+"/api/products/1", "")
		statuses[a.status]++
	}
	// Round robin over two targets, no retry: about half fail.
	if statuses[200] == 10 || statuses[200] == 0 {
		t.Errorf("plain gateway with a replica down: %v, want some failures and some successes", statuses)
	}
}

// TestScenarioRunsAgainstTheShop reads the scenario with the load
// generator, builds it, and runs a second of it through the gateway:
// every journey succeeds, so every login's cookie, every cart cookie and
// every checkout's redirect to its receipt worked.
func TestScenarioRunsAgainstTheShop(t *testing.T) {
	t.Parallel()
	s := startShop(t, Options{Seed: 2, Resilient: true, NoProcessorErrors: true})
	gw := startGateway(t, s)

	scs, err := load.ParseScenarios("shop-scenario.yaml", s.Scenario(gw))
	if err != nil {
		t.Fatalf("the shop's scenario: %v\n%s", err, s.Scenario(gw))
	}
	sc := scs[0]
	weights := map[string]float64{}
	for _, j := range sc.Spec.Journeys {
		weights[j.Name] = *j.Weight
	}
	if weights["browse"] != 60 || weights["cart"] != 25 || weights["checkout"] != 15 {
		t.Errorf("weights %v, want browse 60, cart 25, checkout 15", weights)
	}
	if _, err := sc.Build(); err != nil {
		t.Fatalf("building the scenario as written: %v", err)
	}

	rate := 40.0
	sc.Spec.Load.Rate, sc.Spec.Load.Duration = &rate, time.Second
	test, err := sc.Build()
	if err != nil {
		t.Fatal(err)
	}
	res, err := test.Run(context.Background(), load.RunOptions{})
	if err != nil {
		t.Fatal(err)
	}
	all := res.Requests.Total()
	if all.Total < 80 || all.ByClass[outcome.ClassOK] != all.Total {
		t.Errorf("%d requests, %v by class, want all of them ok", all.Total, all.ByClass)
	}
	journeys := res.Journeys.All.Total()
	if journeys.Total != 40 || journeys.ByClass[outcome.ClassOK] != 40 {
		t.Errorf("journeys %d, by class %v: want 40, all ok", journeys.Total, journeys.ByClass)
	}
	for _, name := range []string{"browse", "cart", "checkout"} {
		if res.Journeys.ByJourney[name].Total().Total == 0 {
			t.Errorf("no %s journey in 40 users", name)
		}
	}
	// Every checkout was charged or declined: a charge is a 303 followed to
	// its receipt (200), so the receipts and redirects add up.
	codes := res.ByName["checkout"].StatusCodes()
	if codes[303] == 0 || codes[303] != codes[200] || codes[303]+codes[402] != res.Journeys.ByJourney["checkout"].Total().Total {
		t.Errorf("checkout statuses %v for %d checkouts", codes, res.Journeys.ByJourney["checkout"].Total().Total)
	}
	checks := res.Checks.Total()
	if checks.Total == 0 || checks.ByClass[outcome.ClassOK] != checks.Total {
		t.Errorf("checks %v of %d passed", checks.ByClass, checks.Total)
	}
	for _, tr := range res.Evaluate() {
		if !tr.Passed {
			t.Errorf("threshold %s: %s", tr, tr.ValueText())
		}
	}
}

func TestScenarioWithoutBaseURL(t *testing.T) {
	t.Parallel()
	s := startShop(t, Options{})
	if strings.Contains(string(s.Scenario("")), "baseURL") {
		t.Error("baseURL written without one")
	}
	scs, err := load.ParseScenarios("s.yaml", s.Scenario(""))
	if err != nil {
		t.Fatal(err)
	}
	scs[0].Spec.BaseURL = "http://127.0.0.1:1"
	if _, err := scs[0].Build(); err != nil {
		t.Errorf("with the base URL set by the caller: %v", err)
	}
}
