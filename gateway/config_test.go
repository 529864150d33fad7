package gateway

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/relia-dev/relia/internal/config"
	"github.com/relia-dev/relia/internal/config/configtest"
)

const validHead = `kind: Gateway
version: relia/v1
spec:
  listeners: [{address: "127.0.0.1:8080"}]
  upstreams:
    - name: users
      targets: [{address: "127.0.0.1:9001"}]
`

func TestParseRejectsWithPosition(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, body, want string
	}{
		{"unknown upstream", "  routes: [{name: r, upstream: user}]\n", `test.yaml:8:32: spec.routes[0].upstream: unknown upstream "user"`},
		{"bad regex", "  routes:\n    - name: r\n      upstream: users\n      match: {path: {regex: \"(\"}}\n", "test.yaml:11:29: spec.routes[0].match.path.regex: error parsing regexp"},
		{"two path kinds", "  routes:\n    - name: r\n      upstream: users\n      match: {path: {exact: /a, prefix: /b}}\n", "spec.routes[0].match.path"},
		{"unknown field", "  routes: [{name: r, upstrem: users}]\n", "unknown field"},
		{"negative duration", "  routes: [{name: r, upstream: users, timeout: -1s}]\n", "spec.routes[0].timeout"},
		{"per-try above timeout", "  routes: [{name: r, upstream: users, timeout: 1s, perTryTimeout: 2s}]\n", "exceeds the route's timeout"},
		{"duplicate route", "  routes: [{name: r, upstream: users}, {name: r, upstream: users}]\n", `duplicate route "r"`},
		{"no upstream nor fallback", "  routes: [{name: r}]\n", "needs an upstream or a fallback"},
		{"bad retry condition", "  routes: [{name: r, upstream: users, retry: {on: [sometimes]}}]\n", `unknown retry condition "sometimes"`},
		{"rate without rate", "  routes: [{name: r, upstream: users, rateLimit: {key: client_ip}}]\n", "rate"},
		{"header key without header", "  routes: [{name: r, upstream: users, rateLimit: {rate: 1, key: header}}]\n", "needs a header name"},
		{"prefix rewrite without prefix match", "  routes: [{name: r, upstream: users, rewrite: {prefix: /x}}]\n", "needs a prefix path match"},
		{"cache entry above cache", "  routes: [{name: r, upstream: users, cache: {maxSize: 1MiB, maxEntrySize: 2MiB}}]\n", "spec.routes[0].cache.maxEntrySize"},
		{"redis store without onUnreachable", "  routes: [{name: r, upstream: users, rateLimit: {rate: 1, store: redis, redis: {address: \"127.0.0.1:6379\"}}}]\n", "spec.routes[0].rateLimit.onUnreachable"},
		{"redis fields on a memory store", "  routes: [{name: r, upstream: users, rateLimit: {rate: 1, onUnreachable: open}}]\n", "spec.routes[0].rateLimit.store"},
		{"unknown auth mode", "  routes: [{name: r, upstream: users, auth: maybe}]\n", "spec.routes[0].auth"},
		{"auth without credentials", "  auth: {keyHeader: X-Key}\n  routes: [{name: r, upstream: users}]\n", "spec.auth"},
		{"issuers without names", "  auth: {jwt: [{secretFile: a}, {secretFile: b}]}\n  routes: [{name: r, upstream: users}]\n", "spec.auth.jwt[0].issuer"},
		{"jwks file and url", "  auth: {jwt: [{jwksFile: a, jwksURL: \"https://idp/jwks\"}]}\n  routes: [{name: r, upstream: users}]\n", "spec.auth.jwt[0].jwksURL: jwksFile and jwksURL are both set"},
		{"jwks url scheme", "  auth: {jwt: [{jwksURL: \"file:///etc/jwks\"}]}\n  routes: [{name: r, upstream: users}]\n", "spec.auth.jwt[0].jwksURL: jwks url \"file:///etc/jwks\": the scheme must be http or https"},
		{"jwks refresh too short", "  auth: {jwt: [{jwksURL: \"https://idp/jwks\", jwksRefresh: 10ms}]}\n  routes: [{name: r, upstream: users}]\n", "spec.auth.jwt[0].jwksRefresh"},
		{"jwks refresh without url", "  auth: {jwt: [{secretFile: a, jwksRefresh: 1m}]}\n  routes: [{name: r, upstream: users}]\n", "jwksRefresh without jwksURL"},
		{"issuer without keys", "  auth: {jwt: [{issuer: x}]}\n  routes: [{name: r, upstream: users}]\n", "spec.auth.jwt[0]"},
		{"unknown escaped-slash choice", "  server: {escapedSlashes: encode}\n  routes: [{name: r, upstream: users}]\n", `spec.server.escapedSlashes: unknown choice "encode" (decode, keep, reject)`},
		{"open admin", "  admin: {address: \"0.0.0.0:9901\"}\n  routes: [{name: r, upstream: users}]\n", "needs a bearer token"},
		{"overlapping listeners", "  routes: [{name: r, upstream: users}]\n", ""},
		{"hash without key", "  routes: [{name: r, upstream: users}]\n", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			doc := validHead + tc.body
			switch tc.name {
			case "overlapping listeners":
				doc = strings.Replace(doc, `[{address: "127.0.0.1:8080"}]`, `[{address: "127.0.0.1:8080"}, {address: ":8080"}]`, 1)
				tc.want = "overlaps listener"
			case "hash without key":
				doc = strings.Replace(doc, "    - name: users\n", "    - name: users\n      balance: hash\n", 1)
				tc.want = "spec.upstreams[0].hashOn: balance: hash needs hashOn"
			}
			_, err := Parse("test.yaml", []byte(doc))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want an error containing %q", err, tc.want)
			}
			if err != nil && !strings.HasPrefix(err.Error(), "test.yaml:") {
				t.Errorf("error %q does not name the file and position", err)
			}
		})
	}
}

