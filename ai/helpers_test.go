package ai

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/relia-dev/relia/ai/mock"
	"github.com/relia-dev/relia/clock"
)

// startMock starts a provider simulator on a loopback port of its own.
func startMock(t *testing.T, o mock.Options) (*mock.Server, string) {
	t.Helper()
	sim, err := mock.New(o)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	return sim, srv.URL
}

// testGateway is a Service behind a loopback HTTP server.
type testGateway struct {
	svc *Service
	url string
	reg *prometheus.Registry
}

// startService parses cfg (with %s replaced by the given URLs, in
// order) and serves it.
func startService(t *testing.T, cfg string, c clock.Clock, o Options, urls ...any) *testGateway {
	t.Helper()
	cfg = fmt.Sprintf(cfg, urls...)
	parsed, err := Parse("test.yaml", []byte(cfg))
	if err != nil {
		t.Fatal(err)
	}
	cat, err := ParseModels("test.yaml", []byte(cfg))
	if err != nil {
		t.Fatal(err)
	}
	if o.Prompts == nil && strings.Contains(cfg, "kind: Prompt") {
		o.Prompts, err = ParsePrompts("test.yaml", []byte(cfg))
		if err != nil {
			t.Fatal(err)
		}
	}
	reg := prometheus.NewRegistry()
	o.Registry, o.Clock = reg, c
	svc, err := New(parsed, cat, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { svc.Close() })
	srv := httptest.NewServer(svc)
	t.Cleanup(srv.Close)
	return &testGateway{svc: svc, url: srv.URL, reg: reg}
}

// startMockHandler serves h on a loopback port, as a provider.
func startMockHandler(t *testing.T, h http.Handler) (*httptest.Server, string) {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv, srv.URL
}
