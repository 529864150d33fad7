package auth_test

import (
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/relia-dev/relia/gateway/auth"
)

const (
	webKey   = "relia_web-key-with-plenty-of-entropy-0001"
	adminKey = "relia_admin-key-with-plenty-of-entropy-02"
)

func keyFile(entries ...string) string {
	return "kind: APIKeys\nversion: relia/v1\nspec:\n  keys:\n" + strings.Join(entries, "")
}

func keyEntry(id, tenant, routes, hash string) string {
	return fmt.Sprintf("    - id: %s\n      tenant: %s\n      routes: %s\n      sha256: %q\n", id, tenant, routes, hash)
}

func TestParseKeys(t *testing.T) {
	t.Parallel()
	good := keyFile(
		keyEntry("web", "shop", `[catalog, "orders-*"]`, auth.HashKey(webKey)),
		keyEntry("admin", "ops", `["*"]`, auth.HashKey(adminKey)),
	)
	keys, err := auth.ParseKeys("keys.yaml", []byte(good))
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 2 || keys[0].ID != "web" || keys[0].Tenant != "shop" || strings.Join(keys[0].Routes, ",") != "catalog,orders-*" {
		t.Fatalf("keys = %+v", keys)
	}

	hash := auth.HashKey(webKey)
	tests := []struct {
		name, file, want string
	}{
		{"missing id", keyFile("    - tenant: shop\n      routes: [a]\n      sha256: " + hash + "\n"), "keys.yaml:5:7: spec.keys[0].id: missing (required)"},
		{"empty tenant", keyFile(keyEntry("web", `""`, "[a]", hash)), "spec.keys[0].tenant: must not be empty"},
		{"hash too short", keyFile(keyEntry("web", "shop", "[a]", "abc")), "spec.keys[0].sha256: must be 64 lower-case hex digits"},
		{"hash upper case", keyFile(keyEntry("web", "shop", "[a]", strings.ToUpper(hash))), "spec.keys[0].sha256: must be 64"},
		{"duplicate id", keyFile(keyEntry("web", "shop", "[a]", hash), keyEntry("web", "shop", "[a]", auth.HashKey(adminKey))), `spec.keys[1].id: "web" appears twice`},
		{"duplicate key", keyFile(keyEntry("web", "shop", "[a]", hash), keyEntry("web2", "shop", "[a]", hash)), "spec.keys[1].sha256: the same key is listed twice"},
		{"no routes", keyFile(keyEntry("web", "shop", "[]", hash)), "spec.keys[0].routes: must list at least one route"},
		{"bad glob", keyFile(keyEntry("web", "shop", `[ok, "[x"]`, hash)), "spec.keys[0].routes[1]: route pattern \"[x\": syntax error in pattern"},
		{"unknown field", keyFile(keyEntry("web", "shop", "[a]", hash) + "      secret: x\n"), "spec.keys[0].secret: unknown field"},
		{"wrong kind", "kind: Gateway\nversion: relia/v1\nspec: {}\n", `kind: "Gateway" in an API key file: want APIKeys`},
		{"wrong version", "kind: APIKeys\nversion: v2\n", "version: \"v2\" is not supported"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := auth.ParseKeys("keys.yaml", []byte(tt.file))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("ParseKeys = %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

func TestLoadKeys(t *testing.T) {
	t.Parallel()
	file := filepath.Join(t.TempDir(), "keys.yaml")
	if err := os.WriteFile(file, []byte(keyFile(keyEntry("web", "shop", "[a]", auth.HashKey(webKey)))), 0o600); err != nil {
		t.Fatal(err)
	}
	keys, err := auth.LoadKeys(file)
	if err != nil || len(keys) != 1 {
		t.Fatalf("LoadKeys = %v, %v", keys, err)
	}
	if _, err := auth.LoadKeys(filepath.Join(t.TempDir(), "missing.yaml")); err == nil {
		t.Fatal("LoadKeys of a missing file succeeded")
	}
}

func TestNewKeyIsRandomAndHashes(t *testing.T) {
	t.Parallel()
	a, b := auth.NewKey(), auth.NewKey()
	if a == b || !strings.HasPrefix(a, auth.KeyPrefix) || len(a) != len(auth.KeyPrefix)+43 {
		t.Fatalf("NewKey = %q, %q: want distinct prefixed 256-bit keys", a, b)
	}
	if h := auth.HashKey("abc"); h != "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad" {
		t.Fatalf("HashKey(abc) = %s, want SHA-256", h)
	}
}

func newKeyAuth(t *testing.T) *auth.Authenticator {
	t.Helper()
	keys, err := auth.ParseKeys("keys.yaml", []byte(keyFile(
		keyEntry("web", "shop", `[catalog, "orders-*"]`, auth.HashKey(webKey)),
		keyEntry("admin", "ops", `["*"]`, auth.HashKey(adminKey)),
	)))
	if err != nil {
		t.Fatal(err)
	}
	a, err := auth.New(auth.Settings{Keys: keys})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestAuthenticateAPIKeys(t *testing.T) {
	t.Parallel()
	a := newKeyAuth(t)
	tests := []struct {
		name    string
		header  http.Header
		route   string
		want    auth.Identity
		status  int
		reason  string
		message string
	}{
		{"key on a listed route", http.Header{"X-Api-Key": {webKey}}, "catalog", auth.Identity{Tenant: "shop", Subject: "web", Method: "api_key"}, 0, "", ""},
		{"key on a glob route", http.Header{"X-Api-Key": {webKey}}, "orders-v2", auth.Identity{Tenant: "shop", Subject: "web", Method: "api_key"}, 0, "", ""},
		{"star key anywhere", http.Header{"X-Api-Key": {adminKey}}, "admin", auth.Identity{Tenant: "ops", Subject: "admin", Method: "api_key"}, 0, "", ""},
		{"key as bearer", http.Header{"Authorization": {"Bearer " + webKey}}, "catalog", auth.Identity{Tenant: "shop", Subject: "web", Method: "api_key"}, 0, "", ""},
		{"key on another route", http.Header{"X-Api-Key": {webKey}}, "admin", auth.Identity{Tenant: "shop", Subject: "web", Method: "api_key"}, 403, auth.ReasonForbidden, "API key web may not call route admin"},
		{"unknown key", http.Header{"X-Api-Key": {webKey + "x"}}, "catalog", auth.Identity{}, 401, auth.ReasonInvalid, "unknown API key"},
		{"key differing in one byte", http.Header{"X-Api-Key": {"s" + webKey[1:]}}, "catalog", auth.Identity{}, 401, auth.ReasonInvalid, "unknown API key"},
		{"no credentials", http.Header{}, "catalog", auth.Identity{}, 401, auth.ReasonMissing, "no credentials"},
		{"basic auth", http.Header{"Authorization": {"Basic dXNlcjpwYXNz"}}, "catalog", auth.Identity{}, 401, auth.ReasonInvalid, "unsupported authorization scheme"},
		{"jwt without jwt settings", http.Header{"Authorization": {"Bearer a.b.c"}}, "catalog", auth.Identity{}, 401, auth.ReasonInvalid, "bearer tokens are not accepted"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			id, err := a.Authenticate(tt.header, tt.route)
			if id != tt.want {
				t.Fatalf("identity = %+v, want %+v", id, tt.want)
			}
			checkError(t, err, tt.status, tt.reason, tt.message)
			if err != nil && (strings.Contains(err.Error(), webKey) || strings.Contains(string(err.(*auth.Error).JSON()), webKey)) {
				t.Fatalf("error %q shows the key", err)
			}
		})
	}
}

// checkError checks that err is an *Error with status, reason and a
// message containing message, or nil when status is 0.
func checkError(t *testing.T, err error, status int, reason, message string) {
	t.Helper()
	if status == 0 {
		if err != nil {
			t.Fatalf("err = %v, want nil", err)
		}
		return
	}
	var ae *auth.Error
	if !errors.As(err, &ae) {
		t.Fatalf("err = %v, want an *auth.Error", err)
	}
	if ae.Status != status || ae.Reason != reason || !strings.Contains(ae.Message, message) {
		t.Fatalf("err = %d %s %q, want %d %s containing %q", ae.Status, ae.Reason, ae.Message, status, reason, message)
	}
	sentinel := auth.ErrUnauthenticated
	if status == http.StatusForbidden {
		sentinel = auth.ErrForbidden
	}
	if !errors.Is(err, sentinel) {
		t.Fatalf("err %v does not match %v", err, sentinel)
	}
	if (ae.Challenge() == "") != (status == http.StatusForbidden) {
		t.Fatalf("Challenge() = %q for status %d", ae.Challenge(), status)
	}
}

func TestErrorJSON(t *testing.T) {
	t.Parallel()
	a := newKeyAuth(t)
	_, err := a.Authenticate(http.Header{"X-Api-Key": {"nope"}}, "catalog")
	var ae *auth.Error
	if !errors.As(err, &ae) {
		t.Fatal(err)
	}
	if got, want := string(ae.JSON()), `{"reason":"invalid_credentials","policy":"auth","message":"unknown API key"}`; got != want {
		t.Fatalf("JSON = %s, want %s", got, want)
	}
	if got, want := ae.Challenge(), `ApiKey realm="relia"`; got != want {
		t.Fatalf("Challenge = %s, want %s", got, want)
	}
}

func TestNewRejectsInvalidSettings(t *testing.T) {
	t.Parallel()
	secret := []byte(strings.Repeat("s", 32))
	tests := []struct {
		name string
		s    auth.Settings
		want string
	}{
		{"nothing", auth.Settings{}, "neither keys nor jwt"},
		{"bad hash", auth.Settings{Keys: []auth.APIKey{{ID: "k", Tenant: "t", Routes: []string{"*"}, SHA256: "xyz"}}}, "api key k: sha256"},
		{"duplicate key", auth.Settings{Keys: []auth.APIKey{
			{ID: "a", Tenant: "t", Routes: []string{"*"}, SHA256: auth.HashKey("k")},
			{ID: "b", Tenant: "t", Routes: []string{"*"}, SHA256: auth.HashKey("k")},
		}}, "api key b: the same key is listed twice"},
		{"bad key route", auth.Settings{Keys: []auth.APIKey{{ID: "k", Tenant: "t", Routes: []string{"["}, SHA256: auth.HashKey("k")}}}, "api key k: route pattern"},
		{"key without id", auth.Settings{Keys: []auth.APIKey{{Tenant: "t", Routes: []string{"*"}, SHA256: auth.HashKey("k")}}}, "api key 0: id"},
		{"key without tenant", auth.Settings{Keys: []auth.APIKey{{ID: "k", Routes: []string{"*"}, SHA256: auth.HashKey("k")}}}, "api key k: tenant"},
		{"key without routes", auth.Settings{Keys: []auth.APIKey{{ID: "k", Tenant: "t", SHA256: auth.HashKey("k")}}}, "api key k: routes"},
		{"jwt without keys", auth.Settings{JWT: &auth.JWTSettings{}}, "neither secret nor jwks"},
		{"short secret", auth.Settings{JWT: &auth.JWTSettings{Secret: []byte("short")}}, "secret of 5 bytes"},
		{"negative leeway", auth.Settings{JWT: &auth.JWTSettings{Secret: secret, Leeway: -1}}, "leeway -1ns"},
		{"bad tenant route", auth.Settings{JWT: &auth.JWTSettings{Secret: secret, TenantRoutes: map[string][]string{"shop": {"ok", "["}}}}, "tenant routes shop[1]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := auth.New(tt.s)
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.HasPrefix(err.Error(), "authenticator: ") {
				t.Fatalf("New = %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

func TestRedact(t *testing.T) {
	t.Parallel()
	a := newKeyAuth(t)
	custom, err := auth.New(auth.Settings{Keys: []auth.APIKey{}, KeyHeader: "X-Shop-Key"})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		a           *auth.Authenticator
		name, value string
		want        string
	}{
		{a, "authorization", "Bearer x", auth.Redacted},
		{a, "COOKIE", "session=1", auth.Redacted},
		{a, "Set-Cookie", "session=1", auth.Redacted},
		{a, "x-api-key", webKey, auth.Redacted},
		{a, "Accept", "text/html", "text/html"},
		{custom, "x-shop-key", "k", auth.Redacted},
		{custom, "Proxy-Authorization", "Basic x", auth.Redacted},
		{custom, "X-Request-Id", "42", "42"},
	}
	for _, tt := range tests {
		if got := tt.a.Redact(tt.name, tt.value); got != tt.want {
			t.Errorf("Redact(%q) = %q, want %q", tt.name, got, tt.want)
		}
	}
	if !auth.IsSensitive("x-auth-token") || auth.IsSensitive("x-shop-key") {
		t.Error("IsSensitive: package list wrong")
	}
	names := auth.SensitiveHeaders()
	names[0] = "changed"
	if auth.SensitiveHeaders()[0] == "changed" {
		t.Error("SensitiveHeaders returned the package's own slice")
	}
}

func BenchmarkAuthenticateAPIKey(b *testing.B) {
	keys := make([]auth.APIKey, 10000)
	for i := range keys {
		keys[i] = auth.APIKey{ID: fmt.Sprint("k", i), Tenant: "t", Routes: []string{"catalog", "orders-*"}, SHA256: auth.HashKey(fmt.Sprint("key-", i))}
	}
	a, err := auth.New(auth.Settings{Keys: keys})
	if err != nil {
		b.Fatal(err)
	}
	h := http.Header{"X-Api-Key": {"key-4242"}}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := a.Authenticate(h, "orders-eu"); err != nil {
			b.Fatal(err)
		}
	}
}
