package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/relia-dev/relia/clock"
	"github.com/relia-dev/relia/gateway/auth"
	"github.com/relia-dev/relia/internal/redistest"
)

// syncBuffer is an access log the test can read while the gateway writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// writeFile writes data into a file of the test's own and returns its path.
func writeFile(t *testing.T, name, data string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestAuthKeysAndJWTPerRoute(t *testing.T) {
	t.Parallel()
	be := newBackend(t, "svc")
	shopKey, otherKey := auth.NewKey(), auth.NewKey()
	keys := writeFile(t, "keys.yaml", fmt.Sprintf(`kind: APIKeys
version: relia/v1
spec:
  keys:
    - {id: shop-web, tenant: shop, routes: [orders, catalog], sha256: %s}
    - {id: other-web, tenant: other, routes: [catalog], sha256: %s}
`, auth.HashKey(shopKey), auth.HashKey(otherKey)))
	secret, partnerSecret := "0123456789abcdef0123456789abcdef", "partner-partner-partner-partner-"
	secretFile := writeFile(t, "jwt.secret", secret+"\n")
	partnerFile := writeFile(t, "partner.secret", partnerSecret)
	sign := func(iss, key, tenant string, exp time.Time) string {
		s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
			"iss": iss, "tenant": tenant, "exp": exp.Unix(),
		}).SignedString([]byte(key))
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	token := func(tenant string, exp time.Time) string { return sign("https://idp.test", secret, tenant, exp) }
	hour := time.Now().Add(time.Hour)
	var logs syncBuffer
	g, url := startGateway(t, fmt.Sprintf(`  auth:
    keysFile: %s
    jwt:
      - {issuer: "https://idp.test", secretFile: %s, tenantRoutes: {shop: [orders]}}
      - {issuer: "https://partner.test", secretFile: %s, tenantRoutes: {partner: [catalog]}}
  upstreams: [{name: svc, targets: [{address: %q}]}]
  routes:
    - {name: orders, match: {path: {prefix: /orders}}, upstream: svc}
    - {name: catalog, match: {path: {prefix: /catalog}}, upstream: svc, auth: optional}
    - {name: public, match: {path: {prefix: /public}}, upstream: svc, auth: none}
`, keys, secretFile, partnerFile, be.addr()), Options{AccessLog: &logs})

	tests := []struct {
		name, path string
		hdr        map[string]string
		status     int
		reason     string
	}{
		{"no credentials", "/orders/1", nil, 401, auth.ReasonMissing},
		{"unknown key", "/orders/1", map[string]string{"X-API-Key": "relia_nope"}, 401, auth.ReasonInvalid},
		{"key not allowed on route", "/orders/1", map[string]string{"X-API-Key": otherKey}, 403, auth.ReasonForbidden},
		{"key allowed", "/orders/1", map[string]string{"X-API-Key": shopKey}, 200, ""},
		{"key as bearer", "/orders/1", map[string]string{"Authorization": "Bearer " + shopKey}, 200, ""},
		{"jwt allowed", "/orders/1", map[string]string{"Authorization": "Bearer " + token("shop", time.Now().Add(time.Hour))}, 200, ""},
		{"jwt expired", "/orders/1", map[string]string{"Authorization": "Bearer " + token("shop", time.Now().Add(-time.Hour))}, 401, auth.ReasonExpired},
		{"jwt tenant not allowed", "/orders/1", map[string]string{"Authorization": "Bearer " + token("other", time.Now().Add(time.Hour))}, 403, auth.ReasonForbidden},
		{"second issuer's token", "/catalog/1", map[string]string{"Authorization": "Bearer " + sign("https://partner.test", partnerSecret, "partner", hour)}, 200, ""},
		{"second issuer's token off its routes", "/orders/1", map[string]string{"Authorization": "Bearer " + sign("https://partner.test", partnerSecret, "partner", hour)}, 403, auth.ReasonForbidden},
		{"token naming one issuer signed by the other's key", "/catalog/1", map[string]string{"Authorization": "Bearer " + sign("https://partner.test", secret, "partner", hour)}, 401, auth.ReasonInvalid},
		{"token of an issuer not configured", "/orders/1", map[string]string{"Authorization": "Bearer " + sign("https://evil.test", secret, "shop", hour)}, 401, auth.ReasonInvalid},
		{"optional without credentials", "/catalog/1", nil, 200, ""},
		{"optional with a bad key", "/catalog/1", map[string]string{"X-API-Key": "relia_nope"}, 401, auth.ReasonInvalid},
		{"optional with a good key", "/catalog/1", map[string]string{"X-API-Key": otherKey}, 200, ""},
		{"none", "/public/1", map[string]string{"X-API-Key": "relia_nope"}, 200, ""},
	}
	for _, tc := range tests {
		status, body, hdr := get(t, "GET", url+tc.path, tc.hdr)
		if status != tc.status {
			t.Errorf("%s: status %d, want %d (%s)", tc.name, status, tc.status, body)
			continue
		}
		if tc.reason == "" {
			continue
		}
		var rej rejectionBody
		if err := json.Unmarshal([]byte(body), &rej); err != nil || rej.Reason != tc.reason || rej.Policy != "auth" || rej.Message == "" || rej.RequestID == "" {
			t.Errorf("%s: body %q, want reason %s from policy auth with a message and request id", tc.name, body, tc.reason)
		}
		if got := hdr.Get("WWW-Authenticate"); (status == 401) != (got != "") {
			t.Errorf("%s: WWW-Authenticate %q on a %d", tc.name, got, status)
		}
		if strings.Contains(body, shopKey) || strings.Contains(body, otherKey) {
			t.Errorf("%s: the answer quotes a key: %s", tc.name, body)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	g.Shutdown(ctx) // flushes the access log
	var tenants []string
	for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		var e struct {
			Tenant, Route string
			Status        int
		}
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("access log line %q: %v", line, err)
		}
		if e.Route == "orders" && e.Status == 200 {
			tenants = append(tenants, e.Tenant)
		}
	}
	if strings.Join(tenants, ",") != "shop,shop,shop" {
		t.Errorf("tenants of the allowed orders calls in the access log: %q, want shop three times", tenants)
	}
	if strings.Contains(logs.String(), shopKey) {
		t.Error("the access log holds an API key")
	}
}

