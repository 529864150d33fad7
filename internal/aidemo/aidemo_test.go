package aidemo

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/relia-dev/relia/ai/mock"
)

// ask sends one question as tenant and returns the status, the
// X-Relia-Quota header and the body.
func ask(t *testing.T, s *Stack, tenant string, maxTokens int) (int, string, string) {
	t.Helper()
	body := `{"user": "` + tenant + `", "max_tokens": ` + strings.TrimSpace(strings.Repeat(" ", 0)) + itoa(maxTokens) + `, "messages": [{"role": "user", "content": "How do I keep my SLOs?"}]}`
	resp, err := http.Post(s.URL()+AskPath, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("X-Relia-Quota"), string(b)
}

func itoa(n int) string {
	var b []byte
	for {
		b = append([]byte{byte('0' + n%10)}, b...)
		if n /= 10; n == 0 {
			return string(b)
		}
	}
}

func start(t *testing.T, o Options) *Stack {
	t.Helper()
	s, err := Start(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// TestQuotaRefusesOnlyItsTenant: the tenant with the small quota gets 429
// with the quota named once it has spent it, while the others are
// served.
func TestQuotaRefusesOnlyItsTenant(t *testing.T) {
	t.Parallel()
	s := start(t, Options{Seed: 1, Resilient: true, QuotaTokens: 200})
	var status int
	var quota, body string
	for range 20 {
		if status, quota, body = ask(t, s, QuotaTenant, 24); status != http.StatusOK {
			break
		}
		if !strings.Contains(body, "data: [DONE]") {
			t.Fatalf("answer to %s did not end well:\n%s", QuotaTenant, body)
		}
	}
	if status != http.StatusTooManyRequests || quota == "" || !strings.Contains(body, `"quota"`) {
		t.Fatalf("%s over its quota: got %d, X-Relia-Quota %q, body %s; want 429 naming the quota", QuotaTenant, status, quota, body)
	}
	for _, tenant := range []string{"acme", "globex"} {
		if status, _, body := ask(t, s, tenant, 24); status != http.StatusOK || !strings.Contains(body, "data: [DONE]") {
			t.Fatalf("%s while %s is over its quota: %d %s", tenant, QuotaTenant, status, body)
		}
	}
}

// TestFailover: alpha answering 429 reaches the users only without
// resilience; with it, beta answers.
func TestFailover(t *testing.T) {
	t.Parallel()
	for _, resilient := range []bool{true, false} {
		s := start(t, Options{Seed: 1, Resilient: resilient})
		if err := s.Provider(ProviderA).SetFaults([]mock.Fault{{Kind: mock.FaultStatus, Status: 429, RetryAfter: 2 * time.Second}}); err != nil {
			t.Fatal(err)
		}
		failed := 0
		for range 5 {
			if status, _, _ := ask(t, s, "acme", 8); status != http.StatusOK {
				failed++
			}
		}
		if resilient && failed > 0 || !resilient && failed < 4 {
			t.Errorf("resilient %v: %d of 5 questions failed while alpha answers 429", resilient, failed)
		}
	}
}

// TestStall: alpha's streams stalling after a few tokens end, with
// resilience, in a clean error event within the idle timeout, and the
// breaker sends later calls to beta.
func TestStall(t *testing.T) {
	t.Parallel()
	s := start(t, Options{Seed: 1, Resilient: true})
	if err := s.Provider(ProviderA).SetFaults([]mock.Fault{{Kind: mock.FaultStall, AfterTokens: 2}}); err != nil {
		t.Fatal(err)
	}
	errorEvents, done := 0, 0
	for range 8 {
		status, _, body := ask(t, s, "acme", 8)
		switch {
		case status == http.StatusOK && strings.Contains(body, "data: [DONE]"):
			done++
		case status == http.StatusOK && strings.Contains(body, `"error"`):
			errorEvents++
		default:
			t.Fatalf("stalled stream: %d %s", status, body)
		}
	}
	if errorEvents == 0 || done < 4 {
		t.Errorf("%d error events, %d answers: want clean error events until the breaker trips, then answers", errorEvents, done)
	}
}

// TestSlowFirstTokenIsHedged: with resilience, a call whose first token
// alpha holds back (here for a minute) is answered in full by beta, and
// alpha's stream, the loser, does not break the answer. No time is
// judged, so this does not tell the hedge (after HedgeAfter) from the
// first-token timeout's failover (after 2 s); TestDemoAI does, by the
// TTFT objective of its slow-first-token phase.
func TestSlowFirstTokenIsHedged(t *testing.T) {
	t.Parallel()
	s := start(t, Options{Seed: 1, Resilient: true})
	if err := s.Provider(ProviderA).SetFaults([]mock.Fault{{Kind: mock.FaultSlowFirstToken, Delay: time.Minute, Rate: 1}}); err != nil {
		t.Fatal(err)
	}
	client := &http.Client{Timeout: 20 * time.Second}
	for range 3 {
		body := `{"user": "acme", "max_tokens": 8, "messages": [{"role": "user", "content": "Is alpha slow?"}]}`
		resp, err := client.Post(s.URL()+AskPath, "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatalf("asking while alpha's first token is slow: %v", err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !strings.Contains(string(b), "data: [DONE]") {
			t.Fatalf("answer while alpha's first token is slow: %d %s", resp.StatusCode, b)
		}
	}
	if n := s.Provider(ProviderB).Count(); n < 3 {
		t.Errorf("beta received %d requests, want the 3 hedged calls", n)
	}
}
