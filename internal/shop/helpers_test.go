package shop

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
)

// startShop starts a shop for one test and closes it at the end.
func startShop(t testing.TB, o Options) *Shop {
	t.Helper()
	s, err := Start(context.Background(), o)
	if err != nil {
		t.Fatalf("starting the shop: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("closing the shop: %v", err)
		}
	})
	return s
}

// testClient is a client of the test's own, so that its idle connections
// do not outlive the test.
func testClient(t testing.TB) *http.Client {
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}
}

// answer is one response, read in full.
type answer struct {
	status int
	header http.Header
	body   string
}

// json decodes the body into v.
func (a answer) json(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(a.body), v); err != nil {
		t.Fatalf("decoding %q: %v", a.body, err)
	}
}

// call sends one request; headers alternate names and values.
func call(ctx context.Context, c *http.Client, method, url, body string, headers ...string) (answer, error) {
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, r)
	if err != nil {
		return answer{}, err
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		return answer{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return answer{status: resp.StatusCode, header: resp.Header, body: string(b)}, err
}

// mustCall is call that fails the test on a transport error.
func mustCall(t testing.TB, c *http.Client, method, url, body string, headers ...string) answer {
	t.Helper()
	a, err := call(context.Background(), c, method, url, body, headers...)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	return a
}

// login returns a token for user id.
func login(t testing.TB, c *http.Client, s *Shop, id int) string {
	t.Helper()
	a := mustCall(t, c, "POST", s.Endpoints()[ServiceUsers][0]+"/login", `{"userId": `+strconv.Itoa(id)+`, "password": "demo"}`)
	if a.status != 200 {
		t.Fatalf("login: %d %s", a.status, a.body)
	}
	var lr loginResponse
	a.json(t, &lr)
	return lr.Token
}

// payer returns a function that pays amount as user id with an
// Idempotency-Key, straight to the payments service.
func payer(t testing.TB, c *http.Client, s *Shop, id int) func(key string, amount int) answer {
	t.Helper()
	url := s.Endpoints()[ServicePayments][0] + "/payments"
	auth := "Bearer " + login(t, c, s, id)
	return func(key string, amount int) answer {
		return mustCall(t, c, "POST", url, fmt.Sprintf(`{"amountCents": %d, "currency": "EUR"}`, amount),
			"Authorization", auth, "Idempotency-Key", key)
	}
}

// result is an answer or the transport error.
type result struct {
	a   answer
	err error
}

// callAsync sends a request in a goroutine of its own; the result comes
// on the channel.
func callAsync(ctx context.Context, c *http.Client, method, url, body string, headers ...string) <-chan result {
	done := make(chan result, 1)
	go func() {
		a, err := call(ctx, c, method, url, body, headers...)
		done <- result{a, err}
	}()
	return done
}