func TestAuthRefusesRouteWithoutSpecAuth(t *testing.T) {
	t.Parallel()
	_, err := Parse("test.yaml", []byte(validHead+"  routes: [{name: r, upstream: users, auth: required}]\n"))
	if err == nil || !strings.Contains(err.Error(), "spec.routes[0].auth: auth: required needs spec.auth") {
		t.Errorf("got %v", err)
	}
}

func TestCacheFreshStaleIfErrorAndInvalidation(t *testing.T) {
	t.Parallel()
	clk := clock.NewFake(time.Now())
	be := newBackend(t, "svc")
	var mu sync.Mutex
	status, version, cc := 200, "v1", "max-age=60, stale-if-error=600"
	be.handle(func(w http.ResponseWriter, r *http.Request) bool {
		mu.Lock()
		defer mu.Unlock()
		if r.Method != http.MethodGet {
			return false
		}
		w.Header().Set("Cache-Control", cc)
		// The origin's clock is the gateway's, or ages would be off.
		w.Header().Set("Date", clk.Now().UTC().Format(http.TimeFormat))
		w.WriteHeader(status)
		fmt.Fprint(w, version)
		return true
	})
	set := func(s int, v, c string) {
		mu.Lock()
		status, version, cc = s, v, c
		mu.Unlock()
	}
	g, url := startGateway(t, fmt.Sprintf(`  upstreams: [{name: svc, targets: [{address: %q}], breaker: {disabled: true}}]
  routes:
    - {name: items, upstream: svc, cache: {maxSize: 1MiB}}
`, be.addr()), Options{Clock: clk})

	steps := []struct {
		name      string
		do        func()
		method    string
		wantBody  string
		wantCache string
		wantHits  int
	}{
		{"first is a miss", nil, "GET", "v1", "MISS", 1},
		{"second is a hit", nil, "GET", "v1", "HIT", 1},
		{"HEAD is answered from GET", nil, "HEAD", "", "HIT", 1},
		{"expired and failing: stale", func() { clk.Advance(61 * time.Second); set(503, "down", "no-store") }, "GET", "v1", "STALE", 2},
		{"upstream back: refreshed", func() { set(200, "v2", "max-age=60") }, "GET", "v2", "MISS", 3},
		{"refreshed entry is a hit", nil, "GET", "v2", "HIT", 3},
		{"POST goes through", nil, "POST", "svc", "", 4},
		{"POST invalidated it", func() { set(200, "v3", "no-store") }, "GET", "v3", "MISS", 5},
		{"no-store is not kept", nil, "GET", "v3", "MISS", 6},
	}
	for _, st := range steps {
		if st.do != nil {
			st.do()
		}
		code, body, hdr := get(t, st.method, url+"/item", nil)
		if code != 200 || body != st.wantBody || hdr.Get(cacheHeader) != st.wantCache || be.count() != st.wantHits {
			t.Fatalf("%s: %d %q cache %q after %d upstream calls; want 200 %q cache %q after %d",
				st.name, code, body, hdr.Get(cacheHeader), be.count(), st.wantBody, st.wantCache, st.wantHits)
		}
		if st.wantCache == "HIT" && hdr.Get("Age") == "" {
			t.Errorf("%s: a hit without Age", st.name)
		}
	}
	for result, want := range map[string]float64{"hit": 3, "miss": 4, "stale": 1} {
		if got := testutil.ToFloat64(g.metrics.cache.WithLabelValues("items", result)); got != want {
			t.Errorf("relia_gateway_cache_lookups_total{result=%q} = %v, want %v", result, got, want)
		}
	}
}