func TestListenersOnPortZeroDoNotOverlap(t *testing.T) {
	t.Parallel()
	doc := strings.Replace(validHead+"  routes: [{name: r, upstream: users}]\n", `[{address: "127.0.0.1:8080"}]`, `[{address: "127.0.0.1:0"}, {address: "127.0.0.1:0", h2c: true}]`, 1)
	if _, err := Parse("test.yaml", []byte(doc)); err != nil {
		t.Errorf("two listeners asking for free ports: %v", err)
	}
}

func TestExampleConfigIsValid(t *testing.T) {
	t.Parallel()
	cfg, err := LoadFile("../examples/gateway.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Spec.Routes) == 0 || len(cfg.Spec.Upstreams) < 2 {
		t.Errorf("example has %d routes and %d upstreams", len(cfg.Spec.Routes), len(cfg.Spec.Upstreams))
	}
}

func TestSchemaIsPublished(t *testing.T) {
	t.Parallel()
	got, err := JSONSchema()
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile("../docs/schema/gateway.json")
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != string(want) {
		t.Error("docs/schema/gateway.json is stale: go run ./cmd/relia gateway schema > docs/schema/gateway.json")
	}
}

func FuzzParse(f *testing.F) {
	ex, _ := os.ReadFile("../examples/gateway.yaml")
	f.Add(string(ex))
	f.Add(validHead + "  routes: [{name: r, upstream: users, match: {path: {regex: \"a+\"}}}]\n")
	f.Add(validHead + "  routes: [{name: r, upstream: users, retry: {attempts: 2}}]\n")
	f.Fuzz(func(t *testing.T, doc string) {
		cfg, err := Parse("fuzz.yaml", []byte(doc))
		if err != nil || cfg.Spec.Auth != nil {
			// Auth reads its key and token files when the gateway is
			// built, so a valid config naming missing files fails then.
			return
		}
		// A config that validates must compile.
		g, err := New(cfg, Options{AccessLog: discard{}})
		if err != nil {
			t.Fatalf("valid config does not build: %v", err)
		}
		g.closeAccessLog()
	})
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

// effectiveInput leaves out every default it can, so that the effective
// form writes each one out.
const effectiveInput = `kind: Gateway
version: relia/v1
spec:
  listeners: [{address: "127.0.0.1:8080"}]
  auth:
    keysFile: keys.yaml
    jwt: [{issuer: a, jwksURL: "https://idp.example/jwks"}]
  upstreams:
    - name: users
      targets: [{address: "127.0.0.1:9001"}, {address: "127.0.0.1:9002", weight: 3}]
      health: {active: {}, passive: {}}
    - name: ratios
      targets: [{address: "127.0.0.1:9003"}]
      breaker: {failureRatio: 50%, slowCallRatio: 20%}
  routes:
    - name: r
      upstream: users
      retry: {}
      hedge: {delay: 10ms}
      bulkhead: {}
      adaptive: {maxLimit: 10}
      rateLimit: {rate: 2.5}
      cache: {maxSize: 8MiB}
      fallback: {body: "{}"}
      faults: [{name: f, delay: 1ms, headers: {X-Fault: "on"}}]
    - name: shared
      upstream: ratios
      auth: none
      rateLimit: {rate: 1, store: redis, redis: {address: "127.0.0.1:6379"}, onUnreachable: open}
`

// The effective config writes out every default the gateway runs with
// (testdata/effective.golden.yaml), validates, reads back as itself, is
// its own effective form, and leaves the config it comes from as it was.
func TestEffectiveConfigWritesOutEveryDefault(t *testing.T) {
	t.Parallel()
	cfg, err := Parse("in.yaml", []byte(effectiveInput))
	if err != nil {
		t.Fatal(err)
	}
	e := cfg.Effective()
	out, err := config.Marshal(Kind, e)
	if err != nil {
		t.Fatal(err)
	}
	configtest.Golden(t, filepath.Join("testdata", "effective.golden.yaml"), out)
	back, err := Parse("effective.yaml", out)
	if err != nil {
		t.Fatalf("the effective config does not validate: %v", err)
	}
	if !reflect.DeepEqual(back.Spec, e.Spec) || !reflect.DeepEqual(back.Metadata, e.Metadata) {
		t.Errorf("the effective config reads back as\n%+v\nnot\n%+v", back.Spec, e.Spec)
	}
	if again := e.Effective(); !reflect.DeepEqual(again.Spec, e.Spec) {
		t.Errorf("defaults applied twice differ from once:\n%+v\n%+v", again.Spec, e.Spec)
	}
	fresh, _ := Parse("in.yaml", []byte(effectiveInput))
	if !reflect.DeepEqual(cfg.Spec, fresh.Spec) {
		t.Error("Effective changed the config it was taken from")
	}
}
