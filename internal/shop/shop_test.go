package shop

import (
	"context"
	"strconv"
	"strings"
	"testing"

	"github.com/relia-dev/relia/outcome"
)

func TestEndpoints(t *testing.T) {
	t.Parallel()
	s := startShop(t, Options{Seed: 7, NoProcessorErrors: true})
	c := testClient(t)
	ep := s.Endpoints()
	token := login(t, c, s, 42)
	auth := "Bearer " + token
	cases := []struct {
		name, service, method, path, body string
		headers                           []string
		status                            int
		contains                          string
	}{
		{"page 1", ServiceCatalog, "GET", "/products", "", nil, 200, `"page":1,"pageSize":20,"total":500`},
		{"page 3", ServiceCatalog, "GET", "/products?page=3", "", nil, 200, `"id":41,`},
		{"past the last page", ServiceCatalog, "GET", "/products?page=99", "", nil, 200, `"products":[]`},
		{"bad page", ServiceCatalog, "GET", "/products?page=x", "", nil, 400, `"bad_page"`},
		{"zero page", ServiceCatalog, "GET", "/products?page=0", "", nil, 400, `"bad_page"`},
		{"product", ServiceCatalog, "GET", "/products/17", "", nil, 200, `"id":17,`},
		{"no product", ServiceCatalog, "GET", "/products/501", "", nil, 404, `"no_such_product"`},
		{"not a product", ServiceCatalog, "GET", "/products/abc", "", nil, 404, `"no_such_product"`},
		{"wrong method", ServiceCatalog, "POST", "/products/1", "", nil, 405, ""},
		{"catalog health", ServiceCatalog, "GET", "/healthz", "", nil, 200, `"service":"catalog"`},
		{"login", ServiceUsers, "POST", "/login", `{"userId": 3, "password": "demo"}`, nil, 200, `"token":"u3.`},
		{"bad password", ServiceUsers, "POST", "/login", `{"userId": 3, "password": "guess"}`, nil, 401, `"bad_credentials"`},
		{"unknown user login", ServiceUsers, "POST", "/login", `{"userId": 1001, "password": "demo"}`, nil, 401, `"bad_credentials"`},
		{"bad login body", ServiceUsers, "POST", "/login", `{"user": 3}`, nil, 400, `"bad_body"`},
		{"user", ServiceUsers, "GET", "/users/42", "", []string{"Authorization", auth}, 200, `"email":`},
		{"user without token", ServiceUsers, "GET", "/users/42", "", nil, 401, `"bad_token"`},
		{"user with forged token", ServiceUsers, "GET", "/users/42", "", []string{"Authorization", "Bearer u42.00000000000000000000000000000000"}, 401, `"bad_token"`},
		{"no user", ServiceUsers, "GET", "/users/0", "", []string{"Authorization", auth}, 404, `"no_such_user"`},
		{"payment", ServicePayments, "POST", "/payments", `{"amountCents": 1999, "currency": "EUR"}`, []string{"Authorization", auth, "Idempotency-Key", "k1"}, 201, `"status":"succeeded"`},
		{"payment without key", ServicePayments, "POST", "/payments", `{"amountCents": 1999, "currency": "EUR"}`, []string{"Authorization", auth}, 400, `"idempotency_key_required"`},
		{"payment without token", ServicePayments, "POST", "/payments", `{"amountCents": 1999, "currency": "EUR"}`, []string{"Idempotency-Key", "k2"}, 401, `"bad_token"`},
		{"payment of nothing", ServicePayments, "POST", "/payments", `{"amountCents": 0, "currency": "EUR"}`, []string{"Authorization", auth, "Idempotency-Key", "k3"}, 400, `"bad_payment"`},
		{"charge without key", ServiceProcessor, "POST", "/charges", `{"amountCents": 5, "currency": "EUR", "userId": 1}`, nil, 400, `"bad_charge"`},
		{"charge", ServiceProcessor, "POST", "/charges", `{"amountCents": 5, "currency": "EUR", "userId": 1}`, []string{"Idempotency-Key", "c1"}, 201, `"id":"ch_`},
		{"recommendations", ServiceRecommendations, "GET", "/recommendations/42", "", nil, 200, `"source":"personalised"`},
		{"recommendations for nobody", ServiceRecommendations, "GET", "/recommendations/0", "", nil, 404, `"no_such_user"`},
		{"popular", ServiceRecommendations, "GET", "/popular", "", nil, 200, `"source":"popular"`},
		{"metrics", ServiceUsers, "GET", "/metrics", "", nil, 200, "http_server_request_duration_seconds"},
		{"no route", ServicePayments, "GET", "/nothing", "", nil, 404, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			a := mustCall(t, c, tc.method, ep[tc.service][0]+tc.path, tc.body, tc.headers...)
			if a.status != tc.status || !strings.Contains(a.body, tc.contains) {
				t.Errorf("%s %s: %d %s, want %d with %q", tc.method, tc.path, a.status, a.body, tc.status, tc.contains)
			}
		})
	}
}

