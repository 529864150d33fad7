package auth_test

import (
	"errors"
	"net/http"
	"testing"

	"github.com/relia-dev/relia/gateway/auth"
)

func FuzzParseKeys(f *testing.F) {
	f.Add([]byte(keyFile(keyEntry("web", "shop", `[catalog, "orders-*"]`, auth.HashKey(webKey)))))
	f.Add([]byte(keyFile(keyEntry("a", "t", `["[x"]`, auth.HashKey("k")), keyEntry("a", "t", "[b]", "00"))))
	f.Add([]byte("kind: APIKeys\nversion: relia/v1\nspec:\n  keys: {}\n"))
	f.Add([]byte("kind: APIKeys\nversion: relia/v1\n---\nkind: APIKeys\nversion: relia/v1\nspec: {keys: [&a {id: x}, *a]}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		keys, err := auth.ParseKeys("fuzz.yaml", data)
		if err != nil {
			return
		}
		// Whatever the parser accepts, the authenticator must accept too.
		if _, err := auth.New(auth.Settings{Keys: append([]auth.APIKey{}, keys...)}); err != nil {
			t.Fatalf("ParseKeys accepted keys New refuses: %v", err)
		}
		for _, k := range keys {
			if k.ID == "" || k.Tenant == "" || len(k.Routes) == 0 || len(k.SHA256) != 64 {
				t.Fatalf("ParseKeys accepted an incomplete key %+v", k)
			}
		}
	})
}

func FuzzParseJWKS(f *testing.F) {
	f.Add(jwksJSON(rsaJWK("rsa-1", &rsaKey().PublicKey), ecJWK("ec-1", &ecKey().PublicKey)))
	f.Add([]byte(`{"keys":[{"kty":"RSA","n":"AQAB","e":"AQAB"},{"kty":"EC","crv":"P-256","x":"","y":""}]}`))
	f.Add([]byte(`{"keys":[{"kty":"oct","k":"c2VjcmV0","d":"x"}]}`))
	f.Add([]byte(`{"keys":null}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		set, err := auth.ParseJWKS(data)
		if err == nil && set.Len() == 0 {
			t.Fatal("ParseJWKS accepted a set with no key")
		}
	})
}

// FuzzAuthenticate sends arbitrary credentials: every answer is an
// identity or an *auth.Error with 401 or 403, never a panic.
func FuzzAuthenticate(f *testing.F) {
	set, err := auth.ParseJWKS(jwksJSON(rsaJWK("rsa-1", &rsaKey().PublicKey)))
	if err != nil {
		f.Fatal(err)
	}
	keys := []auth.APIKey{{ID: "web", Tenant: "shop", Routes: []string{"catalog"}, SHA256: auth.HashKey(webKey)}}
	a, err := auth.New(auth.Settings{Keys: keys, JWT: &auth.JWTSettings{Secret: secret, JWKS: set, RoutesClaim: "scope"}})
	if err != nil {
		f.Fatal(err)
	}
	f.Add("X-Api-Key", webKey, "catalog")
	f.Add("Authorization", "Bearer "+webKey, "admin")
	f.Add("Authorization", "Bearer eyJhbGciOiJub25lIn0.e30.", "catalog")
	f.Add("Authorization", "bearer a.b.c", "")
	f.Fuzz(func(t *testing.T, name, value, route string) {
		id, err := a.Authenticate(http.Header{http.CanonicalHeaderKey(name): {value}}, route)
		if err == nil {
			if id.Tenant == "" || id.Subject == "" && id.Method == "api_key" {
				t.Fatalf("authenticated without a tenant: %+v", id)
			}
			return
		}
		var ae *auth.Error
		if !errors.As(err, &ae) || (ae.Status != http.StatusUnauthorized && ae.Status != http.StatusForbidden) || ae.Reason == "" {
			t.Fatalf("Authenticate = %v, want an *auth.Error with 401 or 403", err)
		}
	})
}
