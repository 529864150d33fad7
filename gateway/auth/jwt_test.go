package auth_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/relia-dev/relia/clock"
	"github.com/relia-dev/relia/gateway/auth"
)

var (
	secret = []byte("0123456789abcdef0123456789abcdef")
	// Generating an RSA key takes a while; one serves every test.
	rsaKey = sync.OnceValue(func() *rsa.PrivateKey {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			panic(err)
		}
		return k
	})
	ecKey = sync.OnceValue(func() *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			panic(err)
		}
		return k
	})
)

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func rsaJWK(kid string, pub *rsa.PublicKey) map[string]any {
	return map[string]any{"kty": "RSA", "kid": kid, "use": "sig", "alg": "RS256", "n": b64(pub.N.Bytes()), "e": b64(big.NewInt(int64(pub.E)).Bytes())}
}

func ecJWK(kid string, pub *ecdsa.PublicKey) map[string]any {
	raw, err := pub.Bytes()
	if err != nil {
		panic(err)
	}
	return map[string]any{"kty": "EC", "kid": kid, "crv": "P-256", "x": b64(raw[1:33]), "y": b64(raw[33:])}
}

func jwksJSON(keys ...map[string]any) []byte {
	b, err := json.Marshal(map[string]any{"keys": keys})
	if err != nil {
		panic(err)
	}
	return b
}

