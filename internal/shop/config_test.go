package shop

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/relia-dev/relia/gateway"
	"github.com/relia-dev/relia/load"
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
	for _, resilient := range []bool{false, true} {
		s := startShop(t, Options{Resilient: resilient, CatalogReplicas: 2})
		cfg, err := gateway.Parse("shop.yaml", s.GatewayConfig())
		if err != nil {
			t.Fatalf("resilient %v: %v\n%s", resilient, err, s.GatewayConfig())
		}
		var names []string
		for _, r := range cfg.Spec.Routes {
			names = append(names, r.Name)
			if (r.Retry != nil) != resilient && r.Name != RoutePopular {
				t.Errorf("resilient %v: route %s has retry %v", resilient, r.Name, r.Retry)
			}
		}
		want := []string{RouteProducts, RouteLogin, RouteUsers, RoutePayments, RouteRecommendations, RoutePopular}
		if !slices.Equal(names, want) {
			t.Errorf("routes %v, want %v", names, want)
		}
		var catalog []string
		for _, u := range cfg.Spec.Upstreams {
			if u.Name == ServiceCatalog {
				for _, tg := range u.Targets {
					catalog = append(catalog, "http://"+tg.Address)
				}
			}
			if disabled := u.Breaker != nil && u.Breaker.Disabled; disabled == resilient {
				t.Errorf("resilient %v: upstream %s breaker %+v", resilient, u.Name, u.Breaker)
			}
		}
		if !slices.Equal(catalog, s.Endpoints()[ServiceCatalog]) {
			t.Errorf("catalog targets %v, want %v", catalog, s.Endpoints()[ServiceCatalog])
		}
		rec := cfg.Spec.Routes[4]
		if resilient && (rec.Fallback == nil || rec.Fallback.Body != string(s.Popular())) {
			t.Errorf("recommendations fallback %+v, want the popular items", rec.Fallback)
		}
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

// scenarioDoc mirrors the Scenario document the shop writes; decoding it
// with known fields only keeps the two in step.
type scenarioDoc struct {
	Kind     string `yaml:"kind"`
	Version  string `yaml:"version"`
	Metadata struct {
		Name string `yaml:"name"`
	} `yaml:"metadata"`
	Spec struct {
		Setup    []scenarioRequest `yaml:"setup"`
		Requests []scenarioRequest `yaml:"requests"`
	} `yaml:"spec"`
}

type scenarioRequest struct {
	Name    string            `yaml:"name"`
	Weight  float64           `yaml:"weight"`
	Method  string            `yaml:"method"`
	URL     string            `yaml:"url"`
	Headers map[string]string `yaml:"headers"`
	Body    string            `yaml:"body"`
	Checks  []struct {
		Status []int `yaml:"status"`
	} `yaml:"checks"`
	Extract map[string]string `yaml:"extract"`
}

// TestScenarioRunsAgainstTheShop compiles the scenario with the load
// generator's templates and JSON paths and sends every request of it
// through the gateway, checking its checks.
func TestScenarioRunsAgainstTheShop(t *testing.T) {
	t.Parallel()
	s := startShop(t, Options{Seed: 2, Resilient: true, NoProcessorErrors: true})
	gw := startGateway(t, s)
	c := testClient(t)

	var doc scenarioDoc
	dec := yaml.NewDecoder(bytes.NewReader(s.Scenario()))
	dec.KnownFields(true)
	if err := dec.Decode(&doc); err != nil {
		t.Fatalf("decoding the scenario: %v\n%s", err, s.Scenario())
	}
	if doc.Kind != "Scenario" || doc.Version != "relia/v1" || len(doc.Spec.Setup) != 1 {
		t.Fatalf("scenario envelope: %+v", doc)
	}
	weights := map[string]float64{}
	for _, r := range doc.Spec.Requests {
		weights[r.Name] = r.Weight
	}
	if browse := weights["browse-page"] + weights["browse-product"]; browse != 60 || weights["recommendations"] != 25 || weights["pay"] != 15 {
		t.Errorf("weights %v, want browse 60, recommendations 25, pay 15", weights)
	}

	scope, err := load.NewScope([]string{"token", "userId"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	env := &load.Env{Vars: make([]string, scope.Len()), Rand: rand.New(rand.NewPCG(1, 2))}
	send := func(r scenarioRequest) answer {
		t.Helper()
		render := func(src string) string {
			tpl, err := load.ParseTemplate(src, scope)
			if err != nil {
				t.Fatalf("request %s: %v", r.Name, err)
			}
			return tpl.Render(env)
		}
		var headers []string
		for k, v := range r.Headers {
			headers = append(headers, k, render(v))
		}
		a := mustCall(t, c, r.Method, gw+render(r.URL), render(r.Body), headers...)
		for _, ch := range r.Checks {
			if !slices.Contains(ch.Status, a.status) {
				t.Errorf("request %s: status %d, checks want %v (%s)", r.Name, a.status, ch.Status, a.body)
			}
		}
		return a
	}

	setup := doc.Spec.Setup[0]
	a := send(setup)
	body, err := load.DecodeJSON([]byte(a.body))
	if err != nil {
		t.Fatal(err)
	}
	for v, path := range setup.Extract {
		p, err := load.ParseJSONPath(path)
		if err != nil {
			t.Fatal(err)
		}
		got, ok := p.Lookup(body)
		slot, _ := scope.Slot(v)
		if !ok {
			t.Fatalf("setup extracts %s from %s: not in %s", v, path, a.body)
		}
		env.Vars[slot] = load.JSONText(got)
	}
	for _, r := range doc.Spec.Requests {
		for range 3 {
			a := send(r)
			// Every payment has a key of its own: none is a replay.
			if r.Name == "pay" && a.header.Get("Idempotent-Replayed") != "" {
				t.Errorf("payment replayed: %s", a.body)
			}
		}
	}
}
