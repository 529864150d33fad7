package ai

import (
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/relia-dev/relia/ai/mock"
	"github.com/relia-dev/relia/clock"
	"github.com/relia-dev/relia/internal/redistest"
)

// quotaConfig gives tenant acme a tokens-per-minute and a cost-per-day
// quota on a model priced high enough that a day's budget is a few
// hundred calls.
const quotaConfig = `
kind: Models
version: relia/v1
metadata: {name: priced}
spec:
  models:
    - {name: pricey, price: {input: 100, output: 1000}}
---
kind: AIGateway
version: relia/v1
metadata: {name: quota}
spec:
  providers:
    - {name: a, type: openai, url: "%s/v1", keys: [{value: k}]}
  routes:
    - {model: gpt-4o-mini, targets: [{provider: a}]}
    - {model: pricey, targets: [{provider: a}]}
  tenants:
    - name: acme
      keys: [{value: sk-acme}]
      quotas:
        - {model: gpt-4o-mini, tokensPerMinute: 5000}
        - {model: pricey, costPerDay: 5}
    - name: other
      keys: [{value: sk-other}]
%s`

// hammer sends calls from workers, spread over the gateways, until every
// worker has been refused once; it returns the tokens and cost of the
// calls that were served, and the last refusal's body.
func hammer(t *testing.T, urls []string, key, model string, workers int) (tokens int, cost float64, refusal map[string]any) {
	t.Helper()
	var mu sync.Mutex
	var wg sync.WaitGroup
	body := `{"model":"` + model + `","messages":[{"role":"user","content":"hello"}]}`
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			url := urls[w%len(urls)]
			for range 5000 {
				resp := postJSON(t, url+"/v1/chat/completions", body, "Authorization", "Bearer "+key)
				var m map[string]any
				json.NewDecoder(resp.Body).Decode(&m)
				resp.Body.Close()
				mu.Lock()
				if resp.StatusCode != 200 {
					refusal = m
					refusal["status"] = float64(resp.StatusCode)
					refusal["retry_after"] = resp.Header.Get("Retry-After")
					mu.Unlock()
					return
				}
				u := m["usage"].(map[string]any)
				in, out := int(u["prompt_tokens"].(float64)), int(u["completion_tokens"].(float64))
				tokens += in + out
				cost += (float64(in)*100 + float64(out)*1000) / 1e6
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return tokens, cost, refusal
}

func within(t *testing.T, what string, got, limit float64) {
	t.Helper()
	if math.Abs(got-limit)/limit > 0.02 {
		t.Errorf("%s: %.4g used of a limit of %.4g, more than 2%% off", what, got, limit)
	} else {
		t.Logf("%s: %.4g used of %.4g (%.2f%%)", what, got, limit, 100*(got-limit)/limit)
	}
}

func checkRefusal(t *testing.T, refusal map[string]any, quota string, reset time.Time) {
	t.Helper()
	if refusal == nil {
		t.Fatal("never refused")
	}
	e, _ := refusal["error"].(map[string]any)
	if refusal["status"] != 429.0 || e["code"] != "quota_exceeded" || e["quota"] != quota || e["resets_at"] != reset.UTC().Format(time.RFC3339) || refusal["retry_after"] == "" {
		t.Errorf("refusal %v, want 429 naming %s resetting at %s", refusal, quota, reset)
	}
}

func runQuotaWindows(t *testing.T, urls []string, fc *clock.Fake) {
	start := fc.Now()
	for minute := range 3 {
		tokens, _, refusal := hammer(t, urls, "sk-acme", "gpt-4o-mini", 4)
		within(t, fmt.Sprintf("minute %d tokens", minute), float64(tokens), 5000)
		checkRefusal(t, refusal, QuotaTokensPerMinute, start.Add(time.Duration(minute+1)*time.Minute))
		fc.Advance(time.Minute)
	}
	// Another tenant is not limited by acme's quota.
	if code, _ := chatAs(t, urls[0], "sk-other", "gpt-4o-mini"); code != 200 {
		t.Errorf("tenant other refused: %d", code)
	}
	_, cost, refusal := hammer(t, urls, "sk-acme", "pricey", 4)
	within(t, "day cost", cost, 5)
	checkRefusal(t, refusal, QuotaCostPerDay, time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC))
}

func chatAs(t *testing.T, url, key, model string) (int, string) {
	t.Helper()
	resp := postJSON(t, url+"/v1/chat/completions", `{"model":"`+model+`","messages":[{"role":"user","content":"hi"}]}`, "Authorization", "Bearer "+key)
	var b strings.Builder
	json.NewEncoder(&b).Encode(resp.Header)
	return resp.StatusCode, b.String()
}

// TestQuotasLocal: a tenant's tokens per minute and cost per day are
// held within 2% over a run, by one gateway.
func TestQuotasLocal(t *testing.T) {
	t.Parallel()
	fc := clock.NewFake(time.Time{})
	_, a := startMock(t, mock.Options{Clock: fc, OutputTokens: 20})
	g := startService(t, quotaConfig, fc, Options{}, a, "")
	runQuotaWindows(t, []string{g.url}, fc)
	usage, err := g.svc.Usage(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var sawCost bool
	for _, u := range usage {
		if u.Quota == QuotaCostPerDay && !sawCost {
			sawCost = u.Model == "pricey" && u.Used > 4.9 && u.Limit == 5
		}
	}
	if !sawCost {
		t.Errorf("usage %+v", usage)
	}
}

// TestQuotasSharedThroughRedis: two gateways sharing one Redis hold the
// same limits together.
func TestQuotasSharedThroughRedis(t *testing.T) {
	t.Parallel()
	r := redistest.Start(t)
	fc := clock.NewFake(time.Time{})
	_, a := startMock(t, mock.Options{Clock: fc, OutputTokens: 20})
	// The default timeout of 50ms is for production Redis; a machine
	// busy with the race detector and other tests can take longer, which
	// would read as Redis unreachable (this test is about counting).
	store := fmt.Sprintf("  quotaStore:\n    redis: {address: %q, onUnreachable: closed, timeout: 5s}\n", r.Addr())
	g1 := startService(t, quotaConfig, fc, Options{}, a, store)
	g2 := startService(t, quotaConfig, fc, Options{}, a, store)
	runQuotaWindows(t, []string{g1.url, g2.url}, fc)

	r.Stop()
	if code, _ := chatAs(t, g1.url, "sk-acme", "gpt-4o-mini"); code != 503 {
		t.Errorf("quotas failing closed without Redis: %d, want 503", code)
	}
	// A tenant without quotas does not need Redis.
	if code, _ := chatAs(t, g1.url, "sk-other", "gpt-4o-mini"); code != 200 {
		t.Errorf("a tenant without quotas: %d", code)
	}
}

func TestQuotasFailOpen(t *testing.T) {
	t.Parallel()
	r := redistest.Start(t)
	_, a := startMock(t, mock.Options{})
	store := fmt.Sprintf("  quotaStore:\n    redis: {address: %q, onUnreachable: open}\n", r.Addr())
	g := startService(t, quotaConfig, nil, Options{}, a, store)
	r.Stop()
	if code, _ := chatAs(t, g.url, "sk-acme", "gpt-4o-mini"); code != 200 {
		t.Errorf("quotas failing open without Redis: %d, want 200", code)
	}
}