// sign makes a token with method, the kid header (when not empty) and
// claims, signed with key.
func sign(t *testing.T, method jwt.SigningMethod, kid string, key any, claims jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(method, claims)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func bearer(tok string) http.Header { return http.Header{"Authorization": {"Bearer " + tok}} }

func TestAuthenticateJWT(t *testing.T) {
	t.Parallel()
	clk := clock.NewFake(time.Time{})
	now := clk.Now()
	set, err := auth.ParseJWKS(jwksJSON(rsaJWK("rsa-1", &rsaKey().PublicKey), ecJWK("ec-1", &ecKey().PublicKey)))
	if err != nil {
		t.Fatal(err)
	}
	a, err := auth.New(auth.Settings{Clock: clk, JWT: &auth.JWTSettings{
		Secret:       secret,
		JWKS:         set,
		Issuer:       "https://idp.example",
		Audience:     "relia",
		Leeway:       30 * time.Second,
		RoutesClaim:  "scope",
		TenantRoutes: map[string][]string{"ops": {"*"}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	claims := func(edit func(jwt.MapClaims)) jwt.MapClaims {
		c := jwt.MapClaims{"iss": "https://idp.example", "aud": "relia", "sub": "user-7", "tenant": "shop", "scope": "catalog orders-*", "exp": now.Add(time.Hour).Unix(), "nbf": now.Add(-time.Minute).Unix()}
		if edit != nil {
			edit(c)
		}
		return c
	}
	hs := func(edit func(jwt.MapClaims)) string {
		return sign(t, jwt.SigningMethodHS256, "", secret, claims(edit))
	}
	shop := auth.Identity{Tenant: "shop", Subject: "user-7", Method: "jwt"}
	// The classic confusion: an HS256 token whose HMAC key is the RSA
	// public key, which an attacker can read from the JWKS.
	pubDER, err := x509.MarshalPKIXPublicKey(&rsaKey().PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		token   string
		route   string
		want    auth.Identity
		status  int
		reason  string
		message string
	}{
		{"HS256", hs(nil), "catalog", shop, 0, "", ""},
		{"RS256 by kid", sign(t, jwt.SigningMethodRS256, "rsa-1", rsaKey(), claims(nil)), "catalog", shop, 0, "", ""},
		{"ES256 by kid", sign(t, jwt.SigningMethodES256, "ec-1", ecKey(), claims(nil)), "orders-eu", shop, 0, "", ""},
		{"scope as an array", hs(func(c jwt.MapClaims) { c["scope"] = []string{"admin"} }), "admin", shop, 0, "", ""},
		{"route from tenant routes", hs(func(c jwt.MapClaims) { c["tenant"] = "ops"; delete(c, "scope") }), "anything", auth.Identity{Tenant: "ops", Subject: "user-7", Method: "jwt"}, 0, "", ""},
		{"route outside the scope", hs(nil), "admin", shop, 403, auth.ReasonForbidden, "tenant shop may not call route admin"},
		{"expired", hs(func(c jwt.MapClaims) { c["exp"] = now.Add(-time.Minute).Unix() }), "catalog", auth.Identity{}, 401, auth.ReasonExpired, "token has expired"},
		{"expired within leeway", hs(func(c jwt.MapClaims) { c["exp"] = now.Add(-10 * time.Second).Unix() }), "catalog", shop, 0, "", ""},
		{"not yet valid", hs(func(c jwt.MapClaims) { c["nbf"] = now.Add(time.Minute).Unix() }), "catalog", auth.Identity{}, 401, auth.ReasonInvalid, "token is not valid yet"},
		{"no expiry", hs(func(c jwt.MapClaims) { delete(c, "exp") }), "catalog", auth.Identity{}, 401, auth.ReasonInvalid, "missing required claim"},
		{"wrong issuer", hs(func(c jwt.MapClaims) { c["iss"] = "https://evil.example" }), "catalog", auth.Identity{}, 401, auth.ReasonInvalid, "invalid issuer"},
		{"wrong audience", hs(func(c jwt.MapClaims) { c["aud"] = "someone-else" }), "catalog", auth.Identity{}, 401, auth.ReasonInvalid, "invalid audience"},
		{"no tenant", hs(func(c jwt.MapClaims) { delete(c, "tenant") }), "catalog", auth.Identity{}, 401, auth.ReasonInvalid, "no tenant claim"},
		{"wrong secret", sign(t, jwt.SigningMethodHS256, "", []byte("another-secret-of-32-bytes-long!"), claims(nil)), "catalog", auth.Identity{}, 401, auth.ReasonInvalid, "signature is invalid"},
		{"HS256 keyed with the RSA public key", sign(t, jwt.SigningMethodHS256, "rsa-1", pubDER, claims(nil)), "catalog", auth.Identity{}, 401, auth.ReasonInvalid, "signature is invalid"},
		{"unknown kid", sign(t, jwt.SigningMethodRS256, "rsa-2", rsaKey(), claims(nil)), "catalog", auth.Identity{}, 401, auth.ReasonInvalid, "no key with the token's kid"},
		{"no kid with several keys", sign(t, jwt.SigningMethodRS256, "", rsaKey(), claims(nil)), "catalog", auth.Identity{}, 401, auth.ReasonInvalid, "token has no kid"},
		{"RS256 naming the EC key", sign(t, jwt.SigningMethodRS256, "ec-1", rsaKey(), claims(nil)), "catalog", auth.Identity{}, 401, auth.ReasonInvalid, "key for another algorithm"},
		{"RS384 refused", sign(t, jwt.SigningMethodRS384, "rsa-1", rsaKey(), claims(nil)), "catalog", auth.Identity{}, 401, auth.ReasonInvalid, "signature is invalid"},
		{"alg none", sign(t, jwt.SigningMethodNone, "", jwt.UnsafeAllowNoneSignatureType, claims(nil)), "catalog", auth.Identity{}, 401, auth.ReasonInvalid, "invalid token"},
		{"garbage", "a.b.c", "catalog", auth.Identity{}, 401, auth.ReasonInvalid, "token is malformed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			id, err := a.Authenticate(bearer(tt.token), tt.route)
			if id != tt.want {
				t.Fatalf("identity = %+v, want %+v (err %v)", id, tt.want, err)
			}
			checkError(t, err, tt.status, tt.reason, tt.message)
			if err != nil && strings.Contains(err.Error()+string(err.(*auth.Error).JSON()), tt.token) {
				t.Fatalf("error %q shows the token", err)
			}
		})
	}
}

func TestHS256IsRefusedWithoutASecret(t *testing.T) {
	t.Parallel()
	set, err := auth.ParseJWKS(jwksJSON(rsaJWK("rsa-1", &rsaKey().PublicKey)))
	if err != nil {
		t.Fatal(err)
	}
	a, err := auth.New(auth.Settings{JWT: &auth.JWTSettings{JWKS: set}})
	if err != nil {
		t.Fatal(err)
	}
	// With only a JWKS configured, an HS256 token signed with the public
	// key's bytes, PKIX or the JWK's own modulus, must not pass.
	pubDER, _ := x509.MarshalPKIXPublicKey(&rsaKey().PublicKey)
	claims := jwt.MapClaims{"tenant": "shop", "exp": time.Now().Add(time.Hour).Unix()}
	for _, key := range [][]byte{pubDER, rsaKey().PublicKey.N.Bytes()} {
		_, err := a.Authenticate(bearer(sign(t, jwt.SigningMethodHS256, "rsa-1", key, claims)), "catalog")
		checkError(t, err, 401, auth.ReasonInvalid, "signature is invalid")
	}
	// The only key serves a token without kid; the real clock applies.
	id, err := a.Authenticate(bearer(sign(t, jwt.SigningMethodRS256, "", rsaKey(), claims)), "catalog")
	if err != nil || id.Tenant != "shop" {
		t.Fatalf("RS256 without kid = %+v, %v", id, err)
	}
	_, err = a.Authenticate(http.Header{}, "catalog")
	checkError(t, err, 401, auth.ReasonMissing, "no credentials: send a bearer token")
	if got := err.(*auth.Error).Challenge(); got != `Bearer realm="relia"` {
		t.Fatalf("Challenge = %q", got)
	}
}

func TestParseJWKS(t *testing.T) {
	t.Parallel()
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	good := rsaJWK("rsa-1", &rsaKey().PublicKey)
	with := func(k map[string]any, key string, v any) map[string]any {
		c := map[string]any{}
		for kk, vv := range k {
			c[kk] = vv
		}
		if v == nil {
			delete(c, key)
		} else {
			c[key] = v
		}
		return c
	}
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		data []byte
		n    int
		want string
	}{
		{"rsa and ec", jwksJSON(good, ecJWK("ec-1", &ecKey().PublicKey)), 2, ""},
		{"encryption keys skipped", jwksJSON(good, with(ecJWK("enc", &ecKey().PublicKey), "use", "enc")), 1, ""},
		{"other types skipped", jwksJSON(good, map[string]any{"kty": "OKP", "crv": "Ed25519", "x": "AA", "kid": "ed"}, map[string]any{"kty": "oct", "k": "c2VjcmV0"}), 1, ""},
		{"other algorithms skipped", jwksJSON(good, with(good, "kid", "ps"), with(with(good, "kid", "rs512"), "alg", "RS512")), 2, ""},
		{"other curves skipped", jwksJSON(good, map[string]any{"kty": "EC", "crv": "P-384", "kid": "p384", "x": b64(p384.X.Bytes()), "y": b64(p384.Y.Bytes())}), 1, ""},
		{"not json", []byte("{"), 0, "parsing jwks"},
		{"no keys", []byte(`{"keys": []}`), 0, "no RS256 or ES256 signing key"},
		{"only skipped keys", jwksJSON(with(good, "use", "enc")), 0, "no RS256 or ES256 signing key"},
		{"duplicate kid", jwksJSON(good, good), 0, `kid "rsa-1" appears twice`},
		{"private rsa key", jwksJSON(with(good, "d", "AQAB")), 0, "private key material"},
		{"private ec key", jwksJSON(with(ecJWK("ec-1", &ecKey().PublicKey), "d", "AQAB")), 0, "private key material"},
		{"small modulus", jwksJSON(rsaJWK("small", &small.PublicKey)), 0, "n: 1024 bits, want 2048 to 8192"},
		{"even exponent", jwksJSON(with(good, "e", "AAI")), 0, "not a valid RSA exponent"},
		{"bad base64", jwksJSON(with(good, "n", "!!")), 0, "n: illegal base64"},
		{"missing kty", jwksJSON(with(good, "kty", nil)), 0, "kty: missing"},
		{"point off the curve", jwksJSON(with(ecJWK("ec-1", &ecKey().PublicKey), "y", b64(make([]byte, 32)))), 0, "x, y:"},
		{"short coordinate", jwksJSON(with(ecJWK("ec-1", &ecKey().PublicKey), "x", "AA")), 0, "32 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			set, err := auth.ParseJWKS(tt.data)
			if tt.want == "" {
				if err != nil || set.Len() != tt.n {
					t.Fatalf("ParseJWKS = %v, %v; want %d keys", set, err, tt.n)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("ParseJWKS = %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

func TestLoadJWKS(t *testing.T) {
	t.Parallel()
	file := filepath.Join(t.TempDir(), "jwks.json")
	if err := os.WriteFile(file, jwksJSON(ecJWK("ec-1", &ecKey().PublicKey)), 0o600); err != nil {
		t.Fatal(err)
	}
	if set, err := auth.LoadJWKS(file); err != nil || set.Len() != 1 {
		t.Fatalf("LoadJWKS = %v, %v", set, err)
	}
	if err := os.WriteFile(file, []byte(`{"keys":[]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := auth.LoadJWKS(file); err == nil || !strings.HasPrefix(err.Error(), file+": ") {
		t.Fatalf("LoadJWKS of an empty set = %v, want an error naming the file", err)
	}
}
