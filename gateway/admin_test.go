package gateway

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/relia-dev/relia/gateway/auth"
)

// A second gateway on a port the first holds fails to start with an error
// that names the config field, its place in the file and the port, and
// leaves nothing listening.
func TestPortClashNamesTheFieldAndPort(t *testing.T) {
	t.Parallel()
	be := newBackend(t, "svc")
	spec := `  upstreams: [{name: svc, targets: [{address: "` + be.addr() + `"}]}]
  routes: [{name: r, upstream: svc}]
`
	first, _ := startGateway(t, spec, Options{})
	_, adminPort, _ := net.SplitHostPort(first.AdminAddr())
	_, publicPort, _ := net.SplitHostPort(first.Addr("main"))
	for _, tc := range []struct {
		name, head, want string
	}{
		{"admin", "  listeners: [{name: main, address: \"127.0.0.1:0\"}]\n  admin: {address: \"127.0.0.1:" + adminPort + "\"}\n",
			"second.yaml:5:20: spec.admin.address: cannot listen on 127.0.0.1:" + adminPort + ": port " + adminPort + " is in use by another gateway or program; give spec.admin.address a free port (port 0 picks one)"},
		{"listener", "  listeners: [{name: main, address: \"127.0.0.1:" + publicPort + "\"}]\n  admin: {address: \"127.0.0.1:0\"}\n",
			"second.yaml:4:37: spec.listeners[0].address: cannot listen on 127.0.0.1:" + publicPort + ": port " + publicPort + " is in use"},
	} {
		cfg, err := Parse("second.yaml", []byte("kind: Gateway\nversion: relia/v1\nspec:\n"+tc.head+spec))
		if err != nil {
			t.Fatal(err)
		}
		g, err := New(cfg, Options{AccessLog: io.Discard, Logger: quietLogger()})
		if err != nil {
			t.Fatal(err)
		}
		err = g.Start()
		if err == nil {
			g.Shutdown(canceled())
			t.Fatalf("%s: a second gateway started on a port the first holds", tc.name)
		}
		if !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("%s: got %q, want it to start with %q", tc.name, err, tc.want)
		}
		g.Shutdown(canceled())
	}
}

// When the admin address was left out, the error says the port is the
// default and how to turn the admin API off. (The test holds a port of its
// own rather than the default, which other programs may use.)
func TestPortClashOnTheDefaultSaysSo(t *testing.T) {
	t.Parallel()
	held, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	_, err = listen(&Config{}, "spec.admin.address", held.Addr().String(), defaultAdminNote)
	want := "spec.admin.address: cannot listen on " + held.Addr().String() + ` (the default when spec.admin.address is left out; "off" turns the admin API off): port `
	if err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Errorf("got %v, want it to start with %q", err, want)
	}
}

// adminGet fetches path from the admin API at addr with token (if any)
// and decodes its JSON into v.
func adminGet(t *testing.T, addr, token, path string, v any) []byte {
	t.Helper()
	hdr := map[string]string{}
	if token != "" {
		hdr["Authorization"] = "Bearer " + token
	}
	code, body, _ := get(t, "GET", "http://"+addr+path, hdr)
	if code != 200 {
		t.Fatalf("GET %s: %d %s", path, code, body)
	}
	if err := json.Unmarshal([]byte(body), v); err != nil {
		t.Fatalf("GET %s: %v\n%s", path, err, body)
	}
	return []byte(body)
}

// keysOf calls f with the path and key of every object key in v, except
// inside the maps named in skip (header names, tenants: the user's words,
// not the API's).
func keysOf(v any, at string, skip map[string]bool, f func(at, key string)) {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			f(at, k)
			if !skip[k] {
				keysOf(e, at+"."+k, skip, f)
			}
		}
	case []any:
		for i, e := range x {
			keysOf(e, fmt.Sprintf("%s[%d]", at, i), skip, f)
		}
	}
}

// /routes speaks relia's JSON: snake_case keys, durations in _ms, defaults
// applied, policies with their state, credential headers redacted.
func TestAdminRoutesAreSnakeCase(t *testing.T) {
	t.Parallel()
	be := newBackend(t, "svc")
	g, _ := startGateway(t, `  upstreams: [{name: svc, targets: [{address: "`+be.addr()+`"}]}]
  routes:
    - name: api
      upstream: svc
      match: {path: {prefix: /api}, methods: [GET], headers: {X-Api-Key: match-s3cret, X-Tenant: "*"}}
      rewrite: {prefix: /}
      requestHeaders: {set: {Authorization: "Bearer upstream-s3cret"}}
      perTryTimeout: 2s
      retry: {retryOn: [5xx]}
      hedge: {delay: 50ms}
      bulkhead: {maxQueue: 5, maxWait: 100ms}
      adaptive: {maxLimit: 50}
      rateLimit: {rate: 20}
      cache: {maxSize: 1MiB}
      fallback: {status: 503}
      faults: [{name: slow, delay: 1ms, percentage: 0}]
      upgrades: [websocket]
    - name: rest
      fallback: {body: "{}"}
`, Options{})
	var routes []map[string]any
	body := adminGet(t, g.AdminAddr(), "", "/routes", &routes)
	snake := regexp.MustCompile(`^[a-z][a-z0-9]*(_[a-z0-9]+)*$`)
	keysOf(any(toAnySlice(routes)), "", map[string]bool{"headers": true}, func(at, k string) {
		if !snake.MatchString(k) {
			t.Errorf("%s: key %q is not snake_case", at, k)
		}
	})
	if strings.Contains(string(body), "s3cret") {
		t.Errorf("/routes shows a credential:\n%s", body)
	}
	want := `[{"name":"api","match":{"path_prefix":"/api","methods":["GET"],"headers":{"X-Api-Key":"[redacted]","X-Tenant":"*"}},` +
		`"upstream":"svc","rewrite_prefix":"/","auth":"none","timeout_ms":15000,"per_try_timeout_ms":2000,"max_body_bytes":10485760,` +
		`"retry":{"attempts":3,"base_ms":25,"cap_ms":250,"retry_on":["5xx"],"non_idempotent":false,"budget_ratio":0.2,"budget_min_per_second":3},` +
		`"hedge":{"delay_ms":50,"max_hedges":1,"non_idempotent":false},` +
		`"bulkhead":{"max_concurrent":100,"max_queue":5,"max_wait_ms":100,"in_flight":0,"queued":0},` +
		`"adaptive":{"limit":20,"min_limit":1,"max_limit":50,"in_flight":0},` +
		`"rate_limit":{"key":"client_ip","rate":20,"burst":20,"store":"memory"},` +
		`"cache":{"max_bytes":1048576,"max_entry_bytes":131072},"fallback_status":503,"faults":["slow"],"upgrades":["websocket"]},` +
		`{"name":"rest","match":{},"auth":"none","timeout_ms":15000,"per_try_timeout_ms":15000,"max_body_bytes":10485760,"fallback_status":200}]`
	var compact bytes.Buffer
	json.Compact(&compact, body)
	if compact.String() != want {
		t.Errorf("/routes\n got %s\nwant %s", compact.String(), want)
	}
}

