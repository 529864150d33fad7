package gateway

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/relia-dev/relia/clock"
)

// identityProvider serves a JWKS at its URL on a loopback port; the test
// swaps the keys it publishes.
type identityProvider struct {
	*httptest.Server
	mu   sync.Mutex
	keys map[string]*rsa.PrivateKey // by kid: what the set publishes
}

func newIdentityProvider(t *testing.T) *identityProvider {
	idp := &identityProvider{keys: map[string]*rsa.PrivateKey{}}
	idp.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		idp.mu.Lock()
		defer idp.mu.Unlock()
		var set struct {
			Keys []map[string]string `json:"keys"`
		}
		for kid, k := range idp.keys {
			set.Keys = append(set.Keys, map[string]string{
				"kty": "RSA", "kid": kid, "alg": "RS256", "use": "sig",
				"n": base64.RawURLEncoding.EncodeToString(k.N.Bytes()),
				"e": base64.RawURLEncoding.EncodeToString(big.NewInt(int64(k.E)).Bytes()),
			})
		}
		json.NewEncoder(w).Encode(set)
	}))
	t.Cleanup(idp.Close)
	return idp
}

// publish replaces the published keys with a new one under kid and
// returns its private half.
func (idp *identityProvider) publish(t *testing.T, kid string) *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	idp.mu.Lock()
	idp.keys = map[string]*rsa.PrivateKey{kid: k}
	idp.mu.Unlock()
	return k
}

func TestAuthJWKSFromURLFollowsKeyRotation(t *testing.T) {
	t.Parallel()
	be := newBackend(t, "svc")
	idp := newIdentityProvider(t)
	k1 := idp.publish(t, "k1")
	clk := clock.NewFake(time.Now())
	g, url := startGateway(t, fmt.Sprintf(`  auth:
    jwt:
      - {issuer: "https://idp.test", jwksURL: %q, jwksRefresh: 1h}
  upstreams: [{name: svc, targets: [{address: %q}]}]
  routes:
    - {name: orders, match: {path: {prefix: /orders}}, upstream: svc}
`, idp.URL, be.addr()), Options{Clock: clk})
	admin := "http://" + g.AdminAddr()
	bearer := func(kid string, k *rsa.PrivateKey) map[string]string {
		tok := jwt.NewWithClaims(jwt.SigningMethodRS256, jwt.MapClaims{"iss": "https://idp.test", "tenant": "shop", "exp": clk.Now().Add(time.Hour).Unix()})
		tok.Header["kid"] = kid
		s, err := tok.SignedString(k)
		if err != nil {
			t.Fatal(err)
		}
		return map[string]string{"Authorization": "Bearer " + s}
	}

	if code, body, _ := get(t, "GET", url+"/orders/1", bearer("k1", k1)); code != 200 {
		t.Fatalf("token signed with the published key: %d %s", code, body)
	}
	if code, body, _ := get(t, "GET", admin+"/readyz", nil); code != 200 || !strings.Contains(body, `"jwks:`+idp.URL+`": "ok"`) {
		t.Fatalf("readyz with the key set fetched: %d %s", code, body)
	}

	// The provider rotates to k2 and signs with it at once. Past the
	// 30s between fetches that unknown kids may ask for, the first k2
	// token makes the gateway fetch, and passes.
	k2 := idp.publish(t, "k2")
	clk.Advance(30 * time.Second)
	if code, body, _ := get(t, "GET", url+"/orders/1", bearer("k2", k2)); code != 200 {
		t.Fatalf("token signed with the rotated-in key: %d %s", code, body)
	}
	if code, body, _ := get(t, "GET", url+"/orders/1", bearer("k1", k1)); code != 401 || !strings.Contains(body, "no key with the token's kid") {
		t.Fatalf("token signed with the rotated-out key: %d %s, want 401 for its kid", code, body)
	}

	// A reload that drops the issuer stops the set's refreshes.
	if len(g.keySets.m) != 1 {
		t.Fatalf("%d remote key sets before the reload, want 1", len(g.keySets.m))
	}
	cfg, err := Parse("reload.yaml", []byte(fmt.Sprintf(`kind: Gateway
version: relia/v1
spec:
  listeners: [{name: main, address: %q}]
  admin: {address: "127.0.0.1:0"}
  upstreams: [{name: svc, targets: [{address: %q}]}]
  routes:
    - {name: orders, match: {path: {prefix: /orders}}, upstream: svc}
`, g.Config().Spec.Listeners[0].Address, be.addr())))
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Reload(cfg); err != nil {
		t.Fatal(err)
	}
	if len(g.keySets.m) != 0 {
		t.Fatalf("%d remote key sets after a reload without jwksURL, want 0", len(g.keySets.m))
	}
}

func TestAuthJWKSFromURLUnreachableIsNotReady(t *testing.T) {
	t.Parallel()
	be := newBackend(t, "svc")
	down := httptest.NewServer(http.NotFoundHandler())
	down.Close() // nothing listens at its address any more
	g, url := startGateway(t, fmt.Sprintf(`  auth:
    jwt:
      - {jwksURL: %q}
  upstreams: [{name: svc, targets: [{address: %q}]}]
  routes:
    - {name: orders, match: {path: {prefix: /orders}}, upstream: svc}
`, down.URL+"/jwks", be.addr()), Options{})
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tok := jwt.NewWithClaims(jwt.SigningMethodRS256, jwt.MapClaims{"tenant": "shop", "exp": time.Now().Add(time.Hour).Unix()})
	tok.Header["kid"] = "k1"
	signed, err := tok.SignedString(k)
	if err != nil {
		t.Fatal(err)
	}
	// The token asks for its key, which makes a fetch happen (or waits
	// for the one under way) before the 401.
	code, body, _ := get(t, "GET", url+"/orders/1", map[string]string{"Authorization": "Bearer " + signed})
	if code != 401 || !strings.Contains(body, "signing keys could not be fetched yet") {
		t.Fatalf("token while the key set is unreachable: %d %s", code, body)
	}
	code, body, _ = get(t, "GET", "http://"+g.AdminAddr()+"/readyz", nil)
	if code != 503 || !strings.Contains(body, `"jwks:`+down.URL+`/jwks"`) || !strings.Contains(body, "fetching jwks") {
		t.Fatalf("readyz with the key set unreachable: %d %s, want 503 naming the jwks", code, body)
	}
}