func TestRedisRateLimitFollowsOnUnreachable(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	be := newBackend(t, "svc")
	g, url := startGateway(t, fmt.Sprintf(`  upstreams: [{name: svc, targets: [{address: %q}]}]
  routes:
    - name: open
      match: {path: {prefix: /open}}
      upstream: svc
      rateLimit: {rate: 1000, burst: 1000, store: redis, redis: {address: %q}, onUnreachable: open}
    - name: closed
      match: {path: {prefix: /closed}}
      upstream: svc
      rateLimit: {rate: 1000, burst: 1000, store: redis, redis: {address: %q}, onUnreachable: closed}
`, be.addr(), srv.Addr(), srv.Addr()), Options{})
	admin := "http://" + g.AdminAddr()
	for _, p := range []string{"/open", "/closed"} {
		if code, body, _ := get(t, "GET", url+p, nil); code != 200 {
			t.Fatalf("%s with Redis up: %d %s", p, code, body)
		}
	}
	if code, body, _ := get(t, "GET", admin+"/readyz", nil); code != 200 || !strings.Contains(body, `"redis:`+srv.Addr()+`": "ok"`) {
		t.Fatalf("readyz with Redis up: %d %s", code, body)
	}

	srv.Stop()
	if code, body, _ := get(t, "GET", url+"/open", nil); code != 200 {
		t.Errorf("fail-open route with Redis down: %d %s", code, body)
	}
	code, body, hdr := get(t, "GET", url+"/closed", nil)
	if code != 503 || !strings.Contains(body, `"reason":"rate_limit_unavailable"`) || hdr.Get("Retry-After") == "" {
		t.Errorf("fail-closed route with Redis down: %d %s, Retry-After %q", code, body, hdr.Get("Retry-After"))
	}
	if code, body, _ := get(t, "GET", admin+"/readyz", nil); code != 503 || !strings.Contains(body, "fails closed") {
		t.Errorf("readyz with Redis down under a fail-closed limit: %d %s", code, body)
	}
	if got := testutil.ToFloat64(g.metrics.rateLimit.WithLabelValues("closed", "unavailable")); got < 1 {
		t.Errorf("unavailable decisions of the closed route: %v", got)
	}
	_, metricsBody, _ := get(t, "GET", admin+"/metrics", nil)
	if !strings.Contains(metricsBody, `relia_gateway_ratelimit_store_degraded{route="closed"} 1`) {
		t.Error("metrics do not show the closed route's store as degraded")
	}

	// Redis returns: shared decisions resume once the limiter rechecks.
	srv.Restart()
	deadline := time.Now().Add(15 * time.Second)
	for {
		code, _, _ := get(t, "GET", url+"/closed", nil)
		if code == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("fail-closed route still %d after Redis came back", code)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestRedisRateLimitIsSharedByTwoGateways(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	be := newBackend(t, "svc")
	// A bucket that refills at one token in 100 s: over the test it holds
	// its burst and nothing more, so the count does not depend on timing.
	const burst = 100
	spec := fmt.Sprintf(`  upstreams: [{name: svc, targets: [{address: %q}]}]
  routes:
    - name: api
      upstream: svc
      rateLimit: {rate: 0.01, burst: %d, store: redis, redis: {address: %q, timeout: 2s}, onUnreachable: closed}
`, be.addr(), burst, srv.Addr())
	_, url1 := startGateway(t, spec, Options{})
	_, url2 := startGateway(t, spec, Options{})
	var mu sync.Mutex
	allowed, limited := 0, 0
	var wg sync.WaitGroup
	for w := 0; w < 6; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			url := url1
			if w%2 == 1 {
				url = url2
			}
			for i := 0; i < 50; i++ {
				code, body, _ := get(t, "GET", url+"/x", nil)
				mu.Lock()
				switch code {
				case 200:
					allowed++
				case 429:
					limited++
				default:
					t.Errorf("status %d: %s", code, body)
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if allowed < burst || float64(allowed) > burst*1.05 || allowed+limited != 300 {
		t.Errorf("two gateways let %d of 300 through (%d limited); one shared limit of %d allows %d-%d",
			allowed, limited, burst, burst, int(burst*1.05))
	}
}
