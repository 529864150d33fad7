package fault_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/relia-dev/relia/fault"
)

func ExampleServer_AddToxic() {
	srv, err := fault.NewServer(fault.Options{Seed: 42})
	if err != nil {
		panic(err)
	}
	defer srv.Close()
	if _, err := srv.CreateProxy(fault.ProxyConfig{Name: "db", Listen: "127.0.0.1:0", Upstream: "127.0.0.1:6379"}); err != nil {
		panic(err)
	}
	t, err := srv.AddToxic("db", strings.NewReader(`{"type":"latency","lease_ttl":"2m","attributes":{"latency":100}}`))
	if err != nil {
		panic(err)
	}
	fmt.Println(t.Name, t.Stream, t.Toxicity, t.Lease.TTL)
	// Output: latency_downstream downstream 1 2m0s
}

func ExampleHTTPFilter() {
	f, err := fault.NewHTTPFilter([]fault.HTTPRule{{
		Name:        "payments-down",
		Probability: 1, // every matching request; 0.0001 is 0.01%
		Fault:       fault.HTTPFault{Methods: []string{"POST"}, Path: "/pay/**", AbortStatus: 503, RetryAfter: 5},
	}}, fault.HTTPFilterOptions{Seed: 1})
	if err != nil {
		panic(err)
	}
	h := f.Wrap(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok") }))
	for _, path := range []string{"/pay/card", "/catalog"} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("POST", path, nil))
		fmt.Println(path, rec.Code, rec.Header().Get("Retry-After"))
	}
	// Output:
	// /pay/card 503 5
	// /catalog 200
}