func TestEveryCatalogReplicaServes(t *testing.T) {
	t.Parallel()
	s := startShop(t, Options{CatalogReplicas: 4})
	c := testClient(t)
	seen := map[string]bool{}
	for i := range s.CatalogReplicas() {
		r := s.Catalog(i)
		if r.Index() != i || !r.Alive() {
			t.Fatalf("replica %d: index %d, alive %v", i, r.Index(), r.Alive())
		}
		a := mustCall(t, c, "GET", r.URL()+"/products/1", "")
		if got := a.header.Get("X-Shop-Replica"); got != strconv.Itoa(i) || a.status != 200 {
			t.Errorf("replica %d answered %d from replica %q", i, a.status, got)
		}
		seen[r.URL()] = true
	}
	if len(seen) != 4 || len(s.Endpoints()[ServiceCatalog]) != 4 {
		t.Errorf("replicas share ports: %v", s.Endpoints()[ServiceCatalog])
	}
}

func TestSameSeedSameShop(t *testing.T) {
	t.Parallel()
	a, b, other := startShop(t, Options{Seed: 99}), startShop(t, Options{Seed: 99}), startShop(t, Options{Seed: 100})
	c := testClient(t)
	get := func(s *Shop, path string) string {
		return mustCall(t, c, "GET", s.Endpoints()[ServiceCatalog][0]+path, "").body
	}
	for _, p := range []string{"/products?page=2", "/products/123"} {
		if get(a, p) != get(b, p) {
			t.Errorf("%s differs between two shops seeded alike", p)
		}
		if get(a, p) == get(other, p) {
			t.Errorf("%s is the same for seeds 99 and 100", p)
		}
	}
	if string(a.Popular()) != string(b.Popular()) || !strings.Contains(string(a.Popular()), `"source":"popular"`) {
		t.Errorf("popular: %s", a.Popular())
	}
}

func TestOptionsInvalid(t *testing.T) {
	t.Parallel()
	rec, err := outcome.NewRecorder(outcome.Options{})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		o    Options
		want string
	}{
		{"negative replicas", Options{CatalogReplicas: -1}, "catalog replicas -1"},
		{"too many replicas", Options{CatalogReplicas: 65}, "catalog replicas 65"},
		{"negative service replicas", Options{Replicas: map[string]int{ServiceUsers: -2}}, "users replicas -2"},
		{"too many service replicas", Options{Replicas: map[string]int{ServicePayments: 65}}, "payments replicas 65"},
		{"replicas of an unknown service", Options{Replicas: map[string]int{"inventory": 2}}, `replicas of unknown service "inventory"`},
		{"two processors", Options{Replicas: map[string]int{ServiceProcessor: 2}}, "processor replicas 2"},
		{"contradicting catalog counts", Options{CatalogReplicas: 2, Replicas: map[string]int{ServiceCatalog: 4}}, "catalog replicas 4 contradict CatalogReplicas 2"},
		{"error rate above 1", Options{ProcessorErrorRate: 1.5}, "processor error rate 1.5"},
		{"negative error rate", Options{ProcessorErrorRate: -0.1}, "processor error rate -0.1"},
		{"unknown recorder", Options{Recorders: map[string]*outcome.Recorder{"inventory": rec}}, `unknown service "inventory"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s, err := Start(context.Background(), tc.o)
			if err == nil {
				s.Close()
				t.Fatal("no error")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not say %q", err, tc.want)
			}
		})
	}
}

func TestContextEndClosesShop(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	s, err := Start(ctx, Options{})
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	// Close waits for the close the context started.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if s.Catalog(0).Alive() {
		t.Error("replica alive after the context ended")
	}
	if err := s.Catalog(0).Restart(); err == nil {
		t.Error("a closed shop's replica restarted")
	}
	_, err = call(context.Background(), testClient(t), "GET", s.Endpoints()[ServiceUsers][0]+"/healthz", "")
	if outcome.Classify(err) != outcome.ClassRefused {
		t.Errorf("users after close: %v, want refused", err)
	}
}
