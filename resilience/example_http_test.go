package resilience_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"time"

	"github.com/relia-dev/relia/resilience"
)

// A service calls a flaky dependency over HTTP through a Transport: each
// attempt is bounded by a timeout, a breaker watches the dependency, and
// 5xx answers are retried. The dependency fails twice, then answers.
func ExampleTransport() {
	var calls atomic.Int32
	dependency := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) <= 2 {
			http.Error(w, "overloaded", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprint(w, "stock: 7")
	}))
	defer dependency.Close()

	retry, err := resilience.NewRetry(resilience.RetrySettings{MaxAttempts: 4, Base: 10 * time.Millisecond})
	if err != nil {
		panic(err)
	}
	breaker, err := resilience.NewBreaker(resilience.BreakerSettings{Name: "inventory"})
	if err != nil {
		panic(err)
	}
	timeout, err := resilience.NewTimeout(resilience.TimeoutSettings{Timeout: 2 * time.Second})
	if err != nil {
		panic(err)
	}
	transport, err := resilience.NewTransport(nil, resilience.TransportSettings{
		Policies: []resilience.Policy{retry, breaker, timeout},
	})
	if err != nil {
		panic(err)
	}
	client := &http.Client{Transport: transport}

	resp, err := client.Get(dependency.URL + "/stock/42")
	if err != nil {
		fmt.Println("inventory unavailable:", err)
		return
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	fmt.Println(resp.Status, string(body))
	fmt.Println("attempts:", calls.Load())
	// Output:
	// 200 OK stock: 7
	// attempts: 3
}

// A hedged GET: when the first request has not answered within the delay,
// a second is sent and the first answer wins; the slow request is
// cancelled.
func ExampleHedge() {
	var calls atomic.Int32
	search := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) == 1 {
			<-r.Context().Done() // a stuck replica, until the client gives up on it
			return
		}
		fmt.Fprint(w, "3 results")
	}))
	defer search.Close()

	hedge, err := resilience.NewHedge(resilience.HedgeSettings{Name: "search", Delay: 20 * time.Millisecond})
	if err != nil {
		panic(err)
	}
	transport, err := resilience.NewTransport(nil, resilience.TransportSettings{
		Policies: []resilience.Policy{hedge},
	})
	if err != nil {
		panic(err)
	}
	resp, err := (&http.Client{Transport: transport}).Get(search.URL + "/?q=boots")
	if err != nil {
		panic(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	fmt.Println(resp.Status, string(body))
	fmt.Println("requests:", calls.Load())
	// Output:
	// 200 OK 3 results
	// requests: 2
}