func toAnySlice(ms []map[string]any) []any {
	out := make([]any, len(ms))
	for i, m := range ms {
		out[i] = m
	}
	return out
}

// /config shows the effective config (every default written out) in the
// config's own camelCase keys, never a secret, and reads back: pasted
// into a file it loads as the config the gateway runs, credentials
// written into the config aside, which read back redacted.
func TestAdminConfigIsEffectiveRedactedAndReadsBack(t *testing.T) {
	t.Parallel()
	be := newBackend(t, "svc")
	apiKey := auth.NewKey()
	keys := writeFile(t, "keys.yaml", "kind: APIKeys\nversion: relia/v1\nspec:\n  keys:\n    - {id: web, tenant: shop, routes: [api], sha256: "+auth.HashKey(apiKey)+"}\n")
	jwtSecret, redisPassword, adminToken := "jwt-secret-jwt-secret-jwt-secret-1", "redis-password-1", "admin-token-admin-token-1"
	secretFile, passwordFile, tokenFile := writeFile(t, "jwt.secret", jwtSecret), writeFile(t, "redis.password", redisPassword), writeFile(t, "admin.token", adminToken)
	g, _ := startGateway(t, `  admin: {address: "127.0.0.1:0", tokenFile: `+tokenFile+`}
  auth:
    keysFile: `+keys+`
    jwt: [{issuer: a, secretFile: `+secretFile+`}, {issuer: b, jwksURL: "https://user:url-s3cret@idp.example/jwks"}]
  upstreams: [{name: svc, targets: [{address: "`+be.addr()+`"}]}]
  routes:
    - name: api
      upstream: svc
      requestHeaders: {set: {Authorization: "Bearer upstream-s3cret", X-Trace: on}}
      rateLimit: {rate: 5, store: redis, redis: {address: "127.0.0.1:1", passwordFile: `+passwordFile+`}, onUnreachable: open}
`, Options{})
	var got struct {
		Generation uint64          `json:"generation"`
		Config     json.RawMessage `json:"config"`
	}
	body := adminGet(t, g.AdminAddr(), adminToken, "/config", &got)
	for _, secret := range []string{apiKey, jwtSecret, redisPassword, adminToken, "s3cret"} {
		if strings.Contains(string(body), secret) {
			t.Errorf("/config shows the secret %q", secret)
		}
	}
	if strings.Count(string(got.Config), `"[redacted]"`) != 1 || !strings.Contains(string(got.Config), "redacted@idp.example") {
		t.Errorf("the Authorization value and the URL's password are not shown redacted:\n%s", got.Config)
	}
	var doc map[string]any
	json.Unmarshal(got.Config, &doc)
	camel := regexp.MustCompile(`^[a-z][a-zA-Z0-9]*$`)
	keysOf(doc, "", map[string]bool{"set": true, "add": true, "headers": true, "tenantRoutes": true}, func(at, k string) {
		if !camel.MatchString(k) {
			t.Errorf("%s: key %q is not the config's camelCase", at, k)
		}
	})
	server := doc["spec"].(map[string]any)["server"].(map[string]any)
	if server["readHeaderTimeout"] != "10s" || server["maxBodyBytes"] != "10MiB" {
		t.Errorf("spec.server is %v, want the defaults written out (readHeaderTimeout 10s, maxBodyBytes 10MiB)", server)
	}
	// Pasted back into a file, it is the config the gateway runs.
	pasted, err := Parse("pasted.json", got.Config)
	if err != nil {
		t.Fatalf("/config does not read back: %v\n%s", err, got.Config)
	}
	st := g.state.Load()
	if want := newRedactor(st.eff).config(st.eff); !reflect.DeepEqual(pasted.Spec, want.Spec) || !reflect.DeepEqual(pasted.Metadata, want.Metadata) {
		t.Errorf("/config reads back as\n%+v\nnot the effective config\n%+v", pasted.Spec, want.Spec)
	}
	if got.Generation != st.gen {
		t.Errorf("generation %d, want %d", got.Generation, st.gen)
	}
}
