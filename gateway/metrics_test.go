package gateway

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/relia-dev/relia/internal/semconv"
)

// bucketBounds returns the upper bounds of the histogram name's buckets
// as the registry exposes them. The gateway observes a request once its
// answer is written, so a client that read the answer may gather before
// the series exists: it is waited for, for up to 10 s.
func bucketBounds(t *testing.T, reg *prometheus.Registry, name string) []float64 {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs {
			if mf.GetName() != name || len(mf.GetMetric()) == 0 {
				continue
			}
			var bounds []float64
			for _, b := range mf.GetMetric()[0].GetHistogram().GetBucket() {
				bounds = append(bounds, b.GetUpperBound())
			}
			return bounds
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s series", name)
			return nil
		}
	}
}

// TestLatencyBuckets: the request duration histograms have relia's
// default bounds (which hold the 200 ms of relia's demo SLO), or the ones
// spec.metrics.latencyBuckets gives; a reload cannot change them.
func TestLatencyBuckets(t *testing.T) {
	t.Parallel()
	b := newBackend(t, "users")
	upstreams := "  upstreams: [{name: users, targets: [{address: \"" + b.addr() + "\"}]}]\n  routes: [{name: r, upstream: users}]\n"
	for _, tc := range []struct {
		name, metrics string
		want          []float64
	}{
		{"default", "", semconv.DurationBuckets()},
		{"configured", "  metrics: {latencyBuckets: [0.15, 0.3, 1.5]}\n", []float64{0.15, 0.3, 1.5}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			reg := prometheus.NewRegistry()
			g, base := startGateway(t, tc.metrics+upstreams, Options{Registry: reg})
			if code, _, _ := get(t, "GET", base+"/x", nil); code != 200 {
				t.Fatalf("status %d", code)
			}
			for _, name := range []string{semconv.HTTPServerRequestDuration, semconv.HTTPClientRequestDuration} {
				if got := bucketBounds(t, reg, name); !slices.Equal(got, tc.want) {
					t.Errorf("%s buckets %v, want %v", name, got, tc.want)
				}
			}
			if tc.name == "default" && !slices.Contains(bucketBounds(t, reg, semconv.HTTPServerRequestDuration), 0.2) {
				t.Error("the default buckets cannot serve a 200 ms latency SLO")
			}
			doc := "kind: Gateway\nversion: relia/v1\nspec:\n  listeners: [{name: main, address: \"127.0.0.1:0\"}]\n  admin: {address: \"127.0.0.1:0\"}\n" +
				"  metrics: {latencyBuckets: [0.2, 0.4]}\n" + upstreams
			cfg, err := Parse("reload.yaml", []byte(doc))
			if err != nil {
				t.Fatal(err)
			}
			err = g.Reload(cfg)
			if err == nil || !strings.Contains(err.Error(), "spec.metrics: metrics cannot change on reload") {
				t.Errorf("reload changing the buckets: %v", err)
			}
		})
	}
}

func TestLatencyBucketsRejected(t *testing.T) {
	t.Parallel()
	for body, want := range map[string]string{
		"  metrics: {latencyBuckets: [0.1, 0.1]}\n":  "test.yaml:8:35: spec.metrics.latencyBuckets[1]: 0.1 does not follow 0.1: bounds must ascend",
		"  metrics: {latencyBuckets: [0.5, 0.2]}\n":  "spec.metrics.latencyBuckets[1]: 0.2 does not follow 0.5",
		"  metrics: {latencyBuckets: [0, 1]}\n":      "spec.metrics.latencyBuckets[0]: 0 is not a positive number of seconds",
		"  metrics: {latencyBuckets: [.inf]}\n":      "spec.metrics.latencyBuckets[0]: .inf is not a finite number",
		"  metrics: {latencyBucket: [0.2]}\n":        "unknown field (did you mean latencyBuckets?)",
		"  metrics: {latencyBuckets: [200ms, 1s]}\n": "spec.metrics.latencyBuckets[0]",
	} {
		_, err := Parse("test.yaml", []byte(validHead+body+"  routes: [{name: r, upstream: users}]\n"))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: got %v, want %q", strings.TrimSpace(body), err, want)
		}
	}
}
