package shop

import (
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/relia-dev/relia/clock"
	"github.com/relia-dev/relia/fault"
)

// FuzzRequests feeds arbitrary paths, bodies and headers to the services'
// handlers (in process, no sockets): whatever arrives, a service answers
// with one of its statuses (or the mux's redirect of an unclean path)
// and never panics.
func FuzzRequests(f *testing.F) {
	f.Add("POST", "/login", `{"userId": 3, "password": "demo"}`, "", "")
	f.Add("POST", "/payments", `{"amountCents": 100, "currency": "EUR"}`, "u3.00", "k")
	f.Add("POST", "/payments", `{"amountCents": -1, "currency": "EURO"}{}`, "", "k")
	f.Add("GET", "/products?page=-3", "", "", "")
	f.Add("GET", "/products/%00", "", "", "")
	f.Add("POST", "/charges", `{"amountCents": 9, "currency": "EUR", "userId": 1}`, "", "x")
	f.Add("GET", "/users/1", "", "u1.zz", "")
	f.Add("GET", "/recommendations/9999999999999999999", "", "", "")

	tok := newTokens(1)
	pace := pacer{clock: clock.Real()}
	data, err := newCatalogData(1)
	if err != nil {
		f.Fatal(err)
	}
	filter, err := fault.NewHTTPFilter(nil, fault.HTTPFilterOptions{})
	if err != nil {
		f.Fatal(err)
	}
	// The processor and the catalog are real servers: payments and
	// recommendations call them.
	proc := httptest.NewServer(processorHandler(1, pace, 0, filter))
	f.Cleanup(proc.Close)
	cat := httptest.NewServer(catalogHandler(data, pace, 1, 0))
	f.Cleanup(cat.Close)
	pay, err := newPayments(1, tok, pace, proc.Client(), func() string { return proc.URL })
	if err != nil {
		f.Fatal(err)
	}
	rc, err := newRecommender(1, data, pace, cat.Client(), []string{cat.URL}, true)
	if err != nil {
		f.Fatal(err)
	}
	handlers := map[string]http.Handler{
		"/login": usersHandler(1, tok, pace), "/users": usersHandler(1, tok, pace),
		"/payments": pay.handler(), "/charges": processorHandler(1, pace, 0, filter),
		"/products": catalogHandler(data, pace, 1, 0), "/recommendations": rc.handler(),
	}
	allowed := []int{200, 201, 301, 307, 400, 401, 402, 404, 405, 422, 502, 504}
	f.Fuzz(func(t *testing.T, method, path, body, token, key string) {
		if method != "GET" && method != "POST" {
			return
		}
		req, err := http.NewRequest(method, "http://shop"+"/x", strings.NewReader(body))
		if err != nil {
			return
		}
		req.URL.Path = path
		// Tokens may hold any byte; a header cannot.
		if strings.ContainsAny(token+key, "\r\n\x00") {
			return
		}
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		if key != "" {
			req.Header.Set("Idempotency-Key", key)
		}
		for prefix, h := range handlers {
			if !strings.HasPrefix(path, prefix) {
				continue
			}
			w := httptest.NewRecorder()
			done := make(chan struct{})
			go func() {
				defer close(done)
				h.ServeHTTP(w, req)
			}()
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				t.Fatalf("%s %s: no answer", method, path)
			}
			if !slices.Contains(allowed, w.Code) {
				t.Errorf("%s %s %q: status %d", method, path, body, w.Code)
			}
		}
	})
}
